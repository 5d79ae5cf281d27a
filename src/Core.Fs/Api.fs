/// The C# view of the core: PascalCase entry points, arrays and nullable references instead of F# lists and options.
namespace HybridBatch.Core.Api

open System
open System.Collections.Generic
open HybridBatch.Core
open HybridBatch.Core.JobState

/// The result of one transition: the next model and the effects to perform in order.
[<Sealed>]
type Transition(model: Model, effects: Effect array) =
    /// The model after the event.
    member _.Model = model
    /// What the shell must do, in order.
    member _.Effects = effects

/// Building observations and events from what the Kubernetes API returns.
[<AbstractClass; Sealed>]
type Lifecycle =
    static member private Opt(value: 'T | null) : 'T option =
        match value with
        | null -> None
        | v -> Some v

    static member private Opt(value: Nullable<'T>) : 'T option =
        if value.HasValue then Some value.Value else None

    /// The model of a fresh batch system.
    static member Initial(podTimeoutMs: int64, maxJobs: int, maxMillicores: int64, maxMemory: int64, maxDisk: int64) =
        initial
            { podTimeout = podTimeoutMs
              limits =
                { maxJobs = maxJobs
                  maxMillicores = maxMillicores
                  maxMemory = maxMemory
                  maxDisk = maxDisk } }

    /// Apply one event.
    static member Step(model: Model, event: Event) =
        let model, effects = step model event
        Transition(model, Array.ofList effects)

    /// The id the next issued job gets.
    static member NextId(model: Model) = nextId model

    /// Issued ids (queued, running, ended and not collected), increasing.
    static member Issued(model: Model) : IReadOnlyList<int> = issued model |> Array.ofList :> _

    /// Jobs whose container runs, with milliseconds running at `nowMs`.
    static member Running(model: Model, nowMs: int64) : IReadOnlyDictionary<int, int64> =
        running model nowMs |> dict |> Dictionary :> _

    /// The pool request of a job, with the name of the Job that backs it.
    static member Request(name: string, millicores: int64, memory: int64, disk: int64) =
        { name = name
          millicores = millicores
          memory = memory
          disk = disk }

    /// A job was issued.
    static member Issued(id: int, request: JobRequest, atMs: int64) = Event.Issued(id, request, atMs)

    /// A job of this run was found when re-attaching.
    static member Adopted(id: int, request: JobRequest, atMs: int64) = Event.Adopted(id, request, atMs)

    /// Kill these jobs.
    static member Kill(ids: int seq, atMs: int64) = Event.KillRequested(List.ofSeq ids, atMs)

    /// The create call returned.
    static member Created(id: int, atMs: int64) = Event.Created(id, atMs)

    /// The create call failed for good.
    static member CreateFailed(id: int, message: string, atMs: int64) = Event.CreateFailed(id, message, atMs)

    /// A watch saw an object added or modified.
    static member Observed(observation: Observation, atMs: int64) = Event.Observed(observation, atMs)

    /// A watch saw a Job deleted.
    static member JobRemoved(id: int, atMs: int64) = Event.Removed(Kind.Job, id, None, atMs)

    /// A watch saw a pod deleted.
    static member PodRemoved(id: int, pod: string, atMs: int64) = Event.Removed(Kind.Pod, id, Some pod, atMs)

    /// A full list of the run's Jobs (`pods` false) or pods (`pods` true), requested at `listedAtMs`.
    static member Resynced(pods: bool, snapshot: Observation seq, listedAtMs: int64, atMs: int64) =
        Event.Resynced((if pods then Kind.Pod else Kind.Job), List.ofSeq snapshot, listedAtMs, atMs)

    /// A node is gone.
    static member NodeLost(node: string, atMs: int64) = Event.NodeLost(node, atMs)

    /// Time passed.
    static member Tick(atMs: int64) = Event.Tick atMs

    /// The caller takes the oldest result.
    static member Collect(atMs: int64) = Event.Collect atMs

    /// The batch system shuts down.
    static member Shutdown(atMs: int64) = Event.Shutdown atMs

    /// The container has not been created.
    static member NotCreated = Container.NotCreated

    /// The container waits.
    static member Waiting(reason: string | null, message: string | null) =
        Container.Waiting((match reason with
                           | null -> "Waiting"
                           | r -> r),
                          Lifecycle.Opt message)

    /// The container runs.
    static member Running(startedAtMs: int64) = Container.Running startedAtMs

    /// The container ended.
    static member Terminated
        (exitCode: int, reason: string | null, message: string | null, startedAtMs: Nullable<int64>, finishedAtMs: Nullable<int64>)
        =
        Container.Terminated(exitCode, Lifecycle.Opt reason, Lifecycle.Opt message, Lifecycle.Opt startedAtMs, Lifecycle.Opt finishedAtMs)

    /// A pod phase from its Kubernetes name.
    static member Phase(phase: string | null) =
        match phase with
        | "Pending" -> PodPhase.Pending
        | "Running" -> PodPhase.Running
        | "Succeeded" -> PodPhase.Succeeded
        | "Failed" -> PodPhase.Failed
        | _ -> PodPhase.Unknown

    /// What a pod says about its job.
    static member Pod
        (
            jobId: int,
            pod: string,
            node: string | null,
            phase: PodPhase,
            reason: string | null,
            message: string | null,
            unschedulable: string | null,
            container: Container,
            deleting: bool
        ) =
        Observation.Pod
            { job = jobId
              pod = pod
              node = Lifecycle.Opt node
              phase = phase
              reason = Lifecycle.Opt reason
              message = Lifecycle.Opt message
              unschedulable = Lifecycle.Opt unschedulable
              container = container
              deleting = deleting }

    /// What a Job says about its job. `failedReason` is set when the Job's Failed condition is true.
    static member Job(jobId: int, failedReason: string | null, failedMessage: string | null, deleting: bool) =
        Observation.Job
            { job = jobId
              failed =
                match failedReason with
                | null -> None
                | r ->
                    Some(
                        r,
                        match failedMessage with
                        | null -> ""
                        | m -> m
                    )
              deleting = deleting }

    /// The message of a result, or null.
    static member Message(result: UpdatedJob) : string | null =
        match result.message with
        | Some m -> m
        | None -> null

    /// The pod whose log explains an ended job, or null.
    static member PodOf(pod: string option) : string | null =
        match pod with
        | Some p -> p
        | None -> null

/// The local pool's units.
[<AbstractClass; Sealed>]
type Pool =
    /// Cores as whole millicores, rounded up as Kubernetes requests are (so a positive request never becomes 0);
    /// amounts beyond Kubernetes' range saturate.
    static member Millicores(cores: float) : int64 =
        match Quantity.ofFloat DecimalSI cores with
        | Ok quantity ->
            let millis = Quantity.nanos (Quantity.roundUpToMillis quantity) / 1_000_000I
            if millis > bigint (Int64.MaxValue / 4L) then Int64.MaxValue / 4L else int64 millis
        | Error _ -> Int64.MaxValue / 4L

/// Names and labels of the objects the batch system creates.
[<AbstractClass; Sealed>]
type Names =
    /// The label key naming the run.
    static member RunLabel = Naming.Labels.Run
    /// The label key naming the owner.
    static member OwnerLabel = Naming.Labels.Owner
    /// The label key holding the job id.
    static member JobIdLabel = Naming.Labels.JobId
    /// The label key marking cleanup Jobs.
    static member CleanupLabel = Naming.Labels.Cleanup

    /// The Kubernetes Job name of a job.
    static member JobName(owner: string, runId: string, id: int) = Naming.jobName owner runId id

    /// The name of a node's cleanup Job.
    static member CleanupName(runId: string, node: string) = Naming.cleanupName runId node

    /// The owner label value.
    static member OwnerValue(owner: string) = Naming.ownerLabel owner

    /// Toil's default owner for a user name.
    static member DefaultOwner(userName: string) = Naming.defaultOwner userName

    /// Null when the run id is a valid label value, else why not and how to fix it.
    static member CheckRunId(runId: string) : string | null =
        match Naming.checkRunId runId with
        | Ok _ -> null
        | Error message -> message
