using System.Reflection;
using HybridBatch.Integration.Cluster;
using k8s;
using k8s.Models;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace HybridBatch.Integration.BatchSystem;

/// <summary>
/// Runs a theory once per <see cref="KubernetesObjectKind"/>, its first argument: the contract holds whether jobs run
/// as Jobs or as bare pods.
/// </summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class EachObjectKindAttribute : DataAttribute
{
    /// <inheritdoc />
    public override IEnumerable<object[]> GetData(MethodInfo testMethod) =>
        Enum.GetValues<KubernetesObjectKind>().Select(kind => new object[] { kind });
}

/// <summary>Creates batch systems against the test cluster and cleans up after them.</summary>
internal static class Batch
{
    /// <summary>Options for the cluster under test, with Toil's test maxima (2 cores, 1e9 bytes, 2001 bytes of disk).</summary>
    public static KubernetesBatchSystemOptions Options(LocalClusterFixture cluster, Func<KubernetesBatchSystemOptions, KubernetesBatchSystemOptions>? change = null)
    {
        var options = TestJobs.WithToilMaxima(new KubernetesBatchSystemOptions
        {
            Kubeconfig = cluster.KubeconfigPath,
            Namespace = cluster.Namespace,
        });
        return change is null ? options : change(options);
    }

    /// <summary>As <see cref="Options(LocalClusterFixture, Func{KubernetesBatchSystemOptions, KubernetesBatchSystemOptions}?)"/>, jobs running as <paramref name="kind"/>.</summary>
    public static KubernetesBatchSystemOptions Options(
        LocalClusterFixture cluster, KubernetesObjectKind kind, Func<KubernetesBatchSystemOptions, KubernetesBatchSystemOptions>? change = null) =>
        Options(cluster, o => change is null ? o with { ObjectKind = kind } : change(o with { ObjectKind = kind }));

    /// <summary>A logger factory that writes to the test's output.</summary>
    public static ILoggerFactory Logging(ITestOutputHelper output) =>
        LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Information).AddProvider(new TestOutputLoggerProvider(output)));

    /// <summary>Waits for a result, failing the test when none comes in time.</summary>
    public static Task<UpdatedBatchJobInfo> NextAsync(IBatchSystem system, TimeSpan? timeout = null) =>
        Wait.NextAsync(system, timeout ?? TimeSpan.FromSeconds(180));

    /// <summary>The Kubernetes Jobs of the run's jobs (not its node-cleanup Jobs), as the cluster lists them.</summary>
    public static async Task<IList<V1Job>> JobsOfRunAsync(LocalClusterFixture cluster, string runId) =>
        (await cluster.Client.BatchV1.ListNamespacedJobAsync(
            cluster.Namespace, labelSelector: $"hybridbatch.io/run={runId},hybridbatch.io/job-id")).Items;

    /// <summary>The pods of the run's jobs, bare or made by their Jobs, as the cluster lists them.</summary>
    public static async Task<IList<V1Pod>> PodsOfRunAsync(LocalClusterFixture cluster, string runId) =>
        (await cluster.Client.CoreV1.ListNamespacedPodAsync(
            cluster.Namespace, labelSelector: $"hybridbatch.io/run={runId},hybridbatch.io/job-id")).Items;

    /// <summary>What the run's jobs run as in the cluster: their Jobs, or in pod mode their bare pods.</summary>
    public static async Task<IList<V1ObjectMeta>> ObjectsOfRunAsync(LocalClusterFixture cluster, string runId, KubernetesObjectKind kind) =>
        kind == KubernetesObjectKind.Pod
            ? [.. (await PodsOfRunAsync(cluster, runId)).Select(p => p.Metadata)]
            : [.. (await JobsOfRunAsync(cluster, runId)).Select(j => j.Metadata)];

    /// <summary>
    /// The run's objects whose deletion nobody asked for yet. A deleted bare pod stays listed, with a deletion timestamp,
    /// until its node's kubelet confirms its end: that is the node's business, and on a busy node it has taken longer than
    /// 30 s for a pod stuck pulling its image.
    /// </summary>
    public static async Task<IList<V1ObjectMeta>> UndeletedObjectsOfRunAsync(LocalClusterFixture cluster, string runId, KubernetesObjectKind kind) =>
        [.. (await ObjectsOfRunAsync(cluster, runId, kind)).Where(o => o.DeletionTimestamp is null)];

    /// <summary>Deletes what a job runs as, as someone other than the batch system would: its Job, or its bare pod.</summary>
    public static Task DeleteFromOutsideAsync(LocalClusterFixture cluster, string name, KubernetesObjectKind kind) =>
        kind == KubernetesObjectKind.Pod
            ? cluster.Client.CoreV1.DeleteNamespacedPodAsync(name, cluster.Namespace)
            : cluster.Client.BatchV1.DeleteNamespacedJobAsync(name, cluster.Namespace, new V1DeleteOptions { PropagationPolicy = "Background" });

    /// <summary>Waits until a condition holds, polling; false when it did not within the timeout.</summary>
    public static Task<bool> EventuallyAsync(Func<Task<bool>> condition, TimeSpan timeout) =>
        Wait.UntilAsync(condition, timeout, () => DateTimeOffset.UtcNow, duration => Task.Delay(duration));
}

/// <summary>Routes log lines to xunit's test output.</summary>
internal sealed class TestOutputLoggerProvider(ITestOutputHelper output) : ILoggerProvider
{
    public ILogger CreateLogger(string categoryName) => new Logger(output);

    public void Dispose()
    {
    }

    private sealed class Logger(ITestOutputHelper output) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            try
            {
                output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} {logLevel}: {formatter(state, exception)}");
            }
            catch (InvalidOperationException)
            {
                // The test already finished; its output is closed.
            }
        }
    }
}
