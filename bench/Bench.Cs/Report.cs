using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace HybridBatch.Bench;

/// <summary>Turns side results into the scenario objects of the result files, and the files into the table and chart.</summary>
internal static class Report
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>One scenario's figures; for a pod-mode scenario the baseline is the raw bare-pod loop and <paramref name="jobMode"/> HybridBatch in Job mode.</summary>
    public static JsonObject Scenario(Scenario scenario, SideResult hybrid, SideResult? baseline, IReadOnlyDictionary<string, string> cluster, SideResult? jobMode = null)
    {
        var jobs = scenario.Jobs;
        double? Ratio(double? a, double? b) => a is { } x && b is { } y && y > 0 ? Math.Round(x / y, 3) : null;
        double? PerJob(long requests, int count) => count > 0 ? Math.Round(requests / (double)count, 3) : null;
        JsonObject PerJobByVerb(Dictionary<string, long> byVerb, int count) =>
            new(byVerb.OrderBy(kv => kv.Key, StringComparer.Ordinal)
                .Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)JsonValue.Create(Math.Round(kv.Value / (double)Math.Max(1, count), 3)))));

        double? jobsPerS = scenario.Idle ? null : Math.Round(hybrid.JobsPerS(jobs), 2);
        double? baselinePerS = baseline is null ? null : Math.Round(baseline.JobsPerS(jobs), 2);
        double? jobModePerS = jobMode is null ? null : Math.Round(jobMode.JobsPerS(jobs), 2);
        var o = new JsonObject
        {
            ["scenario"] = scenario.Name,
            ["run_at"] = DateTimeOffset.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
            ["jobs"] = jobs,
            ["command"] = scenario.Command,
            ["nodes"] = scenario.OnFakeNodes ? $"{scenario.FakeNodes} fake nodes" : "1 real node",
            ["exit_time_source"] = scenario.OnFakeNodes
                ? "fake kubelet's exit stamp (ms)"
                : "container finishedAt from the pod status (1 s resolution: detection latencies carry 0-1 s of rounding)",
            ["object_kind"] = scenario.PodMode ? "pod" : "job",
            ["baseline_loop"] = scenario.PodMode ? "raw bare-pod loop" : "raw Job loop",
            ["jobs_per_s"] = jobsPerS,
            ["baseline_jobs_per_s"] = baselinePerS,
            ["throughput_ratio"] = Ratio(jobsPerS, baselinePerS),
            ["job_mode_jobs_per_s"] = jobModePerS,
            ["pod_over_job_mode_ratio"] = Ratio(jobsPerS, jobModePerS),
            ["job_mode_requests_per_job"] = jobMode is null ? null : PerJob(jobMode.Requests, Math.Max(1, jobMode.Returned)),
            ["job_mode_requests_by_verb_per_job"] = jobMode is null ? null : PerJobByVerb(jobMode.ByVerb, jobMode.Returned),
            ["job_mode_detect_p50_ms"] = jobMode is null ? null : Stats.Round(Stats.Percentile(jobMode.DetectMs, 50), 0),
            ["job_mode_detect_p99_ms"] = jobMode is null ? null : Stats.Round(Stats.Percentile(jobMode.DetectMs, 99), 0),
            ["job_mode_cpu_ms_per_job"] = jobMode is null ? null : Math.Round(jobMode.CpuS * 1000 / Math.Max(1, jobMode.Returned), 2),
            ["job_mode_first_create_ms"] = Stats.Round(jobMode?.FirstCreateMs, 1),
            ["job_mode_elapsed_s"] = jobMode is null ? null : Math.Round(jobMode.ElapsedS, 2),
            ["job_mode_returned"] = jobMode?.Returned,
            ["job_mode_not_finished"] = jobMode?.NotFinished,
            ["requests_per_job"] = scenario.Idle ? null : PerJob(hybrid.Requests, Math.Max(1, hybrid.Returned)),
            ["requests_by_verb_per_job"] = scenario.Idle ? null : PerJobByVerb(hybrid.ByVerb, hybrid.Returned),
            ["baseline_requests_per_job"] = baseline is null ? null : PerJob(baseline.Requests, Math.Max(1, baseline.Returned)),
            ["baseline_requests_by_verb_per_job"] = baseline is null ? null : PerJobByVerb(baseline.ByVerb, baseline.Returned),
            ["idle_requests_per_s"] = Stats.Round(hybrid.IdleRequestsPerS, 4),
            ["idle_requests_by_verb"] = hybrid.IdleByVerb is null ? null : JsonSerializer.SerializeToNode(hybrid.IdleByVerb),
            ["idle_cpu_s_per_min"] = hybrid.IdleCpuS is { } idleCpu ? Math.Round(idleCpu * 60.0 / scenario.IdleSeconds, 3) : null,
            ["detect_p50_ms"] = Stats.Round(Stats.Percentile(hybrid.DetectMs, 50), 0),
            ["detect_p99_ms"] = Stats.Round(Stats.Percentile(hybrid.DetectMs, 99), 0),
            ["baseline_detect_p50_ms"] = baseline is null ? null : Stats.Round(Stats.Percentile(baseline.DetectMs, 50), 0),
            ["baseline_detect_p99_ms"] = baseline is null ? null : Stats.Round(Stats.Percentile(baseline.DetectMs, 99), 0),
            ["side_watch_p50_ms"] = Stats.Round(Stats.Percentile(hybrid.SideWatchMs, 50), 0),
            ["side_watch_p99_ms"] = Stats.Round(Stats.Percentile(hybrid.SideWatchMs, 99), 0),
            ["baseline_side_watch_p50_ms"] = baseline is null ? null : Stats.Round(Stats.Percentile(baseline.SideWatchMs, 50), 0),
            ["baseline_side_watch_p99_ms"] = baseline is null ? null : Stats.Round(Stats.Percentile(baseline.SideWatchMs, 99), 0),
            ["job_mode_side_watch_p50_ms"] = jobMode is null ? null : Stats.Round(Stats.Percentile(jobMode.SideWatchMs, 50), 0),
            ["job_mode_side_watch_p99_ms"] = jobMode is null ? null : Stats.Round(Stats.Percentile(jobMode.SideWatchMs, 99), 0),
            ["own_p50_ms"] = Stats.Round(Stats.Percentile(hybrid.OwnMs, 50), 3),
            ["own_p99_ms"] = Stats.Round(Stats.Percentile(hybrid.OwnMs, 99), 3),
            ["issue_p50_ms"] = Stats.Round(Stats.Percentile(hybrid.IssueMs, 50), 4),
            ["issue_p99_ms"] = Stats.Round(Stats.Percentile(hybrid.IssueMs, 99), 4),
            ["baseline_create_p50_ms"] = baseline is null ? null : Stats.Round(Stats.Percentile(baseline.IssueMs, 50), 1),
            ["baseline_create_p99_ms"] = baseline is null ? null : Stats.Round(Stats.Percentile(baseline.IssueMs, 99), 1),
            ["cpu_s"] = scenario.Idle ? null : Math.Round(hybrid.CpuS, 2),
            ["cpu_ms_per_job"] = scenario.Idle ? null : Math.Round(hybrid.CpuS * 1000 / Math.Max(1, hybrid.Returned), 2),
            ["baseline_cpu_s"] = baseline is null ? null : Math.Round(baseline.CpuS, 2),
            ["baseline_cpu_ms_per_job"] = baseline is null ? null : Math.Round(baseline.CpuS * 1000 / Math.Max(1, baseline.Returned), 2),
            ["bytes_per_job"] = hybrid.BytesPerJob,
            ["bytes_per_job_measured"] = hybrid.BytesPerJob is null ? null
                : scenario.Idle ? "all jobs running (steady state), managed heap after a full collection" : "right after issuing every job (peak: most wait for their create call), managed heap after a full collection",
            ["returned"] = hybrid.Returned,
            ["baseline_returned"] = baseline?.Returned,
            ["not_finished"] = hybrid.NotFinished,
            ["baseline_not_finished"] = baseline?.NotFinished,
            ["retries"] = hybrid.Retries,
            ["shutdown_requests"] = hybrid.ShutdownRequests,
            ["first_create_ms"] = Stats.Round(hybrid.FirstCreateMs, 1),
            ["baseline_first_create_ms"] = Stats.Round(baseline?.FirstCreateMs, 1),
            ["cluster_lock"] = Environment.GetEnvironmentVariable("HYBRIDBATCH_BENCH_LOCK") ?? "not taken (run directly, not through bench/run)",
            ["elapsed_s"] = Math.Round(hybrid.ElapsedS, 2),
            ["baseline_elapsed_s"] = baseline is null ? null : Math.Round(baseline.ElapsedS, 2),
            ["warnings"] = new JsonArray([.. hybrid.Warnings.Concat(baseline?.Warnings ?? []).Concat(jobMode?.Warnings ?? []).Take(8).Select(w => (JsonNode?)JsonValue.Create(w))]),
            ["watch_log"] = new JsonArray([.. hybrid.WatchLog.Take(60).Select(w => (JsonNode?)JsonValue.Create(w))]),
            ["machine"] = Machine(),
            ["cluster"] = JsonSerializer.SerializeToNode(cluster),
        };
        return o;
    }

    public static JsonObject Machine()
    {
        var cpu = File.Exists("/proc/cpuinfo")
            ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim()
            : null;
        var load = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Trim() : null;
        return new JsonObject
        {
            ["cores"] = Environment.ProcessorCount,
            ["cpu"] = cpu,
            ["os"] = RuntimeInformation.OSDescription,
            ["dotnet"] = RuntimeInformation.FrameworkDescription,
            ["loadavg_at_end"] = load,
            ["note"] = "2 cores shared with the cluster and with other engineers' builds and tests",
        };
    }

    /// <summary>Adds a scenario object to this run's file.</summary>
    public static void Append(string resultsDir, string runId, JsonObject scenario)
    {
        Directory.CreateDirectory(resultsDir);
        var path = Path.Combine(resultsDir, runId + ".json");
        var run = File.Exists(path) ? JsonNode.Parse(File.ReadAllText(path))!.AsObject() : new JsonObject { ["run"] = runId, ["scenarios"] = new JsonArray() };
        var list = run["scenarios"]!.AsArray();
        foreach (var old in list.Where(s => s?["scenario"]?.GetValue<string>() == scenario["scenario"]!.GetValue<string>()).ToList())
        {
            list.Remove(old);
        }

        list.Add(scenario);
        File.WriteAllText(path, run.ToJsonString(Indented));
    }

    /// <summary>
    /// Writes latest.json (the newest measurement of every scenario across the run files), latest.md and latest.png.
    /// </summary>
    public static void Latest(string resultsDir)
    {
        var newest = new Dictionary<string, JsonObject>(StringComparer.Ordinal);
        foreach (var file in Directory.EnumerateFiles(resultsDir, "2*.json").Order(StringComparer.Ordinal))
        {
            var run = JsonNode.Parse(File.ReadAllText(file))!.AsObject();
            foreach (var s in run["scenarios"]!.AsArray().OfType<JsonObject>())
            {
                var copy = s.DeepClone().AsObject();
                copy["run"] = run["run"]!.GetValue<string>();
                newest[s["scenario"]!.GetValue<string>()] = copy;
            }
        }

        var order = global::HybridBatch.Bench.Scenario.Full.Select(s => s.Name).Concat(SimBench.Names).ToList();
        var scenarios = newest.Values
            .OrderBy(s => order.IndexOf(s["scenario"]!.GetValue<string>()) is var i && i >= 0 ? i : 999)
            .ThenBy(s => s["jobs"]!.GetValue<int>())
            .ToList();
        var micro = File.Exists(Path.Combine(resultsDir, "micro.json")) ? JsonNode.Parse(File.ReadAllText(Path.Combine(resultsDir, "micro.json"))) : null;
        var latest = new JsonObject
        {
            ["generated_at"] = DateTimeOffset.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
            ["scenarios"] = new JsonArray([.. scenarios.Select(s => (JsonNode?)s.DeepClone())]),
            ["micro"] = micro?.DeepClone(),
        };
        File.WriteAllText(Path.Combine(resultsDir, "latest.json"), latest.ToJsonString(Indented));
        var table = Markdown(scenarios, micro);
        File.WriteAllText(Path.Combine(resultsDir, "latest.md"), table);
        File.WriteAllText(Path.Combine(resultsDir, "..", "README.md"), Readme(table));
        Chart.Write(Path.Combine(resultsDir, "latest.png"), scenarios);
        UpdateRepositoryReadme(Path.Combine(resultsDir, "..", "..", "README.md"), ScenarioTable(scenarios));
    }

    private const string TableBegin = "<!-- bench table: written by bench/run -->";
    private const string TableEnd = "<!-- end of bench table -->";

    /// <summary>Replaces the table between the README's markers, so the README always shows the newest figures.</summary>
    private static void UpdateRepositoryReadme(string path, string table)
    {
        if (!File.Exists(path))
        {
            return;
        }

        var text = File.ReadAllText(path);
        var begin = text.IndexOf(TableBegin, StringComparison.Ordinal);
        var end = text.IndexOf(TableEnd, StringComparison.Ordinal);
        if (begin < 0 || end < begin)
        {
            Console.Error.WriteLine($"{path} has no '{TableBegin}' … '{TableEnd}' markers: its benchmark table was not updated.");
            return;
        }

        var updated = string.Concat(text.AsSpan(0, begin + TableBegin.Length), "\n", table, text.AsSpan(end));
        File.WriteAllText(path, updated);
    }

    private static string Cell(JsonNode? node, string format = "G4") => node switch
    {
        null => "–",
        JsonValue v when v.TryGetValue<double>(out var d) => d.ToString(format, CultureInfo.InvariantCulture),
        JsonValue v when v.TryGetValue<long>(out var l) => l.ToString(CultureInfo.InvariantCulture),
        _ => node.ToJsonString(),
    };

    private static bool IsSimulated(JsonObject s) => s["kind"]?.GetValue<string>() == "simulated";

    /// <summary>The table of every scenario on the cluster, then the pod-mode table and the simulated one (when there are such rows).</summary>
    private static string ScenarioTable(List<JsonObject> all)
    {
        var scenarios = all.Where(s => !IsSimulated(s)).ToList();
        var md = new StringBuilder();
        md.AppendLine("| scenario | jobs | nodes | jobs/s | baseline jobs/s | ratio | req/job | baseline req/job | idle req/s | detect p50 / p99 ms | baseline detect p50 / p99 ms | own p99 ms | issue p99 ms | CPU ms/job | bytes/job | run |");
        md.AppendLine("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
        foreach (var s in scenarios)
        {
            md.Append(CultureInfo.InvariantCulture, $"| {s["scenario"]} | {s["jobs"]} | {s["nodes"]} | {Cell(s["jobs_per_s"])} | {Cell(s["baseline_jobs_per_s"])} | {Cell(s["throughput_ratio"], "F2")} | ");
            md.Append(CultureInfo.InvariantCulture, $"{Cell(s["requests_per_job"], "F2")} | {Cell(s["baseline_requests_per_job"], "F2")} | {Cell(s["idle_requests_per_s"])} | ");
            md.Append(CultureInfo.InvariantCulture, $"{Cell(s["detect_p50_ms"], "F0")} / {Cell(s["detect_p99_ms"], "F0")} | {Cell(s["baseline_detect_p50_ms"], "F0")} / {Cell(s["baseline_detect_p99_ms"], "F0")} | ");
            md.AppendLine(CultureInfo.InvariantCulture, $"{Cell(s["own_p99_ms"], "F2")} | {Cell(s["issue_p99_ms"], "F3")} | {Cell(s["cpu_ms_per_job"], "F2")} | {Cell(s["bytes_per_job"])} | {s["run"]} |");
        }

        var pod = scenarios.Where(s => s["object_kind"]?.GetValue<string>() == "pod").ToList();
        if (pod.Count > 0)
        {
            md.AppendLine();
            md.AppendLine("Pod mode (`-pod` rows above: HybridBatch makes bare pods, the baseline is a raw bare-pod loop), with HybridBatch in Job mode in the same process:");
            md.AppendLine();
            md.AppendLine("| scenario | jobs | nodes | pod mode jobs/s | bare-pod loop jobs/s | pod mode / loop | Job mode jobs/s | pod / Job mode | req/job pod mode | req/job loop | req/job Job mode | detect p50 / p99 ms pod mode | detect p50 / p99 ms Job mode | run |");
            md.AppendLine("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
            foreach (var s in pod)
            {
                md.Append(CultureInfo.InvariantCulture, $"| {s["scenario"]} | {s["jobs"]} | {s["nodes"]} | {Cell(s["jobs_per_s"])} | {Cell(s["baseline_jobs_per_s"])} | {Cell(s["throughput_ratio"], "F2")} | ");
                md.Append(CultureInfo.InvariantCulture, $"{Cell(s["job_mode_jobs_per_s"])} | {Cell(s["pod_over_job_mode_ratio"], "F2")} | ");
                md.Append(CultureInfo.InvariantCulture, $"{Cell(s["requests_per_job"], "F3")} | {Cell(s["baseline_requests_per_job"], "F3")} | {Cell(s["job_mode_requests_per_job"], "F3")} | ");
                md.AppendLine(CultureInfo.InvariantCulture, $"{Cell(s["detect_p50_ms"], "F0")} / {Cell(s["detect_p99_ms"], "F0")} | {Cell(s["job_mode_detect_p50_ms"], "F0")} / {Cell(s["job_mode_detect_p99_ms"], "F0")} | {s["run"]} |");
            }
        }

        var simulated = all.Where(IsSimulated).ToList();
        if (simulated.Count > 0)
        {
            md.AppendLine();
            md.AppendLine("Simulated cluster (`sim-N`: `SimulatedBatchSystem` in virtual time, no Kubernetes; a node lost at 10 min, creates refused with 429 from 5 to 6 min). CPU is the process's, medians of the reps after a cold run; the baseline is the same run's events and collections replayed through the core's transition function alone, in the same process:");
            md.AppendLine();
            md.AppendLine("| scenario | jobs | nodes | virtual min | wall s | CPU s | CPU µs/job | core alone CPU µs/job | CPU ratio | cold CPU µs/job | core events | run |");
            md.AppendLine("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
            foreach (var s in simulated)
            {
                var minutes = s["virtual_s"] is { } v ? Math.Round(v.GetValue<double>() / 60, 1) : (double?)null;
                md.Append(CultureInfo.InvariantCulture, $"| {s["scenario"]} | {s["jobs"]} | {s["nodes"]} | {Cell(minutes is null ? null : JsonValue.Create(minutes), "F1")} | {Cell(s["elapsed_s"], "F2")} | {Cell(s["cpu_s"], "F2")} | ");
                md.AppendLine(CultureInfo.InvariantCulture, $"{Cell(s["cpu_us_per_job"], "F1")} | {Cell(s["baseline_cpu_us_per_job"], "F1")} | {Cell(s["cpu_ratio"], "F2")} | {Cell(s["cold_cpu_us_per_job"], "F0")} | {s["core_events"]} | {s["run"]} |");
            }
        }

        return md.ToString();
    }

    private static string Markdown(List<JsonObject> scenarios, JsonNode? micro)
    {
        var md = new StringBuilder();
        md.AppendLine("# HybridBatch benchmark results").AppendLine();
        md.AppendLine("Generated by `bench/run`; each row is the newest measurement of that scenario (column `run`). HybridBatch and the raw-client baseline run back to back in the same process; ratios are HybridBatch / baseline. The baseline makes the same objects as HybridBatch: Jobs, or bare pods in the `-pod` scenarios.").AppendLine();
        md.Append(ScenarioTable(scenarios));
        md.AppendLine();
        md.AppendLine("Requests per job by verb (HybridBatch, from its call observer; baseline, from an HTTP handler):").AppendLine();
        foreach (var s in scenarios.Where(s => s["requests_by_verb_per_job"] is not null || s["idle_requests_by_verb"] is not null))
        {
            md.Append(CultureInfo.InvariantCulture, $"- {s["scenario"]}: HybridBatch {Verbs(s["requests_by_verb_per_job"] ?? s["idle_requests_by_verb"])}; baseline {Verbs(s["baseline_requests_by_verb_per_job"])}");
            md.AppendLine(s["job_mode_requests_by_verb_per_job"] is { } jobMode ? $"; HybridBatch in Job mode {Verbs(jobMode)}" : "");
        }

        if (micro is not null)
        {
            md.AppendLine().AppendLine("Micro-benchmarks of the core (BenchmarkDotNet, short job):").AppendLine();
            md.AppendLine("| benchmark | figure |").AppendLine("|---|---:|");
            foreach (var (key, value) in micro.AsObject())
            {
                md.AppendLine(CultureInfo.InvariantCulture, $"| {key} | {Cell(value)} |");
            }
        }

        if (scenarios.FirstOrDefault(s => !IsSimulated(s)) is { } first)
        {
            md.AppendLine().AppendLine("Machine and cluster (of the newest row):").AppendLine();
            md.AppendLine(CultureInfo.InvariantCulture, $"- machine: {first["machine"]?.ToJsonString()}");
            md.AppendLine("- cluster settings:");
            foreach (var (key, value) in first["cluster"]!.AsObject())
            {
                md.AppendLine(CultureInfo.InvariantCulture, $"  - `{key}` = `{value}`");
            }
        }

        md.AppendLine().AppendLine("Notes: detection latency runs from the container's exit to `GetUpdatedBatchJobAsync` returning it (baseline: to its watch delivering it). On the real node the exit is `finishedAt`, which has one-second resolution; on fake nodes it is the fake kubelet's millisecond stamp. `own` is the batch system's share: from logging the job's end (the watch event applied) to returning it. Benchmarks print figures; they assert nothing.");
        return md.ToString();
    }

    private static string Readme(string table) =>
        $"""
        # Benchmarks

        How fast HybridBatch moves jobs through Kubernetes, what it costs the API server, and how quickly it notices a
        job's end — measured side by side with the limit: a minimal raw `KubernetesClient` loop that creates the same
        Jobs (busybox, requests = limits, `backoffLimit: 0`, the same placement, at most 32 creates in flight, as the
        batch system) and learns completions from one pod watch, deleting each Job once its pod ended. In pod mode
        (`--kubernetesObjectKind pod`, the `-pod` scenarios) the same loop makes bare pods (`restartPolicy: Never`),
        and HybridBatch also runs in Job mode in the same process, for the ratio between the modes.

        ```
        bench/run quick       # 1 and 100 jobs of `true` and `sleep 1` on the real node, in one process (one warm-up)
        bench/run full        # + fake nodes: 100, 1,000 and 10,000 jobs, idle with 1,000 and 10,000 tracked jobs, 1,000 and 10,000 in pod mode, 100 nodes; 1,000 on the real node
        bench/run micro       # BenchmarkDotNet: transition function, placement, quantities
        bench/run scenario fake10-sleep1-10000   # any one scenario; names: bench/run list
        bench/run scenario sim-10000             # 10,000 jobs through the simulated cluster: no Kubernetes, no lock
        bench/run cleanup     # remove fake nodes and leftovers
        ```

        Each run of scenarios takes `/tmp/hybridbatch-cluster.lock` (the cluster is shared) and writes its objects into
        `bench/results/<run>.json`; `latest.json`, `latest.md`, `latest.png` and this README hold the newest
        measurement of every scenario. Fake nodes are simulated by `HybridBatch.Bench fake-kubelet`: Nodes labelled and
        tainted `hybridbatch.io/fake-node`, kept Ready by status heartbeats, whose pods it moves through Pending →
        Running → Succeeded/Failed by patching pod status; the scenarios' jobs require that label and tolerate the taint.

        The simulated scenarios (`sim-N`) need neither the cluster nor the lock: N jobs through `SimulatedBatchSystem`
        (the package `HybridBatch.Testing`) in virtual time, with a node loss and a 429 storm, measured in CPU per job
        against the same run's inputs replayed through the core's transition function alone, in the same process.

        What the figures mean, where the targets are missed and why: [NOTES.md](NOTES.md).

        Toil's own Kubernetes batch system beside HybridBatch, with Toil's leader driving both:
        `bench/toil/run` runs Toil's sort example and a 500-job fan-out with `--batchSystem kubernetes` and
        `--batchSystem hybridbatch` on the local cluster and counts both clients' requests the same way, from the API
        server's audit log; its newest figures are in [results/toil-latest.md](results/toil-latest.md).

        ![throughput and detection latency against job count](results/latest.png)

        {table}
        """;

    private static string Verbs(JsonNode? node) =>
        node is JsonObject o && o.Count > 0 ? string.Join(", ", o.Select(kv => $"{kv.Key} {Cell(kv.Value)}")) : "–";
}

