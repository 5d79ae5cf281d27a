using HybridBatch.Core.Api;
using HybridBatch.Runtime;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace HybridBatch.Testing;

/// <summary>
/// Toil's batch-system contract (<see cref="IBatchSystem"/>) on a <see cref="SimulatedCluster"/>: the same core, the same
/// runtime and the same contract code as <see cref="KubernetesBatchSystem"/>; only the cluster is simulated. Jobs run
/// as bare pods. <see cref="GetUpdatedBatchJobAsync"/> moves virtual time on to the next thing due instead of
/// sleeping, and throws <see cref="SimulationStalledException"/> when nothing is scheduled to happen yet jobs wait.
/// </summary>
public sealed class SimulatedBatchSystem : IBatchSystem
{
    private readonly SimulatedCluster _cluster;
    private readonly JobRuntime _runtime;
    private readonly BatchContract _contract;
    private int _disposed;

    private SimulatedBatchSystem(SimulatedCluster cluster, KubernetesBatchSystemOptions options, string runId, string owner, ILogger logger)
    {
        _cluster = cluster;
        RunId = runId;
        var failureLogs = new FailureLogs();
        var settings = Jobs.Settings(owner, runId, options.Image, options.ResourceOverhead, options.MaxCores, options.MaxMemory, options.MaxDisk);
        var model = Transitions.Initial(
            (long)options.PodTimeout.TotalMilliseconds, options.MaxJobs, options.MaxCores, options.MaxMemory, options.MaxDisk);
        _runtime = new JobRuntime(model, cluster.Time, failureLogs, _ => new SimulatedEffects(cluster, runId, failureLogs));
        _contract = new BatchContract(settings, _runtime, failureLogs, cluster.Time, logger);
    }

    /// <inheritdoc/>
    public string RunId { get; }

    /// <summary>The cluster the jobs run on.</summary>
    public SimulatedCluster Cluster => _cluster;

    /// <summary>The runtime that holds the core's model.</summary>
    internal JobRuntime Runtime => _runtime;

    /// <summary>
    /// Attaches a batch system to a simulated cluster, re-attaching to the run's pods when
    /// <see cref="KubernetesBatchSystemOptions.RunId"/> names an earlier run (as a restarted workflow leader would).
    /// Reads the image, owner, run id, maxima, resource overhead and pod timeout from the options.
    /// </summary>
    /// <param name="cluster">The simulated cluster.</param>
    /// <param name="options">How jobs run; the defaults when null. The run id is drawn from the cluster's seed when unset.</param>
    /// <param name="loggerFactory">Where to log; nowhere when null.</param>
    /// <param name="cancellationToken">Cancels attaching.</param>
    /// <returns>The batch system.</returns>
    /// <exception cref="ArgumentException">An option is invalid.</exception>
    public static Task<SimulatedBatchSystem> CreateAsync(
        SimulatedCluster cluster,
        KubernetesBatchSystemOptions? options = null,
        ILoggerFactory? loggerFactory = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(cluster);
        cancellationToken.ThrowIfCancellationRequested();
        options ??= new KubernetesBatchSystemOptions();
        var problems = options.Validate();
        if (problems.Count > 0)
        {
            throw new ArgumentException("The batch system's options are invalid: " + string.Join("; ", problems), nameof(options));
        }

        var runId = options.RunId ?? cluster.NewRunId();
        var system = new SimulatedBatchSystem(
            cluster, options, runId, options.Owner ?? "simulated", (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<SimulatedBatchSystem>());
        cluster.Attach(runId, system._runtime);
        return Task.FromResult(system);
    }

    /// <inheritdoc/>
    public void SetEnv(string name, string? value = null) => _contract.SetEnv(name, value);

    /// <inheritdoc/>
    public void CheckResourceRequest(JobDescription job) => _contract.CheckResourceRequest(job);

    /// <inheritdoc/>
    public Task<int> IssueBatchJobAsync(
        string command,
        JobDescription job,
        IReadOnlyDictionary<string, string>? jobEnvironment = null,
        CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return Task.FromResult(_cluster.Do(() => _contract.Issue(command, job, jobEnvironment, this)));
    }

    /// <inheritdoc/>
    /// <exception cref="SimulationStalledException">Nothing is scheduled to happen, yet jobs wait.</exception>
    public Task<UpdatedBatchJobInfo?> GetUpdatedBatchJobAsync(TimeSpan maxWait, CancellationToken cancellationToken = default) =>
        _cluster.Do(() => _contract.CollectAsync(
            maxWait,
            (remaining, token) =>
            {
                token.ThrowIfCancellationRequested();
                return Task.FromResult(_cluster.WaitForEnded(_runtime, remaining));
            },
            cancellationToken));

    /// <inheritdoc/>
    public Task KillBatchJobsAsync(IEnumerable<int> jobIds, CancellationToken cancellationToken = default) =>
        _cluster.Do(() => _contract.KillAsync(jobIds, cancellationToken));

    /// <inheritdoc/>
    public Task<IReadOnlyList<int>> GetIssuedBatchJobIdsAsync(CancellationToken cancellationToken = default) =>
        Task.FromResult(_cluster.Do(_contract.Issued));

    /// <inheritdoc/>
    public Task<IReadOnlyDictionary<int, TimeSpan>> GetRunningBatchJobIdsAsync(CancellationToken cancellationToken = default) =>
        Task.FromResult(_cluster.Do(_contract.Running));

    /// <inheritdoc/>
    public string? GetFailureLog(string backingId) => _contract.FailureLog(backingId);

    /// <inheritdoc/>
    public async Task ShutdownAsync(CancellationToken cancellationToken = default)
    {
        if (!_contract.MarkShutDown())
        {
            return;
        }

        await _cluster.Do(() => _runtime.ShutdownAsync(cancellationToken)).ConfigureAwait(false);
        _cluster.Detach(RunId);
    }

    /// <summary>
    /// Detaches from the run, as a crashed or stopped client does: the run's pods stay in the cluster, and a batch system
    /// created with the same <see cref="RunId"/> re-attaches to them. Call <see cref="ShutdownAsync"/> first to end the run.
    /// </summary>
    /// <returns>A task that completes when detached.</returns>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _contract.MarkShutDown();
        await _runtime.StopAsync().ConfigureAwait(false);
        _cluster.Detach(RunId);
    }
}
