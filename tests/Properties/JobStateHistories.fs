/// Generated histories of the batch system's life for the lifecycle properties: duplicated, reordered and replayed
/// observations, resync snapshots, kills racing creates, stuck pods, lost nodes and collections, each step recorded.
module HybridBatch.Properties.JobStateHistories

open FsCheck
open FsCheck.FSharp
open HybridBatch.Core
open HybridBatch.Core.JobState
open HybridBatch.Core.Lifecycle

/// A step of a generated history, interpreted against the model so it can refer to jobs that exist.
type Cmd =
    | Issue of millicores: int
    | Adopt of offset: int
    | Kill of picks: int list
    | CreateReturns of pick: int
    | CreateFails of pick: int
    | QuotaRefuses of pick: int * kind: int
    | QuotasSeen of room: int * asJobs: bool
    | PodSeen of pick: int * podSuffix: int * node: int * state: int * exitCode: int
    | PodRemoved of pick: int * podSuffix: int
    | Resync of picks: int list * listedBack: int
    | LoseNode of node: int
    | Advance of ms: int
    | Collect
    | Replay of back: int
    | Shutdown

/// What a command does to the model: an event for `step`, or a collection.
type Input =
    | Apply of Event
    | Take

let nodeName n = $"node-{abs n % 3}"
let private podName (id: JobId) suffix = $"job-{id}-pod-{abs suffix % 2}"

let config =
    { podTimeout = 5_000L
      limits =
        { maxJobs = 3
          maxMillicores = 4_000L
          maxMemory = 1L <<< 40
          maxDisk = 1L <<< 40 } }

/// A job as `Job.prepare` would have it: what the transition function reads of it is its id and its request.
let prepared (id: JobId) (millicores: int64) : PreparedJob =
    { id = id
      request =
        { name = $"job-{id}"
          millicores = millicores
          memory = 1L <<< 20
          disk = 1L <<< 20 }
      description = $"job-{id}"
      command = "true"
      image = "busybox:1.35"
      resources =
        { requests = Map.empty
          limits = Map.empty
          requiredNodeLabels = [] }
      placement = { nodeAffinity = None; tolerations = [] }
      environment = [||] }

/// A quota refusal of the kind `kind` picks: room comes back later, the job alone asks for too much, or the quota's
/// usage is not counted yet; `retryAfter` in ms when the server asks to wait.
let quotaRefusal (kind: int) (retryAfter: int) : QuotaRefusal =
    let message =
        match abs kind % 3 with
        | 0 -> "pods \"job-1\" is forbidden: exceeded quota: pods, requested: pods=1, used: pods=3, limited: pods=3"
        | 1 ->
            "pods \"job-1\" is forbidden: exceeded quota: little-memory, requested: limits.memory=64Mi, used: limits.memory=0, limited: limits.memory=32Mi"
        | _ -> "pods \"job-1\" is forbidden: status unknown for quota: fresh, resources: pods"

    let retryAfter =
        if retryAfter > 0 then
            Some(System.TimeSpan.FromMilliseconds(float retryAfter))
        else
            None

    match Quota.ofMessage (Some message) retryAfter with
    | Some refusal -> refusal
    | None -> failwith $"not read as a quota refusal: {message}"

/// Pick one of the ids ever issued (killed and collected ones too: stale events about them are realistic).
let private pick (model: Model) (p: int) =
    let next = nextId model
    if next <= 1 then 1 else 1 + abs p % (next - 1)

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

/// Turn a command into an input for the current model and clock.
let toInput (model: Model) (now: Millis) (history: Input list) (cmd: Cmd) : Input option * Millis =
    let event e = Some(Apply e), now

    match cmd with
    | Issue millicores -> event (Event.Issued(prepared (nextId model) (int64 (abs millicores % 3_000)), now))
    | Adopt offset ->
        let id = nextId model + abs offset % 3
        event (Event.Adopted(id, (prepared id 100L).request, now))
    | Kill picks -> event (Event.KillRequested(picks |> List.map (pick model), now))
    | CreateReturns p -> event (Event.Created(pick model p, now))
    | CreateFails p -> event (Event.CreateFailed(pick model p, "admission webhook refused it", now))
    | QuotaRefuses(p, kind) ->
        let id = pick model p

        let millicores =
            match job model id with
            | Some job -> job.request.millicores
            | None -> 100L

        event (Event.QuotaRefused(prepared id millicores, quotaRefusal kind (abs kind % 7 * 500), now))
    | QuotasSeen(room, asJobs) ->
        let quota =
            { name = "pods"
              hard = Map.ofList [ "pods", string (abs room % 5 + 1) ]
              used = Map.ofList [ "pods", string (abs room % 3) ] }

        event (Event.QuotasRead([ quota ], asJobs, now))
    | PodSeen(p, suffix, node, state, exitCode) -> event (Event.Observed(podFacts model p suffix node state exitCode now, now))
    | PodRemoved(p, suffix) ->
        let id = pick model p
        event (Event.Removed(id, podName id suffix, now))
    | Resync(picks, back) ->
        let snapshot = picks |> List.distinct |> List.map (fun p -> podFacts model p 0 1 3 0 now)
        event (Event.Resynced(snapshot, now - int64 (abs back % 3_000), now))
    | LoseNode n -> event (Event.NodeLost(nodeName n, now))
    | Advance ms ->
        let now = now + int64 (abs ms % 4_000)
        Some(Apply(Event.Tick now)), now
    | Collect -> Some Take, now
    | Replay back ->
        match history with
        | [] -> None, now
        | _ -> Some(history[abs back % history.Length]), now
    | Shutdown -> event (Event.Shutdown now)

/// Commands weighted so that interesting interleavings are common.
let cmdGen: Gen<Cmd> =
    let small = Gen.choose (0, 20)

    Gen.frequency
        [ 6, Gen.map Issue (Gen.choose (0, 3_000))
          1, Gen.map Adopt small
          2, Gen.map Kill (Gen.listOfLength 2 small)
          4, Gen.map CreateReturns small
          1, Gen.map CreateFails small
          3, Gen.map2 (fun p k -> QuotaRefuses(p, k)) small (Gen.choose (0, 20))
          1, Gen.map2 (fun r j -> QuotasSeen(r, j)) (Gen.choose (0, 20)) (Gen.elements [ false; true ])
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

/// A history: commands, shrunk by dropping commands.
type History = History of Cmd list

/// One step's record: the event (None for a collection), the model before and after it, the effects it returned and
/// the result a collection took.
type Trace =
    { event: Event option
      before: Model
      after: Model
      effects: Effect list
      delivered: UpdatedJob option
      now: Millis }

/// Run a history from the initial model; returns every step.
let run (History cmds) : Trace list =
    let folder (model, now, history, traces) cmd =
        match toInput model now history cmd with
        | None, now -> model, now, history, traces
        | Some input, now ->
            let event, after, effects, delivered =
                match input with
                | Apply event ->
                    let after, effects = step model event
                    Some event, after, effects, None
                | Take ->
                    let delivered, after, effects = collect model
                    None, after, effects, delivered

            after,
            now,
            input :: history,
            { event = event
              before = model
              after = after
              effects = effects
              delivered = delivered
              now = now }
            :: traces

    let _, _, _, traces = cmds |> List.fold folder (initial config, 1_000_000L, [], [])
    List.rev traces

/// Collect until nothing is left: the results that follow a history.
let drain (model: Model) : UpdatedJob list =
    let rec go m acc =
        match collect m with
        | Some result, m, _ -> go m (result :: acc)
        | None, _, _ -> List.rev acc

    go model []

let endedIds (effects: Effect list) =
    effects
    |> List.choose (function
        | Effect.Ended(r, _) -> Some r.id
        | _ -> None)

let deliveredIds (traces: Trace list) =
    traces |> List.choose (fun t -> t.delivered |> Option.map _.id)

let createdIds (effects: Effect list) =
    effects
    |> List.choose (function
        | Effect.Create job -> Some job.id
        | _ -> None)

/// The jobs a step killed: those a kill named that were issued, or every job at shutdown.
let killedIn (trace: Trace) =
    match trace.event with
    | Some(Event.KillRequested(ids, _)) -> ids |> List.filter (isIssued trace.before)
    | Some(Event.Shutdown _) -> issued trace.before
    | _ -> []

let allEffects traces = traces |> List.collect (fun t -> t.effects)

let counts (xs: 'a list) = xs |> List.countBy id |> Map.ofList

/// How many live jobs count towards a node.
let liveOn (model: Model) (node: string) =
    jobs model |> List.filter (fun j -> countedOn j = Some node) |> List.length

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

/// A property over the traces of generated histories.
let forHistories (check: Trace list -> 'P) =
    Prop.forAll historyArb (fun h -> check (run h))
