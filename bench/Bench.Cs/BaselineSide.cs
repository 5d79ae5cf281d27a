using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using k8s;
using k8s.Autorest;
using k8s.Models;

namespace HybridBatch.Bench;

/// <summary>
/// The limit: a raw client that creates the same Jobs — or, for a pod-mode scenario, the same bare pods — as fast as
/// allowed (the same bound on creates in flight as the batch system), learns completions from one pod watch and
/// deletes each Job or pod once its pod has ended. No bookkeeping. One loop for both kinds of object: only the create,
/// the delete and which job a pod belongs to differ.
/// </summary>
internal static class BaselineSide
{
    private const string RunLabel = "bench.hybridbatch.io/run";
    private const int InFlight = 32;

    public static async Task<SideResult> RunAsync(Cluster cluster, IKubernetes admin, Scenario scenario, CancellationToken cancellationToken)
    {
        var result = new SideResult();
        var handler = new CountingHandler();
        using var client = Cluster.Raw(cluster.Kubeconfig, handler);
        var runId = Guid.NewGuid().ToString("N")[..10];
        var selector = $"{RunLabel}={runId}";
        var done = new ConcurrentDictionary<string, byte>(StringComparer.Ordinal);
        var allDone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var deletes = new ConcurrentBag<Task>();
        using var slots = new SemaphoreSlim(InFlight);
        using var deleteSlots = new SemaphoreSlim(InFlight);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var detect = new ConcurrentQueue<double>();
        var notFinished = 0;

        // The same side watch the batch system's run has (there it dates the exits), so both sides' CPU carries it.
        await using var sideWatch = new PodExitRecorder(admin, selector);
        await sideWatch.Ready.WaitAsync(TimeSpan.FromSeconds(30), cancellationToken).ConfigureAwait(false);
        var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
        var list = await client.CoreV1.ListNamespacedPodAsync(Cluster.Namespace, labelSelector: selector, cancellationToken: cancellationToken).ConfigureAwait(false);
        var watch = Task.Run(
            async () =>
            {
                var version = list.Metadata.ResourceVersion;
                while (!stop.IsCancellationRequested)
                {
                    try
                    {
                        var stream = client.CoreV1.ListNamespacedPodWithHttpMessagesAsync(
                            Cluster.Namespace, labelSelector: selector, resourceVersion: version, watch: true, timeoutSeconds: 600,
                            cancellationToken: stop.Token);
#pragma warning disable CS0618 // The client's async-enumerable watch.
                        await foreach (var (_, pod) in stream.WatchAsync<V1Pod, V1PodList>(cancellationToken: stop.Token).ConfigureAwait(false))
#pragma warning restore CS0618
                        {
                            version = pod.Metadata?.ResourceVersion ?? version;
                            if (pod.Status?.Phase is not ("Succeeded" or "Failed") || JobShape.JobOf(pod) is not { } job)
                            {
                                continue;
                            }

                            if (!done.TryAdd(job, 0))
                            {
                                continue;
                            }

                            var seen = DateTimeOffset.UtcNow;
                            if (PodExitRecorder.ExitOf(pod) is { } exit)
                            {
                                detect.Enqueue((seen - exit).TotalMilliseconds);
                            }

                            if (pod.Status.Phase != "Succeeded")
                            {
                                Interlocked.Increment(ref notFinished);
                            }

                            deletes.Add(DeleteAsync(client, scenario.ObjectKind, job, deleteSlots, cancellationToken));
                            if (done.Count >= scenario.Jobs)
                            {
                                allDone.TrySetResult();
                            }
                        }
                    }
                    catch (OperationCanceledException) when (stop.IsCancellationRequested)
                    {
                        return;
                    }
                    catch (Exception ex) when (ex is HttpOperationException or HttpRequestException or KubernetesException or IOException)
                    {
                        await Task.Delay(200, CancellationToken.None).ConfigureAwait(false);
                    }
                }
            },
            CancellationToken.None);

        var clock = Stopwatch.StartNew();
        result.Start = Stopwatch.GetTimestamp();
        var creates = new List<Task>(scenario.Jobs);
        for (var i = 0; i < scenario.Jobs; i++)
        {
            var name = string.Create(CultureInfo.InvariantCulture, $"bl-{runId}-{i}");
            await slots.WaitAsync(cancellationToken).ConfigureAwait(false);
            creates.Add(CreateAsync(client, scenario, name, runId, i, slots, result, cancellationToken));
        }

        await Task.WhenAll(creates).ConfigureAwait(false);
        var deadline = TimeSpan.FromSeconds(180 + scenario.Jobs * 0.5);
        var remaining = deadline - clock.Elapsed;
        if (remaining > TimeSpan.Zero)
        {
            await Task.WhenAny(allDone.Task, Task.Delay(remaining, cancellationToken)).ConfigureAwait(false);
        }

        result.ElapsedS = clock.Elapsed.TotalSeconds;
        result.Returned = done.Count;
        result.NotFinished = notFinished;
        result.DetectMs.AddRange(detect);
        await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken).ConfigureAwait(false);
        result.SideWatchMs.AddRange(sideWatch.DeliveryMs(done.Keys));
        result.CpuS = (Process.GetCurrentProcess().TotalProcessorTime - cpuBefore).TotalSeconds;
        await Task.WhenAll(deletes).ConfigureAwait(false);
        await stop.CancelAsync().ConfigureAwait(false);
        await watch.ConfigureAwait(false);
        result.ByVerb = handler.Snapshot().ToDictionary(kv => kv.Key + " (http)", kv => kv.Value);
        result.Requests = handler.Total;
        await Cluster.DrainAsync(admin, selector, TimeSpan.FromSeconds(180), cancellationToken).ConfigureAwait(false);
        return result;
    }

    private static async Task CreateAsync(
        IKubernetes client, Scenario scenario, string name, string runId, int index, SemaphoreSlim slots, SideResult result, CancellationToken cancellationToken)
    {
        var start = Stopwatch.GetTimestamp();
        try
        {
            // The manifest is built when the call starts, as the batch system does.
            if (scenario.PodMode)
            {
                var pod = JobShape.BaselinePod(name, RunLabel, runId, index, scenario.Command, scenario.OnFakeNodes);
                await Cluster.Retry(() => client.CoreV1.CreateNamespacedPodAsync(pod, Cluster.Namespace, cancellationToken: cancellationToken), cancellationToken, conflictIsDone: true)
                    .ConfigureAwait(false);
            }
            else
            {
                var job = JobShape.BaselineJob(name, RunLabel, runId, index, scenario.Command, scenario.OnFakeNodes);
                await Cluster.Retry(() => client.BatchV1.CreateNamespacedJobAsync(job, Cluster.Namespace, cancellationToken: cancellationToken), cancellationToken, conflictIsDone: true)
                    .ConfigureAwait(false);
            }
        }
        finally
        {
            slots.Release();
        }

        lock (result.IssueMs)
        {
            result.IssueMs.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
            result.FirstCreateMs ??= Stopwatch.GetElapsedTime(result.Start).TotalMilliseconds;
        }
    }

    private static async Task DeleteAsync(IKubernetes client, KubernetesObjectKind kind, string name, SemaphoreSlim slots, CancellationToken cancellationToken)
    {
        await slots.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (kind == KubernetesObjectKind.Pod)
            {
                await Cluster.Retry(() => client.CoreV1.DeleteNamespacedPodAsync(name, Cluster.Namespace, cancellationToken: cancellationToken), cancellationToken, notFoundIsDone: true)
                    .ConfigureAwait(false);
            }
            else
            {
                await Cluster.Retry(
                        () => client.BatchV1.DeleteNamespacedJobAsync(name, Cluster.Namespace, new V1DeleteOptions { PropagationPolicy = "Background" }, cancellationToken: cancellationToken),
                        cancellationToken,
                        notFoundIsDone: true)
                    .ConfigureAwait(false);
            }
        }
        finally
        {
            slots.Release();
        }
    }
}
