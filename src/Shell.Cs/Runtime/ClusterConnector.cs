using HybridBatch.Core;
using HybridBatch.Core.Api;
using HybridBatch.Resilience;
using HybridBatch.Translation;
using k8s;
using k8s.Models;

namespace HybridBatch.Runtime;

/// <summary>
/// Connecting to the cluster and re-attaching to a run: reads the kubeconfig, checks that the API answers and that the
/// identity may list the run's Jobs (or bare pods), and turns those it finds into the core's adoption events.
/// </summary>
internal static class ClusterConnector
{
    /// <summary>How long the first call may take before the cluster counts as unreachable.</summary>
    public static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(30);

    /// <summary>The client configuration the options name.</summary>
    /// <param name="options">The kubeconfig and context, if given.</param>
    /// <returns>The configuration.</returns>
    /// <exception cref="InvalidOperationException">The kubeconfig is missing or cannot be used; the message says how to fix it.</exception>
    public static KubernetesClientConfiguration LoadConfiguration(KubernetesBatchSystemOptions options)
    {
        try
        {
            if (options.Kubeconfig is { } path)
            {
                if (!File.Exists(path))
                {
                    throw new InvalidOperationException(
                        $"The kubeconfig '{path}' does not exist: give the path of a kubeconfig file, or leave it unset to use KUBECONFIG or ~/.kube/config.");
                }

                return KubernetesClientConfiguration.BuildConfigFromConfigFile(path, options.Context);
            }

            return options.Context is null
                ? KubernetesClientConfiguration.BuildDefaultConfig()
                : KubernetesClientConfiguration.BuildConfigFromConfigFile(currentContext: options.Context);
        }
        catch (Exception ex) when (ex is k8s.Exceptions.KubeConfigException or IOException or YamlDotNet.Core.YamlException or UnauthorizedAccessException)
        {
            var where = options.Kubeconfig ?? Environment.GetEnvironmentVariable("KUBECONFIG") ?? "~/.kube/config";
            throw new InvalidOperationException(
                $"The kubeconfig '{where}' cannot be used: {ex.Message}. Fix the file, or point --kubeconfig or KUBECONFIG at a working one.", ex);
        }
    }

    /// <summary>
    /// Lists the run's jobs as they run (Jobs, or bare pods in <see cref="KubernetesObjectKind.Pod"/> mode): proof that
    /// the API answers and that the identity may list them in the namespace.
    /// </summary>
    /// <param name="client">The resilient client.</param>
    /// <param name="namespace">Where the jobs run.</param>
    /// <param name="kind">What the jobs run as.</param>
    /// <param name="selector">The label selector of the run's jobs.</param>
    /// <param name="host">The API server's address, for messages.</param>
    /// <param name="cancellationToken">Cancels connecting.</param>
    /// <returns>The metadata of the run's Jobs or pods.</returns>
    /// <exception cref="InvalidOperationException">The API cannot be reached or refuses; the message says why and how to fix it.</exception>
    public static async Task<IReadOnlyList<V1ObjectMeta>> ProbeAsync(
        IKubernetes client, string @namespace, KubernetesObjectKind kind, string selector, string host, CancellationToken cancellationToken)
    {
        using var probe = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        probe.CancelAfter(ProbeTimeout);
        try
        {
            return kind == KubernetesObjectKind.Pod
                ? [.. (await client.CoreV1.ListNamespacedPodAsync(@namespace, labelSelector: selector, cancellationToken: probe.Token).ConfigureAwait(false))
                    .Items.Select(pod => pod.Metadata)]
                : [.. (await client.BatchV1.ListNamespacedJobAsync(@namespace, labelSelector: selector, cancellationToken: probe.Token).ConfigureAwait(false))
                    .Items.Select(job => job.Metadata)];
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new InvalidOperationException(
                $"The Kubernetes API at {host} did not answer within 30 s: start the cluster (cluster/local-cluster up) or fix the server address in the kubeconfig.");
        }
        catch (KubernetesApiException ex) when (ex.StatusCode is null)
        {
            // No answer at all (refused, reset, timed out): an address or a cluster problem, not a permission one.
            throw new InvalidOperationException(
                $"The Kubernetes API at {host} cannot be reached ({ex.Message}): start the cluster (cluster/local-cluster up) or fix the server address in the kubeconfig.", ex);
        }
        catch (KubernetesApiException ex)
        {
            var what = kind == KubernetesObjectKind.Pod ? "pods" : "Jobs";
            throw new InvalidOperationException($"The Kubernetes API at {host} refused to list {what} in namespace '{@namespace}': {ex.Message}", ex);
        }
        catch (HttpRequestException ex)
        {
            throw new InvalidOperationException(
                $"The Kubernetes API at {host} cannot be reached ({ex.Message}): start the cluster (cluster/local-cluster up) or fix the server address in the kubeconfig.", ex);
        }
    }

    /// <summary>
    /// The run's live Jobs or bare pods as adoption events, in id order, with the pool request each one carries; the
    /// first list of the pod watch then brings their state.
    /// </summary>
    /// <param name="objects">The metadata of the run's Jobs or bare pods.</param>
    /// <param name="nowMs">When they were found.</param>
    /// <returns>One event per object that carries a job id and is not being deleted.</returns>
    public static IEnumerable<JobState.Event> Adoptions(IEnumerable<V1ObjectMeta> objects, long nowMs) =>
        objects
            .Select(metadata => (Id: Observations.JobId(metadata), Metadata: metadata))
            .Where(p => p.Id is not null && p.Metadata.DeletionTimestamp is null)
            .OrderBy(p => p.Id)
            .Select(p =>
            {
                var stored = JobManifests.StoredRequest(p.Metadata) ?? (0, 0, 0);
                return Events.Adopted(p.Id!.Value, Jobs.Request(p.Metadata.Name, stored.Millicores, stored.Memory, stored.Disk), nowMs);
            });

    /// <summary>
    /// The namespace's ResourceQuotas as an event for the core, which seeds from them how many of the run's jobs they
    /// admit at once; null when they cannot be read (no permission to list them: the refusals of creates tell instead).
    /// </summary>
    /// <param name="client">The resilient client.</param>
    /// <param name="namespace">Where the jobs run.</param>
    /// <param name="asJobs">Whether the run creates Jobs rather than bare pods.</param>
    /// <param name="nowMs">When they were read.</param>
    /// <param name="cancellationToken">Cancels connecting.</param>
    /// <returns>The event, or null.</returns>
    public static async Task<JobState.Event?> ReadQuotasAsync(
        IKubernetes client, string @namespace, bool asJobs, Func<long> nowMs, CancellationToken cancellationToken)
    {
        try
        {
            var quotas = await client.CoreV1.ListNamespacedResourceQuotaAsync(@namespace, cancellationToken: cancellationToken).ConfigureAwait(false);
            return Events.QuotasRead(
                quotas.Items.Select(q => Quotas.Status(
                    q.Metadata.Name,
                    q.Status?.Hard?.Select(kv => KeyValuePair.Create(kv.Key, kv.Value.ToString())),
                    q.Status?.Used?.Select(kv => KeyValuePair.Create(kv.Key, kv.Value.ToString())))),
                asJobs,
                nowMs());
        }
        catch (Exception ex) when (JobEffects.IsKubernetesFailure(ex) && !cancellationToken.IsCancellationRequested)
        {
            return null;
        }
    }
}
