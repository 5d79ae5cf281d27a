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
let ``a job is created at most once and never after it was killed`` () =
    forHistories (fun traces ->
        let creates = traces |> List.collect (fun t -> createdIds t.effects)

        let rec afterKill killed (ts: Trace list) =
            match ts with
            | [] -> true
            | t :: rest ->
                let createdNow = createdIds t.effects

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
