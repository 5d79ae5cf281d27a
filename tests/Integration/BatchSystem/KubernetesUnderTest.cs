using System.Globalization;
using HybridBatch.Contract;
using HybridBatch.Integration.Cluster;
using k8s;
using k8s.Models;
using Xunit.Abstractions;

namespace HybridBatch.Integration.BatchSystem;

/// <summary>The real cluster under the contract suites, its jobs made as <paramref name="kind"/>, in the test class's namespace.</summary>
/// <param name="cluster">The test class's cluster fixture.</param>
/// <param name="kind">Jobs or bare pods.</param>
/// <param name="output">The test's output.</param>
internal sealed class KubernetesUnderTest(LocalClusterFixture cluster, KubernetesObjectKind kind, ITestOutputHelper output) : IClusterUnderTest
{
    /// <summary>A shared node of two cores takes its time with pods when the rest of the suite runs beside.</summary>
    public TimeSpan Patience => TimeSpan.FromSeconds(180);

    /// <inheritdoc/>
    public int ManyJobs => 200;

    /// <inheritdoc/>
    public DateTimeOffset Now => DateTimeOffset.UtcNow;

    /// <inheritdoc/>
    public async Task<IBatchSystem> StartAsync(Func<KubernetesBatchSystemOptions, KubernetesBatchSystemOptions>? change = null) =>
        await KubernetesBatchSystem.CreateAsync(Batch.Options(cluster, kind, change), Batch.Logging(output));

    /// <inheritdoc/>
    public Task PauseAsync(TimeSpan duration) => Task.Delay(duration);

    /// <inheritdoc/>
    public async Task<IReadOnlyList<ClusterObject>> ObjectsOfRunAsync(string runId) =>
        kind == KubernetesObjectKind.Pod
            ? await PodsOfRunAsync(runId)
            : [.. (await Batch.JobsOfRunAsync(cluster, runId)).Select(j => Of(j.Metadata, phase: null))];

    /// <inheritdoc/>
    public async Task<IReadOnlyList<ClusterObject>> PodsOfRunAsync(string runId) =>
        [.. (await Batch.PodsOfRunAsync(cluster, runId)).Select(p => Of(p.Metadata, p.Status?.Phase ?? "Pending"))];

    /// <inheritdoc/>
    public async Task DeleteFromOutsideAsync(string runId, int jobId) =>
        await Batch.DeleteFromOutsideAsync(cluster, Assert.Single(await ObjectsOfRunAsync(runId), o => o.JobId == jobId).Name, kind);

    /// <inheritdoc/>
    /// <remarks>Through the Eviction API, the admin's right and not the product's.</remarks>
    public async Task EvictAsync(string runId, int jobId)
    {
        var victim = Assert.Single(await PodsOfRunAsync(runId), p => p.JobId == jobId);
        using var admin = Admin.Client();
        await admin.CoreV1.CreateNamespacedPodEvictionAsync(
            new V1Eviction
            {
                ApiVersion = "policy/v1beta1",
                Kind = "Eviction",
                Metadata = new V1ObjectMeta { Name = victim.Name, NamespaceProperty = cluster.Namespace },
            },
            victim.Name,
            cluster.Namespace);
    }

    /// <inheritdoc/>
    public void Log(string line) => output.WriteLine(line);

    private static ClusterObject Of(V1ObjectMeta metadata, string? phase) => new(
        metadata.Name,
        int.Parse(metadata.Labels["hybridbatch.io/job-id"], CultureInfo.InvariantCulture),
        phase,
        metadata.DeletionTimestamp is not null);
}
