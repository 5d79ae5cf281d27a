/// The state of the batch system's jobs, as Equinox folds state: the events the shell feeds in, the effects it must
/// perform, the model, and how storing a job keeps the model's indexes in step. `Lifecycle.step` decides; time is an
/// input (milliseconds since the Unix epoch), nothing here reads a clock.
module HybridBatch.Core.JobState

open HybridBatch.Core

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

/// Whether the end of a job's pod log explains why it ended so: a failure's does; a success's or a loss's does not.
let explainedByLog (reason: ExitReason) =
    match reason with
    | ExitReason.Failed
    | ExitReason.MemLimit
    | ExitReason.Error -> true
    | ExitReason.Finished
    | ExitReason.Lost
    | ExitReason.Killed -> false

/// The exit status reported when a container's exit code is unknown.
[<Literal>]
let ExitStatusUnavailable = 255

/// Settings of the transition function.
type Config =
    {
      /// How long a job may stay stuck (unschedulable, image missing, creating) before it fails with Error.
      podTimeout: Millis
      limits: PoolLimits }

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

/// Something that happened, fed to `Lifecycle.step` in the order the shell saw it.
[<RequireQualifiedAccess>]
type Event =
    /// A job was prepared with the id `nextId` gave. Ids below `nextId` are ignored.
    | Issued of job: PreparedJob * at: Millis
    /// A Job of this run found in the cluster when re-attaching, in increasing id order. Ids below `nextId` are ignored.
    | Adopted of id: JobId * request: JobRequest * at: Millis
    /// The caller asked to kill these jobs; unknown ids are ignored.
    | KillRequested of ids: JobId list * at: Millis
    /// The create call returned (created, or already existed).
    | Created of id: JobId * at: Millis
    /// The create call failed for good.
    | CreateFailed of id: JobId * message: string * at: Millis
    /// A ResourceQuota of the namespace refused the create call: the job waits in the queue for room, unless it alone
    /// asks for more than the quota allows.
    | QuotaRefused of job: PreparedJob * refusal: QuotaRefusal * at: Millis
    /// The namespace's ResourceQuotas as read when connecting. `asJobs`: the run creates Jobs, whose pods the Job
    /// controller creates out of the run's sight (their refusals are never seen).
    | QuotasRead of quotas: QuotaStatus list * asJobs: bool * at: Millis
    /// The pod watch delivered an added or modified pod. (The shell watches pods only: everything a job's end needs is
    /// on its pod, and a Job deleted by someone else takes its pod with it.)
    | Observed of pod: PodFacts * at: Millis
    /// The pod watch delivered a deleted pod.
    | Removed of id: JobId * pod: string * at: Millis
    /// A full list of the run's pods, taken after the watch was lost. `listedAt` is when the list was requested.
    | Resynced of snapshot: PodFacts list * listedAt: Millis * at: Millis
    /// A node is gone (deleted, or marked unreachable).
    | NodeLost of node: string * at: Millis
    /// Time passed.
    | Tick of at: Millis
    /// The batch system shuts down: every job is deleted.
    | Shutdown of at: Millis

/// Something the shell must do.
[<RequireQualifiedAccess>]
type Effect =
    /// Create the Kubernetes Job for this job.
    | Create of job: PreparedJob
    /// Delete the Kubernetes Job (background propagation); a missing Job is fine.
    | Delete of id: JobId * name: string
    /// A job ended: its result waits for collection. `pod` is the pod whose log explains a failure, if any.
    | Ended of result: UpdatedJob * pod: string option
    /// The last job of this run left the node: remove the run's work directory there.
    | CleanupNode of node: string
    /// Delete every Job and pod of this run.
    | DeleteAll

/// Why a created job waits for a reason that may never clear, and since when its pod timeout counts.
type Stuck =
    { why: string
      since: Millis
      /// The scheduler found no node with room for it. Jobs of the run on nodes hold room it gets when they end, so
      /// its pod timeout runs only while the run holds none (`Lifecycle.stuckSince`): a fan-out larger than the
      /// cluster waits its turn, and a job larger than every node, or one no node admits, fails once the run's other
      /// jobs are done.
      waitsForRoom: bool }

/// Where a job is in its life.
[<RequireQualifiedAccess>]
type Phase =
    /// Waiting for room in the local pool, with everything its create call needs.
    | Queued of job: PreparedJob
    /// Its create call is under way.
    | Creating
    /// It exists in Kubernetes; its container is not running yet. `stuck` is why it waits and since when: from its
    /// creation until its pod appears, then while the pod waits for a reason that may never clear.
    | Created of createdAt: Millis * stuck: Stuck option
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
      /// The node its pod was placed on, once seen; it counts towards the node's jobs until it ends.
      node: string option }

/// What the run knows of the room its namespace's ResourceQuotas leave it, learnt from refused creates and the quotas'
/// status: no more of its jobs than `cap` hold capacity at once. A refused create lowers the cap to the jobs that hold
/// capacity then, and a job of the run that ends makes room under it. Once a back-off after the last refusal expires
/// (longer after each refusal, as the server asked at least), one queued job is tried beyond the cap (a probe): the
/// quota may have been raised, or pods of others ended.
type Admission =
    { cap: int
      /// Refusals not yet made up for by a probe that none followed: the back-off grows with them.
      refusals: int
      /// Whether a create was refused since the last probe.
      refusedSinceProbe: bool
      /// When a queued job may next be tried beyond the cap.
      probeAt: Millis
      /// Whether the cap is probed at all: not when it came from the quotas' status in a run of Jobs, where a probe's
      /// pod, refused, would go unseen.
      probing: bool }

/// Everything the transition function knows: the jobs, and indexes of them that `store` and `remove` keep in step
/// (`Lifecycle.invariants` says whether they are).
type Model =
    { config: Config
      nextId: JobId
      jobs: Map<JobId, Job>
      /// Queued job ids; ids increase, so the set's order is the order of issue.
      queue: Set<JobId>
      /// Ended, uncollected jobs by the order they ended in.
      ended: Map<int64, JobId>
      /// Above every sequence number in `ended`.
      endSeq: int64
      /// Jobs whose pod waits for a reason that may never clear, by id.
      stuck: Set<JobId>
      /// The stuck jobs that do not wait for room, by id: their pod timeout runs whatever room the run holds. (Those
      /// that wait for room time out only while the run holds none, so when the clock next matters is found among
      /// these alone while it holds some.)
      expiring: Set<JobId>
      /// What the jobs that hold pool capacity hold together.
      used: PoolUsage
      /// Jobs of this run counted on each node.
      nodes: Map<string, int>
      /// The last moment a job of this run was on a node (held room there), if one ever was.
      roomHeldAt: Millis option
      /// Jobs killed while their create call was under way: their Job must be deleted once it exists.
      tombstones: Map<JobId, string>
      /// The room the namespace's quotas leave the run, once a create was refused or the quotas were read.
      admission: Admission option
      /// The namespace's quotas as read when connecting: a job that alone asks for more than one allows ends at once.
      quotas: QuotaStatus list
      shutDown: bool }

/// The model before anything happened.
let initial (config: Config) : Model =
    { config = config
      nextId = 1
      jobs = Map.empty
      queue = Set.empty
      ended = Map.empty
      endSeq = 0L
      stuck = Set.empty
      expiring = Set.empty
      used = Pool.empty
      nodes = Map.empty
      roomHeldAt = None
      tombstones = Map.empty
      admission = None
      quotas = []
      shutDown = false }

/// The id the next issued job gets.
let nextId (model: Model) : JobId = model.nextId

/// Whether a job has not ended.
let isLive (job: Job) =
    match job.phase with
    | Phase.Ended _ -> false
    | Phase.Queued _
    | Phase.Creating
    | Phase.Created _
    | Phase.Running _ -> true

/// Whether the job holds pool capacity (issued to Kubernetes and not ended).
let holdsCapacity (job: Job) =
    match job.phase with
    | Phase.Creating
    | Phase.Created _
    | Phase.Running _ -> true
    | Phase.Queued _
    | Phase.Ended _ -> false

/// Whether a job waits for a reason that may never clear (the pod timeout runs).
let isStuck (job: Job) =
    match job.phase with
    | Phase.Created(_, Some _) -> true
    | Phase.Queued _
    | Phase.Creating
    | Phase.Created(_, None)
    | Phase.Running _
    | Phase.Ended _ -> false

/// Whether a job is stuck for a reason other than room on a node: its pod timeout runs whatever room the run holds.
let isExpiring (job: Job) =
    match job.phase with
    | Phase.Created(_, Some stuck) -> not stuck.waitsForRoom
    | Phase.Queued _
    | Phase.Creating
    | Phase.Created(_, None)
    | Phase.Running _
    | Phase.Ended _ -> false

/// The node a job counts towards: its pod's, while it is live.
let countedOn (job: Job) : string option = if isLive job then job.node else None

let private isQueued (job: Job) =
    match job.phase with
    | Phase.Queued _ -> true
    | Phase.Creating
    | Phase.Created _
    | Phase.Running _
    | Phase.Ended _ -> false

let private endedSeq (job: Job) =
    match job.phase with
    | Phase.Ended(_, seq, _) -> ValueSome seq
    | Phase.Queued _
    | Phase.Creating
    | Phase.Created _
    | Phase.Running _ -> ValueNone

let private leave (node: string option) (nodes: Map<string, int>) =
    match node with
    | None -> nodes
    | Some node ->
        match nodes.TryFind node with
        | Some count when count > 1 -> nodes.Add(node, count - 1)
        | Some _
        | None -> nodes.Remove node

let private enter (node: string option) (nodes: Map<string, int>) =
    match node with
    | None -> nodes
    | Some node -> nodes.Add(node, (nodes.TryFind node |> Option.defaultValue 0) + 1)

let private moveIn (set: Set<JobId>) (id: JobId) (was: bool) (is: bool) =
    if was = is then set
    elif is then set.Add id
    else set.Remove id

/// The model with one job changed from `before` to `after` (ValueNone: absent) in `jobs`, each index moved only where
/// the change moves it. (Written out rather than with predicates passed around: this runs for every pod event.)
let private reindex (model: Model) (before: Job voption) (after: Job voption) (jobs: Map<JobId, Job>) (nextId: JobId) : Model =
    let job =
        match after, before with
        | ValueSome job, _
        | ValueNone, ValueSome job -> job
        | ValueNone, ValueNone -> invalidArg (nameof after) "a change needs a job before or after it"

    let queuedBefore, stuckBefore, expiringBefore, holdsBefore, endedBefore, nodeBefore =
        match before with
        | ValueSome j -> isQueued j, isStuck j, isExpiring j, holdsCapacity j, endedSeq j, countedOn j
        | ValueNone -> false, false, false, false, ValueNone, None

    let queuedAfter, stuckAfter, expiringAfter, holdsAfter, endedAfter, nodeAfter =
        match after with
        | ValueSome j -> isQueued j, isStuck j, isExpiring j, holdsCapacity j, endedSeq j, countedOn j
        | ValueNone -> false, false, false, false, ValueNone, None

    let ended, endSeq =
        match endedBefore, endedAfter with
        | ValueNone, ValueSome seq -> model.ended.Add(seq, job.id), max model.endSeq (seq + 1L)
        | ValueSome seq, ValueNone -> model.ended.Remove seq, model.endSeq
        | ValueSome _, ValueSome _
        | ValueNone, ValueNone -> model.ended, model.endSeq

    { model with
        nextId = nextId
        jobs = jobs
        queue = moveIn model.queue job.id queuedBefore queuedAfter
        ended = ended
        endSeq = endSeq
        stuck = moveIn model.stuck job.id stuckBefore stuckAfter
        expiring = moveIn model.expiring job.id expiringBefore expiringAfter
        used =
            (if holdsBefore = holdsAfter then model.used
             elif holdsAfter then Pool.add model.used job.request 1
             else Pool.add model.used job.request -1)
        nodes =
            (if obj.ReferenceEquals(nodeBefore, nodeAfter) || nodeBefore = nodeAfter then
                 model.nodes
             else
                 model.nodes |> leave nodeBefore |> enter nodeAfter) }

/// The model tracking a new job; the next id is above it.
let add (model: Model) (job: Job) : Model =
    reindex model ValueNone (ValueSome job) (model.jobs.Add(job.id, job)) (max model.nextId (job.id + 1))

/// The model with `job` in place of `before`, the version of it the model holds.
let store (model: Model) (before: Job) (job: Job) : Model =
    reindex model (ValueSome before) (ValueSome job) (model.jobs.Add(job.id, job)) model.nextId

/// The model no longer tracking `job`, the version of it the model holds.
let remove (model: Model) (job: Job) : Model =
    reindex model (ValueSome job) ValueNone (model.jobs.Remove job.id) model.nextId
