module HybridBatch.Properties.RetryProperties

open System
open FsCheck
open FsCheck.FSharp
open HybridBatch.Core

let private isRetry (decision: Decision) =
    match decision with
    | Decision.Retry _ -> true
    | Decision.Resync
    | Decision.AlreadyDone
    | Decision.Fail _ -> false

let private contains (part: string) (whole: string) =
    whole.Contains(part, StringComparison.Ordinal)

/// Failures that leave it unknown whether the server applied the request.
let private ambiguousFailure: Gen<ApiError> =
    gen {
        let! error = RetryGenerators.apiError

        let! status, transport =
            Gen.oneof
                [ Gen.elements [ 500; 502; 503; 504 ] |> Gen.map (fun s -> Some s, None)
                  Gen.elements [ TransportFailure.Reset; TransportFailure.Timeout; TransportFailure.Other ]
                  |> Gen.map (fun t -> None, Some t) ]

        let! verb = Gen.elements [ Verb.Create; Verb.Patch; Verb.Other "escalate" ]

        return
            { error with
                status = status
                transport = transport
                // 503 with Retry-After is the server declining the request, not an ambiguous failure.
                retryAfter = None
                // An expired watch wins over the status, which is not what this property is about.
                reason = None
                permission = { error.permission with verb = verb } }
    }

[<CoreProperty>]
let ``every failure gets a decision, and classifying it or scheduling its retry never throws`` () =
    // FsCheck's derived generators, not the plausible ones: nulls, odd statuses, negative and huge spans.
    let raw = ArbMap.defaults |> ArbMap.arbitrary<ApiError>
    let rawPolicy = ArbMap.defaults |> ArbMap.arbitrary<BackoffPolicy>
    let rawInputs = ArbMap.defaults |> ArbMap.arbitrary<int * uint64 * TimeSpan>

    Prop.forAll raw (fun error ->
        Prop.forAll rawPolicy (fun policy ->
            Prop.forAll rawInputs (fun (attempt, seed, elapsed) ->
                let decision = Retry.classify error
                let explained = Decision.explain decision
                let next = Backoff.nextDelay policy attempt seed elapsed decision

                Prop.label "the decision is explained in words" (not (String.IsNullOrWhiteSpace explained))
                |> Prop.label (sprintf "decision %A" decision)
                |> fun p ->
                    p
                    .&. Prop.label
                        "a scheduled delay is never negative"
                        (match next with
                         | Some d -> d >= TimeSpan.Zero
                         | None -> true))))

[<CoreProperty>]
let ``a delay never exceeds the cap unless the server's Retry-After asks for more``
    (policy: BackoffPolicy)
    (attempt: int)
    (seed: uint64)
    (retryAfter: TimeSpan option)
    =
    let computed = Backoff.delay policy attempt seed

    let next =
        Backoff.nextDelay policy attempt seed TimeSpan.Zero (Decision.Retry retryAfter)

    let bound =
        match retryAfter with
        | Some after -> max policy.maxDelay after
        | None -> policy.maxDelay

    Prop.label "the computed delay is within [0, cap]" (computed >= TimeSpan.Zero && computed <= policy.maxDelay)
    .&. Prop.label
            "the scheduled delay is within the cap or the Retry-After"
            (match next with
             | Some d -> d <= bound
             | None -> true)

[<CoreProperty>]
let ``the total retry time never exceeds the budget`` (policy: BackoffPolicy) (seed: uint64) =
    let steps =
        Gen.listOf (Gen.zip (RetryGenerators.span 30_000L) (Gen.optionOf (RetryGenerators.span 60_000L)))
        |> Arb.fromGen

    Prop.forAll steps (fun steps ->
        // Each step: an attempt that ran for `duration`, then failed, asking for `retryAfter`.
        let rec run (attempt: int) (elapsed: TimeSpan) (steps: (TimeSpan * TimeSpan option) list) (ok: bool) =
            match steps with
            | [] -> ok
            | (duration, retryAfter) :: rest ->
                let failedAt = elapsed + duration

                match Backoff.nextDelay policy attempt seed failedAt (Decision.Retry retryAfter) with
                | None -> ok
                | Some wait ->
                    let nextStart = failedAt + wait
                    run (attempt + 1) nextStart rest (ok && nextStart <= policy.budget)

        Prop.label "every retry starts within the budget" (run 1 TimeSpan.Zero steps true))

[<CoreProperty>]
let ``Retry-After is never undercut`` (error: ApiError) (policy: BackoffPolicy) (attempt: int) (seed: uint64) =
    let elapsed = TimeSpan.Zero
    let decision = Retry.classify error

    let honoured =
        match decision, error.retryAfter with
        | Decision.Retry(Some passed), Some asked -> passed = asked
        | Decision.Retry None, Some _ -> false
        | _ -> true

    let waited =
        match error.retryAfter, Backoff.nextDelay policy attempt seed elapsed decision with
        | Some asked, Some wait -> wait >= asked
        | _ -> true

    Prop.label "a retry decision carries the server's Retry-After" honoured
    .&. Prop.label "the scheduled delay is at least the Retry-After" waited

[<CoreProperty>]
let ``a call that is not safe to repeat is never repeated after an ambiguous failure unless the shell made it idempotent``
    ()
    =
    Prop.forAll (Arb.fromGen ambiguousFailure) (fun error ->
        let blind = Retry.classify { error with madeIdempotent = false }
        let madeSafe = Retry.classify { error with madeIdempotent = true }

        let refused =
            match blind with
            | Decision.Fail(FailureReason.NotRepeatable _) -> true
            | _ -> false

        Prop.label "without help it fails as not repeatable" refused
        .&. Prop.label "made idempotent, it is retried" (isRetry madeSafe))

[<CoreProperty>]
let ``without a history of the server, 401 and 403 are never retried and the message names the missing permission`` (error: ApiError) (denied: bool) =
    let error =
        { error with
            status = Some(if denied then 403 else 401)
            transport = None }

    let decision = Retry.classify error
    let message = Decision.explain decision
    let p = error.permission

    let names =
        contains (Verb.name p.verb) message
        && contains (Permission.resourceName p) message
        && (match p.inNamespace with
            | Some ns -> contains ns message
            | None -> contains "cluster" message)

    Prop.label "never retried" (not (isRetry decision))
    .&. Prop.label
            "it fails"
            (match decision with
             | Decision.Fail _ -> true
             | _ -> false)
    .&. Prop.label (sprintf "the message names verb, resource and scope: %s" message) names

[<CoreProperty>]
let ``410 Gone or an expired resourceVersion means resync`` (error: ApiError) (gone: bool) =
    let error =
        if gone then
            { error with
                status = Some 410
                transport = None }
        else
            { error with
                reason = Some "Expired"
                status =
                    match error.status with
                    | Some(401 | 403) -> None
                    | other -> other }

    Prop.label "resync" (Retry.classify error = Decision.Resync)

[<CoreProperty>]
let ``404 on a delete and 409 AlreadyExists on a create are already done`` (error: ApiError) (delete: bool) =
    let error =
        if delete then
            { error with
                status = Some 404
                reason = Some "NotFound"
                permission = { error.permission with verb = Verb.Delete } }
        else
            { error with
                status = Some 409
                reason = Some "AlreadyExists"
                permission = { error.permission with verb = Verb.Create } }

    Prop.label "already done" (Retry.classify error = Decision.AlreadyDone)

[<CoreProperty>]
let ``429, and 503 with Retry-After, are retried for every call`` (error: ApiError) (throttled: bool) (wait: TimeSpan) =
    let error =
        { error with
            status = Some(if throttled then 429 else 503)
            reason = None
            retryAfter = Some wait }

    // A negative wait (a clock-skewed HTTP date) counts as no wait.
    let expected = if wait < TimeSpan.Zero then TimeSpan.Zero else wait
    Prop.label "retried with the server's wait" (Retry.classify error = Decision.Retry(Some expected))

[<CoreProperty>]
let ``400 and 422 name every field the server listed`` (error: ApiError) (unprocessable: bool) =
    let error =
        { error with
            status = Some(if unprocessable then 422 else 400)
            reason = Some "Invalid" }

    let message = Decision.explain (Retry.classify error)

    let named =
        error.causes
        |> List.forall (fun c -> String.IsNullOrWhiteSpace c.field || contains (c.field.Trim()) message)

    Prop.label "not retried" (not (isRetry (Retry.classify error)))
    .&. Prop.label (sprintf "every field is named: %s" message) named

[<CoreProperty>]
let ``the same seed gives the same delay, and the delay is at least half the capped exponential``
    (policy: BackoffPolicy)
    (attempt: PositiveInt)
    (seed: uint64)
    =
    let attempt = min attempt.Get 80
    let first = Backoff.delay policy attempt seed
    let again = Backoff.delay policy attempt seed
    let cap = policy.maxDelay.Ticks

    let exponential =
        Seq.init (attempt - 1) id
        |> Seq.fold (fun ticks _ -> if ticks >= cap then cap else min cap (ticks * 2L)) (min cap policy.firstDelay.Ticks)

    Prop.label "deterministic" (first = again)
    .&. Prop.label "at least half the capped exponential" (first.Ticks >= exponential / 2L)

/// A 403 that is an authorization refusal (not a quota's), as a restarting API server gives it too.
let private refusal (error: ApiError) =
    { error with
        status = Some 403
        transport = None
        reason = Some "Forbidden"
        message = Some "jobs.batch is forbidden: cannot create resource"
        retryAfter = None }

let private namesPermission (p: Permission) (message: string) =
    contains (Verb.name p.verb) message
    && contains (Permission.resourceName p) message
    && (match p.inNamespace with
        | Some ns -> contains ns message
        | None -> contains "cluster" message)

/// Runs one call against a server that refuses the first `refusals` attempts (each taking `duration`), then
/// accepts: the attempt that succeeded, or the decision that ended the call, and every attempt's start.
let private callAgainst
    (policy: BackoffPolicy)
    (history: ServerHistory)
    (seed: uint64)
    (duration: TimeSpan)
    (refusals: int)
    (error: ApiError)
    =
    let rec attempt (n: int) (startedAt: TimeSpan) (starts: TimeSpan list) =
        let starts = startedAt :: starts
        let failedAt = startedAt + duration

        if n > refusals then
            Ok n, List.rev starts
        else
            match Attempt.next policy history failedAt n seed failedAt error with
            | _, Some wait -> attempt (n + 1) (failedAt + wait) starts
            | decision, None -> Error decision, List.rev starts

    attempt 1 TimeSpan.Zero []

[<CoreProperty>]
let ``a 403 for a permission never granted fails at once, naming it, when the server was not just unreachable``
    (error: ApiError)
    (policy: BackoffPolicy)
    (others: Permission list)
    (outageAgo: TimeSpan option)
    (seed: uint64)
    =
    let error = refusal error
    let now = TimeSpan.FromHours 1.0

    let history =
        { granted = others |> List.filter ((<>) error.permission) |> Set.ofList
          // Never unreachable, or longer ago than the restart window.
          lastUnreachable =
            outageAgo
            |> Option.map (fun ago -> now - ServerHistory.restartWindow - TimeSpan.FromTicks(1L + abs ago.Ticks % TimeSpan.TicksPerHour)) }

    let decision, wait = Attempt.next policy history now 1 seed TimeSpan.Zero error

    Prop.label "no retry is scheduled" wait.IsNone
    .&. Prop.label
            "it fails as Forbidden"
            (match decision with
             | Decision.Fail(FailureReason.Forbidden _) -> true
             | _ -> false)
    .&. Prop.label "the message names verb, resource and scope" (namesPermission error.permission (Decision.explain decision))

[<CoreProperty>]
let ``a permission that was granted and is refused after an outage is retried until the server accepts it`` (error: ApiError) (policy: BackoffPolicy) (seed: uint64) =
    let refusals =
        Gen.choose (1, 6) |> Arb.fromGen

    Prop.forAll refusals (fun refusals ->
        let error = refusal error
        let duration = TimeSpan.FromMilliseconds 50.0
        // A budget that holds the refusals at the longest delays: the server recovers within the budget.
        let policy =
            { policy with
                budget = TimeSpan.FromTicks(int64 (refusals + 1) * (policy.maxDelay + duration).Ticks) }

        let granted =
            { ServerHistory.empty with granted = Set.singleton error.permission }

        let afterOutage =
            { ServerHistory.empty with lastUnreachable = Some TimeSpan.Zero }

        // Just after an outage, a permission not used before is given the restart window, not the whole budget.
        let withinWindow =
            let cap =
                TimeSpan.FromTicks(min policy.maxDelay.Ticks (ServerHistory.restartWindow.Ticks / int64 (refusals + 1) - duration.Ticks))

            { policy with
                maxDelay = cap
                firstDelay = min policy.firstDelay cap
                budget = TimeSpan.FromTicks(int64 (refusals + 1) * (cap + duration).Ticks) }

        let outcome policy history = fst (callAgainst policy history seed duration refusals error)

        Prop.label "a permission used before: the call succeeds" (outcome policy granted = Ok(refusals + 1))
        .&. Prop.label
                "any permission just after an outage: the call succeeds"
                (outcome withinWindow afterOutage = Ok(refusals + 1)))

[<CoreProperty>]
let ``a refusal retried as passing stays within the budget, then fails naming the permission`` (error: ApiError) (policy: BackoffPolicy) (seed: uint64) (duration: TimeSpan) =
    let error = refusal error
    let duration = TimeSpan.FromTicks(abs duration.Ticks % TimeSpan.TicksPerSecond)

    let history =
        { ServerHistory.empty with granted = Set.singleton error.permission }

    // A server that never accepts: the call must end, and no attempt may start after the budget.
    match callAgainst policy history seed duration Int32.MaxValue error with
    | Ok _, _ -> Prop.label "a call refused for ever succeeded" false
    | Error decision, starts ->
        Prop.label "every attempt starts within the budget" (starts |> List.forall (fun s -> s <= policy.budget))
        .&. Prop.label
                "it ends as Forbidden"
                (match decision with
                 | Decision.Fail(FailureReason.Forbidden _) -> true
                 | _ -> false)
        .&. Prop.label "the message names verb, resource and scope" (namesPermission error.permission (Decision.explain decision))

[<CoreProperty>]
let ``a quota refusal is never taken for a restart's passing one`` (error: ApiError) (now: TimeSpan) =
    let error =
        { refusal error with
            message = Some "jobs.batch \"x\" is forbidden: exceeded quota: q, requested: pods=1, used: pods=1, limited: pods=1" }

    let history =
        { granted = Set.singleton error.permission
          lastUnreachable = Some now }

    Prop.label "classified as without the history" (Attempt.classify history now error = Retry.classify error)

[<CoreProperty>]
let ``the history changes only on what it records`` (error: ApiError) (permission: Permission) (now: TimeSpan) =
    let history = ServerHistory.empty
    let after = ServerHistory.failed now error history

    Prop.label "an unreachable server is remembered" (ServerHistory.isUnreachable error = (after.lastUnreachable = Some now))
    .&. Prop.label "a failure grants nothing" after.granted.IsEmpty
    .&. Prop.label
            "a success is remembered once"
            (let once = ServerHistory.succeeded permission history
             obj.ReferenceEquals(ServerHistory.succeeded permission once, once) && once.granted.Contains permission)
