using System.Net;
using HybridBatch.Core;
using k8s.Autorest;

namespace HybridBatch.Resilience;

/// <summary>
/// A Kubernetes call that the resilience pipeline gave up on or that needs the caller's attention, with the core's
/// decision and its explanation as the message. It derives from <see cref="HttpOperationException"/>, so code that
/// inspects the client's usual exception (status, response body) keeps working.
/// </summary>
public sealed class KubernetesApiException : HttpOperationException
{
    /// <summary>Creates an exception with a message only (no decision: treated as a failure).</summary>
    public KubernetesApiException()
        : this("The Kubernetes call failed.")
    {
    }

    /// <summary>Creates an exception with a message only (no decision: treated as a failure).</summary>
    /// <param name="message">What went wrong.</param>
    public KubernetesApiException(string message)
        : this(message, null)
    {
    }

    /// <summary>Creates an exception with a message and a cause (no decision: treated as a failure).</summary>
    /// <param name="message">What went wrong.</param>
    /// <param name="innerException">What caused it.</param>
    public KubernetesApiException(string message, Exception? innerException)
        : base(message, innerException)
    {
        Decision = KubernetesCallDecision.Fail;
    }

    internal KubernetesApiException(string message, Decision decision, HttpStatusCode? statusCode, int attempts, TimeSpan elapsed, Exception? innerException)
        : base(message, innerException)
    {
        Decision = KubernetesCallDecisions.Of(decision);
        CoreDecision = decision;
        StatusCode = statusCode;
        Attempts = attempts;
        Elapsed = elapsed;
    }

    /// <summary>The core's decision: <c>Fail</c> with the reason, <c>Retry</c> when the budget ran out, or
    /// <c>Resync</c>/<c>AlreadyDone</c> for the caller to act on.</summary>
    public KubernetesCallDecision Decision { get; }

    /// <summary>The core's decision itself, with its reason; null when the exception was made without one.</summary>
    internal Decision? CoreDecision { get; }

    /// <summary>The HTTP status of the last attempt, or null if no response arrived.</summary>
    public HttpStatusCode? StatusCode { get; }

    /// <summary>How many attempts were made.</summary>
    public int Attempts { get; }

    /// <summary>How long the call took, all attempts and delays included.</summary>
    public TimeSpan Elapsed { get; }
}
