namespace HybridBatch.Core

open System

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
        let admission = Quota.ofMessage error.message None |> Option.isSome

        let recentlyUnreachable =
            match history.lastUnreachable with
            | Some at -> now - at >= TimeSpan.Zero && now - at <= restartWindow
            | None -> false

        error.status = Some 403
        && not admission
        && (Set.contains error.permission history.granted || recentlyUnreachable)

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
