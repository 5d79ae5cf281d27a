/// The lifecycle of the batch system's jobs as a pure transition function: the shell feeds what it sees (issued jobs,
/// kill requests, pod observations from one watch, resync snapshots, clock ticks) as events to `step`, performs the
/// effects it returns in order, and takes results with `collect`.
module HybridBatch.Core.Lifecycle

open HybridBatch.Core
open HybridBatch.Core.JobState
open HybridBatch.Core.PodVerdict
open Microsoft.FSharp.Core.CompilerServices

/// A job the model starts tracking: nothing of its pod or node is known yet.
let private newJob (id: JobId) (request: JobRequest) (at: Millis) (phase: Phase) =
    { id = id
      request = request
      issuedAt = at
      phase = phase
      pod = None
      podSeenAt = None
      surplus = Map.empty
      node = None }

/// Whether the namespace's quotas, as far as the run knows, admit one more of its jobs.
let private admits (model: Model) =
    match model.admission with
    | Some admission -> model.used.jobs < admission.cap
    | None -> true

/// Start queued jobs, oldest first, while they fit the pool and the quotas admit them. Strict order: a large job is
/// not overtaken.
let private launch (model: Model) : Model * Effect list =
    let mutable model = model
    let mutable creates = ListCollector<Effect>()
    let mutable full = false

    while not full && not model.shutDown && not model.queue.IsEmpty do
        match model.jobs.TryFind model.queue.MinimumElement with
        | Some({ phase = Phase.Queued prepared } as job) when Pool.fits model.config.limits model.used job.request && admits model ->
            model <- store model job { job with phase = Phase.Creating }
            creates.Add(Effect.Create prepared)
        | Some _
        | None -> full <- true

    model, creates.Close()

/// The result of a job that ends now.
let private result (job: Job) (exitStatus: int) (reason: ExitReason) (wallTime: Millis) (message: string option) =
    { id = job.id
      exitStatus = exitStatus
      reason = reason
      wallTime = max 1L wallTime
      backingId = job.request.name
      message = message }

/// End a job with a result: `job` (the version the model holds) as `last` shows it waits for collection, its
/// resources go back to the pool, and queued jobs that now fit start. Its Job is deleted now when `deleteNow`, else
/// when it is collected.
let private finish (model: Model) (job: Job) (last: Job) (result: UpdatedJob) (deleteNow: bool) : Model * Effect list =
    let model, creates =
        launch (store model job { last with phase = Phase.Ended(result, model.endSeq, deleteNow) })

    // The shell reads the named pod's log before it hands the result out.
    let explaining = if explainedByLog result.reason then last.pod else None
    let ended = Effect.Ended(result, explaining) :: creates
    model, (if deleteNow then Effect.Delete(job.id, job.request.name) :: ended else ended)

/// End a job that was never created (no object to delete, no log to read) with Error and `why`.
let private neverCreated (model: Model) (job: Job) (why: string) (at: Millis) : Model * Effect list =
    let ended = result job ExitStatusUnavailable ExitReason.Error (at - job.issuedAt) (Some why)
    let model, creates = launch (store model job { job with phase = Phase.Ended(ended, model.endSeq, true) })
    model, Effect.Ended(ended, None) :: creates

/// End a job as lost (its pod or Job vanished, was evicted, or its node died), as `last` shows it.
let private ends (model: Model) (job: Job) (last: Job) (why: string) (wallTime: Millis) =
    finish model job last (result job ExitStatusUnavailable ExitReason.Lost wallTime (Some why)) true

/// End a job as lost where it stood.
let private lose (model: Model) (job: Job) (why: string) (wallTime: Millis) = ends model job job why wallTime

/// Delete an object of this run that the model no longer tracks (killed while being created, or left over).
let private deleteUntracked (model: Model) (id: JobId) =
    match model.tombstones.TryFind id with
    | Some name -> { model with tombstones = model.tombstones.Remove id }, [ Effect.Delete(id, name) ]
    | None -> model, []

/// Apply what one pod observation means to the job it names.
let rec private observe (model: Model) (pod: PodFacts) (at: Millis) : Model * Effect list =
    match model.jobs.TryFind pod.job with
    | None -> deleteUntracked model pod.job
    | Some job ->
        match job.phase with
        // Nothing of a queued job can exist yet (a stale or foreign object); an ended job's result is final.
        | Phase.Queued _
        | Phase.Ended _ -> model, []
        | Phase.Creating
        | Phase.Created _
        | Phase.Running _ ->
            match ofPod job pod at with
            | Verdict.Beside surplus -> store model job { job with surplus = surplus }, []
            | Verdict.MovesTo other -> moveTo model job other at
            | Verdict.Continues phase -> store model job (place job pod phase at), []
            // The job ends placed on the pod's node: a job whose first observation is its last still ran there.
            | Verdict.Lost(why, wall) -> ends model job (place job pod (seen job at) at) why wall
            | Verdict.Finished(exitStatus, reason, wall, message) ->
                let placed = place job pod (seen job at) at
                finish model job placed (result placed exitStatus reason wall message) false

/// The job going on in another pod of its Job, whose facts are then applied: it leaves its node unless that pod is on
/// the same node.
and private moveTo (model: Model) (job: Job) (other: PodFacts) (at: Millis) =
    let moved =
        { job with
            pod = None
            node = (if job.node = other.node then job.node else None)
            surplus = job.surplus.Remove other.pod }

    observe (store model job moved) other at

/// Apply steps to items in order, the effects of each following those of the one before.
let private each (apply: Model -> 'T -> Model * Effect list) (model: Model) (items: 'T list) =
    let effects, model =
        items |> List.mapFold (fun m item -> let m, fx = apply m item in fx, m) model

    model, List.concat effects

/// Apply a fresh list of the run's pods. A live job whose pod was seen before the list was requested and is not in it
/// lost that pod while the watch was down: it goes on in a surplus pod that is listed, else it is lost. The losses
/// come first, as if the list were observed in order, so that what they free is taken by the jobs whose pods are
/// listed. Surplus pods not listed are gone too.
let private resync (model: Model) (snapshot: PodFacts list) (listedAt: Millis) (at: Millis) =
    let listed = snapshot |> List.map (fun p -> p.pod, p) |> Map.ofList

    let vanished (job: Job) =
        match job.phase, job.pod with
        | (Phase.Created _ | Phase.Running _), Some pod ->
            not (listed.ContainsKey pod) && job.podSeenAt |> Option.exists (fun seen -> seen < listedAt)
        | _ -> false

    let goneOrMoved (m: Model) (job: Job) =
        let bound = Option.get job.pod

        match job.surplus |> Map.tryFindKey (fun name _ -> listed.ContainsKey name) with
        // The Job controller deleted the job's pod as the surplus one; the job goes on in the other.
        | Some name -> moveTo m job listed[name] at
        | None ->
            let why =
                match snapshot |> List.tryFind (fun p -> p.job = job.id) with
                | Some other -> $"pod {bound} was replaced by {other.pod}: the first pod was evicted or deleted"
                | None -> "its pod vanished while the watch was down"

            lose m job why (at - startOf job)

    let model, lost =
        model.jobs |> Seq.map (fun kv -> kv.Value) |> Seq.filter vanished |> List.ofSeq |> each goneOrMoved model

    let model =
        model.jobs
        |> Seq.map (fun kv -> kv.Value)
        |> Seq.filter (fun job -> job.surplus |> Map.exists (fun name _ -> not (listed.ContainsKey name)))
        |> List.ofSeq
        |> List.fold
            (fun m job -> store m job { job with surplus = job.surplus |> Map.filter (fun name _ -> listed.ContainsKey name) })
            model

    let model, seen = each (fun m pod -> observe m pod at) model snapshot
    model, lost @ seen

/// Since when the pod timeout of a job stuck as `stuck` counts at `at`: since it got stuck, but for a job whose pod
/// waits for room, not before the run last held room on a node (none while it holds some now).
let stuckSince (model: Model) (stuck: Stuck) (at: Millis) : Millis =
    if not stuck.waitsForRoom then stuck.since
    elif not model.nodes.IsEmpty then at
    else
        match model.roomHeldAt with
        | Some held -> max stuck.since held
        | None -> stuck.since

/// Fail jobs stuck past the pod timeout, naming why.
let private expire (model: Model) (at: Millis) =
    model.stuck
    |> Seq.choose (fun id ->
        match model.jobs.TryFind id with
        | Some({ phase = Phase.Created(_, Some stuck) } as job) ->
            let since = stuckSince model stuck at
            if at - since >= model.config.podTimeout then Some(job, stuck.why, since) else None
        | _ -> None)
    |> List.ofSeq
    |> each
        (fun m (job, why, since) ->
            let message =
                $"{why} (stuck for {(at - since) / 1000L} s; the pod timeout is {m.config.podTimeout / 1000L} s)"

            finish m job job (result job ExitStatusUnavailable ExitReason.Error (at - startOf job) (Some message)) true)
        model

/// Remove a job on request: it is never reported, its capacity is free at once.
let private kill (model: Model) (id: JobId) : Model * Effect list =
    match model.jobs.TryFind id with
    | None -> model, []
    | Some job ->
        let model = remove model job
        let delete = [ Effect.Delete(id, job.request.name) ]

        match job.phase with
        | Phase.Queued _ -> model, []
        | Phase.Creating ->
            // The create may land after this delete: delete again once it does.
            { model with tombstones = model.tombstones.Add(id, job.request.name) }, delete
        | Phase.Created _
        | Phase.Running _ -> model, delete
        | Phase.Ended(_, _, deleted) -> model, (if deleted then [] else delete)

/// The back-off before a probe after the first refusal, and its most.
[<Literal>]
let QuotaFirstDelay = 1000L

[<Literal>]
let QuotaMaxDelay = 30000L

/// How long to wait before trying a job beyond the cap after `refusals` refusals: doubling from `QuotaFirstDelay` up
/// to `QuotaMaxDelay`, and at least what the server asked for.
let quotaDelay (refusals: int) (retryAfter: System.TimeSpan option) : Millis =
    let doubled = QuotaFirstDelay <<< (min 5 (max 0 (refusals - 1)))
    let asked = retryAfter |> Option.map (fun t -> int64 t.TotalMilliseconds) |> Option.defaultValue 0L
    max (min QuotaMaxDelay doubled) asked

/// A create refused by a quota: the job goes back to the queue in its place (its capacity free again) and the cap
/// falls to the jobs that hold capacity now; one that alone asks for more than the quota allows ends with Error.
let private refuse (model: Model) (prepared: PreparedJob) (refusal: QuotaRefusal) (at: Millis) =
    match model.jobs.TryFind prepared.id with
    | Some({ phase = Phase.Creating } as job) when Quota.neverFits refusal ->
        neverCreated model job (Quota.explainNeverFits refusal) at
    | Some({ phase = Phase.Creating } as job) ->
        let model = store model job { job with phase = Phase.Queued prepared }

        let refusals =
            match model.admission with
            | Some a -> a.refusals + 1
            | None -> 1

        { model with
            admission =
                Some
                    { cap = model.used.jobs
                      refusals = refusals
                      refusedSinceProbe = true
                      probeAt = at + quotaDelay refusals refusal.retryAfter
                      probing =
                        match model.admission with
                        | Some a -> a.probing
                        | None -> true } },
        []
    | Some _ -> model, []
    // Killed while its create was under way: nothing was created, nothing is left to delete.
    | None -> { model with tombstones = model.tombstones.Remove prepared.id }, []

/// Once the back-off after the last refusal expired, while queued jobs wait for the cap and nothing else: the cap
/// grows by one and a job is tried. A probe that no refusal followed since the last one makes up for a refusal.
let private probe (model: Model) (at: Millis) =
    match model.admission with
    | Some a when a.probing && at >= a.probeAt && not model.queue.IsEmpty && model.used.jobs >= a.cap ->
        let refusals = if a.refusedSinceProbe then a.refusals else max 0 (a.refusals - 1)

        launch
            { model with
                admission =
                    Some
                        { a with
                            cap = model.used.jobs + 1
                            refusals = refusals
                            refusedSinceProbe = false
                            probeAt = at + quotaDelay refusals None } }
    | Some _
    | None -> model, []

/// The quotas read when connecting: the cap is the jobs holding capacity and the room the quotas leave them.
let private seed (model: Model) (quotas: QuotaStatus list) (asJobs: bool) (at: Millis) =
    let model = { model with quotas = quotas }

    match Quota.room asJobs quotas with
    | None -> model, []
    | Some room ->
        launch
            { model with
                admission =
                    Some
                        { cap = model.used.jobs + room
                          refusals = 0
                          refusedSinceProbe = false
                          probeAt = at + QuotaFirstDelay
                          probing = not asJobs } }

/// A job that exists in Kubernetes and whose pod has not appeared yet: the pod timeout runs from its creation. In a
/// namespace whose quotas limit the run, a Job's pod may be refused for want of room the run's own pods hold (the quota
/// is recounted, and the Job controller tries again, some time after they end): it waits for room, as an
/// unschedulable pod does.
let private createdWithoutPod (model: Model) (createdAt: Millis) =
    Phase.Created(createdAt, Some { why = NoPodYet; since = createdAt; waitsForRoom = model.admission.IsSome })

let private live (model: Model) =
    model.jobs |> Seq.map (fun kv -> kv.Value) |> Seq.filter isLive |> List.ofSeq

/// The model after one event, and the effects it asks for in order, node cleanups aside.
let private apply (model: Model) (event: Event) : Model * Effect list =
    match event with
    | Event.Issued(job, at) ->
        if model.shutDown || job.id < model.nextId then
            model, []
        else
            let added = newJob job.id job.request at (Phase.Queued job)
            let model = add model added

            match Quota.tooBigFor model.quotas job.resources.requests job.resources.limits with
            // It never fits, however many pods end: it ends at once, never created.
            | Some refusal -> neverCreated model added (Quota.explainNeverFits refusal) at
            | None -> launch model
    | Event.Adopted(id, request, at) ->
        if model.shutDown || id < model.nextId then
            model, []
        else
            add model (newJob id request at (createdWithoutPod model at)), []
    | Event.KillRequested(ids, _) ->
        let model, deletes = ids |> List.distinct |> each kill model
        let model, creates = launch model
        model, deletes @ creates
    | Event.Created(id, at) ->
        // The job exists in Kubernetes; its pod may have been seen first, which already recorded that.
        match model.jobs.TryFind id with
        | Some({ phase = Phase.Creating } as job) -> store model job { job with phase = createdWithoutPod model at }, []
        | Some _ -> model, []
        | None -> deleteUntracked model id
    | Event.CreateFailed(id, message, at) ->
        match model.jobs.TryFind id with
        | Some({ phase = Phase.Creating } as job) ->
            finish model job job (result job ExitStatusUnavailable ExitReason.Error (at - job.issuedAt) (Some message)) false
        | Some _ -> model, []
        | None -> { model with tombstones = model.tombstones.Remove id }, []
    | Event.QuotaRefused(job, refusal, at) -> refuse model job refusal at
    | Event.QuotasRead(quotas, asJobs, at) -> if model.shutDown then model, [] else seed model quotas asJobs at
    | Event.Observed(pod, at) -> observe model pod at
    | Event.Removed(id, pod, at) ->
        match model.jobs.TryFind id with
        | Some job when isLive job && job.pod = Some pod ->
            match Seq.tryHead job.surplus with
            // The Job controller removed the job's pod as the surplus one: the job goes on in the other.
            | Some(KeyValue(_, other)) -> moveTo model job other at
            | None -> lose model job (deletedEarly pod) (at - startOf job)
        | Some job when isLive job && job.surplus.ContainsKey pod -> store model job { job with surplus = job.surplus.Remove pod }, []
        | _ -> model, []
    | Event.Resynced(snapshot, listedAt, at) -> resync model snapshot listedAt at
    | Event.NodeLost(node, at) ->
        live model
        |> List.filter (fun job -> job.node = Some node)
        |> each (fun m job -> lose m job $"its node {node} was lost" (at - startOf job)) model
    | Event.Tick at ->
        let model, failed = expire model at
        let model, probed = probe model at
        model, failed @ probed
    | Event.Shutdown _ ->
        if model.shutDown then
            model,
            []
        else
            { initial model.config with
                nextId = model.nextId
                shutDown = true },
            [ Effect.DeleteAll ]

/// When an event happened.
let private timeOf (event: Event) : Millis =
    match event with
    | Event.Issued(_, at)
    | Event.Adopted(_, _, at)
    | Event.KillRequested(_, at)
    | Event.Created(_, at)
    | Event.CreateFailed(_, _, at)
    | Event.QuotaRefused(_, _, at)
    | Event.QuotasRead(_, _, at)
    | Event.Observed(_, at)
    | Event.Removed(_, _, at)
    | Event.Resynced(_, _, at)
    | Event.NodeLost(_, at)
    | Event.Tick at
    | Event.Shutdown at -> at

/// The run held room on a node up to `at` when a job of it was on one before or after an event that changed the model
/// (an event that changes nothing leaves the model as it was; the moment room comes free always changes it).
let private noteRoom (before: Model) (after: Model) (at: Millis) : Model =
    if obj.ReferenceEquals(before, after) || before.nodes.IsEmpty && after.nodes.IsEmpty then
        after
    else
        { after with roomHeldAt = Some at }

/// The transition function: the next model and the effects to perform, in order (node cleanups first).
let step (model: Model) (event: Event) : Model * Effect list =
    let after, effects = apply model event
    let after = noteRoom model after (timeOf event)

    match NodeCleanup.vacated model after event effects with
    | [] -> after, effects
    | nodes -> after, (nodes |> List.map Effect.CleanupNode) @ effects

/// Apply events in order, collecting every effect.
let fold (model: Model) (events: Event seq) : Model * Effect list =
    each step model (List.ofSeq events)

/// Take the oldest uncollected result: the result, the model without the job, and the effects collecting asks for
/// (deleting its Job, unless that happened when it ended).
let collect (model: Model) : UpdatedJob option * Model * Effect list =
    if model.ended.IsEmpty then
        None, model, []
    else
        match model.jobs.TryFind(snd (Map.minKeyValue model.ended)) with
        | Some({ phase = Phase.Ended(result, _, deleted) } as job) ->
            Some result, remove model job, (if deleted then [] else [ Effect.Delete(job.id, job.request.name) ])
        | Some _
        | None -> None, model, []

/// The job with this id, if the model tracks it (issued, neither killed nor collected).
let job (model: Model) (id: JobId) : Job option = model.jobs.TryFind id

/// Every job the model tracks, by increasing id.
let jobs (model: Model) : Job list =
    model.jobs |> Seq.map (fun kv -> kv.Value) |> List.ofSeq

/// Whether a job is issued and neither killed nor collected.
let isIssued (model: Model) (id: JobId) : bool = model.jobs.ContainsKey id

/// Ids of jobs issued and neither killed nor collected, in increasing order (queued, running and ended ones).
let issued (model: Model) : JobId list =
    model.jobs |> Seq.map (fun kv -> kv.Key) |> List.ofSeq

/// Jobs whose container runs, with how long it has run at `now`.
let running (model: Model) (now: Millis) : (JobId * Millis) list =
    model.jobs
    |> Seq.choose (fun kv ->
        match kv.Value.phase with
        | Phase.Running(_, startedAt) -> Some(kv.Key, max 0L (now - startedAt))
        | Phase.Queued _
        | Phase.Creating
        | Phase.Created _
        | Phase.Ended _ -> None)
    |> List.ofSeq

/// The name of the Job of a job killed while its create call was under way, to delete once the create lands.
let tombstone (model: Model) (id: JobId) : string option = model.tombstones.TryFind id

/// What must hold of every model, each broken promise in words (empty: all hold): the indexes agree with the jobs
/// (queue, ended, stuck, expiring, pool usage, node counts) and ids are below `nextId`.
let invariants (model: Model) : string list =
    let all = jobs model

    let queue =
        all
        |> List.choose (fun job ->
            match job.phase with
            | Phase.Queued _ -> Some job.id
            | _ -> None)
        |> Set.ofList

    let endedJobs =
        all
        |> List.choose (fun job ->
            match job.phase with
            | Phase.Ended(_, seq, _) -> Some(seq, job.id)
            | _ -> None)

    let ended = Map.ofList endedJobs

    let stuck = all |> List.filter isStuck |> List.map _.id |> Set.ofList
    let expiring = all |> List.filter isExpiring |> List.map _.id |> Set.ofList

    let used =
        all
        |> List.filter holdsCapacity
        |> List.fold (fun usage job -> Pool.add usage job.request 1) Pool.empty

    let nodes = all |> List.choose countedOn |> List.countBy id |> Map.ofList

    [ if model.jobs |> Map.exists (fun id job -> id <> job.id) then
          "a job is stored under another job's id"
      if model.jobs |> Map.exists (fun id _ -> id >= model.nextId) then
          $"a job's id is not below the next id {model.nextId}"
      if queue <> model.queue then
          $"the queue holds %A{model.queue}, the queued jobs are %A{queue}"
      if ended <> model.ended then
          $"the ended index holds %A{model.ended}, the ended jobs are %A{ended}"
      if ended |> Map.exists (fun seq _ -> seq >= model.endSeq) then
          $"an ended job's sequence number is not below {model.endSeq}"
      if ended.Count <> endedJobs.Length then
          "two ended jobs share a sequence number"
      if stuck <> model.stuck then
          $"the stuck index holds %A{model.stuck}, the stuck jobs are %A{stuck}"
      if expiring <> model.expiring then
          $"the expiring index holds %A{model.expiring}, the jobs stuck for a reason other than room are %A{expiring}"
      if used <> model.used then
          $"the pool counts %A{model.used}, the jobs holding capacity hold %A{used}"
      if nodes <> model.nodes then
          $"the node counts are %A{model.nodes}, the jobs count %A{nodes}" ]
