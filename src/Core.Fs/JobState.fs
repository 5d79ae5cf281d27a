/// The lifecycle of the batch system's jobs as a pure transition function: the shell feeds what it sees (issue and
/// kill requests, pod observations from one watch, resync snapshots, clock ticks) as events, and performs the
/// effects the function returns. Time is an input (milliseconds since the Unix epoch); nothing here reads a clock.
module HybridBatch.Core.JobState

/// A batch system job id: unique, increasing, never reused.
type JobId = int

/// Milliseconds since the Unix epoch, or a duration in milliseconds.
type Millis = int64

/// Why a job ended, as Toil's `BatchJobExitReason` names it.
[<RequireQualifiedAccess>]
type ExitReason =
    /// The command exited 0.
    | Finished
    /// The command exited non-zero.
    | Failed
    /// The job's pod vanished or was evicted (or its Job deleted), or its node was lost.
    | Lost
    /// The job was killed on request (never reported; listed for completeness of the contract).
    | Killed
    /// The job could not run: create failed, image missing, unschedulable, stuck creating.
    | Error
    /// The container exceeded its memory limit (OOMKilled).
    | MemLimit

/// The exit status reported when a container's exit code is unknown.
[<Literal>]
let ExitStatusUnavailable = 255

/// What the pool accounting needs of a job, and the name of the Kubernetes Job that backs it.
type JobRequest =
    { name: string
      millicores: int64
      memory: int64
      disk: int64 }

/// The limits of the local pool: jobs wait in the local queue while issuing them would exceed any of these.
type Limits =
    { maxJobs: int
      maxMillicores: int64
      maxMemory: int64
      maxDisk: int64 }

/// Settings of the transition function.
type Config =
    {
      /// How long a job may stay stuck (unschedulable, image missing, creating) before it fails with Error.
      podTimeout: Millis
      limits: Limits }

/// A finished job as the batch system reports it.
type UpdatedJob =
    { id: JobId
      exitStatus: int
      reason: ExitReason
      /// Always > 0: from container start to finish, or from creation to the end when no container ran.
      wallTime: Millis
      /// The name of the Kubernetes Job that ran it.
      backingId: string
      /// Why it ended, when the exit status alone does not say (Error, Lost).
      message: string option }

/// The state of a job's container as a pod reports it.
[<RequireQualifiedAccess>]
type Container =
    | NotCreated
    | Waiting of reason: string * message: string option
    | Running of startedAt: Millis
    | Terminated of
        exitCode: int *
        reason: string option *
        message: string option *
        startedAt: Millis option *
        finishedAt: Millis option

/// The phase of a pod.
[<RequireQualifiedAccess>]
type PodPhase =
    | Pending
    | Running
    | Succeeded
    | Failed
    | Unknown

/// What one observation of a job's pod says.
type PodFacts =
    { job: JobId
      pod: string
      node: string option
      phase: PodPhase
      /// The pod's status reason, such as Evicted or NodeLost.
      reason: string option
      message: string option
      /// The scheduler's message when the pod cannot be scheduled.
      unschedulable: string option
      container: Container
      /// A deletion timestamp is set.
      deleting: bool }

/// Something that happened, fed to `step` in the order the shell saw it.
[<RequireQualifiedAccess>]
type Event =
    /// A job was issued; the shell takes the id from `nextId`. Ids below `nextId` are ignored.
    | Issued of id: JobId * request: JobRequest * at: Millis
    /// A Job of this run found in the cluster when re-attaching, in increasing id order. Ids below `nextId` are ignored.
    | Adopted of id: JobId * request: JobRequest * at: Millis
    /// The caller asked to kill these jobs; unknown ids are ignored.
    | KillRequested of ids: JobId list * at: Millis
    /// The create call returned (created, or already existed).
    | Created of id: JobId * at: Millis
    /// The create call failed for good.
    | CreateFailed of id: JobId * message: string * at: Millis
    /// The pod watch delivered an added or modified pod. (The shell watches pods only: everything a job's end needs is
    /// on its pod, and a Job deleted by someone else takes its pod with it.)
    | Observed of PodFacts * at: Millis
    /// The pod watch delivered a deleted pod.
    | Removed of id: JobId * pod: string * at: Millis
    /// A full list of the run's pods, taken after the watch was lost. `listedAt` is when the list was requested.
    | Resynced of snapshot: PodFacts list * listedAt: Millis * at: Millis
    /// A node is gone (deleted, or marked unreachable).
    | NodeLost of node: string * at: Millis
    /// Time passed.
    | Tick of at: Millis
    /// The caller takes the oldest uncollected result.
    | Collect of at: Millis
    /// The batch system shuts down: every job is deleted.
    | Shutdown of at: Millis

/// Something the shell must do.
[<RequireQualifiedAccess>]
type Effect =
    /// Create the Kubernetes Job for this job.
    | Create of id: JobId
    /// Delete the Kubernetes Job (background propagation); a missing Job is fine.
    | Delete of id: JobId * name: string
    /// A job ended: its result waits for collection. `pod` is the pod whose log explains a failure, if any.
    | Ended of UpdatedJob * pod: string option
    /// Hand this result to the caller.
    | Deliver of UpdatedJob
    /// The last job of this run left the node: remove the run's work directory there.
    | CleanupNode of node: string
    /// Delete every Job and pod of this run.
    | DeleteAll

/// Where a job is in its life.
[<RequireQualifiedAccess>]
type Phase =
    /// Waiting for room in the local pool.
    | Queued
    /// Its create call is under way.
    | Creating
    /// It exists in Kubernetes; its container is not running yet. `stuck` is why it waits and since when: from its
    /// creation until its pod appears, then while the pod waits for a reason that may never clear.
    | Created of createdAt: Millis * stuck: (string * Millis) option
    /// Its container runs.
    | Running of createdAt: Millis * startedAt: Millis
    /// It ended; the result waits for the caller. `deleted` says whether its Job was already deleted.
    | Ended of result: UpdatedJob * seq: int64 * deleted: bool

/// One job the batch system tracks.
type Job =
    { id: JobId
      request: JobRequest
      issuedAt: Millis
      phase: Phase
      /// The pod that runs it, once seen.
      pod: string option
      /// When the pod was first seen.
      podSeenAt: Millis option
      /// Other pods of its Job that exist beside `pod`, as last seen. The Job controller makes a second pod when its
      /// create call failed after the API server had stored the first (the API server died mid-call, for one); it then
      /// deletes one of the two itself. Whichever runs the command to its end gives the job's result.
      surplus: Map<string, PodFacts>
      /// The node it was placed on, once seen, while it counts towards the node's jobs.
      node: string option }

/// Resources the pool has handed out.
type Usage =
    { jobs: int
      millicores: int64
      memory: int64
      disk: int64 }

/// Everything the transition function knows.
type Model =
    { config: Config
      nextId: JobId
      jobs: Map<JobId, Job>
      /// Queued job ids; ids increase, so the set's order is the order of issue.
      queue: Set<JobId>
      /// Ended, uncollected jobs by the order they ended in.
      ended: Map<int64, JobId>
      endSeq: int64
      /// Jobs whose pod waits for a reason that may never clear, by id.
      stuck: Set<JobId>
      used: Usage
      /// Jobs of this run counted on each node.
      nodes: Map<string, int>
      /// Jobs killed while their create call was under way: their Job must be deleted once it exists.
      tombstones: Map<JobId, string>
      shutDown: bool }

let private noUsage =
    { jobs = 0
      millicores = 0L
      memory = 0L
      disk = 0L }

/// The model before anything happened.
let initial (config: Config) : Model =
    { config = config
      nextId = 1
      jobs = Map.empty
      queue = Set.empty
      ended = Map.empty
      endSeq = 0L
      stuck = Set.empty
      used = noUsage
      nodes = Map.empty
      tombstones = Map.empty
      shutDown = false }

/// The id the next issued job gets.
let nextId (model: Model) : JobId = model.nextId

/// Whether a job's phase is Ended.
let private isEnded (job: Job) =
    match job.phase with
    | Phase.Ended _ -> true
    | Phase.Queued
    | Phase.Creating
    | Phase.Created _
    | Phase.Running _ -> false

/// Waiting reasons that may never clear by themselves: the pod timeout applies to them.
let stuckReasons =
    set
        [ "Unschedulable"
          "ErrImagePull"
          "ImagePullBackOff"
          "ErrImageNeverPull"
          "InvalidImageName"
          "CreateContainerConfigError"
          "CreateContainerError"
          "ContainerCreating" ]

let private add (u: Usage) (r: JobRequest) sign =
    { jobs = u.jobs + sign
      millicores = u.millicores + int64 sign * r.millicores
      memory = u.memory + int64 sign * r.memory
      disk = u.disk + int64 sign * r.disk }

let private fits (limits: Limits) (u: Usage) (r: JobRequest) =
    u.jobs + 1 <= limits.maxJobs
    && u.millicores + r.millicores <= limits.maxMillicores
    && u.memory + r.memory <= limits.maxMemory
    && u.disk + r.disk <= limits.maxDisk

/// Whether the job holds pool capacity (issued to Kubernetes and not ended).
let private holdsCapacity (job: Job) =
    match job.phase with
    | Phase.Creating
    | Phase.Created _
    | Phase.Running _ -> true
    | Phase.Queued
    | Phase.Ended _ -> false

/// Start queued jobs, oldest first, while they fit the pool. Strict order: a large job is not overtaken.
let rec private launch (model: Model) (effects: Effect list) : Model * Effect list =
    if model.shutDown || model.queue.IsEmpty then
        model, effects
    else
        let id = model.queue.MinimumElement
        let job = model.jobs[id]

        if fits model.config.limits model.used job.request then
            let model =
                { model with
                    queue = model.queue.Remove id
                    jobs = model.jobs.Add(id, { job with phase = Phase.Creating })
                    used = add model.used job.request 1 }

            launch model (Effect.Create id :: effects)
        else
            model, effects

/// Take the job off its node; the node's last job leaving asks for its cleanup.
let private leaveNode (model: Model) (job: Job) (effects: Effect list) =
    match job.node with
    | None -> model, effects
    | Some node ->
        let count = (model.nodes.TryFind node |> Option.defaultValue 1) - 1

        if count <= 0 then
            { model with nodes = model.nodes.Remove node }, Effect.CleanupNode node :: effects
        else
            { model with nodes = model.nodes.Add(node, count) }, effects

/// Release what a job held: pool capacity, its place on a node, its stuck mark.
let private release (model: Model) (job: Job) (effects: Effect list) =
    let model =
        { model with
            used = if holdsCapacity job then add model.used job.request -1 else model.used
            stuck = model.stuck.Remove job.id }

    leaveNode model job effects

let private atLeastOne (ms: Millis) = max 1L ms

/// End a job with a result: it waits for collection; its resources go back to the pool.
let private finish
    (model: Model)
    (job: Job)
    (exitStatus: int)
    (reason: ExitReason)
    (wallTime: Millis)
    (message: string option)
    (deleteNow: bool)
    (effects: Effect list)
    =
    let result =
        { id = job.id
          exitStatus = exitStatus
          reason = reason
          wallTime = atLeastOne wallTime
          backingId = job.request.name
          message = message }

    let model, effects = release model job effects
    let seq = model.endSeq

    let model =
        { model with
            jobs = model.jobs.Add(job.id, { job with phase = Phase.Ended(result, seq, deleteNow); node = None })
            ended = model.ended.Add(seq, job.id)
            endSeq = seq + 1L }

    let effects =
        Effect.Ended(result, job.pod)
        :: (if deleteNow then
                Effect.Delete(job.id, job.request.name) :: effects
            else
                effects)

    launch model effects

/// The moment a job's clock starts when no container ran: creation, else issue.
let private startOf (job: Job) =
    match job.phase with
    | Phase.Running(_, startedAt) -> startedAt
    | Phase.Created(createdAt, _) -> createdAt
    | Phase.Queued
    | Phase.Creating
    | Phase.Ended _ -> job.issuedAt

/// End a job as lost: its pod or Job vanished, was evicted, or its node died.
let private lose model job why at effects =
    finish model job ExitStatusUnavailable ExitReason.Lost (at - startOf job) (Some why) true effects

let private createdAtOf (job: Job) at =
    match job.phase with
    | Phase.Created(createdAt, _)
    | Phase.Running(createdAt, _) -> createdAt
    | Phase.Queued
    | Phase.Creating
    | Phase.Ended _ -> at

let private put (model: Model) (job: Job) = { model with jobs = model.jobs.Add(job.id, job) }

/// Why a created job waits while no pod of it has appeared. The pod timeout runs from creation: a Job whose pod never
/// comes (the Job controller was refused by a quota, a LimitRange or an admission webhook, or the Job was deleted
/// before its pod was made) ends with Error instead of waiting for ever. One shared string: every created job holds it
/// until its pod appears; the result names the Job (its backing id).
[<Literal>]
let NoPodYet =
    "no pod appeared for the Job: the Job controller could not create one (a quota, LimitRange or admission webhook refused it) or the Job was deleted; `kubectl describe job` with the backing id says which"

/// A job that exists in Kubernetes and whose pod has not appeared yet.
let private createdWithoutPod (model: Model) (job: Job) (createdAt: Millis) =
    let job = { job with phase = Phase.Created(createdAt, Some(NoPodYet, createdAt)) }
    { put model job with stuck = model.stuck.Add job.id }


let private describe (reason: string) (message: string option) =
    match message with
    | Some m when m <> "" -> $"{reason}: {m}"
    | _ -> reason

/// Whether a phase waits for a reason that may never clear (the pod timeout runs).
let private isStuck (phase: Phase) =
    match phase with
    | Phase.Created(_, Some _) -> true
    | Phase.Queued
    | Phase.Creating
    | Phase.Created(_, None)
    | Phase.Running _
    | Phase.Ended _ -> false

/// Why a job whose pod was deleted before its container finished is lost. Deleting a Job deletes its pod too, so this
/// is also what a Job deleted by someone else looks like.
let private deletedEarly (pod: string) =
    $"pod {pod} was deleted before its container finished (it, or its Job, was deleted by someone else)"

/// Whether a pod is on its way out without a result of its own: deleted, or ended by the kubelet or the node.
let private goingAway (pod: PodFacts) =
    pod.deleting
    || match pod.reason with
       | Some("Evicted" | "NodeLost" | "Shutdown" | "Terminated") -> true
       | _ -> false

/// Apply one pod observation to a live (not ended) job.
let rec private observePod (model: Model) (job: Job) (pod: PodFacts) (at: Millis) (effects: Effect list) =
    match job.pod with
    | Some bound when bound <> pod.pod ->
        // Backoff limit 0 and restart policy Never allow one pod, but the Job controller makes a second when its
        // create call failed after the first was stored. The watch delivers a pod's deletion before a replacement's
        // creation, so a second pod seen while the job is live is such a surplus pod, not a replacement: the
        // controller deletes one of the two, and a container that runs to its end in either is the job's result.
        match pod.container with
        | Container.Terminated _ when not (goingAway pod) -> rebind model job pod at effects
        | _ when goingAway pod -> put model { job with surplus = job.surplus.Remove pod.pod }, effects
        | _ -> put model { job with surplus = job.surplus.Add(pod.pod, pod) }, effects
    | Some bound when pod.deleting && not job.surplus.IsEmpty ->
        // The Job controller deletes the bound pod as the surplus one: the job goes on in the other.
        rebind model { job with surplus = job.surplus.Remove bound } (Seq.head job.surplus).Value at effects
    | _ ->
        // What the observation changes is computed first and the job stored once at the end: each store into the
        // jobs map copies a path of it, and this runs for every pod event.
        let wasStuck = isStuck job.phase

        // Its pod appeared (perhaps before its create call returned): the no-pod clock stops; the pod's own waiting
        // reasons (below) start theirs.
        let phase =
            match job.phase with
            | Phase.Creating -> Phase.Created(at, None)
            | Phase.Created(createdAt, Some _) when job.pod.IsNone -> Phase.Created(createdAt, None)
            | phase -> phase

        let entering =
            match job.node, pod.node with
            | None, Some n -> Some n
            | _ -> None

        let job =
            { job with
                phase = phase
                pod = Some pod.pod
                podSeenAt = (if job.podSeenAt.IsSome then job.podSeenAt else Some at)
                node = (if entering.IsSome then entering else job.node) }

        let model =
            match entering with
            | Some n ->
                { model with
                    nodes = model.nodes.Add(n, (model.nodes.TryFind n |> Option.defaultValue 0) + 1) }
            | None -> model

        /// Store the job with its new phase; `stuck` lists it exactly when the phase says it is stuck.
        let store (phase: Phase) =
            let stuck =
                match wasStuck, isStuck phase with
                | false, true -> model.stuck.Add job.id
                | true, false -> model.stuck.Remove job.id
                | _ -> model.stuck

            { model with
                jobs = model.jobs.Add(job.id, { job with phase = phase })
                stuck = stuck },
            effects

        match pod.reason, pod.container with
        | Some("Evicted" | "NodeLost" | "Shutdown" | "Terminated" as reason), _ ->
            lose model job (describe $"pod {reason}" pod.message) at effects
        | _, Container.Terminated(code, reason, message, startedAt, finishedAt) ->
            let exitReason =
                match reason with
                | Some "OOMKilled" -> ExitReason.MemLimit
                | _ when code = 0 -> ExitReason.Finished
                | _ -> ExitReason.Failed

            let wall =
                match startedAt, finishedAt with
                | Some s, Some f -> f - s
                | Some s, None -> at - s
                | None, _ -> at - startOf job

            let message =
                match exitReason with
                | ExitReason.MemLimit -> Some(describe "OOMKilled: the container exceeded its memory limit" message)
                | ExitReason.Finished
                | ExitReason.Failed
                | ExitReason.Lost
                | ExitReason.Killed
                | ExitReason.Error -> message

            finish model job code exitReason wall message false effects
        | _, _ when pod.deleting -> lose model job (deletedEarly pod.pod) at effects
        | _, (Container.NotCreated | Container.Waiting _ | Container.Running _) when
            pod.phase = PodPhase.Succeeded
            ->
            finish model job 0 ExitReason.Finished (at - startOf job) None false effects
        | _, (Container.NotCreated | Container.Waiting _ | Container.Running _) when pod.phase = PodPhase.Failed ->
            finish
                model
                job
                ExitStatusUnavailable
                ExitReason.Failed
                (at - startOf job)
                (Some(describe "pod failed" pod.message))
                false
                effects
        | _, Container.Running startedAt ->
            match job.phase with
            | Phase.Created(createdAt, _) -> store (Phase.Running(createdAt, startedAt))
            | phase -> store phase
        | _, (Container.NotCreated | Container.Waiting _) ->
            let waiting =
                match pod.unschedulable, pod.container with
                | Some message, _ -> Some(describe "Unschedulable" (Some message))
                | None, Container.Waiting(reason, message) when stuckReasons.Contains reason ->
                    Some(describe reason message)
                | None, _ -> None

            match job.phase, waiting with
            | Phase.Created(createdAt, None), Some why -> store (Phase.Created(createdAt, Some(why, at)))
            // The cause may change (ErrImagePull → ImagePullBackOff); the clock keeps running.
            | Phase.Created(createdAt, Some(_, since)), Some why -> store (Phase.Created(createdAt, Some(why, since)))
            | Phase.Created(createdAt, Some _), None -> store (Phase.Created(createdAt, None))
            | phase, _ -> store phase

/// Make another pod of the job's Job its pod (its first pod went, or the other ran the command first), then apply
/// that pod's facts. The job stays on its node when the other pod is on the same node.
and private rebind (model: Model) (job: Job) (other: PodFacts) (at: Millis) (effects: Effect list) =
    let model, effects, node =
        if job.node.IsSome && job.node = other.node then
            model, effects, job.node
        else
            let model, effects = leaveNode model job effects
            model, effects, None

    let job =
        { job with
            pod = None
            node = node
            surplus = job.surplus.Remove other.pod }

    observePod (put model job) job other at effects

/// Delete an object of this run that the model no longer tracks (killed while being created, or left over).
let private deleteUntracked (model: Model) (id: JobId) (effects: Effect list) =
    match model.tombstones.TryFind id with
    | Some name -> { model with tombstones = model.tombstones.Remove id }, Effect.Delete(id, name) :: effects
    | None -> model, effects

let private observe (model: Model) (pod: PodFacts) (at: Millis) (effects: Effect list) =
    match model.jobs.TryFind pod.job with
    | Some job when not (isEnded job) ->
        match job.phase with
        | Phase.Queued -> model, effects // nothing of a queued job can exist yet: a stale or foreign object
        | Phase.Creating
        | Phase.Created _
        | Phase.Running _
        | Phase.Ended _ -> observePod model job pod at effects
    | Some _ -> model, effects
    | None -> deleteUntracked model pod.job effects

/// Apply a fresh list of the run's pods. A live job whose pod was seen before the list was requested and is not in it
/// lost that pod while the watch was down: it goes on in a surplus pod known before, else it is lost. The losses come
/// first, as if the list were observed in order, so that what they free is taken by the jobs whose pods are listed.
let private resync (model: Model) (snapshot: PodFacts list) (listedAt: Millis) (at: Millis) effects =
    let listed = snapshot |> List.map (fun p -> p.pod, p) |> Map.ofList

    let vanished (job: Job) =
        match job.phase, job.pod with
        | (Phase.Created _ | Phase.Running _), Some pod ->
            not (listed.ContainsKey pod) && job.podSeenAt |> Option.exists (fun seen -> seen < listedAt)
        | _ -> false

    let missing = model.jobs |> Seq.map (fun kv -> kv.Value) |> Seq.filter vanished |> List.ofSeq

    let model, effects =
        missing
        |> List.fold
            (fun (m, fx) job ->
                let bound = Option.get job.pod

                match job.surplus |> Map.tryFindKey (fun name _ -> listed.ContainsKey name) with
                // The Job controller deleted the bound pod as the surplus one; the job goes on in the other.
                | Some name -> rebind m job listed[name] at fx
                | None ->
                    match snapshot |> List.tryFind (fun p -> p.job = job.id) with
                    | Some other ->
                        let why = $"pod {bound} was replaced by {other.pod}: the first pod was evicted or deleted"
                        lose m job why at fx
                    | None -> lose m job "its pod vanished while the watch was down" at fx)
            (model, effects)

    // Surplus pods not listed are gone too.
    let model =
        model.jobs
        |> Seq.filter (fun kv -> kv.Value.surplus |> Map.exists (fun name _ -> not (listed.ContainsKey name)))
        |> Seq.fold
            (fun m kv ->
                let surplus = kv.Value.surplus |> Map.filter (fun name _ -> listed.ContainsKey name)
                put m { kv.Value with surplus = surplus })
            model

    snapshot |> List.fold (fun (m, fx) pod -> observe m pod at fx) (model, effects)

/// Fail jobs stuck past the pod timeout, naming why.
let private expire (model: Model) (at: Millis) (effects: Effect list) =
    model.stuck
    |> Seq.choose (fun id ->
        match model.jobs[id].phase with
        | Phase.Created(_, Some(why, since)) when at - since >= model.config.podTimeout ->
            Some(model.jobs[id], why, since)
        | _ -> None)
    |> List.ofSeq
    |> List.fold
        (fun (m, fx) (job, why, since) ->
            let message =
                $"{why} (stuck for {(at - since) / 1000L} s; the pod timeout is {m.config.podTimeout / 1000L} s)"

            finish m job ExitStatusUnavailable ExitReason.Error (at - startOf job) (Some message) true fx)
        (model, effects)

/// Remove a job on request: it is never reported, its capacity is free at once.
let private kill (model: Model) (id: JobId) (effects: Effect list) =
    match model.jobs.TryFind id with
    | None -> model, effects
    | Some job ->
        let model, effects = release model job effects

        let model =
            { model with
                jobs = model.jobs.Remove id
                queue = model.queue.Remove id }

        match job.phase with
        | Phase.Queued -> model, effects
        | Phase.Creating ->
            // The create may land after this delete: delete again once it does.
            { model with tombstones = model.tombstones.Add(id, job.request.name) }, Effect.Delete(id, job.request.name) :: effects
        | Phase.Created _
        | Phase.Running _ -> model, Effect.Delete(id, job.request.name) :: effects
        | Phase.Ended(_, seq, deleted) ->
            let model = { model with ended = model.ended.Remove seq }

            model,
            (if deleted then
                 effects
             else
                 Effect.Delete(id, job.request.name) :: effects)

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

let private stepRev (model: Model) (event: Event) : Model * Effect list =
    match event with
    | Event.Issued(id, request, at) ->
        if model.shutDown || id < model.nextId then
            model, []
        else
            let job = newJob id request at Phase.Queued

            let model =
                { model with
                    nextId = id + 1
                    jobs = model.jobs.Add(id, job)
                    queue = model.queue.Add id }

            launch model []
    | Event.Adopted(id, request, at) ->
        if model.shutDown || id < model.nextId then
            model, []
        else
            let model =
                createdWithoutPod
                    { model with
                        nextId = id + 1
                        used = add model.used request 1 }
                    (newJob id request at Phase.Creating)
                    at

            model, []
    | Event.KillRequested(ids, _) ->
        let model, effects =
            ids |> List.distinct |> List.fold (fun (m, fx) id -> kill m id fx) (model, [])

        launch model effects
    | Event.Created(id, at) ->
        // The job exists in Kubernetes; its pod may have been seen first, which already recorded that.
        match model.jobs.TryFind id with
        | Some({ phase = Phase.Creating } as job) -> createdWithoutPod model job at, []
        | Some _ -> model, []
        | None -> deleteUntracked model id []
    | Event.CreateFailed(id, message, at) ->
        match model.jobs.TryFind id with
        | Some({ phase = Phase.Creating } as job) ->
            finish model job ExitStatusUnavailable ExitReason.Error (at - job.issuedAt) (Some message) false []
        | Some _ -> model, []
        | None -> { model with tombstones = model.tombstones.Remove id }, []
    | Event.Observed(observation, at) -> observe model observation at []
    | Event.Removed(id, pod, at) ->
        match model.jobs.TryFind id with
        | Some job when not (isEnded job) && job.pod = Some pod ->
            match Seq.tryHead job.surplus with
            // The Job controller removed the bound pod as the surplus one: the job goes on in the other.
            | Some(KeyValue(_, other)) -> rebind model job other at []
            | None -> lose model job (deletedEarly pod) at []
        | Some job when not (isEnded job) && job.surplus.ContainsKey pod ->
            put model { job with surplus = job.surplus.Remove pod }, []
        | _ -> model, []
    | Event.Resynced(snapshot, listedAt, at) -> resync model snapshot listedAt at []
    | Event.NodeLost(node, at) ->
        model.jobs
        |> Seq.map (fun kv -> kv.Value)
        |> Seq.filter (fun job -> job.node = Some node && not (isEnded job))
        |> List.ofSeq
        |> List.fold (fun (m, fx) job -> lose m job $"its node {node} was lost" at fx) (model, [])
    | Event.Tick at -> expire model at []
    | Event.Collect _ ->
        if model.ended.IsEmpty then
            model, []
        else
            let (KeyValue(seq, id)) = model.ended |> Seq.head
            let job = model.jobs[id]

            let model =
                { model with
                    ended = model.ended.Remove seq
                    jobs = model.jobs.Remove id }

            match job.phase with
            | Phase.Ended(result, _, deleted) ->
                model,
                (if deleted then
                     [ Effect.Deliver result ]
                 else
                     [ Effect.Delete(id, job.request.name); Effect.Deliver result ])
            | Phase.Queued
            | Phase.Creating
            | Phase.Created _
            | Phase.Running _ -> model, []
    | Event.Shutdown _ ->
        if model.shutDown then
            model, []
        else
            let cleanups = model.nodes |> Seq.map (fun kv -> Effect.CleanupNode kv.Key) |> List.ofSeq

            { initial model.config with
                nextId = model.nextId
                shutDown = true },
            cleanups @ [ Effect.DeleteAll ]

/// The transition function: the next model and the effects to perform, in order.
let step (model: Model) (event: Event) : Model * Effect list =
    let model, effects = stepRev model event

    let isCleanup =
        function
        | Effect.CleanupNode _ -> true
        | _ -> false

    // A node can empty and fill again within one step (a resync whose list both loses a job there and shows a newly
    // launched one landing there): it is not empty, so it is not cleaned; the next job to leave it asks again.
    let effects =
        if List.exists isCleanup effects then
            effects
            |> List.filter (function
                | Effect.CleanupNode node -> not (model.nodes.ContainsKey node)
                | _ -> true)
        else
            effects

    model, List.rev effects

/// Apply events in order, collecting every effect.
let fold (model: Model) (events: Event seq) : Model * Effect list =
    let model, effects =
        events
        |> Seq.fold
            (fun (m, acc) e ->
                let m, fx = step m e
                m, List.rev fx @ acc)
            (model, [])

    model, List.rev effects

/// Ids of jobs issued and neither killed nor collected, in increasing order (queued, running and ended ones).
let issued (model: Model) : JobId list = model.jobs |> Seq.map (fun kv -> kv.Key) |> List.ofSeq

/// Jobs whose container runs, with how long it has run at `now`.
let running (model: Model) (now: Millis) : (JobId * Millis) list =
    model.jobs
    |> Seq.choose (fun kv ->
        match kv.Value.phase with
        | Phase.Running(_, startedAt) -> Some(kv.Key, max 0L (now - startedAt))
        | Phase.Queued
        | Phase.Creating
        | Phase.Created _
        | Phase.Ended _ -> None)
    |> List.ofSeq

/// The number of ended jobs waiting for collection.
let uncollected (model: Model) : int = model.ended.Count

/// The number of jobs waiting in the local queue.
let queued (model: Model) : int = model.queue.Count
