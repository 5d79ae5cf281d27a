using HybridBatch.Core;
using HybridBatch.Core.Api;

namespace HybridBatch.Resilience;

/// <summary>
/// How every Kubernetes API call is made resilient: a client-side rate limit, a per-request timeout and retries
/// within a time budget, with delays from the core's back-off schedule. A batch system's come from the configuration
/// section <c>HybridBatch:Resilience</c> (durations written as <c>00:00:30</c>).
/// </summary>
public sealed record KubernetesResilienceOptions
{
    /// <summary>Sustained requests per second this client sends to the API server; 0 turns the limit off; default 200.</summary>
    public double Qps { get; init; } = 200;

    /// <summary>How many requests may be sent at once above the sustained rate (the token bucket's size); default 400.</summary>
    public int Burst { get; init; } = 400;

    /// <summary>How many requests may wait for the rate limiter before further ones are rejected.</summary>
    public int MaxQueuedRequests { get; init; } = 10_000;

    /// <summary>
    /// How long one attempt may take until its whole response has arrived (for a watch or a followed log: until
    /// its headers have arrived; the streamed body is not cut).
    /// </summary>
    public TimeSpan PerRequestTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>No retry starts later than this after the call's first attempt started.</summary>
    public TimeSpan RetryBudget { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary>The delay before the first retry, before jitter; it doubles per attempt.</summary>
    public TimeSpan FirstRetryDelay { get; init; } = TimeSpan.FromMilliseconds(250);

    /// <summary>No computed delay exceeds this; a longer <c>Retry-After</c> from the server is still honoured.</summary>
    public TimeSpan MaxRetryDelay { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Throws <see cref="ArgumentException"/> naming the first unusable option and how to fix it.</summary>
    /// <exception cref="ArgumentException">An option is out of range.</exception>
    public void Validate()
    {
        if (double.IsNaN(Qps) || double.IsInfinity(Qps) || Qps < 0)
        {
            throw new ArgumentException($"{nameof(Qps)} must be a finite number of requests per second, at least 0 (0 turns the limit off), not {Qps}.", nameof(Qps));
        }

        if (Burst < 1)
        {
            throw new ArgumentException($"{nameof(Burst)} must be at least 1, not {Burst}.", nameof(Burst));
        }

        if (MaxQueuedRequests < 0)
        {
            throw new ArgumentException($"{nameof(MaxQueuedRequests)} must not be negative, not {MaxQueuedRequests}.", nameof(MaxQueuedRequests));
        }

        if (PerRequestTimeout < TimeSpan.FromMilliseconds(10) || PerRequestTimeout > TimeSpan.FromDays(1))
        {
            throw new ArgumentException($"{nameof(PerRequestTimeout)} must be between 10 ms and 1 day, not {PerRequestTimeout}.", nameof(PerRequestTimeout));
        }

        if (Retries.PolicyProblem(FirstRetryDelay, MaxRetryDelay, RetryBudget) is { } problem)
        {
            throw new ArgumentException($"{problem} Set {nameof(FirstRetryDelay)}, {nameof(MaxRetryDelay)} and {nameof(RetryBudget)} accordingly.");
        }
    }

    internal BackoffPolicy BackoffPolicy => new(FirstRetryDelay, MaxRetryDelay, RetryBudget);
}
