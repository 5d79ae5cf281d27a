using HybridBatch.Daemon.Tes;

namespace HybridBatch.Integration.Daemon;

/// <summary>The per-task locks the runner moves tasks under.</summary>
public sealed class TaskLocksTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task A_task_s_lock_is_not_held_up_by_another_task_s()
    {
        var locks = new TaskLocks();
        using var a = await locks.LockAsync("a", CancellationToken.None);

        using var b = await locks.LockAsync("b", CancellationToken.None).WaitAsync(Bound);

        Assert.Equal(2, locks.Count);
    }

    [Fact]
    public async Task A_task_s_lock_is_held_by_one_caller_at_a_time()
    {
        var locks = new TaskLocks();
        var first = await locks.LockAsync("a", CancellationToken.None);

        var second = locks.LockAsync("a", CancellationToken.None);
        Assert.False(second.IsCompleted);
        first.Dispose();
        (await second.WaitAsync(Bound)).Dispose();
    }

    [Fact]
    public async Task A_lock_nobody_holds_or_awaits_is_forgotten_even_when_a_wait_is_canceled()
    {
        var locks = new TaskLocks();
        var held = await locks.LockAsync("a", CancellationToken.None);
        using var stop = new CancellationTokenSource();
        var waiting = locks.LockAsync("a", stop.Token);
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);
        held.Dispose();
        held.Dispose();

        Assert.Equal(0, locks.Count);
        using var again = await locks.LockAsync("a", CancellationToken.None).WaitAsync(Bound);
    }
}
