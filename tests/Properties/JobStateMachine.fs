/// A model-based test: generated command sequences drive the transition function and a deliberately simple
/// reference model side by side; after every command the issued set, the running set and what collection returns
/// must agree.
module HybridBatch.Properties.JobStateMachine

open FsCheck
open FsCheck.FSharp
open FsCheck.Experimental
open FsCheck.Xunit
open HybridBatch.Core
open HybridBatch.Core.JobState
open HybridBatch.Core.Lifecycle
open HybridBatch.Properties.JobStateHistories

/// The reference: a job is queued, waiting for its container, running, or ended with a known outcome.
type RefStatus =
    | Queued
    | Waiting
    | Running
    | Ended of exitStatus: int * reason: ExitReason

type Reference =
    { next: int
      status: Map<int, RefStatus>
      /// Ended jobs in the order they ended.
      endedOrder: int list
      /// The last result collection returned.
      delivered: (int * int * ExitReason) option }

let private maxJobs = 2

let private refConfig =
    { podTimeout = 60_000L
      limits =
        { maxJobs = maxJobs
          maxMillicores = 1_000_000L
          maxMemory = 1L <<< 40
          maxDisk = 1L <<< 40 } }

/// Start queued jobs, oldest first, while fewer than `maxJobs` hold the pool.
let private promote (r: Reference) =
    let holding =
        r.status
        |> Map.filter (fun _ s -> s = Waiting || s = Running)
        |> Map.count

    let queued =
        r.status |> Map.filter (fun _ s -> s = Queued) |> Map.keys |> Seq.sort |> List.ofSeq

    let toStart = queued |> List.truncate (max 0 (maxJobs - holding))

    { r with
        status = toStart |> List.fold (fun m id -> Map.add id Waiting m) r.status }

/// The system under test: the transition function threaded through a mutable cell, with a clock.
type Sut() =
    member val Model = initial refConfig with get, set
    member val Now = 1_000_000L with get, set
    member val Delivered: UpdatedJob option = None with get, set

    member this.Apply(event: Event) =
        let model, effects = step this.Model event
        this.Model <- model

        // The shell creates every job the function asks for; the API answers at once.
        for effect in effects do
            match effect with
            | Effect.Create job -> this.Model <- fst (step this.Model (Event.Created(job.id, this.Now)))
            | Effect.Delete _
            | Effect.Ended _
            | Effect.CleanupNode _
            | Effect.DeleteAll -> ()

    member this.Collect() =
        let delivered, model, _ = collect this.Model
        this.Model <- model
        this.Delivered <- delivered

    member this.Pod(id: int, container: Container, phase: PodPhase, reason: string option) =
        this.Now <- this.Now + 1_000L

        this.Apply(
            Event.Observed(
                { job = id
                  pod = $"pod-{id}"
                  node = Some "node-a"
                  phase = phase
                  reason = reason
                  message = None
                  unschedulable = None
                  container = container
                  deleting = false },
                this.Now
            )
        )

let private agrees (sut: Sut) (r: Reference) =
    let issuedRef = r.status |> Map.keys |> List.ofSeq |> List.sort

    let runningRef =
        r.status |> Map.filter (fun _ s -> s = Running) |> Map.keys |> List.ofSeq |> List.sort

    let runningSut = running sut.Model sut.Now |> List.map fst |> List.sort
    let deliveredSut = sut.Delivered |> Option.map (fun d -> d.id, d.exitStatus, d.reason)

    (issued sut.Model = issuedRef |> Prop.label $"issued: {issued sut.Model} vs {issuedRef}")
    .&. (runningSut = runningRef |> Prop.label $"running: {runningSut} vs {runningRef}")
    .&. (deliveredSut = r.delivered |> Prop.label $"delivered: {deliveredSut} vs {r.delivered}")

let private op name (pre: Reference -> bool) (run: Reference -> Reference) (act: Sut -> unit) =
    { new Operation<Sut, Reference>() with
        override _.Pre r = pre r
        override _.Run r = run r

        override _.Check(sut, r) =
            act sut
            agrees sut r

        override _.ToString() = name }

let private has id status (r: Reference) = r.status.TryFind id = Some status

let private finish id exitStatus reason (r: Reference) =
    promote
        { r with
            status = Map.add id (Ended(exitStatus, reason)) r.status
            endedOrder = r.endedOrder @ [ id ] }

let private issueOp =
    op
        "issue"
        (fun _ -> true)
        (fun r -> promote { r with next = r.next + 1; status = Map.add r.next Queued r.status })
        (fun sut ->
            let job = prepared (nextId sut.Model) 1000L

            sut.Apply(
                Event.Issued(
                    { job with
                        request =
                            { job.request with
                                memory = 1L
                                disk = 1L } },
                    sut.Now
                )
            ))

let private startOp id =
    op $"start {id}" (has id Waiting) (fun r -> { r with status = Map.add id Running r.status }) (fun sut ->
        sut.Pod(id, Container.Running(sut.Now), PodPhase.Running, None))

let private exitOp id code =
    let reason = if code = 0 then ExitReason.Finished else ExitReason.Failed

    op $"exit {id} with {code}" (has id Running) (finish id code reason) (fun sut ->
        sut.Pod(
            id,
            Container.Terminated(code, None, None, Some(sut.Now - 3_000L), Some(sut.Now)),
            (if code = 0 then PodPhase.Succeeded else PodPhase.Failed),
            None
        ))

let private oomOp id =
    op $"oom {id}" (has id Running) (finish id 137 ExitReason.MemLimit) (fun sut ->
        sut.Pod(id, Container.Terminated(137, Some "OOMKilled", None, Some(sut.Now - 500L), Some(sut.Now)), PodPhase.Failed, None))

let private evictOp id =
    op $"evict {id}" (has id Running) (finish id ExitStatusUnavailable ExitReason.Lost) (fun sut ->
        sut.Pod(id, Container.Running(sut.Now - 2_000L), PodPhase.Failed, Some "Evicted"))

let private killOp id =
    op
        $"kill {id}"
        (fun r -> r.status.ContainsKey id)
        (fun r ->
            promote
                { r with
                    status = Map.remove id r.status
                    endedOrder = r.endedOrder |> List.filter ((<>) id) })
        (fun sut -> sut.Apply(Event.KillRequested([ id ], sut.Now)))

let private collectOp =
    op
        "collect"
        (fun _ -> true)
        (fun r ->
            match r.endedOrder with
            | [] -> { r with delivered = None }
            | id :: rest ->
                let delivered =
                    match r.status[id] with
                    | Ended(code, reason) -> Some(id, code, reason)
                    | Queued
                    | Waiting
                    | Running -> None

                { r with
                    status = Map.remove id r.status
                    endedOrder = rest
                    delivered = delivered })
        (fun sut ->
            sut.Delivered <- None
            sut.Collect())

/// Commands that make sense for the reference's current state.
let private next (r: Reference) : Gen<Operation<Sut, Reference>> =
    let withStatus f =
        r.status |> Map.filter (fun _ s -> f s) |> Map.keys |> List.ofSeq

    let waiting = withStatus ((=) Waiting)
    let runningIds = withStatus ((=) Running)
    let any = r.status |> Map.keys |> List.ofSeq

    [ yield 3, Gen.constant issueOp
      yield 2, Gen.constant collectOp
      if not waiting.IsEmpty then
          yield 3, Gen.elements waiting |> Gen.map startOp
      if not runningIds.IsEmpty then
          yield 3, Gen.map2 exitOp (Gen.elements runningIds) (Gen.elements [ 0; 1; 42 ])
          yield 1, Gen.elements runningIds |> Gen.map oomOp
          yield 1, Gen.elements runningIds |> Gen.map evictOp
      if not any.IsEmpty then
          yield 1, Gen.elements any |> Gen.map killOp ]
    |> Gen.frequency

let machine =
    { new Machine<Sut, Reference>() with
        override _.Setup =
            Gen.constant (
                { new Setup<Sut, Reference>() with
                    override _.Actual() = Sut()

                    override _.Model() =
                        { next = 1
                          status = Map.empty
                          endedOrder = []
                          delivered = None } }
            )
            |> Arb.fromGen

        override _.Next r = next r }

[<CoreProperty>]
let ``the transition function agrees with a simple reference model`` () = StateMachine.toProperty machine
