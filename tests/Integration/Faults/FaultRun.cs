using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using HybridBatch.Integration.BatchSystem;
using HybridBatch.Integration.Cluster;
using k8s;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace HybridBatch.Integration.Faults;

/// <summary>
/// Disruptive tests run alone, after every other collection, and leave the cluster healthy; while they run, they hold
/// the machine's cluster lock alone, so no other run on the machine brings back what they killed.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class FaultsCollection : ICollectionFixture<ClusterToItself>, ICollectionFixture<LocalClusterFixture>
{
    /// <summary>The collection name.</summary>
    public const string Name = "Cluster faults";
}

/// <summary>Holds the machine's cluster lock (<see cref="ClusterLock"/>) alone for as long as the fault tests run.</summary>
public sealed class ClusterToItself(IMessageSink diagnostics) : IAsyncLifetime
{
    // As long as the longest benchmark run another engineer may have started (10,000 jobs on fake nodes, with its drain).
    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(30);

    private ClusterLock? held;

    /// <inheritdoc />
    public async Task InitializeAsync() =>
        held = await ClusterLock.TakeAsync(exclusive: true, Patience, message => diagnostics.OnMessage(new DiagnosticMessage($"[faults] {message}")));

    /// <inheritdoc />
    public Task DisposeAsync()
    {
        held?.Dispose();
        return Task.CompletedTask;
    }
}

/// <summary>
/// A batch of jobs under a fault: issues short jobs (exit codes 0–3), sleepers that get killed and longer jobs, collects
/// every result as it comes, and checks the promises at the end: each ended job reported once with its exit code, no
/// killed job reported, nothing of the run left in the namespace after shutdown.
/// </summary>
internal sealed class FaultRun
{
    private readonly LocalClusterFixture _cluster;
    private readonly ITestOutputHelper _output;
    private readonly ConcurrentDictionary<int, int> _expected = new();
    private readonly ConcurrentDictionary<int, byte> _killed = new();
    private readonly List<(UpdatedBatchJobInfo Info, DateTime At)> _reported = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private Task _collector = Task.CompletedTask;

    private FaultRun(LocalClusterFixture cluster, ITestOutputHelper output, KubernetesBatchSystem system, ConcurrentQueue<string> log)
    {
        _cluster = cluster;
        _output = output;
        System = system;
        Log = log;
    }

    /// <summary>The batch system under test.</summary>
    public KubernetesBatchSystem System { get; }

    /// <summary>Every log line of the batch system, Debug and up.</summary>
    public ConcurrentQueue<string> Log { get; }

    /// <summary>The results so far, in the order they came.</summary>
    public IReadOnlyList<(UpdatedBatchJobInfo Info, DateTime At)> Reported
    {
        get
        {
            lock (_reported)
            {
                return [.. _reported];
            }
        }
    }

    /// <summary>Jobs issued, not killed and not yet reported.</summary>
    public int InFlight
    {
        get
        {
            var reported = Reported.Select(r => r.Info.JobId).ToHashSet();
            return _expected.Keys.Count(id => !_killed.ContainsKey(id) && !reported.Contains(id));
        }
    }

    /// <summary>Options for a fault run: tiny jobs, many at once, the cluster under test.</summary>
    public static KubernetesBatchSystemOptions Options(LocalClusterFixture cluster, Func<KubernetesBatchSystemOptions, KubernetesBatchSystemOptions>? change = null) =>
        Batch.Options(cluster, o =>
        {
            var options = o with
            {
                MaxCores = 1000,
                MaxMemory = long.MaxValue / 8,
                MaxDisk = long.MaxValue / 8,
                MaxJobs = 40,
            };
            return change is null ? options : change(options);
        });

    /// <summary>Starts a batch system and the collector.</summary>
    public static async Task<FaultRun> StartAsync(
        LocalClusterFixture cluster, ITestOutputHelper output, KubernetesBatchSystemOptions options, DelegatingHandler[]? handlers = null)
    {
        var log = new ConcurrentQueue<string>();
        var logging = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Debug).AddProvider(new CapturingLoggerProvider(log, output)));
        var system = await KubernetesBatchSystem.CreateAsync(options, logging, TimeProvider.System, observer: null, handlers ?? []);
        var run = new FaultRun(cluster, output, system, log);
        run._collector = Task.Run(run.CollectAsync);
        return run;
    }

    private async Task CollectAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                if (await System.GetUpdatedBatchJobAsync(TimeSpan.FromSeconds(1), _stop.Token) is { } info)
                {
                    lock (_reported)
                    {
                        _reported.Add((info, DateTime.UtcNow));
                    }
                }
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>The seconds since the run started, for log lines.</summary>
    public string Now => _clock.Elapsed.TotalSeconds.ToString("F1", CultureInfo.InvariantCulture);

    /// <summary>Issues <paramref name="shortJobs"/> short jobs, <paramref name="sleepers"/> that run until killed, and <paramref name="longer"/> that run <paramref name="longerSeconds"/>.</summary>
    public async Task<IReadOnlyList<int>> IssueAsync(int shortJobs, int sleepers = 0, int longer = 0, int longerSeconds = 20)
    {
        var issued = new List<int>();
        var job = TestJobs.Job("fault", cores: 0.001, memory: 4 * 1024 * 1024);
        for (var i = 0; i < sleepers; i++)
        {
            var id = await System.IssueBatchJobAsync("sleep 600", job with { Name = "sleeper" });
            _expected[id] = -1;
            issued.Add(id);
        }

        for (var i = 0; i < longer; i++)
        {
            var id = await System.IssueBatchJobAsync($"sleep {longerSeconds}; exit {i % 2}", job with { Name = "longer" });
            _expected[id] = i % 2;
            issued.Add(id);
        }

        for (var i = 0; i < shortJobs; i++)
        {
            var code = i % 4;
            var id = await System.IssueBatchJobAsync($"exit {code}", job with { Name = "short" });
            _expected[id] = code;
            issued.Add(id);
        }

        return issued;
    }

    /// <summary>Issues more short jobs (e.g. during a fault).</summary>
    public Task<IReadOnlyList<int>> IssueMoreAsync(int shortJobs) => IssueAsync(shortJobs);

    /// <summary>The jobs that sleep until killed.</summary>
    public IReadOnlyList<int> Sleepers => [.. _expected.Where(kv => kv.Value == -1).Select(kv => kv.Key).Order()];

    /// <summary>Kills these jobs, remembering that they must never be reported.</summary>
    public async Task KillAsync(IReadOnlyCollection<int> ids)
    {
        foreach (var id in ids)
        {
            _killed[id] = 0;
        }

        await System.KillBatchJobsAsync(ids);
    }

    /// <summary>Kills the sleepers.</summary>
    public async Task KillSleepersAsync()
    {
        var sleepers = _expected.Where(kv => kv.Value == -1).Select(kv => kv.Key).ToArray();
        foreach (var id in sleepers)
        {
            _killed[id] = 0;
        }

        await System.KillBatchJobsAsync(sleepers);
    }

    /// <summary>Waits until every sleeper runs (so that killing them kills running pods).</summary>
    public async Task<bool> SleepersRunningAsync(TimeSpan timeout)
    {
        var sleepers = _expected.Where(kv => kv.Value == -1).Select(kv => kv.Key).ToArray();
        return await Batch.EventuallyAsync(
            async () =>
            {
                var running = await System.GetRunningBatchJobIdsAsync();
                return sleepers.All(running.ContainsKey);
            },
            timeout);
    }

    /// <summary>Waits until at least <paramref name="count"/> results came.</summary>
    public Task<bool> ReportedAtLeastAsync(int count, TimeSpan timeout) =>
        Batch.EventuallyAsync(() => Task.FromResult(Reported.Count >= count), timeout);

    /// <summary>
    /// Waits until every job that was not killed was reported, for as long as results keep coming: it fails when jobs are
    /// in flight and none was reported for <paramref name="stalled"/>, naming them (a slow machine takes longer; a lost
    /// job never comes). Then two quiet seconds for duplicates.
    /// </summary>
    public async Task AllReportedAsync(TimeSpan stalled)
    {
        var lastProgress = DateTime.UtcNow;
        var reported = Reported.Count;
        while (InFlight > 0)
        {
            if (Reported.Count != reported)
            {
                (reported, lastProgress) = (Reported.Count, DateTime.UtcNow);
            }
            else if (DateTime.UtcNow - lastProgress > stalled)
            {
                var done = Reported.Select(r => r.Info.JobId).ToHashSet();
                var missing = _expected.Keys.Where(id => !_killed.ContainsKey(id) && !done.Contains(id)).Order().ToList();
                var issued = await System.GetIssuedBatchJobIdsAsync();
                var running = await System.GetRunningBatchJobIdsAsync();
                Assert.Fail(
                    $"{missing.Count} job(s) not reported and no result for {stalled.TotalSeconds:F0} s: {string.Join(", ", missing.Take(20))}"
                    + $"; of them {missing.Count(issued.Contains)} still issued, {missing.Count(running.ContainsKey)} running");
            }

            await Task.Delay(250);
        }

        await Task.Delay(TimeSpan.FromSeconds(2));
    }

    /// <summary>The first result that came after <paramref name="since"/>, if any.</summary>
    public TimeSpan? FirstResultAfter(DateTime since) =>
        Reported.Where(r => r.At >= since).Select(r => (TimeSpan?)(r.At - since)).FirstOrDefault();

    /// <summary>
    /// Checks the promises and prints the table row: every result's job was issued and not killed, is reported once,
    /// and (unless <paramref name="mayBeLost"/> allows it) ended Finished/Failed with its own exit code.
    /// </summary>
    /// <returns>(jobs lost, jobs reported twice, killed jobs reported).</returns>
    public (int Lost, int Twice, int KilledReported) Check(string fault, int inFlight, TimeSpan? recovery, Func<UpdatedBatchJobInfo, bool>? mayBeLost = null)
    {
        var reported = Reported.Select(r => r.Info).ToList();
        var twice = reported.GroupBy(r => r.JobId).Count(g => g.Count() > 1);
        var killedReported = reported.Count(r => _killed.ContainsKey(r.JobId));
        var unknown = reported.Count(r => !_expected.ContainsKey(r.JobId));
        var unexpectedLoss = reported.Where(r => r.ExitReason is BatchJobExitReason.Lost or BatchJobExitReason.Error && !(mayBeLost?.Invoke(r) ?? false)).ToList();
        var reportedLost = reported.Count(r => r.ExitReason is BatchJobExitReason.Lost);
        var missing = _expected.Keys.Where(id => !_killed.ContainsKey(id)).Except(reported.Select(r => r.JobId)).Order().ToList();
        var wrong = reported
            .Where(r => r.ExitReason is BatchJobExitReason.Finished or BatchJobExitReason.Failed)
            .Where(r => _expected.TryGetValue(r.JobId, out var code) && (code != r.ExitStatus || (code == 0) != (r.ExitReason == BatchJobExitReason.Finished)))
            .ToList();
        var recover = recovery is { } t ? t.TotalSeconds.ToString("F1", CultureInfo.InvariantCulture) + " s" : "n/a";
        var lost = missing.Count + unexpectedLoss.Count;
        var row = $"| {fault} | {inFlight} | {lost} | {twice} | {killedReported} | {recover} | {reported.Count} reported, {reportedLost - unexpectedLoss.Count(r => r.ExitReason == BatchJobExitReason.Lost)} of them Lost as the fault demands |";
        _output.WriteLine("FAULT-ROW " + row);
        File.AppendAllText(Path.Combine(Path.GetTempPath(), "hybridbatch-fault-rows.md"), $"{DateTime.UtcNow:O} {row}{Environment.NewLine}");
        foreach (var r in reported.Where(r => r.ExitReason is BatchJobExitReason.Lost or BatchJobExitReason.Error))
        {
            _output.WriteLine($"  job {r.JobId}: {r.ExitReason} {r.ExitStatus}: {r.Message}");
        }

        Assert.True(twice == 0, $"{twice} jobs were reported more than once");
        Assert.True(killedReported == 0, $"{killedReported} killed jobs were reported");
        Assert.True(unknown == 0, $"{unknown} results for jobs never issued");
        Assert.True(missing.Count == 0, $"jobs never reported: {string.Join(", ", missing)}");
        Assert.True(wrong.Count == 0, $"wrong exit codes: {string.Join(", ", wrong.Select(w => $"{w.JobId}: {w.ExitReason} {w.ExitStatus}, expected {_expected[w.JobId]}"))}");
        Assert.True(
            unexpectedLoss.Count == 0,
            $"jobs lost or in error: {string.Join("; ", unexpectedLoss.Select(r => $"{r.JobId} {r.ExitReason}: {r.Message}"))}");
        return (lost, twice, killedReported);
    }

    /// <summary>Shuts the batch system down and checks that nothing of the run is left in the namespace.</summary>
    public async Task EndAsync()
    {
        await System.ShutdownAsync();
        await _stop.CancelAsync();
        await _collector;
        await System.DisposeAsync();
        var selector = $"hybridbatch.io/run={System.RunId}";
        var empty = await Batch.EventuallyAsync(
            async () =>
                (await _cluster.Client.BatchV1.ListNamespacedJobAsync(_cluster.Namespace, labelSelector: selector)).Items.Count == 0
                && (await _cluster.Client.CoreV1.ListNamespacedPodAsync(_cluster.Namespace, labelSelector: selector)).Items.Count == 0,
            TimeSpan.FromSeconds(90));
        Assert.True(empty, $"Jobs or pods of run {System.RunId} are left in the namespace after shutdown");
    }

    private sealed class CapturingLoggerProvider(ConcurrentQueue<string> lines, ITestOutputHelper output) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new Logger(lines, output);

        public void Dispose()
        {
        }

        private sealed class Logger(ConcurrentQueue<string> lines, ITestOutputHelper output) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Debug;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                var line = $"{DateTime.UtcNow:HH:mm:ss.fff} {logLevel}: {formatter(state, exception)}";
                lines.Enqueue(line);
                if (logLevel >= LogLevel.Information && !line.Contains(" ended: Finished", StringComparison.Ordinal))
                {
                    try
                    {
                        output.WriteLine(line);
                    }
                    catch (InvalidOperationException)
                    {
                        // The test finished; its output is closed.
                    }
                }
            }
        }
    }
}
