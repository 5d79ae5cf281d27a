namespace HybridBatch.Core

open System

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

/// The pure back-off schedule.
[<RequireQualifiedAccess>]
module Backoff =

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
