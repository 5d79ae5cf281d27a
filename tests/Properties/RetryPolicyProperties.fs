/// Properties of jobs' retry policies: how often a job runs, with how much memory, and which policies are refused.
module HybridBatch.Properties.RetryPolicyProperties

open System
open System.Globalization
open FsCheck
open FsCheck.FSharp
open HybridBatch.Core
open HybridBatch.Core.JobState

let private reasonNames = [ "failed"; "lost"; "error"; "memlimit" ]

let private mebibyte = 1024L * 1024L

/// A valid policy as a user writes it, and the reasons it lists: a non-empty set of reasons (in any case, some
/// written together with a comma), 1 to 100 attempts, and sometimes memory growth (factor above 1, maximum at least
/// the first request), which brings memlimit with it.
let private validInput: Gen<RetryPolicyInput> =
    gen {
        let! reasons = Gen.subListOf reasonNames |> Gen.where (not << List.isEmpty)
        let! attempts = Gen.oneof [ Gen.choose (1, 5); Gen.choose (1, RetryPolicyTerms.MaxAttempts) ]
        let! first = Gen.oneof [ Gen.choose64 (0L, 256L * mebibyte); Gen.choose64 (0L, 1L <<< 40) ]
        let! grows = Gen.elements [ true; true; false ]

        let! factor =
            Gen.oneof
                [ Gen.elements [ "2"; "1.5"; "1.01"; "3"; "100" ]
                  Gen.choose (101, 10_000)
                  |> Gen.map (fun hundredths -> (decimal hundredths / 100m).ToString(CultureInfo.InvariantCulture)) ]

        let! headroom = Gen.oneof [ Gen.constant 0L; Gen.choose64 (0L, 64L * mebibyte); Gen.choose64 (0L, 1L <<< 42) ]
        let! upper = Gen.elements [ id; (fun (s: string) -> s.ToUpperInvariant()) ]
        let! joined = Gen.elements [ true; false ]

        let reasons =
            if grows && not (List.contains "memlimit" reasons) then
                reasons @ [ "memlimit" ]
            else
                reasons

        let written = List.map upper reasons

        return
            { on = Some(if joined then [ String.Join(", ", written) ] else written)
              attempts = Some(string attempts)
              memoryFactor = (if grows then Some factor else None)
              memoryMax = (if grows then Some(string (first + headroom)) else None)
              firstMemory = first }
    }

let private policyOf (input: RetryPolicyInput) =
    match RetryPolicy.check input with
    | Ok policy -> policy
    | Error error -> failwithf "a valid policy was refused: %s: %s" error.Field.Name error.Message

let private anyReason = ArbMap.defaults |> ArbMap.generate<ExitReason>

/// How each attempt of a job ends (more than any policy allows, so that the policy decides when it stops).
let private endings: Gen<ExitReason list> =
    Gen.frequency
        [ 3, Gen.elements [ ExitReason.MemLimit; ExitReason.Lost; ExitReason.Failed; ExitReason.Error ]
          1, anyReason ]
    |> Gen.listOfLength 110

/// A job run under a policy: the attempts made, each with the memory it asked for and how it ended, and the decision
/// after the last.
let private run (policy: RetryPolicy) (first: int64) (endings: ExitReason list) =
    let rec go attempts memory remaining =
        match remaining with
        | [] -> List.rev attempts, None
        | reason :: rest ->
            let made = (memory, reason) :: attempts
            let last = { reason = reason; memory = memory }

            match RetryPolicy.next policy made.Length last with
            | NextAttempt.Retry next -> go made next rest
            | NextAttempt.GiveUp why -> List.rev made, Some why

    go [] first endings

let private scenario = Gen.zip validInput endings |> Arb.fromGen

[<CoreProperty>]
let ``a job never runs more often than the policy's attempts`` () =
    Prop.forAll scenario (fun (input, endings) ->
        let policy = policyOf input
        let attempts, why = run policy input.firstMemory endings

        (attempts.Length <= RetryPolicy.attempts policy
         |> Prop.label $"%d{attempts.Length} attempts of %d{RetryPolicy.attempts policy}")
        .&. (why.IsSome |> Prop.label "the job was given up on before the endings ran out"))

[<CoreProperty>]
let ``memory never decreases and never exceeds the policy's maximum`` () =
    Prop.forAll scenario (fun (input, endings) ->
        let policy = policyOf input
        let attempts, _ = run policy input.firstMemory endings
        let memories = List.map fst attempts

        let pairs = List.pairwise memories

        (pairs |> List.forall (fun (a, b) -> b >= a) |> Prop.label $"never decreases: %A{memories}")
        .&. (match RetryPolicy.memory policy with
             | Some growth -> memories |> List.forall (fun m -> m <= growth.max)
             | None -> memories |> List.forall ((=) input.firstMemory)
             |> Prop.label $"within the maximum, or constant without growth: %A{memories}"))

[<CoreProperty>]
let ``memory grows only after an out-of-memory kill, by the factor, capped at the maximum`` () =
    Prop.forAll scenario (fun (input, endings) ->
        let policy = policyOf input
        let attempts, _ = run policy input.firstMemory endings

        attempts
        |> List.pairwise
        |> List.map (fun ((memory, reason), (next, _)) ->
            match reason, RetryPolicy.memory policy with
            | ExitReason.MemLimit, Some growth ->
                let expected =
                    min growth.max (max (memory + 1L) (int64 (Decimal.Ceiling(decimal memory * growth.factor))))

                next = expected |> Prop.label $"after memlimit at %d{memory}: %d{next}, expected %d{expected}"
            | _ -> next = memory |> Prop.label $"after %A{reason} at %d{memory}: %d{next}")
        |> List.fold (.&.) (Prop.ofTestable true))

[<CoreProperty>]
let ``a finished or killed job is never retried`` () =
    Prop.forAll (Arb.fromGen (Gen.zip3 validInput (Gen.choose (0, 200)) (Gen.elements [ ExitReason.Finished; ExitReason.Killed ]))) (fun (input, soFar, reason) ->
        match RetryPolicy.next (policyOf input) soFar { reason = reason; memory = input.firstMemory } with
        | NextAttempt.GiveUp(GiveUp.Finished) -> reason = ExitReason.Finished
        | NextAttempt.GiveUp(GiveUp.Killed) -> reason = ExitReason.Killed
        | NextAttempt.GiveUp _
        | NextAttempt.Retry _ -> false)

[<CoreProperty>]
let ``a reason the policy does not list is never retried, and a listed one is while attempts remain`` () =
    Prop.forAll (Arb.fromGen (Gen.zip3 validInput (Gen.choose (1, 100)) anyReason)) (fun (input, soFar, reason) ->
        let policy = policyOf input
        let listed = RetryPolicy.ofExitReason reason |> Option.exists (fun r -> List.contains r (RetryPolicy.on policy))
        let decision = RetryPolicy.next policy soFar { reason = reason; memory = input.firstMemory }

        let atMax =
            reason = ExitReason.MemLimit
            && RetryPolicy.memory policy |> Option.exists (fun g -> input.firstMemory >= g.max)

        match decision with
        | NextAttempt.Retry _ -> (listed && soFar < RetryPolicy.attempts policy) |> Prop.label "retried"
        | NextAttempt.GiveUp why ->
            (not listed || soFar >= RetryPolicy.attempts policy || atMax)
            |> Prop.label $"given up: %s{why.Message}")

[<CoreProperty>]
let ``an out-of-memory kill at the maximum memory is not retried, and the message says so`` () =
    Prop.forAll (Arb.fromGen validInput) (fun input ->
        let policy = policyOf input

        match RetryPolicy.memory policy with
        | Some growth when RetryPolicy.attempts policy > 1 ->
            match RetryPolicy.next policy 1 { reason = ExitReason.MemLimit; memory = growth.max } with
            | NextAttempt.GiveUp(GiveUp.MemoryAtMax max as why) ->
                (max = growth.max && why.Message.Contains("maximum memory", StringComparison.Ordinal))
                |> Prop.label why.Message
            | other -> false |> Prop.label $"%A{other}"
        | Some _
        | None -> Prop.ofTestable true)

/// A bad policy and the field its error must name.
let private badInput: Gen<RetryPolicyInput * RetryField> =
    gen {
        let! good = validInput

        let withGrowth =
            { good with
                on = Some [ "memlimit" ]
                memoryFactor = Some "2"
                memoryMax = Some(string (good.firstMemory + 1L)) }

        return!
            Gen.oneof
                [ Gen.elements [ "oom"; "OOMKilled"; "finish"; "memory"; "timeout"; "exit" ]
                  |> Gen.map (fun r -> { good with on = Some [ "lost"; r ] }, RetryField.On)
                  Gen.elements [ "finished"; "killed"; "Killed" ]
                  |> Gen.map (fun r -> { good with on = Some [ r ] }, RetryField.On)
                  Gen.elements [ Some []; Some [ " , " ]; None ] |> Gen.map (fun on -> { good with on = on }, RetryField.On)
                  Gen.oneof
                      [ Gen.choose (Int32.MinValue, 0) |> Gen.map string
                        Gen.choose (RetryPolicyTerms.MaxAttempts + 1, Int32.MaxValue) |> Gen.map string
                        Gen.elements [ "two"; "1.5"; ""; "3x"; "99999999999" ] ]
                  |> Gen.map (fun a -> { good with attempts = Some a }, RetryField.Attempts)
                  Gen.constant ({ good with attempts = None }, RetryField.Attempts)
                  Gen.elements [ "1"; "0.5"; "0"; "-2"; "1.0"; "100.01"; "1e9"; "NaN"; "double" ]
                  |> Gen.map (fun f -> { withGrowth with memoryFactor = Some f }, RetryField.MemoryFactor)
                  Gen.constant ({ withGrowth with memoryMax = None }, RetryField.MemoryMax)
                  Gen.elements [ "lots"; "-1Gi"; "8GB"; "4Ei"; "" ]
                  |> Gen.map (fun m -> { withGrowth with memoryMax = Some m }, RetryField.MemoryMax)
                  Gen.choose64 (1L, 1L <<< 40)
                  |> Gen.map (fun first ->
                      { withGrowth with
                          firstMemory = first
                          memoryMax = Some(string (first - 1L)) },
                      RetryField.MemoryMax)
                  Gen.constant ({ withGrowth with on = Some [ "lost" ] }, RetryField.On) ]
    }

[<CoreProperty>]
let ``a bad policy is refused naming the field, the value given and what is allowed`` () =
    Prop.forAll (Arb.fromGen badInput) (fun (input, field) ->
        match RetryPolicy.check input with
        | Ok policy -> false |> Prop.label $"accepted: %s{RetryPolicy.describe policy}"
        | Error error ->
            let message = error.Message

            (error.Field = field |> Prop.label $"field %s{error.Field.Name}, expected %s{field.Name}")
            .&. ((message.Contains($"'%s{error.Value}'", StringComparison.Ordinal) || error.Value = "")
                 |> Prop.label $"names the value '%s{error.Value}': %s{message}")
            .&. ((error.Value <> "" || message.StartsWith("missing", StringComparison.Ordinal))
                 |> Prop.label $"a missing field says so: %s{message}")
            .&. ((message.Contains("give", StringComparison.Ordinal)
                  || message.Contains("list", StringComparison.Ordinal)
                  || message.Contains("write", StringComparison.Ordinal)
                  || message.Contains("add", StringComparison.Ordinal))
                 |> Prop.label $"says what is allowed: %s{message}"))
