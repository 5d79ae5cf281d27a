using System.Collections.Concurrent;
using System.Diagnostics;
using HybridBatch.Core.Api;
using HybridBatch.Resilience;
using k8s;
using Microsoft.Extensions.Logging;

namespace HybridBatch.Bench;

/// <summary>Runs a scenario through the batch system, as a workflow leader would: issue everything, then collect.</summary>
internal static class HybridSide
{
    public static async Task<SideResult> RunAsync(Cluster cluster, IKubernetes admin, Scenario scenario, CancellationToken cancellationToken)
    {
        var result = new SideResult();
        var counter = new TimedCounter();
        using var logs = new EndedLogger();
        var options = new KubernetesBatchSystemOptions
        {
            Kubeconfig = cluster.Kubeconfig,
            Namespace = Cluster.Namespace,
            ResourceOverhead = 0,
            PodTimeout = TimeSpan.FromSeconds(900),
            FinishedJobTtl = TimeSpan.FromSeconds(600),
            ObjectKind = scenario.ObjectKind,
        };

        // Counted from the start: the lists and watches are the fixed cost that amortises over the jobs.
        var requestsBefore = counter.Snapshot();
        var batch = await KubernetesBatchSystem.CreateAsync(options, logs, TimeProvider.System, counter, cancellationToken).ConfigureAwait(false);
        var selector = $"{Names.RunLabel}={batch.RunId}";
        PodExitRecorder? exits = null;
        try
        {
            if (!scenario.Idle)
            {
                exits = new PodExitRecorder(admin, selector);
                await exits.Ready.WaitAsync(TimeSpan.FromSeconds(30), cancellationToken).ConfigureAwait(false);
            }

            var description = JobShape.Description(scenario.OnFakeNodes);
            var memoryBefore = GC.GetTotalMemory(forceFullCollection: true);
            var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
            var clock = Stopwatch.StartNew();
            counter.Start = Stopwatch.GetTimestamp();
            for (var i = 0; i < scenario.Jobs; i++)
            {
                var start = Stopwatch.GetTimestamp();
                await batch.IssueBatchJobAsync(scenario.Command, description, cancellationToken: cancellationToken).ConfigureAwait(false);
                result.IssueMs.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
            }

            if (scenario.Jobs >= 1000 && !scenario.Idle)
            {
                // Every job is tracked now (most still queued for their create call): the peak of the run.
                result.BytesPerJob = (GC.GetTotalMemory(forceFullCollection: true) - memoryBefore) / scenario.Jobs;
            }

            if (scenario.Idle)
            {
                await IdleAsync(batch, counter, scenario, result, memoryBefore, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await CollectAsync(batch, logs, exits!, scenario, result, clock, cancellationToken).ConfigureAwait(false);
                result.CpuS = (Process.GetCurrentProcess().TotalProcessorTime - cpuBefore).TotalSeconds;
                result.FirstCreateMs = counter.FirstCreateMs;

                // Deletes of the last returned jobs are still under way: let them land before counting.
                await Task.Delay(TimeSpan.FromSeconds(3), cancellationToken).ConfigureAwait(false);
            }

            var during = Subtract(counter.Snapshot(), requestsBefore);
            result.ByVerb = during;
            result.Requests = during.Values.Sum();
            result.Retries = (int)counter.Retries;
            result.Warnings.AddRange(logs.Warnings.Take(5));
            result.WatchLog.AddRange(counter.ListsAndWatches);
            result.WatchLog.AddRange(logs.WatchMessages.Select(m => "log: " + m));
            var beforeShutdown = counter.Requests;
            using var shutdown = new CancellationTokenSource(TimeSpan.FromSeconds(120));
            try
            {
                await batch.ShutdownAsync(shutdown.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is KubernetesApiException or OperationCanceledException or HttpRequestException)
            {
                // The objects left behind are drained below.
                result.Warnings.Add($"shutdown failed: {ex.Message}");
            }

            result.ShutdownRequests = counter.Requests - beforeShutdown;
        }
        finally
        {
            if (exits is not null)
            {
                await exits.DisposeAsync().ConfigureAwait(false);
            }

            await batch.DisposeAsync().ConfigureAwait(false);
        }

        await Cluster.DrainAsync(admin, selector, TimeSpan.FromSeconds(180), cancellationToken).ConfigureAwait(false);
        return result;
    }

    private static async Task CollectAsync(
        KubernetesBatchSystem batch, EndedLogger logs, PodExitRecorder exits, Scenario scenario, SideResult result, Stopwatch clock,
        CancellationToken cancellationToken)
    {
        var returnedAt = new Dictionary<string, DateTimeOffset>(StringComparer.Ordinal);
        var deadline = TimeSpan.FromSeconds(180 + scenario.Jobs * 0.5);
        while (result.Returned < scenario.Jobs && clock.Elapsed < deadline)
        {
            var updated = await batch.GetUpdatedBatchJobAsync(TimeSpan.FromSeconds(5), cancellationToken).ConfigureAwait(false);
            if (updated is null)
            {
                continue;
            }

            var now = DateTimeOffset.UtcNow;
            var nowTicks = Stopwatch.GetTimestamp();
            result.Returned++;
            returnedAt[updated.BackingId] = now;
            if (logs.EndedAt(updated.JobId) is { } ended)
            {
                result.OwnMs.Add(Stopwatch.GetElapsedTime(ended, nowTicks).TotalMilliseconds);
            }

            if (updated.ExitReason != BatchJobExitReason.Finished)
            {
                result.NotFinished++;
                if (result.Warnings.Count < 5)
                {
                    result.Warnings.Add($"job {updated.JobId}: {updated.ExitReason} {updated.ExitStatus} {updated.Message}");
                }
            }
        }

        result.ElapsedS = clock.Elapsed.TotalSeconds;

        // The side watch may see an exit a moment after the batch system returned it.
        await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken).ConfigureAwait(false);
        foreach (var (name, at) in returnedAt)
        {
            if (exits.Exits.TryGetValue(name, out var exit))
            {
                result.DetectMs.Add((at - exit).TotalMilliseconds);
            }
        }

        result.SideWatchMs.AddRange(exits.DeliveryMs(returnedAt.Keys));
    }

    private static async Task IdleAsync(
        KubernetesBatchSystem batch, TimedCounter counter, Scenario scenario, SideResult result, long memoryBefore,
        CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var deadline = TimeSpan.FromSeconds(120 + scenario.Jobs * 0.2);
        var running = 0;
        while (clock.Elapsed < deadline)
        {
            running = (await batch.GetRunningBatchJobIdsAsync(cancellationToken).ConfigureAwait(false)).Count;
            if (running >= scenario.Jobs)
            {
                break;
            }

            await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken).ConfigureAwait(false);
        }

        result.ElapsedS = clock.Elapsed.TotalSeconds;
        result.Returned = running;
        Console.WriteLine($"  {running} of {scenario.Jobs} jobs running after {clock.Elapsed.TotalSeconds:F0} s; idling {scenario.IdleSeconds} s");

        // Let the last creates' echoes settle before the quiet window.
        await Task.Delay(TimeSpan.FromSeconds(5), cancellationToken).ConfigureAwait(false);
        result.BytesPerJob = (GC.GetTotalMemory(forceFullCollection: true) - memoryBefore) / Math.Max(1, running);
        var before = counter.Snapshot();
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        await Task.Delay(TimeSpan.FromSeconds(scenario.IdleSeconds), cancellationToken).ConfigureAwait(false);
        var idle = Subtract(counter.Snapshot(), before);
        result.IdleByVerb = idle;
        result.IdleRequestsPerS = idle.Values.Sum() / (double)scenario.IdleSeconds;
        result.IdleCpuS = (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds;
    }

    /// <summary>Counts calls, and notes when the first create (of a Job or a bare pod) came back.</summary>
    private sealed class TimedCounter : IKubernetesCallObserver
    {
        private readonly KubernetesCallCounter _counter = new();
        private long _firstCreate;

        public long Start { get; set; }

        public long Requests => _counter.Requests;

        public long Retries => _counter.Retries;

        public double? FirstCreateMs => Interlocked.Read(ref _firstCreate) is var t && t != 0 ? Stopwatch.GetElapsedTime(Start, t).TotalMilliseconds : null;

        public IReadOnlyDictionary<KubernetesCallKey, long> Snapshot() => _counter.Snapshot();

        public void OnRetry(KubernetesRetryRecord retry) => _counter.OnRetry(retry);

        /// <summary>Every list and watch call as it ended: the fixed cost, and any restarts of the watches.</summary>
        public ConcurrentQueue<string> ListsAndWatches { get; } = new();

        public void OnCompleted(KubernetesCallRecord call)
        {
            _counter.OnCompleted(call);
            if (call.Verb is "list" or "watch" && Start != 0)
            {
                ListsAndWatches.Enqueue($"{Stopwatch.GetElapsedTime(Start).TotalSeconds:F1}s {call.Verb} {call.Resource} {call.Outcome} {call.StatusCode} after {call.Elapsed.TotalMilliseconds:F0} ms");
            }
            if (call.Verb == "create" && Start != 0)
            {
                Interlocked.CompareExchange(ref _firstCreate, Stopwatch.GetTimestamp(), 0);
            }
        }
    }

    private static Dictionary<string, long> Subtract(IReadOnlyDictionary<KubernetesCallKey, long> after, IReadOnlyDictionary<KubernetesCallKey, long> before)
    {
        var byVerb = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var (key, count) in after)
        {
            var delta = count - before.GetValueOrDefault(key);
            if (delta != 0)
            {
                var verb = $"{key.Verb} {key.Resource}";
                byVerb[verb] = byVerb.GetValueOrDefault(verb) + delta;
            }
        }

        return byVerb;
    }
}

/// <summary>
/// A logger that notes when the batch system logs a job's end (the moment its watch event was applied), so the
/// time from there to <c>GetUpdatedBatchJobAsync</c> returning it is the batch system's own share of the latency.
/// </summary>
internal sealed class EndedLogger : ILoggerFactory, ILogger
{
    private readonly ConcurrentDictionary<int, long> _ended = new();
    private readonly ConcurrentQueue<string> _warnings = new();

    public IEnumerable<string> Warnings => _warnings;

    public long? EndedAt(int jobId) => _ended.TryRemove(jobId, out var at) ? at : null;

    public void AddProvider(ILoggerProvider provider)
    {
    }

    public ILogger CreateLogger(string categoryName) => this;

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public ConcurrentQueue<string> WatchMessages { get; } = new();

    public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Debug;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        var at = Stopwatch.GetTimestamp();
        if (state is IReadOnlyList<KeyValuePair<string, object?>> fields
            && fields.Count > 0
            && fields[^1].Value is string format
            && format.StartsWith("Job {JobId} ended", StringComparison.Ordinal)
            && fields[0].Value is int id)
        {
            _ended[id] = at;
            return;
        }

        if (state is IReadOnlyList<KeyValuePair<string, object?>> { Count: > 0 } f
            && f[^1].Value is string template
            && template.Contains("watch", StringComparison.Ordinal)
            && WatchMessages.Count < 200)
        {
            WatchMessages.Enqueue($"{DateTimeOffset.UtcNow:HH:mm:ss.fff} {formatter(state, exception)}");
            return;
        }

        if (logLevel >= LogLevel.Warning && _warnings.Count < 20)
        {
            _warnings.Enqueue($"{logLevel}: {formatter(state, exception)}");
        }
    }

    public void Dispose()
    {
    }
}
