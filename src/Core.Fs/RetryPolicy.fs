namespace HybridBatch.Core

open System
open System.Globalization
open HybridBatch.Core.JobState

// Retry policies of jobs: whether a job that ended is run again, and with how much memory. Users know the idea as
// Nextflow's `errorStrategy 'retry'` + `maxRetries` and Argo's `retryStrategy` (`limit`, `retryPolicy`); here a policy
// lists the batch system's exit reasons it retries (Toil's names), how many attempts a job gets in all, and how its
// memory grows after an attempt killed for memory. `attempts` counts every attempt, the first included: attempts 3 is
// Nextflow's maxRetries 2 and Argo's limit 2. The jobs file and TES both check policies and decide with this module.

/// The bounds a retry policy's values are checked against, and the names its messages use.
[<RequireQualifiedAccess>]
module RetryPolicyTerms =

    /// The most attempts a policy may give a job: more is a loop, not a retry.
    [<Literal>]
    let MaxAttempts = 100

    /// The largest memory factor.
    [<Literal>]
    let MaxFactor = 100

    /// The largest memory maximum, 2^61 - 1 bytes (the batch system's largest amount).
    [<Literal>]
    let MaxBytes = 2305843009213693951L

    /// An exit reason as a policy names it: Toil's names in lower case (finished, failed, lost, killed, error, memlimit).
    let exitReason (reason: ExitReason) =
        match reason with
        | ExitReason.Finished -> "finished"
        | ExitReason.Failed -> "failed"
        | ExitReason.Lost -> "lost"
        | ExitReason.Killed -> "killed"
        | ExitReason.Error -> "error"
        | ExitReason.MemLimit -> "memlimit"

    /// Bytes in Kubernetes' canonical binary form (64Mi).
    let bytes (bytes: int64) =
        Quantity.format (Quantity.ofInt64 BinarySI bytes)

/// An exit reason a policy may retry: a retry can help with these. `finished` is a success and `killed` was asked for.
[<RequireQualifiedAccess>]
type RetryOn =
    /// The command exited non-zero.
    | Failed
    /// The pod or Job vanished, was evicted or deleted, or its node was lost.
    | Lost
    /// The job could not run (create failed, image missing, unschedulable).
    | Error
    /// The container exceeded its memory limit.
    | MemLimit

/// How a job's memory grows after an attempt that ended `MemLimit`.
type MemoryGrowth =
    {
      /// The next attempt asks for the last one's memory times this, rounded up to whole bytes (above 1).
      factor: decimal
      /// Bytes: no attempt asks for more.
      max: int64 }

/// A checked retry policy (`RetryPolicy.check` makes one).
type RetryPolicy =
    private
        {
          /// The reasons retried, in the order first given, each once.
          reasons: RetryOn list
          /// Attempts in all, the first included: 1 to `RetryPolicy.MaxAttempts`.
          attemptCount: int
          /// How memory grows after an out-of-memory kill; None: every attempt asks for the same memory.
          growth: MemoryGrowth option }

/// A retry policy as a user wrote it: text, before any check. None: the field was not given.
type RetryPolicyInput =
    {
      /// Reason names; each item may hold several, separated by commas or spaces ("memlimit, lost").
      on: string list option
      /// Attempts in all, the first included.
      attempts: string option
      /// The memory factor, such as "2" or "1.5".
      memoryFactor: string option
      /// The most memory an attempt may ask for, a Kubernetes quantity such as "8Gi".
      memoryMax: string option
      /// Bytes the first attempt asks for (the job's memory request): the maximum may not be below it.
      firstMemory: int64 }

/// A field of a retry policy, as the jobs file spells it under `retry:`.
[<RequireQualifiedAccess>]
type RetryField =
    | On
    | Attempts
    | MemoryFactor
    | MemoryMax

    /// The field's path under `retry:` in a jobs file: on, attempts, memory.factor, memory.max.
    member this.Name =
        match this with
        | On -> "on"
        | Attempts -> "attempts"
        | MemoryFactor -> "memory.factor"
        | MemoryMax -> "memory.max"

/// Why a retry policy cannot be used; `Field` says which field, `Value` what it was, `Message` what is allowed.
type RetryPolicyError =
    /// A reason that is not an exit reason.
    | UnknownReason of reason: string
    /// `finished` or `killed`, which are never retried.
    | NotRetriable of reason: string
    /// `on` is missing or lists nothing (given as written, "" when missing or an empty list).
    | NoReasons of given: string
    /// `attempts` is missing.
    | MissingAttempts
    /// `attempts` is not a whole number from 1 to `RetryPolicy.MaxAttempts`.
    | AttemptsOutOfRange of attempts: string
    /// The memory factor is not a number above 1 and at most `RetryPolicy.MaxFactor`.
    | FactorOutOfRange of factor: string
    /// Memory growth without a maximum.
    | MissingMemoryMax
    /// The maximum is not an amount of bytes.
    | InvalidMemoryMax of max: string * reason: string
    /// The maximum is below the memory the first attempt asks for.
    | MemoryMaxBelowRequest of max: string * request: int64
    /// Memory growth is given but `memlimit` is not retried, so it would never apply.
    | GrowthWithoutMemLimit of on: string

    /// The field that is wrong.
    member this.Field =
        match this with
        | UnknownReason _
        | NotRetriable _
        | NoReasons _
        | GrowthWithoutMemLimit _ -> RetryField.On
        | MissingAttempts
        | AttemptsOutOfRange _ -> RetryField.Attempts
        | FactorOutOfRange _ -> RetryField.MemoryFactor
        | MissingMemoryMax
        | InvalidMemoryMax _
        | MemoryMaxBelowRequest _ -> RetryField.MemoryMax

    /// The value given, as written ("" when the field is missing).
    member this.Value =
        match this with
        | UnknownReason value
        | NotRetriable value
        | NoReasons value
        | GrowthWithoutMemLimit value
        | AttemptsOutOfRange value
        | FactorOutOfRange value
        | InvalidMemoryMax(value, _)
        | MemoryMaxBelowRequest(value, _) -> value
        | MissingAttempts
        | MissingMemoryMax -> ""

    /// The value, what is wrong with it and what is allowed (the caller names the field in its own terms).
    member this.Message =
        let allowed = "failed, lost, error, memlimit"

        match this with
        | UnknownReason reason ->
            let hint =
                match reason.ToLowerInvariant() with
                | "oom"
                | "oomkilled"
                | "memory" -> " (an out-of-memory kill is memlimit)"
                | _ -> ""

            $"'%s{reason}' is not an exit reason%s{hint}: list some of %s{allowed}."
        | NotRetriable reason ->
            $"'%s{reason}' is never retried (finished is a success, killed was asked for): list some of %s{allowed}."
        | NoReasons "" -> $"missing or empty: list the exit reasons to retry, some of %s{allowed}."
        | NoReasons given -> $"'%s{given}' lists no exit reason: list some of %s{allowed}."
        | MissingAttempts ->
            $"missing: give the number of attempts in all, the first included, from 1 to %d{RetryPolicyTerms.MaxAttempts} (2 = one retry)."
        | AttemptsOutOfRange attempts ->
            $"'%s{attempts}' is not a number of attempts: give the attempts in all, the first included, a whole number from 1 to %d{RetryPolicyTerms.MaxAttempts} (2 = one retry)."
        | FactorOutOfRange factor ->
            $"'%s{factor}' is not a memory factor: give a number above 1 and at most %d{RetryPolicyTerms.MaxFactor}, such as 2 or 1.5 (each retry after an out-of-memory kill asks for the last memory times it)."
        | MissingMemoryMax ->
            "missing: give the most memory an attempt may ask for, an amount of bytes such as 8Gi, at least the job's memory request."
        | InvalidMemoryMax(max, reason) ->
            $"'%s{max}' is not an amount of bytes (%s{reason}): write e.g. 8Gi, 512Mi or 1G, at least the job's memory request."
        | MemoryMaxBelowRequest(max, request) ->
            $"'%s{max}' is below the job's memory request, %s{Quantity.format (Quantity.ofInt64 BinarySI request)}: give a maximum at least that large."
        | GrowthWithoutMemLimit on ->
            $"'%s{on}' does not list memlimit, so the memory growth would never apply: add memlimit, or leave the memory growth out."

/// How the last attempt of a job ended, as far as a retry depends on it.
type LastAttempt =
    {
      /// Why it ended.
      reason: ExitReason
      /// Bytes it asked for.
      memory: int64 }

/// Why a job is not run again.
[<RequireQualifiedAccess>]
type GiveUp =
    /// It finished: nothing to retry.
    | Finished
    /// It was killed on request.
    | Killed
    /// The policy does not list the reason it ended.
    | NotListed of ExitReason
    /// It had every attempt the policy gives.
    | AttemptsUsed of attempts: int
    /// It ran out of memory with the policy's maximum memory.
    | MemoryAtMax of max: int64

    /// Why the job is not run again, in words.
    member this.Message =
        match this with
        | Finished -> "finished: nothing to retry"
        | Killed -> "killed on request: not retried"
        | NotListed reason -> $"not retried: the retry policy does not list %s{RetryPolicyTerms.exitReason reason}"
        | AttemptsUsed attempts -> $"not retried: all %d{attempts} attempts used"
        | MemoryAtMax max ->
            $"not retried: out of memory at %s{RetryPolicyTerms.bytes max}, the retry policy's maximum memory"

/// What happens after an attempt of a job ends.
[<RequireQualifiedAccess>]
type NextAttempt =
    /// Run the job again, asking for this many bytes of memory.
    | Retry of memory: int64
    /// Do not run it again.
    | GiveUp of GiveUp

/// Checking retry policies and deciding, after each attempt, whether a job runs again.
[<RequireQualifiedAccess; CompilationRepresentation(CompilationRepresentationFlags.ModuleSuffix)>]
module RetryPolicy =

    /// The exit reasons a policy may list: failed, lost, error, memlimit.
    let reasonNames = [ "failed"; "lost"; "error"; "memlimit" ]

    /// The reason as a policy names it.
    let reasonName (reason: RetryOn) =
        match reason with
        | RetryOn.Failed -> "failed"
        | RetryOn.Lost -> "lost"
        | RetryOn.Error -> "error"
        | RetryOn.MemLimit -> "memlimit"

    /// The retried reason an exit reason is, if a policy can retry it.
    let ofExitReason (reason: ExitReason) : RetryOn option =
        match reason with
        | ExitReason.Failed -> Some RetryOn.Failed
        | ExitReason.Lost -> Some RetryOn.Lost
        | ExitReason.Error -> Some RetryOn.Error
        | ExitReason.MemLimit -> Some RetryOn.MemLimit
        | ExitReason.Finished
        | ExitReason.Killed -> None

    /// The reasons retried, in the order first given.
    let on (policy: RetryPolicy) : RetryOn list = policy.reasons

    /// Attempts in all, the first included.
    let attempts (policy: RetryPolicy) : int = policy.attemptCount

    /// How memory grows after an out-of-memory kill, if it does.
    let memory (policy: RetryPolicy) : MemoryGrowth option = policy.growth

    let private separators = [| ','; ' '; '\t' |]

    let private parseReasons (items: string list) : Result<RetryOn list, RetryPolicyError> =
        let words =
            items
            |> List.collect (fun item -> item.Split(separators, StringSplitOptions.RemoveEmptyEntries) |> List.ofArray)

        let parse (word: string) =
            match word.ToLowerInvariant() with
            | "failed" -> Ok RetryOn.Failed
            | "lost" -> Ok RetryOn.Lost
            | "error" -> Ok RetryOn.Error
            | "memlimit" -> Ok RetryOn.MemLimit
            | "finished"
            | "killed" -> Error(NotRetriable word)
            | _ -> Error(UnknownReason word)

        let rec collect acc remaining =
            match remaining with
            | [] -> Ok(List.rev acc |> List.distinct)
            | word :: rest ->
                match parse word with
                | Ok reason -> collect (reason :: acc) rest
                | Error error -> Error error

        match collect [] words with
        | Ok [] -> Error(NoReasons(String.Join(", ", items)))
        | result -> result

    let private parseAttempts (text: string) =
        match Int32.TryParse(text.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture) with
        | true, n when n >= 1 && n <= RetryPolicyTerms.MaxAttempts -> Ok n
        | _ -> Error(AttemptsOutOfRange text)

    let private parseFactor (text: string) =
        match Decimal.TryParse(text.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture) with
        | true, f when f > 1m && f <= decimal RetryPolicyTerms.MaxFactor -> Ok f
        | _ -> Error(FactorOutOfRange text)

    let private parseMax (text: string) (firstMemory: int64) =
        match Quantity.parseNonNegative (text.Trim()) with
        | Error error ->
            let reason =
                match error with
                | NegativeQuantity _ -> "it is negative"
                | EmptyQuantity -> "it is empty"
                | QuantityOutOfRange _ -> "it is too large"
                | MalformedQuantity _
                | UnknownSuffix _
                | NotFiniteNumber _ -> "not a Kubernetes quantity"

            Error(InvalidMemoryMax(text, reason))
        | Ok quantity ->
            let bytes = (Quantity.nanos quantity + 999_999_999I) / 1_000_000_000I

            if bytes > bigint RetryPolicyTerms.MaxBytes then
                Error(InvalidMemoryMax(text, "it is too large"))
            elif int64 bytes < firstMemory then
                Error(MemoryMaxBelowRequest(text, firstMemory))
            else
                Ok(int64 bytes)

    /// Checks a policy as written, field by field in the order on, attempts, memory.factor, memory.max; the error
    /// names the first field that is wrong, its value and what is allowed. A field given as blank text is a field not
    /// given. `on` and `attempts` are required; the memory growth is optional (its factor defaults to 2, its maximum is
    /// required) and needs `memlimit` in `on`.
    let check (input: RetryPolicyInput) : Result<RetryPolicy, RetryPolicyError> =
        // A field written with no value is a field not given.
        let given (text: string option) =
            text |> Option.filter (not << String.IsNullOrWhiteSpace)

        let reasons =
            match input.on with
            | None -> Error(NoReasons "")
            | Some items -> parseReasons items

        let attempts () =
            match given input.attempts with
            | None -> Error MissingAttempts
            | Some text -> parseAttempts text

        let growth (reasons: RetryOn list) =
            match given input.memoryFactor, given input.memoryMax with
            | None, None -> Ok None
            | _ when not (List.contains RetryOn.MemLimit reasons) ->
                Error(GrowthWithoutMemLimit(String.Join(", ", List.map reasonName reasons)))
            | factor, max ->
                let factor =
                    match factor with
                    | None -> Ok 2m
                    | Some text -> parseFactor text

                factor
                |> Result.bind (fun factor ->
                    match max with
                    | None -> Error MissingMemoryMax
                    | Some text ->
                        parseMax text input.firstMemory
                        |> Result.map (fun max -> Some { factor = factor; max = max }))

        reasons
        |> Result.bind (fun reasons ->
            attempts ()
            |> Result.bind (fun count ->
                growth reasons
                |> Result.map (fun growth ->
                    { reasons = reasons
                      attemptCount = count
                      growth = growth })))

    /// The memory after an out-of-memory kill at `memory`: times the factor, rounded up, at least a byte more, at
    /// most the maximum.
    let private grow (growth: MemoryGrowth) (memory: int64) =
        let grown = Decimal.Ceiling(decimal (max memory 0L) * growth.factor)

        if grown >= decimal growth.max then
            growth.max
        else
            max (int64 grown) (memory + 1L) |> min growth.max

    /// Decides after an attempt ends whether the job runs again. `attemptsSoFar` counts the attempts made, the one
    /// that just ended included. A finished or killed job is never run again, nor one that ended for a reason the
    /// policy does not list, nor one that had all its attempts. After `MemLimit` the next attempt asks for the last
    /// memory times the factor, at most the maximum; one that ran out of memory at the maximum is not run again.
    /// After any other reason the next attempt asks for the same memory: memory never decreases.
    let next (policy: RetryPolicy) (attemptsSoFar: int) (last: LastAttempt) : NextAttempt =
        match ofExitReason last.reason with
        | None when last.reason = ExitReason.Killed -> NextAttempt.GiveUp GiveUp.Killed
        | None -> NextAttempt.GiveUp GiveUp.Finished
        | Some reason when not (List.contains reason policy.reasons) -> NextAttempt.GiveUp(GiveUp.NotListed last.reason)
        | Some _ when attemptsSoFar >= policy.attemptCount -> NextAttempt.GiveUp(GiveUp.AttemptsUsed policy.attemptCount)
        | Some RetryOn.MemLimit ->
            (match policy.growth with
             | None -> NextAttempt.Retry last.memory
             | Some growth when last.memory >= growth.max -> NextAttempt.GiveUp(GiveUp.MemoryAtMax growth.max)
             | Some growth -> NextAttempt.Retry(grow growth last.memory))
        | Some RetryOn.Failed
        | Some RetryOn.Lost
        | Some RetryOn.Error -> NextAttempt.Retry last.memory

    /// The policy in words: "memlimit, lost; 3 attempts; memory ×2 up to 8Gi".
    let describe (policy: RetryPolicy) : string =
        let memory =
            match policy.growth with
            | None -> ""
            | Some growth ->
                $"; memory ×%s{growth.factor.ToString(CultureInfo.InvariantCulture)} up to %s{RetryPolicyTerms.bytes growth.max}"

        let reasons = String.Join(", ", List.map reasonName policy.reasons)
        $"on %s{reasons}; %d{policy.attemptCount} attempts in all%s{memory}"

    /// What happens next, in words: "retrying at 64Mi (attempt 2 of 3)", or why the job is not run again.
    let explain (policy: RetryPolicy) (attemptsSoFar: int) (last: LastAttempt) (decision: NextAttempt) : string =
        match decision with
        | NextAttempt.Retry memory when memory <> last.memory ->
            $"retrying with %s{RetryPolicyTerms.bytes memory} of memory (attempt %d{attemptsSoFar + 1} of %d{policy.attemptCount})"
        | NextAttempt.Retry _ -> $"retrying (attempt %d{attemptsSoFar + 1} of %d{policy.attemptCount})"
        | NextAttempt.GiveUp why -> why.Message
