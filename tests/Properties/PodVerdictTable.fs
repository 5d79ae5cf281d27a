/// What one observation of a job's pod means, as a table, and a property that `step` does what the verdict says.
module HybridBatch.Properties.PodVerdictTable

open FsCheck
open FsCheck.FSharp
open HybridBatch.Core
open HybridBatch.Core.JobState
open HybridBatch.Core.Lifecycle
open HybridBatch.Core.PodVerdict
open HybridBatch.Properties.JobStateHistories

let private issuedAt = 1_000L
let private createdAt = 2_000L
let private at = 10_000L

let private tracked (phase: Phase) (pod: string option) =
    { id = 1
      request = (prepared 1 100L).request
      issuedAt = issuedAt
      phase = phase
      pod = pod
      podSeenAt = pod |> Option.map (fun _ -> 3_000L)
      surplus = Map.empty
      node = pod |> Option.map (fun _ -> "node-a") }

let private created = tracked (Phase.Created(createdAt, None)) (Some "pod-a")
let private waits why since room =
    Some { why = why; since = since; waitsForRoom = room }

let private withoutPod = tracked (Phase.Created(createdAt, waits NoPodYet createdAt false)) None
let private creating = tracked Phase.Creating None
let private running = tracked (Phase.Running(createdAt, 4_000L)) (Some "pod-a")

let private stuck why since =
    tracked (Phase.Created(createdAt, waits why since false)) (Some "pod-a")

let private pod (phase: PodPhase) (container: Container) =
    { job = 1
      pod = "pod-a"
      node = Some "node-a"
      phase = phase
      reason = None
      message = None
      unschedulable = None
      container = container
      deleting = false }

let private pending = pod PodPhase.Pending Container.NotCreated
let private waitingFor reason message = pod PodPhase.Pending (Container.Waiting(reason, message))
let private runningSince startedAt = pod PodPhase.Running (Container.Running startedAt)

let private terminated code reason startedAt finishedAt =
    pod
        (if code = 0 then PodPhase.Succeeded else PodPhase.Failed)
        (Container.Terminated(code, reason, None, startedAt, finishedAt))

/// The job as tracked, the pod as observed at 10 s, and what the observation means.
let table: (string * Job * PodFacts * Verdict) list =
    [ "a running container runs from the moment it started",
      created,
      runningSince 9_000L,
      Verdict.Continues(Phase.Running(createdAt, 9_000L))
      "a pod seen before its create call returned counts the job created when it was seen",
      creating,
      runningSince 9_500L,
      Verdict.Continues(Phase.Running(at, 9_500L))
      "a running job stays as it is",
      running,
      runningSince 4_000L,
      Verdict.Continues running.phase
      "the first pod stops the no-pod clock",
      withoutPod,
      pending,
      Verdict.Continues(Phase.Created(createdAt, None))
      "an image that cannot be pulled starts the pod timeout, naming why",
      created,
      waitingFor "ImagePullBackOff" (Some "image missing"),
      Verdict.Continues(Phase.Created(createdAt, waits "ImagePullBackOff: image missing" at false))
      "a changed reason to wait keeps the clock running",
      stuck "ErrImagePull" 5_000L,
      waitingFor "ImagePullBackOff" None,
      Verdict.Continues(Phase.Created(createdAt, waits "ImagePullBackOff" 5_000L false))
      "a reason that clears by itself stops the clock",
      stuck "ErrImagePull" 5_000L,
      waitingFor "PodInitializing" None,
      Verdict.Continues(Phase.Created(createdAt, None))
      "a pod no node fits is stuck, with the scheduler's message",
      created,
      { pending with unschedulable = Some "0/1 nodes are available" },
      Verdict.Continues(Phase.Created(createdAt, waits "Unschedulable: 0/1 nodes are available" at true))
      "exit 0 finishes, timed from start to finish",
      running,
      terminated 0 (Some "Completed") (Some 4_000L) (Some 9_000L),
      Verdict.Finished(0, ExitReason.Finished, 5_000L, None)
      "a non-zero exit fails, timed from creation when the start is unknown",
      created,
      terminated 3 (Some "Error") None None,
      Verdict.Finished(3, ExitReason.Failed, at - createdAt, None)
      "OOMKilled is a memory limit, whatever the exit code, saying so",
      running,
      terminated 137 (Some "OOMKilled") (Some 4_000L) None,
      Verdict.Finished(137, ExitReason.MemLimit, at - 4_000L, Some "OOMKilled: the container exceeded its memory limit")
      "an evicted pod is lost, named, with the kubelet's message, even with an exit code",
      running,
      { terminated 0 None (Some 4_000L) (Some 9_000L) with
          reason = Some "Evicted"
          message = Some "The node was low on resource: memory." },
      Verdict.Lost("pod pod-a Evicted: The node was low on resource: memory.", at - 4_000L)
      "a pod deleted before its container finished is lost",
      running,
      { runningSince 4_000L with deleting = true },
      Verdict.Lost(deletedEarly "pod-a", at - 4_000L)
      "an exit code wins over the deletion that follows it",
      running,
      { terminated 1 None (Some 4_000L) (Some 8_000L) with deleting = true },
      Verdict.Finished(1, ExitReason.Failed, 4_000L, None)
      "a pod that succeeded without a container status finishes",
      created,
      pod PodPhase.Succeeded Container.NotCreated,
      Verdict.Finished(0, ExitReason.Finished, at - createdAt, None)
      "a pod that failed without a container status fails, with the pod's message",
      created,
      { pod PodPhase.Failed (Container.Waiting("ContainerCreating", None)) with message = Some "boom" },
      Verdict.Finished(ExitStatusUnavailable, ExitReason.Failed, at - createdAt, Some "pod failed: boom")
      "a second pod of the Job that goes on is kept beside the job's own",
      running,
      { runningSince 9_000L with pod = "pod-b" },
      Verdict.Beside(Map.ofList [ "pod-b", { runningSince 9_000L with pod = "pod-b" } ])
      "a second pod of the Job that runs to its end takes the job",
      running,
      { terminated 3 None (Some 4_000L) (Some 8_000L) with pod = "pod-b" },
      Verdict.MovesTo { terminated 3 None (Some 4_000L) (Some 8_000L) with pod = "pod-b" }
      "a second pod of the Job being deleted is dropped",
      { running with surplus = Map.ofList [ "pod-b", { runningSince 9_000L with pod = "pod-b" } ] },
      { terminated 137 None (Some 4_000L) (Some 8_000L) with pod = "pod-b"; deleting = true },
      Verdict.Beside Map.empty
      "the job's own pod deleted beside a second pod of the Job: the job moves to that pod",
      { running with surplus = Map.ofList [ "pod-b", { runningSince 9_000L with pod = "pod-b" } ] },
      { terminated 137 None (Some 4_000L) (Some 8_000L) with deleting = true },
      Verdict.MovesTo { runningSince 9_000L with pod = "pod-b" } ]

[<Xunit.Fact>]
let ``each pod observation means what the table says`` () =
    let wrong =
        table
        |> List.choose (fun (row, job, pod, expected) ->
            let actual = ofPod job pod at
            if actual = expected then None else Some $"{row}: %A{actual}, expected %A{expected}")

    Xunit.Assert.True(List.isEmpty wrong, String.concat "\n" wrong)

[<CoreProperty>]
let ``an observation does to its job what the verdict says`` () =
    forHistories (fun traces ->
        traces
        |> List.choose (fun t ->
            match t.event with
            | Some(Event.Observed(pod, at)) ->
                match job t.before pod.job with
                | Some({ phase = Phase.Creating | Phase.Created _ | Phase.Running _ } as before) ->
                    Some(t, before, pod, at)
                | _ -> None
            | _ -> None)
        |> List.map (fun (t, before, pod, at) ->
            let verdict = ofPod before pod at

            let ended =
                match job t.after before.id with
                | Some { phase = Phase.Ended(result, _, deleted) } -> Some(result, deleted)
                | _ -> None

            let ok =
                match verdict, ended, job t.after before.id with
                | Verdict.Lost(why, _), Some(result, deleted), _ ->
                    result.reason = ExitReason.Lost && result.message = Some why && deleted
                | Verdict.Finished(code, reason, wall, message), Some(result, deleted), _ ->
                    (result.exitStatus, result.reason, result.wallTime, result.message, deleted) = (code,
                                                                                                      reason,
                                                                                                      max 1L wall,
                                                                                                      message,
                                                                                                      false)
                | Verdict.Continues phase, None, Some after -> after.phase = phase && after.pod = Some pod.pod
                | Verdict.Beside surplus, None, Some after ->
                    after.surplus = surplus && after.pod = before.pod && after.phase = before.phase
                | Verdict.MovesTo other, _, Some after -> after.pod = Some other.pod
                | _ -> false

            ok |> Prop.label $"{verdict} for job {before.id} in {before.phase}, then {job t.after before.id}")
        |> List.fold (.&.) (Prop.ofTestable true))
