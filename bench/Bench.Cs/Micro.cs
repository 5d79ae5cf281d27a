using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using HybridBatch.Core;
using HybridBatch.Core.Api;
using k8s.Models;

namespace HybridBatch.Bench;

/// <summary>
/// The transition function over a realistic event mix with 10,000 tracked jobs: every lifecycle issues a new job and
/// takes it to Running (issue, create returned, Job added, pod added, pod scheduled, pod running) while an old one
/// finishes (pod succeeded, Job complete, collect, pod removed, Job removed), with a clock tick every 100 lifecycles.
/// The model is immutable, so every invocation folds the same events from the same starting model. A null event in
/// the mix is a collection, which is a query of the core rather than an event.
/// </summary>
[MemoryDiagnoser]
public class TransitionBenchmark
{
    private const int Tracked = 10_000;
    private const int Lifecycles = 5_000;
    private JobState.Model _start = null!;
    private static readonly JobSettings Settings = Jobs.Settings("hb-owner", "run", "busybox:1.35", 0, double.MaxValue, long.MaxValue / 4, long.MaxValue / 4);
    private JobState.Event?[] _events = [];

    public static int EventCount { get; private set; }

    [GlobalSetup]
    public void Setup()
    {
        var at = 1_700_000_000_000L;
        var model = Transitions.Initial(120_000, int.MaxValue, double.MaxValue, long.MaxValue / 4, long.MaxValue / 4);
        var events = new List<JobState.Event?>();
        for (var id = 1; id <= Tracked; id++)
        {
            foreach (var e in Start(id, at))
            {
                model = Transitions.Step(model, e).Model;
            }
        }

        for (var k = 1; k <= Lifecycles; k++)
        {
            at += 10;
            events.AddRange(Start(Tracked + k, at));
            events.AddRange(Finish(k, at));
            if (k % 100 == 0)
            {
                events.Add(Events.Tick(at));
            }
        }

        _start = model;
        _events = [.. events];
        EventCount = _events.Length;
    }

    private static string Pod(int id) => string.Create(CultureInfo.InvariantCulture, $"job-{id}-abcde");

    private static string Node(int id) => string.Create(CultureInfo.InvariantCulture, $"node-{id % 10}");

    /// <summary>A job of 10 millicores and 32 MiB of memory and disk, as the batch system prepares it.</summary>
    public static PreparedJob Prepared(int id) =>
        Jobs.Prepare(Settings, id, "bench", "sleep 1", null, 0.01, 32 << 20, 32 << 20, null, null, null, null, null, false, [], null).Job!;

    private static IEnumerable<JobState.Event> Start(int id, long at)
    {
        yield return Events.Issued(Prepared(id), at);
        yield return Events.Created(id, at + 1);
        yield return Events.Observed(Pods.Facts(id, Pod(id), null, Pods.Phase("Pending"), null, null, null, Pods.NotCreated, false), at + 3);
        yield return Events.Observed(Pods.Facts(id, Pod(id), Node(id), Pods.Phase("Pending"), null, null, null, Pods.Waiting("ContainerCreating", null), false), at + 4);
        yield return Events.Observed(Pods.Facts(id, Pod(id), Node(id), Pods.Phase("Running"), null, null, null, Pods.Running(at + 5), false), at + 5);
    }

    private static IEnumerable<JobState.Event?> Finish(int id, long at)
    {
        yield return Events.Observed(
            Pods.Facts(id, Pod(id), Node(id), Pods.Phase("Succeeded"), null, null, null, Pods.Terminated(0, "Completed", null, at - 1000, at), false), at + 6);
        yield return null;
        yield return Events.PodRemoved(id, Pod(id), at + 9);
    }

    /// <summary>One input of the mix: an event, or a collection (null); how many effects (and results) it gave.</summary>
    private static JobState.Model Apply(JobState.Model model, JobState.Event? e, ref int effects)
    {
        if (e is null)
        {
            var collected = Transitions.Collect(model);
            effects += collected.Effects.Length + (collected.Result is null ? 0 : 1);
            return collected.Model;
        }

        var transition = Transitions.Step(model, e);
        effects += transition.Effects.Length;
        return transition.Model;
    }

    /// <summary>
    /// Where the time goes: each event kind's mean cost over the same mix (timestamps around every step, so each
    /// figure carries a few tens of ns of measuring), and the bytes each kind allocates.
    /// </summary>
    public IReadOnlyList<(string Kind, int Count, double Ns, double Bytes)> Profile(int rounds)
    {
        var ticks = new Dictionary<string, (int Count, long Ticks, long Bytes)>(StringComparer.Ordinal);
        for (var round = 0; round < rounds; round++)
        {
            var model = _start;
            foreach (var e in _events)
            {
                var kind = Kind(e);
                var bytes = GC.GetAllocatedBytesForCurrentThread();
                var start = System.Diagnostics.Stopwatch.GetTimestamp();
                var effects = 0;
                model = Apply(model, e, ref effects);
                var elapsed = System.Diagnostics.Stopwatch.GetTimestamp() - start;
                bytes = GC.GetAllocatedBytesForCurrentThread() - bytes;
                var (c, t, b) = ticks.GetValueOrDefault(kind);
                ticks[kind] = (c + 1, t + elapsed, b + bytes);
            }
        }

        return [.. ticks.Select(kv => (kv.Key, kv.Value.Count / rounds, kv.Value.Ticks * 1e9 / System.Diagnostics.Stopwatch.Frequency / kv.Value.Count, kv.Value.Bytes / (double)kv.Value.Count))
            .OrderByDescending(x => x.Item3 * x.Item2)];
    }

    private static string Kind(JobState.Event? e) => e switch
    {
        null => "Collect",
        JobState.Event.Observed { pod: var p } => "observed pod " + (p.container.IsTerminated ? "terminated" : p.container.IsRunning ? "running" : p.node is null ? "pending" : "scheduled"),
        JobState.Event.Removed => "removed pod",
        _ => e.GetType().Name,
    };

    [Benchmark(OperationsPerInvoke = (Lifecycles * 8) + (Lifecycles / 100), Description = "transition step (10,000 tracked jobs)")]
    public int Step()
    {
        var model = _start;
        var effects = 0;
        foreach (var e in _events)
        {
            model = Apply(model, e, ref effects);
        }

        return effects;
    }
}

/// <summary>Placement applied to a pod spec, and Kubernetes quantities parsed and formatted.</summary>
[MemoryDiagnoser]
public class TranslationBenchmark
{
    private readonly Placement _placement = JobShape.Placement(fakeNodes: true);

    [GlobalSetup]
    public void Setup() => _placement.SetPreemptible(false);

    [Benchmark(Description = "Placement.Apply (required label, toleration, not preemptible)")]
    public V1PodSpec PlacementApply()
    {
        var spec = new V1PodSpec();
        _placement.Apply(spec);
        return spec;
    }

    [Benchmark(Description = "Quantity.parse 1500m")]
    public object ParseMillis() => QuantityModule.parse("1500m");

    [Benchmark(Description = "Quantity.parse 2Gi")]
    public object ParseBinary() => QuantityModule.parse("2Gi");

    [Benchmark(Description = "Quantity.format 2Gi")]
    public string FormatBinary() => QuantityModule.format(QuantityModule.ofInt64(QuantityFormat.BinarySI, 2L << 30));

    [Benchmark(Description = "Quantity.ofFloat + format 0.01 cores")]
    public string FormatCores() => QuantityModule.ofFloat(QuantityFormat.DecimalSI, 0.01).ResultValue is { } q ? QuantityModule.format(QuantityModule.roundUpToMillis(q)) : "";
}

internal static class Micro
{
    /// <summary>What a tracked job costs in managed memory, piece by piece, without a cluster.</summary>
    public static void Memory()
    {
        const int n = 10_000;
        var before = GC.GetTotalMemory(forceFullCollection: true);
        var manifests = new V1Job[n];
        for (var i = 0; i < n; i++)
        {
            manifests[i] = JobShape.BaselineJob(string.Create(CultureInfo.InvariantCulture, $"hb-owner-0123456789abcdef0123456789abcdef-{i}"), "hybridbatch.io/run", "0123456789abcdef0123456789abcdef", i, "sleep 1", fakeNodes: true);
        }

        var afterManifests = GC.GetTotalMemory(forceFullCollection: true);
        Console.WriteLine($"a V1Job manifest of this shape (built when its create call starts, not kept while the job waits): {(afterManifests - before) / n} bytes");
        GC.KeepAlive(manifests);
        manifests = null!;

        var model = Transitions.Initial(120_000, int.MaxValue, double.MaxValue, long.MaxValue / 4, long.MaxValue / 4);
        var settings = Jobs.Settings("hb-owner", "0123456789abcdef0123456789abcdef", "busybox:1.35", 0, double.MaxValue, long.MaxValue / 4, long.MaxValue / 4);
        before = GC.GetTotalMemory(forceFullCollection: true);
        var at = 1_700_000_000_000L;
        for (var id = 1; id <= n; id++)
        {
            var pod = string.Create(CultureInfo.InvariantCulture, $"hb-owner-0123456789abcdef0123456789abcdef-{id}-abcde");
            var node = string.Create(CultureInfo.InvariantCulture, $"node-{id % 10}");
            var job = Jobs.Prepare(settings, id, "bench", "sleep 1", null, 0.01, 32 << 20, 32 << 20, null, null, null, null, null, false, [], null).Job!;
            model = Transitions.Step(model, Events.Issued(job, at)).Model;
            model = Transitions.Step(model, Events.Created(id, at)).Model;
            model = Transitions.Step(model, Events.Observed(Pods.Facts(id, pod, node, Pods.Phase("Running"), null, null, null, Pods.Running(at), false), at)).Model;
        }

        var afterModel = GC.GetTotalMemory(forceFullCollection: true);
        Console.WriteLine($"a running job in the core's model (job record, request, name strings, map nodes): {(afterModel - before) / n} bytes");
        GC.KeepAlive(model);
    }

    public static void Profile()
    {
        var bench = new TransitionBenchmark();
        bench.Setup();
        bench.Profile(3);
        Console.WriteLine("event kind | per lifecycle | ns/event | bytes/event");
        foreach (var (kind, count, ns, bytes) in bench.Profile(10))
        {
            Console.WriteLine($"{kind} | {count / 5000.0:F2} | {ns:F0} | {bytes:F0}");
        }

        // The floor under one update of the job table: replacing an entry of a 10,000-entry immutable map.
        var map = Microsoft.FSharp.Collections.MapModule.OfSeq(Enumerable.Range(1, 10_000).Select(i => Tuple.Create(i, i.ToString(CultureInfo.InvariantCulture))));
        const int n = 1_000_000;
        var before = GC.GetAllocatedBytesForCurrentThread();
        var start = System.Diagnostics.Stopwatch.GetTimestamp();
        var sink = 0;
        for (var i = 0; i < n; i++)
        {
            sink += map.Add((i % 10_000) + 1, "x").IsEmpty ? 1 : 0;
        }

        var elapsed = System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalNanoseconds / n;
        Console.WriteLine($"Map<int,_>.Add replacing one of 10,000 entries: {elapsed:F0} ns, {(GC.GetAllocatedBytesForCurrentThread() - before) / (double)n:F0} bytes ({sink % 2})");
        var dict = System.Collections.Immutable.ImmutableDictionary.CreateRange(Enumerable.Range(1, 10_000).Select(i => KeyValuePair.Create(i, i.ToString(CultureInfo.InvariantCulture))));
        before = GC.GetAllocatedBytesForCurrentThread();
        start = System.Diagnostics.Stopwatch.GetTimestamp();
        for (var i = 0; i < n; i++)
        {
            sink += dict.SetItem((i % 10_000) + 1, "x").IsEmpty ? 1 : 0;
        }

        elapsed = System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalNanoseconds / n;
        Console.WriteLine($"ImmutableDictionary.SetItem, same: {elapsed:F0} ns, {(GC.GetAllocatedBytesForCurrentThread() - before) / (double)n:F0} bytes ({sink % 2})");
    }

    public static void Run(string resultsDir)
    {
        var job = Job.ShortRun.WithToolchain(InProcessEmitToolchain.Instance).WithIterationCount(5);
        var config = ManualConfig.CreateMinimumViable().AddJob(job).AddDiagnoser(BenchmarkDotNet.Diagnosers.MemoryDiagnoser.Default);
        var summaries = BenchmarkRunner.Run([typeof(TransitionBenchmark), typeof(TranslationBenchmark)], config);
        var figures = new JsonObject();
        foreach (var report in summaries.SelectMany(s => s.Reports))
        {
            if (report.ResultStatistics is not { } stats)
            {
                continue;
            }

            var name = report.BenchmarkCase.Descriptor.WorkloadMethodDisplayInfo.Trim('\'');
            var allocated = report.GcStats.GetBytesAllocatedPerOperation(report.BenchmarkCase);
            if (report.BenchmarkCase.Descriptor.Type == typeof(TransitionBenchmark))
            {
                figures["transition events/s (10,000 tracked jobs)"] = Math.Round(1e9 / stats.Mean);
                figures["transition ns/event"] = Math.Round(stats.Mean, 1);
                figures["transition bytes allocated/event"] = allocated;
            }
            else
            {
                figures[name + " ns/op"] = Math.Round(stats.Mean, 1);
                figures[name + " bytes allocated/op"] = allocated;
            }
        }

        figures["measured_at"] = DateTimeOffset.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);
        Directory.CreateDirectory(resultsDir);
        File.WriteAllText(Path.Combine(resultsDir, "micro.json"), figures.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
        Console.WriteLine(figures.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
    }
}
