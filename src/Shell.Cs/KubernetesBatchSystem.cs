using HybridBatch.Core;
using HybridBatch.Core.Api;
using HybridBatch.Resilience;
using HybridBatch.Runtime;
using HybridBatch.Translation;
using k8s;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace HybridBatch;

/// <summary>
/// Runs batch jobs as Kubernetes Jobs (or bare pods, <see cref="KubernetesBatchSystemOptions.ObjectKind"/>) with
/// Toil's batch-system contract: issue a job and get an id; each finished job is returned once by
/// <see cref="GetUpdatedBatchJobAsync"/>, with its exit code, exit reason and wall time; killed jobs are never
/// returned. Status comes from one list-and-watch of the run's pods, never from polling.
/// </summary>
/// <remarks>
/// This class is Toil's contract and nothing more: it checks its arguments and hands each call to the
/// <see cref="JobRuntime"/>, which owns the core's model. Every decision (validation, queueing, exit reasons, stuck
/// pods, lost jobs, node cleanup) is the core's; <see cref="JobEffects"/> performs its effects and
/// <see cref="PodWatcher"/> feeds back what Kubernetes reports.
/// </remarks>
public sealed partial class KubernetesBatchSystem : IBatchSystem
{
    private readonly IKubernetes _client;
    private readonly JobSettings _settings;
    private readonly JobManifests _manifests;
    private readonly JobRuntime _runtime;
    private readonly BatchContract _contract;
    private readonly FailureLogs _failureLogs = new();
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private int _disposed;

    private KubernetesBatchSystem(
        IKubernetes client,
        KubernetesBatchSystemOptions options,
        string @namespace,
        string runId,
        string owner,
        ILogger logger,
        TimeProvider time)
    {
        _client = client;
        Namespace = @namespace;
        RunId = runId;
        Owner = owner;
        _logger = logger;
        _time = time;
        _manifests = new JobManifests(options, runId, owner);
        _settings = Jobs.Settings(owner, runId, options.Image, options.ResourceOverhead, options.MaxCores, options.MaxMemory, options.MaxDisk);
        var model = Transitions.Initial(
            (long)options.PodTimeout.TotalMilliseconds, options.MaxJobs, options.MaxCores, options.MaxMemory, options.MaxDisk);
        _runtime = new JobRuntime(
            model,
            time,
            _failureLogs,
            runtime => new JobEffects(client, @namespace, _manifests, options.MaxCreatesInFlight, _failureLogs, logger, runtime));
        _contract = new BatchContract(_settings, _runtime, _failureLogs, time, logger);
    }

    /// <summary>Toil's batch systems may ship the user's script to workers; there is no such thing in .NET.</summary>
    public static bool SupportsAutoDeployment => false;

    /// <summary>The namespace the jobs run in.</summary>
    public string Namespace { get; }

    /// <summary>The run's identity: give it to a later batch system to re-attach to this run's jobs.</summary>
    public string RunId { get; }

    /// <summary>The user name the jobs are marked with.</summary>
    public string Owner { get; }

    /// <summary>
    /// Connects to the cluster, checks that it answers and that the identity may list Jobs (bare pods in pod mode) in
    /// the namespace, adopts the run's existing ones when <see cref="KubernetesBatchSystemOptions.RunId"/> names an
    /// earlier run, and starts watching.
    /// </summary>
    /// <param name="options">Where the cluster is and how jobs run.</param>
    /// <param name="loggerFactory">Where to log; nowhere when null.</param>
    /// <param name="cancellationToken">Cancels connecting.</param>
    /// <returns>The running batch system; dispose it to shut it down.</returns>
    /// <exception cref="ArgumentException">An option is invalid; the message names it and the fix.</exception>
    /// <exception cref="InvalidOperationException">The kubeconfig cannot be used or the cluster cannot be reached.</exception>
    public static Task<KubernetesBatchSystem> CreateAsync(
        KubernetesBatchSystemOptions options,
        ILoggerFactory? loggerFactory = null,
        CancellationToken cancellationToken = default) =>
        CreateAsync(options, loggerFactory, TimeProvider.System, observer: null, cancellationToken);

    /// <summary>As <see cref="CreateAsync(KubernetesBatchSystemOptions, ILoggerFactory?, CancellationToken)"/>, with a clock and a call observer.</summary>
    /// <param name="options">Where the cluster is and how jobs run.</param>
    /// <param name="loggerFactory">Where to log; nowhere when null.</param>
    /// <param name="timeProvider">The clock.</param>
    /// <param name="observer">Sees every Kubernetes call (for metrics and benchmarks), if given.</param>
    /// <param name="cancellationToken">Cancels connecting.</param>
    /// <returns>The running batch system.</returns>
    public static Task<KubernetesBatchSystem> CreateAsync(
        KubernetesBatchSystemOptions options,
        ILoggerFactory? loggerFactory,
        TimeProvider timeProvider,
        IKubernetesCallObserver? observer,
        CancellationToken cancellationToken = default) =>
        CreateAsync(options, loggerFactory, timeProvider, observer, innerHandlers: [], cancellationToken);

    /// <summary>As the public overload, with handlers between the resilience pipeline and the network (fault injection in tests).</summary>
    internal static async Task<KubernetesBatchSystem> CreateAsync(
        KubernetesBatchSystemOptions options,
        ILoggerFactory? loggerFactory,
        TimeProvider timeProvider,
        IKubernetesCallObserver? observer,
        DelegatingHandler[] innerHandlers,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(timeProvider);
        var problems = options.Validate();
        if (problems.Count > 0)
        {
            throw new ArgumentException("The batch system's options are invalid: " + string.Join("; ", problems), nameof(options));
        }

        loggerFactory ??= NullLoggerFactory.Instance;
        var configuration = ClusterConnector.LoadConfiguration(options);
        var @namespace = options.Namespace ?? configuration.Namespace ?? "default";
        var client = KubernetesClientFactory.Create(configuration, options.Resilience, loggerFactory, timeProvider, observer, innerHandlers);
        var owner = options.Owner ?? GetDefaultKubernetesOwner();
        var runId = options.RunId ?? Guid.NewGuid().ToString("N");
        var system = new KubernetesBatchSystem(
            client, options, @namespace, runId, owner, loggerFactory.CreateLogger<KubernetesBatchSystem>(), timeProvider);
        try
        {
            await system.ConnectAsync(configuration.Host, cancellationToken).ConfigureAwait(false);
            system.Start();
            return system;
        }
        catch
        {
            await system.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private async Task ConnectAsync(string host, CancellationToken cancellationToken)
    {
        var existing = await ClusterConnector.ProbeAsync(_client, Namespace, _manifests.Kind, _manifests.JobSelector, host, cancellationToken).ConfigureAwait(false);
        foreach (var adoption in ClusterConnector.Adoptions(existing, _runtime.Now))
        {
            _runtime.Apply(adoption);
        }

        if (existing.Count > 0)
        {
            LogAdopted(existing.Count, _manifests.Noun, RunId);
        }

        if (await ClusterConnector.ReadQuotasAsync(_client, Namespace, asJobs: _manifests.Kind == KubernetesObjectKind.Job, () => _runtime.Now, cancellationToken).ConfigureAwait(false) is { } quotas)
        {
            _runtime.Apply(quotas);
        }
    }

    private void Start() =>
        _runtime.Start(new PodWatcher(_client, Namespace, _manifests.JobSelector, _time, _logger, _runtime.Apply).RunAsync);

    /// <summary>Always throws: there is no user-script auto-deployment in .NET (see <see cref="SupportsAutoDeployment"/>).</summary>
    /// <param name="userScript">The script.</param>
    /// <exception cref="InvalidOperationException">Always.</exception>
    public void SetUserScript(UserScript userScript) =>
        throw new InvalidOperationException(
            $"The Kubernetes batch system cannot deploy the user script '{userScript?.Name}': auto-deployment is unsupported. Put the code in the job's image instead.");

    /// <summary>Sets an environment variable for jobs issued from now on.</summary>
    /// <param name="name">The variable's name.</param>
    /// <param name="value">Its value; null copies this process's value.</param>
    /// <exception cref="ArgumentException">The name is invalid, or it is null and this process has no such variable.</exception>
    public void SetEnv(string name, string? value = null) => _contract.SetEnv(name, value);

    /// <summary>Checks a job's request against the batch system's maxima (Toil's <c>check_resource_request</c>).</summary>
    /// <param name="job">The job.</param>
    /// <exception cref="InsufficientSystemResourcesException">A request exceeds a maximum; the message names the resource, request and limit.</exception>
    /// <exception cref="ArgumentException">A request is invalid (negative, NaN, a non-GPU accelerator).</exception>
    public void CheckResourceRequest(JobDescription job) => _contract.CheckResourceRequest(job);

    /// <summary>
    /// Issues a job. Returns its id at once; the job waits in the local queue while the pool (<c>--maxJobs</c>,
    /// cores, memory, disk) is full, and is created in Kubernetes in the background.
    /// </summary>
    /// <param name="command">The command, run with <c>/bin/sh -c</c>.</param>
    /// <param name="job">What the job needs.</param>
    /// <param name="jobEnvironment">Environment for this job, over the batch environment set with <see cref="SetEnv"/>.</param>
    /// <param name="cancellationToken">Not used for waiting: issuing does not wait for the API.</param>
    /// <returns>The job's id: ids start at 1, increase and are never reused.</returns>
    /// <exception cref="InsufficientSystemResourcesException">The job asks for more than the maxima.</exception>
    /// <exception cref="ArgumentException">The command is empty, or a request, an environment name or a placement label is invalid.</exception>
    /// <exception cref="ObjectDisposedException">The batch system was shut down.</exception>
    public Task<int> IssueBatchJobAsync(
        string command,
        JobDescription job,
        IReadOnlyDictionary<string, string>? jobEnvironment = null,
        CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return Task.FromResult(_contract.Issue(command, job, jobEnvironment, this));
    }

    /// <summary>
    /// Returns one finished job that was not returned before, waiting up to <paramref name="maxWait"/> for one.
    /// Killed jobs are never returned. After a job is returned its Kubernetes Job (or bare pod) is deleted.
    /// </summary>
    /// <param name="maxWait">How long to wait; zero returns at once.</param>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>The finished job, or null when none finished in time.</returns>
    public Task<UpdatedBatchJobInfo?> GetUpdatedBatchJobAsync(TimeSpan maxWait, CancellationToken cancellationToken = default) =>
        _contract.CollectAsync(maxWait, _runtime.WaitForEndedAsync, cancellationToken);

    /// <summary>
    /// Kills jobs: when this returns they are in neither the issued nor the running set and will never be returned,
    /// queued ones included. Deletion uses background propagation; this does not wait for the pods to die.
    /// Unknown ids are ignored.
    /// </summary>
    /// <param name="jobIds">The jobs to kill.</param>
    /// <param name="cancellationToken">Stops waiting for the delete requests (the jobs are killed regardless).</param>
    /// <returns>A task that completes when the delete requests were answered.</returns>
    public Task KillBatchJobsAsync(IEnumerable<int> jobIds, CancellationToken cancellationToken = default) =>
        _contract.KillAsync(jobIds, cancellationToken);

    /// <summary>Issued jobs not yet returned or killed (queued, running and finished-but-uncollected), from local state.</summary>
    /// <param name="cancellationToken">Unused: answered without API calls.</param>
    /// <returns>The ids, increasing, without duplicates.</returns>
    public Task<IReadOnlyList<int>> GetIssuedBatchJobIdsAsync(CancellationToken cancellationToken = default) =>
        Task.FromResult(_contract.Issued());

    /// <summary>Jobs whose container runs, with how long it has run, from local state.</summary>
    /// <param name="cancellationToken">Unused: answered without API calls.</param>
    /// <returns>Job id to time running.</returns>
    public Task<IReadOnlyDictionary<int, TimeSpan>> GetRunningBatchJobIdsAsync(CancellationToken cancellationToken = default) =>
        Task.FromResult(_contract.Running());

    /// <summary>The tail of the log of a failed job's pod, by the result's <see cref="UpdatedBatchJobInfo.BackingId"/>.</summary>
    /// <param name="backingId">The Kubernetes Job's name (the pod's in pod mode).</param>
    /// <returns>The log tail, or null when none was kept (the most recent thousand or so are).</returns>
    public string? GetFailureLog(string backingId) => _contract.FailureLog(backingId);

    /// <summary>Toil's default owner: this user's name, lowercased, with only letters, digits, '-' and '.'.</summary>
    /// <returns>The owner name.</returns>
    public static string GetDefaultKubernetesOwner() => Names.DefaultOwner(Environment.UserName);

    /// <summary>
    /// Stops watching, deletes the run's Jobs and pods, cleans the nodes' work directories and waits (with a deadline)
    /// for the pods to go. Idempotent.
    /// </summary>
    /// <param name="cancellationToken">Stops waiting for the pods to go.</param>
    /// <returns>A task that completes when shut down.</returns>
    public async Task ShutdownAsync(CancellationToken cancellationToken = default)
    {
        if (!_contract.MarkShutDown())
        {
            return;
        }

        await _runtime.ShutdownAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Detaches from the run: stops watching and waits for calls in flight, but leaves the run's Jobs in the cluster
    /// so that a batch system created with the same <see cref="RunId"/> re-attaches to them (as a restarted workflow
    /// leader would). Call <see cref="ShutdownAsync"/> first to end the run and delete its Jobs (or bare pods).
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
        _client.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Re-attached to {Count} {Kind}s of run {RunId}")]
    private partial void LogAdopted(int count, string kind, string runId);
}
