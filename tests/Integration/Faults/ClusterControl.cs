using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using HybridBatch.Integration.BatchSystem;
using HybridBatch.Integration.Cluster;
using k8s;
using k8s.Models;
using Xunit.Abstractions;

namespace HybridBatch.Integration.Faults;

/// <summary>Kills and restarts the local cluster's components, and compacts its etcd: the faults of a real cluster.</summary>
internal static class ClusterControl
{
    private const string NetworkNamespace = "/var/run/netns/hybridbatch";

    /// <summary>Whether this is the repository's local cluster on this machine, which the tests may disrupt.</summary>
    public static bool Local => Admin.Available && Directory.Exists(Path.Combine(Admin.StateDirectory, "run")) && File.Exists(NetworkNamespace);

    /// <summary>The running component's pid, from its pid file, checked against /proc.</summary>
    public static int? Pid(string component)
    {
        var file = Path.Combine(Admin.StateDirectory, "run", component + ".pid");
        if (!File.Exists(file) || !int.TryParse(File.ReadAllText(file).Trim(), CultureInfo.InvariantCulture, out var pid))
        {
            return null;
        }

        try
        {
            var comm = File.ReadAllText($"/proc/{pid}/comm").Trim();
            return component.StartsWith(comm, StringComparison.Ordinal) ? pid : null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>SIGKILLs a component (containerd, etcd, kube-apiserver, kubelet …).</summary>
    public static void Kill(string component, ITestOutputHelper output)
    {
        var pid = Pid(component) ?? throw new InvalidOperationException($"{component} does not run");
        using var process = Process.GetProcessById(pid);
        process.Kill(); // SIGKILL
        process.WaitForExit(10_000);
        output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} killed {component} (pid {pid}) with SIGKILL");
    }

    /// <summary>
    /// Brings back whatever was killed (<c>cluster/local-cluster up</c>), then waits until <c>status</c> says the
    /// cluster is healthy. The node may turn NotReady after <c>up</c> returned: when the API server was down for
    /// longer than the controller manager's node grace period (20 s here), the node's last heartbeat is too old
    /// once the API server is back, until the kubelet's next status update (every 10 s) lands.
    /// </summary>
    public static async Task UpAsync(ITestOutputHelper output)
    {
        var watch = Stopwatch.StartNew();
        var (code, text) = await Admin.RunScriptAsync("up", TimeSpan.FromMinutes(5));
        output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} local-cluster up: exit {code} after {watch.Elapsed.TotalSeconds:F1} s");
        if (code != 0)
        {
            output.WriteLine(text);
        }

        var statusText = "";
        var waited = false;
        var healthy = await Batch.EventuallyAsync(
            async () =>
            {
                (var status, statusText) = await Admin.RunScriptAsync("status", TimeSpan.FromMinutes(1));
                if (status != 0 && !waited)
                {
                    waited = true;
                    output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} local-cluster status: not healthy yet, waiting: {statusText}");
                }
                else if (status == 0 && waited)
                {
                    output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} local-cluster status: healthy");
                }

                return status == 0;
            },
            TimeSpan.FromMinutes(2));
        Assert.True(healthy, $"the cluster is not healthy 2 minutes after 'up': {statusText}");
    }

    /// <summary>Runs etcdctl inside the cluster's network namespace, where etcd listens on 127.0.0.1:2379.</summary>
    public static Task<(int ExitCode, string Output)> EtcdctlAsync(string arguments) =>
        Admin.RunAsync(
            "nsenter",
            $"--net={NetworkNamespace} -- env ETCDCTL_API=3 etcdctl --endpoints=http://127.0.0.1:2379 --command-timeout=10s {arguments}",
            TimeSpan.FromSeconds(30));

    /// <summary>Compacts etcd up to its current revision, so every older resource version is gone.</summary>
    public static async Task<long> CompactAsync(ITestOutputHelper output)
    {
        var (code, text) = await EtcdctlAsync("endpoint status -w json");
        Assert.True(code == 0, text);
        using var json = JsonDocument.Parse(text.Trim());
        var revision = json.RootElement[0].GetProperty("Status").GetProperty("header").GetProperty("revision").GetInt64();
        var (compacted, message) = await EtcdctlAsync($"compact {revision}");
        output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} etcd compact {revision}: exit {compacted} {message.Trim()}");
        Assert.True(compacted == 0 || message.Contains("compacted", StringComparison.Ordinal), message);
        return revision;
    }

    /// <summary>
    /// A second node that is always Ready (its status refreshed every few seconds) and takes no pods (NoSchedule
    /// taint, zero pods): with it the node lifecycle controller is not in "master disruption mode" when the real node
    /// goes away, and evicts the lost node's pods. Dead stand-in nodes an interrupted benchmark or test left behind are
    /// removed first: with more than two nodes NotReady and 55 % of the zone, the controller is in partial disruption
    /// and, in a zone of at most 50 nodes, evicts nothing at all.
    /// </summary>
    public sealed class FakeNode : IAsyncDisposable
    {
        private readonly Kubernetes _admin;
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _heartbeat;

        private FakeNode(Kubernetes admin, string name)
        {
            _admin = admin;
            Name = name;
            _heartbeat = Task.Run(HeartbeatAsync);
        }

        /// <summary>The node's name.</summary>
        public string Name { get; }

        /// <summary>Removes dead stand-in nodes, registers the node and starts its heartbeat.</summary>
        public static async Task<FakeNode> StartAsync(ITestOutputHelper output)
        {
            var admin = Admin.Client();
            var fakes = await admin.CoreV1.ListNodeAsync(labelSelector: "hybridbatch.io/fake-node=true");
            foreach (var dead in fakes.Items.Where(n => n.Status?.Conditions?.Any(c => c.Type == "Ready" && c.Status == "True") != true))
            {
                output.WriteLine($"removing the dead stand-in node {dead.Metadata.Name}, registered {dead.Metadata.CreationTimestamp:O}, not Ready");
                await admin.CoreV1.DeleteNodeAsync(dead.Metadata.Name);
            }

            var name = "hybridbatch-fake-" + Guid.NewGuid().ToString("N")[..6];
            var now = DateTime.UtcNow;
            await admin.CoreV1.CreateNodeAsync(new V1Node
            {
                Metadata = new V1ObjectMeta { Name = name, Labels = new Dictionary<string, string> { ["hybridbatch.io/fake-node"] = "true" } },
                Spec = new V1NodeSpec { Taints = [new V1Taint { Key = "hybridbatch.io/fake-node", Value = "true", Effect = "NoSchedule" }] },
                Status = new V1NodeStatus
                {
                    Capacity = new Dictionary<string, ResourceQuantity> { ["pods"] = new("0"), ["cpu"] = new("0"), ["memory"] = new("0") },
                    Allocatable = new Dictionary<string, ResourceQuantity> { ["pods"] = new("0"), ["cpu"] = new("0"), ["memory"] = new("0") },
                    Conditions = [Ready(now)],
                },
            });
            var node = new FakeNode(admin, name);
            await node.BeatAsync();
            return node;
        }

        private static V1NodeCondition Ready(DateTime now) => new()
        {
            Type = "Ready",
            Status = "True",
            Reason = "FakeNodeReady",
            Message = "a test's stand-in node, always ready",
            LastHeartbeatTime = now,
            LastTransitionTime = now,
        };

        private async Task BeatAsync()
        {
            var now = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);
            var patch = $$$"""{"status":{"conditions":[{"type":"Ready","status":"True","reason":"FakeNodeReady","lastHeartbeatTime":"{{{now}}}"}]}}""";
            await _admin.CoreV1.PatchNodeStatusAsync(new V1Patch(patch, V1Patch.PatchType.StrategicMergePatch), Name);
        }

        private async Task HeartbeatAsync()
        {
            while (!_stop.IsCancellationRequested)
            {
                try
                {
                    await Task.Delay(TimeSpan.FromSeconds(3), _stop.Token);
                    await BeatAsync();
                }
                catch (OperationCanceledException) when (_stop.IsCancellationRequested)
                {
                    return;
                }
                catch (Exception ex) when (ex is k8s.Autorest.HttpOperationException or HttpRequestException or OperationCanceledException)
                {
                    // The next beat tries again; the grace period is 20 s.
                }
            }
        }

        /// <inheritdoc />
        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            await _heartbeat;
            try
            {
                await _admin.CoreV1.DeleteNodeAsync(Name);
            }
            catch (k8s.Autorest.HttpOperationException)
            {
            }

            _admin.Dispose();
            _stop.Dispose();
        }
    }
}
