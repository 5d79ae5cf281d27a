/// When the core's clock matters next: a simulation ticks the core then rather than every second, and knows when
/// nothing can happen any more.
namespace HybridBatch.Testing.Simulation

open System
open HybridBatch.Core
open HybridBatch.Core.JobState

/// Queries of the core's model for a simulation's clock.
[<RequireQualifiedAccess>]
module CoreClock =

    /// The earliest moment at which the clock changes the model, if any: a stuck job's pod timeout runs out, or a
    /// queued job may be tried beyond a quota's cap. It depends on the model only, so a caller may keep it for as long as
    /// it holds the same model. (A job waiting for room while the run holds some never times out by the clock alone.)
    let due (model: Model) : Millis option =
        let roomHeld = not model.nodes.IsEmpty

        let earliest =
            // While the run holds room, the jobs that wait for room do not time out: only the others can.
            (if roomHeld then model.expiring else model.stuck)
            |> Set.fold
                (fun earliest id ->
                    match model.jobs.TryFind id with
                    | Some { phase = Phase.Created(_, Some stuck) } ->
                        // The job does not wait for room, or the run holds none: `stuckSince` does not depend on the moment.
                        let at = Lifecycle.stuckSince model stuck stuck.since + model.config.podTimeout
                        if at < earliest then at else earliest
                    | _ -> earliest)
                Int64.MaxValue

        let earliest =
            match model.admission with
            | Some a when a.probing && not model.queue.IsEmpty && model.used.jobs >= a.cap -> min earliest a.probeAt
            | _ -> earliest

        if earliest = Int64.MaxValue then None else Some earliest

    /// When a tick due at `at` comes, seen at `now`: after now, on a whole second, as the runtime's one-second ticker
    /// brings ticks.
    let tickAt (at: Millis) (now: Millis) : Millis = (max (now + 1L) at + 999L) / 1000L * 1000L

    let private describe (job: Job) =
        match job.phase with
        | Phase.Queued _ -> $"job {job.id} is queued (the pool or the namespace's quota is full)"
        | Phase.Creating -> $"job {job.id} is being created"
        | Phase.Created(_, Some stuck) -> $"job {job.id} waits: {stuck.why}"
        | Phase.Created(_, None) -> $"job {job.id} waits for its container to start"
        | Phase.Running(_, startedAt) -> $"job {job.id} runs (since {startedAt}) with no end scripted"
        | Phase.Ended _ -> $"job {job.id} ended"

    /// Why a wait cannot end: the jobs still waiting, each with where it is.
    let stalled (model: Model) : string =
        let waiting =
            model.jobs |> Seq.map (fun kv -> kv.Value) |> Seq.filter isLive |> Seq.map describe |> List.ofSeq

        let shown = waiting |> List.truncate 20
        let more = if waiting.Length > shown.Length then $"; and {waiting.Length - shown.Length} more" else ""

        let listed = System.String.Join("; ", shown)

        $"The simulation cannot go on: nothing is scheduled to happen, yet {waiting.Length} job(s) wait: {listed}{more}. Script an end for the pods (a run time), add a node with room, or kill the jobs."
