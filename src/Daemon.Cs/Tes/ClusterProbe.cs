using HybridBatch.Core.Api;
using HybridBatch.Resilience;
using k8s;
using Microsoft.Extensions.Logging;

namespace HybridBatch.Daemon.Tes;

/// <summary>
/// Answers <c>/readyz</c>: whether the Kubernetes API answers; and whether the run's node cleanups are done, which a
/// retried task waits for. Its client comes from <see cref="KubernetesClientFactory"/>, like every client of the
/// product, and is configured as the batch system's is.
/// </summary>
internal sealed class ClusterProbe(IKubernetes client) : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(5);

    public static ClusterProbe Create(KubernetesBatchSystemOptions options, ILoggerFactory loggerFactory, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(options);
        var configuration = options.Kubeconfig is { } path
            ? KubernetesClientConfiguration.BuildConfigFromConfigFile(path, options.Context)
            : options.Context is null
                ? KubernetesClientConfiguration.BuildDefaultConfig()
                : KubernetesClientConfiguration.BuildConfigFromConfigFile(currentContext: options.Context);
        return new ClusterProbe(KubernetesClientFactory.Create(configuration, options.Resilience, loggerFactory, time));
    }

    /// <summary>Null when the API answers within 5 s, else why not.</summary>
    public async Task<string?> CheckAsync(CancellationToken cancellationToken)
    {
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(Timeout);
            await client.Version.GetCodeAsync(timeout.Token).ConfigureAwait(false);
            return null;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return $"the Kubernetes API does not answer: no answer within {Timeout.TotalSeconds:0} s";
        }
        catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException or KubernetesApiException or k8s.Autorest.HttpOperationException)
        {
            return "the Kubernetes API does not answer: " + ex.Message;
        }
    }

    /// <summary>
    /// Waits until no node cleanup of the run is running, for at most <paramref name="atMost"/>. A node left without a
    /// job of the run has its run directory removed by a cleanup Job (where the tasks' work directories are), so a task
    /// staged again just after its last job ended must wait for that removal, or lose its inputs to it.
    /// </summary>
    public async Task WaitForCleanupsAsync(string @namespace, string runId, TimeSpan atMost, TimeProvider time, CancellationToken cancellationToken)
    {
        var deadline = time.GetUtcNow() + atMost;
        while (time.GetUtcNow() < deadline)
        {
            k8s.Models.V1JobList jobs;
            try
            {
                jobs = await client.BatchV1.ListNamespacedJobAsync(
                    @namespace, labelSelector: $"{Names.RunLabel}={runId},{Names.CleanupLabel}", cancellationToken: cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is HttpRequestException or KubernetesApiException or k8s.Autorest.HttpOperationException)
            {
                // Unknown: the task is started rather than left waiting on the API.
                return;
            }

            if (jobs.Items.All(j => j.Status?.CompletionTime is not null || j.Status?.Conditions?.Any(c => c.Type is "Complete" or "Failed" && c.Status == "True") == true))
            {
                return;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(500), time, cancellationToken).ConfigureAwait(false);
        }
    }

    public void Dispose() => client.Dispose();
}
