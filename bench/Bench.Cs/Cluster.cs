using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using k8s;
using k8s.Autorest;
using k8s.Models;

namespace HybridBatch.Bench;

/// <summary>Where the local cluster is and how to reach it.</summary>
internal sealed partial class Cluster
{
    public const string Namespace = "hybridbatch";
    public const string FakeNodeLabel = "hybridbatch.io/fake-node";

    public Cluster(string repoRoot)
    {
        RepoRoot = repoRoot;
        Kubeconfig = Environment.GetEnvironmentVariable("HYBRIDBATCH_KUBECONFIG") ?? Ask("kubeconfig");
        AdminKubeconfig = Environment.GetEnvironmentVariable("HYBRIDBATCH_ADMIN_KUBECONFIG") ?? Ask("kubeconfig", "--admin");
    }

    public string RepoRoot { get; }

    /// <summary>The least-privileged kubeconfig the product uses.</summary>
    public string Kubeconfig { get; }

    /// <summary>The admin kubeconfig: fake nodes, pod status and clean-up.</summary>
    public string AdminKubeconfig { get; }

    private string Ask(params string[] args)
    {
        var info = new ProcessStartInfo(Path.Combine(RepoRoot, "cluster", "local-cluster")) { RedirectStandardOutput = true };
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        using var p = Process.Start(info)!;
        var output = p.StandardOutput.ReadToEnd().Trim();
        p.WaitForExit();
        return output;
    }

    /// <summary>A raw client with the given handlers and no rate limit: what the baseline and the tools use.</summary>
    public static IKubernetes Raw(string kubeconfig, params DelegatingHandler[] handlers)
    {
        var config = KubernetesClientConfiguration.BuildConfigFromConfigFile(kubeconfig);
        config.HttpClientTimeout = Timeout.InfiniteTimeSpan;
        return new Kubernetes(config, handlers);
    }

    /// <summary>Calls the API again after 429, 5xx and transport failures, honouring Retry-After.</summary>
    public static async Task<T?> Retry<T>(Func<Task<T>> call, CancellationToken cancellationToken, bool notFoundIsDone = false, bool conflictIsDone = false)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await call().ConfigureAwait(false);
            }
            catch (HttpOperationException ex) when (notFoundIsDone && ex.Response.StatusCode == HttpStatusCode.NotFound)
            {
                return default;
            }
            catch (HttpOperationException ex) when (conflictIsDone && ex.Response.StatusCode == HttpStatusCode.Conflict)
            {
                return default;
            }
            catch (HttpOperationException ex) when (attempt < 30 && ((int)ex.Response.StatusCode == 429 || (int)ex.Response.StatusCode >= 500))
            {
                var after = ex.Response.Headers.TryGetValue("Retry-After", out var values)
                    && int.TryParse(values.FirstOrDefault(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var seconds)
                        ? TimeSpan.FromSeconds(seconds)
                        : TimeSpan.FromMilliseconds(100 * attempt);
                await Task.Delay(after, cancellationToken).ConfigureAwait(false);
            }
            catch (HttpRequestException) when (attempt < 30)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(200 * attempt), cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Waits until no pod and no Job carries the label selector, deleting them as admin if they linger.</summary>
    public static async Task DrainAsync(IKubernetes admin, string selector, TimeSpan deadline, CancellationToken cancellationToken)
    {
        var watch = Stopwatch.StartNew();
        var forced = false;
        while (watch.Elapsed < deadline)
        {
            var pods = await admin.CoreV1.ListNamespacedPodAsync(Namespace, labelSelector: selector, cancellationToken: cancellationToken).ConfigureAwait(false);
            var jobs = await admin.BatchV1.ListNamespacedJobAsync(Namespace, labelSelector: selector, cancellationToken: cancellationToken).ConfigureAwait(false);
            if (pods.Items.Count == 0 && jobs.Items.Count == 0)
            {
                return;
            }

            if (!forced && watch.Elapsed > deadline / 2)
            {
                forced = true;
                Console.Error.WriteLine($"  drain: {jobs.Items.Count} Jobs and {pods.Items.Count} pods left for {selector}; deleting them");
                await admin.BatchV1.DeleteCollectionNamespacedJobAsync(Namespace, new V1DeleteOptions { PropagationPolicy = "Background" }, labelSelector: selector, cancellationToken: cancellationToken).ConfigureAwait(false);
                await admin.CoreV1.DeleteCollectionNamespacedPodAsync(Namespace, new V1DeleteOptions { GracePeriodSeconds = 0 }, labelSelector: selector, cancellationToken: cancellationToken).ConfigureAwait(false);
            }

            await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken).ConfigureAwait(false);
        }

        Console.Error.WriteLine($"  drain: objects of {selector} still present after {deadline.TotalSeconds} s");
    }

    /// <summary>The cluster's throttling settings, read from the running control plane, else from cluster/lib.</summary>
    public Dictionary<string, string> Settings()
    {
        var settings = new Dictionary<string, string>(StringComparer.Ordinal);
        var interesting = InterestingFlag();
        foreach (var dir in Directory.EnumerateDirectories("/proc").Where(d => char.IsDigit(Path.GetFileName(d)[0])))
        {
            string[] args;
            try
            {
                args = File.ReadAllText(Path.Combine(dir, "cmdline")).Split('\0', StringSplitOptions.RemoveEmptyEntries);
            }
            catch (IOException)
            {
                continue;
            }
            catch (UnauthorizedAccessException)
            {
                continue;
            }

            if (args.Length == 0)
            {
                continue;
            }

            var exe = Path.GetFileName(args[0]);
            if (exe is not ("kube-apiserver" or "kube-controller-manager" or "kube-scheduler" or "kubelet"))
            {
                continue;
            }

            foreach (var arg in args.Skip(1).Where(a => interesting.IsMatch(a)))
            {
                var eq = arg.IndexOf('=', StringComparison.Ordinal);
                settings[$"{exe} {(eq > 0 ? arg[..eq] : arg)}"] = eq > 0 ? arg[(eq + 1)..] : "true";
            }

            if (exe == "kubelet" && args.SkipWhile(a => !a.StartsWith("--config", StringComparison.Ordinal)).FirstOrDefault() is { } config)
            {
                var path = config.Contains('=', StringComparison.Ordinal) ? config[(config.IndexOf('=', StringComparison.Ordinal) + 1)..]
                    : args.SkipWhile(a => a != "--config").Skip(1).FirstOrDefault();
                if (path is not null && File.Exists(path))
                {
                    foreach (var line in File.ReadAllLines(path))
                    {
                        var m = KubeletSetting().Match(line);
                        if (m.Success)
                        {
                            settings[$"kubelet {m.Groups[1].Value}"] = m.Groups[2].Value.Trim();
                        }
                    }
                }
            }
        }

        if (settings.Count == 0)
        {
            // Not running: what cluster/lib configures.
            var text = File.ReadAllText(Path.Combine(RepoRoot, "cluster", "lib", "components.sh"));
            foreach (Match m in Flag().Matches(text))
            {
                settings[$"configured {m.Groups[1].Value}"] = m.Groups[2].Value;
            }

            foreach (Match m in KubeletSetting().Matches(text))
            {
                settings[$"kubelet {m.Groups[1].Value}"] = m.Groups[2].Value.Trim();
            }
        }

        settings["source"] = settings.Keys.Any(k => k.StartsWith("kube", StringComparison.Ordinal)) ? "running control plane" : "cluster/lib/components.sh";
        return settings;
    }

    [GeneratedRegex("qps|burst|inflight|feature-gates|grace-period|eviction-timeout|toleration-seconds|percentage|concurrent", RegexOptions.IgnoreCase)]
    private static partial Regex InterestingFlag();

    [GeneratedRegex(@"(--[a-z-]*(?:qps|burst|inflight|feature-gates|grace-period|eviction-timeout)[a-z-]*)=(\S+)")]
    private static partial Regex Flag();

    [GeneratedRegex(@"^\s*(kubeAPIQPS|kubeAPIBurst|maxPods|eventRecordQPS|registryPullQPS|serializeImagePulls|syncFrequency|nodeStatusUpdateFrequency):\s*(\S+)", RegexOptions.Multiline)]
    private static partial Regex KubeletSetting();
}

/// <summary>When each pod's container finished, as the pod status says; watched on a client of its own.</summary>
internal sealed class PodExitRecorder : IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, DateTimeOffset> _exits = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, DateTimeOffset> _seen = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    public PodExitRecorder(IKubernetes client, string selector)
    {
        _loop = Task.Run(() => RunAsync(client, selector, _stop.Token));
    }

    /// <summary>Exit time by Job name (by pod name for bare pods).</summary>
    public IReadOnlyDictionary<string, DateTimeOffset> Exits => _exits;

    /// <summary>
    /// When this watch first saw each exit, by the same names: how late the API server delivers a pod's end to a plain
    /// watcher that only records it, beside the side under test in the same process.
    /// </summary>
    public IReadOnlyDictionary<string, DateTimeOffset> Seen => _seen;

    /// <summary>Exit → seen by this watch, in ms, for the given jobs.</summary>
    public IEnumerable<double> DeliveryMs(IEnumerable<string> jobs) =>
        jobs.Where(j => _exits.ContainsKey(j) && _seen.ContainsKey(j)).Select(j => (_seen[j] - _exits[j]).TotalMilliseconds);

    public Task Ready => _ready.Task;

    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private async Task RunAsync(IKubernetes client, string selector, CancellationToken cancellationToken)
    {
        string? version = null;
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                if (version is null)
                {
                    var list = await client.CoreV1.ListNamespacedPodAsync(Cluster.Namespace, labelSelector: selector, cancellationToken: cancellationToken).ConfigureAwait(false);
                    foreach (var pod in list.Items)
                    {
                        Record(pod);
                    }

                    version = list.Metadata.ResourceVersion;
                    _ready.TrySetResult();
                }

                var watch = client.CoreV1.ListNamespacedPodWithHttpMessagesAsync(
                    Cluster.Namespace, labelSelector: selector, resourceVersion: version, watch: true, allowWatchBookmarks: true,
                    timeoutSeconds: 600, cancellationToken: cancellationToken);
#pragma warning disable CS0618 // The client's async-enumerable watch.
                await foreach (var (_, pod) in watch.WatchAsync<V1Pod, V1PodList>(cancellationToken: cancellationToken).ConfigureAwait(false))
#pragma warning restore CS0618
                {
                    version = pod.Metadata?.ResourceVersion ?? version;
                    Record(pod);
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (ex is HttpOperationException or HttpRequestException or KubernetesException or IOException)
            {
                version = null;
                await Task.Delay(500, CancellationToken.None).ConfigureAwait(false);
            }
        }
    }

    private void Record(V1Pod pod)
    {
        if (ExitOf(pod) is { } exit && JobShape.JobOf(pod) is { } job && _exits.TryAdd(job, exit))
        {
            _seen.TryAdd(job, DateTimeOffset.UtcNow);
        }
    }

    /// <summary>
    /// The container's exit: the fake kubelet's millisecond stamp in the terminated message when present, else
    /// <c>finishedAt</c>, which has one-second resolution.
    /// </summary>
    public static DateTimeOffset? ExitOf(V1Pod pod)
    {
        var terminated = pod.Status?.ContainerStatuses?.FirstOrDefault()?.State?.Terminated;
        if (terminated is null)
        {
            return null;
        }

        if (terminated.Message is { } message && message.StartsWith("exit-ms=", StringComparison.Ordinal)
            && long.TryParse(message.AsSpan(8), NumberStyles.Integer, CultureInfo.InvariantCulture, out var ms))
        {
            return DateTimeOffset.FromUnixTimeMilliseconds(ms);
        }

        return terminated.FinishedAt is { } finished ? new DateTimeOffset(DateTime.SpecifyKind(finished, DateTimeKind.Utc)) : null;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await _loop.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        _stop.Dispose();
    }
}
