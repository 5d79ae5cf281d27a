namespace HybridBatch;

/// <summary>
/// Toil's batch-system contract: issue a job and get an id; each finished job is returned once by
/// <see cref="GetUpdatedBatchJobAsync"/>, with its exit code, exit reason and wall time; killed jobs are never
/// returned. <see cref="KubernetesBatchSystem"/> runs jobs on a cluster; the <c>HybridBatch.Testing</c> package's
/// simulated batch system runs the same core on a simulated cluster in virtual time, for a workflow engine's own tests.
/// </summary>
public interface IBatchSystem : IAsyncDisposable
{
    /// <summary>The run's identity: give it to a later batch system to re-attach to this run's jobs.</summary>
    string RunId { get; }

    /// <summary>Sets an environment variable for jobs issued from now on.</summary>
    /// <param name="name">The variable's name.</param>
    /// <param name="value">Its value; null copies this process's value.</param>
    /// <exception cref="ArgumentException">The name is invalid, or it is null and this process has no such variable.</exception>
    void SetEnv(string name, string? value = null);

    /// <summary>Checks a job's request against the batch system's maxima (Toil's <c>check_resource_request</c>).</summary>
    /// <param name="job">The job.</param>
    /// <exception cref="InsufficientSystemResourcesException">A request exceeds a maximum.</exception>
    /// <exception cref="ArgumentException">A request is invalid.</exception>
    void CheckResourceRequest(JobDescription job);

    /// <summary>Issues a job and returns its id at once; ids start at 1, increase and are never reused.</summary>
    /// <param name="command">The command, run with <c>/bin/sh -c</c>.</param>
    /// <param name="job">What the job needs.</param>
    /// <param name="jobEnvironment">Environment for this job, over the batch environment set with <see cref="SetEnv"/>.</param>
    /// <param name="cancellationToken">Cancels before anything is issued.</param>
    /// <returns>The job's id.</returns>
    /// <exception cref="InsufficientSystemResourcesException">The job asks for more than the maxima.</exception>
    /// <exception cref="ArgumentException">The command, a request, an environment name or a placement label is invalid.</exception>
    /// <exception cref="ObjectDisposedException">The batch system was shut down.</exception>
    Task<int> IssueBatchJobAsync(
        string command,
        JobDescription job,
        IReadOnlyDictionary<string, string>? jobEnvironment = null,
        CancellationToken cancellationToken = default);

    /// <summary>Returns one finished job that was not returned before, waiting up to <paramref name="maxWait"/> for one.</summary>
    /// <param name="maxWait">How long to wait; zero returns at once.</param>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>The finished job, or null when none finished in time.</returns>
    Task<UpdatedBatchJobInfo?> GetUpdatedBatchJobAsync(TimeSpan maxWait, CancellationToken cancellationToken = default);

    /// <summary>Kills jobs: they leave the issued and running sets at once and are never returned. Unknown ids are ignored.</summary>
    /// <param name="jobIds">The jobs to kill.</param>
    /// <param name="cancellationToken">Stops waiting for the deletions (the jobs are killed regardless).</param>
    /// <returns>A task that completes when the deletions were answered.</returns>
    Task KillBatchJobsAsync(IEnumerable<int> jobIds, CancellationToken cancellationToken = default);

    /// <summary>Issued jobs not yet returned or killed (queued, running and finished-but-uncollected).</summary>
    /// <param name="cancellationToken">Cancels the query.</param>
    /// <returns>The ids, increasing, without duplicates.</returns>
    Task<IReadOnlyList<int>> GetIssuedBatchJobIdsAsync(CancellationToken cancellationToken = default);

    /// <summary>Jobs whose container runs, with how long it has run.</summary>
    /// <param name="cancellationToken">Cancels the query.</param>
    /// <returns>Job id to time running.</returns>
    Task<IReadOnlyDictionary<int, TimeSpan>> GetRunningBatchJobIdsAsync(CancellationToken cancellationToken = default);

    /// <summary>The tail of the log of a failed job's pod, by the result's <see cref="UpdatedBatchJobInfo.BackingId"/>.</summary>
    /// <param name="backingId">The backing id of a returned job.</param>
    /// <returns>The log tail, or null when none was kept.</returns>
    string? GetFailureLog(string backingId);

    /// <summary>Ends the run: every job is deleted and nothing more is returned. Idempotent.</summary>
    /// <param name="cancellationToken">Stops waiting for the jobs to go.</param>
    /// <returns>A task that completes when shut down.</returns>
    Task ShutdownAsync(CancellationToken cancellationToken = default);
}
