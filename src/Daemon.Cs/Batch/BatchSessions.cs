using System.Collections.Concurrent;
using HybridBatch.Daemon.Hosting;
using Microsoft.Extensions.Logging;

namespace HybridBatch.Daemon.Batch;

/// <summary>What a client may choose for its session; the daemon's own options fill in the rest.</summary>
/// <param name="RunId">Re-attach to this run's jobs (its id from an earlier session); null: a new run.</param>
/// <param name="Image">The image jobs run in (Toil's appliance image); null: the daemon's.</param>
/// <param name="HostPath">Toil's <c>--kubernetesHostPath</c>.</param>
/// <param name="Owner">Toil's <c>--kubernetesOwner</c>.</param>
/// <param name="ServiceAccount">Toil's <c>--kubernetesServiceAccount</c>.</param>
/// <param name="PodTimeoutSeconds">Toil's <c>--kubernetesPodTimeout</c>.</param>
/// <param name="MaxJobs">Toil's <c>--maxJobs</c>.</param>
/// <param name="MaxCores">Toil's <c>--maxCores</c>.</param>
/// <param name="MaxMemory">Toil's <c>--maxMemory</c>, bytes.</param>
/// <param name="MaxDisk">Toil's <c>--maxDisk</c>, bytes.</param>
/// <param name="WorkDir">The jobs' work directory inside their containers.</param>
/// <param name="SharedPaths">Node directories every job mounts at the same path (a Toil file job store); null: the daemon's.</param>
internal sealed record SessionRequest(
    string? RunId = null,
    string? Image = null,
    string? HostPath = null,
    string? Owner = null,
    string? ServiceAccount = null,
    double? PodTimeoutSeconds = null,
    int? MaxJobs = null,
    double? MaxCores = null,
    long? MaxMemory = null,
    long? MaxDisk = null,
    string? WorkDir = null,
    IReadOnlyList<string>? SharedPaths = null)
{
    /// <summary>The daemon's options with the client's choices over them.</summary>
    public KubernetesBatchSystemOptions Apply(KubernetesBatchSystemOptions daemon, string runId) => daemon with
    {
        RunId = runId,
        Image = Image ?? daemon.Image,
        HostPath = HostPath ?? daemon.HostPath,
        Owner = Owner ?? daemon.Owner,
        ServiceAccount = ServiceAccount ?? daemon.ServiceAccount,
        PodTimeout = PodTimeoutSeconds is { } seconds ? TimeSpan.FromSeconds(seconds) : daemon.PodTimeout,
        MaxJobs = MaxJobs ?? daemon.MaxJobs,
        MaxCores = MaxCores ?? daemon.MaxCores,
        MaxMemory = MaxMemory ?? daemon.MaxMemory,
        MaxDisk = MaxDisk ?? daemon.MaxDisk,
        WorkDir = WorkDir ?? daemon.WorkDir,
        SharedPaths = SharedPaths ?? daemon.SharedPaths,
    };
}

/// <summary>A session's batch system was refused: its options are invalid or the cluster cannot be used.</summary>
internal sealed class SessionRefusedException(string message, bool clientError, Exception? inner = null) : Exception(message, inner)
{
    /// <summary>True when the request was at fault (an option), false when the cluster was (unreachable, forbidden).</summary>
    public bool ClientError { get; } = clientError;
}

/// <summary>
/// The batch systems of the daemon's clients (a Toil leader each), by run id: one <see cref="KubernetesBatchSystem"/>
/// per session, held while the daemon runs. Disposing detaches them all (their jobs keep running; a session opened
/// again with the same run id re-attaches); ending a session shuts its batch system down, deleting its jobs.
/// </summary>
internal sealed partial class BatchSessions(
    KubernetesBatchSystemOptions daemonOptions, ILoggerFactory loggerFactory, TimeProvider time, DaemonMetrics metrics) : IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, Lazy<Task<KubernetesBatchSystem>>> _sessions = new(StringComparer.Ordinal);
    private readonly ILogger _logger = loggerFactory.CreateLogger<BatchSessions>();
    private readonly SemaphoreSlim _resolve = new(1, 1);
    private KubernetesBatchSystemOptions? _resolved;

    /// <summary>Opens a session, or returns the open one of the same run.</summary>
    /// <exception cref="SessionRefusedException">An option is invalid, or the cluster cannot be reached or used.</exception>
    public async Task<KubernetesBatchSystem> OpenAsync(SessionRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var runId = request.RunId ?? "toil" + Guid.NewGuid().ToString("N")[..12];
        var options = request.Apply(daemonOptions, runId);
        if (options.Validate() is { Count: > 0 } problems)
        {
            throw new SessionRefusedException(string.Join("; ", problems), clientError: true);
        }

        var opening = _sessions.GetOrAdd(runId, _ => new Lazy<Task<KubernetesBatchSystem>>(() => CreateAsync(options, CancellationToken.None)));
        try
        {
            return await opening.Value.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (SessionRefusedException)
        {
            // A failed open is not a session: the next attempt tries again.
            _sessions.TryRemove(new KeyValuePair<string, Lazy<Task<KubernetesBatchSystem>>>(runId, opening));
            throw;
        }
    }

    /// <summary>The open session of a run, or null.</summary>
    public KubernetesBatchSystem? Find(string runId) =>
        _sessions.TryGetValue(runId, out var opening) && opening.Value.IsCompletedSuccessfully ? opening.Value.Result : null;

    /// <summary>Ends a session: shuts its batch system down (deleting its jobs) or, with <paramref name="detach"/>, only lets go of it.</summary>
    /// <returns>False when there is no such session.</returns>
    public async Task<bool> CloseAsync(string runId, bool detach, CancellationToken cancellationToken)
    {
        if (Find(runId) is not { } system || !_sessions.TryRemove(runId, out _))
        {
            return false;
        }

        if (!detach)
        {
            await system.ShutdownAsync(cancellationToken).ConfigureAwait(false);
        }

        await system.DisposeAsync().ConfigureAwait(false);
        LogClosed(runId, detach ? "detached" : "shut down");
        return true;
    }

    private async Task<KubernetesBatchSystem> CreateAsync(KubernetesBatchSystemOptions options, CancellationToken cancellationToken)
    {
        KubernetesBatchSystemOptions resolved;
        try
        {
            resolved = await ResolveAsync(options, cancellationToken).ConfigureAwait(false);
            var system = await KubernetesBatchSystem.CreateAsync(resolved, loggerFactory, time, metrics, cancellationToken).ConfigureAwait(false);
            LogOpened(system.RunId, system.Namespace, system.Owner);
            return system;
        }
        catch (ArgumentException ex)
        {
            throw new SessionRefusedException(ex.Message, clientError: true, ex);
        }
        catch (Exception ex) when (ex is InvalidOperationException or k8s.Exceptions.KubeConfigException or HttpRequestException)
        {
            throw new SessionRefusedException($"the daemon cannot use its cluster: {ex.Message}", clientError: false, ex);
        }
    }

    // Where the cluster is, found once: the kubeconfig the daemon was given, else the embedded local cluster.
    private async Task<KubernetesBatchSystemOptions> ResolveAsync(KubernetesBatchSystemOptions options, CancellationToken cancellationToken)
    {
        await _resolve.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            _resolved ??= await ClusterConnection.ResolveAsync(daemonOptions, _logger, cancellationToken).ConfigureAwait(false);
            return options with { Kubeconfig = _resolved.Kubeconfig };
        }
        finally
        {
            _resolve.Release();
        }
    }

    /// <summary>Detaches every session: their jobs keep running, and a session opened with the same run id re-attaches.</summary>
    public async ValueTask DisposeAsync()
    {
        foreach (var (_, opening) in _sessions)
        {
            if (opening.IsValueCreated && opening.Value.IsCompletedSuccessfully)
            {
                await opening.Value.Result.DisposeAsync().ConfigureAwait(false);
            }
        }

        _sessions.Clear();
        _resolve.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Session {RunId} opened: namespace {Namespace}, owner {Owner}")]
    private partial void LogOpened(string runId, string @namespace, string owner);

    [LoggerMessage(Level = LogLevel.Information, Message = "Session {RunId} {How}")]
    private partial void LogClosed(string runId, string how);
}
