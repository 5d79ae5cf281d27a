namespace HybridBatch.Core.Api

open System
open System.Collections.Generic
open HybridBatch.Core
open HybridBatch.Core.JobState

/// Why a retry policy cannot be used, for C#.
type RetryPolicyProblem =
    {
      /// The field as the jobs file spells it under `retry:`: on, attempts, memory.factor or memory.max.
      Field: string
      /// The value given, as written; empty when the field is missing.
      Value: string
      /// The value, what is wrong with it and what is allowed.
      Message: string }

/// A checked policy, or why the policy cannot be used: exactly one is set.
type RetryPolicyCheck =
    {
      /// The policy.
      Policy: RetryPolicy | null
      /// The first problem found.
      Problem: RetryPolicyProblem | null }

/// What happens after an attempt of a job ends.
type RetryDecision =
    {
      /// Whether the job runs again.
      Retry: bool
      /// Bytes the next attempt asks for (the last attempt's when there is none).
      Memory: int64
      /// What happens, in words: "retrying with 64Mi of memory (attempt 2 of 3)", or why the job is not run again.
      Message: string }

/// Retry policies of jobs (the jobs file's `retry:`, TES's `hybridbatch_retry_*`), for C#.
[<AbstractClass; Sealed>]
type RetryPolicies =
    static member private Reason(code: ExitCode) : ExitReason =
        match code with
        | ExitCode.Finished -> ExitReason.Finished
        | ExitCode.Failed -> ExitReason.Failed
        | ExitCode.Lost -> ExitReason.Lost
        | ExitCode.Killed -> ExitReason.Killed
        | ExitCode.MemLimit -> ExitReason.MemLimit
        | _ -> ExitReason.Error

    static member private Given(text: string | null) : string option =
        match text with
        | null -> None
        | t -> Some t

    /// The exit reasons a policy may list: failed, lost, error, memlimit.
    static member ReasonNames: IReadOnlyList<string> = RetryPolicy.reasonNames |> Array.ofList :> IReadOnlyList<string>

    /// The most attempts a policy may give.
    static member MaxAttempts = RetryPolicyTerms.MaxAttempts

    /// Checks a policy as written; a null argument is a field not given. Each item of `on` may hold several reasons
    /// separated by commas or spaces. `firstMemory` is the bytes the job's first attempt asks for.
    static member Check
        (
            on: IReadOnlyList<string> | null,
            attempts: string | null,
            memoryFactor: string | null,
            memoryMax: string | null,
            firstMemory: int64
        ) : RetryPolicyCheck =
        let input =
            { on =
                (match on with
                 | null -> None
                 | items -> Some(List.ofSeq items))
              attempts = RetryPolicies.Given attempts
              memoryFactor = RetryPolicies.Given memoryFactor
              memoryMax = RetryPolicies.Given memoryMax
              firstMemory = firstMemory }

        match RetryPolicy.check input with
        | Ok policy -> { Policy = policy; Problem = null }
        | Error error ->
            { Policy = null
              Problem =
                { Field = error.Field.Name
                  Value = error.Value
                  Message = error.Message } }

    /// Decides whether a job runs again after an attempt that ended for `reason` with `memory` bytes;
    /// `attemptsSoFar` counts the attempts made, that one included.
    static member Next(policy: RetryPolicy, attemptsSoFar: int, reason: ExitCode, memory: int64) : RetryDecision =
        let last =
            { reason = RetryPolicies.Reason reason
              memory = memory }
        let decision = RetryPolicy.next policy attemptsSoFar last

        { Retry =
            (match decision with
             | NextAttempt.Retry _ -> true
             | NextAttempt.GiveUp _ -> false)
          Memory =
            (match decision with
             | NextAttempt.Retry memory -> memory
             | NextAttempt.GiveUp _ -> memory)
          Message = RetryPolicy.explain policy attemptsSoFar last decision }

    /// Attempts in all, the first included.
    static member Attempts(policy: RetryPolicy) : int = RetryPolicy.attempts policy

    /// The most memory an attempt may ask for, in bytes; null when memory does not grow.
    static member MaxMemory(policy: RetryPolicy) : Nullable<int64> =
        match RetryPolicy.memory policy with
        | Some growth -> Nullable growth.max
        | None -> Nullable()

    /// The policy in words: "on memlimit, lost; 3 attempts in all; memory ×2 up to 8Gi".
    static member Describe(policy: RetryPolicy) : string = RetryPolicy.describe policy

    /// An exit reason as a policy names it (finished, failed, lost, killed, error, memlimit).
    static member ReasonName(reason: ExitCode) : string =
        RetryPolicyTerms.exitReason (RetryPolicies.Reason reason)
