using HybridBatch.Integration.Cluster;
using Xunit.Abstractions;

namespace HybridBatch.Integration.BatchSystem;

/// <summary>What the classes of behaviour tests share: starting a batch system in either mode, and ending it.</summary>
public abstract class BatchSystemTests(LocalClusterFixture cluster, ITestOutputHelper output)
{
    /// <summary>The cluster under test.</summary>
    protected LocalClusterFixture Cluster { get; } = cluster;

    /// <summary>Where the test writes.</summary>
    protected ITestOutputHelper Output { get; } = output;

    /// <summary>A batch system against the test cluster, jobs made as <paramref name="kind"/>.</summary>
    protected async Task<KubernetesBatchSystem> StartAsync(KubernetesObjectKind kind, Func<KubernetesBatchSystemOptions, KubernetesBatchSystemOptions>? change = null) =>
        await KubernetesBatchSystem.CreateAsync(Batch.Options(Cluster, kind, change), Batch.Logging(Output));

    /// <summary>A batch system that accepts jobs larger than any node and fails stuck ones after 5 s.</summary>
    protected Task<KubernetesBatchSystem> StartForHugeJobsAsync(KubernetesObjectKind kind) => StartAsync(kind, TestJobs.ForHugeJobs);

    /// <summary>Shuts the batch system down and disposes of it.</summary>
    protected static async Task EndAsync(KubernetesBatchSystem system)
    {
        await system.ShutdownAsync();
        await system.DisposeAsync();
    }
}
