using System.Collections.Concurrent;
using System.Globalization;
using HybridBatch.Core.Api;
using HybridBatch.Daemon.Hosting;
using Microsoft.Extensions.Logging;

namespace HybridBatch.Daemon.Tes;

/// <summary>
/// Each step of a task's life, performed: accept, start (stage the inputs, submit the first job), pod running, the end
/// of a stage (submit the next, deliver the outputs and finish, or start another attempt as the task's retry policy
/// decides), cancel, and recovery after a restart. Every step
/// reads, moves (through <see cref="TesStateMachine"/>) and saves the task under the task's own lock, and does its file
/// I/O in the <see cref="TaskWorkspace"/> with no lock held: a cancel never waits for a copy, of its task or another.
/// </summary>
internal sealed partial class TaskSteps
{
    private readonly TaskStore _store;
    private readonly TesOptions _tes;
    private readonly string _runId;
    private readonly string _hostDirectory;
    private readonly string _containerDirectory;
    private readonly DaemonMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly TaskLocks _locks = new();
    private readonly Action<string> _restart;

    // The jobs whose end is awaited, each with the task it runs a stage of.
    private readonly ConcurrentDictionary<int, string> _byJob = new();

    // Of those, the jobs of tasks still INITIALIZING: their pod running makes the task RUNNING.
    private readonly ConcurrentDictionary<int, string> _awaitingPod = new();
    private volatile KubernetesBatchSystem? _system;

    // Task work directories are HOST/RUN/tasks/ID on the shared host path, WORKDIR/tasks/ID in job containers.
    // restart schedules a task whose next attempt is to be started (staged afresh), as a new task is.
    public TaskSteps(
        TaskStore store,
        TesOptions tes,
        string runId,
        string hostPath,
        string workDir,
        DaemonMetrics metrics,
        TimeProvider time,
        ILogger logger,
        Action<string> restart)
    {
        _store = store;
        _tes = tes;
        _runId = runId;
        _hostDirectory = Path.Combine(hostPath.TrimEnd('/'), runId, "tasks");
        _containerDirectory = $"{workDir.TrimEnd('/')}/tasks";
        _metrics = metrics;
        _time = time;
        _logger = logger;
        _restart = restart;
    }

    /// <summary>Sets the batch system jobs are submitted to and killed in, once connected.</summary>
    public void Attach(KubernetesBatchSystem system) => _system = system;

    /// <summary>
    /// Accepts a valid task: stores it as QUEUED. Backend parameters it does not support are dropped and named in its
    /// system logs, which a client sees at once.
    /// </summary>
    /// <returns>The task's id.</returns>
    public string Accept(TesTask task)
    {
        ArgumentNullException.ThrowIfNull(task);
        task.Id = Guid.NewGuid().ToString("N")[..20];
        task.State = TesState.Queued;
        task.CreationTime = Now();
        var ignored = BackendParameters.DropUnsupported(task);
        task.Logs = ignored.Count == 0 ? null : [new TesTaskLog { SystemLogs = [.. ignored] }];
        _store.Add(task);
        _metrics.TaskCreated();
        LogCreated(task.Id, task.Name);
        return task.Id;
    }

    /// <summary>Cancels a task: kills its job and marks it CANCELED. A finished task is left as it is.</summary>
    /// <returns>False when there is no such task.</returns>
    public async Task<bool> CancelAsync(string id, CancellationToken cancellationToken)
    {
        using (await _locks.LockAsync(id, cancellationToken).ConfigureAwait(false))
        {
            if (_store.Get(id) is not { } stored)
            {
                return false;
            }

            await CancelHeldAsync(stored, cancellationToken).ConfigureAwait(false);
        }

        DiscardIfEnded(id);
        return true;
    }

    private async Task CancelHeldAsync(StoredTask stored, CancellationToken cancellationToken)
    {
        var task = stored.Task;
        if (TesStateMachine.IsTerminal(task.State))
        {
            return;
        }

        if (stored.JobId is { } jobId)
        {
            if (_system is not { } system)
            {
                // Not connected: the job is killed when the runner connects.
                task.Move(TesEvent.CancelPending);
                _store.Update(task, jobId, stored.Stage);
                return;
            }

            await system.KillBatchJobsAsync([jobId], cancellationToken).ConfigureAwait(false);
            _byJob.TryRemove(jobId, out _);
            _awaitingPod.TryRemove(jobId, out _);
        }

        task.Finish(Now(), TesEvent.Canceled, "canceled on request");
        _store.Update(task, null, stored.Stage);
        LogCanceled(task.Id!);
    }

    /// <summary>Stages a queued task's inputs and submits its first job.</summary>
    public async Task StartAsync(string id, CancellationToken cancellationToken)
    {
        TesTask task;
        using (await _locks.LockAsync(id, cancellationToken).ConfigureAwait(false))
        {
            if (_store.Get(id) is not { JobId: null } stored || !stored.Task.Move(TesEvent.Started))
            {
                return;
            }

            task = stored.Task;
            // An attempt already begun (a retry, or staging again after a restart) keeps its log; a first start's log
            // keeps what was noted when the task was accepted (ignored backend parameters).
            if (task.Logs is not [.., { StartTime: not null, EndTime: null }])
            {
                var accepted = task.Logs is [{ SystemLogs: { } notes }] ? notes : [];
                var metadata = TaskRetry.Policy(task, _tes) is null
                    ? new Dictionary<string, string> { ["run_id"] = _runId }
                    : TaskRetry.Metadata(_runId, 1, TaskRetry.Memory(task, _tes));
                task.Logs = [new TesTaskLog { StartTime = Now(), Metadata = metadata, SystemLogs = [.. accepted] }];
            }

            _store.Update(task, null, 0);
        }

        var problem = Workspace(id).Stage(task);
        using (await _locks.LockAsync(id, cancellationToken).ConfigureAwait(false))
        {
            // Canceled while its inputs were staged: nothing more to do but remove them.
            if (_store.Get(id) is { JobId: null, Task.State: TesState.Initializing } stored)
            {
                if (problem is null)
                {
                    await IssueAsync(stored.Task, 0, cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    stored.Task.Finish(Now(), TesEvent.SystemFailed, problem);
                    _store.Update(stored.Task, null, 0);
                    LogSystemError(id, problem);
                }
            }
        }

        DiscardIfEnded(id);
    }

    /// <summary>
    /// Removes the work directory of a task that ended (nothing else does: the run keeps its directories on the nodes);
    /// called with no lock held.
    /// </summary>
    private void DiscardIfEnded(string id)
    {
        if (_store.Get(id) is { Task.State: var state } && TesStateMachine.IsTerminal(state) && Workspace(id) is var workspace
            && workspace.Delete() is { } problem)
        {
            LogCleanupFailed(workspace.Root, problem);
        }
    }

    private async Task IssueAsync(TesTask task, int stageIndex, CancellationToken cancellationToken)
    {
        var stages = TaskScript.Stages(task);
        var stage = stages[stageIndex];
        var script = TaskScript.Build(task, stage, stageIndex == stages.Count - 1, $"{_containerDirectory}/{task.Id}");
        int jobId;
        try
        {
            var description = TaskJob.Describe(task, stage, _tes, TaskRetry.Memory(task, _tes));
            jobId = await _system!.IssueBatchJobAsync(script, description, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is InsufficientSystemResourcesException or ArgumentException)
        {
            task.Finish(Now(), TesEvent.SystemFailed, $"resources: the task cannot be run: {ex.Message}");
            _store.Update(task, null, stageIndex);
            LogSystemError(task.Id!, ex.Message);
            return;
        }

        _metrics.JobSubmitted();
        _store.Update(task, jobId, stageIndex);
        Await(jobId, task);
        LogIssued(task.Id!, stageIndex, jobId);
    }

    private void Await(int jobId, TesTask task)
    {
        _byJob[jobId] = task.Id!;
        if (task.State == TesState.Initializing)
        {
            _awaitingPod[jobId] = task.Id!;
        }
    }

    /// <summary>Marks RUNNING the tasks still INITIALIZING whose job's pod now runs; other running jobs cost a lookup.</summary>
    public async Task PodsRunningAsync(IEnumerable<int> runningJobIds, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(runningJobIds);
        foreach (var jobId in runningJobIds)
        {
            if (!_awaitingPod.TryRemove(jobId, out var id))
            {
                continue;
            }

            using var held = await _locks.LockAsync(id, cancellationToken).ConfigureAwait(false);
            if (_store.Get(id) is { } stored && stored.JobId == jobId && stored.Task.Move(TesEvent.PodRunning))
            {
                _store.Update(stored.Task, jobId, stored.Stage);
            }
        }
    }

    /// <summary>Moves on the task whose job ended.</summary>
    public async Task JobEndedAsync(UpdatedBatchJobInfo result, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(result);
        _awaitingPod.TryRemove(result.JobId, out _);
        if (_byJob.TryRemove(result.JobId, out var id))
        {
            await StageEndedAsync(id, result.JobId, result, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// After a restart, once connected: a task the batch system still tracks is awaited again; a canceled one has its job
    /// killed; one whose job ended while the daemon was down is finished from the files its executors left.
    /// <paramref name="issued"/> are the jobs the batch system re-attached to.
    /// </summary>
    /// <returns>True when the task has no job and is to be started.</returns>
    public async Task<bool> RecoverAsync(string id, IReadOnlySet<int> issued, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(issued);
        int ended;
        using (await _locks.LockAsync(id, cancellationToken).ConfigureAwait(false))
        {
            if (_store.Get(id) is not { } stored || TesStateMachine.IsTerminal(stored.Task.State))
            {
                return false;
            }

            if (stored.JobId is not { } jobId)
            {
                return true;
            }

            if (stored.Task.State == TesState.Canceling)
            {
                await CancelHeldAsync(stored, cancellationToken).ConfigureAwait(false);
                return false;
            }

            if (issued.Contains(jobId))
            {
                Await(jobId, stored.Task);
                LogReattached(id, jobId);
                return false;
            }

            ended = jobId;
        }

        LogRecoveringFromFiles(id, ended);
        await StageEndedAsync(id, ended, result: null, cancellationToken).ConfigureAwait(false);
        return false;
    }

    // Reads what the stage's executors left and moves the task on: the next stage, or a final state.
    private async Task StageEndedAsync(string id, int jobId, UpdatedBatchJobInfo? result, CancellationToken cancellationToken)
    {
        StoredTask? before;
        using (await _locks.LockAsync(id, cancellationToken).ConfigureAwait(false))
        {
            // Under the lock, so that a submission of this task in progress has saved its job.
            before = Current(id, jobId);
        }

        if (before is null)
        {
            return;
        }

        var workspace = Workspace(id);
        var stages = TaskScript.Stages(before.Task);
        var readAt = _time.GetUtcNow();
        var ended = StageEnd.Read(before.Task, stages[before.Stage], before.Stage == stages.Count - 1, workspace);
        Recorded recorded;
        using (await _locks.LockAsync(id, cancellationToken).ConfigureAwait(false))
        {
            // Canceled meanwhile: what was read (or delivered) is not recorded.
            if (Current(id, jobId) is not { } stored)
            {
                return;
            }

            recorded = await RecordAsync(stored, ended, result, readAt, cancellationToken).ConfigureAwait(false);
        }

        switch (recorded)
        {
            case Recorded.Finished:
                DiscardIfEnded(id);
                break;
            case Recorded.Retried:
                // Staged afresh by the starter, outside this loop: a large staging delays no other task's end.
                _restart(id);
                break;
            case Recorded.NextStage:
                // The next stage could not be issued: the task ended.
                DiscardIfEnded(id);
                break;
        }
    }

    private StoredTask? Current(string id, int jobId) =>
        _store.Get(id) is { } stored && stored.JobId == jobId && !TesStateMachine.IsTerminal(stored.Task.State) ? stored : null;

    // Records how a stage ended: the task finished, its next stage was submitted, or its next attempt is to be started.
    private async Task<Recorded> RecordAsync(
        StoredTask stored, StageEnd ended, UpdatedBatchJobInfo? result, DateTimeOffset readAt, CancellationToken cancellationToken)
    {
        var task = stored.Task;
        task.Logs ??= [new TesTaskLog { StartTime = Now(), SystemLogs = [] }];
        var log = task.Logs[^1];
        if (result is not null)
        {
            log.Metadata ??= [];
            log.Metadata[$"stage_{stored.Stage}_job"] = result.BackingId;
        }

        log.Logs.AddRange(ended.Executors);
        if (log.Logs.LastOrDefault()?.EndTime is { } end
            && DateTimeOffset.TryParse(end, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var endTime))
        {
            _metrics.Detected(readAt - endTime);
        }

        if (ended is StageEnd.ExecutorFailed or StageEnd.Unfinished && Retry(task, log, ended, result))
        {
            _store.Update(task, null, 0);
            LogRetried(task.Id!, task.Logs.Count);
            return Recorded.Retried;
        }

        switch (ended)
        {
            case StageEnd.ExecutorFailed failed:
                task.Finish(Now(), TesEvent.ExecutorFailed, $"executor {log.Logs.Count - 1} exited with {failed.Failed.ExitCode}");
                if (result is { ExitReason: BatchJobExitReason.MemLimit })
                {
                    log.SystemLogs!.Add("the container exceeded its memory limit (OOM)");
                }

                break;
            case StageEnd.Unfinished:
                task.Finish(Now(), TesEvent.SystemFailed, result is null
                    ? "the task's job ended while the daemon was down and left no executor results"
                    : $"the task's pod ended before its executors finished: {result.ExitReason} (exit {result.ExitStatus}){(result.Message is { } m ? ": " + m : "")}");
                break;
            case StageEnd.NextStage:
                await IssueAsync(task, stored.Stage + 1, cancellationToken).ConfigureAwait(false);
                return Recorded.NextStage;
            case StageEnd.Delivered delivered:
                log.Outputs.AddRange(delivered.Outputs);
                task.Finish(Now(), delivered.Problem is null ? TesEvent.Completed : TesEvent.SystemFailed, delivered.Problem);
                break;
        }

        _store.Update(task, null, stored.Stage);
        LogFinished(task.Id!, TesStates.Name(task.State));
        return Recorded.Finished;
    }

    // Asks the task's retry policy whether an attempt that did not succeed runs again, and notes the answer in the
    // attempt's log. When it does, the attempt's log is closed, the next attempt's opened (with the memory it asks
    // for) and the task is INITIALIZING again, with no job: true.
    private bool Retry(TesTask task, TesTaskLog log, StageEnd ended, UpdatedBatchJobInfo? result)
    {
        if (TesStateMachine.Next(task.State, TesEvent.Retried) is null || TaskRetry.Policy(task, _tes) is not { } policy)
        {
            return false;
        }

        var attempt = task.Logs!.Count;
        var memory = TaskRetry.Memory(task, _tes);
        var reason = TaskRetry.Reason(ended, result);
        var decision = RetryPolicies.Next(policy, attempt, reason, memory);
        var how = result?.Message is { Length: > 0 } message ? $" ({message})" : "";
        (log.SystemLogs ??= []).Add(
            $"attempt {attempt} ended {RetryPolicies.ReasonName(reason)}{how} with {ByteQuantity.Format(memory)} of memory: {decision.Message}");
        if (!decision.Retry || !task.Move(TesEvent.Retried))
        {
            return false;
        }

        var now = Now();
        log.EndTime = now;
        task.Logs.Add(new TesTaskLog { StartTime = now, Metadata = TaskRetry.Metadata(_runId, attempt + 1, decision.Memory), SystemLogs = [] });
        return true;
    }

    private TaskWorkspace Workspace(string id) => new(Path.Combine(_hostDirectory, id));

    private enum Recorded
    {
        Finished,
        NextStage,
        Retried,
    }

    private string Now() => _time.GetUtcNow().ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

    [LoggerMessage(Level = LogLevel.Information, Message = "Task {TaskId} ({Name}) accepted")]
    private partial void LogCreated(string taskId, string? name);

    [LoggerMessage(Level = LogLevel.Information, Message = "Task {TaskId} canceled")]
    private partial void LogCanceled(string taskId);

    [LoggerMessage(Level = LogLevel.Information, Message = "Task {TaskId} stage {Stage} runs as batch job {JobId}")]
    private partial void LogIssued(string taskId, int stage, int jobId);

    [LoggerMessage(Level = LogLevel.Information, Message = "Task {TaskId} is retried: attempt {Attempt} is to start")]
    private partial void LogRetried(string taskId, int attempt);

    [LoggerMessage(Level = LogLevel.Information, Message = "Task {TaskId} ended {State}")]
    private partial void LogFinished(string taskId, string state);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Task {TaskId} cannot run: {Reason}")]
    private partial void LogSystemError(string taskId, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Task {TaskId} re-attached to batch job {JobId}")]
    private partial void LogReattached(string taskId, int jobId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Task {TaskId}: batch job {JobId} ended while the daemon was down; reading its results from the work directory")]
    private partial void LogRecoveringFromFiles(string taskId, int jobId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cannot remove the work directory {Directory}: {Reason}")]
    private partial void LogCleanupFailed(string directory, string reason);
}
