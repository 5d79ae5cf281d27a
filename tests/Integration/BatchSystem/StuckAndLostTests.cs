using HybridBatch.Integration.Cluster;
using k8s;
using k8s.Models;
using Xunit.Abstractions;

namespace HybridBatch.Integration.BatchSystem;

/// <summary>
/// Jobs that cannot run (missing image, no node, refused by admission) end with Error; jobs whose pod is deleted or
/// evicted end Lost, once; each whether jobs run as Jobs or as bare pods. A class of its own, beside
/// <see cref="BehaviourTests"/>, so the two run at once.
/// </summary>
public sealed class StuckAndLostTests(LocalClusterFixture cluster, ITestOutputHelper output) : BatchSystemTests(cluster, output), IClassFixture<LocalClusterFixture>
{
    [Theory]
    [EachObjectKind]
    public async Task A_missing_image_fails_with_Error_after_the_pod_timeout_naming_the_cause(KubernetesObjectKind kind)
    {
        var system = await StartAsync(kind, o => o with { PodTimeout = TimeSpan.FromSeconds(5) });
        try
        {
            var id = await system.IssueBatchJobAsync("true", Batch.Job("no-image") with { Image = "registry.invalid/hybridbatch/missing:1" });
            var info = await Batch.NextAsync(system, TimeSpan.FromSeconds(90));
            Assert.Equal(id, info.JobId);
            Assert.Equal(BatchJobExitReason.Error, info.ExitReason);
            Assert.Matches("ErrImagePull|ImagePullBackOff|InvalidImageName", info.Message);
            Assert.Contains("pod timeout", info.Message);
            Assert.True(await Batch.EventuallyAsync(async () => (await Batch.UndeletedObjectsOfRunAsync(Cluster, system.RunId, kind)).Count == 0, TimeSpan.FromSeconds(30)));
        }
        finally
        {
            await EndAsync(system);
        }
    }

    [Theory]
    [EachObjectKind]
    public async Task A_pod_that_can_never_be_scheduled_fails_with_Error_after_the_pod_timeout(KubernetesObjectKind kind)
    {
        var system = await StartForHugeJobsAsync(kind);
        try
        {
            var id = await system.IssueBatchJobAsync("true", Batch.Job("huge", cores: 1000));
            var info = await Batch.NextAsync(system, TimeSpan.FromSeconds(90));
            Assert.Equal(id, info.JobId);
            Assert.Equal(BatchJobExitReason.Error, info.ExitReason);
            Assert.Contains("Unschedulable", info.Message);
            Assert.Contains("cpu", info.Message);
        }
        finally
        {
            await EndAsync(system);
        }
    }

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
            var id = await system.IssueBatchJobAsync("true", Batch.Job("refused", cores: 1000));
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

    [Theory]
    [EachObjectKind]
    public async Task A_Job_or_bare_pod_deleted_by_someone_else_is_reported_Lost_once(KubernetesObjectKind kind)
    {
        var system = await StartAsync(kind);
        try
        {
            var id = await system.IssueBatchJobAsync("sleep 600", Batch.Job("victim"));
            Assert.True(await Batch.EventuallyAsync(async () => (await system.GetRunningBatchJobIdsAsync()).ContainsKey(id), TimeSpan.FromSeconds(120)));
            var job = Assert.Single(await Batch.ObjectsOfRunAsync(Cluster, system.RunId, kind));
            await Batch.DeleteFromOutsideAsync(Cluster, job, kind);

            var info = await Batch.NextAsync(system, TimeSpan.FromSeconds(60));
            Assert.Equal(id, info.JobId);
            Assert.Equal(BatchJobExitReason.Lost, info.ExitReason);
            Assert.Null(await system.GetUpdatedBatchJobAsync(TimeSpan.FromSeconds(5)));
            Assert.Empty(await system.GetIssuedBatchJobIdsAsync());
        }
        finally
        {
            await EndAsync(system);
        }
    }

    [Theory]
    [EachObjectKind]
    public async Task An_evicted_pod_is_reported_Lost_once_and_as_a_bare_pod_is_not_run_again(KubernetesObjectKind kind)
    {
        // Evicted as a node drain or the cluster autoscaler evicts, through the Eviction API (the admin's right, not the
        // product's). The Job controller of Kubernetes 1.20 starts a new pod for an evicted one, backoffLimit 0
        // notwithstanding; a bare pod has nothing to start another. (The kubelet's own evictions, for a volume over its
        // size limit, come 1 to 2 minutes late, when its volume statistics are next gathered; the core's verdict table
        // covers their "Evicted" pods.) The job leaves at once on SIGTERM, so its pod goes without the grace period.
        var system = await StartAsync(kind);
        using var admin = Admin.Client();
        using var watching = new CancellationTokenSource();
        var pods = new HashSet<string>();
        Task? watch = null;
        try
        {
            var id = await system.IssueBatchJobAsync("trap 'exit 143' TERM; sleep 600 & wait", Batch.Job("evicted"));
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
            Output.WriteLine($"[evicted, {kind}] {info.ExitReason}: {info.Message}");
            Assert.Equal((id, BatchJobExitReason.Lost), (info.JobId, info.ExitReason));
            Assert.Contains(victim.Metadata.Name, info.Message);

            // Collected, the job's Job or pod is deleted, and with it every pod of the job.
            Assert.True(await Batch.EventuallyAsync(async () => (await Batch.PodsOfRunAsync(Cluster, system.RunId)).Count == 0, TimeSpan.FromSeconds(90)));
            await watching.CancelAsync();
            await watch;
            Output.WriteLine($"[evicted, {kind}] {pods.Count} pod(s) of the job seen");
            Assert.Contains(victim.Metadata.Uid, pods);
            if (kind == KubernetesObjectKind.Pod)
            {
                Assert.Single(pods);
            }

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
