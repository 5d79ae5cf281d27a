/// A consumer's property against the simulated cluster, as the README shows it: the engine here is the simplest
/// one, a loop that submits a workload and collects until nothing is issued.
module HybridBatch.Properties.SimulationProperties

open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open HybridBatch
open HybridBatch.Testing
open HybridBatch.Testing.Simulation

/// The engine under test: submits every job, then collects until none is issued; returns the ids collected.
let runEngine (system: IBatchSystem) (jobs: WorkloadJob list) =
    task {
        let submitted = ResizeArray()

        for job in jobs do
            let! id = system.IssueBatchJobAsync("run", JobDescription("job", job.cores, job.memory, 0L))
            submitted.Add id

        let collected = ResizeArray()
        let mutable issued = submitted.Count

        while issued > 0 do
            match! system.GetUpdatedBatchJobAsync(System.TimeSpan.FromHours 1.0) with
            | null -> ()
            | result -> collected.Add result.JobId

            let! left = system.GetIssuedBatchJobIdsAsync()
            issued <- left.Count

        return List.ofSeq submitted, List.ofSeq collected
    }

[<Property(MaxTest = 30)>]
let ``every job my engine submits is collected exactly once, whatever the fault schedule`` (seed: uint64) =
    let scenario =
        gen {
            let! jobs = Generators.workload 30
            let! nodes = Generators.nodes 4
            let! faults = Generators.faults (nodes |> List.map _.name) (max 1 jobs.Length) 5 600_000L
            return jobs, nodes, faults
        }

    Prop.forAll (Arb.fromGen scenario) (fun (jobs, nodes, faults) ->
        let scripts = jobs |> List.map _.script |> Array.ofList

        let cluster =
            SimulatedCluster(
                SimulatedClusterOptions(Seed = seed, Behaviour = fun job -> PodBehaviour.Of scripts[job.JobId - 1]),
                nodes |> List.map SimulatedNode.Of
            )

        cluster.Schedule faults

        let submitted, collected =
            task {
                use! system = SimulatedBatchSystem.CreateAsync cluster
                return! runEngine system jobs
            }
            |> _.GetAwaiter().GetResult()

        List.sort collected = submitted |> Prop.label $"submitted {submitted}, collected {List.sort collected}")
