using HybridBatch.Contract;
using HybridBatch.Integration.Cluster;
using k8s;
using k8s.Models;
using Xunit.Abstractions;

namespace HybridBatch.Integration.BatchSystem;

/// <summary>The stuck-and-lost suite (<see cref="StuckAndLostContract"/>) against the real cluster, jobs as Jobs and as bare pods.</summary>
public static class StuckAndLostTests
{
    /// <summary>Jobs made as Kubernetes Jobs.</summary>
    public sealed class AsJobs(LocalClusterFixture cluster, ITestOutputHelper output)
        : StuckAndLostContract(new KubernetesUnderTest(cluster, KubernetesObjectKind.Job, output)), IClassFixture<LocalClusterFixture>;

    /// <summary>Jobs made as bare pods.</summary>
    public sealed class AsPods(LocalClusterFixture cluster, ITestOutputHelper output)
        : StuckAndLostContract(new KubernetesUnderTest(cluster, KubernetesObjectKind.Pod, output)), IClassFixture<LocalClusterFixture>;
}

/// <summary>
/// What only Kubernetes' own controllers show: admission refusing a pod (a LimitRange), and the Job controller
/// running an evicted Job's pod again where nothing reruns a bare pod.
/// </summary>
public sealed class AdmissionAndEvictionTests(LocalClusterFixture cluster, ITestOutputHelper output) : BatchSystemTests(cluster, output), IClassFixture<LocalClusterFixture>
{
    [Theory]
    [EachObjectKind]
    public async Task A_job_whose_pod_is_refused_by_admission_fails_with_Error_naming_the_cause(KubernetesObjectKind kind)
    {
        // A LimitRange makes admission refuse containers over 500 cores. A Job is created, but its controller can never
        // create the pod, so no pod event ever comes: Error after the pod timeout. A bare pod's own create is refused:
        // Error at once, with the API's reason. (Explicit defaults keep other pods of the namespace unchanged.)
        using var admin = Admin.Client();
        var name = "hb-refuse-" + Guid.NewGuid().ToString("N")[..6];
        var small = new Dictionary<string, ResourceQuantity> { ["cpu"] = new("100m") };
        await admin.CoreV1.CreateNamespacedLimitRangeAsync(
            new V1LimitRange
            {
                Metadata = new V1ObjectMeta { Name = name },
                Spec = new V1LimitRangeSpec
                {
                    Limits =
                    [
                        new V1LimitRangeItem
                        {
                            Type = "Container",
                            Max = new Dictionary<string, ResourceQuantity> { ["cpu"] = new("500") },
                            DefaultProperty = small,
                            DefaultRequest = small,
                        },
                    ],
                },
            },
            Cluster.Namespace);
        var system = await StartForHugeJobsAsync(kind);
        try
        {
            var id = await system.IssueBatchJobAsync("true", TestJobs.Job("refused", cores: 1000));
            var info = await Batch.NextAsync(system, TimeSpan.FromSeconds(90));
            Output.WriteLine($"[refused pod, {kind}] {info.ExitReason}: {info.Message}");
            Assert.Equal(id, info.JobId);
            Assert.Equal(BatchJobExitReason.Error, info.ExitReason);
            if (kind == KubernetesObjectKind.Pod)
            {
                Assert.Contains("the pod could not be created", info.Message);
                Assert.Contains("maximum cpu usage per Container is 500", info.Message);
            }
            else
            {
                Assert.Contains("no pod appeared", info.Message);
                Assert.Contains("pod timeout", info.Message);
                Assert.True(info.WallTime >= TimeSpan.FromSeconds(5));
            }

            Assert.True(await Batch.EventuallyAsync(async () => (await Batch.UndeletedObjectsOfRunAsync(Cluster, system.RunId, kind)).Count == 0, TimeSpan.FromSeconds(30)));
        }
        finally
        {
            await EndAsync(system);
            await admin.CoreV1.DeleteNamespacedLimitRangeAsync(name, Cluster.Namespace);
        }
    }

    [Fact]
    public async Task An_evicted_bare_pod_is_reported_Lost_once_and_not_run_again()
    {
        // Evicted as a node drain or the cluster autoscaler evicts, through the Eviction API (the admin's right, not the
        // product's). The Job controller of Kubernetes 1.20 starts a new pod for an evicted one, backoffLimit 0
        // notwithstanding (the job is Lost once all the same: the contract suites evict in both modes); a bare pod has
        // nothing to start another. (The kubelet's own evictions, for a volume over its size limit, come 1 to 2 minutes
        // late, when its volume statistics are next gathered; the core's verdict table covers their "Evicted" pods.)
        const KubernetesObjectKind kind = KubernetesObjectKind.Pod;
        var system = await StartAsync(kind);
        using var admin = Admin.Client();
        using var watching = new CancellationTokenSource();
        var pods = new HashSet<string>();
        Task? watch = null;
        try
        {
            var id = await system.IssueBatchJobAsync(Commands.UntilStopped, TestJobs.Job("evicted"));
            watch = Task.Run(async () =>
            {
                while (!watching.IsCancellationRequested)
                {
                    foreach (var pod in await Batch.PodsOfRunAsync(Cluster, system.RunId))
                    {
                        lock (pods)
                        {
                            pods.Add(pod.Metadata.Uid);
                        }
                    }

                    await Task.Delay(200, CancellationToken.None);
                }
            });
            Assert.True(await Batch.EventuallyAsync(async () => (await system.GetRunningBatchJobIdsAsync()).ContainsKey(id), TimeSpan.FromSeconds(120)));
            var victim = Assert.Single(await Batch.PodsOfRunAsync(Cluster, system.RunId));
            await admin.CoreV1.CreateNamespacedPodEvictionAsync(
                new V1Eviction
                {
                    ApiVersion = "policy/v1beta1",
                    Kind = "Eviction",
                    Metadata = new V1ObjectMeta { Name = victim.Metadata.Name, NamespaceProperty = Cluster.Namespace },
                },
                victim.Metadata.Name,
                Cluster.Namespace);

            var info = await Batch.NextAsync(system, TimeSpan.FromSeconds(120));
            Output.WriteLine($"[evicted] {info.ExitReason}: {info.Message}");
            Assert.Equal((id, BatchJobExitReason.Lost), (info.JobId, info.ExitReason));
            Assert.Contains(victim.Metadata.Name, info.Message);

            // Collected, the job's pod is deleted; it is watched until the kubelet removed it, which on a busy node took 92 s
            // after the eviction (audit log): nothing may start another pod for the job meanwhile.
            Assert.True(await Batch.EventuallyAsync(async () => (await Batch.PodsOfRunAsync(Cluster, system.RunId)).Count == 0, TimeSpan.FromSeconds(180)));
            await watching.CancelAsync();
            await watch;
            Output.WriteLine($"[evicted] {pods.Count} pod(s) of the job seen");
            Assert.Equal(victim.Metadata.Uid, Assert.Single(pods));

            Assert.Null(await system.GetUpdatedBatchJobAsync(TimeSpan.FromSeconds(2)));
            Assert.Empty(await system.GetIssuedBatchJobIdsAsync());
        }
        finally
        {
            await watching.CancelAsync();
            await EndAsync(system);
        }
    }
}
