using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using HybridBatch.Core;
using HybridBatch.Core.Api;
using HybridBatch.Testing;
using HybridBatch.Testing.Simulation;

namespace HybridBatch.Bench;

/// <summary>
/// The simulated scenarios (<c>sim-N</c>): N jobs through <see cref="SimulatedBatchSystem"/> in virtual time, with a node
/// lost at 10 minutes and the API server answering creates with 429 from 5 to 6 minutes, as the scale test runs them:
/// 20 nodes of 16 cores and 16 GiB, at most 600 jobs at once, each job running 30 to 119 s. No Kubernetes cluster and no
/// cluster lock: it is CPU alone. The baseline, in the same process, is the same run's inputs to the core (every event
/// and collection, recorded from a run of the simulation) replayed through the core's transition function alone, so
/// the ratio is what the simulated cluster, the runtime and the contract cost on top of the core.
/// </summary>
internal static class SimBench
{
    public static IReadOnlyList<string> Names { get; } = ["sim-10000"];

    private static readonly JobDescription Small = new("small", 0.5, 256L << 20, 256L << 20);
    private static readonly DateTimeOffset Start = new(2030, 1, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>Whether a scenario name is a simulated one, and its number of jobs.</summary>
    public static bool TryParse(string name, out int jobs)
    {
        jobs = 0;
        return name.StartsWith("sim-", StringComparison.Ordinal) && int.TryParse(name.AsSpan(4), CultureInfo.InvariantCulture, out jobs) && jobs > 0;
    }

    /// <summary>
    /// Runs the scenario: one recorded run first (it warms up the JIT, and its inputs to the core are the baseline's),
    /// then <paramref name="reps"/> runs of each side, alternating; the figures are each side's median.
    /// </summary>
    public static async Task<JsonObject> RunAsync(string name, int jobs, int reps)
    {
        Console.WriteLine($"scenario {name}: {jobs} jobs through the simulated cluster (20 nodes; n7 lost at 10 min; 429 on creates 5-6 min), {reps} rep(s); no Kubernetes cluster");
        var recorded = new List<JobState.Event?>();
        var cold = await SimulateAsync(jobs, recorded).ConfigureAwait(false);
        var collections = recorded.Count(e => e is null);
        Console.WriteLine(
            $"  recorded run (cold: JIT included): {cold.WallS:F2} s wall, {cold.CpuS:F2} s CPU = {cold.CpuS * 1e6 / jobs:F0} µs CPU a job; " +
            $"{recorded.Count - collections} events and {collections} collections recorded; {cold.VirtualS / 60:F1} virtual minutes, {cold.Lost} lost");

        var simulated = new List<Run>();
        var core = new List<Run>();
        for (var rep = 0; rep < reps; rep++)
        {
            // Alternate the order, so that neither side always runs on a warmer (or busier) machine.
            foreach (var side in rep % 2 == 0 ? new[] { 0, 1 } : [1, 0])
            {
                if (side == 0)
                {
                    var run = await SimulateAsync(jobs, null).ConfigureAwait(false);
                    simulated.Add(run);
                    Console.WriteLine($"  rep {rep + 1} simulated : {run.WallS:F3} s wall, {run.CpuS:F3} s CPU = {run.CpuS * 1e6 / jobs:F1} µs CPU a job, {run.Bytes / jobs / 1024.0:F1} KiB allocated a job, {run.VirtualS / 60:F1} virtual minutes, {run.Returned} returned, {run.Lost} lost");
                }
                else
                {
                    var run = Replay(cold.Model!, recorded);
                    core.Add(run);
                    Console.WriteLine($"  rep {rep + 1} core alone: {run.WallS:F3} s wall, {run.CpuS:F3} s CPU = {run.CpuS * 1e6 / jobs:F1} µs CPU a job, {run.Bytes / jobs / 1024.0:F1} KiB allocated a job, {run.Returned} results");
                }
            }
        }

        var sim = Median(simulated);
        var baseline = Median(core);
        Console.WriteLine($"  simulated / core alone: {sim.CpuS / baseline.CpuS:F2} × the CPU");
        return new JsonObject
        {
            ["scenario"] = name,
            ["kind"] = "simulated",
            ["run_at"] = DateTimeOffset.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
            ["jobs"] = jobs,
            ["command"] = "true (scripted: exit 0 after 30-119 s)",
            ["nodes"] = "20 simulated nodes",
            ["faults"] = "node n7 lost at 10 min; creates refused with 429 (Retry-After 1 s) from 5 to 6 min",
            ["max_jobs"] = 600,
            ["virtual_s"] = Math.Round(sim.VirtualS, 1),
            ["virtual_per_wall"] = Math.Round(sim.VirtualS / sim.WallS, 0),
            ["elapsed_s"] = Math.Round(sim.WallS, 3),
            ["cpu_s"] = Math.Round(sim.CpuS, 3),
            ["cpu_us_per_job"] = Math.Round(sim.CpuS * 1e6 / jobs, 1),
            ["cpu_ms_per_job"] = Math.Round(sim.CpuS * 1e3 / jobs, 4),
            ["cold_cpu_us_per_job"] = Math.Round(cold.CpuS * 1e6 / jobs, 1),
            ["cold_elapsed_s"] = Math.Round(cold.WallS, 3),
            ["baseline"] = "the same run's inputs to the core (events and collections, recorded from the cold run) replayed through the core's transition function alone: no simulated cluster, runtime or contract",
            ["baseline_elapsed_s"] = Math.Round(baseline.WallS, 3),
            ["baseline_cpu_s"] = Math.Round(baseline.CpuS, 3),
            ["baseline_cpu_us_per_job"] = Math.Round(baseline.CpuS * 1e6 / jobs, 1),
            ["cpu_ratio"] = Math.Round(sim.CpuS / baseline.CpuS, 2),
            ["bytes_allocated_per_job"] = sim.Bytes / jobs,
            ["baseline_bytes_allocated_per_job"] = baseline.Bytes / jobs,
            ["core_events"] = recorded.Count - collections,
            ["core_collections"] = collections,
            ["returned"] = sim.Returned,
            ["lost"] = sim.Lost,
            ["reps"] = reps,
            ["rep_cpu_s"] = new JsonArray([.. simulated.Select(r => (JsonNode?)JsonValue.Create(Math.Round(r.CpuS, 3)))]),
            ["baseline_rep_cpu_s"] = new JsonArray([.. core.Select(r => (JsonNode?)JsonValue.Create(Math.Round(r.CpuS, 3)))]),
            ["measured"] = "process CPU time (every thread: JIT, GC) and wall time from the first issue to the last result; medians of the reps, after a cold run of the same size",
            ["cluster_lock"] = "not needed (no Kubernetes cluster)",
            ["machine"] = Report.Machine(),
            ["cluster"] = new JsonObject { ["source"] = "none: a simulated cluster in virtual time" },
        };
    }

    private sealed record Run(double WallS, double CpuS, double VirtualS, int Returned, int Lost, long Bytes, JobState.Model? Model = null);

    private static Run Median(List<Run> runs) => runs.OrderBy(r => r.CpuS).ElementAt(runs.Count / 2);

    /// <summary>One run of the simulation; with <paramref name="journal"/>, the core's inputs are recorded into it.</summary>
    private static async Task<Run> SimulateAsync(int jobs, List<JobState.Event?>? journal)
    {
        var nodes = Enumerable.Range(1, 20).Select(i => new SimulatedNode($"n{i}", 16, 16L << 30, 64L << 30)).ToArray();
        var cluster = new SimulatedCluster(
            new SimulatedClusterOptions { Seed = 10_000, Start = Start, StartJitter = TimeSpan.FromSeconds(2), Behaviour = j => PodBehaviour.Exits(0, TimeSpan.FromSeconds(30 + (j.JobId % 90))) },
            nodes);
        await using var system = await SimulatedBatchSystem.CreateAsync(cluster, new KubernetesBatchSystemOptions { MaxJobs = 600, PodTimeout = TimeSpan.FromSeconds(60) }).ConfigureAwait(false);
        cluster.LoseNode("n7", after: TimeSpan.FromMinutes(10));
        cluster.RefuseCreates(ApiRefusal.TooManyRequests, TimeSpan.FromMinutes(1), after: TimeSpan.FromMinutes(5));
        var start = system.Runtime.Model;
        if (journal is not null)
        {
            system.Runtime.Journal = journal.Add;
        }

        var bytes = GC.GetTotalAllocatedBytes(precise: true);
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var wall = Stopwatch.StartNew();
        for (var i = 0; i < jobs; i++)
        {
            await system.IssueBatchJobAsync("true", Small).ConfigureAwait(false);
        }

        var lost = 0;
        var returned = 0;
        while (returned < jobs && await system.GetUpdatedBatchJobAsync(TimeSpan.FromHours(1)).ConfigureAwait(false) is { } result)
        {
            returned++;
            lost += result.ExitReason == BatchJobExitReason.Lost ? 1 : 0;
        }

        wall.Stop();
        var used = Process.GetCurrentProcess().TotalProcessorTime - cpu;
        system.Runtime.Journal = null;
        return new(wall.Elapsed.TotalSeconds, used.TotalSeconds, (cluster.Now - Start).TotalSeconds, returned, lost, GC.GetTotalAllocatedBytes(precise: true) - bytes, start);
    }

    /// <summary>The recorded inputs through the core's transition function alone, from the model the run started from.</summary>
    private static Run Replay(JobState.Model start, List<JobState.Event?> inputs)
    {
        var bytes = GC.GetTotalAllocatedBytes(precise: true);
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var wall = Stopwatch.StartNew();
        var model = start;
        var results = 0;
        var effects = 0;
        foreach (var input in inputs)
        {
            if (input is null)
            {
                var collected = Transitions.Collect(model);
                model = collected.Model;
                results += collected.Result is null ? 0 : 1;
                effects += collected.Effects.Length;
            }
            else
            {
                var transition = Transitions.Step(model, input);
                model = transition.Model;
                effects += transition.Effects.Length;
            }
        }

        wall.Stop();
        var used = Process.GetCurrentProcess().TotalProcessorTime - cpu;
        GC.KeepAlive(effects);
        return new(wall.Elapsed.TotalSeconds, used.TotalSeconds, 0, results, 0, GC.GetTotalAllocatedBytes(precise: true) - bytes);
    }
}
