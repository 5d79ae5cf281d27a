using System.Threading.Channels;
using HybridBatch.Daemon.Hosting;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace HybridBatch.Daemon.Tes;

/// <summary>
/// Runs TES tasks as batch jobs. Owns the batch system: it connects in the background (the API answers meanwhile),
/// re-attaches to the jobs of the daemon's fixed run after a restart, and detaches (never deletes the jobs) when the
/// daemon stops. Its loops feed what happens (a task to start, a job ended, a pod running) to <see cref="TaskSteps"/>.
/// </summary>
internal sealed partial class TaskRunner : BackgroundService
{
    private const string RunIdKey = "run_id";

    private readonly TaskStore _store;
    private readonly KubernetesBatchSystemOptions _options;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger<TaskRunner> _logger;
    private readonly TimeProvider _time;
    private readonly DaemonMetrics _metrics;
    private readonly TaskSteps _steps;
    private readonly Channel<string> _pending = Channel.CreateUnbounded<string>();
    private volatile KubernetesBatchSystem? _system;
    private volatile ClusterProbe? _probe;

    public TaskRunner(
        TaskStore store, IOptions<TesOptions> tes, KubernetesBatchSystemOptions options, ILoggerFactory loggerFactory, TimeProvider time, DaemonMetrics metrics)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(tes);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(loggerFactory);
        _store = store;
        _loggerFactory = loggerFactory;
        _logger = loggerFactory.CreateLogger<TaskRunner>();
        _time = time;
        _metrics = metrics;
        RunId = store.GetOrAdd(RunIdKey, () => "tes" + Guid.NewGuid().ToString("N")[..12]);
        // The daemon stages into and delivers from the tasks' work directories itself and removes each when its task
        // ends: the nodes' cleanup would remove them between a task's executors or attempts, or before its outputs are read.
        _options = options with
        {
            RunId = RunId,
            HostPath = options.HostPath ?? Path.Combine(Path.GetFullPath(tes.Value.DataDirectory), "work"),
            KeepRunDirectories = true,
        };
        _steps = new TaskSteps(
            store,
            tes.Value,
            RunId,
            _options.HostPath,
            _options.WorkDir,
            metrics,
            time,
            _logger,
            id => _pending.Writer.TryWrite(id));
    }

    /// <summary>The daemon's fixed run id, kept in the database so that a restarted daemon re-attaches.</summary>
    public string RunId { get; }

    /// <summary>Why the last attempt to connect failed, if it did.</summary>
    private string? ConnectError { get; set; }

    /// <summary>The storage the tasks can use, for service-info.</summary>
    public string Storage => "file://" + _options.HostPath;

    /// <summary>Null when the cluster answers, else why not.</summary>
    public Task<string?> CheckClusterAsync(CancellationToken cancellationToken) =>
        _probe is { } probe ? probe.CheckAsync(cancellationToken) : Task.FromResult<string?>(ConnectError ?? "not connected to the cluster yet");

    /// <summary>Accepts a valid task and schedules it.</summary>
    /// <returns>The task's id.</returns>
    public string Create(TesTask task)
    {
        var id = _steps.Accept(task);
        _pending.Writer.TryWrite(id);
        return id;
    }

    /// <summary>Cancels a task; false when there is no such task.</summary>
    public Task<bool> CancelAsync(string id, CancellationToken cancellationToken) => _steps.CancelAsync(id, cancellationToken);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var system = await ConnectAsync(stoppingToken).ConfigureAwait(false);
        if (system is null)
        {
            return;
        }

        await RecoverAsync(system, stoppingToken).ConfigureAwait(false);
        var starter = Task.Run(() => StartTasksAsync(stoppingToken), CancellationToken.None);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var result = await system.GetUpdatedBatchJobAsync(TimeSpan.FromSeconds(1), stoppingToken).ConfigureAwait(false);
                if (result is not null)
                {
                    await _steps.JobEndedAsync(result, stoppingToken).ConfigureAwait(false);
                }

                var running = await system.GetRunningBatchJobIdsAsync(stoppingToken).ConfigureAwait(false);
                await _steps.PodsRunningAsync(running.Keys, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                // One bad iteration must not stop the host (an unhandled exception in a BackgroundService does).
                LogIterationFailed(ex);
                await Task.Delay(TimeSpan.FromSeconds(1), _time, stoppingToken).ConfigureAwait(false);
            }
        }

        await starter.ConfigureAwait(false);
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
        if (_system is { } system)
        {
            // Detach only: the jobs keep running and a restarted daemon re-attaches to them.
            await system.DisposeAsync().ConfigureAwait(false);
        }

        _probe?.Dispose();
    }

    private async Task<KubernetesBatchSystem?> ConnectAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var options = await ClusterConnection.ResolveAsync(_options, _logger, stoppingToken).ConfigureAwait(false);
                var probe = ClusterProbe.Create(options, _loggerFactory, _time);
                KubernetesBatchSystem system;
                try
                {
                    system = await KubernetesBatchSystem.CreateAsync(options, _loggerFactory, _time, _metrics, stoppingToken).ConfigureAwait(false);
                }
                catch
                {
                    probe.Dispose();
                    throw;
                }

                _probe = probe;
                _system = system;
                _steps.Attach(system);
                ConnectError = null;
                LogConnected(system.Namespace, RunId, _options.HostPath!);
                return system;
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return null;
            }
            catch (Exception ex) when (ex is InvalidOperationException or ArgumentException or k8s.Exceptions.KubeConfigException)
            {
                ConnectError = ex.Message;
                LogConnectFailed(ex.Message);
                await Task.Delay(TimeSpan.FromSeconds(5), _time, stoppingToken).ConfigureAwait(false);
            }
        }

        return null;
    }

    // After a restart: each unfinished task is picked up where the daemon left it; those without a job are started.
    private async Task RecoverAsync(KubernetesBatchSystem system, CancellationToken cancellationToken)
    {
        var issued = (await system.GetIssuedBatchJobIdsAsync(cancellationToken).ConfigureAwait(false)).ToHashSet();
        foreach (var stored in _store.Unfinished())
        {
            var id = stored.Task.Id!;
            if (await _steps.RecoverAsync(id, issued, cancellationToken).ConfigureAwait(false))
            {
                _pending.Writer.TryWrite(id);
            }
        }
    }

    // One task at a time: a large staging delays the start of the tasks queued after it, not their cancellation.
    private async Task StartTasksAsync(CancellationToken stoppingToken)
    {
        try
        {
            await foreach (var id in _pending.Reader.ReadAllAsync(stoppingToken).ConfigureAwait(false))
            {
                try
                {
                    await _steps.StartAsync(id, stoppingToken).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    LogIterationFailed(ex);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    public override void Dispose()
    {
        _probe?.Dispose();
        base.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Connected: namespace {Namespace}, run {RunId}, work directories under {HostPath}")]
    private partial void LogConnected(string @namespace, string runId, string hostPath);

    [LoggerMessage(Level = LogLevel.Error, Message = "Cannot connect to the cluster, retrying in 5 s: {Reason}")]
    private partial void LogConnectFailed(string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "A task runner iteration failed; going on")]
    private partial void LogIterationFailed(Exception exception);
}
