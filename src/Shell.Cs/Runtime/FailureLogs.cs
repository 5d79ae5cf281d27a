namespace HybridBatch.Runtime;

/// <summary>
/// The tails of failed jobs' logs by the name of their Job, the most recent <see cref="Capacity"/> of them: a caller
/// reads a log soon after collecting its job, and a long-running daemon must not keep every log it ever read.
/// </summary>
/// <param name="capacity">How many logs are kept; the oldest goes when one more comes.</param>
internal sealed class FailureLogs(int capacity = FailureLogs.DefaultCapacity)
{
    /// <summary>The logs kept by default: at most 16 KiB each, so a few tens of MB at worst.</summary>
    public const int DefaultCapacity = 1024;

    private readonly Lock _gate = new();
    private readonly Dictionary<string, string> _logs = new(StringComparer.Ordinal);
    private readonly Queue<string> _arrival = new();

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
}
