using HybridBatch.Contract;
using HybridBatch.Integration.Cluster;
using Xunit.Abstractions;

namespace HybridBatch.Integration.BatchSystem;

/// <summary>The behaviour suite (<see cref="BehaviourContract"/>) against the real cluster, jobs as Jobs and as bare pods.</summary>
public static class BehaviourTests
{
    /// <summary>Jobs made as Kubernetes Jobs.</summary>
    public sealed class AsJobs(LocalClusterFixture cluster, ITestOutputHelper output)
        : BehaviourContract(new KubernetesUnderTest(cluster, KubernetesObjectKind.Job, output)), IClassFixture<LocalClusterFixture>;

    /// <summary>Jobs made as bare pods.</summary>
    public sealed class AsPods(LocalClusterFixture cluster, ITestOutputHelper output)
        : BehaviourContract(new KubernetesUnderTest(cluster, KubernetesObjectKind.Pod, output)), IClassFixture<LocalClusterFixture>;
}

/// <summary>
/// What only a real cluster shows: the run's work directory on the node's disk, and connecting to a cluster that is
/// not there or a kubeconfig that is not one.
/// </summary>
public sealed class ClusterBehaviourTests(LocalClusterFixture cluster, ITestOutputHelper output) : BatchSystemTests(cluster, output), IClassFixture<LocalClusterFixture>
{
    [Theory]
    [EachObjectKind]
    public async Task When_a_nodes_last_job_leaves_the_runs_work_directory_there_is_removed(KubernetesObjectKind kind)
    {
        var hostPath = Path.Combine(Path.GetTempPath(), "hybridbatch-hostpath-" + Guid.NewGuid().ToString("N")[..8]);
        var system = await StartAsync(kind, o => o with { HostPath = hostPath });
        var runDirectory = Path.Combine(hostPath, system.RunId);
        try
        {
            var id = await system.IssueBatchJobAsync("echo data > /var/lib/hybridbatch/result && sleep 4", TestJobs.Job("writer"));
            Assert.True(await Batch.EventuallyAsync(() => Task.FromResult(File.Exists(Path.Combine(runDirectory, "result"))), TimeSpan.FromSeconds(120)));
            Assert.Equal(id, (await Batch.NextAsync(system)).JobId);
            Assert.True(
                await Batch.EventuallyAsync(() => Task.FromResult(!Directory.Exists(runDirectory)), TimeSpan.FromSeconds(60)),
                $"{runDirectory} should be removed once the node's last job left");
        }
        finally
        {
            await EndAsync(system);
            if (Directory.Exists(hostPath))
            {
                Directory.Delete(hostPath, recursive: true);
            }
        }
    }

    [Fact]
    public async Task A_user_script_is_refused_as_Toil_refuses_it_for_Kubernetes()
    {
        // Toil's Kubernetes batch system deploys no user script either: the workflow's code comes in the job's image.
        Assert.False(KubernetesBatchSystem.SupportsAutoDeployment);
        var system = await StartAsync(KubernetesObjectKind.Job);
        try
        {
            Assert.Throws<InvalidOperationException>(() => system.SetUserScript(new UserScript("workflow.py")));
        }
        finally
        {
            await EndAsync(system);
        }
    }

    [Fact]
    public async Task An_unreachable_cluster_or_a_bad_kubeconfig_is_a_clear_error()
    {
        var missing = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            KubernetesBatchSystem.CreateAsync(new KubernetesBatchSystemOptions { Kubeconfig = "/nonexistent/kubeconfig" }));
        Assert.Contains("does not exist", missing.Message);

        var garbage = Path.GetTempFileName();
        await File.WriteAllTextAsync(garbage, "this: [is not a kubeconfig");
        var bad = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            KubernetesBatchSystem.CreateAsync(new KubernetesBatchSystemOptions { Kubeconfig = garbage }));
        Assert.Contains("cannot be used", bad.Message);

        // A cluster address where nothing listens: the loopback port 1 refuses at once.
        var config = await File.ReadAllTextAsync(Cluster.KubeconfigPath);
        var unreachable = Path.GetTempFileName();
        await File.WriteAllTextAsync(unreachable, System.Text.RegularExpressions.Regex.Replace(config, @"server: \S+", "server: https://127.0.0.1:1"));
        var options = new KubernetesBatchSystemOptions { Kubeconfig = unreachable, Resilience = new() { RetryBudget = TimeSpan.FromSeconds(3) } };
        var down = await Assert.ThrowsAsync<InvalidOperationException>(() => KubernetesBatchSystem.CreateAsync(options));
        Assert.Contains("127.0.0.1:1", down.Message);

        var invalid = await Assert.ThrowsAsync<ArgumentException>(() =>
            KubernetesBatchSystem.CreateAsync(new KubernetesBatchSystemOptions { PodTimeout = TimeSpan.FromSeconds(-1), RunId = "not a label!" }));
        Assert.Contains("pod timeout", invalid.Message);
        Assert.Contains("run id", invalid.Message);
    }
}
