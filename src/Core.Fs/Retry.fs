namespace HybridBatch.Core

open System

// Retry classification for Kubernetes API calls: what Toil's `is_retryable_kubernetes_error` decides, and better.
// Toil retries every ApiException (minus a per-call list such as 404/409/422) for 32 s, or nothing at all; here
// each failure is classified by status, Kubernetes reason, transport failure and whether the call is safe to
// repeat, and the back-off is a pure function of its inputs (the jitter seed and the elapsed time are arguments).

/// Why a failed call is given up on, with what the user can do about it.
[<RequireQualifiedAccess>]
type FailureReason =
    /// 401: the credentials were not accepted.
    | Unauthenticated of permission: Permission * serverMessage: string option
    /// 403: the identity lacks the permission.
    | Forbidden of permission: Permission * serverMessage: string option
    /// 403 from the quota admission: a ResourceQuota of the namespace has no room for the object now. Not the job's
    /// failure: the job waits for room (see `Lifecycle`), unless it alone asks for more than the quota allows.
    | QuotaExceeded of permission: Permission * refusal: QuotaRefusal
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
        | FailureReason.QuotaExceeded(p, refusal) ->
            $"The API server refused to {Permission.describe p} (403): {Quota.explain refusal}; it is tried again when room comes back.{said (Some refusal.message)}"
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
        | Some 403 ->
            match Quota.ofMessage message retryAfter with
            | Some refusal -> Decision.Fail(FailureReason.QuotaExceeded(p, refusal))
            | None -> Decision.Fail(FailureReason.Forbidden(p, message))
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
