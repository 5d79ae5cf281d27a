using System.Collections.Concurrent;
using System.Globalization;
using System.Text.RegularExpressions;
using HybridBatch.Core;
using HybridBatch.Core.Api;
using HybridBatch.Translation;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using CoreAccelerator = HybridBatch.Core.AcceleratorRequirement;

namespace HybridBatch;

/// <summary>
/// Runs batch jobs as Kubernetes Jobs with Toil's batch-system contract: issue a job and get an id; each finished job
/// is returned once by <see cref="GetUpdatedBatchJobAsync"/>, with its exit code, exit reason and wall time; killed
/// jobs are never returned. Status comes from one list-and-watch of the run's pods, never from polling.
/// </summary>
/// <remarks>
/// Every decision (queueing, exit reasons, stuck pods, lost jobs, node cleanup) is the core's transition function;
/// this class performs its effects and feeds back what Kubernetes reports.
/// </remarks>
public sealed partial class KubernetesBatchSystem : IAsyncDisposable
{
    private static readonly Regex EnvironmentName = new("^[-._a-zA-Z][-._a-zA-Z0-9]*$", RegexOptions.Compiled);

    private readonly IKubernetes _client;
    private readonly KubernetesBatchSystemOptions _options;
    private readonly JobManifests _manifests;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private readonly ConcurrentDictionary<int, PendingCreate> _toCreate = new();
    private readonly ConcurrentDictionary<string, string> _failureLogs = new();

    // Failure-log reads under way, by backing id: registered in the same step that ends the job, so a result is never
    // handed out (nor its Job deleted) before its log was read.
    private readonly ConcurrentDictionary<string, TaskCompletionSource> _explaining = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _environment = new(StringComparer.Ordinal);
    private KeyValuePair<string, string>[] _environmentSnapshot = [];
    private readonly SemaphoreSlim _ended = new(0);
    private readonly SemaphoreSlim _creates;
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentDictionary<Task, byte> _inFlight = new();
    private readonly List<Task> _loops = [];
    private JobState.Model _model;
    private int _shutDown;
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
        _options = options;
        Namespace = @namespace;
        RunId = runId;
        Owner = owner;
        _logger = logger;
        _time = time;
        _manifests = new JobManifests(options, runId, owner);
        _creates = new SemaphoreSlim(options.MaxCreatesInFlight);
        _model = Lifecycle.Initial(
            (long)(options.PodTimeout * 1000),
            options.MaxJobs,
            Pool.Millicores(options.MaxCores),
            options.MaxMemory,
            options.MaxDisk);
    }

    /// <summary>Toil's batch systems may ship the user's script to workers; there is no such thing in .NET.</summary>
    public static bool SupportsAutoDeployment => false;

    /// <summary>The namespace the jobs run in.</summary>
    public string Namespace { get; }

    /// <summary>The run's identity: give it to a later batch system to re-attach to this run's jobs.</summary>
    public string RunId { get; }

    /// <summary>The user name the jobs are marked with.</summary>
    public string Owner { get; }

    private long Now => _time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>
    /// Connects to the cluster, checks that it answers and that the identity may list Jobs in the namespace, adopts the
    /// run's existing Jobs when <see cref="KubernetesBatchSystemOptions.RunId"/> names an earlier run, and starts
    /// watching.
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
        var configuration = LoadConfiguration(options);
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

    private static KubernetesClientConfiguration LoadConfiguration(KubernetesBatchSystemOptions options)
    {
        try
        {
            if (options.Kubeconfig is { } path)
            {
                if (!File.Exists(path))
                {
                    throw new InvalidOperationException(
                        $"The kubeconfig '{path}' does not exist: give the path of a kubeconfig file, or leave it unset to use KUBECONFIG or ~/.kube/config.");
                }

                return KubernetesClientConfiguration.BuildConfigFromConfigFile(path, options.Context);
            }

            return options.Context is null
                ? KubernetesClientConfiguration.BuildDefaultConfig()
                : KubernetesClientConfiguration.BuildConfigFromConfigFile(currentContext: options.Context);
        }
        catch (Exception ex) when (ex is k8s.Exceptions.KubeConfigException or IOException or YamlDotNet.Core.YamlException or UnauthorizedAccessException)
        {
            var where = options.Kubeconfig ?? Environment.GetEnvironmentVariable("KUBECONFIG") ?? "~/.kube/config";
            throw new InvalidOperationException(
                $"The kubeconfig '{where}' cannot be used: {ex.Message}. Fix the file, or point --kubeconfig or KUBECONFIG at a working one.", ex);
        }
    }

    private async Task ConnectAsync(string host, CancellationToken cancellationToken)
    {
        using var probe = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        probe.CancelAfter(TimeSpan.FromSeconds(30));
        V1JobList existing;
        try
        {
            existing = await _client.BatchV1.ListNamespacedJobAsync(
                Namespace, labelSelector: _manifests.JobSelector, cancellationToken: probe.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new InvalidOperationException(
                $"The Kubernetes API at {host} did not answer within 30 s: start the cluster (cluster/local-cluster up) or fix the server address in the kubeconfig.");
        }
        catch (KubernetesApiException ex) when (ex.StatusCode is null)
        {
            // No answer at all (refused, reset, timed out): an address or a cluster problem, not a permission one.
            throw new InvalidOperationException(
                $"The Kubernetes API at {host} cannot be reached ({ex.Message}): start the cluster (cluster/local-cluster up) or fix the server address in the kubeconfig.", ex);
        }
        catch (KubernetesApiException ex)
        {
            throw new InvalidOperationException($"The Kubernetes API at {host} refused to list Jobs in namespace '{Namespace}': {ex.Message}", ex);
        }
        catch (HttpRequestException ex)
        {
            throw new InvalidOperationException(
                $"The Kubernetes API at {host} cannot be reached ({ex.Message}): start the cluster (cluster/local-cluster up) or fix the server address in the kubeconfig.", ex);
        }

        // Re-attach: adopt the run's Jobs in id order; the first list of the watch then brings their state.
        var now = Now;
        foreach (var (id, job) in existing.Items
                     .Select(j => (Id: Observations.JobId(j.Metadata), Job: j))
                     .Where(p => p.Id is not null && p.Job.Metadata.DeletionTimestamp is null)
                     .OrderBy(p => p.Id))
        {
            var stored = JobManifests.StoredRequest(job) ?? (0, 0, 0);
            var request = Lifecycle.Request(job.Metadata.Name, stored.Millicores, stored.Memory, stored.Disk);
            Apply(Lifecycle.Adopted(id!.Value, request, now));
        }

        if (existing.Items.Count > 0)
        {
            LogAdopted(existing.Items.Count, RunId);
        }
    }

    private void Start()
    {
        var token = _stopping.Token;
        _loops.Add(Task.Run(() => WatchPodsAsync(token), CancellationToken.None));
        _loops.Add(Task.Run(() => TickAsync(token), CancellationToken.None));
    }

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
    public void SetEnv(string name, string? value = null)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (!EnvironmentName.IsMatch(name))
        {
            throw new ArgumentException(
                $"'{name}' is not a valid environment variable name: use letters, digits, '_', '-' and '.', not starting with a digit.", nameof(name));
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

    /// <summary>Checks a job's request against the batch system's maxima (Toil's <c>check_resource_request</c>).</summary>
    /// <param name="job">The job.</param>
    /// <exception cref="InsufficientSystemResourcesException">A request exceeds a maximum; the message names the resource, request and limit.</exception>
    /// <exception cref="ArgumentException">A request is invalid (negative, NaN, a non-GPU accelerator).</exception>
    public void CheckResourceRequest(JobDescription job)
    {
        ArgumentNullException.ThrowIfNull(job);
        var problem = ResourcesApi.CheckResourceRequest(
            job.Name, job.Cores, job.Memory, job.Disk, Accelerators(job), _options.MaxCores, _options.MaxMemory, _options.MaxDisk);
        if (problem is null)
        {
            return;
        }

        // As in Toil: asking for more than the maxima, or for an accelerator Kubernetes cannot schedule, is a lack of
        // resources; a malformed amount is an argument error.
        if (problem.Maximum.Length > 0 || problem.Resource == "accelerators")
        {
            var available = problem.Maximum.Length > 0 ? problem.Maximum : "none of that kind";
            throw new InsufficientSystemResourcesException(problem.Resource, problem.Requested, available, problem.Message);
        }

        throw new ArgumentException(problem.Message, nameof(job));
    }

    private static CoreAccelerator[] Accelerators(JobDescription job) =>
        [.. job.Accelerators.Select(a => ResourcesApi.Accelerator(a.Count, a.Kind, a.Model, a.Brand, a.Api))];

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
    /// <exception cref="ArgumentException">The command is empty, or a request or an environment name is invalid.</exception>
    /// <exception cref="ObjectDisposedException">The batch system was shut down.</exception>
    public Task<int> IssueBatchJobAsync(
        string command,
        JobDescription job,
        IReadOnlyDictionary<string, string>? jobEnvironment = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(command);
        ArgumentNullException.ThrowIfNull(job);
        cancellationToken.ThrowIfCancellationRequested();
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _shutDown) != 0, this);
        if (string.IsNullOrWhiteSpace(command))
        {
            throw new ArgumentException("The command is empty: give a command for /bin/sh -c to run.", nameof(command));
        }

        if (command.Length > 256 * 1024)
        {
            throw new ArgumentException(
                $"The command has {command.Length} characters: Kubernetes objects are limited in size, so keep commands under 256 KiB and put data in files.",
                nameof(command));
        }

        if (job.Image is { } image && (image.Length == 0 || image.Any(char.IsWhiteSpace)))
        {
            throw new ArgumentException(
                $"The job's image '{image}' is not an image reference: name one such as busybox:1.35, or leave it null for the batch system's image.",
                nameof(job));
        }

        CheckResourceRequest(job);
        if (!ResourcesApi.TryToKubernetes(job.Cores, job.Memory, job.Disk, Accelerators(job), _options.ResourceOverhead, out var resources, out var problem))
        {
            throw new ArgumentException(problem!.Message, nameof(job));
        }

        foreach (var name in jobEnvironment?.Keys ?? [])
        {
            if (!EnvironmentName.IsMatch(name))
            {
                throw new ArgumentException(
                    $"'{name}' is not a valid environment variable name: use letters, digits, '_', '-' and '.', not starting with a digit.",
                    nameof(jobEnvironment));
            }
        }

        // Checked now, so a bad label is the caller's error at once; copied, since the caller may change it later.
        var placement = JobManifests.PlacementOf(job, resources!);

        // The batch environment as it is now (SetEnv applies to jobs issued later), shared by every job issued
        // until it changes; the job's own variables win.
        var batchEnvironment = Volatile.Read(ref _environmentSnapshot);
        KeyValuePair<string, string>[] jobVariables = jobEnvironment is null ? [] : [.. jobEnvironment];

        JobState.Effect[] effects;
        int id;
        lock (_gate)
        {
            id = Lifecycle.NextId(_model);
            var request = Lifecycle.Request(
                Names.JobName(Owner, RunId, id), Pool.Millicores(job.Cores), job.Memory, job.Disk);
            // Only the inputs wait in the queue; the manifest (several KB) is built when its create call starts.
            _toCreate[id] = new PendingCreate(command, job, resources!, request, batchEnvironment, jobVariables, placement);
            effects = Step(Lifecycle.Issued(id, request, Now));
        }

        LogIssued(id, job.Name);
        Perform(effects);
        return Task.FromResult(id);
    }

    /// <summary>
    /// Returns one finished job that was not returned before, waiting up to <paramref name="maxWait"/> for one.
    /// Killed jobs are never returned. After a job is returned its Kubernetes Job is deleted.
    /// </summary>
    /// <param name="maxWait">How long to wait; zero returns at once.</param>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>The finished job, or null when none finished in time.</returns>
    public async Task<UpdatedBatchJobInfo?> GetUpdatedBatchJobAsync(TimeSpan maxWait, CancellationToken cancellationToken = default)
    {
        var deadline = _time.GetTimestamp() + (long)(Math.Max(0, maxWait.TotalSeconds) * _time.TimestampFrequency);
        while (true)
        {
            if (await CollectAsync().ConfigureAwait(false) is { } result)
            {
                return result;
            }

            var remaining = _time.GetElapsedTime(_time.GetTimestamp(), deadline);
            if (remaining <= TimeSpan.Zero || Volatile.Read(ref _shutDown) != 0)
            {
                return null;
            }

            if (!await _ended.WaitAsync(remaining, cancellationToken).ConfigureAwait(false))
            {
                return await CollectAsync().ConfigureAwait(false);
            }
        }
    }

    private async Task<UpdatedBatchJobInfo?> CollectAsync()
    {
        JobState.Effect[] effects;
        lock (_gate)
        {
            effects = Step(Lifecycle.Collect(Now));
        }

        UpdatedBatchJobInfo? collected = null;
        foreach (var effect in effects)
        {
            if (effect is JobState.Effect.Deliver { Item: var r })
            {
                // The job's failure log is read before its result is handed out and its Job deleted. The read ends by
                // itself (request timeout, or shutdown) and never throws; waiting for it is not cancelled, as the
                // result is already out of the model and must not be lost. Only the reader removes the entry, after
                // completing it: a collector that removed it could leave the reader nothing to complete, and wait for
                // ever.
                if (_explaining.TryGetValue(r.backingId, out var reading))
                {
                    await reading.Task.ConfigureAwait(false);
                }

                LogCollected(r.id, r.reason.ToString(), r.exitStatus);
                collected = new UpdatedBatchJobInfo(r.id, r.exitStatus, ToExitReason(r.reason), TimeSpan.FromMilliseconds(r.wallTime), r.backingId)
                {
                    Message = Lifecycle.Message(r),
                };
            }
        }

        Perform(effects);
        return collected;
    }

    private static BatchJobExitReason ToExitReason(JobState.ExitReason reason) => reason.Tag switch
    {
        JobState.ExitReason.Tags.Finished => BatchJobExitReason.Finished,
        JobState.ExitReason.Tags.Failed => BatchJobExitReason.Failed,
        JobState.ExitReason.Tags.Lost => BatchJobExitReason.Lost,
        JobState.ExitReason.Tags.Killed => BatchJobExitReason.Killed,
        JobState.ExitReason.Tags.MemLimit => BatchJobExitReason.MemLimit,
        _ => BatchJobExitReason.Error,
    };

    /// <summary>
    /// Kills jobs: when this returns they are in neither the issued nor the running set and will never be returned,
    /// queued ones included. Deletion uses background propagation; this does not wait for the pods to die.
    /// Unknown ids are ignored.
    /// </summary>
    /// <param name="jobIds">The jobs to kill.</param>
    /// <param name="cancellationToken">Stops waiting for the delete requests (the jobs are killed regardless).</param>
    /// <returns>A task that completes when the delete requests were answered.</returns>
    public async Task KillBatchJobsAsync(IEnumerable<int> jobIds, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(jobIds);
        JobState.Effect[] effects;
        var ids = jobIds.ToArray();
        lock (_gate)
        {
            effects = Step(Lifecycle.Kill(ids, Now));
        }

        foreach (var id in ids)
        {
            _toCreate.TryRemove(id, out _);
        }

        await Task.WhenAll(Perform(effects)).WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Issued jobs not yet returned or killed (queued, running and finished-but-uncollected), from local state.</summary>
    /// <param name="cancellationToken">Unused: answered without API calls.</param>
    /// <returns>The ids, increasing, without duplicates.</returns>
    public Task<IReadOnlyList<int>> GetIssuedBatchJobIdsAsync(CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            return Task.FromResult(Lifecycle.Issued(_model));
        }
    }

    /// <summary>Jobs whose container runs, with how long it has run, from local state.</summary>
    /// <param name="cancellationToken">Unused: answered without API calls.</param>
    /// <returns>Job id to time running.</returns>
    public Task<IReadOnlyDictionary<int, TimeSpan>> GetRunningBatchJobIdsAsync(CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            IReadOnlyDictionary<int, TimeSpan> running = Lifecycle.Running(_model, Now)
                .ToDictionary(kv => kv.Key, kv => TimeSpan.FromMilliseconds(kv.Value));
            return Task.FromResult(running);
        }
    }

    /// <summary>The tail of the log of a failed job's pod, by the result's <see cref="UpdatedBatchJobInfo.BackingId"/>.</summary>
    /// <param name="backingId">The Kubernetes Job name.</param>
    /// <returns>The log tail, or null when none was kept.</returns>
    public string? GetFailureLog(string backingId) => _failureLogs.TryGetValue(backingId, out var log) ? log : null;

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
        if (Interlocked.Exchange(ref _shutDown, 1) != 0)
        {
            return;
        }

        JobState.Effect[] effects;
        lock (_gate)
        {
            effects = Step(Lifecycle.Shutdown(Now));
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        try
        {
            await Task.WhenAll(_loops).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        await Task.WhenAll(_inFlight.Keys).ConfigureAwait(false);
        await Task.WhenAll(Perform(effects)).ConfigureAwait(false);
        await WaitForPodsGoneAsync(TimeSpan.FromSeconds(60), cancellationToken).ConfigureAwait(false);
        _ended.Release();
    }

    /// <summary>
    /// Detaches from the run: stops watching and waits for calls in flight, but leaves the run's Jobs in the cluster
    /// so that a batch system created with the same <see cref="RunId"/> re-attaches to them (as a restarted workflow
    /// leader would). Call <see cref="ShutdownAsync"/> first to end the run and delete its Jobs.
    /// </summary>
    /// <returns>A task that completes when detached.</returns>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        Volatile.Write(ref _shutDown, 1);
        await _stopping.CancelAsync().ConfigureAwait(false);
        try
        {
            await Task.WhenAll(_loops).ConfigureAwait(false);
            await Task.WhenAll(_inFlight.Keys).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        _ended.Release();
        _client.Dispose();
        _stopping.Dispose();
    }

    private JobState.Effect[] Step(JobState.Event @event)
    {
        var transition = Lifecycle.Step(_model, @event);
        _model = transition.Model;
        foreach (var effect in transition.Effects)
        {
            if (effect is JobState.Effect.Ended e && Explains(e.Item1, Lifecycle.PodOf(e.pod)))
            {
                _explaining[e.Item1.backingId] = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }
        }

        return transition.Effects;
    }

    /// <summary>Whether a job's end is explained by the end of its pod's log, read before its result is handed out.</summary>
    private static bool Explains(JobState.UpdatedJob result, string? pod) =>
        pod is not null && (result.reason.IsFailed || result.reason.IsMemLimit || result.reason.IsError);

    private void Apply(JobState.Event @event)
    {
        JobState.Effect[] effects;
        lock (_gate)
        {
            effects = Step(@event);
        }

        Perform(effects);
    }

    /// <summary>Performs effects; API calls run in the background and are tracked until they finish.</summary>
    private List<Task> Perform(JobState.Effect[] effects)
    {
        var tasks = new List<Task>();
        foreach (var effect in effects)
        {
            Task? task = effect switch
            {
                JobState.Effect.Create c => CreateAsync(c.id),
                JobState.Effect.Delete d => DeleteAsync(d.id, d.name),
                JobState.Effect.Ended e => EndedAsync(e.Item1, Lifecycle.PodOf(e.pod)),
                JobState.Effect.CleanupNode n => CleanupAsync(n.node),
                _ when effect.IsDeleteAll => DeleteAllAsync(),
                _ => null,
            };
            if (task is not null && !task.IsCompleted)
            {
                _inFlight.TryAdd(task, 0);
                _ = task.ContinueWith(t => _inFlight.TryRemove(t, out _), TaskScheduler.Default);
                tasks.Add(task);
            }
        }

        return tasks;
    }

    private async Task CreateAsync(int id)
    {
        if (!_toCreate.ContainsKey(id))
        {
            return; // killed before its turn
        }

        await _creates.WaitAsync(CancellationToken.None).ConfigureAwait(false);
        try
        {
            if (!_toCreate.TryGetValue(id, out var pending))
            {
                return; // killed while waiting for a slot
            }

            V1Job manifest;
            try
            {
                manifest = _manifests.Build(
                    id, pending.Command, pending.Job, pending.Resources, pending.Request, pending.BatchEnvironment.Concat(pending.JobEnvironment), pending.Placement);
            }
            catch (ArgumentException ex)
            {
                // Everything was checked when the job was issued; should building still fail, the job ends with the
                // reason instead of staying in the queue for ever.
                LogCreateFailed(id, ex.Message);
                Apply(Lifecycle.CreateFailed(id, $"the Job's manifest could not be built: {ex.Message}", Now));
                return;
            }

            // The name is deterministic, so a create retried after an ambiguous failure ends in 409 = already created.
            await _client.BatchV1.CreateNamespacedJobAsync(manifest, Namespace, cancellationToken: _stopping.Token)
                .AllowingAlreadyDoneAsync().ConfigureAwait(false);
            Apply(Lifecycle.Created(id, Now));
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
        }
        catch (Exception ex) when (ex is KubernetesApiException or HttpOperationException or HttpRequestException or OperationCanceledException)
        {
            LogCreateFailed(id, ex.Message);
            Apply(Lifecycle.CreateFailed(id, $"the Job could not be created: {ex.Message}", Now));
        }
        finally
        {
            _toCreate.TryRemove(id, out _);
            _creates.Release();
        }
    }

    private async Task DeleteAsync(int id, string name)
    {
        try
        {
            await _client.BatchV1.DeleteNamespacedJobAsync(
                    name,
                    Namespace,
                    new V1DeleteOptions { PropagationPolicy = "Background" },
                    cancellationToken: CancellationToken.None)
                .AllowingAlreadyDoneAsync().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is KubernetesApiException or HttpOperationException or HttpRequestException or OperationCanceledException)
        {
            // Ttl-after-finished and shutdown's collection delete are the safety nets for a Job left behind.
            LogDeleteFailed(id, name, ex.Message);
        }
    }

    private async Task EndedAsync(JobState.UpdatedJob result, string? pod)
    {
        try
        {
            if (Explains(result, pod))
            {
                // Read before the result is handed out: collecting deletes the Job and its pod.
                try
                {
                    await CaptureLogAsync(result, pod!).ConfigureAwait(false);
                }
                finally
                {
                    if (_explaining.TryRemove(result.backingId, out var reading))
                    {
                        reading.TrySetResult();
                    }
                }
            }

            LogEnded(result.id, result.reason.ToString(), result.exitStatus, result.wallTime, Lifecycle.Message(result));
        }
        finally
        {
            _ended.Release();
        }
    }

    private async Task CaptureLogAsync(JobState.UpdatedJob result, string pod)
    {
        try
        {
            using var stream = await _client.CoreV1.ReadNamespacedPodLogAsync(
                pod, Namespace, container: JobManifests.ContainerName, tailLines: 50, limitBytes: 16 * 1024,
                cancellationToken: _stopping.Token).ConfigureAwait(false);
            using var reader = new StreamReader(stream);
            var log = await reader.ReadToEndAsync(_stopping.Token).ConfigureAwait(false);
            _failureLogs[result.backingId] = log;
            LogFailureLog(result.id, log);
        }
        catch (Exception ex) when (ex is KubernetesApiException or HttpOperationException or HttpRequestException or OperationCanceledException or IOException)
        {
            LogNoFailureLog(result.id, ex.Message);
        }
    }

    private async Task CleanupAsync(string node)
    {
        if (_manifests.Cleanup(node) is not { } job)
        {
            return;
        }

        try
        {
            await _client.BatchV1.CreateNamespacedJobAsync(job, Namespace, cancellationToken: CancellationToken.None)
                .AllowingAlreadyDoneAsync().ConfigureAwait(false);
            LogCleanup(node);
        }
        catch (Exception ex) when (ex is KubernetesApiException or HttpOperationException or HttpRequestException or OperationCanceledException)
        {
            LogCleanupFailed(node, ex.Message);
        }
    }

    private async Task DeleteAllAsync()
    {
        var background = new V1DeleteOptions { PropagationPolicy = "Background" };
        await _client.BatchV1.DeleteCollectionNamespacedJobAsync(
            Namespace, background, labelSelector: _manifests.JobSelector, cancellationToken: CancellationToken.None).ConfigureAwait(false);
        await _client.CoreV1.DeleteCollectionNamespacedPodAsync(
            Namespace, new V1DeleteOptions(), labelSelector: _manifests.JobSelector, cancellationToken: CancellationToken.None).ConfigureAwait(false);
    }

    private async Task WaitForPodsGoneAsync(TimeSpan deadline, CancellationToken cancellationToken)
    {
        var start = _time.GetTimestamp();
        while (_time.GetElapsedTime(start) < deadline && !cancellationToken.IsCancellationRequested)
        {
            var pods = await _client.CoreV1.ListNamespacedPodAsync(
                Namespace, labelSelector: _manifests.JobSelector, cancellationToken: cancellationToken).ConfigureAwait(false);
            if (pods.Items.Count == 0)
            {
                return;
            }

            await Task.Delay(TimeSpan.FromSeconds(1), _time, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task TickAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1), _time);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
            {
                Apply(Lifecycle.Tick(Now));
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>
    /// One list of the run's pods, then a watch from its resource version; relists after 410 Gone, rewatches after a
    /// quiet end. Pods only: a job's end is on its pod, and a Job deleted by someone else takes its pod with it. (A
    /// watch of the Jobs too would double the events to decode, and on Kubernetes 1.20 the API server closes Job
    /// watchers after a few buffered events under load, forcing relists of every Job.)
    /// </summary>
    private async Task WatchPodsAsync(CancellationToken cancellationToken)
    {
        string? resourceVersion = null;
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                resourceVersion ??= await ListPodsAsync(Now, cancellationToken).ConfigureAwait(false);

                var gone = false;
                void OnError(Exception ex)
                {
                    if (ex is KubernetesException { Status.Code: 410 })
                    {
                        gone = true;
                    }
                    else
                    {
                        LogWatchError(ex.Message);
                    }
                }

                var watch = _client.CoreV1.ListNamespacedPodWithHttpMessagesAsync(
                    Namespace, allowWatchBookmarks: true, labelSelector: _manifests.JobSelector,
                    resourceVersion: resourceVersion, timeoutSeconds: 300, watch: true, cancellationToken: cancellationToken);
#pragma warning disable CS0618 // The client's only async-enumerable watch; its replacement is not released yet.
                await foreach (var (type, pod) in watch.WatchAsync<V1Pod, V1PodList>(OnError, cancellationToken).ConfigureAwait(false))
#pragma warning restore CS0618
                {
                    resourceVersion = pod.Metadata?.ResourceVersion ?? resourceVersion;
                    OnPod(type, pod);
                }

                if (gone)
                {
                    LogRelist();
                    resourceVersion = null;
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                // Any failure: start over with a fresh list, which the core reconciles against what it knows.
                LogWatchError(ex.Message);
                resourceVersion = null;
                try
                {
                    await Task.Delay(TimeSpan.FromSeconds(1), _time, cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    private async Task<string> ListPodsAsync(long listedAt, CancellationToken cancellationToken)
    {
        var list = await _client.CoreV1.ListNamespacedPodAsync(
            Namespace, labelSelector: _manifests.JobSelector, cancellationToken: cancellationToken).ConfigureAwait(false);
        var now = Now;
        var snapshot = list.Items.Select(p => Observations.Of(p, now)).OfType<JobState.PodFacts>().ToArray();
        Apply(Lifecycle.Resynced(snapshot, listedAt, now));
        return list.Metadata.ResourceVersion;
    }

    private void OnPod(WatchEventType type, V1Pod pod)
    {
        if (type is WatchEventType.Bookmark or WatchEventType.Error || Observations.JobId(pod.Metadata) is not { } id)
        {
            return;
        }

        var now = Now;
        if (type == WatchEventType.Deleted)
        {
            // The last state of a deleted pod may carry its exit: apply it first, then the removal.
            if (Observations.Of(pod, now) is { } last)
            {
                Apply(Lifecycle.Observed(last, now));
            }

            Apply(Lifecycle.PodRemoved(id, pod.Metadata.Name, now));
        }
        else if (Observations.Of(pod, now) is { } observation)
        {
            Apply(Lifecycle.Observed(observation, now));
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Re-attached to {Count} Jobs of run {RunId}")]
    private partial void LogAdopted(int count, string runId);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Issued job {JobId} ({Name})")]
    private partial void LogIssued(int jobId, string name);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Returned job {JobId}: {Reason}, exit status {ExitStatus}")]
    private partial void LogCollected(int jobId, string reason, int exitStatus);

    [LoggerMessage(Level = LogLevel.Information, Message = "Job {JobId} ended: {Reason}, exit status {ExitStatus}, {WallTimeMs} ms; {Detail}")]
    private partial void LogEnded(int jobId, string reason, int exitStatus, long wallTimeMs, string? detail);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Job {JobId} could not be created: {Error}")]
    private partial void LogCreateFailed(int jobId, string error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Job {JobId}: deleting {Name} failed: {Error}")]
    private partial void LogDeleteFailed(int jobId, string name, string error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Job {JobId} failed; the end of its log:\n{Log}")]
    private partial void LogFailureLog(int jobId, string log);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Job {JobId}: no log kept: {Error}")]
    private partial void LogNoFailureLog(int jobId, string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "Cleaning the run's work directory on node {Node}")]
    private partial void LogCleanup(string node);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cleaning node {Node} failed: {Error}")]
    private partial void LogCleanupFailed(string node, string error);

    [LoggerMessage(Level = LogLevel.Debug, Message = "The pod watch failed: {Error}")]
    private partial void LogWatchError(string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "The pod watch expired (410 Gone): listing again")]
    private partial void LogRelist();

    /// <summary>What a job waiting for its create call keeps: its inputs, not its manifest.</summary>
    private sealed record PendingCreate(
        string Command,
        JobDescription Job,
        KubernetesResourcesView Resources,
        JobState.JobRequest Request,
        KeyValuePair<string, string>[] BatchEnvironment,
        KeyValuePair<string, string>[] JobEnvironment,
        Placement Placement);
}
