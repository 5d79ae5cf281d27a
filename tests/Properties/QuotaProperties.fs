/// Properties of quota-aware admission: a create refused by a namespace's ResourceQuota puts the job back in the queue,
/// the run learns how many of its jobs the quota admits, and nothing it does about a refusal ends a job (unless the job
/// alone asks for more than the quota allows) or takes the run past its own limits.
module HybridBatch.Properties.QuotaProperties

open System
open FsCheck
open FsCheck.FSharp
open HybridBatch.Core
open HybridBatch.Core.JobState
open HybridBatch.Core.Lifecycle
open HybridBatch.Properties.JobStateHistories

/// The quota admission's words, as a 1.20 API server writes them, and other 403s that are not quota refusals.
[<Xunit.Fact>]
let ``the quota admission's refusals are read, other refusals are not`` () =
    let exceeded =
        Quota.ofMessage
            (Some
                "pods \"hb-1\" is forbidden: exceeded quota: compute, requested: limits.memory=64Mi,pods=1, used: limits.memory=96Mi,pods=3, limited: limits.memory=128Mi,pods=3")
            (Some(TimeSpan.FromSeconds 2.0))

    match exceeded with
    | None -> failwith "an exceeded quota was not read"
    | Some refusal ->
        Xunit.Assert.Equal("compute", refusal.quota)
        Xunit.Assert.Equal(Some(TimeSpan.FromSeconds 2.0), refusal.retryAfter)

        Xunit.Assert.Equal<QuotaAmount list>(
            [ { resource = "limits.memory"
                requested = Some "64Mi"
                used = Some "96Mi"
                limited = Some "128Mi" }
              { resource = "pods"
                requested = Some "1"
                used = Some "3"
                limited = Some "3" } ],
            refusal.amounts
        )

        Xunit.Assert.False(Quota.neverFits refusal)

    let unknown =
        Quota.ofMessage (Some "pods \"hb-1\" is forbidden: status unknown for quota: fresh, resources: pods,limits.memory") None

    Xunit.Assert.Equal(Some "fresh", unknown |> Option.map _.quota)
    Xunit.Assert.Equal(Some [ "pods"; "limits.memory" ], unknown |> Option.map (fun r -> r.amounts |> List.map _.resource))

    let tooBig = quotaRefusal 1 0
    Xunit.Assert.True(Quota.neverFits tooBig)
    Xunit.Assert.Contains("ResourceQuota little-memory", Quota.explainNeverFits tooBig)
    Xunit.Assert.Contains("limits.memory 64Mi (the quota allows 32Mi)", Quota.explainNeverFits tooBig)

    let forbidden =
        Quota.ofMessage (Some "pods is forbidden: User \"x\" cannot create resource \"pods\" in API group \"\" in the namespace \"y\"") None

    Xunit.Assert.Equal(None, forbidden)
    Xunit.Assert.Equal(None, Quota.ofMessage None None)

    let status =
        { name = "pods"
          hard = Map.ofList [ "pods", "5"; "count/jobs.batch", "2" ]
          used = Map.ofList [ "pods", "1"; "count/jobs.batch", "1" ] }

    Xunit.Assert.Equal(Some 4, Quota.room false [ status ])
    Xunit.Assert.Equal(Some 1, Quota.room true [ status ])
    Xunit.Assert.Equal(None, Quota.room false [ { status with hard = Map.ofList [ "requests.cpu", "4" ] } ])

let private refusalsIn (trace: Trace) =
    match trace.event with
    | Some(Event.QuotaRefused(prepared, refusal, _)) ->
        match job trace.before prepared.id with
        | Some({ phase = Phase.Creating }) -> Some(prepared.id, refusal)
        | _ -> None
    | _ -> None

[<CoreProperty>]
let ``a quota refusal never ends a job, unless the job alone asks for more than the quota allows`` () =
    forHistories (fun traces ->
        traces
        |> List.choose (fun t -> refusalsIn t |> Option.map (fun r -> t, r))
        |> List.map (fun (t, (id, refusal)) ->
            let ended =
                t.effects
                |> List.tryPick (function
                    | Effect.Ended(result, _) when result.id = id -> Some result
                    | _ -> None)

            let queued =
                match job t.after id with
                | Some({ phase = Phase.Queued _ }) -> true
                | _ -> false

            if Quota.neverFits refusal then
                (match ended with
                 | Some result ->
                     result.reason = ExitReason.Error
                     && result.message |> Option.exists (fun m -> m.Contains $"ResourceQuota {refusal.quota}")
                 | None -> false)
                |> Prop.label $"job {id}, too big for quota {refusal.quota}, ends once with Error naming it"
            else
                (ended.IsNone && queued)
                |> Prop.label $"job {id}, refused by quota {refusal.quota}, waits in the queue")
        |> List.fold (.&.) (Prop.ofTestable true))

[<CoreProperty>]
let ``creates never take the run past the room its quotas admit nor past its own limits`` () =
    forHistories (fun traces ->
        traces
        |> List.map (fun t ->
            let created = createdIds t.effects

            let withinCap =
                match t.after.admission with
                | Some a when not created.IsEmpty -> t.after.used.jobs <= a.cap
                | _ -> true

            // Adopted jobs may exceed the pool: they were created by an earlier process with other limits.
            let withinPool =
                created.IsEmpty
                || t.after.used.jobs <= config.limits.maxJobs
                   && t.after.used.millicores <= config.limits.maxMillicores

            (withinCap && withinPool)
            |> Prop.label $"after {t.event}: {t.after.used} against {t.after.admission}")
        |> List.fold (.&.) (Prop.ofTestable true))

[<CoreProperty>]
let ``a probe tries one queued job beyond the cap once its back-off expired, and none before`` () =
    forHistories (fun traces ->
        traces
        |> List.map (fun t ->
            match t.event, t.before.admission with
            | Some(Event.Tick at), Some a when not t.before.queue.IsEmpty && t.before.used.jobs >= a.cap ->
                let created = createdIds t.effects

                // Jobs that a stuck job's end lets in come under the cap as it was; a probe adds one beyond.
                let freed = t.effects |> List.filter (function Effect.Ended _ -> true | _ -> false) |> List.length

                let headFits =
                    match job t.before t.before.queue.MinimumElement with
                    | Some head -> Pool.fits config.limits t.before.used head.request
                    | None -> false

                if a.probing && at >= a.probeAt then
                    (created.Length <= freed + 1 && (created.Length >= 1 || not headFits))
                    |> Prop.label $"a probe at {at} (due {a.probeAt}) created {created}"
                else
                    (created.Length <= freed) |> Prop.label $"no probe before {a.probeAt} at {at}, yet {created} were created"
            | _ -> Prop.ofTestable true)
        |> List.fold (.&.) (Prop.ofTestable true))

/// A namespace with a quota of `quota` pods and the run's `count` jobs, each running `runs[i]` quarter-seconds, played
/// against the transition function a quarter-second at a time. The quota counts a pod from its create until the
/// quota's usage is recounted `lag` quarter-seconds after it ended (as the quota controller recounts after the pod's
/// end is seen); a create beyond it is refused with the admission's words. `seeded`: the quotas were read first.
let private simulate (quota: int) (runs: int list) (lag: int) (seeded: bool) =
    let quarter = 250L
    let t0 = 1_000_000L
    let refusalOf used =
        quotaRefusal 0 0 |> fun r ->
            { r with
                amounts =
                    [ { resource = "pods"
                        requested = Some "1"
                        used = Some(string used)
                        limited = Some(string quota) } ] }

    let config =
        { podTimeout = 600_000L
          limits =
            { maxJobs = 100
              maxMillicores = 1_000_000L
              maxMemory = 1L <<< 50
              maxDisk = 1L <<< 50 } }

    // Pods counted by the quota: id -> the quarter its count ends (None while it runs).
    let mutable counted: Map<JobId, int option> = Map.empty
    // Running pods: id -> the quarter it ends.
    let mutable running: Map<JobId, int> = Map.empty
    let mutable model = initial config
    let mutable refused = 0
    let mutable creates = 0
    let mutable peak = 0
    let mutable results: UpdatedJob list = []
    let pending = Collections.Generic.Queue<Event>()

    let rec perform (now: int) (effects: Effect list) =
        for effect in effects do
            match effect with
            | Effect.Create job ->
                creates <- creates + 1

                if counted.Count >= quota then
                    refused <- refused + 1
                    pending.Enqueue(Event.QuotaRefused(job, refusalOf counted.Count, t0 + int64 now * quarter))
                else
                    counted <- counted.Add(job.id, None)
                    running <- running.Add(job.id, now + runs[job.id - 1])
                    peak <- max peak running.Count
                    pending.Enqueue(Event.Created(job.id, t0 + int64 now * quarter))
            | Effect.Delete _
            | Effect.Ended _
            | Effect.CleanupNode _
            | Effect.DeleteAll -> ()

    and drain (now: int) =
        while pending.Count > 0 do
            let after, effects = step model (pending.Dequeue())
            model <- after
            perform now effects

        let rec take () =
            match collect model with
            | Some result, after, _ ->
                model <- after
                results <- result :: results
                take ()
            | None, _, _ -> ()

        take ()

    let pod (id: JobId) (now: int) (ended: bool) =
        { job = id
          pod = $"job-{id}"
          node = Some "node-1"
          phase = (if ended then PodPhase.Succeeded else PodPhase.Running)
          reason = None
          message = None
          unschedulable = None
          container =
            let at = t0 + int64 now * quarter

            if ended then
                Container.Terminated(0, Some "Completed", None, Some(at - 1_000L), Some at)
            else
                Container.Running at
          deleting = false }

    if seeded then
        pending.Enqueue(
            Event.QuotasRead(
                [ { name = "pods"
                    hard = Map.ofList [ "pods", string quota ]
                    used = Map.ofList [ "pods", "0" ] } ],
                false,
                t0
            )
        )

    for id in 1 .. runs.Length do
        pending.Enqueue(Event.Issued(prepared id 100L, t0))

    drain 0
    let mutable now = 0

    while results.Length < runs.Length && now < 100_000 do
        now <- now + 1
        let at = t0 + int64 now * quarter

        for KeyValue(id, ends) in running do
            if ends <= now then
                running <- running.Remove id
                counted <- counted.Add(id, Some(now + lag))
                pending.Enqueue(Event.Observed(pod id now true, at))
            else
                pending.Enqueue(Event.Observed(pod id now false, at))

        counted <- counted |> Map.filter (fun _ until -> until |> Option.forall (fun q -> q > now))
        pending.Enqueue(Event.Tick at)
        drain now

    results, refused, creates, peak, now

[<CoreProperty>]
let ``under a pods quota every job finishes exactly once, and refused creates stay few`` () =
    let workload =
        gen {
            let! quota = Gen.choose (1, 5)
            let! count = Gen.choose (1, 40)
            let! runs = Gen.listOfLength count (Gen.choose (1, 12))
            let! lag = Gen.choose (0, 2)
            let! seeded = Gen.elements [ false; true ]
            return quota, runs, lag, seeded
        }

    Prop.forAll (Arb.fromGen workload) (fun (quota, runs, lag, seeded) ->
        let results, refused, creates, peak, quarters = simulate quota runs lag seeded
        let ids = results |> List.map _.id |> List.sort
        // Refusals: the first burst (every job but those the quota admits, unless the quotas were read), then at most
        // one per probe (one a second at most) and one per job ending into a quota not yet recounted.
        let bound = (if seeded then 0 else runs.Length) + quarters / 4 + 2 + (if lag > 0 then runs.Length else 0)

        (ids = [ 1 .. runs.Length ] |> Prop.label $"finished once each: {ids}")
        .&. (results |> List.forall (fun r -> r.reason = ExitReason.Finished) |> Prop.label "all finished with exit 0")
        .&. (peak <= quota |> Prop.label $"{peak} pods at once under a quota of {quota}")
        .&. (refused <= bound |> Prop.label $"{refused} refusals of {creates} creates in {quarters / 4} s (at most {bound})")
        .&. (creates = runs.Length + refused |> Prop.label "each refusal costs one create"))

[<CoreProperty>]
let ``after the quotas are read, a job that alone asks for more than one allows ends at once, never created; others are created``
    (hardMi: PositiveInt)
    (askedMi: PositiveInt)
    (asJobs: bool)
    =
    let quota =
        { name = "memory-quota"
          hard = Map.ofList [ "limits.memory", $"{hardMi.Get}Mi" ]
          used = Map.ofList [ "limits.memory", "0" ] }

    let job =
        let p = prepared 1 100L

        { p with
            resources =
                { p.resources with
                    requests = Map.ofList [ "memory", $"{askedMi.Get}Mi" ]
                    limits = Map.ofList [ "memory", $"{askedMi.Get}Mi" ] } }

    let model, effects =
        fold (initial config) [ Event.QuotasRead([ quota ], asJobs, 1_000L); Event.Issued(job, 2_000L) ]

    let created = createdIds effects = [ 1 ]

    let ended =
        effects
        |> List.tryPick (function
            | Effect.Ended(result, None) -> Some result
            | _ -> None)

    if askedMi.Get > hardMi.Get then
        (not created
         && (ended
             |> Option.exists (fun r ->
                 r.reason = ExitReason.Error
                 && r.message |> Option.exists (fun m -> m.Contains "ResourceQuota memory-quota" && m.Contains $"limits.memory {askedMi.Get}Mi")))
         && (match collect model with
             | Some _, _, deletes -> List.isEmpty deletes
             | None, _, _ -> false))
        |> Prop.label "too big: ends at once with Error naming the quota and the amount, and nothing is deleted"
    else
        (created && ended.IsNone) |> Prop.label "fits: created"
