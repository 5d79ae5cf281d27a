namespace HybridBatch.Integration.Resilience;

/// <summary>
/// A clock that only moves when told (what FakeTimeProvider does): timers fire when <see cref="Advance"/> passes
/// their due time, so a 30 s Retry-After can be checked without waiting 30 s.
/// </summary>
internal sealed class ManualClock : TimeProvider
{
    private readonly Lock _lock = new();
    private readonly List<ManualTimer> _timers = [];
    private readonly DateTimeOffset _start = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private long _now;

    public override DateTimeOffset GetUtcNow() => _start + TimeSpan.FromTicks(Interlocked.Read(ref _now));

    public override long GetTimestamp() => Interlocked.Read(ref _now);

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    /// <summary>How far ahead each armed timer is due.</summary>
    public IReadOnlyList<TimeSpan> PendingTimers()
    {
        lock (_lock)
        {
            var now = Interlocked.Read(ref _now);
            return [.. _timers.Where(t => t.Due is not null).Select(t => TimeSpan.FromTicks(t.Due!.Value - now))];
        }
    }

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = new ManualTimer(this, callback, state);
        lock (_lock)
        {
            _timers.Add(timer);
        }

        timer.Change(dueTime, period);
        return timer;
    }

    /// <summary>Moves the clock on, firing every timer that falls due.</summary>
    public void Advance(TimeSpan by)
    {
        List<ManualTimer> due;
        lock (_lock)
        {
            var now = Interlocked.Add(ref _now, by.Ticks);
            due = [.. _timers.Where(t => t.Due is { } d && d <= now)];
            foreach (var timer in due)
            {
                timer.Due = timer.Period is { } p ? now + p : null;
            }
        }

        foreach (var timer in due)
        {
            timer.Fire();
        }
    }

    private void Remove(ManualTimer timer)
    {
        lock (_lock)
        {
            _timers.Remove(timer);
        }
    }

    private sealed class ManualTimer(ManualClock clock, TimerCallback callback, object? state) : ITimer
    {
        public long? Due { get; set; }

        public long? Period { get; private set; }

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            lock (clock._lock)
            {
                Period = period == Timeout.InfiniteTimeSpan || period == TimeSpan.Zero ? null : period.Ticks;
                Due = dueTime == Timeout.InfiniteTimeSpan ? null : Interlocked.Read(ref clock._now) + dueTime.Ticks;
            }

            if (dueTime == TimeSpan.Zero)
            {
                clock.Advance(TimeSpan.Zero);
            }

            return true;
        }

        public void Fire() => ThreadPool.QueueUserWorkItem(_ => callback(state));

        public void Dispose() => clock.Remove(this);

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
