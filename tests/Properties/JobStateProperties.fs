/// Properties of the job-state transition function over arbitrary histories (see JobStateHistories): duplicated,
/// reordered and replayed observations, resync snapshots, kills racing creates, stuck pods and lost nodes.
module HybridBatch.Properties.JobStateProperties

open FsCheck
open FsCheck.FSharp
open HybridBatch.Core
open HybridBatch.Core.JobState
open HybridBatch.Core.Lifecycle
open HybridBatch.Core.PodVerdict
open HybridBatch.Properties.JobStateHistories

[<CoreProperty>]
let ``every job that ends is reported exactly once`` () =
    forHistories (fun traces ->
        let effects = allEffects traces

        let model =
            traces |> List.tryLast |> Option.map _.after |> Option.defaultValue (initial config)

        let delivered = deliveredIds traces @ (drain model |> List.map _.id)
        let ended = endedIds effects
        let killedAfterEnd = traces |> List.collect killedIn |> Set.ofList
        let endedOnce = counts ended |> Map.forall (fun _ n -> n = 1)
        let deliveredOnce = counts delivered |> Map.forall (fun _ n -> n = 1)

        let everyEndDelivered =
            ended |> List.forall (fun id -> List.contains id delivered || killedAfterEnd.Contains id)

        let onlyEndedDelivered = delivered |> List.forall (fun id -> List.contains id ended)

        (endedOnce |> Prop.label "a job ends at most once")
        .&. (deliveredOnce |> Prop.label "a job is delivered at most once")
        .&. (everyEndDelivered |> Prop.label "every ended job is delivered unless killed")
        .&. (onlyEndedDelivered |> Prop.label "only ended jobs are delivered"))

[<CoreProperty>]
let ``a killed job is never reported`` () =
    forHistories (fun traces ->
        let rec check killed (ts: Trace list) =
            match ts with
            | [] -> true
            | t :: rest ->
                let reported = endedIds t.effects @ deliveredIds [ t ]
                let ok = reported |> List.forall (fun id -> not (Set.contains id killed))
                ok && check (Set.union killed (Set.ofList (killedIn t))) rest

        check Set.empty traces)

[<CoreProperty>]
let ``terminal states are absorbing`` () =
    forHistories (fun traces ->
        traces
        |> List.forall (fun t ->
            jobs t.before
            |> List.forall (fun before ->
                match before.phase with
                | Phase.Ended(result, _, _) ->
                    match job t.after before.id with
                    | None -> true // collected or killed
                    | Some after ->
                        match after.phase with
                        | Phase.Ended(r, _, _) -> r = result
                        | Phase.Queued _
                        | Phase.Creating
                        | Phase.Created _
                        | Phase.Running _ -> false
                | Phase.Queued _
                | Phase.Creating
                | Phase.Created _
                | Phase.Running _ -> true)))

[<CoreProperty>]
let ``every report has a wall time above zero and an exit status`` () =
    forHistories (fun traces ->
        let reports =
            (allEffects traces
             |> List.choose (function
                 | Effect.Ended(r, _) -> Some r
                 | _ -> None))
            @ (traces |> List.choose _.delivered)

        reports
        |> List.forall (fun r ->
            r.wallTime > 0L
            && r.exitStatus >= 0
            && r.exitStatus <= 255
            && (r.reason <> ExitReason.Finished || r.exitStatus = 0)
            && (r.reason <> ExitReason.Killed)))

[<CoreProperty>]
let ``a job never appears running after it ended or was killed`` () =
    forHistories (fun traces ->
        let rec check gone (ts: Trace list) =
            match ts with
            | [] -> Prop.ofTestable true
            | t :: rest ->
                let gone = Set.union gone (Set.ofList (endedIds t.effects @ killedIn t))
                let runningIds = running t.after t.now |> List.map fst |> Set.ofList
                let issuedIds = issued t.after |> Set.ofList

                let ok =
                    Set.intersect runningIds gone |> Set.isEmpty |> Prop.label "no ended or killed job runs"
                    .&. (Set.isSubset runningIds issuedIds |> Prop.label "running jobs are issued")

                ok .&. check gone rest

        check Set.empty traces)

[<CoreProperty>]
let ``the issued set is everything issued minus what was collected or killed`` () =
    forHistories (fun traces ->
        let rec check expected (ts: Trace list) =
            match ts with
            | [] -> true
            | t :: rest ->
                let added =
                    match t.event with
                    | Some(Event.Issued({ id = id }, _))
                    | Some(Event.Adopted(id, _, _)) when isIssued t.after id && not (isIssued t.before id) -> [ id ]
                    | _ -> []

                let removed = deliveredIds [ t ] @ killedIn t
                let expected = Set.difference (Set.union expected (Set.ofList added)) (Set.ofList removed)
                let actual = issued t.after

                actual = List.sort (Set.toList expected)
                && List.distinct actual = actual
                && check expected rest

        check Set.empty traces)

[<CoreProperty>]
let ``ids are unique and increasing`` () =
    forHistories (fun traces ->
        let accepted =
            traces
            |> List.choose (fun t ->
                match t.event with
                | Some(Event.Issued(job, _)) when nextId t.after > nextId t.before -> Some job.id
                | _ -> None)

        let increasing = accepted |> List.pairwise |> List.forall (fun (a, b) -> a < b)
        let nextNeverDecreases = traces |> List.forall (fun t -> nextId t.after >= nextId t.before)

        (increasing |> Prop.label "accepted ids increase")
        .&. (nextNeverDecreases |> Prop.label "the next id never decreases")
        .&. (traces
             |> List.forall (fun t ->
                 match t.event with
                 | Some(Event.Issued(job, _)) when job.id < nextId t.before -> t.after = t.before && t.effects.IsEmpty
                 | _ -> true)
             |> Prop.label "a reused id is refused"))

[<CoreProperty>]
let ``a pod stuck past the timeout ends in exactly one failure naming why`` () =
    forHistories (fun traces ->
        traces
        |> List.forall (fun t ->
            match t.event with
            | Some(Event.Tick at) ->
                let stillStuck =
                    jobs t.after
                    |> List.exists (fun job ->
                        match job.phase with
                        | Phase.Created(_, Some stuck) -> at - stuckSince t.after stuck at >= config.podTimeout
                        | _ -> false)

                let expiredRight =
                    t.effects
                    |> List.forall (function
                        | Effect.Ended(r, _) ->
                            r.reason = ExitReason.Error
                            && r.message |> Option.exists (fun m -> m.Contains "pod timeout")
                            && (match job t.before r.id with
                                | Some { phase = Phase.Created(_, Some stuck) } -> r.message.Value.StartsWith stuck.why
                                | _ -> false)
                        | _ -> true)

                not stillStuck && expiredRight
            | _ -> true))

/// One job created (or adopted) at t0, maybe seen as a Pending pod `podAfter` ms later, then a tick `wait` ms after t0.
let private noPodCase (adopt: bool) (wait: Millis) (podAfter: Millis option) =
    let t0 = 1_000_000L
    // The pod arrives (Pending, nothing waiting) before the tick, or never.
    let podAt = podAfter |> Option.filter (fun d -> d <= wait)

    let created =
        if adopt then
            fst (step (initial config) (Event.Adopted(1, (prepared 1 100L).request, t0)))
        else
            let m, _ = step (initial config) (Event.Issued(prepared 1 100L, t0 - 5L))
            fst (step m (Event.Created(1, t0)))

    let seen =
        match podAt with
        | Some d ->
            let pod =
                { job = 1
                  pod = "job-1-pod-0"
                  node = None
                  phase = PodPhase.Pending
                  reason = None
                  message = None
                  unschedulable = None
                  container = Container.NotCreated
                  deleting = false }

            fst (step created (Event.Observed(pod, t0 + d)))
        | None -> created

    let _, effects = step seen (Event.Tick(t0 + wait))

    let ended =
        effects
        |> List.choose (function
            | Effect.Ended(r, _) -> Some r
            | _ -> None)

    let shouldEnd = podAt.IsNone && wait >= config.podTimeout

    match ended with
    | [] -> not shouldEnd |> Prop.label "a job without a pod outlived the pod timeout"
    | [ r ] ->
        (shouldEnd |> Prop.label "a job ended before the pod timeout, or after its pod appeared")
        .&. ((r.reason = ExitReason.Error && r.exitStatus = ExitStatusUnavailable)
             |> Prop.label $"reason {r.reason}")
        .&. (r.message
             |> Option.exists (fun m -> m.StartsWith NoPodYet && m.Contains "pod timeout")
             |> Prop.label $"message {r.message}")
        .&. (r.wallTime >= config.podTimeout |> Prop.label $"wall time {r.wallTime}")
    | _ -> false |> Prop.label $"{ended.Length} results for one job"

[<CoreProperty>]
let ``a created job whose pod never appears ends with Error once the pod timeout has passed since its creation`` () =
    let cases =
        Gen.zip3
            (Gen.elements [ false; true ])
            (Gen.choose (0, 12_000))
            (Gen.frequency [ 1, Gen.constant None; 1, Gen.map Some (Gen.choose (0, 12_000)) ])

    Prop.forAll (Arb.fromGen cases) (fun (adopt, wait, podAfter) ->
        noPodCase adopt (int64 wait) (podAfter |> Option.map int64))

/// Job 1 runs on node-a; job 2's pod is seen at t0 waiting, for room (unschedulable) or for an image; job 1 ends
/// `freedAfter` ms after t0 (or never); then a tick `wait` ms after t0.
let private waitingCase (forRoom: bool) (freedAfter: Millis option) (wait: Millis) =
    let t0 = 1_000_000L

    let pod job phase container unschedulable =
        { job = job
          pod = $"job-{job}-pod-0"
          node = (if unschedulable then None else Some "node-a")
          phase = phase
          reason = None
          message = None
          unschedulable = (if unschedulable then Some "0/1 nodes are available: 1 Insufficient cpu." else None)
          container = container
          deleting = false }

    let events =
        [ Event.Issued(prepared 1 100L, t0 - 20L)
          Event.Issued(prepared 2 100L, t0 - 10L)
          Event.Created(1, t0 - 9L)
          Event.Created(2, t0 - 8L)
          Event.Observed(pod 1 PodPhase.Running (Container.Running(t0 - 5L)) false, t0 - 5L)
          Event.Observed(
              (if forRoom then
                   pod 2 PodPhase.Pending Container.NotCreated true
               else
                   pod 2 PodPhase.Pending (Container.Waiting("ImagePullBackOff", None)) false),
              t0
          ) ]
        @ (freedAfter
           |> Option.filter (fun d -> d <= wait)
           |> Option.map (fun d ->
               Event.Observed(
                   pod 1 PodPhase.Succeeded (Container.Terminated(0, Some "Completed", None, Some(t0 - 5L), Some(t0 + d))) false,
                   t0 + d
               ))
           |> Option.toList)

    let model, _ = fold (initial config) events
    let _, effects = step model (Event.Tick(t0 + wait))

    let timedOut =
        effects
        |> List.exists (function
            | Effect.Ended(r, _) -> r.id = 2 && r.reason = ExitReason.Error
            | _ -> false)

    // A job waiting for room waits while job 1 holds the node, and from when job 1 left it; an image never comes.
    let expected =
        match forRoom, freedAfter with
        | false, _ -> wait >= config.podTimeout
        | true, Some d when d <= wait -> wait - d >= config.podTimeout
        | true, _ -> false

    timedOut = expected
    |> Prop.label $"timed out: {timedOut}, expected {expected} (for room {forRoom}, freed after {freedAfter})"

[<CoreProperty>]
let ``a pod waiting for room does not time out while a job of the run holds a node, a stuck one does``
    ()
    =
    let cases =
        Gen.zip3
            (Gen.elements [ false; true ])
            (Gen.frequency [ 1, Gen.constant None; 3, Gen.map Some (Gen.choose (0, 12_000)) ])
            (Gen.choose (0, 20_000))

    Prop.forAll (Arb.fromGen cases) (fun (forRoom, freedAfter, wait) ->
        waitingCase forRoom (freedAfter |> Option.map int64) (int64 wait))
