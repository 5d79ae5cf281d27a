namespace HybridBatch.Daemon.Tes;

/// <summary>
/// One async lock per task: a task's record is read, moved on and saved by one caller at a time, while other tasks go on.
/// A task's lock exists only while someone holds or waits for it, so finished tasks leave nothing behind.
/// </summary>
internal sealed class TaskLocks
{
    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);

    /// <summary>The number of tasks whose lock is held or awaited.</summary>
    public int Count
    {
        get
        {
            lock (_entries)
            {
                return _entries.Count;
            }
        }
    }

    /// <summary>Waits for the task's lock; dispose the result to release it.</summary>
    public async Task<IDisposable> LockAsync(string taskId, CancellationToken cancellationToken)
    {
        Entry entry;
        lock (_entries)
        {
            if (!_entries.TryGetValue(taskId, out entry!))
            {
                _entries[taskId] = entry = new Entry();
            }

            entry.Users++;
        }

        try
        {
            await entry.Semaphore.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            Leave(taskId, entry);
            throw;
        }

        return new Held(this, taskId, entry);
    }

    private void Leave(string taskId, Entry entry)
    {
        lock (_entries)
        {
            if (--entry.Users == 0)
            {
                _entries.Remove(taskId);
                entry.Semaphore.Dispose();
            }
        }
    }

    private sealed class Entry
    {
        public SemaphoreSlim Semaphore { get; } = new(1, 1);

        public int Users { get; set; }
    }

    private sealed class Held(TaskLocks owner, string taskId, Entry entry) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                entry.Semaphore.Release();
                owner.Leave(taskId, entry);
            }
        }
    }
}
