namespace HybridBatch.Core.Api

open System
open System.Collections.Generic
open HybridBatch.Core
open HybridBatch.Core.JobState

/// Preparing jobs: settings, checks, and what their Kubernetes Jobs are made of.
[<AbstractClass; Sealed>]
type Jobs =
    /// What every job of a batch system shares; `maxCores` etc. are the most one job may ask for.
    static member Settings
        (owner: string, runId: string, image: string, overhead: int64, maxCores: float, maxMemory: int64, maxDisk: int64)
        : JobSettings =
        { owner = owner
          runId = runId
          image = image
          overhead = overhead
          limits =
            { maxCores = maxCores
              maxMemory = maxMemory
              maxDisk = maxDisk } }

    /// An accelerator requirement; null model, brand or api mean "not specified".
    static member Accelerator
        (count: int, kind: string, model: string | null, brand: string | null, api: string | null)
        : AcceleratorRequirement =
        { count = count
          kind = kind
          model = Option.ofObj model
          brand = Option.ofObj brand
          api = Option.ofObj api }

    /// Checks a job and works out everything it needs (see `Job.prepare`). Placements map a label or taint key to
    /// the values that count (an empty list: any value); the batch environment is shared, not copied.
    static member Prepare
        (
            settings: JobSettings,
            id: int,
            name: string | null,
            command: string,
            image: string | null,
            cores: float,
            memory: int64,
            disk: int64,
            accelerators: IReadOnlyList<AcceleratorRequirement> | null,
            requiredLabels: IEnumerable<KeyValuePair<string, IReadOnlyList<string>>> | null,
            desiredLabels: IEnumerable<KeyValuePair<string, IReadOnlyList<string>>> | null,
            prohibitedLabels: IEnumerable<KeyValuePair<string, IReadOnlyList<string>>> | null,
            toleratedTaints: IEnumerable<KeyValuePair<string, IReadOnlyList<string>>> | null,
            preemptible: bool,
            batchEnvironment: KeyValuePair<string, string> array,
            environment: IEnumerable<KeyValuePair<string, string>> | null
        ) : Preparation =
        let request = Views.request (cores, memory, disk, accelerators)

        let spec =
            { id = id
              description = name
              command = command
              image = Option.ofObj image
              resources = request
              placement =
                { requiredLabels = Views.selectors requiredLabels
                  desiredLabels = Views.selectors desiredLabels
                  prohibitedLabels = Views.selectors prohibitedLabels
                  toleratedTaints = Views.selectors toleratedTaints
                  preemptible = None }
              preemptible = preemptible
              batchEnvironment = batchEnvironment
              environment =
                match environment with
                | null -> [||]
                | environment -> Array.ofSeq environment }

        match Job.prepare settings spec with
        | Ok job -> { Job = job; Problem = null }
        | Error error ->
            { Job = null
              Problem = Views.problem request error }

    /// Toil's `check_resource_request` with the settings' maxima: null when the request is acceptable.
    static member CheckResources
        (
            settings: JobSettings,
            name: string | null,
            cores: float,
            memory: int64,
            disk: int64,
            accelerators: IReadOnlyList<AcceleratorRequirement> | null
        ) : JobProblem | null =
        let request = Views.request (cores, memory, disk, accelerators)

        match Job.checkResources settings (Option.ofObj name) request with
        | Ok() -> null
        | Error error -> Views.resourceProblem request error

    /// Null when Kubernetes accepts the environment variable name, else what is wrong with it.
    static member CheckEnvironmentName(name: string) : string | null =
        match Job.checkEnvironmentName name with
        | Ok() -> null
        | Error error -> error.Message

    /// What a prepared job's Kubernetes Job is made of.
    static member Manifest(job: PreparedJob) : JobManifest =
        { Id = job.id
          Name = job.request.name
          Description = job.description
          Command = job.command
          Image = job.image
          Millicores = job.request.millicores
          Memory = job.request.memory
          Disk = job.request.disk
          Requests = job.resources.requests
          Limits = job.resources.limits
          Placement = Views.placement job.placement
          Environment = job.environment }

    /// The pool request stored on a Job of this run, for re-attaching.
    static member Request(name: string, millicores: int64, memory: int64, disk: int64) : JobRequest =
        { name = name
          millicores = millicores
          memory = memory
          disk = disk }

/// The transition function and its queries.
[<AbstractClass; Sealed>]
type Transitions =
    /// The model of a fresh batch system: the pod timeout, and the pool's limits (cores rounded as jobs' are).
    static member Initial(podTimeoutMs: int64, maxJobs: int, maxCores: float, maxMemory: int64, maxDisk: int64) : Model =
        initial
            { podTimeout = podTimeoutMs
              limits =
                { maxJobs = maxJobs
                  maxMillicores = Resources.poolMillicores maxCores
                  maxMemory = maxMemory
                  maxDisk = maxDisk } }

    /// Apply one event.
    static member Step(model: Model, event: Event) : Transition =
        let model, effects = Lifecycle.step model event
        { Transition.Model = model
          Effects = Array.ofList effects }

    /// Take the oldest uncollected result.
    static member Collect(model: Model) : Collected =
        let result, model, effects = Lifecycle.collect model

        { Collected.Model = model
          Result = result |> Option.map Views.result |> Option.toObj
          Effects = Array.ofList effects }

    /// Perform one effect with the handler's method for its case.
    static member Perform<'T>(effect: Effect, handler: IEffectHandler<'T>) : 'T =
        match effect with
        | Effect.Create job -> handler.Create job
        | Effect.Delete(id, name) -> handler.Delete(id, name)
        | Effect.Ended(result, pod) -> handler.Ended(Views.result result, Option.toObj pod)
        | Effect.CleanupNode node -> handler.CleanupNode node
        | Effect.DeleteAll -> handler.DeleteAll()

    /// The Job name of the job whose pod log an effect reads (an `Ended` effect of a failure), else null: the shell holds
    /// that job's result back until the read is done, as collecting deletes the Job and its pod.
    static member ReadsLog(effect: Effect) : string | null =
        match effect with
        | Effect.Ended(result, Some _) -> result.backingId
        | Effect.Ended(_, None)
        | Effect.Create _
        | Effect.Delete _
        | Effect.CleanupNode _
        | Effect.DeleteAll -> null

    /// The id the next issued job gets.
    static member NextId(model: Model) : int = nextId model

    /// Whether a job is issued and neither killed nor collected.
    static member IsIssued(model: Model, id: int) : bool = Lifecycle.isIssued model id

    /// Issued ids (queued, running, ended and not collected), increasing.
    static member Issued(model: Model) : IReadOnlyList<int> = Lifecycle.issued model |> Array.ofList :> _

    /// Jobs whose container runs, with milliseconds running at `nowMs`.
    static member Running(model: Model, nowMs: int64) : IReadOnlyDictionary<int, int64> =
        Lifecycle.running model nowMs |> dict |> Dictionary :> _

/// The events the shell feeds to the transition function.
[<AbstractClass; Sealed>]
type Events =
    /// A job was prepared and issued.
    static member Issued(job: PreparedJob, atMs: int64) = Event.Issued(job, atMs)

    /// A job of this run was found when re-attaching.
    static member Adopted(id: int, request: JobRequest, atMs: int64) = Event.Adopted(id, request, atMs)

    /// Kill these jobs.
    static member Kill(ids: int seq, atMs: int64) = Event.KillRequested(List.ofSeq ids, atMs)

    /// The create call returned.
    static member Created(id: int, atMs: int64) = Event.Created(id, atMs)

    /// The create call failed for good.
    static member CreateFailed(id: int, message: string, atMs: int64) = Event.CreateFailed(id, message, atMs)

    /// The create call of `job` failed as `decision` (null: no decision) says: a refusal by a ResourceQuota puts the
    /// job back in the queue, anything else ends it with Error and `message`.
    static member CreateFailed(job: PreparedJob, decision: Decision | null, message: string, atMs: int64) =
        match decision with
        | null -> Event.CreateFailed(job.id, message, atMs)
        | Decision.Fail(FailureReason.QuotaExceeded(_, refusal)) -> Event.QuotaRefused(job, refusal, atMs)
        | _ -> Event.CreateFailed(job.id, message, atMs)

    /// The namespace's ResourceQuotas, read when connecting; `asJobs` when the run creates Jobs.
    static member QuotasRead(quotas: QuotaStatus seq, asJobs: bool, atMs: int64) =
        Event.QuotasRead(List.ofSeq quotas, asJobs, atMs)

    /// The pod watch saw a pod added or modified.
    static member Observed(pod: PodFacts, atMs: int64) = Event.Observed(pod, atMs)

    /// The pod watch saw a pod deleted.
    static member PodRemoved(id: int, pod: string, atMs: int64) = Event.Removed(id, pod, atMs)

    /// A full list of the run's pods, requested at `listedAtMs`.
    static member Resynced(snapshot: PodFacts seq, listedAtMs: int64, atMs: int64) =
        Event.Resynced(List.ofSeq snapshot, listedAtMs, atMs)

    /// A node is gone.
    static member NodeLost(node: string, atMs: int64) = Event.NodeLost(node, atMs)

    /// Time passed.
    static member Tick(atMs: int64) = Event.Tick atMs

    /// The batch system shuts down.
    static member Shutdown(atMs: int64) = Event.Shutdown atMs

/// The namespace's ResourceQuotas, built from what the Kubernetes API returns.
[<AbstractClass; Sealed>]
type Quotas =
    /// A quota's status: what it allows and what is used, by resource name (null: none given).
    static member Status
        (name: string, hard: IEnumerable<KeyValuePair<string, string>> | null, used: IEnumerable<KeyValuePair<string, string>> | null)
        : QuotaStatus =
        let toMap (pairs: IEnumerable<KeyValuePair<string, string>> | null) =
            match pairs with
            | null -> Map.empty
            | pairs -> pairs |> Seq.map (fun kv -> kv.Key, kv.Value) |> Map.ofSeq

        { name = name
          hard = toMap hard
          used = toMap used }

/// What a pod says about its job, built from what the Kubernetes API returns.
[<AbstractClass; Sealed>]
type Pods =
    /// The container has not been created.
    static member NotCreated = Container.NotCreated

    /// The container waits.
    static member Waiting(reason: string | null, message: string | null) =
        Container.Waiting(
            (match reason with
             | null -> "Waiting"
             | r -> r),
            Option.ofObj message
        )

    /// The container runs.
    static member Running(startedAtMs: int64) = Container.Running startedAtMs

    /// The container ended.
    static member Terminated
        (exitCode: int, reason: string | null, message: string | null, startedAtMs: Nullable<int64>, finishedAtMs: Nullable<int64>)
        =
        Container.Terminated(
            exitCode,
            Option.ofObj reason,
            Option.ofObj message,
            Option.ofNullable startedAtMs,
            Option.ofNullable finishedAtMs
        )

    /// A pod phase from its Kubernetes name.
    static member Phase(phase: string | null) =
        match phase with
        | "Pending" -> PodPhase.Pending
        | "Running" -> PodPhase.Running
        | "Succeeded" -> PodPhase.Succeeded
        | "Failed" -> PodPhase.Failed
        | _ -> PodPhase.Unknown

    /// What a pod says about its job.
    static member Facts
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
        { job = jobId
          pod = pod
          node = Option.ofObj node
          phase = phase
          reason = Option.ofObj reason
          message = Option.ofObj message
          unschedulable = Option.ofObj unschedulable
          container = container
          deleting = deleting }
