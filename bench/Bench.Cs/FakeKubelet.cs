using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using k8s;
using k8s.Autorest;
using k8s.Models;

namespace HybridBatch.Bench;

/// <summary>
/// Simulated nodes, as KWOK does: registers Nodes that carry the fake-node label and a NoSchedule taint, keeps them
/// Ready with status heartbeats, and moves the pods scheduled onto them through Pending → Running →
/// Succeeded/Failed by patching pod status (no containers run). A pod's run time comes from its command
/// (<c>true</c>: 0 s, <c>false</c>: exit 1, <c>sleep N</c>: N s). Deletion is finished with a grace-0 delete once a
/// deletion timestamp is set. The terminated message carries the exit time in milliseconds (<c>exit-ms=…</c>), since
/// <c>finishedAt</c> has one-second resolution. A pod is recognised by its node and uid only (no Job label, no owner
/// reference), so bare pods move exactly as Jobs' pods do.
/// </summary>
internal sealed class FakeKubelet(IKubernetes admin, int nodes, string prefix)
{
    private readonly Channel<Func<CancellationToken, Task>> _work = Channel.CreateUnbounded<Func<CancellationToken, Task>>();
    private readonly ConcurrentDictionary<string, byte> _started = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, byte> _deleting = new(StringComparer.Ordinal);
    private readonly DateTime _since = DateTime.UtcNow;
    private long _patches;

    public IEnumerable<string> NodeNames => Enumerable.Range(0, nodes).Select(i => string.Create(CultureInfo.InvariantCulture, $"{prefix}-{i}"));

    public long Patches => Interlocked.Read(ref _patches);

    public static async Task RemoveAllAsync(IKubernetes admin, CancellationToken cancellationToken)
    {
        var existing = await admin.CoreV1.ListNodeAsync(labelSelector: $"{Cluster.FakeNodeLabel}=true", cancellationToken: cancellationToken).ConfigureAwait(false);
        foreach (var node in existing.Items)
        {
            await Cluster.Retry(() => admin.CoreV1.DeleteNodeAsync(node.Metadata.Name, cancellationToken: cancellationToken), cancellationToken, notFoundIsDone: true).ConfigureAwait(false);
        }

        if (existing.Items.Count > 0)
        {
            Console.Error.WriteLine($"fake-kubelet: removed {existing.Items.Count} fake nodes");
        }
    }

    public async Task RunAsync(Action ready, CancellationToken cancellationToken)
    {
        await RemoveAllAsync(admin, cancellationToken).ConfigureAwait(false);
        foreach (var (name, index) in NodeNames.Select((n, i) => (n, i)))
        {
            await Cluster.Retry(() => admin.CoreV1.CreateNodeAsync(Node(name, index), cancellationToken: cancellationToken), cancellationToken, conflictIsDone: true).ConfigureAwait(false);
        }

        var workers = Enumerable.Range(0, 16).Select(_ => Task.Run(() => WorkAsync(cancellationToken), CancellationToken.None)).ToArray();
        var heartbeat = Task.Run(() => HeartbeatAsync(cancellationToken), CancellationToken.None);
        var pods = Task.Run(() => WatchPodsAsync(ready, cancellationToken), CancellationToken.None);
        try
        {
            await Task.WhenAll([heartbeat, pods, .. workers]).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        finally
        {
            await RemoveAllAsync(admin, CancellationToken.None).ConfigureAwait(false);
        }
    }

    private static string Stamp(DateTime at) => at.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);

    private V1Node Node(string name, int index)
    {
        var capacity = new Dictionary<string, ResourceQuantity>
        {
            ["cpu"] = new("1000"),
            ["memory"] = new("4Ti"),
            ["ephemeral-storage"] = new("4Ti"),
            ["pods"] = new("1100"),
        };
        var now = DateTime.UtcNow;
        return new V1Node
        {
            Metadata = new V1ObjectMeta
            {
                Name = name,
                Labels = new Dictionary<string, string>
                {
                    [Cluster.FakeNodeLabel] = "true",
                    ["kubernetes.io/hostname"] = name,
                    ["kubernetes.io/os"] = "linux",
                    ["kubernetes.io/arch"] = "amd64",
                },
            },
            Spec = new V1NodeSpec { Taints = [new V1Taint { Key = Cluster.FakeNodeLabel, Value = "true", Effect = "NoSchedule" }] },
            Status = new V1NodeStatus
            {
                Capacity = capacity,
                Allocatable = new Dictionary<string, ResourceQuantity>(capacity),
                Addresses = [new V1NodeAddress { Type = "InternalIP", Address = string.Create(CultureInfo.InvariantCulture, $"10.254.{index / 250}.{(index % 250) + 1}") }],
                Conditions = [new V1NodeCondition { Type = "Ready", Status = "True", Reason = "KubeletReady", Message = "fake kubelet", LastHeartbeatTime = now, LastTransitionTime = now }],
                NodeInfo = new V1NodeSystemInfo
                {
                    Architecture = "amd64",
                    OperatingSystem = "linux",
                    KubeletVersion = "v1.20.2-fake",
                    KubeProxyVersion = "v1.20.2-fake",
                    ContainerRuntimeVersion = "fake://1",
                    KernelVersion = "fake",
                    OsImage = "fake",
                    MachineID = name,
                    SystemUUID = name,
                    BootID = name,
                },
            },
        };
    }

    private async Task HeartbeatAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(8));
        while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
        {
            var now = Stamp(DateTime.UtcNow);
            var condition = new JsonObject
            {
                ["type"] = "Ready",
                ["status"] = "True",
                ["reason"] = "KubeletReady",
                ["message"] = "fake kubelet",
                ["lastHeartbeatTime"] = now,
                ["lastTransitionTime"] = Stamp(_since),
            };
            var patch = new V1Patch(
                new JsonObject { ["status"] = new JsonObject { ["conditions"] = new JsonArray(condition) } }.ToJsonString(),
                V1Patch.PatchType.StrategicMergePatch);
            foreach (var name in NodeNames)
            {
                await _work.Writer.WriteAsync(ct => Cluster.Retry(() => admin.CoreV1.PatchNodeStatusAsync(patch, name, cancellationToken: ct), ct, notFoundIsDone: true), cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private async Task WorkAsync(CancellationToken cancellationToken)
    {
        await foreach (var item in _work.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
        {
            try
            {
                await item(cancellationToken).ConfigureAwait(false);
                Interlocked.Increment(ref _patches);
            }
            catch (HttpOperationException ex)
            {
                Console.Error.WriteLine($"fake-kubelet: {(int)ex.Response.StatusCode} {ex.Response.Content}");
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
        }
    }

    private async Task WatchPodsAsync(Action ready, CancellationToken cancellationToken)
    {
        string? version = null;
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                if (version is null)
                {
                    var list = await admin.CoreV1.ListNamespacedPodAsync(Cluster.Namespace, cancellationToken: cancellationToken).ConfigureAwait(false);
                    foreach (var pod in list.Items)
                    {
                        OnPod(pod);
                    }

                    version = list.Metadata.ResourceVersion;
                    ready();
                }

                var stream = admin.CoreV1.ListNamespacedPodWithHttpMessagesAsync(
                    Cluster.Namespace, resourceVersion: version, watch: true, allowWatchBookmarks: true, timeoutSeconds: 600, cancellationToken: cancellationToken);
#pragma warning disable CS0618 // The client's async-enumerable watch.
                await foreach (var (type, pod) in stream.WatchAsync<V1Pod, V1PodList>(cancellationToken: cancellationToken).ConfigureAwait(false))
#pragma warning restore CS0618
                {
                    version = pod.Metadata?.ResourceVersion ?? version;
                    if (type is WatchEventType.Added or WatchEventType.Modified)
                    {
                        OnPod(pod);
                    }
                    else if (type == WatchEventType.Deleted && pod.Metadata?.Uid is { } uid)
                    {
                        _started.TryRemove(uid, out _);
                        _deleting.TryRemove(uid, out _);
                    }
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (ex is HttpOperationException or HttpRequestException or KubernetesException or IOException)
            {
                Console.Error.WriteLine($"fake-kubelet: pod watch: {ex.Message}");
                version = null;
                await Task.Delay(500, CancellationToken.None).ConfigureAwait(false);
            }
        }
    }

    private void OnPod(V1Pod pod)
    {
        var node = pod.Spec?.NodeName;
        if (node is null || !node.StartsWith(prefix + "-", StringComparison.Ordinal) || pod.Metadata?.Uid is not { } uid)
        {
            return;
        }

        var name = pod.Metadata.Name;
        if (pod.Metadata.DeletionTimestamp is not null)
        {
            if (_deleting.TryAdd(uid, 0))
            {
                var options = new V1DeleteOptions { GracePeriodSeconds = 0, Preconditions = new V1Preconditions { Uid = uid } };
                _work.Writer.TryWrite(ct => Cluster.Retry(() => admin.CoreV1.DeleteNamespacedPodAsync(name, Cluster.Namespace, options, cancellationToken: ct), ct, notFoundIsDone: true, conflictIsDone: true));
            }

            return;
        }

        if (pod.Status?.Phase is "Succeeded" or "Failed" || !_started.TryAdd(uid, 0))
        {
            return;
        }

        var container = pod.Spec!.Containers[0];
        var (seconds, exitCode) = RunOf(container.Command);
        var startedAt = DateTime.UtcNow;
        _work.Writer.TryWrite(async ct =>
        {
            await Cluster.Retry(() => admin.CoreV1.PatchNamespacedPodStatusAsync(Running(pod, container, startedAt), name, Cluster.Namespace, cancellationToken: ct), ct, notFoundIsDone: true).ConfigureAwait(false);
            _ = Task.Delay(TimeSpan.FromSeconds(seconds), ct).ContinueWith(
                _ => _work.Writer.TryWrite(ct2 =>
                {
                    if (_deleting.ContainsKey(uid))
                    {
                        return Task.CompletedTask;
                    }

                    return Cluster.Retry(() => admin.CoreV1.PatchNamespacedPodStatusAsync(Ended(container, startedAt, exitCode), name, Cluster.Namespace, cancellationToken: ct2), ct2, notFoundIsDone: true);
                }),
                CancellationToken.None,
                TaskContinuationOptions.OnlyOnRanToCompletion,
                TaskScheduler.Default);
        });
    }

    private static (double Seconds, int ExitCode) RunOf(IList<string>? command)
    {
        var script = command?.LastOrDefault()?.Trim() ?? "";
        if (script == "true")
        {
            return (0, 0);
        }

        if (script == "false")
        {
            return (0, 1);
        }

        if (script.StartsWith("sleep ", StringComparison.Ordinal)
            && double.TryParse(script.AsSpan(6), NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds))
        {
            return (seconds, 0);
        }

        if (script.StartsWith("exit ", StringComparison.Ordinal) && int.TryParse(script.AsSpan(5), CultureInfo.InvariantCulture, out var code))
        {
            return (0, code);
        }

        return (1, 0);
    }

    private static JsonObject ContainerStatus(V1Container container, string uid, bool running, JsonObject state) => new()
    {
        ["name"] = container.Name,
        ["image"] = container.Image,
        ["imageID"] = "fake://" + container.Image,
        ["containerID"] = "fake://" + uid,
        ["ready"] = running,
        ["started"] = running,
        ["restartCount"] = 0,
        ["state"] = state,
    };

    private static JsonObject Condition(string type, bool status, string at) => new()
    {
        ["type"] = type,
        ["status"] = status ? "True" : "False",
        ["lastTransitionTime"] = at,
    };

    private static V1Patch Running(V1Pod pod, V1Container container, DateTime startedAt)
    {
        var at = Stamp(startedAt);
        var status = new JsonObject
        {
            ["phase"] = "Running",
            ["hostIP"] = "10.254.0.1",
            ["podIP"] = "10.254.128.1",
            ["startTime"] = at,
            ["conditions"] = new JsonArray(Condition("Initialized", true, at), Condition("Ready", true, at), Condition("ContainersReady", true, at), Condition("PodScheduled", true, at)),
            ["containerStatuses"] = new JsonArray(ContainerStatus(container, pod.Metadata.Uid, running: true, new JsonObject { ["running"] = new JsonObject { ["startedAt"] = at } })),
        };
        return new V1Patch(new JsonObject { ["status"] = status }.ToJsonString(), V1Patch.PatchType.StrategicMergePatch);
    }

    private static V1Patch Ended(V1Container container, DateTime startedAt, int exitCode)
    {
        var now = DateTime.UtcNow;
        var at = Stamp(now);
        var terminated = new JsonObject
        {
            ["exitCode"] = exitCode,
            ["reason"] = exitCode == 0 ? "Completed" : "Error",
            ["message"] = string.Create(CultureInfo.InvariantCulture, $"exit-ms={new DateTimeOffset(now).ToUnixTimeMilliseconds()}"),
            ["startedAt"] = Stamp(startedAt),
            ["finishedAt"] = at,
            ["containerID"] = "fake://" + container.Name,
        };
        var status = new JsonObject
        {
            ["phase"] = exitCode == 0 ? "Succeeded" : "Failed",
            ["conditions"] = new JsonArray(Condition("Ready", false, at), Condition("ContainersReady", false, at)),
            ["containerStatuses"] = new JsonArray(ContainerStatus(container, "", running: false, new JsonObject { ["terminated"] = terminated })),
        };
        return new V1Patch(new JsonObject { ["status"] = status }.ToJsonString(), V1Patch.PatchType.StrategicMergePatch);
    }
}
