/// A simulated Kubernetes cluster as a pure model: nodes with capacity, labels and taints; the run's pods, scheduled
/// by the placement the core decided and started, run and ended as the test scripts them; faults on demand. Time is an
/// argument (milliseconds since the Unix epoch, as the core counts it) and every random choice comes from a seed in the
/// model. What the cluster says goes to a run as the core's own events (what the run's pod watch would have seen), so
/// the simulated batch system drives the unchanged core.
namespace HybridBatch.Testing.Simulation

open System
open HybridBatch.Core
open HybridBatch.Core.JobState

/// A node taint.
type Taint =
    { key: string
      value: string
      effect: TaintEffect }

/// A simulated node: what it can hold (cpu in millicores, bytes, GPUs), its labels and its taints.
type NodeSpec =
    { name: string
      millicores: int64
      memory: int64
      disk: int64
      gpus: int64
      labels: Map<string, string>
      taints: Taint list }

/// How a job's pod behaves, as the test scripts it.
type PodScript =
    {
      /// From the pod's placement on a node to its container's start (image pull).
      startDelay: Millis
      /// How long the container runs; None: until it is deleted.
      runTime: Millis option
      /// The container's exit code when it ends by itself.
      exitCode: int
      /// The most memory the container uses, in bytes: above its limit it is OOM-killed when its run time is up.
      memoryUsed: int64
      /// The image cannot be pulled: the pod waits (ErrImagePull) until the run gives up on it.
      imageMissing: bool
      /// The tail of its log, which the run keeps for a failed job.
      log: string }

/// How the simulated API server refuses creates while a `RefuseCreates` fault lasts.
[<RequireQualifiedAccess>]
type ApiRefusal =
    /// 429 Too Many Requests, with Retry-After 1 s.
    | TooManyRequests
    /// 503 Service Unavailable, without Retry-After.
    | Unavailable
    /// 403 from the quota admission: the namespace's ResourceQuota has no room.
    | QuotaExceeded

/// Something that goes wrong on purpose.
[<RequireQualifiedAccess>]
type Fault =
    /// The node goes away with its pods (their jobs end Lost).
    | LoseNode of node: string
    /// The kubelet evicts the pod of the job (if it has one now).
    | EvictPod of job: JobId
    /// Someone deletes the pod of the job (if it has one now).
    | DeletePod of job: JobId
    /// The API server refuses creates for this long.
    | RefuseCreates of refusal: ApiRefusal * forMs: Millis
    /// Every run's pod watch is down for this long, and lists again after.
    | CutWatch of forMs: Millis

/// A fault and how long after a schedule's start it comes.
type FaultAt = { after: Millis; fault: Fault }

/// What cannot happen, named with its value.
type SimulationError =
    | EmptyNodeName
    | DuplicateNode of node: string
    | NegativeCapacity of node: string * resource: string * amount: int64
    | NegativeStartDelay of delay: Millis
    | NegativeRunTime of runTime: Millis
    | ExitCodeOutOfRange of exitCode: int
    | NegativeMemoryUsed of memory: int64
    | FaultInThePast of at: Millis * now: Millis
    | UnknownNode of node: string * known: string list
    | NegativeDuration of fault: string * duration: Millis
    | NegativeJitter of jitter: Millis

    /// What was wrong and how to fix it.
    member this.Message =
        match this with
        | EmptyNodeName -> "A simulated node has an empty name: give every node a name."
        | DuplicateNode node -> $"There already is a simulated node named '{node}': give each node its own name."
        | NegativeCapacity(node, resource, amount) ->
            $"The simulated node '{node}' has {resource} capacity {amount}: capacities are zero or more."
        | NegativeStartDelay delay -> $"A pod's start delay is {delay} ms: it is zero or more."
        | NegativeRunTime runTime -> $"A pod's run time is {runTime} ms: it is zero or more (or none, to run until deleted)."
        | ExitCodeOutOfRange code -> $"A pod's exit code is {code}: exit codes are 0 to 255."
        | NegativeMemoryUsed memory -> $"A pod's memory use is {memory} bytes: it is zero or more."
        | FaultInThePast(at, now) ->
            $"A fault is scheduled at {DateTimeOffset.FromUnixTimeMilliseconds(at):O}, {now - at} ms before the simulation's now ({DateTimeOffset.FromUnixTimeMilliseconds(now):O}): schedule faults now or later."
        | UnknownNode(node, known) ->
            let separator = ", "
            let names = if List.isEmpty known then "none" else String.Join(separator, known)
            $"There is no simulated node '{node}' (the nodes are: {names})."
        | NegativeDuration(fault, duration) -> $"The fault {fault} lasts {duration} ms: durations are zero or more."
        | NegativeJitter jitter -> $"The start jitter is {jitter} ms: it is zero or more."

/// Where a simulated pod is in its life.
[<RequireQualifiedAccess>]
type PodState =
    /// Not on a node; the scheduler's message once it found none.
    | Pending of unschedulable: string option
    /// On a node, its container being created (the image pulled).
    | Starting of node: string
    /// On a node, its image missing.
    | ImageMissing of node: string
    | Running of node: string * startedAt: Millis
    | Ended of node: string * exitCode: int * reason: string * startedAt: Millis * finishedAt: Millis
    /// Evicted by the kubelet: its container was stopped.
    | Evicted of node: string option

/// What a pod asks a node for (or a node has left).
[<Struct>]
type Needs =
    { millicores: int64
      memory: int64
      disk: int64
      gpus: int64 }

/// A pod of a run in the simulated cluster.
type SimPod =
    { name: string
      run: string
      job: JobId
      /// What the run's pool counted for it, kept for re-attaching.
      request: JobRequest
      needs: Needs
      memoryLimit: int64 option
      placement: PodPlacement
      script: PodScript
      /// The order of creation: the scheduler considers pending pods oldest first.
      seq: int64
      state: PodState }

/// Something due at a moment.
[<RequireQualifiedAccess>]
type Happening =
    /// The pod's container starts (or its image pull fails).
    | Start of pod: string
    /// The pod's container's run time is up.
    | Finish of pod: string
    | Fault of Fault
    /// A refused create is tried again, as the resilience pipeline would.
    | RetryCreate of run: string * job: PreparedJob * script: PodScript * attempt: int * firstAt: Millis
    /// The pod watches are back: each run lists its pods.
    | WatchBack

/// When a happening is due: its moment, then the order it was scheduled in. (A record rather than a tuple: its
/// comparison compares the numbers as they are, where a tuple's boxes them.)
type DueAt = { at: Millis; order: int64 }

/// An event for a run, as its pod watch (or its create call) would have told it.
type Delivery = { run: string; event: Event }

/// Settings of a simulated cluster.
type ClusterConfig =
    {
      /// The seed of every random choice.
      seed: uint64
      /// A pod's container starts up to this much later than its script says, drawn from the seed.
      startJitter: Millis
      /// How the create calls are retried (the library's default resilience options).
      backoff: BackoffPolicy }

/// The simulated cluster at one moment.
type World =
    { config: ClusterConfig
      nodes: Map<string, NodeSpec>
      /// The nodes as `nodes` lists them (by name), for the scheduler's passes.
      nodeList: NodeSpec array
      /// Nodes that were lost.
      lost: Set<string>
      /// What the pods on each node hold.
      used: Map<string, Needs>
      pods: Map<string, SimPod>
      /// Pending pods by creation order.
      pending: Map<int64, SimPod>
      /// Room was freed on a node (or a node added) since the scheduler's last pass: the pending pods it found no node
      /// for may fit now. Until then a pass looks at new pods only.
      roomFreed: bool
      /// At most what the least demanding pending pod asks for, kind by kind: while no node has that much room, no
      /// pending pod fits.
      pendingLeast: Needs
      /// Pods from this creation order on were not looked at by the scheduler yet.
      unlookedFrom: int64
      nextSeq: int64
      /// What is due, by (time, order of scheduling).
      due: Map<DueAt, Happening>
      nextDue: int64
      rng: uint64
      /// Creates are refused so until then.
      refusing: (ApiRefusal * Millis) option
      /// The pod watches are down until then.
      watchDownUntil: Millis option
      /// The runs that watch.
      runs: Set<string>
      /// Node cleanups the runs asked for, by node.
      cleanups: Map<string, int> }

/// The simulated cluster's pure functions.
[<RequireQualifiedAccess>]
module Cluster =

    let private noNeeds =
        { millicores = 0L
          memory = 0L
          disk = 0L
          gpus = 0L }

    /// Above any pod's needs: the least demand of no pods at all.
    let private noLeast =
        { millicores = Int64.MaxValue
          memory = Int64.MaxValue
          disk = Int64.MaxValue
          gpus = Int64.MaxValue }

    /// The lesser of two demands, kind by kind.
    let private least (a: Needs) (b: Needs) =
        { millicores = min a.millicores b.millicores
          memory = min a.memory b.memory
          disk = min a.disk b.disk
          gpus = min a.gpus b.gpus }

    let private plus (a: Needs) (b: Needs) sign =
        { millicores = a.millicores + sign * b.millicores
          memory = a.memory + sign * b.memory
          disk = a.disk + sign * b.disk
          gpus = a.gpus + sign * b.gpus }

    /// SplitMix64: the next draw and the next state.
    let draw (state: uint64) : uint64 * uint64 =
        let state = state + 0x9E3779B97F4A7C15UL
        let mutable z = state
        z <- (z ^^^ (z >>> 30)) * 0xBF58476D1CE4E5B9UL
        z <- (z ^^^ (z >>> 27)) * 0x94D049BB133111EBUL
        z ^^^ (z >>> 31), state

    /// A node checked: a name, and capacities of zero or more.
    let checkNode (node: NodeSpec) : Result<NodeSpec, SimulationError> =
        if String.IsNullOrWhiteSpace node.name then
            Error EmptyNodeName
        else
            [ "cpu (millicores)", node.millicores
              "memory", node.memory
              "disk", node.disk
              "gpus", node.gpus ]
            |> List.tryFind (fun (_, amount) -> amount < 0L)
            |> function
                | Some(resource, amount) -> Error(NegativeCapacity(node.name, resource, amount))
                | None -> Ok node

    /// A script checked: no negative times or memory, an exit code a container can have.
    let checkScript (script: PodScript) : Result<PodScript, SimulationError> =
        if script.startDelay < 0L then Error(NegativeStartDelay script.startDelay)
        elif script.runTime |> Option.exists (fun t -> t < 0L) then Error(NegativeRunTime(Option.get script.runTime))
        elif script.exitCode < 0 || script.exitCode > 255 then Error(ExitCodeOutOfRange script.exitCode)
        elif script.memoryUsed < 0L then Error(NegativeMemoryUsed script.memoryUsed)
        else Ok script

    /// An empty cluster.
    let create (config: ClusterConfig) : Result<World, SimulationError> =
        if config.startJitter < 0L then
            Error(NegativeJitter config.startJitter)
        else
            Ok
                { config = config
                  nodes = Map.empty
                  nodeList = [||]
                  lost = Set.empty
                  used = Map.empty
                  pods = Map.empty
                  pending = Map.empty
                  roomFreed = false
                  pendingLeast = noLeast
                  unlookedFrom = 0L
                  nextSeq = 0L
                  due = Map.empty
                  nextDue = 0L
                  rng = config.seed
                  refusing = None
                  watchDownUntil = None
                  runs = Set.empty
                  cleanups = Map.empty }

    /// The cluster with one more node.
    let addNode (node: NodeSpec) (world: World) : Result<World, SimulationError> =
        checkNode node
        |> Result.bind (fun node ->
            if world.nodes.ContainsKey node.name || world.lost.Contains node.name then
                Error(DuplicateNode node.name)
            else
                let nodes = world.nodes.Add(node.name, node)

                Ok
                    { world with
                        nodes = nodes
                        nodeList = nodes.Values |> Array.ofSeq
                        used = world.used.Add(node.name, noNeeds)
                        roomFreed = true })

    let private schedule (at: Millis) (happening: Happening) (world: World) =
        { world with
            due = world.due.Add({ at = at; order = world.nextDue }, happening)
            nextDue = world.nextDue + 1L }

    /// When the next happening is due, if any is.
    let nextDue (world: World) : Millis option =
        if world.due.IsEmpty then None else Some (fst (Map.minKeyValue world.due)).at

    /// Schedules a fault at `at`; `now` is the simulation's now.
    let scheduleFault (at: Millis) (now: Millis) (fault: Fault) (world: World) : Result<World, SimulationError> =
        let known () =
            Seq.append world.nodes.Keys world.lost |> Seq.sort |> List.ofSeq

        if at < now then
            Error(FaultInThePast(at, now))
        else
            match fault with
            | Fault.LoseNode node when not (world.nodes.ContainsKey node || world.lost.Contains node) ->
                Error(UnknownNode(node, known ()))
            | Fault.RefuseCreates(refusal, duration) when duration < 0L ->
                Error(NegativeDuration($"RefuseCreates {refusal}", duration))
            | Fault.CutWatch duration when duration < 0L -> Error(NegativeDuration("CutWatch", duration))
            | Fault.LoseNode _
            | Fault.EvictPod _
            | Fault.DeletePod _
            | Fault.RefuseCreates _
            | Fault.CutWatch _ -> Ok(schedule at (Happening.Fault fault) world)

    let private nodeOf (state: PodState) =
        match state with
        | PodState.Starting node
        | PodState.ImageMissing node
        | PodState.Running(node, _)
        | PodState.Ended(node, _, _, _, _) -> Some node
        | PodState.Evicted node -> node
        | PodState.Pending _ -> None

    /// Whether the pod holds room on its node.
    let private holds (state: PodState) =
        match state with
        | PodState.Starting _
        | PodState.ImageMissing _
        | PodState.Running _ -> true
        | PodState.Pending _
        | PodState.Ended _
        | PodState.Evicted _ -> false

    /// What a pod's watch event says, as the core reads a pod.
    let facts (pod: SimPod) (deleting: bool) (reason: string option) : PodFacts =
        let phase, container, unschedulable =
            match pod.state with
            | PodState.Pending why -> PodPhase.Pending, Container.NotCreated, why
            | PodState.Starting _ -> PodPhase.Pending, Container.Waiting("ContainerCreating", None), None
            | PodState.ImageMissing _ ->
                PodPhase.Pending,
                Container.Waiting("ErrImagePull", Some "simulated: the image cannot be pulled (not found)"),
                None
            | PodState.Running(_, startedAt) -> PodPhase.Running, Container.Running startedAt, None
            | PodState.Ended(_, code, why, startedAt, finishedAt) ->
                (if code = 0 then PodPhase.Succeeded else PodPhase.Failed),
                Container.Terminated(code, Some why, None, Some startedAt, Some finishedAt),
                None
            | PodState.Evicted _ -> PodPhase.Failed, Container.NotCreated, None

        let reason =
            match reason, pod.state with
            | Some r, _ -> Some r
            | None, PodState.Evicted _ -> Some "Evicted"
            | None, _ -> None

        { job = pod.job
          pod = pod.name
          node = nodeOf pod.state
          phase = phase
          reason = reason
          message =
            (match reason with
             | Some "Evicted" -> Some "simulated: the node was low on resource: memory"
             | Some "NodeLost" -> Some "simulated: the node was lost"
             | _ -> None)
          unschedulable = unschedulable
          container = container
          deleting = deleting }

    let private watching (world: World) (at: Millis) =
        match world.watchDownUntil with
        | Some until -> at >= until
        | None -> true

    /// What the run's watch sees of a pod now, if it is up.
    let private seen (world: World) (at: Millis) (pod: SimPod) (deleting: bool) (reason: string option) =
        if watching world at then
            [ { run = pod.run
                event = Event.Observed(facts pod deleting reason, at) } ]
        else
            []

    let private store (pod: SimPod) (world: World) =
        let before = world.pods.TryFind pod.name

        let used =
            let release (used: Map<string, Needs>) =
                match before with
                | Some b when holds b.state ->
                    match nodeOf b.state |> Option.bind used.TryFind with
                    | Some u -> used.Add(Option.get (nodeOf b.state), plus u b.needs -1L)
                    | None -> used
                | _ -> used

            let take (used: Map<string, Needs>) =
                if holds pod.state then
                    match nodeOf pod.state |> Option.bind used.TryFind with
                    | Some u -> used.Add(Option.get (nodeOf pod.state), plus u pod.needs 1L)
                    | None -> used
                else
                    used

            world.used |> release |> take

        let pending, pendingLeast =
            match pod.state, before with
            | PodState.Pending _, _ -> world.pending.Add(pod.seq, pod), least world.pendingLeast pod.needs
            | _, Some { state = PodState.Pending _ } -> world.pending.Remove pod.seq, world.pendingLeast
            | _ -> world.pending, world.pendingLeast

        let freed =
            match before with
            | Some b when holds b.state -> not (holds pod.state && nodeOf pod.state = nodeOf b.state)
            | _ -> false

        { world with
            pods = world.pods.Add(pod.name, pod)
            used = used
            pending = pending
            pendingLeast = pendingLeast
            roomFreed = world.roomFreed || freed }

    let private removePod (pod: SimPod) (world: World) =
        let world = store { pod with state = PodState.Ended("", 0, "", 0L, 0L) } world

        { world with
            pods = world.pods.Remove pod.name
            pending = world.pending.Remove pod.seq }

    /// Deletes a pod: the watch sees it being deleted (with `reason`), then gone.
    let private delete (at: Millis) (reason: string option) (pod: SimPod) (world: World) =
        let deliveries =
            if watching world at then
                [ { run = pod.run
                    event = Event.Observed(facts pod true reason, at) }
                  { run = pod.run
                    event = Event.Removed(pod.job, pod.name, at) } ]
            else
                []

        removePod pod world, deliveries

    let private matches (labels: Map<string, string>) (requirement: NodeSelectorRequirement) =
        match requirement.operator, labels.TryFind requirement.key with
        | NodeSelectorOperator.In, Some value -> List.contains value requirement.values
        | NodeSelectorOperator.In, None -> false
        | NodeSelectorOperator.NotIn, Some value -> not (List.contains value requirement.values)
        | NodeSelectorOperator.NotIn, None -> true
        | NodeSelectorOperator.Exists, found -> found.IsSome
        | NodeSelectorOperator.DoesNotExist, found -> found.IsNone

    /// Whether a node's labels admit a pod placed as the core decided: one required term (of any) matches wholly.
    let admits (placement: PodPlacement) (labels: Map<string, string>) : bool =
        match placement.nodeAffinity with
        | None -> true
        | Some affinity when List.isEmpty affinity.required -> true
        | Some affinity ->
            affinity.required
            |> List.exists (fun term -> term.matchExpressions |> List.forall (matches labels))

    let private tolerates (tolerations: Toleration list) (taint: Taint) =
        tolerations
        |> List.exists (fun t ->
            t.key = taint.key
            && (match t.operator with
                | TolerationOperator.Exists -> true
                | TolerationOperator.Equal -> t.value = Some taint.value)
            && (t.effect.IsNone || t.effect = Some taint.effect))

    /// Whether a pod tolerates every taint of a node that keeps pods off it.
    let toleratesAll (placement: PodPlacement) (taints: Taint list) : bool =
        taints
        |> List.forall (fun taint -> taint.effect = TaintEffect.PreferNoSchedule || tolerates placement.tolerations taint)

    /// The weight of the pod's preferred terms a node's labels match.
    let preference (placement: PodPlacement) (labels: Map<string, string>) : int =
        match placement.nodeAffinity with
        | None -> 0
        | Some affinity ->
            affinity.preferred
            |> List.sumBy (fun p ->
                if p.preference.matchExpressions |> List.forall (matches labels) then p.weight else 0)

    /// Why a node refuses a pod, as the scheduler says it, by `refusal`'s number (0: it takes the pod).
    let private refusals =
        [| ""
           "didn't match Pod's node affinity/selector"
           "had untolerated taint"
           "Insufficient cpu"
           "Insufficient memory"
           "Insufficient ephemeral-storage"
           "Insufficient gpu" |]

    /// Why a node with `free` room left does not take a pod now (its number in `refusals`), or 0 when it does.
    let private refusal (free: Needs) (pod: SimPod) (node: NodeSpec) =
        if not (admits pod.placement node.labels) then 1
        elif not (toleratesAll pod.placement node.taints) then 2
        elif pod.needs.millicores > free.millicores then 3
        elif pod.needs.memory > free.memory then 4
        elif pod.needs.disk > free.disk then 5
        elif pod.needs.gpus > free.gpus then 6
        else 0

    let private startAt (world: World) (pod: SimPod) (at: Millis) =
        if world.config.startJitter = 0L then
            at + pod.script.startDelay, world
        else
            let value, rng = draw world.rng
            at + pod.script.startDelay + int64 (value % uint64 (world.config.startJitter + 1L)), { world with rng = rng }

    let private hasRoom (free: Needs) (needs: Needs) =
        needs.millicores <= free.millicores
        && needs.memory <= free.memory
        && needs.disk <= free.disk
        && needs.gpus <= free.gpus

    let private freeOf (world: World) (node: NodeSpec) =
        let used =
            match world.used.TryGetValue node.name with
            | true, used -> used
            | false, _ -> noNeeds

        { millicores = node.millicores - used.millicores
          memory = node.memory - used.memory
          disk = node.disk - used.disk
          gpus = node.gpus - used.gpus }

    /// The most room of each kind any one node has: a pod that asks for more of one kind fits on no node.
    let private mostFree (free: Needs array) =
        free
        |> Array.fold
            (fun (most: Needs) f ->
                { millicores = max most.millicores f.millicores
                  memory = max most.memory f.memory
                  disk = max most.disk f.disk
                  gpus = max most.gpus f.gpus })
            { millicores = Int64.MinValue
              memory = Int64.MinValue
              disk = Int64.MinValue
              gpus = Int64.MinValue }

    /// Looks at one pending pod in a scheduler's pass, nodes having `free` room left (`most` at most): places it on
    /// the node that admits it and it prefers most (ties drawn from the seed), taking the room from `free`, or tells it
    /// why no node takes it, once. True when placed.
    let private consider (at: Millis) (nodes: NodeSpec array) (free: Needs array) (most: Needs) (world: World) (pod: SimPod) =
        let mutable fits = []

        if hasRoom most pod.needs then
            for i = nodes.Length - 1 downto 0 do
                if refusal free[i] pod nodes[i] = 0 then
                    fits <- i :: fits

        match fits, pod.state with
        // Told once; it is told again only by a pass that finds it a node.
        | [], PodState.Pending(Some _) -> world, [], false
        | [], _ ->
            // Each reason with how many nodes gave it, in the order the nodes first gave them.
            let counts = Array.zeroCreate refusals.Length
            let mutable order = []

            for i = 0 to nodes.Length - 1 do
                let why = refusal free[i] pod nodes[i]

                if why <> 0 then
                    if counts[why] = 0 then
                        order <- why :: order

                    counts[why] <- counts[why] + 1

            let why =
                let listed = String.Join(", ", order |> List.rev |> List.map (fun why -> $"{counts[why]} {refusals[why]}"))
                $"0/{nodes.Length} nodes are available: {listed}."

            let pod = { pod with state = PodState.Pending(Some why) }
            let world = store pod world
            world, seen world at pod false None, false
        | fits, _ ->
            let best = fits |> List.map (fun i -> preference pod.placement nodes[i].labels) |> List.max
            let top = fits |> List.filter (fun i -> preference pod.placement nodes[i].labels = best)
            let value, rng = draw world.rng
            let chosen = top[int (value % uint64 top.Length)]
            free[chosen] <- plus free[chosen] pod.needs -1L
            let pod = { pod with state = PodState.Starting nodes[chosen].name }
            let starts, world = startAt { world with rng = rng } pod at
            let world = store pod world |> schedule starts (Happening.Start pod.name)
            world, seen world at pod false None, true

    /// Places pending pods, oldest first, each on the node that admits it and it prefers most (ties drawn from the
    /// seed); a pod no node takes is told why, once. A pod told so cannot fit before room is freed on a node (room only
    /// shrinks until then), so a pass looks at the pods told so only after that, and only while some node has the room
    /// the least demanding pending pod asks for; new pods it always looks at. A fan-out larger than the cluster thus
    /// costs a few comparisons a pass, not a look at every pending pod.
    let private scheduleAll (at: Millis) (world: World) : World * Delivery list =
        let fresh = world.unlookedFrom < world.nextSeq

        if world.pending.IsEmpty || not (world.roomFreed || fresh) then
            (if world.roomFreed || fresh then
                 { world with
                     roomFreed = false
                     unlookedFrom = world.nextSeq
                     pendingLeast = if world.pending.IsEmpty then noLeast else world.pendingLeast }
             else
                 world),
            []
        else
            let nodes = world.nodeList
            let free = nodes |> Array.map (freeOf world)
            let mutable most = mostFree free
            let mutable world = world
            let mutable told = []

            if world.roomFreed && hasRoom most world.pendingLeast then
                // Oldest first, until no node has room for the least demanding pending pod.
                let mutable remaining = noLeast
                let mutable complete = true
                use pods = (world.pending.Values :> seq<SimPod>).GetEnumerator()

                while complete && pods.MoveNext() do
                    let pod = pods.Current
                    let next, delivered, placed = consider at nodes free most world pod
                    world <- next
                    told <- List.rev delivered @ told

                    if placed then
                        most <- mostFree free
                        complete <- hasRoom most world.pendingLeast
                    else
                        remaining <- least remaining pod.needs

                if complete then
                    world <- { world with pendingLeast = remaining }

            // Pods created since the last pass, unless the pass above looked at them.
            for order in world.unlookedFrom .. world.nextSeq - 1L do
                match world.pending.TryFind order with
                | Some({ state = PodState.Pending None } as pod) ->
                    let next, delivered, placed = consider at nodes free most world pod
                    world <- next
                    told <- List.rev delivered @ told

                    if placed then
                        most <- mostFree free
                | Some _
                | None -> ()

            { world with
                roomFreed = false
                unlookedFrom = world.nextSeq },
            List.rev told

    let private amount (resources: Map<string, string>) (name: string) (scale: bigint) =
        match resources.TryFind name |> Option.map Quantity.parse with
        | Some(Ok quantity) -> int64 (Quantity.nanos quantity / scale)
        | Some(Error _)
        | None -> 0L

    /// What a prepared job's pod asks a node for, from the container's requests the core worked out.
    let needsOf (job: PreparedJob) : Needs =
        let requests = job.resources.requests
        let units = 1_000_000_000I

        { millicores = amount requests "cpu" 1_000_000I
          memory = amount requests "memory" units
          disk = amount requests "ephemeral-storage" units
          gpus =
            requests
            |> Map.toList
            |> List.sumBy (fun (name, _) -> if name.EndsWith "/gpu" then amount requests name units else 0L) }

    let private apiError (refusal: ApiRefusal) (world: World) (job: PreparedJob) : ApiError =
        let status, reason, message, retryAfter =
            match refusal with
            | ApiRefusal.TooManyRequests -> 429, "TooManyRequests", "simulated: too many requests", Some(TimeSpan.FromSeconds 1.0)
            | ApiRefusal.Unavailable -> 503, "ServiceUnavailable", "simulated: the API server is unavailable", None
            | ApiRefusal.QuotaExceeded ->
                // Full: as many pods as it allows are there (at least one, or the job would never fit).
                let pods = max 1 world.pods.Count
                403, "Forbidden",
                $"pods \"{job.request.name}\" is forbidden: exceeded quota: simulated-quota, requested: pods=1, used: pods={pods}, limited: pods={pods}",
                None

        { status = Some status
          reason = Some reason
          message = Some message
          causes = []
          retryAfter = retryAfter
          transport = None
          permission =
            { verb = Verb.Create
              group = ""
              resource = "pods"
              subresource = None
              inNamespace = Some "simulated" }
          madeIdempotent = true }

    /// A run's create call for a job's pod at `at` (attempt 1 and up, the first made at `firstAt`): refused while a
    /// `RefuseCreates` fault lasts (retried as the resilience pipeline retries, by the core's classifier and back-off,
    /// until it gives up), else the pod is made and the run told so.
    let createPod
        (run: string)
        (job: PreparedJob)
        (script: PodScript)
        (attempt: int)
        (firstAt: Millis)
        (at: Millis)
        (world: World)
        : World * Delivery list =
        match world.refusing with
        | Some(refusal, until) when at < until ->
            let error = apiError refusal world job
            let decision = Retry.classify error
            let seed, rng = draw world.rng
            let world = { world with rng = rng }

            match Backoff.nextDelay world.config.backoff attempt seed (TimeSpan.FromMilliseconds(float (at - firstAt))) decision with
            | Some delay ->
                schedule (at + int64 delay.TotalMilliseconds) (Happening.RetryCreate(run, job, script, attempt + 1, firstAt)) world, []
            | None ->
                let message = $"the pod could not be created: {Decision.explain decision}"
                world,
                [ { run = run
                    event = Api.Events.CreateFailed(job, decision, message, at) } ]
        | Some _
        | None ->
            let created =
                [ { run = run
                    event = Event.Created(job.id, at) } ]

            if world.pods.ContainsKey job.request.name then
                // 409 AlreadyExists: the pipeline counts it as done.
                world, created
            else
                let pod =
                    { name = job.request.name
                      run = run
                      job = job.id
                      request = job.request
                      needs = needsOf job
                      memoryLimit =
                        job.resources.limits.TryFind "memory"
                        |> Option.bind (fun m ->
                            match Quantity.parse m with
                            | Ok q -> Some(int64 (Quantity.nanos q / 1_000_000_000I))
                            | Error _ -> None)
                      placement = job.placement
                      script = script
                      seq = world.nextSeq
                      state = PodState.Pending None }

                let world = store pod { world with nextSeq = world.nextSeq + 1L }
                let world, placed = scheduleAll at world
                world, created @ seen world at pod false None @ placed

    /// A run deletes a pod by name (a missing one is fine); the room it held goes to pending pods.
    let deletePod (name: string) (at: Millis) (world: World) : World * Delivery list =
        match world.pods.TryFind name with
        | None -> world, []
        | Some pod ->
            let world, deleted = delete at None pod world
            let world, placed = scheduleAll at world
            world, deleted @ placed

    /// A run deletes all its pods.
    let deleteRun (run: string) (at: Millis) (world: World) : World * Delivery list =
        let world, deleted =
            world.pods
            |> Seq.map (fun kv -> kv.Value)
            |> Seq.filter (fun pod -> pod.run = run)
            |> List.ofSeq
            |> List.fold
                (fun (w, ds) pod ->
                    let w, d = delete at None pod w
                    w, ds @ d)
                (world, [])

        let world, placed = scheduleAll at world
        world, deleted @ placed

    /// The run asked for its work directory on a node to be cleaned.
    let cleanup (node: string) (world: World) : World =
        { world with
            cleanups = world.cleanups.Add(node, (world.cleanups.TryFind node |> Option.defaultValue 0) + 1) }

    /// The run's pods as a list of them says (oldest first).
    let podsOf (run: string) (world: World) : SimPod list =
        world.pods
        |> Seq.map (fun kv -> kv.Value)
        |> Seq.filter (fun pod -> pod.run = run)
        |> Seq.sortBy _.seq
        |> List.ofSeq

    /// A run starts watching: it lists its pods.
    let watch (run: string) (at: Millis) (world: World) : World * Delivery list =
        let snapshot = podsOf run world |> List.map (fun pod -> facts pod false None)

        { world with runs = world.runs.Add run },
        [ { run = run
            event = Event.Resynced(snapshot, at, at) } ]

    /// A run stops watching.
    let unwatch (run: string) (world: World) : World = { world with runs = world.runs.Remove run }

    let private podOfJob (job: JobId) (world: World) =
        world.pods |> Seq.map (fun kv -> kv.Value) |> Seq.filter (fun pod -> pod.job = job) |> Seq.tryHead

    let private fault (at: Millis) (fault: Fault) (world: World) : World * Delivery list =
        match fault with
        | Fault.LoseNode node ->
            let world =
                let nodes = world.nodes.Remove node

                { world with
                    nodes = nodes
                    nodeList = nodes.Values |> Array.ofSeq
                    used = world.used.Remove node
                    lost = world.lost.Add node }

            world.pods
            |> Seq.map (fun kv -> kv.Value)
            |> Seq.filter (fun pod -> nodeOf pod.state = Some node)
            |> List.ofSeq
            |> List.fold
                (fun (w, ds) pod ->
                    let w, d = delete at (Some "NodeLost") pod w
                    w, ds @ d)
                (world, [])
        | Fault.EvictPod job ->
            match podOfJob job world with
            | Some({ state = PodState.Pending _ | PodState.Starting _ | PodState.ImageMissing _ | PodState.Running _ } as pod) ->
                let pod = { pod with state = PodState.Evicted(nodeOf pod.state) }
                let world = store pod world
                world, seen world at pod false None
            | Some _
            | None -> world, []
        | Fault.DeletePod job ->
            match podOfJob job world with
            | Some pod -> delete at None pod world
            | None -> world, []
        | Fault.RefuseCreates(refusal, duration) -> { world with refusing = Some(refusal, at + duration) }, []
        | Fault.CutWatch duration ->
            let until = at + duration
            let world = { world with watchDownUntil = Some until }
            schedule until Happening.WatchBack world, []

    /// What happens at `at`.
    let private happen (at: Millis) (happening: Happening) (world: World) : World * Delivery list =
        match happening with
        | Happening.Start name ->
            match world.pods.TryFind name with
            | Some({ state = PodState.Starting node } as pod) ->
                let pod =
                    { pod with
                        state =
                            if pod.script.imageMissing then
                                PodState.ImageMissing node
                            else
                                PodState.Running(node, at) }

                let world = store pod world

                let world =
                    match pod.state, pod.script.runTime with
                    | PodState.Running _, Some runTime -> schedule (at + runTime) (Happening.Finish name) world
                    | _ -> world

                world, seen world at pod false None
            | Some _
            | None -> world, []
        | Happening.Finish name ->
            match world.pods.TryFind name with
            | Some({ state = PodState.Running(node, startedAt) } as pod) ->
                let overLimit = pod.memoryLimit |> Option.exists (fun limit -> pod.script.memoryUsed > limit)

                let code, why =
                    if overLimit then 137, "OOMKilled"
                    elif pod.script.exitCode = 0 then 0, "Completed"
                    else pod.script.exitCode, "Error"

                let pod =
                    { pod with
                        state = PodState.Ended(node, code, why, startedAt, at) }

                let world = store pod world
                world, seen world at pod false None
            | Some _
            | None -> world, []
        | Happening.Fault f -> fault at f world
        | Happening.RetryCreate(run, job, script, attempt, firstAt) ->
            if world.runs.Contains run then
                createPod run job script attempt firstAt at world
            else
                // The run's client is gone, and its calls with it.
                world, []
        | Happening.WatchBack ->
            if world.watchDownUntil |> Option.exists (fun until -> until <= at) then
                let world = { world with watchDownUntil = None }

                world.runs
                |> List.ofSeq
                |> List.fold
                    (fun (w, ds) run ->
                        let w, d = watch run at w
                        w, ds @ d)
                    (world, [])
            else
                world, []

    /// Runs the first happening due at or before `at`, if any, and places the pods that can now be placed.
    let step (at: Millis) (world: World) : (World * Delivery list) option =
        if world.due.IsEmpty then
            None
        else
            let key, happening = Map.minKeyValue world.due
            let dueAt = key.at

            if dueAt > at then
                None
            else
                let world, deliveries = happen dueAt happening { world with due = world.due.Remove key }
                let world, placed = scheduleAll dueAt world
                Some(world, deliveries @ placed)

    /// The run's pod's log, if the pod is still there.
    let logOf (pod: string) (world: World) : string option =
        world.pods.TryFind pod |> Option.map _.script.log
