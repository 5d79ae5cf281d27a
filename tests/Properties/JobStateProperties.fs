/// Properties of the job-state transition function over arbitrary event sequences: duplicated, reordered and
/// replayed observations, resync snapshots, kills racing creates, stuck pods and lost nodes.
module HybridBatch.Properties.JobStateProperties

open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open HybridBatch.Core.JobState

/// A step of a generated history, interpreted against the model so it can refer to jobs that exist.
type Cmd =
    | Issue of millicores: int
    | Adopt of offset: int
    | Kill of picks: int list
    | CreateReturns of pick: int
    | CreateFails of pick: int
    | PodSeen of pick: int * podSuffix: int * node: int * state: int * exitCode: int
    | PodRemoved of pick: int * podSuffix: int
    | Resync of picks: int list * listedBack: int
    | LoseNode of node: int
    | Advance of ms: int
    | Collect
    | Replay of back: int
    | Shutdown

let private nodeName n = $"node-{abs n % 3}"
let private podName (id: JobId) suffix = $"job-{id}-pod-{abs suffix % 2}"

let config =
    { podTimeout = 5_000L
      limits =
        { maxJobs = 3
          maxMillicores = 4_000L
          maxMemory = 1L <<< 40
          maxDisk = 1L <<< 40 } }

let private request id millicores =
    { name = $"job-{id}"
      millicores = int64 millicores
      memory = 1L <<< 20
      disk = 1L <<< 20 }

/// Pick one of the ids ever issued (killed and collected ones too: stale events about them are realistic).
let private pick (model: Model) (p: int) = if model.nextId <= 1 then 1 else 1 + abs p % (model.nextId - 1)

let private containerOf (state: int) (exitCode: int) (at: Millis) =
    match abs state % 8 with
    | 0 -> Container.NotCreated
    | 1 -> Container.Waiting("ContainerCreating", None)
    | 2 -> Container.Waiting("ImagePullBackOff", Some "image missing")
    | 3 -> Container.Running(at - 1_000L)
    | 4 -> Container.Terminated(exitCode, None, None, Some(at - 2_000L), Some at)
    | 5 -> Container.Terminated(137, Some "OOMKilled", None, Some(at - 1_500L), Some at)
    | 6 -> Container.Terminated(0, Some "Completed", None, Some at, Some at)
    | _ -> Container.Waiting("PodInitializing", None)

let private podFacts (model: Model) p suffix node state exitCode at =
    let id = pick model p

    { job = id
      pod = podName id suffix
      node = (if abs state % 8 = 0 then None else Some(nodeName node))
      phase =
        match abs state % 8 with
        | 3 -> PodPhase.Running
        | 4 when exitCode = 0 -> PodPhase.Succeeded
        | 4
        | 5 -> PodPhase.Failed
        | 6 -> PodPhase.Succeeded
        | _ -> PodPhase.Pending
      reason = (if abs state % 13 = 12 then Some "Evicted" else None)
      message = None
      unschedulable = (if abs state % 8 = 0 && abs exitCode % 2 = 1 then Some "0/1 nodes are available" else None)
      container = containerOf state exitCode at
      deleting = abs state % 11 = 10 }

/// Turn a command into an event for the current model and clock.
let toEvent (model: Model) (now: Millis) (history: Event list) (cmd: Cmd) : Event option * Millis =
    match cmd with
    | Issue millicores -> Some(Event.Issued(model.nextId, request model.nextId (abs millicores % 3_000), now)), now
    | Adopt offset ->
        let id = model.nextId + abs offset % 3
        Some(Event.Adopted(id, request id 100, now)), now
    | Kill picks -> Some(Event.KillRequested(picks |> List.map (pick model), now)), now
    | CreateReturns p -> Some(Event.Created(pick model p, now)), now
    | CreateFails p -> Some(Event.CreateFailed(pick model p, "quota exceeded", now)), now
    | PodSeen(p, suffix, node, state, exitCode) ->
        Some(Event.Observed(podFacts model p suffix node state exitCode now, now)), now
    | PodRemoved(p, suffix) ->
        let id = pick model p
        Some(Event.Removed(id, podName id suffix, now)), now
    | Resync(picks, back) ->
        let snapshot =
            picks |> List.distinct |> List.map (fun p -> podFacts model p 0 1 3 0 now)

        Some(Event.Resynced(snapshot, now - int64 (abs back % 3_000), now)), now
    | LoseNode n -> Some(Event.NodeLost(nodeName n, now)), now
    | Advance ms ->
        let now = now + int64 (abs ms % 4_000)
        Some(Event.Tick now), now
    | Collect -> Some(Event.Collect now), now
    | Replay back ->
        match history with
        | [] -> None, now
        | _ -> Some(history[abs back % history.Length]), now
    | Shutdown -> Some(Event.Shutdown now), now

/// Commands weighted so that interesting interleavings are common.
let cmdGen: Gen<Cmd> =
    let small = Gen.choose (0, 20)

    Gen.frequency
        [ 6, Gen.map Issue (Gen.choose (0, 3_000))
          1, Gen.map Adopt small
          2, Gen.map Kill (Gen.listOfLength 2 small)
          4, Gen.map CreateReturns small
          1, Gen.map CreateFails small
          10,
          gen {
              let! p = small
              let! suffix = Gen.frequency [ 9, Gen.constant 0; 1, Gen.constant 1 ]
              let! node = Gen.choose (0, 2)
              let! state = Gen.choose (0, 25)
              let! code = Gen.elements [ 0; 0; 1; 42; 255 ]
              return PodSeen(p, suffix, node, state, code)
          }
          2, Gen.map2 (fun p s -> PodRemoved(p, s)) small (Gen.choose (0, 1))
          1, Gen.map2 (fun ps b -> Resync(ps, b)) (Gen.listOf small) (Gen.choose (0, 3_000))
          1, Gen.map LoseNode (Gen.choose (0, 2))
          4, Gen.map Advance (Gen.choose (0, 4_000))
          4, Gen.constant Collect
          3, Gen.map Replay (Gen.choose (0, 1_000))
          1, Gen.constant Shutdown ]
    |> fun g -> g

/// A history: commands, shrunk by dropping commands.
type History = History of Cmd list

/// One step's record: the event, the model after it, and the effects it returned.
type Trace =
    { event: Event
      before: Model
      after: Model
      effects: Effect list
      now: Millis }

/// Run a history from the initial model; returns every step.
let run (History cmds) : Trace list =
    let folder (model, now, history, traces) cmd =
        match toEvent model now history cmd with
        | None, now -> model, now, history, traces
        | Some event, now ->
            let after, effects = step model event

            after,
            now,
            event :: history,
            { event = event
              before = model
              after = after
              effects = effects
              now = now }
            :: traces

    let _, _, _, traces = cmds |> List.fold folder (initial config, 1_000_000L, [], [])
    List.rev traces

/// Collect until nothing is left: the deliveries that follow a history.
let drain (model: Model) (now: Millis) : Effect list =
    let rec go m acc =
        let m, fx = step m (Event.Collect now)

        match fx with
        | [] -> List.rev acc
        | _ -> go m (List.rev fx @ acc)

    go model []

let private endedIds (effects: Effect list) =
    effects
    |> List.choose (function
        | Effect.Ended(r, _) -> Some r.id
        | _ -> None)

let private deliveredIds (effects: Effect list) =
    effects
    |> List.choose (function
        | Effect.Deliver r -> Some r.id
        | _ -> None)

let private killedIn (trace: Trace) =
    match trace.event with
    | Event.KillRequested(ids, _) -> ids |> List.filter (fun id -> trace.before.jobs.ContainsKey id)
    | Event.Shutdown _ -> trace.before.jobs |> Seq.map (fun kv -> kv.Key) |> List.ofSeq
    | _ -> []

let private allEffects traces = traces |> List.collect (fun t -> t.effects)

let private counts (xs: 'a list) = xs |> List.countBy id |> Map.ofList

/// Shrink a history by dropping halves, then single commands, so a failure is reported with few steps.
let private shrinkHistory (History cmds) =
    let n = List.length cmds

    seq {
        if n > 1 then
            yield List.take (n / 2) cmds
            yield List.skip (n / 2) cmds

        for i in 0 .. n - 1 do
            yield List.removeAt i cmds
    }
    |> Seq.map History

let private historyArb =
    Arb.fromGenShrink (Gen.listOf cmdGen |> Gen.map History, shrinkHistory)

let private forHistories (check: Trace list -> 'P) =
    Prop.forAll historyArb (fun h -> check (run h))

[<CoreProperty>]
let ``every job that ends is reported exactly once`` () =
    forHistories (fun traces ->
        let effects = allEffects traces

        let last =
            traces |> List.tryLast |> Option.map (fun t -> t.after, t.now) |> Option.defaultValue (initial config, 0L)

        let model, now = last
        let delivered = deliveredIds (effects @ drain model now)
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
                let reported = endedIds t.effects @ deliveredIds t.effects
                let ok = reported |> List.forall (fun id -> not (Set.contains id killed))
                ok && check (Set.union killed (Set.ofList (killedIn t))) rest

        check Set.empty traces)

[<CoreProperty>]
let ``terminal states are absorbing`` () =
    forHistories (fun traces ->
        traces
        |> List.forall (fun t ->
            t.before.jobs
            |> Map.forall (fun id job ->
                match job.phase with
                | Phase.Ended(result, _, _) ->
                    match t.after.jobs.TryFind id with
                    | None -> true // collected or killed
                    | Some after ->
                        match after.phase with
                        | Phase.Ended(r, _, _) -> r = result
                        | Phase.Queued
                        | Phase.Creating
                        | Phase.Created _
                        | Phase.Running _ -> false
                | Phase.Queued
                | Phase.Creating
                | Phase.Created _
                | Phase.Running _ -> true)))

[<CoreProperty>]
let ``every report has a wall time above zero and an exit status`` () =
    forHistories (fun traces ->
        allEffects traces
        |> List.forall (function
            | Effect.Ended(r, _)
            | Effect.Deliver r ->
                r.wallTime > 0L
                && r.exitStatus >= 0
                && r.exitStatus <= 255
                && (r.reason <> ExitReason.Finished || r.exitStatus = 0)
                && (r.reason <> ExitReason.Killed)
            | _ -> true))

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
                    | Event.Issued(id, _, _)
                    | Event.Adopted(id, _, _) when t.after.jobs.ContainsKey id && not (t.before.jobs.ContainsKey id) ->
                        [ id ]
                    | _ -> []

                let removed = deliveredIds t.effects @ killedIn t
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
                | Event.Issued(id, _, _) when t.after.nextId > t.before.nextId -> Some id
                | _ -> None)

        let increasing = accepted |> List.pairwise |> List.forall (fun (a, b) -> a < b)
        let nextNeverDecreases = traces |> List.forall (fun t -> t.after.nextId >= t.before.nextId)

        (increasing |> Prop.label "accepted ids increase")
        .&. (nextNeverDecreases |> Prop.label "the next id never decreases")
        .&. (traces
             |> List.forall (fun t ->
                 match t.event with
                 | Event.Issued(id, _, _) when id < t.before.nextId -> t.after = t.before && t.effects.IsEmpty
                 | _ -> true)
             |> Prop.label "a reused id is refused"))

[<CoreProperty>]
let ``a pod stuck past the timeout ends in exactly one failure naming why`` () =
    forHistories (fun traces ->
        traces
        |> List.forall (fun t ->
            match t.event with
            | Event.Tick at ->
                let stillStuck =
                    t.after.jobs
                    |> Map.exists (fun _ job ->
                        match job.phase with
                        | Phase.Created(_, Some(_, since)) -> at - since >= config.podTimeout
                        | _ -> false)

                let expiredRight =
                    t.effects
                    |> List.forall (function
                        | Effect.Ended(r, _) ->
                            r.reason = ExitReason.Error
                            && r.message |> Option.exists (fun m -> m.Contains "pod timeout")
                            && (match t.before.jobs.TryFind r.id with
                                | Some { phase = Phase.Created(_, Some(why, _)) } -> r.message.Value.StartsWith why
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
            fst (step (initial config) (Event.Adopted(1, request 1 100, t0)))
        else
            let m, _ = step (initial config) (Event.Issued(1, request 1 100, t0 - 5L))
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

/// The case FsCheck found (shrunk): one resync both loses the last job on a node and shows a job that the loss let
/// out of the queue landing on the same node. The node is never empty, so it must not be cleaned.
[<Xunit.Fact>]
let ``a node emptied and filled again within one resync is not cleaned`` () =
    let t0 = 1_000_000L

    let pod id name =
        { job = id
          pod = name
          node = Some "node-1"
          phase = PodPhase.Running
          reason = None
          message = None
          unschedulable = None
          container = Container.Running(t0 - 1_000L)
          deleting = false }

    let model, _ =
        fold
            (initial config)
            [ Event.Issued(1, request 1 2_130, t0)
              Event.Created(1, t0)
              Event.Observed(pod 1 "job-1-a", t0)
              // Too large to run beside job 1 (4,000 millicores in all): it waits in the queue.
              Event.Issued(2, request 2 1_996, t0) ]

    Xunit.Assert.Equal<int list>([ 2 ], model.queue |> List.ofSeq)

    // Job 1's pod was replaced (job 1 is lost, node-1 empties, job 2 is launched) and job 2's pod is on node-1.
    let after, effects =
        step model (Event.Resynced([ pod 1 "job-1-b"; pod 2 "job-2-a" ], t0 + 500L, t0 + 1_000L))

    Xunit.Assert.DoesNotContain(Effect.CleanupNode "node-1", effects)
    Xunit.Assert.Equal(Some 1, after.nodes.TryFind "node-1")

/// How the Job controller's removal of one of two pods reaches the batch system.
type Removal =
    /// A watch update with the deletion timestamp set (and, for a running pod, its container killed).
    | Deleting
    /// The watch's Deleted event.
    | Removed
    /// The watch was down: a fresh list no longer holds the pod.
    | Unlisted

/// A create call that failed after the API server had stored the pod (it died mid-call) makes the Job controller create
/// a second pod for the same Job and delete one of the two. Whichever pod it keeps, however the removal is seen, the
/// job ends once, with the result of the pod that runs to its end, never as Lost, and leaves no node counted.
[<CoreProperty>]
let ``a Job's surplus pod never ends the job; the pod that runs to its end does`` () =
    let cases =
        Gen.zip3
            (Gen.elements [ true; false ])
            (Gen.elements [ Deleting; Removed; Unlisted ])
            (Gen.elements [ 0; 1; 42 ])
        |> Gen.zip (Gen.elements [ "node-1"; "node-2" ])

    Prop.forAll (Arb.fromGen cases) (fun (secondNode, (keepFirst, removal, code)) ->
        let t0 = 1_000_000L

        let pod name node container deleting =
            { job = 1
              pod = name
              node = Some node
              phase =
                match container with
                | Container.Running _ -> PodPhase.Running
                | Container.Terminated(0, _, _, _, _) -> PodPhase.Succeeded
                | Container.Terminated _ -> PodPhase.Failed
                | Container.NotCreated
                | Container.Waiting _ -> PodPhase.Pending
              reason = None
              message = None
              unschedulable = None
              container = container
              deleting = deleting }

        let first = pod "job-1-a" "node-1" (Container.Running(t0 - 1_000L)) false
        let second = pod "job-1-b" secondNode (Container.Waiting("ContainerCreating", None)) false
        let kept, removed = if keepFirst then first, second else second, first

        let removal =
            match removal with
            | Deleting ->
                let killed = Container.Terminated(137, Some "Error", None, Some(t0 - 1_000L), Some(t0 + 2_000L))
                Event.Observed({ removed with container = killed; deleting = true }, t0 + 2_000L)
            | Removed -> Event.Removed(1, removed.pod, t0 + 2_000L)
            | Unlisted -> Event.Resynced([ kept ], t0 + 1_500L, t0 + 2_000L)

        let ends = Container.Terminated(code, None, None, Some(t0 + 2_500L), Some(t0 + 3_000L))

        let model, effects =
            fold
                (initial config)
                [ Event.Issued(1, request 1 1_000, t0)
                  Event.Created(1, t0)
                  Event.Observed(first, t0)
                  Event.Observed(second, t0 + 1_000L)
                  removal
                  Event.Observed(pod kept.pod kept.node.Value ends false, t0 + 3_000L) ]

        let results =
            effects
            |> List.choose (function
                | Effect.Ended(r, _) -> Some r
                | _ -> None)

        match results with
        | [ r ] ->
            (r.exitStatus = code |> Prop.label $"exit status {r.exitStatus}, expected {code}")
            .&. (r.reason = (if code = 0 then ExitReason.Finished else ExitReason.Failed)
                 |> Prop.label $"reason {r.reason}: {r.message}")
            .&. (model.nodes.IsEmpty |> Prop.label $"nodes still counted: {model.nodes}")
        | rs -> false |> Prop.label $"{rs.Length} results: {rs}")

[<CoreProperty>]
let ``node cleanup happens exactly once each time a node's last job leaves`` () =
    forHistories (fun traces ->
        let liveOn (model: Model) node =
            model.jobs |> Map.filter (fun _ j -> j.node = Some node) |> Map.count

        traces
        |> List.forall (fun t ->
            let cleaned =
                t.effects
                |> List.choose (function
                    | Effect.CleanupNode n -> Some n
                    | _ -> None)

            let nodesConsistent =
                [ 0..2 ]
                |> List.map nodeName
                |> List.forall (fun n -> (t.after.nodes.TryFind n |> Option.defaultValue 0) = liveOn t.after n)

            // A job may arrive on a node and leave it within one step (its first observation is its last).
            let entered =
                let observed =
                    match t.event with
                    | Event.Observed(o, _) -> [ o ]
                    | Event.Resynced(snapshot, _, _) -> snapshot
                    | _ -> []

                observed
                |> List.choose (fun p ->
                    match t.before.jobs.TryFind p.job, p.node with
                    | Some({ node = None
                             phase = Phase.Creating | Phase.Created _ | Phase.Running _ } as job),
                      Some n when job.pod.IsNone || job.pod = Some p.pod -> Some n
                    // Another pod of a live job's Job that ran to its end: the job ends there.
                    | Some({ phase = Phase.Created _ | Phase.Running _ } as job), Some n when
                        job.pod.IsSome
                        && job.pod <> Some p.pod
                        && not p.deleting
                        && p.reason.IsNone
                        && (match p.container with
                            | Container.Terminated _ -> true
                            | _ -> false)
                        ->
                        Some n
                    | _ -> None)
                |> Set.ofList

            let occupied n = liveOn t.before n > 0 || entered.Contains n

            let cleanedRight =
                cleaned |> List.forall (fun n -> occupied n && liveOn t.after n = 0)
                && List.distinct cleaned = cleaned

            let noMissedCleanup =
                [ 0..2 ]
                |> List.map nodeName
                |> List.forall (fun n -> not (occupied n && liveOn t.after n = 0) || List.contains n cleaned)

            nodesConsistent && cleanedRight && noMissedCleanup))

[<CoreProperty>]
let ``the pool never holds more than its limits and queued jobs start in order`` () =
    forHistories (fun traces ->
        let adopted =
            traces
            |> List.exists (fun t ->
                match t.event with
                | Event.Adopted _ -> true
                | _ -> false)

        traces
        |> List.forall (fun t ->
            let u = t.after.used
            let l = config.limits

            let holding =
                t.after.jobs
                |> Map.filter (fun _ j ->
                    match j.phase with
                    | Phase.Creating
                    | Phase.Created _
                    | Phase.Running _ -> true
                    | Phase.Queued
                    | Phase.Ended _ -> false)

            let sumConsistent =
                u.jobs = holding.Count
                && u.millicores = (holding |> Seq.sumBy (fun kv -> kv.Value.request.millicores))

            let withinLimits = adopted || (u.jobs <= l.maxJobs && u.millicores <= l.maxMillicores)

            let created =
                t.effects
                |> List.choose (function
                    | Effect.Create id -> Some id
                    | _ -> None)

            let inOrder = created = List.sort created
            sumConsistent && withinLimits && inOrder))

[<CoreProperty>]
let ``a job is created at most once and never after it was killed`` () =
    forHistories (fun traces ->
        let creates =
            traces
            |> List.collect (fun t ->
                t.effects
                |> List.choose (function
                    | Effect.Create id -> Some id
                    | _ -> None))

        let rec afterKill killed (ts: Trace list) =
            match ts with
            | [] -> true
            | t :: rest ->
                let createdNow =
                    t.effects
                    |> List.choose (function
                        | Effect.Create id -> Some id
                        | _ -> None)

                (createdNow |> List.forall (fun id -> not (Set.contains id killed)))
                && afterKill (Set.union killed (Set.ofList (killedIn t))) rest

        (List.distinct creates = creates |> Prop.label "created at most once")
        .&. (afterKill Set.empty traces |> Prop.label "never created after a kill"))

[<CoreProperty>]
let ``a job killed while its create is under way is deleted once the create lands`` () =
    forHistories (fun traces ->
        traces
        |> List.forall (fun t ->
            match t.event with
            | Event.Created(id, _) when t.before.tombstones.ContainsKey id ->
                t.effects |> List.contains (Effect.Delete(id, t.before.tombstones[id]))
                && not (t.after.tombstones.ContainsKey id)
            | _ -> true))
