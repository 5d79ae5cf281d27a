using System.Collections.Concurrent;

namespace HybridBatch.Runtime;

/// <summary>
/// The tails of failed jobs' logs by the name of their Job, the most recent <see cref="Capacity"/> of them: a caller
/// reads a log soon after collecting its job, and a long-running daemon must not keep every log it ever read. Also the
/// reads under way: a failed job's result is handed out only once its log was read, as collecting deletes its pod.
/// </summary>
/// <param name="capacity">How many logs are kept; the oldest goes when one more comes.</param>
internal sealed class FailureLogs(int capacity = FailureLogs.DefaultCapacity)
{
    /// <summary>The logs kept by default: at most 16 KiB each, so a few tens of MB at worst.</summary>
    public const int DefaultCapacity = 1024;

    private readonly Lock _gate = new();
    private readonly Dictionary<string, string> _logs = new(StringComparer.Ordinal);
    private readonly Queue<string> _arrival = new();
    private readonly ConcurrentDictionary<string, TaskCompletionSource> _reading = new(StringComparer.Ordinal);

    /// <summary>How many logs are kept at most.</summary>
    public int Capacity { get; } = capacity > 0 ? capacity : throw new ArgumentOutOfRangeException(nameof(capacity), capacity, "Keep at least one log.");

    /// <summary>Keeps a job's log, forgetting the oldest one when there are more than <see cref="Capacity"/>.</summary>
    /// <param name="backingId">The name of the job's Kubernetes Job.</param>
    /// <param name="log">The tail of its pod's log.</param>
    public void Add(string backingId, string log)
    {
        lock (_gate)
        {
            if (_logs.TryAdd(backingId, log))
            {
                _arrival.Enqueue(backingId);
                while (_arrival.Count > Capacity)
                {
                    _logs.Remove(_arrival.Dequeue());
                }
            }
            else
            {
                _logs[backingId] = log;
            }
        }
    }

    /// <summary>The log kept for a job, or null.</summary>
    /// <param name="backingId">The name of the job's Kubernetes Job.</param>
    /// <returns>The tail of its pod's log, or null when none is kept.</returns>
    public string? Get(string backingId)
    {
        lock (_gate)
        {
            return _logs.GetValueOrDefault(backingId);
        }
    }

    /// <summary>Notes that a job's log is to be read; called in the step that ends the job, under the runtime's lock.</summary>
    /// <param name="backingId">The name of the job's Kubernetes Job.</param>
    public void Expect(string backingId) =>
        _reading[backingId] = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Notes that the read of a job's log is over, kept or not.</summary>
    /// <param name="backingId">The name of the job's Kubernetes Job.</param>
    public void Done(string backingId)
    {
        // Only the reader removes the entry, after completing it: a collector that took it away could leave the reader
        // nothing to complete, and wait for ever.
        if (_reading.TryRemove(backingId, out var reading))
        {
            reading.TrySetResult();
        }
    }

    /// <summary>Completes when the read of a job's log is over (at once when none is under way).</summary>
    /// <param name="backingId">The name of the job's Kubernetes Job.</param>
    /// <returns>The read's end.</returns>
    public Task ReadOf(string backingId) =>
        _reading.TryGetValue(backingId, out var reading) ? reading.Task : Task.CompletedTask;
}
