using k8s;
using Microsoft.Extensions.Logging;

namespace HybridBatch.Resilience;

/// <summary>
/// The only way the product gets a Kubernetes client: one whose HTTP pipeline starts with the
/// <see cref="KubernetesResilienceHandler"/>, so no call can skip the rate limit, the timeout or the retry classification.
/// </summary>
public static class KubernetesClientFactory
{
    /// <summary>Creates a client whose every HTTP request goes through a <see cref="KubernetesResilienceHandler"/>.</summary>
    /// <param name="configuration">
    /// Where the cluster is and how to authenticate. Its <see cref="KubernetesClientConfiguration.HttpClientTimeout"/>
    /// is set to infinite: the client's own 100 s deadline per call would otherwise cut the retry budget short;
    /// the per-request timeout and the retry budget bound each call instead.
    /// </param>
    /// <param name="options">Rate limit, timeout and retry settings; the defaults if null.</param>
    /// <param name="loggerFactory">Where retries and failures are logged, if anywhere.</param>
    /// <param name="timeProvider">The clock for delays and timeouts; <see cref="TimeProvider.System"/> by default.</param>
    /// <param name="observer">Sees every call and retry (e.g. a <see cref="KubernetesCallCounter"/>), if given.</param>
    /// <returns>The client; dispose it to release its connections and its rate limiter.</returns>
    /// <exception cref="ArgumentException">An option is out of range.</exception>
    /// <remarks>
    /// Exec, attach and port-forward open WebSockets outside the client's HTTP pipeline and are not wrapped; the
    /// product does not use them.
    /// </remarks>
    public static IKubernetes Create(
        KubernetesClientConfiguration configuration,
        KubernetesResilienceOptions? options = null,
        ILoggerFactory? loggerFactory = null,
        TimeProvider? timeProvider = null,
        IKubernetesCallObserver? observer = null) =>
        Create(configuration, options, loggerFactory, timeProvider, observer, innerHandlers: []);

    /// <summary>
    /// As <see cref="Create(KubernetesClientConfiguration, KubernetesResilienceOptions?, ILoggerFactory?, TimeProvider?, IKubernetesCallObserver?)"/>,
    /// with handlers between the resilience handler and the network (tests put a fake server there).
    /// </summary>
    internal static IKubernetes Create(
        KubernetesClientConfiguration configuration,
        KubernetesResilienceOptions? options,
        ILoggerFactory? loggerFactory,
        TimeProvider? timeProvider,
        IKubernetesCallObserver? observer,
        DelegatingHandler[] innerHandlers)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var basePath = Uri.TryCreate(configuration.Host, UriKind.Absolute, out var host) ? host.AbsolutePath : "/";
        configuration.HttpClientTimeout = Timeout.InfiniteTimeSpan;
        var handler = new KubernetesResilienceHandler(options ?? new KubernetesResilienceOptions(), loggerFactory, timeProvider, observer, basePath);
        return new k8s.Kubernetes(configuration, [handler, .. innerHandlers]);
    }
}
