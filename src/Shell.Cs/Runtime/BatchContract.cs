using HybridBatch.Core;
using HybridBatch.Core.Api;
using Microsoft.Extensions.Logging;
using CoreAccelerator = HybridBatch.Core.AcceleratorRequirement;

namespace HybridBatch.Runtime;

/// <summary>
/// Toil's contract over a <see cref="JobRuntime"/>, whatever runs the jobs: the argument checks, the batch
/// environment, issuing, collecting and the queries. Every <see cref="IBatchSystem"/> of the library hands its calls
/// here, so a cluster's and a simulation's batch system answer alike; only how a collector waits differs.
/// </summary>
internal sealed partial class BatchContract
{
    private readonly JobSettings _settings;
    private readonly JobRuntime _runtime;
    private readonly FailureLogs _failureLogs;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Dictionary<string, string> _environment = new(StringComparer.Ordinal);
    private KeyValuePair<string, string>[] _environmentSnapshot = [];
    private int _shutDown;

    /// <summary>Creates the contract of one batch system.</summary>
    /// <param name="settings">What every job of the batch system shares.</param>
    /// <param name="runtime">The jobs' state.</param>
    /// <param name="failureLogs">Failed jobs' logs.</param>
    /// <param name="time">The clock collectors wait by.</param>
    /// <param name="logger">Where issues and collections are logged.</param>
    public BatchContract(JobSettings settings, JobRuntime runtime, FailureLogs failureLogs, TimeProvider time, ILogger logger)
    {
        _settings = settings;
        _runtime = runtime;
        _failureLogs = failureLogs;
        _time = time;
        _logger = logger;
    }

    /// <summary>Whether the run was shut down or left: nothing more is issued.</summary>
    public bool IsShutDown => Volatile.Read(ref _shutDown) != 0;

    /// <summary>Notes that the run is shut down or left.</summary>
    /// <returns>True the first time.</returns>
    public bool MarkShutDown() => Interlocked.Exchange(ref _shutDown, 1) == 0;

    /// <summary>See <see cref="IBatchSystem.SetEnv"/>.</summary>
    /// <param name="name">The variable's name.</param>
    /// <param name="value">Its value; null copies this process's value.</param>
    public void SetEnv(string name, string? value)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (Jobs.CheckEnvironmentName(name) is { } problem)
        {
            throw new ArgumentException(problem, nameof(name));
        }

        value ??= Environment.GetEnvironmentVariable(name)
            ?? throw new ArgumentException(
                $"SetEnv('{name}') without a value copies it from this process, but this process has no variable '{name}': pass a value.", nameof(name));
        lock (_environment)
        {
            _environment[name] = value;
            _environmentSnapshot = [.. _environment];
        }
    }

    /// <summary>See <see cref="IBatchSystem.CheckResourceRequest"/>.</summary>
    /// <param name="job">The job.</param>
    public void CheckResourceRequest(JobDescription job)
    {
        ArgumentNullException.ThrowIfNull(job);
        if (Jobs.CheckResources(_settings, job.Name, job.Cores, job.Memory, job.Disk, Accelerators(job)) is { } problem)
        {
            throw Refusal(problem, nameof(job), nameof(job), nameof(job));
        }
    }

    /// <summary>See <see cref="IBatchSystem.IssueBatchJobAsync"/>: the job is prepared by the core and issued.</summary>
    /// <param name="command">The command.</param>
    /// <param name="job">What the job needs.</param>
    /// <param name="jobEnvironment">The job's own environment.</param>
    /// <param name="owner">The batch system, named when it was shut down.</param>
    /// <returns>The job's id.</returns>
    public int Issue(string command, JobDescription job, IReadOnlyDictionary<string, string>? jobEnvironment, object owner)
    {
        ArgumentNullException.ThrowIfNull(command);
        ArgumentNullException.ThrowIfNull(job);
        ObjectDisposedException.ThrowIf(IsShutDown, owner);

        // The batch environment as it is now (SetEnv applies to jobs issued later), shared by every job issued until it
        // changes; the core copies the caller's placement and environment, which may change later.
        var batchEnvironment = Volatile.Read(ref _environmentSnapshot);
        var accelerators = Accelerators(job);
        var placement = job.Placement;
        var (id, problem) = _runtime.Issue(id => Jobs.Prepare(
            _settings, id, job.Name, command, job.Image, job.Cores, job.Memory, job.Disk, accelerators,
            placement?.RequiredLabels, placement?.DesiredLabels, placement?.ProhibitedLabels, placement?.ToleratedTaints,
            job.Preemptible, batchEnvironment, jobEnvironment));
        if (problem is not null)
        {
            throw Refusal(problem, nameof(command), nameof(job), nameof(jobEnvironment));
        }

        LogIssued(id, job.Name);
        return id;
    }

    /// <summary>
    /// See <see cref="IBatchSystem.GetUpdatedBatchJobAsync"/>: collects, and while nothing waits and time is left,
    /// lets <paramref name="waitForEnded"/> wait for a job's end.
    /// </summary>
    /// <param name="maxWait">How long to wait.</param>
    /// <param name="waitForEnded">Waits up to the time left for a job to end; false when none did.</param>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>The finished job, or null.</returns>
    public async Task<UpdatedBatchJobInfo?> CollectAsync(
        TimeSpan maxWait, Func<TimeSpan, CancellationToken, Task<bool>> waitForEnded, CancellationToken cancellationToken)
    {
        var wait = Math.Clamp(maxWait.TotalSeconds, 0, TimeSpan.FromDays(3650).TotalSeconds);
        var deadline = _time.GetTimestamp() + (long)(wait * _time.TimestampFrequency);
        while (true)
        {
            if (await CollectOnceAsync().ConfigureAwait(false) is { } result)
            {
                return result;
            }

            var remaining = _time.GetElapsedTime(_time.GetTimestamp(), deadline);
            if (remaining <= TimeSpan.Zero || IsShutDown)
            {
                return null;
            }

            if (!await waitForEnded(remaining, cancellationToken).ConfigureAwait(false))
            {
                return await CollectOnceAsync().ConfigureAwait(false);
            }
        }
    }

    private async Task<UpdatedBatchJobInfo?> CollectOnceAsync()
    {
        if (await _runtime.CollectAsync().ConfigureAwait(false) is not { } r)
        {
            return null;
        }

        LogCollected(r.JobId, r.Reason.ToString(), r.ExitStatus);
        return new UpdatedBatchJobInfo(r.JobId, r.ExitStatus, ToExitReason(r.Reason), TimeSpan.FromMilliseconds(r.WallTimeMs), r.BackingId)
        {
            Message = r.Message,
        };
    }

    /// <summary>See <see cref="IBatchSystem.KillBatchJobsAsync"/>.</summary>
    /// <param name="jobIds">The jobs.</param>
    /// <param name="cancellationToken">Stops waiting for the deletions.</param>
    /// <returns>A task that completes when the deletions were answered.</returns>
    public async Task KillAsync(IEnumerable<int> jobIds, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(jobIds);
        await _runtime.KillAsync(jobIds.ToArray()).WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>See <see cref="IBatchSystem.GetIssuedBatchJobIdsAsync"/>.</summary>
    /// <returns>The ids.</returns>
    public IReadOnlyList<int> Issued() => _runtime.Issued();

    /// <summary>See <see cref="IBatchSystem.GetRunningBatchJobIdsAsync"/>.</summary>
    /// <returns>Job id to time running.</returns>
    public IReadOnlyDictionary<int, TimeSpan> Running() =>
        _runtime.Running().ToDictionary(kv => kv.Key, kv => TimeSpan.FromMilliseconds(kv.Value));

    /// <summary>See <see cref="IBatchSystem.GetFailureLog"/>.</summary>
    /// <param name="backingId">The backing id.</param>
    /// <returns>The log tail, or null.</returns>
    public string? FailureLog(string backingId) => _failureLogs.Get(backingId);

    private static CoreAccelerator[] Accelerators(JobDescription job) =>
        [.. job.Accelerators.Select(a => Jobs.Accelerator(a.Count, a.Kind, a.Model, a.Brand, a.Api))];

    /// <summary>
    /// Why a job is refused, as Toil says it: more than the maxima, or an accelerator the cluster cannot provide, is a
    /// lack of resources; anything else is the named argument's error.
    /// </summary>
#pragma warning disable CS8524 // Every named kind is handled: a new kind is a build error (CS8509), not a silent default.
    private static Exception Refusal(JobProblem problem, string command, string job, string environment) => problem.Kind switch
    {
        ProblemKind.InsufficientResources => new InsufficientSystemResourcesException(problem.Resource, problem.Requested, problem.Available, problem.Message),
        ProblemKind.Command => new ArgumentException(problem.Message, command),
        ProblemKind.Job => new ArgumentException(problem.Message, job),
        ProblemKind.Environment => new ArgumentException(problem.Message, environment),
        ProblemKind.Placement => new ArgumentException(problem.Message),
    };

    private static BatchJobExitReason ToExitReason(ExitCode reason) => reason switch
    {
        ExitCode.Finished => BatchJobExitReason.Finished,
        ExitCode.Failed => BatchJobExitReason.Failed,
        ExitCode.Lost => BatchJobExitReason.Lost,
        ExitCode.Killed => BatchJobExitReason.Killed,
        ExitCode.Error => BatchJobExitReason.Error,
        ExitCode.MemLimit => BatchJobExitReason.MemLimit,
    };
#pragma warning restore CS8524

    [LoggerMessage(Level = LogLevel.Debug, Message = "Issued job {JobId} ({Name})")]
    private partial void LogIssued(int jobId, string name);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Returned job {JobId}: {Reason}, exit status {ExitStatus}")]
    private partial void LogCollected(int jobId, string reason, int exitStatus);
}
