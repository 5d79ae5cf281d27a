using System.Collections.Concurrent;
using System.Globalization;
using System.Threading.Channels;
using HybridBatch.Daemon.Hosting;
using k8s;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace HybridBatch.Daemon.Tes;

/// <summary>
/// Runs TES tasks as batch jobs and keeps their records. Owns the batch system: it connects in the background (the
/// API answers meanwhile), re-attaches to the jobs of the daemon's fixed run after a restart, and detaches (never
/// deletes the jobs) when the daemon stops.
/// </summary>
internal sealed partial class TaskRunner : BackgroundService
{
    private const string RunIdKey = "run_id";

    private readonly TaskStore _store;
    private readonly TesOptions _tes;
    private readonly KubernetesBatchSystemOptions _options;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger<TaskRunner> _logger;
    private readonly TimeProvider _time;
    private readonly DaemonMetrics _metrics;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly Channel<string> _pending = Channel.CreateUnbounded<string>();
    private readonly ConcurrentDictionary<int, string> _byJob = new();
    private volatile KubernetesBatchSystem? _system;
    private Kubernetes? _probe;

    /// <summary>Creates the runner.</summary>
    /// <param name="store">The task records.</param>
    /// <param name="tes">The service's settings.</param>
    /// <param name="options">The batch system's settings.</param>
    /// <param name="loggerFactory">Logging.</param>
    /// <param name="time">The clock.</param>
    /// <param name="metrics">The metrics.</param>
    public TaskRunner(
        TaskStore store, IOptions<TesOptions> tes, KubernetesBatchSystemOptions options, ILoggerFactory loggerFactory, TimeProvider time, DaemonMetrics metrics)
    {
        ArgumentNullException.ThrowIfNull(tes);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(loggerFactory);
        _store = store;
        _tes = tes.Value;
        _loggerFactory = loggerFactory;
        _logger = loggerFactory.CreateLogger<TaskRunner>();
        _time = time;
        _metrics = metrics;
        RunId = store.GetOrAdd(RunIdKey, () => "tes" + Guid.NewGuid().ToString("N")[..12]);
        _options = options with { RunId = RunId, HostPath = options.HostPath ?? Path.Combine(Path.GetFullPath(_tes.DataDirectory), "work") };
    }

    /// <summary>The daemon's fixed run id, kept in the database so that a restarted daemon re-attaches.</summary>
    public string RunId { get; }

    /// <summary>Whether the batch system is connected.</summary>
    public bool Connected => _system is not null;

    /// <summary>Why the last attempt to connect failed, if it did.</summary>
    public string? ConnectError { get; private set; }

    /// <summary>The storage the tasks can use, for service-info.</summary>
    public string Storage => "file://" + _options.HostPath;

    /// <summary>Checks that the cluster answers.</summary>
    /// <param name="cancellationToken">Cancels the check.</param>
    /// <returns>Null when reachable, else why not.</returns>
    public async Task<string?> CheckClusterAsync(CancellationToken cancellationToken)
    {
        if (_probe is not { } probe)
        {
            return ConnectError ?? "not connected to the cluster yet";
        }

        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(5));
            await probe.Version.GetCodeAsync(timeout.Token).ConfigureAwait(false);
            return null;
        }
        catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException or k8s.Autorest.HttpOperationException)
        {
            return "the Kubernetes API does not answer: " + ex.Message;
        }
    }

    /// <summary>
    /// Accepts a valid task: stores it as QUEUED and schedules it. Backend parameters it does not support are dropped
    /// and named in its system logs, which a client sees at once.
    /// </summary>
    /// <param name="task">The task.</param>
    /// <returns>The task's id.</returns>
    public string Create(TesTask task)
    {
        ArgumentNullException.ThrowIfNull(task);
        task.Id = Guid.NewGuid().ToString("N")[..20];
        task.State = TesState.Queued;
        task.CreationTime = Now();
        var ignored = BackendParameters.DropUnsupported(task);
        task.Logs = ignored.Count == 0 ? null : [new TesTaskLog { SystemLogs = [.. ignored] }];
        _store.Add(task);
        _metrics.TaskCreated();
        _pending.Writer.TryWrite(task.Id);
        LogCreated(task.Id, task.Name);
        return task.Id;
    }

    /// <summary>Cancels a task: kills its job and marks it CANCELED. A finished task is left as it is.</summary>
    /// <param name="id">The task.</param>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>False when there is no such task.</returns>
    public async Task<bool> CancelAsync(string id, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var stored = _store.Get(id);
            if (stored is null)
            {
                return false;
            }

            var task = stored.Task;
            if (TesState.IsTerminal(task.State!))
            {
                return true;
            }

            if (stored.JobId is { } jobId && _system is { } system)
            {
                await system.KillBatchJobsAsync([jobId], cancellationToken).ConfigureAwait(false);
                _byJob.TryRemove(jobId, out _);
            }
            else if (stored.JobId is not null)
            {
                // Not connected: the job is killed when the runner connects.
                task.State = TesState.Canceling;
                _store.Update(task, stored.JobId, stored.Stage);
                return true;
            }

            Finish(task, TesState.Canceled, "canceled on request");
            _store.Update(task, null, stored.Stage);
            LogCanceled(id);
            return true;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc />
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
                    await OnJobEndedAsync(result, stoppingToken).ConfigureAwait(false);
                }

                await MarkRunningAsync(system, stoppingToken).ConfigureAwait(false);
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

    /// <inheritdoc />
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
                var system = await KubernetesBatchSystem.CreateAsync(options, _loggerFactory, _time, _metrics, stoppingToken).ConfigureAwait(false);
                var config = options.Kubeconfig is { } path
                    ? KubernetesClientConfiguration.BuildConfigFromConfigFile(path, options.Context)
                    : KubernetesClientConfiguration.BuildDefaultConfig();
                _probe = new Kubernetes(config);
                _system = system;
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

    // After a restart: jobs the batch system still tracks report through it; a task whose job ended and was collected
    // just before the crash is finished from the files its executors left; the rest are started.
    private async Task RecoverAsync(KubernetesBatchSystem system, CancellationToken cancellationToken)
    {
        var issued = (await system.GetIssuedBatchJobIdsAsync(cancellationToken).ConfigureAwait(false)).ToHashSet();
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            foreach (var stored in _store.Unfinished())
            {
                var task = stored.Task;
                if (stored.JobId is not { } jobId)
                {
                    _pending.Writer.TryWrite(task.Id!);
                    continue;
                }

                if (task.State == TesState.Canceling)
                {
                    await system.KillBatchJobsAsync([jobId], cancellationToken).ConfigureAwait(false);
                    Finish(task, TesState.Canceled, "canceled on request");
                    _store.Update(task, null, stored.Stage);
                    continue;
                }

                if (issued.Contains(jobId))
                {
                    _byJob[jobId] = task.Id!;
                    LogReattached(task.Id!, jobId);
                    continue;
                }

                LogRecoveringFromFiles(task.Id!, jobId);
                await StageEndedAsync(stored, result: null, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task StartTasksAsync(CancellationToken stoppingToken)
    {
        try
        {
            await foreach (var id in _pending.Reader.ReadAllAsync(stoppingToken).ConfigureAwait(false))
            {
                try
                {
                    await StartAsync(id, stoppingToken).ConfigureAwait(false);
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

    private async Task StartAsync(string id, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var stored = _store.Get(id);
            if (stored is null || stored.JobId is not null || stored.Task.State is not (TesState.Queued or TesState.Initializing))
            {
                return;
            }

            var task = stored.Task;
            task.State = TesState.Initializing;
            // The attempt's log keeps what was noted when the task was accepted (ignored backend parameters).
            var accepted = task.Logs is [{ SystemLogs: { } notes }] ? notes : [];
            task.Logs = [new TesTaskLog { StartTime = Now(), Metadata = new() { ["run_id"] = RunId }, SystemLogs = [.. accepted] }];
            _store.Update(task, null, 0);
            var directory = HostDirectory(id);
            if (Stage(task, directory) is { } problem)
            {
                Finish(task, TesState.SystemError, problem);
                _store.Update(task, null, 0);
                LogSystemError(id, problem);
                return;
            }

            await IssueAsync(task, 0, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    // Puts the inputs in the task's work directory; returns why the task cannot run, if it cannot.
    private string? Stage(TesTask task, string directory)
    {
        var outputs = task.Outputs ?? [];
        for (var j = 0; j < outputs.Count; j++)
        {
            if (LocalPath(outputs[j].Url!) is null)
            {
                return $"outputs[{j}] ({outputs[j].Name ?? outputs[j].Path}): the url '{outputs[j].Url}' cannot be served: this deployment delivers outputs to file:// urls only";
            }
        }

        try
        {
            if (Directory.Exists(directory))
            {
                Directory.Delete(directory, recursive: true);
            }

            var inputsDirectory = Path.Combine(directory, "inputs");
            Directory.CreateDirectory(inputsDirectory);
            Directory.CreateDirectory(Path.Combine(directory, "exec"));
            Directory.CreateDirectory(Path.Combine(directory, "outputs"));
            var inputs = task.Inputs ?? [];
            for (var i = 0; i < inputs.Count; i++)
            {
                var input = inputs[i];
                var target = Path.Combine(inputsDirectory, i.ToString(CultureInfo.InvariantCulture));
                var label = $"inputs[{i}] ({input.Name ?? input.Path})";
                if (input.Content is { } content)
                {
                    File.WriteAllText(target, content);
                    continue;
                }

                if (LocalPath(input.Url!) is not { } source)
                {
                    var scheme = Uri.TryCreate(input.Url, UriKind.Absolute, out var uri) ? uri.Scheme : "unknown";
                    return $"{label}: the url '{input.Url}' cannot be served: this deployment has no access to '{scheme}' storage (no network); " +
                           "give inline content or a file:// path on the shared host path";
                }

                if (input.Type == "DIRECTORY" || Directory.Exists(source))
                {
                    if (!Directory.Exists(source))
                    {
                        return $"{label}: the directory '{source}' does not exist";
                    }

                    CopyDirectory(source, target);
                }
                else if (File.Exists(source))
                {
                    File.Copy(source, target);
                }
                else
                {
                    return $"{label}: the file '{source}' does not exist";
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return $"cannot stage the inputs in {directory}: {ex.Message}";
        }

        return null;
    }

    private async Task IssueAsync(TesTask task, int stageIndex, CancellationToken cancellationToken)
    {
        var system = _system!;
        var stages = TaskScript.Stages(task);
        var stage = stages[stageIndex];
        var script = TaskScript.Build(task, stage, stageIndex == stages.Count - 1, ContainerDirectory(task.Id!));
        var resources = task.Resources;
        var description = new JobDescription(
            $"tes-{task.Id}-{stageIndex}",
            resources?.CpuCores is { } cores and > 0 ? cores : _tes.DefaultCores,
            resources?.RamGb is { } ram and > 0 ? (long)Math.Ceiling(ram * 1e9) : _tes.DefaultMemory,
            resources?.DiskGb is { } disk and > 0 ? (long)Math.Ceiling(disk * 1e9) : _tes.DefaultDisk)
        {
            Image = stage.Image,
            Preemptible = resources?.Preemptible ?? false,
            Placement = Placement(resources),
        };
        int jobId;
        try
        {
            jobId = await system.IssueBatchJobAsync(script, description, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is InsufficientSystemResourcesException or ArgumentException)
        {
            Finish(task, TesState.SystemError, $"resources: the task cannot be run: {ex.Message}");
            _store.Update(task, null, stageIndex);
            LogSystemError(task.Id!, ex.Message);
            return;
        }

        _metrics.JobSubmitted();
        _byJob[jobId] = task.Id!;
        _store.Update(task, jobId, stageIndex);
        LogIssued(task.Id!, stageIndex, jobId);
    }

    private static Placement? Placement(TesResources? resources)
    {
        if (resources is null || (resources.Zones is not { Count: > 0 } && resources.Preemptible is null))
        {
            return null;
        }

        var placement = new Placement();
        if (resources.Zones is { Count: > 0 } zones)
        {
            placement.RequiredLabels["topology.kubernetes.io/zone"] = zones;
        }

        if (resources.Preemptible is { } preemptible)
        {
            placement.SetPreemptible(preemptible);
        }

        return placement;
    }

    private async Task MarkRunningAsync(KubernetesBatchSystem system, CancellationToken cancellationToken)
    {
        var running = await system.GetRunningBatchJobIdsAsync(cancellationToken).ConfigureAwait(false);
        foreach (var jobId in running.Keys)
        {
            if (!_byJob.TryGetValue(jobId, out var id))
            {
                continue;
            }

            await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                if (_store.Get(id) is { Task.State: TesState.Initializing } stored && stored.JobId == jobId)
                {
                    stored.Task.State = TesState.Running;
                    _store.Update(stored.Task, jobId, stored.Stage);
                }
            }
            finally
            {
                _gate.Release();
            }
        }
    }

    private async Task OnJobEndedAsync(UpdatedBatchJobInfo result, CancellationToken cancellationToken)
    {
        if (!_byJob.TryRemove(result.JobId, out var id))
        {
            return;
        }

        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var stored = _store.Get(id);
            if (stored is null || stored.JobId != result.JobId || TesState.IsTerminal(stored.Task.State!))
            {
                return;
            }

            await StageEndedAsync(stored, result, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    // Reads what the stage's executors left and moves the task on: the next stage, or a final state.
    private async Task StageEndedAsync(StoredTask stored, UpdatedBatchJobInfo? result, CancellationToken cancellationToken)
    {
        var task = stored.Task;
        var directory = HostDirectory(task.Id!);
        var stages = TaskScript.Stages(task);
        var stage = stages[stored.Stage];
        task.Logs ??= [new TesTaskLog { StartTime = Now(), SystemLogs = [] }];
        var log = task.Logs[^1];
        if (result is not null)
        {
            log.Metadata ??= [];
            log.Metadata[$"stage_{stage.Index}_job"] = result.BackingId;
        }

        TesExecutorLog? failed = null;
        var finishedAll = true;
        for (var i = stage.From; i < stage.To; i++)
        {
            var executorLog = TaskScript.ReadExecutor(directory, i);
            if (executorLog is null)
            {
                finishedAll = false;
                break;
            }

            log.Logs.Add(executorLog);
            if (executorLog.ExitCode != 0 && task.Executors![i].IgnoreError != true)
            {
                failed = executorLog;
                break;
            }
        }

        if (log.Logs.LastOrDefault()?.EndTime is { } end
            && DateTimeOffset.TryParse(end, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var ended))
        {
            _metrics.Detected(_time.GetUtcNow() - ended);
        }

        if (failed is not null)
        {
            Finish(task, TesState.ExecutorError, $"executor {log.Logs.Count - 1} exited with {failed.ExitCode}");
            if (result is { ExitReason: BatchJobExitReason.MemLimit })
            {
                log.SystemLogs!.Add("the container exceeded its memory limit (OOM)");
            }
        }
        else if (!finishedAll)
        {
            var why = result is null
                ? "the task's job ended while the daemon was down and left no executor results"
                : $"the task's pod ended before its executors finished: {result.ExitReason} (exit {result.ExitStatus}){(result.Message is { } m ? ": " + m : "")}";
            Finish(task, TesState.SystemError, why);
        }
        else if (stored.Stage + 1 < stages.Count)
        {
            await IssueAsync(task, stored.Stage + 1, cancellationToken).ConfigureAwait(false);
            return;
        }
        else if (Deliver(task, directory, log) is { } problem)
        {
            Finish(task, TesState.SystemError, problem);
        }
        else
        {
            Finish(task, TesState.Complete, null);
        }

        _store.Update(task, null, stored.Stage);
        LogFinished(task.Id!, task.State!);
        TryDelete(directory);
    }

    private static string? Deliver(TesTask task, string directory, TesTaskLog log)
    {
        var outputs = task.Outputs ?? [];
        for (var j = 0; j < outputs.Count; j++)
        {
            var output = outputs[j];
            var source = Path.Combine(directory, "outputs", j.ToString(CultureInfo.InvariantCulture));
            var target = LocalPath(output.Url!)!;
            try
            {
                if (Directory.Exists(source))
                {
                    CopyDirectory(source, target);
                    var size = new DirectoryInfo(target).EnumerateFiles("*", SearchOption.AllDirectories).Sum(f => f.Length);
                    log.Outputs.Add(new TesOutputFileLog { Url = output.Url!, Path = output.Path!, SizeBytes = size.ToString(CultureInfo.InvariantCulture) });
                }
                else if (File.Exists(source))
                {
                    Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                    File.Copy(source, target, overwrite: true);
                    log.Outputs.Add(new TesOutputFileLog
                    {
                        Url = output.Url!,
                        Path = output.Path!,
                        SizeBytes = new FileInfo(target).Length.ToString(CultureInfo.InvariantCulture),
                    });
                }
                else
                {
                    return $"outputs[{j}] ({output.Name ?? output.Path}): the executors did not produce {output.Path}";
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                return $"outputs[{j}] ({output.Name ?? output.Path}): cannot deliver to {output.Url}: {ex.Message}";
            }
        }

        return null;
    }

    private void Finish(TesTask task, string state, string? systemLog)
    {
        task.State = state;
        task.Logs ??= [new TesTaskLog { StartTime = Now(), SystemLogs = [] }];
        var log = task.Logs[^1];
        log.EndTime = Now();
        if (systemLog is not null)
        {
            (log.SystemLogs ??= []).Add(systemLog);
        }
    }

    private static string? LocalPath(string url) =>
        Uri.TryCreate(url, UriKind.Absolute, out var uri) && uri.IsFile && uri.IsLoopback ? uri.LocalPath : null;

    private static void CopyDirectory(string source, string target)
    {
        Directory.CreateDirectory(target);
        foreach (var file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
        {
            var destination = Path.Combine(target, Path.GetRelativePath(source, file));
            Directory.CreateDirectory(Path.GetDirectoryName(destination)!);
            File.Copy(file, destination, overwrite: true);
        }
    }

    private void TryDelete(string directory)
    {
        try
        {
            if (Directory.Exists(directory))
            {
                Directory.Delete(directory, recursive: true);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            LogCleanupFailed(directory, ex.Message);
        }
    }

    private string HostDirectory(string id) => Path.Combine(_options.HostPath!.TrimEnd('/'), RunId, "tasks", id);

    private string ContainerDirectory(string id) => $"{_options.WorkDir.TrimEnd('/')}/tasks/{id}";

    private string Now() => _time.GetUtcNow().ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

    /// <inheritdoc />
    public override void Dispose()
    {
        _gate.Dispose();
        _probe?.Dispose();
        base.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Task {TaskId} ({Name}) accepted")]
    private partial void LogCreated(string taskId, string? name);

    [LoggerMessage(Level = LogLevel.Information, Message = "Task {TaskId} canceled")]
    private partial void LogCanceled(string taskId);

    [LoggerMessage(Level = LogLevel.Information, Message = "Task {TaskId} stage {Stage} runs as batch job {JobId}")]
    private partial void LogIssued(string taskId, int stage, int jobId);

    [LoggerMessage(Level = LogLevel.Information, Message = "Task {TaskId} ended {State}")]
    private partial void LogFinished(string taskId, string state);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Task {TaskId} cannot run: {Reason}")]
    private partial void LogSystemError(string taskId, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Connected: namespace {Namespace}, run {RunId}, work directories under {HostPath}")]
    private partial void LogConnected(string @namespace, string runId, string hostPath);

    [LoggerMessage(Level = LogLevel.Error, Message = "Cannot connect to the cluster, retrying in 5 s: {Reason}")]
    private partial void LogConnectFailed(string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Task {TaskId} re-attached to batch job {JobId}")]
    private partial void LogReattached(string taskId, int jobId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Task {TaskId}: batch job {JobId} ended while the daemon was down; reading its results from the work directory")]
    private partial void LogRecoveringFromFiles(string taskId, int jobId);

    [LoggerMessage(Level = LogLevel.Error, Message = "A task runner iteration failed; going on")]
    private partial void LogIterationFailed(Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cannot remove the work directory {Directory}: {Reason}")]
    private partial void LogCleanupFailed(string directory, string reason);
}
