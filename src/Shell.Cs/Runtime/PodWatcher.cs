using HybridBatch.Core;
using HybridBatch.Core.Api;
using HybridBatch.Translation;
using k8s;
using k8s.Models;
using Microsoft.Extensions.Logging;

namespace HybridBatch.Runtime;

/// <summary>
/// Turns one list-then-watch of the run's pods into the core's events, and nothing else: a list becomes a resync, each
/// added or modified pod an observation, each deleted pod its last observation and its removal. Relists after 410
/// Gone, rewatches after a quiet end, and starts over with a fresh list after any failure.
/// </summary>
/// <remarks>
/// Pods only: a job's end is on its pod, and a Job deleted by someone else takes its pod with it. (A watch of the Jobs
/// too would double the events to decode, and on Kubernetes 1.20 the API server closes Job watchers after a few
/// buffered events under load, forcing relists of every Job.)
/// </remarks>
/// <param name="client">The resilient client.</param>
/// <param name="namespace">Where the run's pods are.</param>
/// <param name="selector">The label selector of the run's job pods.</param>
/// <param name="time">The clock events are stamped with.</param>
/// <param name="logger">Where watch failures are logged.</param>
/// <param name="emit">Where the events go.</param>
internal sealed partial class PodWatcher(
    IKubernetes client, string @namespace, string selector, TimeProvider time, ILogger logger, Action<JobState.Event> emit)
{
    private long Now => time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>Lists and watches until cancelled.</summary>
    /// <param name="cancellationToken">Stops watching.</param>
    /// <returns>A task that completes when cancelled.</returns>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        string? resourceVersion = null;
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                resourceVersion ??= await ListAsync(Now, cancellationToken).ConfigureAwait(false);

                var gone = false;
                void OnError(Exception ex)
                {
                    if (ex is KubernetesException { Status.Code: 410 })
                    {
                        gone = true;
                    }
                    else
                    {
                        LogWatchError(logger, ex.Message);
                    }
                }

                var watch = client.CoreV1.ListNamespacedPodWithHttpMessagesAsync(
                    @namespace, allowWatchBookmarks: true, labelSelector: selector,
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
                    LogRelist(logger);
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
                LogWatchError(logger, ex.Message);
                resourceVersion = null;
                try
                {
                    await Task.Delay(TimeSpan.FromSeconds(1), time, cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    private async Task<string> ListAsync(long listedAt, CancellationToken cancellationToken)
    {
        var list = await client.CoreV1.ListNamespacedPodAsync(
            @namespace, labelSelector: selector, cancellationToken: cancellationToken).ConfigureAwait(false);
        var now = Now;
        var snapshot = list.Items.Select(p => Observations.Of(p, now)).OfType<JobState.PodFacts>().ToArray();
        emit(Events.Resynced(snapshot, listedAt, now));
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
                emit(Events.Observed(last, now));
            }

            emit(Events.PodRemoved(id, pod.Metadata.Name, now));
        }
        else if (Observations.Of(pod, now) is { } observation)
        {
            emit(Events.Observed(observation, now));
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "The pod watch failed: {Error}")]
    private static partial void LogWatchError(ILogger logger, string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "The pod watch expired (410 Gone): listing again")]
    private static partial void LogRelist(ILogger logger);
}
