namespace HybridBatch.Core.Api

open System
open HybridBatch.Core

/// What a call's verdict is, for C#: the case of `Decision`.
type DecisionKind =
    /// Repeat the call.
    | Retry = 1
    /// List again and watch from the new resourceVersion (410 Gone).
    | Resync = 2
    /// What the call asked for is already so.
    | AlreadyDone = 3
    /// Give up.
    | Fail = 4

/// The decision for a failed attempt and the wait before the next one (null: no next attempt).
type AttemptDecision =
    { Decision: Decision
      Wait: Nullable<TimeSpan> }

/// The retry classifier, the server history and the back-off, for C#.
[<AbstractClass; Sealed>]
type Retries =
    static member private OfObj(text: string | null) : string option =
        match text with
        | null -> None
        | t when String.IsNullOrWhiteSpace t -> None
        | t -> Some t

    static member private OrEmpty(text: string | null) : string =
        match text with
        | null -> ""
        | t -> t

    static member private Describe
        (
            status: Nullable<int>,
            reason: string | null,
            message: string | null,
            causes: FieldCause array | null,
            retryAfter: Nullable<TimeSpan>,
            transport: TransportFailure option,
            permission: Permission,
            madeIdempotent: bool
        ) : ApiError =
        { status = Option.ofNullable status
          reason = Retries.OfObj reason
          message = Retries.OfObj message
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

    /// A permission from its parts; null or empty group means the core group, null namespace means cluster scope.
    static member Permission
        (verb: Verb, group: string | null, resource: string | null, subresource: string | null, inNamespace: string | null)
        : Permission =
        { verb = (if isNull (box verb) then Verb.Other "" else verb)
          group = Retries.OrEmpty group
          resource = Retries.OrEmpty resource
          subresource = Retries.OfObj subresource
          inNamespace = Retries.OfObj inNamespace }

    /// A field cause from `Status.details.causes`.
    static member FieldCause(field: string | null, reason: string | null, message: string | null) : FieldCause =
        { field = Retries.OrEmpty field
          reason = Retries.OrEmpty reason
          message = Retries.OrEmpty message }

    /// A call the server answered with an error status (or a watch's error event); pass null for what is unknown.
    static member DescribeResponse
        (
            status: Nullable<int>,
            reason: string | null,
            message: string | null,
            causes: FieldCause array | null,
            retryAfter: Nullable<TimeSpan>,
            permission: Permission,
            madeIdempotent: bool
        ) : ApiError =
        Retries.Describe(status, reason, message, causes, retryAfter, None, permission, madeIdempotent)

    /// A call that failed below HTTP, with no response.
    static member DescribeTransport
        (transport: TransportFailure, message: string | null, permission: Permission, madeIdempotent: bool)
        : ApiError =
        let transport = if isNull (box transport) then None else Some transport
        Retries.Describe(Nullable(), null, message, null, Nullable(), transport, permission, madeIdempotent)

    /// A call that failed in a way that is neither a status nor a transport failure.
    static member DescribeUnknown(message: string | null, permission: Permission, madeIdempotent: bool) : ApiError =
        Retries.Describe(Nullable(), null, message, null, Nullable(), None, permission, madeIdempotent)

    /// What to do about a failed call.
    static member Classify(error: ApiError) : Decision = Retry.classify error

    /// The case of a decision.
    static member Kind(decision: Decision) : DecisionKind =
        match decision with
        | Decision.Retry _ -> DecisionKind.Retry
        | Decision.Resync -> DecisionKind.Resync
        | Decision.AlreadyDone -> DecisionKind.AlreadyDone
        | Decision.Fail _ -> DecisionKind.Fail

    /// The decision in words: for `Fail`, what went wrong and how to fix it.
    static member Explain(decision: Decision) : string = Decision.explain decision

    /// The server's `Retry-After` carried by a `Retry` decision, or null.
    static member RetryAfter(decision: Decision) : Nullable<TimeSpan> =
        match decision with
        | Decision.Retry(Some after) -> Nullable after
        | Decision.Retry None
        | Decision.Resync
        | Decision.AlreadyDone
        | Decision.Fail _ -> Nullable()

    /// A client's history before its first call.
    static member EmptyHistory: ServerHistory = ServerHistory.empty

    /// The history after a call that exercised the permission succeeded (the same instance when nothing changed).
    static member Succeeded(history: ServerHistory, permission: Permission) : ServerHistory =
        ServerHistory.succeeded permission history

    /// The history after a call failed at `now` (the same instance when nothing changed).
    static member Failed(history: ServerHistory, now: TimeSpan, error: ApiError) : ServerHistory =
        ServerHistory.failed now error history

    /// The decision for a failed attempt, in the light of the client's history, and the wait before the next attempt
    /// (see `Attempt.next`).
    static member Next
        (policy: BackoffPolicy, history: ServerHistory, now: TimeSpan, attempt: int, seed: uint64, elapsed: TimeSpan, error: ApiError)
        : AttemptDecision =
        let decision, wait = Attempt.next policy history now attempt seed elapsed error

        { Decision = decision
          Wait = Option.toNullable wait }

    /// The RBAC verb of an HTTP request.
    static member VerbOf(httpMethod: string, namesObject: bool, isWatch: bool) : Verb =
        Verb.ofHttp httpMethod namesObject isWatch

    /// The verb as RBAC spells it.
    static member VerbName(verb: Verb) : string = Verb.name verb

    /// The resource as RBAC names it: `jobs.batch`, `pods/log`.
    static member ResourceName(permission: Permission) : string = Permission.resourceName permission

    /// A checked back-off policy.
    static member Policy(firstDelay: TimeSpan, maxDelay: TimeSpan, budget: TimeSpan) : BackoffPolicy =
        { firstDelay = firstDelay
          maxDelay = maxDelay
          budget = budget }

    /// What is wrong with a back-off policy and how to fix it, or null when it is usable.
    static member PolicyProblem(firstDelay: TimeSpan, maxDelay: TimeSpan, budget: TimeSpan) : string | null =
        match Backoff.policy firstDelay maxDelay budget with
        | Ok _ -> null
        | Error e -> Backoff.explainError e
