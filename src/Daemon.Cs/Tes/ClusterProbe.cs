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

    public void Dispose() => client.Dispose();
}
