/// Properties of what the jobs hold over arbitrary histories (see JobStateHistories): nodes and their cleanup, the
/// pool, creates and the model's indexes.
module HybridBatch.Properties.JobStateAccountingProperties

open FsCheck
open FsCheck.FSharp
open HybridBatch.Core
open HybridBatch.Core.JobState
open HybridBatch.Core.Lifecycle
open HybridBatch.Core.PodVerdict
open HybridBatch.Properties.JobStateHistories

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
            [ Event.Issued(prepared 1 2_130L, t0)
              Event.Created(1, t0)
              Event.Observed(pod 1 "job-1-a", t0)
              // Too large to run beside job 1 (4,000 millicores in all): it waits in the queue.
              Event.Issued(prepared 2 1_996L, t0) ]

    let queued =
        jobs model
        |> List.choose (fun job ->
            match job.phase with
            | Phase.Queued _ -> Some job.id
            | _ -> None)

    Xunit.Assert.Equal<int list>([ 2 ], queued)

    // Job 1's pod was replaced (job 1 is lost, node-1 empties, job 2 is launched) and job 2's pod is on node-1.
    let after, effects =
        step model (Event.Resynced([ pod 1 "job-1-b"; pod 2 "job-2-a" ], t0 + 500L, t0 + 1_000L))

    Xunit.Assert.DoesNotContain(Effect.CleanupNode "node-1", effects)
    Xunit.Assert.Equal(1, liveOn after "node-1")
    Xunit.Assert.Empty(invariants after)

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
                [ Event.Issued(prepared 1 1_000L, t0)
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
            .&. (List.isEmpty (invariants model) |> Prop.label $"{invariants model}")
        | rs -> false |> Prop.label $"{rs.Length} results: {rs}")

/// The history FsCheck shrank a failure of the property below to: an adopted job's own pod is first seen with no
/// node, a surplus pod of its Job waits on node-2, and the job's pod is next seen only when it is already being
/// deleted, on node-1. The job goes on in the surplus pod on node-2; node-1, where its pod was, is left and cleaned,
/// as it would be had the watch shown the pod on node-1 before.
[<Xunit.Fact>]
let ``a job whose own pod is first seen on a node as it is deleted, and that moves to a surplus pod, leaves that node cleaned``
    ()
    =
    let traces =
        run (
            History
                [ Adopt 10
                  PodSeen(5, 0, 2, 0, 42)
                  PodSeen(15, 1, 2, 7, 1)
                  Issue 387
                  Issue 140
                  Issue 230
                  PodSeen(16, 0, 1, 21, 1) ]
        )

    let last = List.last traces
    Xunit.Assert.True((last.effects = [ Effect.CleanupNode "node-1" ]), $"%A{last.effects}")
    Xunit.Assert.Equal(Some "node-2", (job last.after 2 |> Option.bind _.node))

[<CoreProperty>]
let ``node cleanup happens exactly once each time a node's last job leaves`` () =
    forHistories (fun traces ->
        traces
        |> List.forall (fun t ->
            let cleaned =
                t.effects
                |> List.choose (function
                    | Effect.CleanupNode n -> Some n
                    | _ -> None)

            // The node counts agree with the jobs on the nodes.
            let nodesConsistent = List.isEmpty (invariants t.after)

            // A job may arrive on a node and leave it within one step (its first observation is its last).
            let entered =
                let observed =
                    match t.event with
                    | Some(Event.Observed(o, _)) -> [ o ]
                    | Some(Event.Resynced(snapshot, _, _)) -> snapshot
                    | _ -> []

                observed
                |> List.choose (fun p ->
                    match job t.before p.job, p.node with
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
                | Some(Event.Adopted _) -> true
                | _ -> false)

        traces
        |> List.forall (fun t ->
            let l = config.limits

            let holding =
                jobs t.after
                |> List.filter (fun j ->
                    match j.phase with
                    | Phase.Creating
                    | Phase.Created _
                    | Phase.Running _ -> true
                    | Phase.Queued _
                    | Phase.Ended _ -> false)

            // The pool's count agrees with the jobs that hold capacity.
            let sumConsistent = List.isEmpty (invariants t.after)

            let withinLimits =
                adopted
                || (holding.Length <= l.maxJobs
                    && (holding |> List.sumBy _.request.millicores) <= l.maxMillicores)

            let created = createdIds t.effects
            let inOrder = created = List.sort created
            sumConsistent && withinLimits && inOrder))

[<CoreProperty>]
let ``a job is created at most once per quota refusal and never after it was killed`` () =
    forHistories (fun traces ->
        let creates = traces |> List.collect (fun t -> createdIds t.effects)

        // A create refused by a quota put the job back in the queue: it is created again once, later.
        let refused =
            traces
            |> List.choose (fun t ->
                match t.event with
                | Some(Event.QuotaRefused(job, _, _)) when
                    (match Lifecycle.job t.before job.id with
                     | Some j -> j.phase = Phase.Creating
                     | None -> false)
                    ->
                    Some job.id
                | _ -> None)
            |> counts

        let rec afterKill killed (ts: Trace list) =
            match ts with
            | [] -> true
            | t :: rest ->
                let createdNow = createdIds t.effects

                (createdNow |> List.forall (fun id -> not (Set.contains id killed)))
                && afterKill (Set.union killed (Set.ofList (killedIn t))) rest

        (counts creates
         |> Map.forall (fun id n -> n <= 1 + (refused.TryFind id |> Option.defaultValue 0))
         |> Prop.label "created at most once, and once more after each quota refusal")
        .&. (afterKill Set.empty traces |> Prop.label "never created after a kill"))

[<CoreProperty>]
let ``a job killed while its create is under way is deleted once the create lands`` () =
    forHistories (fun traces ->
        traces
        |> List.forall (fun t ->
            match t.event with
            | Some(Event.Created(id, _)) ->
                match tombstone t.before id with
                | Some name -> t.effects |> List.contains (Effect.Delete(id, name)) && (tombstone t.after id).IsNone
                | None -> true
            | _ -> true))

[<CoreProperty>]
let ``every index of the model agrees with its jobs after every step`` () =
    forHistories (fun traces ->
        traces
        |> List.map (fun t ->
            let broken = invariants t.after
            List.isEmpty broken |> Prop.label $"after {t.event}: {broken}")
        |> List.fold (.&.) (Prop.ofTestable true))
