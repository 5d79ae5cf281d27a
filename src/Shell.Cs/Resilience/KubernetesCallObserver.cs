using System.Collections.Concurrent;

namespace HybridBatch.Resilience;

/// <summary>How a Kubernetes call through the <see cref="KubernetesResilienceHandler"/> ended.</summary>
public enum KubernetesCallOutcome
{
    /// <summary>The server answered with success.</summary>
    Succeeded = 1,

    /// <summary>The goal already held (404 on a delete, 409 AlreadyExists on our create).</summary>
    AlreadyDone = 2,

    /// <summary>A watch must list again (410 Gone).</summary>
    Resync = 3,

    /// <summary>The classifier said the failure cannot be fixed by retrying.</summary>
    Failed = 4,

    /// <summary>The failure was retryable but the retry budget ran out.</summary>
    GaveUp = 5,

    /// <summary>The caller cancelled the call.</summary>
    Cancelled = 6,
}

/// <summary>One finished Kubernetes call: what it did and how it ended.</summary>
/// <param name="Verb">The RBAC verb (<c>create</c>, <c>list</c>, <c>watch</c>...).</param>
/// <param name="Resource">The resource as RBAC names it (<c>jobs.batch</c>, <c>pods/log</c>).</param>
/// <param name="Namespace">The namespace, or null for a cluster-scoped call.</param>
/// <param name="Outcome">How it ended.</param>
/// <param name="StatusCode">The last HTTP status, or null if no response arrived.</param>
/// <param name="Attempts">How many attempts were sent.</param>
/// <param name="Elapsed">How long it took, delays included.</param>
public sealed record KubernetesCallRecord(string Verb, string Resource, string? Namespace, KubernetesCallOutcome Outcome, int? StatusCode, int Attempts, TimeSpan Elapsed);

/// <summary>One retry about to happen.</summary>
/// <param name="Verb">The RBAC verb.</param>
/// <param name="Resource">The resource as RBAC names it.</param>
/// <param name="Namespace">The namespace, or null for a cluster-scoped call.</param>
/// <param name="Attempt">The attempt that failed, from 1.</param>
/// <param name="Delay">How long the wrapper waits before the next attempt.</param>
/// <param name="Cause">Why the attempt failed (status or transport failure).</param>
public sealed record KubernetesRetryRecord(string Verb, string Resource, string? Namespace, int Attempt, TimeSpan Delay, string Cause);

/// <summary>
/// Sees every Kubernetes call the <see cref="KubernetesResilienceHandler"/> makes, for metrics and benchmarks. Its methods run
/// on the request path: they must be quick, thread-safe and must not throw.
/// </summary>
public interface IKubernetesCallObserver
{
    /// <summary>Called before each retry's delay.</summary>
    /// <param name="retry">The retry.</param>
    void OnRetry(KubernetesRetryRecord retry);

    /// <summary>Called once per call when it has ended, however it ended.</summary>
    /// <param name="call">The call.</param>
    void OnCompleted(KubernetesCallRecord call);
}

/// <summary>A key of <see cref="KubernetesCallCounter"/>'s counts.</summary>
/// <param name="Verb">The RBAC verb.</param>
/// <param name="Resource">The resource as RBAC names it.</param>
/// <param name="Outcome">How the calls ended.</param>
public readonly record struct KubernetesCallKey(string Verb, string Resource, KubernetesCallOutcome Outcome);

/// <summary>Counts calls per verb, resource and outcome, and retries; thread-safe.</summary>
public sealed class KubernetesCallCounter : IKubernetesCallObserver
{
    private readonly ConcurrentDictionary<KubernetesCallKey, long> _calls = new();
    private long _requests;
    private long _attempts;
    private long _retries;

    /// <summary>Calls made (each counted once however many attempts it took).</summary>
    public long Requests => Interlocked.Read(ref _requests);

    /// <summary>HTTP requests sent, retries included.</summary>
    public long Attempts => Interlocked.Read(ref _attempts);

    /// <summary>Retries made.</summary>
    public long Retries => Interlocked.Read(ref _retries);

    /// <summary>Calls with this verb (and, if given, this outcome).</summary>
    /// <param name="verb">The RBAC verb.</param>
    /// <param name="outcome">The outcome, or null for any.</param>
    /// <returns>The count.</returns>
    public long Count(string verb, KubernetesCallOutcome? outcome = null) =>
        _calls.Where(kv => kv.Key.Verb == verb && (outcome is null || kv.Key.Outcome == outcome)).Sum(kv => kv.Value);

    /// <summary>A copy of the counts so far.</summary>
    /// <returns>Calls per verb, resource and outcome.</returns>
    public IReadOnlyDictionary<KubernetesCallKey, long> Snapshot() => new Dictionary<KubernetesCallKey, long>(_calls);

    /// <inheritdoc/>
    public void OnRetry(KubernetesRetryRecord retry) => Interlocked.Increment(ref _retries);

    /// <inheritdoc/>
    public void OnCompleted(KubernetesCallRecord call)
    {
        ArgumentNullException.ThrowIfNull(call);
        Interlocked.Increment(ref _requests);
        Interlocked.Add(ref _attempts, call.Attempts);
        _calls.AddOrUpdate(new KubernetesCallKey(call.Verb, call.Resource, call.Outcome), 1, (_, n) => n + 1);
    }
}
