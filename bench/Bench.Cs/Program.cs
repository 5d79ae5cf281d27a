using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using HybridBatch.Resilience;
using k8s;

namespace HybridBatch.Bench;

/// <summary>
/// The benchmark harness. Commands:
/// <c>micro</c> (BenchmarkDotNet micro-benchmarks of the core),
/// <c>scenario NAME… [--reps N] [--run-id ID]</c> (end-to-end scenarios, HybridBatch and the baseline alternating),
/// <c>report</c> (latest.json, latest.md, latest.png from the result files),
/// <c>fake-kubelet --nodes N [--prefix P]</c> (simulated nodes until standard input closes),
/// <c>cleanup</c> (remove fake nodes and leftover benchmark objects).
/// </summary>
internal static class Program
{
    public static async Task<int> Main(string[] args)
    {
        try
        {
            return await RunAsync(args).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is InvalidOperationException or ArgumentException)
        {
            // The library's own errors (cluster unreachable, bad kubeconfig, bad options) say what failed and the fix.
            await Console.Error.WriteLineAsync($"bench: {ex.Message}").ConfigureAwait(false);
            return 2;
        }
    }

    private static async Task<int> RunAsync(string[] args)
    {
        var repo = FindRepo();
        var results = Path.Combine(repo, "bench", "results");
        var command = args.FirstOrDefault() ?? "help";
        using var cancel = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            cancel.Cancel();
        };

        switch (command)
        {
            case "micro":
                Micro.Run(results);
                Report.Latest(results);
                return 0;
            case "micro-profile":
                Micro.Profile();
                Micro.Memory();
                return 0;
            case "idle-cpu":
                {
                    // Where idle CPU goes: an empty batch system at the default rate limit, then at a low one.
                    var cluster = new Cluster(repo);
                    var seconds = Option(args, "--seconds") is { } sec ? int.Parse(sec, CultureInfo.InvariantCulture) : 20;
                    foreach (var qps in new double[] { 200, 5 })
                    {
                        var options = new KubernetesBatchSystemOptions
                        {
                            Kubeconfig = cluster.Kubeconfig,
                            Namespace = Cluster.Namespace,
                            Resilience = new KubernetesResilienceOptions { Qps = qps, Burst = (int)(qps * 2) },
                        };
                        var batch = await KubernetesBatchSystem.CreateAsync(options, null, cancel.Token).ConfigureAwait(false);
                        await Task.Delay(TimeSpan.FromSeconds(3), cancel.Token).ConfigureAwait(false);
                        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
                        await Task.Delay(TimeSpan.FromSeconds(seconds), cancel.Token).ConfigureAwait(false);
                        var used = (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds;
                        Console.WriteLine($"idle batch system, qps {qps}: {used * 60 / seconds:F3} CPU s per minute");
                        await batch.DisposeAsync().ConfigureAwait(false);
                    }

                    {
                        // The same pod watch on a raw client, nothing else.
                        using var raw = Cluster.Raw(cluster.Kubeconfig);
                        using var stopWatch = new CancellationTokenSource();
                        var watch = Task.Run(async () =>
                        {
#pragma warning disable CS0618 // The client's async-enumerable watch.
                            await foreach (var _ in raw.CoreV1.ListNamespacedPodWithHttpMessagesAsync(Cluster.Namespace, labelSelector: "bench.hybridbatch.io/none", watch: true, allowWatchBookmarks: true, timeoutSeconds: 300, cancellationToken: stopWatch.Token).WatchAsync<k8s.Models.V1Pod, k8s.Models.V1PodList>(cancellationToken: stopWatch.Token))
#pragma warning restore CS0618
                            {
                            }
                        });
                        await Task.Delay(TimeSpan.FromSeconds(3), cancel.Token).ConfigureAwait(false);
                        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
                        await Task.Delay(TimeSpan.FromSeconds(seconds), cancel.Token).ConfigureAwait(false);
                        Console.WriteLine($"one raw pod watch: {(Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds * 60 / seconds:F3} CPU s per minute");
                        await stopWatch.CancelAsync().ConfigureAwait(false);
                        try
                        {
                            await watch.ConfigureAwait(false);
                        }
                        catch (OperationCanceledException)
                        {
                        }
                    }

                    foreach (var periodMs in new[] { 10, 100 })
                    {
                        // A token bucket alone, refilled at the step the batch system used before (10 ms) and uses now.
                        using var limiter = new System.Threading.RateLimiting.TokenBucketRateLimiter(new System.Threading.RateLimiting.TokenBucketRateLimiterOptions
                        {
                            TokenLimit = 400,
                            TokensPerPeriod = 2 * periodMs / 10,
                            ReplenishmentPeriod = TimeSpan.FromMilliseconds(periodMs),
                            AutoReplenishment = true,
                            QueueLimit = 100,
                        });
                        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
                        await Task.Delay(TimeSpan.FromSeconds(seconds), cancel.Token).ConfigureAwait(false);
                        Console.WriteLine($"token bucket refilled every {periodMs} ms: {(Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds * 60 / seconds:F3} CPU s per minute");
                    }

                    var quiet = Process.GetCurrentProcess().TotalProcessorTime;
                    await Task.Delay(TimeSpan.FromSeconds(seconds), cancel.Token).ConfigureAwait(false);
                    Console.WriteLine($"no batch system: {(Process.GetCurrentProcess().TotalProcessorTime - quiet).TotalSeconds * 60 / seconds:F3} CPU s per minute");
                    return 0;
                }

            case "report":
                Report.Latest(results);
                Console.WriteLine(File.ReadAllText(Path.Combine(results, "latest.md")));
                return 0;
            case "fake-kubelet":
                return await FakeKubeletAsync(new Cluster(repo), args, cancel.Token).ConfigureAwait(false);
            case "cleanup":
                {
                    using var admin = Cluster.Raw(new Cluster(repo).AdminKubeconfig);
                    await FakeKubelet.RemoveAllAsync(admin, cancel.Token).ConfigureAwait(false);
                    await Cluster.DrainAsync(admin, "bench.hybridbatch.io/run", TimeSpan.FromSeconds(60), cancel.Token).ConfigureAwait(false);
                    return 0;
                }

            case "scenario" when args.Length >= 2:
                {
                    // Several scenarios may run in one process: the real node is warmed up once for all of them.
                    var names = args.Skip(1).TakeWhile(a => !a.StartsWith("--", StringComparison.Ordinal)).ToList();
                    var runId = Option(args, "--run-id") ?? DateTime.UtcNow.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture);

                    var simulated = names.Where(n => SimBench.TryParse(n, out _)).ToList();
                    var scenarios = names.Except(simulated).Select(n => (Name: n, Scenario: Scenario.Find(n))).ToList();
                    if (scenarios.FirstOrDefault(s => s.Scenario is null) is { Name: { } unknown })
                    {
                        Console.Error.WriteLine($"unknown scenario '{unknown}': one of {string.Join(", ", Scenario.Full.Select(s => s.Name).Concat(SimBench.Names))}, or real-true-N, fakeK-sleep1-N, idle-fakeK-N, the first two with -pod for pod mode, sim-N (simulated: no cluster)");
                        return 2;
                    }

                    // The simulated scenarios need no cluster: they run first, on their own.
                    foreach (var name in simulated)
                    {
                        SimBench.TryParse(name, out var jobs);
                        var reps = Option(args, "--reps") is { } simReps ? int.Parse(simReps, CultureInfo.InvariantCulture) : 5;
                        var result = await SimBench.RunAsync(name, jobs, reps).ConfigureAwait(false);
                        Report.Append(results, runId, result);
                        Console.WriteLine(result.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
                    }

                    if (scenarios.Count == 0)
                    {
                        Report.Latest(results);
                        return 0;
                    }

                    var cluster = new Cluster(repo);
                    var warmedRealNode = false;
                    foreach (var (name, found) in scenarios)
                    {
                        var scenario = found!;
                        var reps = Option(args, "--reps") is { } r ? int.Parse(r, CultureInfo.InvariantCulture) : scenario.Jobs <= 1 ? 2 : 1;
                        var idleSeconds = Option(args, "--idle-seconds") is { } idle ? int.Parse(idle, CultureInfo.InvariantCulture) : scenario.IdleSeconds;
                        if (scenarios.Count > 1)
                        {
                            Console.WriteLine($"== {name} ({DateTime.UtcNow:HH:mm:ss})");
                        }

                        var result = await RunScenarioAsync(cluster, scenario with { IdleSeconds = idleSeconds }, reps, warmUp: scenario.OnFakeNodes || !warmedRealNode, cancel.Token).ConfigureAwait(false);
                        warmedRealNode |= !scenario.OnFakeNodes;
                        Report.Append(results, runId, result);
                        Console.WriteLine(result.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
                    }

                    Report.Latest(results);
                    return 0;
                }

            default:
                Console.WriteLine("usage: HybridBatch.Bench micro | scenario NAME [--reps N] [--run-id ID] [--idle-seconds S] | report | fake-kubelet --nodes N | cleanup");
                Console.WriteLine("scenarios: " + string.Join(", ", Scenario.Full.Select(s => s.Name).Concat(SimBench.Names)));
                return command == "help" ? 0 : 2;
        }
    }

    private static string? Option(string[] args, string name)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    private static string FindRepo()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "HybridBatch.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? Directory.GetCurrentDirectory();
    }

    private static async Task<JsonObject> RunScenarioAsync(Cluster cluster, Scenario scenario, int reps, bool warmUp, CancellationToken cancellationToken)
    {
        using var admin = Cluster.Raw(cluster.AdminKubeconfig);
        var settings = cluster.Settings();
        Console.WriteLine($"scenario {scenario.Name}: {scenario.Jobs} × '{scenario.Command}' on {(scenario.OnFakeNodes ? $"{scenario.FakeNodes} fake nodes" : "the real node")}, {reps} rep(s)");
        foreach (var (key, value) in settings)
        {
            Console.WriteLine($"  cluster: {key} = {value}");
        }

        Process? kubelet = null;
        try
        {
            if (scenario.OnFakeNodes)
            {
                kubelet = await StartFakeKubeletAsync(scenario.FakeNodes, cancellationToken).ConfigureAwait(false);
            }

            // The sides: HybridBatch and the raw loop, both making the scenario's objects (Jobs, or bare pods); a
            // pod-mode scenario also runs HybridBatch in Job mode, so that the two modes meet the same cluster.
            var hybrid = new List<SideResult>();
            var baseline = new List<SideResult>();
            var jobMode = new List<SideResult>();
            var sides = new List<Side>
            {
                new(scenario.PodMode ? "HybridBatch, pod mode" : "HybridBatch", s => HybridSide.RunAsync(cluster, admin, s, cancellationToken), hybrid),
                new(scenario.PodMode ? "bare-pod loop" : "baseline", s => BaselineSide.RunAsync(cluster, admin, s, cancellationToken), baseline),
            };
            if (scenario.PodMode)
            {
                sides.Add(new("HybridBatch, Job mode", s => HybridSide.RunAsync(cluster, admin, s with { ObjectKind = KubernetesObjectKind.Job }, cancellationToken), jobMode));
            }

            // Warm up every side with one unrecorded job each (JIT, TLS, the first scheduling on the nodes), so that
            // whichever side runs first does not pay the process's cold start; once per process on the real node.
            if (warmUp)
            {
                var warm = scenario with { Jobs = 1, Command = "true", Idle = false };
                foreach (var side in sides)
                {
                    await side.Run(warm).ConfigureAwait(false);
                }

                Console.WriteLine("  warmed up");
            }

            var width = sides.Max(s => s.Label.Length);
            for (var rep = 0; rep < reps; rep++)
            {
                // Alternate the order, so that no side always meets a warmer or a busier cluster.
                var order = rep % 2 == 0 ? sides : Enumerable.Reverse(sides).ToList();
                foreach (var side in order)
                {
                    if (scenario.Idle && side.Results == baseline)
                    {
                        continue;
                    }

                    var clock = Stopwatch.StartNew();
                    var result = await side.Run(scenario).ConfigureAwait(false);
                    side.Results.Add(result);
                    if (Environment.GetEnvironmentVariable("HYBRIDBATCH_BENCH_DUMP") is { } dump)
                    {
                        File.AppendAllText(dump, $"{scenario.Name} rep {rep + 1} {side.Label} detect: {string.Join(' ', result.DetectMs.Select(d => d.ToString("F0", CultureInfo.InvariantCulture)))}\n");
                    }

                    Console.WriteLine(
                        $"  rep {rep + 1} {side.Label.PadRight(width)}: {result.Returned}/{scenario.Jobs} in {result.ElapsedS:F1} s = {result.JobsPerS(scenario.Jobs):F2} jobs/s, " +
                        $"{result.Requests} requests, first create {result.FirstCreateMs:F0} ms, detect p50 {Stats.Percentile(result.DetectMs, 50):F0} ms (side watch {Stats.Percentile(result.SideWatchMs, 50):F0}), not finished {result.NotFinished} ({clock.Elapsed.TotalSeconds:F0} s with drain)");
                    foreach (var w in result.Warnings)
                    {
                        Console.WriteLine($"    warning: {w}");
                    }
                }
            }

            return Report.Scenario(scenario, Merge(hybrid), baseline.Count > 0 ? Merge(baseline) : null, settings, jobMode.Count > 0 ? Merge(jobMode) : null);
        }
        finally
        {
            if (kubelet is not null)
            {
                await StopFakeKubeletAsync(kubelet).ConfigureAwait(false);
            }
        }
    }

    /// <summary>One side of a scenario: what it is called in the output, how it runs a scenario, and its repetitions' results.</summary>
    private sealed record Side(string Label, Func<Scenario, Task<SideResult>> Run, List<SideResult> Results);

    /// <summary>Pools repetitions: totals over total time; latencies pooled.</summary>
    private static SideResult Merge(List<SideResult> sides)
    {
        if (sides.Count == 1)
        {
            return sides[0];
        }

        var merged = new SideResult
        {
            ElapsedS = sides.Sum(s => s.ElapsedS),
            Returned = sides.Sum(s => s.Returned),
            NotFinished = sides.Sum(s => s.NotFinished),
            Requests = sides.Sum(s => s.Requests),
            CpuS = sides.Sum(s => s.CpuS),
            BytesPerJob = sides.Select(s => s.BytesPerJob).LastOrDefault(b => b is not null),
            IdleRequestsPerS = sides.Select(s => s.IdleRequestsPerS).LastOrDefault(b => b is not null),
            IdleByVerb = sides.Select(s => s.IdleByVerb).LastOrDefault(b => b is not null),
            IdleCpuS = sides.Select(s => s.IdleCpuS).LastOrDefault(b => b is not null),
            ShutdownRequests = sides.Sum(s => s.ShutdownRequests ?? 0),
            Retries = sides.Sum(s => s.Retries),
            ByVerb = sides.SelectMany(s => s.ByVerb).GroupBy(kv => kv.Key).ToDictionary(g => g.Key, g => g.Sum(kv => kv.Value)),
        };
        foreach (var s in sides)
        {
            merged.DetectMs.AddRange(s.DetectMs);
            merged.SideWatchMs.AddRange(s.SideWatchMs);
            merged.OwnMs.AddRange(s.OwnMs);
            merged.IssueMs.AddRange(s.IssueMs);
            merged.Warnings.AddRange(s.Warnings);
        }

        return merged;
    }

    private static async Task<Process> StartFakeKubeletAsync(int nodes, CancellationToken cancellationToken)
    {
        var self = Environment.ProcessPath!;
        var info = new ProcessStartInfo(self) { RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(self) == "dotnet")
        {
            info.ArgumentList.Add(typeof(Program).Assembly.Location);
        }

        info.ArgumentList.Add("fake-kubelet");
        info.ArgumentList.Add("--nodes");
        info.ArgumentList.Add(nodes.ToString(CultureInfo.InvariantCulture));
        var process = Process.Start(info)!;
        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                return;
            }

            Console.WriteLine("  " + e.Data);
            if (e.Data.StartsWith("READY", StringComparison.Ordinal))
            {
                ready.TrySetResult();
            }
        };
        process.BeginOutputReadLine();
        await ready.Task.WaitAsync(TimeSpan.FromSeconds(120), cancellationToken).ConfigureAwait(false);

        // Give the scheduler a moment to see the new nodes.
        await Task.Delay(TimeSpan.FromSeconds(2), cancellationToken).ConfigureAwait(false);
        return process;
    }

    private static async Task StopFakeKubeletAsync(Process kubelet)
    {
        kubelet.StandardInput.Close();
        using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await kubelet.WaitForExitAsync(wait.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            kubelet.Kill();
        }

        kubelet.Dispose();
    }

    private static async Task<int> FakeKubeletAsync(Cluster cluster, string[] args, CancellationToken cancellationToken)
    {
        var nodes = Option(args, "--nodes") is { } n ? int.Parse(n, CultureInfo.InvariantCulture) : 10;
        var prefix = Option(args, "--prefix") ?? "hb-fake";
        using var admin = Cluster.Raw(cluster.AdminKubeconfig);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);

        // The parent closes standard input to stop the simulation.
        _ = Task.Run(
            async () =>
            {
                while (await Console.In.ReadLineAsync(CancellationToken.None).ConfigureAwait(false) is not null)
                {
                }

                await stop.CancelAsync().ConfigureAwait(false);
            },
            CancellationToken.None);
        var kubelet = new FakeKubelet(admin, nodes, prefix);
        var clock = Stopwatch.StartNew();
        await kubelet.RunAsync(() => Console.WriteLine($"READY {nodes} fake nodes ({prefix}-0..{nodes - 1}) after {clock.Elapsed.TotalSeconds:F1} s"), stop.Token).ConfigureAwait(false);
        Console.WriteLine($"fake kubelet stopped: {kubelet.Patches} calls made");
        return 0;
    }
}
