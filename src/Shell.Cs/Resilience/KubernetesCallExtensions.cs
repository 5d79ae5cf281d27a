namespace HybridBatch.Resilience;

/// <summary>Helpers for callers of the wrapped client: treating "already done" as success.</summary>
public static class KubernetesCallExtensions
{
    /// <summary>
    /// Awaits a call, treating "already done" (404 on a delete, 409 AlreadyExists on our create) as success.
    /// </summary>
    /// <typeparam name="T">What the call returns.</typeparam>
    /// <param name="call">The call.</param>
    /// <returns>The call's result, or the default when the goal already held.</returns>
    public static async Task<T?> AllowingAlreadyDoneAsync<T>(this Task<T> call)
    {
        ArgumentNullException.ThrowIfNull(call);
        try
        {
            return await call.ConfigureAwait(false);
        }
        catch (KubernetesApiException ex) when (ex.Decision == KubernetesCallDecision.AlreadyDone)
        {
            return default;
        }
    }

    /// <summary>
    /// Awaits a call, treating "already done" (404 on a delete, 409 AlreadyExists on our create) as success.
    /// </summary>
    /// <param name="call">The call.</param>
    /// <returns>True if this call did it, false if it was already done.</returns>
    public static async Task<bool> AllowingAlreadyDoneAsync(this Task call)
    {
        ArgumentNullException.ThrowIfNull(call);
        try
        {
            await call.ConfigureAwait(false);
            return true;
        }
        catch (KubernetesApiException ex) when (ex.Decision == KubernetesCallDecision.AlreadyDone)
        {
            return false;
        }
    }
}
