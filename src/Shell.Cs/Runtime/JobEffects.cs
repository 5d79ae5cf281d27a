using HybridBatch.Core;
using HybridBatch.Core.Api;
using HybridBatch.Resilience;
using HybridBatch.Translation;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Microsoft.Extensions.Logging;

namespace HybridBatch.Runtime;

/// <summary>
/// The Kubernetes calls the core's effects stand for: create a job's Job or bare pod, delete it, keep a failed job's
/// log, clean a node's work directory, delete the whole run. Each handler catches the failures a Kubernetes call has
/// (one filter, <see cref="IsKubernetesFailure"/>) and reports the outcome back as an event where the core needs it.
/// </summary>
/// <param name="client">The resilient client.</param>
/// <param name="namespace">Where the jobs run.</param>
/// <param name="manifests">The run's Kubernetes objects.</param>
/// <param name="maxCreatesInFlight">How many create calls may be under way at once.</param>
/// <param name="failureLogs">Where failed jobs' logs are kept.</param>
/// <param name="logger">Where outcomes are logged.</param>
/// <param name="runtime">Where outcomes go back to as events.</param>
internal sealed partial class JobEffects(
    IKubernetes client, string @namespace, JobManifests manifests, int maxCreatesInFlight, FailureLogs failureLogs, ILogger logger, JobRuntime runtime)
    : IJobEffects
{
    private readonly SemaphoreSlim _creates = new(maxCreatesInFlight);

    /// <summary>The failures of a Kubernetes call that end one effect, not the batch system.</summary>
    /// <param name="exception">What the call threw.</param>
    /// <returns>True for the resilience pipeline's verdict, the client's HTTP failures and cancellations.</returns>
    public static bool IsKubernetesFailure(Exception exception) =>
        exception is KubernetesApiException or HttpOperationException or HttpRequestException or OperationCanceledException;

    /// <inheritdoc/>
    public async Task Create(PreparedJob job)
    {
        // At most so many create calls at once; the others wait here, in the order the core launched them.
        await _creates.WaitAsync(CancellationToken.None).ConfigureAwait(false);
        try
        {
            var manifest = Jobs.Manifest(job);
            if (runtime.IsIssued(manifest.Id))
            {
                await CreateAsync(job, manifest).ConfigureAwait(false);
            }
        }
        finally
        {
            _creates.Release();
        }
    }

    private async Task CreateAsync(PreparedJob prepared, JobManifest job)
    {
        try
        {
            // The name is deterministic, so a create retried after an ambiguous failure ends in 409 = already created.
            var created = manifests.Kind == KubernetesObjectKind.Pod
                ? client.CoreV1.CreateNamespacedPodAsync(manifests.BuildPod(job), @namespace, cancellationToken: runtime.Stopping)
                : (Task)client.BatchV1.CreateNamespacedJobAsync(manifests.Build(job), @namespace, cancellationToken: runtime.Stopping);
            await created.AllowingAlreadyDoneAsync().ConfigureAwait(false);
            runtime.Apply(Events.Created(job.Id, runtime.Now));
        }
        catch (OperationCanceledException) when (runtime.Stopping.IsCancellationRequested)
        {
        }
        catch (Exception ex) when (IsKubernetesFailure(ex))
        {
            // The core tells a quota's refusal (the job waits for room) from a failure (the job ends with Error).
            var failed = Events.CreateFailed(prepared, (ex as KubernetesApiException)?.CoreDecision, $"the {manifests.Noun} could not be created: {ex.Message}", runtime.Now);
            if (failed.IsQuotaRefused)
            {
                LogQuotaRefused(logger, job.Id, ex.Message);
            }
            else
            {
                LogCreateFailed(logger, job.Id, ex.Message);
            }

            runtime.Apply(failed);
        }
    }

    /// <inheritdoc/>
    public async Task Delete(int jobId, string name)
    {
        try
        {
            var deleted = manifests.Kind == KubernetesObjectKind.Pod
                ? client.CoreV1.DeleteNamespacedPodAsync(name, @namespace, cancellationToken: CancellationToken.None)
                : (Task)client.BatchV1.DeleteNamespacedJobAsync(
                    name,
                    @namespace,
                    new V1DeleteOptions { PropagationPolicy = "Background" },
                    cancellationToken: CancellationToken.None);
            await deleted.AllowingAlreadyDoneAsync().ConfigureAwait(false);
        }
        catch (Exception ex) when (IsKubernetesFailure(ex))
        {
            // Shutdown's collection delete (and for a Job its ttl-after-finished) is the safety net for one left behind.
            LogDeleteFailed(logger, jobId, name, ex.Message);
        }
    }

    /// <inheritdoc/>
    public async Task Ended(JobResult result, string? pod)
    {
        try
        {
            if (pod is not null)
            {
                // The core names a pod for a failure only; its result is held back until this read is over.
                try
                {
                    await CaptureLogAsync(result, pod).ConfigureAwait(false);
                }
                finally
                {
                    failureLogs.Done(result.BackingId);
                }
            }

            LogEnded(logger, result.JobId, result.Reason.ToString(), result.ExitStatus, result.WallTimeMs, result.Message);
        }
        finally
        {
            runtime.SignalEnded();
        }
    }

    private async Task CaptureLogAsync(JobResult result, string pod)
    {
        try
        {
            using var stream = await client.CoreV1.ReadNamespacedPodLogAsync(
                pod, @namespace, container: JobManifests.ContainerName, tailLines: 50, limitBytes: 16 * 1024,
                cancellationToken: runtime.Stopping).ConfigureAwait(false);
            using var reader = new StreamReader(stream);
            var log = await reader.ReadToEndAsync(runtime.Stopping).ConfigureAwait(false);
            failureLogs.Add(result.BackingId, log);
            LogFailureLog(logger, result.JobId, log);
        }
        catch (Exception ex) when (IsKubernetesFailure(ex) || ex is IOException)
        {
            LogNoFailureLog(logger, result.JobId, ex.Message);
        }
    }

    /// <inheritdoc/>
    public async Task CleanupNode(string node)
    {
        if (manifests.Cleanup(node) is not { } job)
        {
            return;
        }

        try
        {
            await client.BatchV1.CreateNamespacedJobAsync(job, @namespace, cancellationToken: CancellationToken.None)
                .AllowingAlreadyDoneAsync().ConfigureAwait(false);
            LogCleanup(logger, node);
        }
        catch (Exception ex) when (IsKubernetesFailure(ex))
        {
            LogCleanupFailed(logger, node, ex.Message);
        }
    }

    /// <inheritdoc/>
    public async Task DeleteAll()
    {
        // Bare pods have no Job: the run's pods are all there is (its node cleanup Jobs carry no job id, and go by their TTL).
        if (manifests.Kind == KubernetesObjectKind.Job)
        {
            var background = new V1DeleteOptions { PropagationPolicy = "Background" };
            await client.BatchV1.DeleteCollectionNamespacedJobAsync(
                @namespace, background, labelSelector: manifests.JobSelector, cancellationToken: CancellationToken.None).ConfigureAwait(false);
        }

        await client.CoreV1.DeleteCollectionNamespacedPodAsync(
            @namespace, new V1DeleteOptions(), labelSelector: manifests.JobSelector, cancellationToken: CancellationToken.None).ConfigureAwait(false);
    }

    /// <summary>Waits, up to <paramref name="deadline"/>, until the run has no pods left.</summary>
    /// <param name="deadline">How long to wait at most.</param>
    /// <param name="time">The clock.</param>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>A task that completes when the pods are gone or the time is up.</returns>
    public async Task WaitForPodsGoneAsync(TimeSpan deadline, TimeProvider time, CancellationToken cancellationToken)
    {
        var start = time.GetTimestamp();
        while (time.GetElapsedTime(start) < deadline && !cancellationToken.IsCancellationRequested)
        {
            var pods = await client.CoreV1.ListNamespacedPodAsync(
                @namespace, labelSelector: manifests.JobSelector, cancellationToken: cancellationToken).ConfigureAwait(false);
            if (pods.Items.Count == 0)
            {
                return;
            }

            await Task.Delay(TimeSpan.FromSeconds(1), time, cancellationToken).ConfigureAwait(false);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Job {JobId} ended: {Reason}, exit status {ExitStatus}, {WallTimeMs} ms; {Detail}")]
    private static partial void LogEnded(ILogger logger, int jobId, string reason, int exitStatus, long wallTimeMs, string? detail);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Job {JobId} could not be created: {Error}")]
    private static partial void LogCreateFailed(ILogger logger, int jobId, string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "Job {JobId} waits in the queue for room in the namespace's quota: {Refusal}")]
    private static partial void LogQuotaRefused(ILogger logger, int jobId, string refusal);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Job {JobId}: deleting {Name} failed: {Error}")]
    private static partial void LogDeleteFailed(ILogger logger, int jobId, string name, string error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Job {JobId} failed; the end of its log:\n{Log}")]
    private static partial void LogFailureLog(ILogger logger, int jobId, string log);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Job {JobId}: no log kept: {Error}")]
    private static partial void LogNoFailureLog(ILogger logger, int jobId, string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "Cleaning the run's work directory on node {Node}")]
    private static partial void LogCleanup(ILogger logger, string node);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cleaning node {Node} failed: {Error}")]
    private static partial void LogCleanupFailed(ILogger logger, string node, string error);
}
