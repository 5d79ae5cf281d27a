using HybridBatch.Contract;
using HybridBatch.Integration.Cluster;
using Xunit.Abstractions;

namespace HybridBatch.Integration.BatchSystem;

/// <summary>Toil's translated tests (<see cref="ToilContract"/>) against the real cluster, jobs as Jobs and as bare pods.</summary>
public static class ToilContractTests
{
    /// <summary>Jobs made as Kubernetes Jobs.</summary>
    public sealed class AsJobs(LocalClusterFixture cluster, ITestOutputHelper output)
        : ToilContract(new KubernetesUnderTest(cluster, KubernetesObjectKind.Job, output)), IClassFixture<LocalClusterFixture>;

    /// <summary>Jobs made as bare pods.</summary>
    public sealed class AsPods(LocalClusterFixture cluster, ITestOutputHelper output)
        : ToilContract(new KubernetesUnderTest(cluster, KubernetesObjectKind.Pod, output)), IClassFixture<LocalClusterFixture>;
}
