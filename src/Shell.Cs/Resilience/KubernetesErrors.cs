using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Text;
using System.Text.Json;
using HybridBatch.Core;
using HybridBatch.Core.Api;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Polly.Timeout;

namespace HybridBatch.Resilience;

/// <summary>
/// Toil's <c>retryable_kubernetes_errors</c> and <c>is_retryable_kubernetes_error</c>, answered by the core's
/// classifier: this class only translates exceptions into the core's error description.
/// </summary>
public static class KubernetesErrors
{
    /// <summary>
    /// The exception types a Kubernetes call can fail with that the classifier considers (Toil's list was
    /// urllib3's <c>MaxRetryError</c> and <c>ProtocolError</c> and the client's <c>ApiException</c>); any other
    /// exception is a bug, not weather, and is never retried.
    /// </summary>
    public static IReadOnlyList<Type> RetryableKubernetesErrors { get; } =
    [
        typeof(HttpOperationException),
        typeof(KubernetesException),
        typeof(HttpRequestException),
        typeof(IOException),
        typeof(SocketException),
        typeof(AuthenticationException),
        typeof(TimeoutRejectedException),
        typeof(TimeoutException),
        typeof(TaskCanceledException),
    ];

    /// <summary>
    /// Whether the failure is weather that repeating the call can get through: the core's classifier says
    /// <c>Retry</c>. When the exception does not say which call failed, the call is taken to be one that is safe to
    /// repeat (a read or a watch, as in Toil's use).
    /// </summary>
    /// <param name="exception">What a Kubernetes call threw.</param>
    /// <returns>True if the call should be repeated.</returns>
    public static bool IsRetryable(Exception exception) => Classify(exception) == KubernetesCallDecision.Retry;

    /// <summary>The core's decision for what a Kubernetes call threw.</summary>
    /// <param name="exception">What a Kubernetes call threw.</param>
    /// <returns>Retry, Resync, AlreadyDone or Fail.</returns>
    public static KubernetesCallDecision Classify(Exception exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        return exception is KubernetesApiException decided ? decided.Decision : KubernetesCallDecisions.Of(Decide(exception));
    }

    /// <summary>What went wrong and how to fix it, in words.</summary>
    /// <param name="exception">What a Kubernetes call threw.</param>
    /// <returns>The classifier's explanation.</returns>
    public static string Explain(Exception exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        return exception is KubernetesApiException decided ? decided.Message : Retries.Explain(Decide(exception));
    }

    /// <summary>Whether the call's goal already holds: 404 on a delete, 409 AlreadyExists on our create.</summary>
    /// <param name="exception">What a Kubernetes call threw.</param>
    /// <returns>True if the caller may treat the call as done.</returns>
    public static bool IsAlreadyDone(Exception exception) => Classify(exception) == KubernetesCallDecision.AlreadyDone;

    /// <summary>Whether a watch must list again: 410 Gone or an expired resourceVersion.</summary>
    /// <param name="exception">What a Kubernetes call or watch threw.</param>
    /// <returns>True if the caller should relist and watch from the new resourceVersion.</returns>
    public static bool IsResync(Exception exception) => Classify(exception) == KubernetesCallDecision.Resync;

    private static Decision Decide(Exception exception) =>
        Retries.Classify(Describe(exception, request: null, TimeProvider.System.GetUtcNow()));

    /// <summary>Describes an exception for the classifier; <paramref name="request"/> says which call failed, if known.</summary>
    internal static ApiError Describe(Exception exception, KubernetesRequest? request, DateTimeOffset now)
    {
        switch (exception)
        {
            case AggregateException { InnerExceptions.Count: 1 } aggregate:
                return Describe(aggregate.InnerExceptions[0], request, now);

            case HttpOperationException { Response: { } response } operation:
                {
                    request ??= operation.Request is { } sent
                        ? KubernetesRequest.From(sent.Method, sent.RequestUri, ContentType(sent.Headers), Encoding.UTF8.GetBytes(sent.Content ?? ""))
                        : null;
                    var retryAfter = RetryAfter(HeaderValues(response.Headers, "Retry-After"), now);
                    return FromStatus((int)response.StatusCode, ParseStatus(response.Content), retryAfter, request);
                }

            case KubernetesException { Status: { } status }:
                return FromStatus(status.Code, status, retryAfterHeader: null, request);

            default:
                {
                    var permission = (request ?? Unknown).Permission;
                    var madeIdempotent = request?.MadeIdempotent ?? true;
                    return TransportOf(exception) is { } transport
                        ? Retries.DescribeTransport(transport, exception.Message, permission, madeIdempotent)
                        : Retries.DescribeUnknown(exception.Message, permission, madeIdempotent);
                }
        }
    }

    /// <summary>Describes an unsuccessful response, whose body has been buffered, for the classifier.</summary>
    internal static ApiError Describe(HttpResponseMessage response, string? body, KubernetesRequest request, DateTimeOffset now)
    {
        var header = response.Headers.RetryAfter switch
        {
            { Delta: { } delta } => delta,
            { Date: { } date } => date - now,
            _ => (TimeSpan?)null,
        };
        return FromStatus((int)response.StatusCode, ParseStatus(body), header, request);
    }

    /// <summary>The transport failure an exception (or one it wraps) reports, or null if it reports none.</summary>
    internal static TransportFailure? TransportOf(Exception exception)
    {
        for (Exception? current = exception; current is not null; current = current.InnerException)
        {
            switch (current)
            {
                case TimeoutRejectedException or TimeoutException:
                    return TransportFailure.Timeout;
                case AuthenticationException:
                    return InterruptedHandshake(current) ?? TransportFailure.Tls;
                case HttpRequestException http when http.HttpRequestError != HttpRequestError.Unknown:
                    return http.HttpRequestError switch
                    {
                        HttpRequestError.NameResolutionError => TransportFailure.Dns,
                        // Nothing was sent: the connection (or the proxy's tunnel) was never established.
                        HttpRequestError.ConnectionError or HttpRequestError.ProxyTunnelError => TransportFailure.Refused,
                        HttpRequestError.SecureConnectionError => InterruptedHandshake(http) ?? TransportFailure.Tls,
                        HttpRequestError.ResponseEnded => TransportFailure.Reset,
                        _ => TransportFailure.Other,
                    };
                case SocketException socket:
                    return socket.SocketErrorCode switch
                    {
                        SocketError.ConnectionRefused or SocketError.NetworkUnreachable or SocketError.HostUnreachable => TransportFailure.Refused,
                        SocketError.ConnectionReset or SocketError.ConnectionAborted or SocketError.Shutdown => TransportFailure.Reset,
                        SocketError.TimedOut => TransportFailure.Timeout,
                        SocketError.HostNotFound or SocketError.TryAgain or SocketError.NoData => TransportFailure.Dns,
                        _ => TransportFailure.Other,
                    };
                default:
                    break;
            }
        }

        return exception switch
        {
            // A cancellation nobody asked for is HttpClient's or the client's own timeout.
            OperationCanceledException => TransportFailure.Timeout,
            IOException or HttpRequestException => TransportFailure.Reset,
            _ => null,
        };
    }

    /// <summary>
    /// A TLS handshake the network cut short (reset, or closed before the server answered) is not a certificate or
    /// configuration problem: a restarting API server or a load balancer in front of it does that. Nothing was sent
    /// yet, so it is a refused connection, retryable for every request. Null when the handshake itself failed.
    /// </summary>
    private static TransportFailure? InterruptedHandshake(Exception secure)
    {
        for (var current = secure.InnerException; current is not null; current = current.InnerException)
        {
            if (current is SocketException or IOException
                || (current is AuthenticationException && current.InnerException is null && current.Message.Contains("transport stream", StringComparison.Ordinal)))
            {
                return TransportFailure.Refused;
            }
        }

        return secure is AuthenticationException && secure.Message.Contains("closed the transport stream", StringComparison.Ordinal)
            ? TransportFailure.Refused
            : null;
    }

    private static readonly KubernetesRequest Unknown = KubernetesRequest.From(HttpMethod.Get, null, null, default);

    private static ApiError FromStatus(int? code, V1Status? status, TimeSpan? retryAfterHeader, KubernetesRequest? request)
    {
        TimeSpan? retryAfterDetails = status?.Details?.RetryAfterSeconds is int seconds ? TimeSpan.FromSeconds(seconds) : null;
        TimeSpan? retryAfter = (retryAfterHeader, retryAfterDetails) switch
        {
            ({ } a, { } b) => a > b ? a : b,
            ({ } a, null) => a,
            (null, { } b) => b,
            _ => null,
        };
        var causes = status?.Details?.Causes?
            .Where(c => c is not null)
            .Select(c => Retries.FieldCause(c.Field, c.Reason, c.Message))
            .ToArray();
        return Retries.DescribeResponse(
            status: code ?? status?.Code,
            reason: status?.Reason,
            message: status?.Message,
            causes: causes,
            retryAfter: retryAfter,
            permission: (request ?? Unknown).Permission,
            madeIdempotent: request?.MadeIdempotent ?? true);
    }

    private static V1Status? ParseStatus(string? body)
    {
        if (string.IsNullOrWhiteSpace(body) || !body.TrimStart().StartsWith('{'))
        {
            return null;
        }

        try
        {
            return KubernetesJson.Deserialize<V1Status>(body);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static IEnumerable<string> HeaderValues(IDictionary<string, IEnumerable<string>>? headers, string name) =>
        headers?.FirstOrDefault(h => string.Equals(h.Key, name, StringComparison.OrdinalIgnoreCase)).Value ?? [];

    private static string? ContentType(IDictionary<string, IEnumerable<string>>? headers) =>
        HeaderValues(headers, "Content-Type").FirstOrDefault();

    private static TimeSpan? RetryAfter(IEnumerable<string> values, DateTimeOffset now)
    {
        foreach (var value in values)
        {
            if (RetryConditionHeaderValue.TryParse(value, out var parsed))
            {
                return parsed switch
                {
                    { Delta: { } delta } => delta,
                    { Date: { } date } => date - now,
                    _ => null,
                };
            }
        }

        return null;
    }
}
