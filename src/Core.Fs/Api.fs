/// The C# view of the core: PascalCase entry points, arrays and nullable references instead of F# lists and options.
/// Everything C# calls in the core is in this file.
namespace HybridBatch.Core

open System
open System.Collections.Generic
open System.Globalization
open System.Runtime.InteropServices
open System.Text.RegularExpressions

/// A resource request found too large or invalid, for C# callers.
[<Sealed>]
type ResourceProblem(resource: string, requested: string, maximum: string, message: string) =
    /// The resource: cores, memory, disk or accelerators.
    member _.Resource = resource
    /// The amount requested, as text.
    member _.Requested = requested
    /// The configured maximum, as text; empty when the problem is not a maximum.
    member _.Maximum = maximum
    /// What was wrong and how to fix it.
    member _.Message = message

/// A request's Kubernetes container resources, for C# callers.
[<Sealed>]
type KubernetesResourcesView
    (
        requests: IReadOnlyDictionary<string, string>,
        limits: IReadOnlyDictionary<string, string>,
        requiredNodeLabels: IReadOnlyList<KeyValuePair<string, string>>
    ) =
    /// Resource name → canonical quantity, for `V1ResourceRequirements.Requests`.
    member _.Requests = requests
    /// Equal to `Requests`, for `V1ResourceRequirements.Limits`.
    member _.Limits = limits
    /// Node labels (key, value) the pod must land on, each one a required placement label.
    member _.RequiredNodeLabels = requiredNodeLabels

/// C#-friendly entry points to `Resources` (to be folded into Api.fs).
module ResourcesApi =

    /// Toil's default per-pod overhead, 512 MiB.
    [<CompiledName("DefaultOverhead")>]
    let defaultOverhead = Resources.DefaultOverhead

    /// An accelerator requirement; null model, brand or api mean "not specified".
    [<CompiledName("Accelerator")>]
    let accelerator
        (count: int, kind: string, model: string | null, brand: string | null, api: string | null)
        : AcceleratorRequirement =
        { count = count
          kind = kind
          model = Option.ofObj model
          brand = Option.ofObj brand
          api = Option.ofObj api }

    let private request (cores, memory, disk, accelerators: IReadOnlyList<AcceleratorRequirement> | null) =
        { cores = cores
          memory = memory
          disk = disk
          accelerators =
            match accelerators with
            | null -> []
            | accelerators -> List.ofSeq accelerators }

    let private resourceName error =
        match error with
        | InvalidCores _ -> "cores", ""
        | NegativeMemory _ -> "memory", ""
        | NegativeDisk _ -> "disk", ""
        | NegativeOverhead _ -> "overhead", ""
        | ResourceTooLarge(resource, _) -> resource.Name, ""
        | InvalidAcceleratorCount _
        | UnsupportedAccelerator _
        | InvalidAcceleratorBrand _
        | InvalidAcceleratorModel _ -> "accelerators", ""
        | ExceedsMaximum(_, LimitedResource.Cores, _, maximum) -> "cores", maximum
        | ExceedsMaximum(_, LimitedResource.Memory, _, maximum) -> "memory", maximum
        | ExceedsMaximum(_, LimitedResource.Disk, _, maximum) -> "disk", maximum

    let private invariant (value: float) =
        value.ToString("R", CultureInfo.InvariantCulture)

    let private requested (request: ResourceRequest) error =
        match error with
        | ExceedsMaximum(_, _, amount, _) -> amount
        | InvalidCores _
        | ResourceTooLarge(LimitedResource.Cores, _) -> invariant request.cores
        | NegativeMemory _
        | ResourceTooLarge(LimitedResource.Memory, _) -> string request.memory
        | NegativeDisk _
        | ResourceTooLarge(LimitedResource.Disk, _) -> string request.disk
        | ResourceTooLarge _
        | NegativeOverhead _
        | InvalidAcceleratorCount _
        | UnsupportedAccelerator _
        | InvalidAcceleratorBrand _
        | InvalidAcceleratorModel _ -> string request.accelerators.Length

    let private problem request error =
        let resource, maximum = resourceName error
        ResourceProblem(resource, requested request error, maximum, (error: ResourceError).Message)

    /// Toil's check_resource_request: null when the request is acceptable, otherwise the problem (resource,
    /// requested amount, limit and message).
    [<CompiledName("CheckResourceRequest")>]
    let checkResourceRequest
        (
            jobName: string | null,
            cores: float,
            memory: int64,
            disk: int64,
            accelerators: IReadOnlyList<AcceleratorRequirement> | null,
            maxCores: float,
            maxMemory: int64,
            maxDisk: int64
        ) : ResourceProblem | null =
        let request = request (cores, memory, disk, accelerators)

        let limits =
            { maxCores = maxCores
              maxMemory = maxMemory
              maxDisk = maxDisk }

        match Resources.checkResourceRequest limits (Option.ofObj jobName) request with
        | Ok() -> null
        | Error error -> problem request error

    /// The Kubernetes requests and limits for a request with the given per-pod overhead; false with the problem
    /// when the request is invalid.
    [<CompiledName("TryToKubernetes")>]
    let tryToKubernetes
        (
            cores: float,
            memory: int64,
            disk: int64,
            accelerators: IReadOnlyList<AcceleratorRequirement> | null,
            overhead: int64,
            [<Out>] resources: byref<KubernetesResourcesView | null>,
            [<Out>] problem': byref<ResourceProblem | null>
        ) : bool =
        let request = request (cores, memory, disk, accelerators)

        match Resources.toKubernetes overhead request with
        | Ok result ->
            let asDictionary (map: Map<string, string>) =
                Dictionary<string, string>(map :> IDictionary<string, string>) :> IReadOnlyDictionary<string, string>

            resources <-
                KubernetesResourcesView(
                    asDictionary result.requests,
                    asDictionary result.limits,
                    result.requiredNodeLabels
                    |> List.map (fun (key, value) -> KeyValuePair(key, value))
                    |> Array.ofList
                    :> IReadOnlyList<KeyValuePair<string, string>>
                )

            problem' <- null
            true
        | Error error ->
            resources <- null
            problem' <- problem request error
            false

/// One match expression, for C# callers: operator spelled as Kubernetes does (In, NotIn, Exists, DoesNotExist).
[<Sealed>]
type NodeSelectorRequirementView(key: string, operator: string, values: IReadOnlyList<string>) =
    /// The label key.
    member _.Key = key
    /// In, NotIn, Exists or DoesNotExist.
    member _.Operator = operator
    /// The values; empty for Exists and DoesNotExist.
    member _.Values = values

/// A preferred scheduling term, for C# callers: all expressions must match for the weight to count.
[<Sealed>]
type PreferredSchedulingTermView(weight: int, matchExpressions: IReadOnlyList<NodeSelectorRequirementView>) =
    /// The weight a matching node gains.
    member _.Weight = weight
    /// The expressions of the preference term.
    member _.MatchExpressions = matchExpressions

/// A toleration, for C# callers, spelled as Kubernetes does.
[<Sealed>]
type TolerationView(key: string, operator: string, value: string | null, effect: string | null) =
    /// The taint key.
    member _.Key = key
    /// Equal or Exists.
    member _.Operator = operator
    /// The tolerated value for Equal; null for Exists.
    member _.Value = value
    /// NoSchedule, PreferNoSchedule or NoExecute; null for every effect.
    member _.Effect = effect

/// What to set on a pod spec, for C# callers; each part maps 1:1 onto `V1PodSpec`.
[<Sealed>]
type PodPlacementView
    (
        hasNodeAffinity: bool,
        requiredTerms: IReadOnlyList<IReadOnlyList<NodeSelectorRequirementView>>,
        preferredTerms: IReadOnlyList<PreferredSchedulingTermView>,
        tolerations: IReadOnlyList<TolerationView>
    ) =
    /// Whether to set `Affinity.NodeAffinity` at all.
    member _.HasNodeAffinity = hasNodeAffinity
    /// Required node selector terms (ORed), each a list of match expressions (ANDed); empty leaves
    /// `RequiredDuringSchedulingIgnoredDuringExecution` unset.
    member _.RequiredTerms = requiredTerms
    /// Preferred terms; empty leaves `PreferredDuringSchedulingIgnoredDuringExecution` unset.
    member _.PreferredTerms = preferredTerms
    /// Tolerations; empty leaves `Tolerations` unset.
    member _.Tolerations = tolerations

/// C#-friendly entry points to `Placement` (to be folded into Api.fs).
module PlacementApi =

    /// C# may hand over nulls despite its annotations; they become empty text, which validation then names.
    let private text (value: string) =
        match box value with
        | null -> ""
        | _ -> value

    let private selectors (entries: IEnumerable<KeyValuePair<string, IReadOnlyList<string>>> | null) =
        match entries with
        | null -> []
        | entries ->
            entries
            |> Seq.map (fun entry ->
                { LabelSelector.key = text entry.Key
                  values =
                    match box entry.Value with
                    | null -> []
                    | _ -> entry.Value |> Seq.map text |> List.ofSeq })
            |> List.ofSeq

    let private operatorName operator =
        match operator with
        | NodeSelectorOperator.In -> "In"
        | NodeSelectorOperator.NotIn -> "NotIn"
        | NodeSelectorOperator.Exists -> "Exists"
        | NodeSelectorOperator.DoesNotExist -> "DoesNotExist"

    let private effectName effect =
        match effect with
        | TaintEffect.NoSchedule -> "NoSchedule"
        | TaintEffect.PreferNoSchedule -> "PreferNoSchedule"
        | TaintEffect.NoExecute -> "NoExecute"

    let private expressions (term: NodeSelectorTerm) : IReadOnlyList<NodeSelectorRequirementView> =
        term.matchExpressions
        |> List.map (fun e -> NodeSelectorRequirementView(e.key, operatorName e.operator, Array.ofList e.values))
        |> Array.ofList
        :> _

    let private view (placement: PodPlacement) =
        let affinity =
            defaultArg placement.nodeAffinity { required = []; preferred = [] }

        PodPlacementView(
            placement.nodeAffinity.IsSome,
            affinity.required |> List.map expressions |> Array.ofList,
            affinity.preferred
            |> List.map (fun p -> PreferredSchedulingTermView(p.weight, expressions p.preference))
            |> Array.ofList,
            placement.tolerations
            |> List.map (fun t ->
                TolerationView(
                    t.key,
                    (match t.operator with
                     | TolerationOperator.Equal -> "Equal"
                     | TolerationOperator.Exists -> "Exists"),
                    Option.toObj t.value,
                    t.effect |> Option.map effectName |> Option.toObj
                ))
            |> Array.ofList
        )

    /// Applies a placement given as key → values lists (an empty list means any value) and an optional
    /// preemptibility; false with the message naming the invalid label when a key or value is invalid.
    [<CompiledName("TryApply")>]
    let tryApply
        (
            requiredLabels: IEnumerable<KeyValuePair<string, IReadOnlyList<string>>> | null,
            desiredLabels: IEnumerable<KeyValuePair<string, IReadOnlyList<string>>> | null,
            prohibitedLabels: IEnumerable<KeyValuePair<string, IReadOnlyList<string>>> | null,
            toleratedTaints: IEnumerable<KeyValuePair<string, IReadOnlyList<string>>> | null,
            preemptible: Nullable<bool>,
            [<Out>] placement: byref<PodPlacementView | null>,
            [<Out>] error: byref<string | null>
        ) : bool =
        let core =
            { requiredLabels = selectors requiredLabels
              desiredLabels = selectors desiredLabels
              prohibitedLabels = selectors prohibitedLabels
              toleratedTaints = selectors toleratedTaints
              preemptible = Option.ofNullable preemptible }

        match Placement.apply core with
        | Ok result ->
            placement <- view result
            error <- null
            true
        | Error e ->
            placement <- null
            error <- e.Message
            false

/// The retry classifier and back-off as C# sees them (to be folded into Api.fs): arrays, nullables and
/// tupled methods, no curried functions or F# lists.
module RetryApi =

    let private ofObj (text: string | null) : string option =
        match text with
        | null -> None
        | t when String.IsNullOrWhiteSpace t -> None
        | t -> Some t

    let private orEmpty (text: string | null) : string =
        match text with
        | null -> ""
        | t -> t

    /// A permission from its parts; null or empty group means the core group, null namespace means cluster scope.
    [<CompiledName("Permission")>]
    let permission
        (verb: Verb, group: string | null, resource: string | null, subresource: string | null, inNamespace: string | null)
        : Permission =
        { verb = (if isNull (box verb) then Verb.Other "" else verb)
          group = orEmpty group
          resource = orEmpty resource
          subresource = ofObj subresource
          inNamespace = ofObj inNamespace }

    /// A field cause from `Status.details.causes`.
    [<CompiledName("FieldCause")>]
    let fieldCause (field: string | null, reason: string | null, message: string | null) : FieldCause =
        { field = orEmpty field
          reason = orEmpty reason
          message = orEmpty message }

    let private describe
        (status: Nullable<int>)
        (reason: string | null)
        (message: string | null)
        (causes: FieldCause array | null)
        (retryAfter: Nullable<TimeSpan>)
        (transport: TransportFailure option)
        (permission: Permission)
        (madeIdempotent: bool)
        : ApiError =
        { status = Option.ofNullable status
          reason = ofObj reason
          message = ofObj message
          causes =
            (match causes with
             | null -> []
             | cs -> cs |> Array.filter (fun c -> not (isNull (box c))) |> List.ofArray)
          retryAfter = Option.ofNullable retryAfter
          transport = transport
          permission =
            (if isNull (box permission) then
                 { verb = Verb.Other ""
                   group = ""
                   resource = ""
                   subresource = None
                   inNamespace = None }
             else
                 permission)
          madeIdempotent = madeIdempotent }

    /// A call the server answered with an error status (or a watch's error event); pass null for what is unknown.
    [<CompiledName("DescribeResponse")>]
    let describeResponse
        (
            status: Nullable<int>,
            reason: string | null,
            message: string | null,
            causes: FieldCause array | null,
            retryAfter: Nullable<TimeSpan>,
            permission: Permission,
            madeIdempotent: bool
        ) : ApiError =
        describe status reason message causes retryAfter None permission madeIdempotent

    /// A call that failed below HTTP, with no response.
    [<CompiledName("DescribeTransport")>]
    let describeTransport
        (transport: TransportFailure, message: string | null, permission: Permission, madeIdempotent: bool)
        : ApiError =
        let transport = if isNull (box transport) then None else Some transport
        describe (Nullable()) null message null (Nullable()) transport permission madeIdempotent

    /// A call that failed in a way that is neither a status nor a transport failure.
    [<CompiledName("DescribeUnknown")>]
    let describeUnknown (message: string | null, permission: Permission, madeIdempotent: bool) : ApiError =
        describe (Nullable()) null message null (Nullable()) None permission madeIdempotent

    /// What to do about a failed call.
    [<CompiledName("Classify")>]
    let classify (error: ApiError) : Decision = Retry.classify error

    /// The decision in words: for `Fail`, what went wrong and how to fix it.
    [<CompiledName("Explain")>]
    let explain (decision: Decision) : string = Decision.explain decision

    /// A client's history before its first call.
    [<CompiledName("EmptyHistory")>]
    let emptyHistory: ServerHistory = ServerHistory.empty

    /// The history after a call that exercised the permission succeeded (the same instance when nothing changed).
    [<CompiledName("Succeeded")>]
    let succeeded (history: ServerHistory, permission: Permission) : ServerHistory =
        ServerHistory.succeeded permission history

    /// The history after a call failed at `now` (the same instance when nothing changed).
    [<CompiledName("Failed")>]
    let failed (history: ServerHistory, now: TimeSpan, error: ApiError) : ServerHistory = ServerHistory.failed now error history

    /// The decision for a failed attempt, in the light of the client's history, and the wait before the next attempt
    /// (null: none; see `Attempt.next`).
    [<CompiledName("Next")>]
    let next
        (policy: BackoffPolicy, history: ServerHistory, now: TimeSpan, attempt: int, seed: uint64, elapsed: TimeSpan, error: ApiError)
        : struct (Decision * Nullable<TimeSpan>) =
        match Attempt.next policy history now attempt seed elapsed error with
        | decision, Some wait -> struct (decision, Nullable wait)
        | decision, None -> struct (decision, Nullable())

    /// The server's `Retry-After` carried by a `Retry` decision, or null.
    [<CompiledName("RetryAfter")>]
    let retryAfter (decision: Decision) : Nullable<TimeSpan> =
        match decision with
        | Decision.Retry(Some after) -> Nullable after
        | Decision.Retry None
        | Decision.Resync
        | Decision.AlreadyDone
        | Decision.Fail _ -> Nullable()

    /// The RBAC verb of an HTTP request.
    [<CompiledName("VerbOf")>]
    let verbOf (httpMethod: string, namesObject: bool, isWatch: bool) : Verb = Verb.ofHttp httpMethod namesObject isWatch

    /// Whether calls with this verb may be repeated after an ambiguous failure without help from the caller.
    [<CompiledName("IsIdempotent")>]
    let isIdempotent (verb: Verb) : bool = Verb.isIdempotent verb

    /// The verb as RBAC spells it.
    [<CompiledName("VerbName")>]
    let verbName (verb: Verb) : string = Verb.name verb

    /// The resource as RBAC names it: `jobs.batch`, `pods/log`.
    [<CompiledName("ResourceName")>]
    let resourceName (permission: Permission) : string = Permission.resourceName permission

    /// What is wrong with a back-off policy and how to fix it, or null when it is usable.
    [<CompiledName("PolicyProblem")>]
    let policyProblem (firstDelay: TimeSpan, maxDelay: TimeSpan, budget: TimeSpan) : string | null =
        match Backoff.policy firstDelay maxDelay budget with
        | Ok _ -> null
        | Error e -> Backoff.explainError e

    /// How long to wait before the next attempt, or null to give up (see `Backoff.nextDelay`).
    [<CompiledName("NextDelay")>]
    let nextDelay
        (policy: BackoffPolicy, attempt: int, seed: uint64, elapsed: TimeSpan, decision: Decision)
        : Nullable<TimeSpan> =
        match Backoff.nextDelay policy attempt seed elapsed decision with
        | Some d -> Nullable d
        | None -> Nullable()

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
        { job = jobId
          pod = pod
          node = Lifecycle.Opt node
          phase = phase
          reason = Lifecycle.Opt reason
          message = Lifecycle.Opt message
          unschedulable = Lifecycle.Opt unschedulable
          container = container
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
    static member Millicores(cores: float) : int64 = Resources.poolMillicores cores

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
