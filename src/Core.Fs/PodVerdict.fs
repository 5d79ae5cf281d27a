/// What one observation of a job's pod means for the job: a pure function of the job, the pod and the time, readable
/// (and tested) as a table. `Lifecycle.step` applies the verdict.
module HybridBatch.Core.PodVerdict

open HybridBatch.Core
open HybridBatch.Core.JobState

/// What a pod observation means for a live job whose create call was made.
[<Struct; RequireQualifiedAccess>]
type Verdict =
    /// Another pod of the job's Job beside its own, which goes on: the job's surplus pods are now these.
    | Beside of surplus: Map<string, PodFacts>
    /// The job goes on in another pod of its Job: its own went as the surplus one, or the other ran to its end.
    | MovesTo of other: PodFacts
    /// The pod is evicted, gone with its node, shut down or deleted before its container finished: the job is lost.
    | Lost of lostWhy: string * lostWall: Millis
    /// The container, or the pod, ended: the job finished, failed or ran out of memory.
    | Finished of exitStatus: int * reason: ExitReason * wallTime: Millis * message: string option
    /// The job goes on in this phase: created (waiting for its container, stuck or not) or running.
    | Continues of phase: Phase

/// Waiting reasons that may never clear by themselves: the pod timeout applies to them.
let stuckReasons =
    set
        [ "Unschedulable"
          "ErrImagePull"
          "ImagePullBackOff"
          "ErrImageNeverPull"
          "InvalidImageName"
          "CreateContainerConfigError"
          "CreateContainerError"
          "ContainerCreating" ]

/// Why a created job waits while no pod of it has appeared. The pod timeout runs from creation: a Job whose pod never
/// comes (the Job controller was refused by a quota, a LimitRange or an admission webhook, or the Job was deleted
/// before its pod was made), or a bare pod deleted before the watch saw it, ends with Error instead of waiting for
/// ever. One shared string for both kinds of object: every created job holds it until its pod appears; the result
/// names the Job or pod (its backing id).
[<Literal>]
let NoPodYet =
    "no pod appeared for the job: its Job's controller could not create one (a quota, LimitRange or admission webhook refused it), or the Job or bare pod was deleted; `kubectl describe job` or `kubectl get events` with the backing id says which"

/// A reason with the server's message, when it gave one.
let describe (reason: string) (message: string option) =
    match message with
    | Some m when m <> "" -> $"{reason}: {m}"
    | _ -> reason

/// Why a job whose pod was deleted before its container finished is lost. Deleting a Job deletes its pod too, so this
/// is also what a Job deleted by someone else looks like.
let deletedEarly (pod: string) =
    $"pod {pod} was deleted before its container finished (it, or its Job, was deleted by someone else)"

let private started (phase: Phase) (issuedAt: Millis) =
    match phase with
    | Phase.Running(_, startedAt) -> startedAt
    | Phase.Created(createdAt, _) -> createdAt
    | Phase.Queued _
    | Phase.Creating
    | Phase.Ended _ -> issuedAt

/// The moment a job's clock starts when no container ran: creation, else issue.
let startOf (job: Job) : Millis = started job.phase job.issuedAt

/// The phase of a job once a pod of it is seen (perhaps before its create call returned): it is created, and the
/// no-pod clock stops; the pod's own waiting reasons start theirs.
let seen (job: Job) (at: Millis) : Phase =
    match job.phase with
    | Phase.Creating -> Phase.Created(at, None)
    | Phase.Created(createdAt, Some _) when job.pod.IsNone -> Phase.Created(createdAt, None)
    | phase -> phase

/// The job bound to the pod it was seen with, in `phase`: the pod's name, when it was first seen, and the node it
/// landed on (a job keeps its first node).
let place (job: Job) (pod: PodFacts) (phase: Phase) (at: Millis) : Job =
    { job with
        phase = phase
        pod = Some pod.pod
        podSeenAt = (if job.podSeenAt.IsSome then job.podSeenAt else Some at)
        node = (if job.node.IsSome then job.node else pod.node) }

/// What the pod says of a job in `phase` that waits for its container: stuck (and since when) for a reason that may
/// never clear, or simply waiting.
let private waiting (phase: Phase) (pod: PodFacts) (at: Millis) =
    let why =
        match pod.unschedulable, pod.container with
        | Some message, _ -> Some(describe "Unschedulable" (Some message), true)
        | None, Container.Waiting(reason, message) when stuckReasons.Contains reason ->
            Some(describe reason message, false)
        | None, _ -> None

    match phase, why with
    | Phase.Created(createdAt, None), Some(why, room) ->
        Phase.Created(createdAt, Some { why = why; since = at; waitsForRoom = room })
    // The cause may change (ErrImagePull → ImagePullBackOff); the clock keeps running.
    | Phase.Created(createdAt, Some stuck), Some(why, room) ->
        Phase.Created(createdAt, Some { stuck with why = why; waitsForRoom = room })
    | Phase.Created(createdAt, Some _), None -> Phase.Created(createdAt, None)
    | phase, _ -> phase

/// Whether a pod is on its way out without a result of its own: deleted, or ended by the kubelet or the node.
let private goingAway (pod: PodFacts) =
    pod.deleting
    || match pod.reason with
       | Some("Evicted" | "NodeLost" | "Shutdown" | "Terminated") -> true
       | _ -> false

/// What one observation of its pod means for a live job whose create call was made (created, running, or being
/// created), at `at`. Backoff limit 0 and restart policy Never allow one pod, but the Job controller makes a second
/// when its create call failed after the first was stored, and then deletes one of the two. The watch delivers a
/// pod's deletion before a replacement's creation, so another pod seen while the job is live is such a surplus pod,
/// kept beside the job's own: the job moves to it when it runs to its end, or when the job's own pod is deleted.
/// Otherwise, in order: a pod evicted or gone with its node is lost; a terminated container ends the job
/// (OOMKilled: MemLimit; exit 0: Finished; else Failed); a pod being deleted is lost; a pod that succeeded or failed
/// without its container saying so ends the job; a running container runs; a waiting one waits, stuck when its
/// reason may never clear.
let ofPod (job: Job) (pod: PodFacts) (at: Millis) : Verdict =
    match job.pod with
    | Some bound when bound <> pod.pod ->
        match pod.container with
        | Container.Terminated _ when not (goingAway pod) -> Verdict.MovesTo pod
        | _ when goingAway pod -> Verdict.Beside(job.surplus.Remove pod.pod)
        | _ -> Verdict.Beside(job.surplus.Add(pod.pod, pod))
    | Some _ when pod.deleting && not job.surplus.IsEmpty -> Verdict.MovesTo (Seq.head job.surplus).Value
    | _ ->
        let phase = seen job at
        let start = started phase job.issuedAt

        match pod.reason, pod.container with
        | Some("Evicted" | "NodeLost" | "Shutdown" | "Terminated" as reason), _ ->
            Verdict.Lost(describe $"pod {pod.pod} {reason}" pod.message, at - start)
        | _, Container.Terminated(code, reason, message, startedAt, finishedAt) ->
            let exitReason =
                match reason with
                | Some "OOMKilled" -> ExitReason.MemLimit
                | _ when code = 0 -> ExitReason.Finished
                | _ -> ExitReason.Failed

            let wall =
                match startedAt, finishedAt with
                | Some s, Some f -> f - s
                | Some s, None -> at - s
                | None, _ -> at - start

            let message =
                match exitReason with
                | ExitReason.MemLimit -> Some(describe "OOMKilled: the container exceeded its memory limit" message)
                | ExitReason.Finished
                | ExitReason.Failed
                | ExitReason.Lost
                | ExitReason.Killed
                | ExitReason.Error -> message

            Verdict.Finished(code, exitReason, wall, message)
        | _, _ when pod.deleting -> Verdict.Lost(deletedEarly pod.pod, at - start)
        | _, (Container.NotCreated | Container.Waiting _ | Container.Running _) when pod.phase = PodPhase.Succeeded ->
            Verdict.Finished(0, ExitReason.Finished, at - start, None)
        | _, (Container.NotCreated | Container.Waiting _ | Container.Running _) when pod.phase = PodPhase.Failed ->
            Verdict.Finished(ExitStatusUnavailable, ExitReason.Failed, at - start, Some(describe "pod failed" pod.message))
        | _, Container.Running startedAt ->
            match phase with
            | Phase.Created(createdAt, _) -> Verdict.Continues(Phase.Running(createdAt, startedAt))
            | phase -> Verdict.Continues phase
        | _, (Container.NotCreated | Container.Waiting _) -> Verdict.Continues(waiting phase pod at)
