/// Which nodes a step of the lifecycle left without a job of this run: the shell runs the node cleanup on each. Derived
/// from the model before and after the step, not from the effects.
module HybridBatch.Core.NodeCleanup

open HybridBatch.Core.JobState

/// `node`, added to `found` if no job counts on it after the step and it is not there yet.
let private empties (after: Model) (node: string option) (found: string list) =
    match node with
    | Some node when not (after.nodes.ContainsKey node) && not (List.contains node found) -> node :: found
    | _ -> found

/// The nodes job `id` counted on before the step, or landed on during it (its first node, or another pod's when it
/// moved), that no job counts on after it, added to `found`.
let private emptiedBy (before: Model) (after: Model) (found: string list) (id: JobId) =
    match before.jobs.TryGetValue id with
    | true, was ->
        let landed =
            match after.jobs.TryGetValue id with
            | true, is when is.node <> was.node -> is.node
            | _ -> None

        found |> empties after (countedOn was) |> empties after landed
    | _ -> found

/// The node a live job's own pod is seen on while the job has none yet: the job landed there even when it moves on in
/// the same step. The watch may show a pod's node first when the pod is already being deleted, and the job then goes
/// on in a surplus pod elsewhere; had the pod been seen on its node before, the job would have counted there and left.
let private seenOn (before: Model) (event: Event) =
    match event with
    | Event.Observed(pod, _) ->
        match before.jobs.TryGetValue pod.job with
        | true, was when isLive was && was.node.IsNone && was.pod = Some pod.pod -> pod.node
        | _ -> None
    | _ -> None

/// The nodes a step left without a job of this run, from the node map before and after it: those the jobs it touched
/// counted on before it, or landed on during it, that no job counts on after it. A node can empty and fill again
/// within one step, as when a resync loses the last job on a node and shows a job the loss let out of the queue
/// landing there: it is not empty, so it is not cleaned. (A step that empties a node ends, deletes or moves a job, so
/// a step without effects that leaves the node map as it was and shows no job's pod on a new node empties none.)
let vacated (before: Model) (after: Model) (event: Event) (effects: Effect list) : string list =
    let seen = seenOn before event

    if obj.ReferenceEquals(before.nodes, after.nodes) && List.isEmpty effects && seen.IsNone then
        []
    else
        let among (ids: JobId seq) =
            ids |> Seq.fold (emptiedBy before after) [] |> List.rev

        match event with
        | Event.Observed(pod, _) -> emptiedBy before after [] pod.job |> empties after seen
        | Event.Removed(id, _, _) -> emptiedBy before after [] id
        | Event.KillRequested(ids, _) -> among ids
        | Event.Tick _ -> among before.stuck
        | Event.Resynced _
        | Event.NodeLost _
        | Event.Shutdown _ -> among before.jobs.Keys
        | Event.Issued _
        | Event.Adopted _
        | Event.Created _
        | Event.CreateFailed _
        | Event.QuotaRefused _
        | Event.QuotasRead _ -> []
