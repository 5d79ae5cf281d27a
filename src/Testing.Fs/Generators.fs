/// FsCheck generators for a workflow engine's properties against the simulated cluster: workloads (what each job's
/// pod does), node sets and fault schedules, each valid by construction (the simulation refuses nothing they make)
/// and shrinking towards fewer, simpler cases.
namespace HybridBatch.Testing.Simulation

open FsCheck
open FsCheck.FSharp
open HybridBatch.Core

/// One job of a generated workload: what the engine asks for, and what its pod then does.
type WorkloadJob =
    {
      /// Cores the job asks for.
      cores: float
      /// Bytes of memory the job asks for.
      memory: int64
      /// What its pod does.
      script: PodScript }

/// Generators of workloads, node sets and fault schedules.
[<RequireQualifiedAccess>]
module Generators =

    /// What a pod does: mostly finishing within minutes, some failing, some running out of memory (using more than
    /// `memory`, what the job asks for), a few with a missing image.
    let script (memory: int64) : Gen<PodScript> =
        gen {
            let! runTime = Gen.choose (1, 600) |> Gen.map (fun s -> int64 s * 1000L)
            let! startDelay = Gen.choose (0, 20) |> Gen.map (fun s -> int64 s * 1000L)
            let! exitCode = Gen.frequency [ 8, Gen.constant 0; 2, Gen.choose (1, 255) ]
            let! oom = Gen.frequency [ 9, Gen.constant false; 1, Gen.constant true ]
            let! imageMissing = Gen.frequency [ 19, Gen.constant false; 1, Gen.constant true ]

            return
                { startDelay = startDelay
                  runTime = Some runTime
                  exitCode = exitCode
                  memoryUsed = (if oom then memory * 4L else memory / 2L)
                  imageMissing = imageMissing
                  log = $"generated: exit {exitCode}" }
        }

    /// A workload of up to `maxJobs` jobs of 0.1 to 2 cores and 64 MiB to 2 GiB each.
    let workload (maxJobs: int) : Gen<WorkloadJob list> =
        gen {
            let! cores = Gen.choose (1, 20) |> Gen.map (fun tenths -> float tenths / 10.0)
            let! memory = Gen.choose (64, 2048) |> Gen.map (fun mib -> int64 mib <<< 20)
            let! script = script memory

            return
                { cores = cores
                  memory = memory
                  script = script }
        }
        |> Gen.listOf
        |> Gen.resize maxJobs

    /// One to `maxNodes` nodes named n1, n2, … of 2 to 32 cores and 8 to 128 GiB, some labelled `disk=ssd`, a few
    /// tainted `dedicated=special:NoSchedule`.
    let nodes (maxNodes: int) : Gen<NodeSpec list> =
        gen {
            let! count = Gen.choose (1, max 1 maxNodes)

            let node i =
                gen {
                    let! cores = Gen.elements [ 2L; 4L; 8L; 16L; 32L ]
                    let! memory = Gen.elements [ 8L; 16L; 32L; 64L; 128L ]
                    let! ssd = Gen.elements [ false; true ]
                    let! tainted = Gen.frequency [ 9, Gen.constant false; 1, Gen.constant true ]

                    return
                        { name = $"n{i}"
                          millicores = cores * 1000L
                          memory = memory <<< 30
                          disk = 512L <<< 30
                          gpus = 0L
                          labels = (if ssd then Map [ "disk", "ssd" ] else Map.empty)
                          taints =
                            if tainted then
                                [ { key = "dedicated"
                                    value = "special"
                                    effect = TaintEffect.NoSchedule } ]
                            else
                                [] }
                }

            return! [ 1..count ] |> List.map node |> Gen.sequenceToList
        }

    /// Up to `maxFaults` faults within `horizonMs` of the start, ordered by time: lost nodes (of `nodeNames`, each
    /// lost at most once, and never the last one left, so the workload can still end), evictions and deletions of the
    /// pods of jobs 1 to `maxJobId`, API refusals of up to a minute and watch cuts of up to two.
    let faults (nodeNames: string list) (maxJobId: int) (maxFaults: int) (horizonMs: int64) : Gen<FaultAt list> =
        let at = Gen.choose (0, int (min horizonMs (int64 System.Int32.MaxValue))) |> Gen.map int64
        let job = Gen.choose (1, max 1 maxJobId)

        let one =
            Gen.oneof
                [ job |> Gen.map Fault.EvictPod
                  job |> Gen.map Fault.DeletePod
                  gen {
                      let! refusal = Gen.elements [ ApiRefusal.TooManyRequests; ApiRefusal.Unavailable; ApiRefusal.QuotaExceeded ]
                      let! seconds = Gen.choose (1, 60)
                      return Fault.RefuseCreates(refusal, int64 seconds * 1000L)
                  }
                  Gen.choose (1, 120) |> Gen.map (fun s -> Fault.CutWatch(int64 s * 1000L)) ]

        gen {
            let! others = Gen.listOf (Gen.zip at one) |> Gen.resize maxFaults
            let! lostCount = Gen.choose (0, max 0 (nodeNames.Length - 1))
            let! lost = Gen.shuffle nodeNames |> Gen.map (Array.truncate lostCount >> List.ofArray)
            let! lostAt = Gen.listOfLength lost.Length at

            return
                (List.zip lostAt (lost |> List.map Fault.LoseNode)) @ others
                |> List.sortBy fst
                |> List.map (fun (after, fault) -> { after = after; fault = fault })
        }

    /// Arbitrary workloads with a shrinker: fewer jobs first.
    let workloadArb (maxJobs: int) : Arbitrary<WorkloadJob list> =
        Arb.fromGenShrink (workload maxJobs, fun jobs -> Seq.init jobs.Length (fun i -> List.removeAt i jobs))
