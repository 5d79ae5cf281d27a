namespace HybridBatch.Core

open System

// Retry classification for Kubernetes API calls: what Toil's `is_retryable_kubernetes_error` decides, and better.
// Toil retries every ApiException (minus a per-call list such as 404/409/422) for 32 s, or nothing at all; here
// each failure is classified by status, Kubernetes reason, transport failure and whether the call is safe to
// repeat, and the back-off is a pure function of its inputs (the jitter seed and the elapsed time are arguments).

/// The RBAC verb a Kubernetes API call exercises.
[<RequireQualifiedAccess>]
type Verb =
    | Get
    | List
    | Watch
    | Create
    | Update
    | Patch
    | Delete
    | DeleteCollection
    /// A verb outside the eight resource verbs (e.g. `impersonate`); never assumed safe to repeat.
    | Other of string

/// How a request failed below HTTP, before a status line arrived.
[<RequireQualifiedAccess>]
type TransportFailure =
    /// The connection was refused: the request never reached the server.
    | Refused
    /// The connection was reset or closed mid-exchange: the request may have been applied.
    | Reset
    /// No answer in time: the request may have been applied.
    | Timeout
    /// The server's name did not resolve: the request never left the client.
    | Dns
    /// The TLS handshake failed: a configuration problem (CA, server name, client certificate), not weather.
    | Tls
    /// Any other transport failure: treated as ambiguous.
    | Other

/// The permission a call exercised, as an RBAC Role names it.
type Permission =
    { verb: Verb
      /// The API group; empty for the core group (pods, events).
      group: string
      /// The plural resource name, e.g. `jobs`.
      resource: string
      /// A subresource such as `log` or `status`.
      subresource: string option
      /// The namespace; `None` for a cluster-scoped call.
      inNamespace: string option }

/// One field the API server named as a cause of a rejection (`Status.details.causes`).
type FieldCause =
    { field: string
      reason: string
      message: string }

/// What the shell knows about one failed Kubernetes API call.
type ApiError =
    {
      /// The HTTP status, if a response arrived.
      status: int option
      /// The Kubernetes `Status.reason` (e.g. `AlreadyExists`, `Expired`).
      reason: string option
      /// The Kubernetes `Status.message`.
      message: string option
      /// The Kubernetes `Status.details.causes`.
      causes: FieldCause list
      /// The server's `Retry-After` (header or `Status.details.retryAfterSeconds`).
      retryAfter: TimeSpan option
      /// The transport failure, if no response arrived.
      transport: TransportFailure option
      /// What the call tried to do.
      permission: Permission
      /// The shell made a non-idempotent call safe to repeat (a create with a deterministic name, whose repeat
      /// answers 409 AlreadyExists; a merge patch).
      madeIdempotent: bool }

/// Why a failed call is given up on, with what the user can do about it.
[<RequireQualifiedAccess>]
type FailureReason =
    /// 401: the credentials were not accepted.
    | Unauthenticated of permission: Permission * serverMessage: string option
    /// 403: the identity lacks the permission.
    | Forbidden of permission: Permission * serverMessage: string option
    /// 400/422: the object or request was invalid; the causes name the fields.
    | Invalid of status: int * causes: FieldCause list * serverMessage: string option
    /// 404 on anything but a delete.
    | NotFound of permission: Permission * serverMessage: string option
    /// 409 other than AlreadyExists on a create: a stale resourceVersion or a concurrent change.
    | Conflict of permission: Permission * serverMessage: string option
    /// An ambiguous failure (the request may have been applied) on a call that is not safe to repeat.
    | NotRepeatable of permission: Permission * cause: string
    /// The TLS handshake failed.
    | TlsFailed of serverMessage: string option
    /// Any other status the server answered with that retrying cannot fix.
    | Rejected of status: int * reason: string option * serverMessage: string option
    /// Neither a status nor a transport failure was described.
    | Unrecognised of serverMessage: string option

/// What to do about a failed Kubernetes API call.
[<RequireQualifiedAccess>]
type Decision =
    /// Repeat the call; the server asked to wait at least `retryAfter` when it is given.
    | Retry of retryAfter: TimeSpan option
    /// A watch's resourceVersion expired (410 Gone): list again and watch from the new resourceVersion.
    | Resync
    /// What the call asked for is already so: 404 on a delete, 409 AlreadyExists on our create.
    | AlreadyDone
    /// Give up, saying why and how to fix it.
    | Fail of FailureReason

/// A back-off schedule: exponential from `firstDelay`, capped at `maxDelay`, with jitter, within `budget`.
type BackoffPolicy =
    {
      /// The delay before the first retry, before jitter.
      firstDelay: TimeSpan
      /// No computed delay exceeds this (a larger `Retry-After` is still honoured).
      maxDelay: TimeSpan
      /// Retries stop when the next attempt would start later than this after the first attempt started.
      budget: TimeSpan }

/// Why a back-off policy is unusable.
[<RequireQualifiedAccess>]
type BackoffPolicyError =
    /// The first delay is zero or negative: exponential growth from it would never wait.
    | FirstDelayNotPositive of TimeSpan
    /// The cap is below the first delay.
    | MaxDelayBelowFirstDelay of firstDelay: TimeSpan * maxDelay: TimeSpan
    /// The budget is negative.
    | BudgetNegative of TimeSpan

/// What one client has seen of its API server: the context that tells a passing 403 from a missing permission.
/// A restarting API server answers 403 to everything until its authorization caches are filled, so a 403 for a
/// permission this client has already used, or one soon after the server was unreachable, is very likely to pass.
/// Times are on the shell's monotonic clock (any fixed origin).
type ServerHistory =
    {
      /// The permissions this client's calls have exercised successfully.
      granted: Set<Permission>
      /// When a call last found the API server unreachable (connection refused or reset, timeout, 5xx).
      lastUnreachable: TimeSpan option }

/// Functions on RBAC verbs.
[<RequireQualifiedAccess>]
module Verb =

    /// The verb as RBAC spells it (`create`, `deletecollection`).
    let name (verb: Verb) : string =
        match verb with
        | Verb.Get -> "get"
        | Verb.List -> "list"
        | Verb.Watch -> "watch"
        | Verb.Create -> "create"
        | Verb.Update -> "update"
        | Verb.Patch -> "patch"
        | Verb.Delete -> "delete"
        | Verb.DeleteCollection -> "deletecollection"
        | Verb.Other other when String.IsNullOrWhiteSpace other -> "unknown-verb"
        | Verb.Other other -> other.Trim().ToLowerInvariant()

    /// Whether repeating the call cannot change the outcome: reads, watches, updates (a repeat with the same
    /// resourceVersion conflicts instead of applying twice) and deletes (a repeat answers 404). Creates and
    /// patches are not, unless the shell makes them so.
    let isIdempotent (verb: Verb) : bool =
        match verb with
        | Verb.Get
        | Verb.List
        | Verb.Watch
        | Verb.Update
        | Verb.Delete
        | Verb.DeleteCollection -> true
        | Verb.Create
        | Verb.Patch
        | Verb.Other _ -> false

    /// The verb of an HTTP request to the API server: its method, whether the path names one object, and
    /// whether it asks for a watch.
    let ofHttp (httpMethod: string | null) (namesObject: bool) (isWatch: bool) : Verb =
        let m =
            match httpMethod with
            | null -> ""
            | text -> text.Trim().ToUpperInvariant()

        match m with
        | "GET"
        | "HEAD" when isWatch -> Verb.Watch
        | "GET"
        | "HEAD" when namesObject -> Verb.Get
        | "GET"
        | "HEAD" -> Verb.List
        | "POST" -> Verb.Create
        | "PUT" -> Verb.Update
        | "PATCH" -> Verb.Patch
        | "DELETE" when namesObject -> Verb.Delete
        | "DELETE" -> Verb.DeleteCollection
        | other -> Verb.Other(other.ToLowerInvariant())

/// Functions on permissions.
[<RequireQualifiedAccess>]
module Permission =

    let private orDefault (fallback: string) (text: string) =
        if String.IsNullOrWhiteSpace text then fallback else text.Trim()

    /// The resource as RBAC and `kubectl auth can-i` name it: `jobs.batch`, `pods/log`, `nodes`.
    let resourceName (permission: Permission) : string =
        let resource = orDefault "unknown-resource" permission.resource

        let grouped =
            if String.IsNullOrWhiteSpace permission.group then
                resource
            else
                resource + "." + permission.group.Trim()

        match permission.subresource with
        | Some sub when not (String.IsNullOrWhiteSpace sub) -> grouped + "/" + sub.Trim()
        | _ -> grouped

    /// Where the permission applies: `in namespace X` or `at cluster scope`.
    let scope (permission: Permission) : string =
        match permission.inNamespace with
        | Some ns when not (String.IsNullOrWhiteSpace ns) -> "in namespace " + ns.Trim()
        | _ -> "at cluster scope"

    /// The permission in words: `create jobs.batch in namespace X`.
    let describe (permission: Permission) : string =
        $"{Verb.name permission.verb} {resourceName permission} {scope permission}"

    /// The Role (or ClusterRole) rule that grants the permission.
    let rule (permission: Permission) : string =
        let resource = orDefault "unknown-resource" permission.resource

        let resource =
            match permission.subresource with
            | Some sub when not (String.IsNullOrWhiteSpace sub) -> resource + "/" + sub.Trim()
            | _ -> resource

        let group = orDefault "" permission.group

        let kind =
            match permission.inNamespace with
            | Some ns when not (String.IsNullOrWhiteSpace ns) -> $"the Role bound in namespace {ns.Trim()}"
            | _ -> "a ClusterRole"

        $"{kind} (apiGroups: [\"{group}\"], resources: [\"{resource}\"], verbs: [\"{Verb.name permission.verb}\"])"

/// Functions on failure reasons.
[<RequireQualifiedAccess>]
module FailureReason =

    let private said (serverMessage: string option) =
        match serverMessage with
        | Some m when not (String.IsNullOrWhiteSpace m) -> $" The server said: {m.Trim()}"
        | _ -> ""

    let private cause (c: FieldCause) =
        let field =
            if String.IsNullOrWhiteSpace c.field then
                "(no field)"
            else
                c.field.Trim()

        let message =
            if String.IsNullOrWhiteSpace c.message then
                (if String.IsNullOrWhiteSpace c.reason then
                     "rejected"
                 else
                     c.reason.Trim())
            else
                c.message.Trim()

        $"{field}: {message}"

    /// What went wrong and how to fix it, in one message.
    let explain (reason: FailureReason) : string =
        match reason with
        | FailureReason.Unauthenticated(p, m) ->
            $"The API server did not accept the credentials (401 Unauthorized) when trying to {Permission.describe p}: the token or client certificate is missing, expired or revoked; refresh the kubeconfig or service-account token.{said m}"
        | FailureReason.Forbidden(p, m) ->
            $"The identity cannot {Permission.describe p} (403 Forbidden): grant it in {Permission.rule p}.{said m}"
        | FailureReason.Invalid(status, [], m) ->
            $"The API server rejected the request as invalid ({status}) and named no field; fix the request.{said m}"
        | FailureReason.Invalid(status, causes, m) ->
            let fields = causes |> List.map cause |> String.concat "; "
            $"The API server rejected the request as invalid ({status}); fix these fields: {fields}.{said m}"
        | FailureReason.NotFound(p, m) ->
            $"Not found (404) when trying to {Permission.describe p}: the object or its namespace does not exist.{said m}"
        | FailureReason.Conflict(p, m) ->
            $"Conflict (409) when trying to {Permission.describe p}: the object changed since it was read; read it again and reapply the change.{said m}"
        | FailureReason.NotRepeatable(p, c) ->
            $"The call to {Permission.describe p} failed ambiguously ({c}): it may have been applied, and repeating it could apply it twice, so it was not repeated; give the object a deterministic name (not generateName) so a repeat answers AlreadyExists."
        | FailureReason.TlsFailed m ->
            $"The TLS handshake with the API server failed: check the cluster CA, the server name and the client certificate in the kubeconfig.{said m}"
        | FailureReason.Rejected(status, reason, m) ->
            let why =
                match reason with
                | Some r when not (String.IsNullOrWhiteSpace r) -> $" ({r.Trim()})"
                | _ -> ""

            $"The API server answered {status}{why}, which retrying cannot fix.{said m}"
        | FailureReason.Unrecognised m -> $"The call failed in a way that was not recognised, so it was not retried.{said m}"

/// Functions on decisions.
[<RequireQualifiedAccess>]
module Decision =

    /// The decision in words, for logs and exception messages.
    let explain (decision: Decision) : string =
        match decision with
        | Decision.Retry None -> "Retry with back-off."
        | Decision.Retry(Some after) -> $"Retry, waiting at least {after} as the server asked."
        | Decision.Resync -> "The watch's resourceVersion expired (410 Gone): list again and watch from the new resourceVersion."
        | Decision.AlreadyDone -> "Already done: the object was already deleted, or our create had already been applied."
        | Decision.Fail reason -> FailureReason.explain reason

/// Classification of failed Kubernetes API calls.
[<RequireQualifiedAccess>]
module Retry =

    let private clean (text: string option) =
        match text with
        | Some t when not (String.IsNullOrWhiteSpace t) -> Some(t.Trim())
        | _ -> None

    let private nonNegative (span: TimeSpan option) =
        span |> Option.map (fun s -> if s < TimeSpan.Zero then TimeSpan.Zero else s)

    /// Whether the call may be repeated after an ambiguous failure.
    let isRepeatable (error: ApiError) : bool =
        Verb.isIdempotent error.permission.verb || error.madeIdempotent

    /// What to do about a failed call. Total: any description, however odd, gets a decision.
    let classify (error: ApiError) : Decision =
        let p = error.permission
        let message = clean error.message
        let reason = clean error.reason

        let reasonIs (name: string) =
            match reason with
            | Some r -> String.Equals(r, name, StringComparison.OrdinalIgnoreCase)
            | None -> false

        let retryAfter = nonNegative error.retryAfter
        let expired = reasonIs "Expired" || reasonIs "Gone"

        let ambiguous (cause: string) =
            if isRepeatable error then
                Decision.Retry retryAfter
            else
                Decision.Fail(FailureReason.NotRepeatable(p, cause))

        match error.status with
        | Some 401 -> Decision.Fail(FailureReason.Unauthenticated(p, message))
        | Some 403 -> Decision.Fail(FailureReason.Forbidden(p, message))
        | Some 410 -> Decision.Resync
        | Some _ when expired -> Decision.Resync
        | Some 404 ->
            match p.verb with
            | Verb.Delete
            | Verb.DeleteCollection -> Decision.AlreadyDone
            | Verb.Get
            | Verb.List
            | Verb.Watch
            | Verb.Create
            | Verb.Update
            | Verb.Patch
            | Verb.Other _ -> Decision.Fail(FailureReason.NotFound(p, message))
        | Some 409 when p.verb = Verb.Create && reasonIs "AlreadyExists" -> Decision.AlreadyDone
        | Some 409 -> Decision.Fail(FailureReason.Conflict(p, message))
        | Some(400 | 422 as status) -> Decision.Fail(FailureReason.Invalid(status, error.causes, message))
        // The server refused the request before processing it: safe to repeat for any call.
        | Some 408
        | Some 429 -> Decision.Retry retryAfter
        | Some 503 when retryAfter.IsSome -> Decision.Retry retryAfter
        | Some(500 | 502 | 503 | 504 as status) -> ambiguous $"HTTP {status}"
        | Some status -> Decision.Fail(FailureReason.Rejected(status, reason, message))
        | None when expired -> Decision.Resync
        | None ->
            match error.transport with
            | Some TransportFailure.Refused
            | Some TransportFailure.Dns -> Decision.Retry retryAfter
            | Some TransportFailure.Reset -> ambiguous "connection reset"
            | Some TransportFailure.Timeout -> ambiguous "timed out"
            | Some TransportFailure.Other -> ambiguous "transport failure"
            | Some TransportFailure.Tls -> Decision.Fail(FailureReason.TlsFailed message)
            | None -> Decision.Fail(FailureReason.Unrecognised message)

    /// Whether Toil's `is_retryable_kubernetes_error` question gets a yes: the call should be repeated.
    let isRetryable (error: ApiError) : bool =
        match classify error with
        | Decision.Retry _ -> true
        | Decision.Resync
        | Decision.AlreadyDone
        | Decision.Fail _ -> false

/// Functions on what a client has seen of its API server.
[<RequireQualifiedAccess>]
module ServerHistory =

    /// A client that has made no call yet.
    let empty: ServerHistory = { granted = Set.empty; lastUnreachable = None }

    /// How long after the API server was last unreachable any 403 is taken for a restart's passing refusal. A
    /// kube-apiserver fills its RBAC caches within seconds of serving; a minute leaves room for a loaded one.
    let restartWindow: TimeSpan = TimeSpan.FromMinutes 1.0

    /// Whether a failure means the API server could not be reached or could not answer.
    let isUnreachable (error: ApiError) : bool =
        match error.status, error.transport with
        | Some(500 | 502 | 503 | 504), _ -> true
        | Some _, _ -> false
        | None,
          Some(TransportFailure.Refused | TransportFailure.Reset | TransportFailure.Timeout | TransportFailure.Dns | TransportFailure.Other) ->
            true
        | None, Some TransportFailure.Tls
        | None, None -> false

    /// The history after a call that exercised the permission succeeded.
    let succeeded (permission: Permission) (history: ServerHistory) : ServerHistory =
        if Set.contains permission history.granted then
            history
        else
            { history with granted = Set.add permission history.granted }

    /// The history after a call failed at `now`.
    let failed (now: TimeSpan) (error: ApiError) (history: ServerHistory) : ServerHistory =
        if isUnreachable error then
            { history with lastUnreachable = Some now }
        else
            history

    /// Whether a 403 is very likely a restarting API server's passing refusal rather than a missing permission: the
    /// permission was used successfully before, or the server was unreachable within the restart window. A quota or
    /// admission refusal (also 403) is never taken for one: it says what is wrong, and waiting does not change it.
    let isPassingRefusal (history: ServerHistory) (now: TimeSpan) (error: ApiError) : bool =
        let admission =
            match error.message with
            | Some m -> m.Contains("exceeded quota", StringComparison.OrdinalIgnoreCase)
            | None -> false

        let recentlyUnreachable =
            match history.lastUnreachable with
            | Some at -> now - at >= TimeSpan.Zero && now - at <= restartWindow
            | None -> false

        error.status = Some 403
        && not admission
        && (Set.contains error.permission history.granted || recentlyUnreachable)

/// The pure back-off schedule.
[<RequireQualifiedAccess>]
module Backoff =

    /// A sensible default for API calls: 250 ms doubling to 30 s, within 2 minutes.
    let standard: BackoffPolicy =
        { firstDelay = TimeSpan.FromMilliseconds 250.0
          maxDelay = TimeSpan.FromSeconds 30.0
          budget = TimeSpan.FromMinutes 2.0 }

    /// A checked policy: the first delay is positive, the cap is at least the first delay, the budget is not negative.
    let policy (firstDelay: TimeSpan) (maxDelay: TimeSpan) (budget: TimeSpan) : Result<BackoffPolicy, BackoffPolicyError> =
        if firstDelay <= TimeSpan.Zero then
            Error(BackoffPolicyError.FirstDelayNotPositive firstDelay)
        elif maxDelay < firstDelay then
            Error(BackoffPolicyError.MaxDelayBelowFirstDelay(firstDelay, maxDelay))
        elif budget < TimeSpan.Zero then
            Error(BackoffPolicyError.BudgetNegative budget)
        else
            Ok
                { firstDelay = firstDelay
                  maxDelay = maxDelay
                  budget = budget }

    /// What is wrong with a policy and how to fix it.
    let explainError (error: BackoffPolicyError) : string =
        match error with
        | BackoffPolicyError.FirstDelayNotPositive d -> $"The first retry delay must be positive, not {d}."
        | BackoffPolicyError.MaxDelayBelowFirstDelay(first, cap) ->
            $"The maximum retry delay ({cap}) must be at least the first delay ({first})."
        | BackoffPolicyError.BudgetNegative b -> $"The retry budget must not be negative, not {b}."

    /// A number in [0, 1) determined by the seed and the attempt (SplitMix64's finaliser), standing in for randomness.
    let jitter (seed: uint64) (attempt: int) : float =
        let mutable z = seed + (uint64 (uint32 attempt) + 1UL) * 0x9E3779B97F4A7C15UL
        z <- (z ^^^ (z >>> 30)) * 0xBF58476D1CE4E5B9UL
        z <- (z ^^^ (z >>> 27)) * 0x94D049BB133111EBUL
        z <- z ^^^ (z >>> 31)
        float (z >>> 11) / 9007199254740992.0

    /// The computed delay after the given failed attempt (1 for the first): the first delay doubled per attempt,
    /// capped, then "equal jitter": half fixed, half drawn from the seed. Never above the cap.
    let delay (policy: BackoffPolicy) (attempt: int) (seed: uint64) : TimeSpan =
        let cap = max 0L policy.maxDelay.Ticks
        let first = min cap (max 0L policy.firstDelay.Ticks)

        let rec grow (ticks: int64) (doublings: int) =
            if doublings <= 0 || ticks = 0L || ticks >= cap then
                min ticks cap
            elif ticks > Int64.MaxValue / 2L then
                cap
            else
                grow (ticks * 2L) (doublings - 1)

        let exponential = grow first (max 0 (attempt - 1))
        let half = exponential / 2L
        let spread = exponential - half
        // Clamped: a float near 2^63 converts back to an int64 out of range.
        let drawn = min spread (max 0L (int64 (float spread * jitter seed attempt)))
        TimeSpan.FromTicks(min cap (half + drawn))

    /// How long to wait before repeating a call, or `None` to give up: only `Retry` decisions are repeated; the
    /// delay is the computed one, raised to the server's `Retry-After` (never undercut); and the next attempt must
    /// start within the budget, counted from the first attempt's start (`elapsed` is the time since then).
    let nextDelay
        (policy: BackoffPolicy)
        (attempt: int)
        (seed: uint64)
        (elapsed: TimeSpan)
        (decision: Decision)
        : TimeSpan option =
        match decision with
        | Decision.Resync
        | Decision.AlreadyDone
        | Decision.Fail _ -> None
        | Decision.Retry retryAfter ->
            let computed = (delay policy attempt seed).Ticks

            let wait =
                match retryAfter with
                | Some after -> max computed (max 0L after.Ticks)
                | None -> computed

            let remaining = max 0L policy.budget.Ticks - max 0L elapsed.Ticks

            if wait <= remaining then
                Some(TimeSpan.FromTicks wait)
            else
                None

/// What to do after one failed attempt of a call, in the light of what the client has seen of its API server.
[<RequireQualifiedAccess>]
module Attempt =

    /// The decision for a failure: a passing refusal (see `ServerHistory.isPassingRefusal`) is retried, anything
    /// else is classified as `Retry.classify` does.
    let classify (history: ServerHistory) (now: TimeSpan) (error: ApiError) : Decision =
        if ServerHistory.isPassingRefusal history now error then
            Decision.Retry error.retryAfter
        else
            Retry.classify error

    /// The decision for a failed attempt and the wait before the next one (`None`: no next attempt). When the retry
    /// budget runs out on a refusal that was retried as passing, the call fails as that refusal: a 403 then names
    /// the permission and the rule to grant, as it would have at once without the history.
    let next
        (policy: BackoffPolicy)
        (history: ServerHistory)
        (now: TimeSpan)
        (attempt: int)
        (seed: uint64)
        (elapsed: TimeSpan)
        (error: ApiError)
        : Decision * TimeSpan option =
        let decision = classify history now error

        match Backoff.nextDelay policy attempt seed elapsed decision with
        | Some wait -> decision, Some wait
        | None ->
            match decision, Retry.classify error with
            | Decision.Retry _, (Decision.Fail _ as final) -> final, None
            | _ -> decision, None
