namespace HybridBatch.Contract;

/// <summary>Waiting in tests, on any clock: the real one on a real cluster, the virtual one on the simulated cluster.</summary>
public static class Wait
{
    /// <summary>Waits for a result, failing the test when none comes within <paramref name="timeout"/>.</summary>
    /// <param name="system">The batch system.</param>
    /// <param name="timeout">How long at most.</param>
    /// <returns>The result.</returns>
    public static async Task<UpdatedBatchJobInfo> NextAsync(IBatchSystem system, TimeSpan timeout)
    {
        var result = await system.GetUpdatedBatchJobAsync(timeout);
        Assert.NotNull(result);
        return result;
    }

    /// <summary>Waits until a condition holds, looking every 250 ms of the clock; false when it did not within the timeout.</summary>
    /// <param name="condition">The condition.</param>
    /// <param name="timeout">How long at most.</param>
    /// <param name="now">The clock.</param>
    /// <param name="pause">Lets time pass on that clock.</param>
    /// <returns>Whether it held.</returns>
    public static async Task<bool> UntilAsync(Func<Task<bool>> condition, TimeSpan timeout, Func<DateTimeOffset> now, Func<TimeSpan, Task> pause)
    {
        var deadline = now() + timeout;
        while (now() < deadline)
        {
            if (await condition())
            {
                return true;
            }

            await pause(TimeSpan.FromMilliseconds(250));
        }

        return await condition();
    }
}
