using System.Collections.Concurrent;
using HybridBatch.Core;
using HybridBatch.Core.Api;

namespace HybridBatch.Runtime;

/// <summary>
/// The one owner of the jobs' state: the lock, the core's model and its transition function. Every change is an event
/// applied under the lock; the effects it returns are then started, in the order the core returned them, each by its
/// handler (<see cref="JobEffects"/> on a cluster), and tracked until they finish. The pod watch and a one-second tick
/// feed it (a simulation feeds it from its own virtual clock instead). The model is immutable, so queries read the one
/// last stored without taking the lock.
/// </summary>
internal sealed class JobRuntime
{
    private readonly Lock _gate = new();
    private readonly TimeProvider _time;
    private readonly IJobEffects _effects;
    private readonly FailureLogs _failureLogs;
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentDictionary<Task, byte> _inFlight = new();
    private readonly SemaphoreSlim _ended = new(0);
    private readonly List<Task> _loops = [];
    private JobState.Model _model;

    /// <summary>Creates the runtime of a fresh batch system.</summary>
    /// <param name="model">The core's initial model.</param>
    /// <param name="time">The clock events are stamped with.</param>
    /// <param name="failureLogs">Failed jobs' logs, and the reads under way that hold their results back.</param>
    /// <param name="effects">Makes the effect handlers, which report back to this runtime.</param>
    public JobRuntime(JobState.Model model, TimeProvider time, FailureLogs failureLogs, Func<JobRuntime, IJobEffects> effects)
    {
        _model = model;
        _time = time;
        _failureLogs = failureLogs;
        _effects = effects(this);
    }

    /// <summary>Now, as the core counts time: milliseconds since the Unix epoch.</summary>
    public long Now => _time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>The core's model as last stored.</summary>
    public JobState.Model Model => Volatile.Read(ref _model);

    /// <summary>
    /// Sees, in order and under the lock, every event given to the core and every collection (as null): a benchmark
    /// records a run with it to replay the same inputs through the core alone. Null (the default) costs a test per event.
    /// </summary>
    public Action<JobState.Event?>? Journal { get; set; }

    /// <summary>Cancelled when the batch system stops: calls still under way give up.</summary>
    public CancellationToken Stopping => _stopping.Token;

    /// <summary>Starts the pod watch and the clock.</summary>
    /// <param name="watch">The run's pod watch (<see cref="PodWatcher.RunAsync"/>), run until the token is cancelled.</param>
    public void Start(Func<CancellationToken, Task> watch)
    {
        var token = _stopping.Token;
        _loops.Add(Task.Run(() => watch(token), CancellationToken.None));
        _loops.Add(Task.Run(() => TickAsync(token), CancellationToken.None));
    }

    /// <summary>Applies one event, then starts the effects it asks for.</summary>
    /// <param name="event">What happened.</param>
    public void Apply(JobState.Event @event)
    {
        JobState.Effect[] effects;
        lock (_gate)
        {
            effects = Step(@event);
        }

        Dispatch(effects);
    }

    /// <summary>
    /// Prepares a job with the next id and issues it, so that ids follow the order of issue. The job is prepared
    /// outside the lock, for the id that is next when the call starts; should another caller issue a job meanwhile,
    /// it is prepared again, under the lock, for the id that is next then.
    /// </summary>
    /// <param name="prepare">The core's preparation of the job with the id it gets.</param>
    /// <returns>The job's id, or why it cannot be issued (then nothing changed).</returns>
    public (int Id, JobProblem? Problem) Issue(Func<int, Preparation> prepare)
    {
        var id = Transitions.NextId(Volatile.Read(ref _model));
        var preparation = prepare(id);
        if (preparation.Problem is { } refused)
        {
            // What is wrong with a job does not depend on its id.
            return (id, refused);
        }

        JobState.Effect[] effects;
        lock (_gate)
        {
            var next = Transitions.NextId(_model);
            if (next != id)
            {
                id = next;
                preparation = prepare(id);
                if (preparation.Problem is { } problem)
                {
                    return (id, problem);
                }
            }

            effects = Step(Events.Issued(preparation.Job!, Now));
        }

        Dispatch(effects);
        return (id, null);
    }

    /// <summary>
    /// Takes the oldest result not taken yet, waits until its log was read if it failed, and starts the deletion of its
    /// Job. The wait is not cancelled: the result is already out of the model and must not be lost; the read ends by
    /// itself (request timeout, or shutdown).
    /// </summary>
    /// <returns>The result, or null when none waits.</returns>
    public async Task<JobResult?> CollectAsync()
    {
        Collected collected;
        lock (_gate)
        {
            collected = Transitions.Collect(_model);
            Volatile.Write(ref _model, collected.Model);
            Journal?.Invoke(null);
        }

        if (collected.Result is { } result)
        {
            await _failureLogs.ReadOf(result.BackingId).ConfigureAwait(false);
        }

        Dispatch(collected.Effects);
        return collected.Result;
    }

    /// <summary>Kills jobs, and deletes their Jobs.</summary>
    /// <param name="ids">The jobs; unknown ones are ignored.</param>
    /// <returns>A task that completes when the delete calls were answered.</returns>
    public Task KillAsync(IEnumerable<int> ids)
    {
        JobState.Effect[] effects;
        lock (_gate)
        {
            effects = Step(Events.Kill(ids, Now));
        }

        return Task.WhenAll(Dispatch(effects));
    }

    /// <summary>Whether a job is issued and neither killed nor collected.</summary>
    /// <param name="id">The job.</param>
    /// <returns>True while the job is tracked.</returns>
    public bool IsIssued(int id) => Transitions.IsIssued(Volatile.Read(ref _model), id);

    /// <summary>Issued jobs not yet collected or killed, increasing.</summary>
    /// <returns>The ids.</returns>
    public IReadOnlyList<int> Issued() => Transitions.Issued(Volatile.Read(ref _model));

    /// <summary>Jobs whose container runs, with how long it has run.</summary>
    /// <returns>Job id to milliseconds running.</returns>
    public IReadOnlyDictionary<int, long> Running() => Transitions.Running(Volatile.Read(ref _model), Now);

    /// <summary>Notes that a job's end was handled (its log kept): a waiting collector may take it.</summary>
    public void SignalEnded() => _ended.Release();

    /// <summary>Waits until a job's end was handled, or the time is up.</summary>
    /// <param name="timeout">How long to wait.</param>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>True when a job ended in time.</returns>
    public Task<bool> WaitForEndedAsync(TimeSpan timeout, CancellationToken cancellationToken) =>
        _ended.WaitAsync(timeout, cancellationToken);

    /// <summary>
    /// Ends the run: the core forgets every job, the watch and the clock stop, the calls under way finish, every Job and
    /// pod of the run is deleted and node work directories are cleaned, then this waits (a minute at most) for the pods
    /// to go.
    /// </summary>
    /// <param name="cancellationToken">Stops waiting for the pods to go.</param>
    /// <returns>A task that completes when shut down.</returns>
    public async Task ShutdownAsync(CancellationToken cancellationToken)
    {
        JobState.Effect[] effects;
        lock (_gate)
        {
            effects = Step(Events.Shutdown(Now));
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        try
        {
            await Task.WhenAll(_loops).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        await Task.WhenAll(_inFlight.Keys).ConfigureAwait(false);
        await Task.WhenAll(Dispatch(effects)).ConfigureAwait(false);
        await _effects.WaitForPodsGoneAsync(TimeSpan.FromSeconds(60), _time, cancellationToken).ConfigureAwait(false);
        _ended.Release();
    }

    /// <summary>Stops the watch and the clock and waits for the calls under way; the run's Jobs stay.</summary>
    /// <returns>A task that completes when stopped.</returns>
    public async ValueTask StopAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        try
        {
            await Task.WhenAll(_loops).ConfigureAwait(false);
            await Task.WhenAll(_inFlight.Keys).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        _ended.Release();
        _stopping.Dispose();
    }

    private JobState.Effect[] Step(JobState.Event @event)
    {
        Journal?.Invoke(@event);
        var transition = Transitions.Step(_model, @event);
        Volatile.Write(ref _model, transition.Model);
        foreach (var effect in transition.Effects)
        {
            // Before the lock is let go, so no collector can take a failed job's result before its log read is known.
            if (Transitions.ReadsLog(effect) is { } backingId)
            {
                _failureLogs.Expect(backingId);
            }
        }

        return transition.Effects;
    }

    /// <summary>
    /// Starts each effect's handler in the order the core returned them. Handlers run concurrently (creates, for
    /// one, up to their limit); those still running are tracked until they finish.
    /// </summary>
    private List<Task> Dispatch(JobState.Effect[] effects)
    {
        var tasks = new List<Task>(effects.Length);
        foreach (var effect in effects)
        {
            var task = Transitions.Perform(effect, _effects);
            if (!task.IsCompleted)
            {
                _inFlight.TryAdd(task, 0);
                _ = task.ContinueWith(t => _inFlight.TryRemove(t, out _), TaskScheduler.Default);
                tasks.Add(task);
            }
        }

        return tasks;
    }

    private async Task TickAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1), _time);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
            {
                Apply(Events.Tick(Now));
            }
        }
        catch (OperationCanceledException)
        {
        }
    }
}

/// <summary>
/// What performs the core's effects for a <see cref="JobRuntime"/>: the Kubernetes calls (<see cref="JobEffects"/>), or
/// a simulated cluster's.
/// </summary>
internal interface IJobEffects : IEffectHandler<Task>
{
    /// <summary>Waits, up to <paramref name="deadline"/>, until the run has no pods left.</summary>
    /// <param name="deadline">How long to wait at most.</param>
    /// <param name="time">The clock.</param>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>A task that completes when the pods are gone or the time is up.</returns>
    Task WaitForPodsGoneAsync(TimeSpan deadline, TimeProvider time, CancellationToken cancellationToken);
}
