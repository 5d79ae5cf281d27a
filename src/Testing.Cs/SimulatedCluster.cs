using HybridBatch.Core;
using HybridBatch.Core.Api;
using HybridBatch.Resilience;
using HybridBatch.Runtime;
using HybridBatch.Testing.Simulation;
using Microsoft.Extensions.Time.Testing;
using Microsoft.FSharp.Core;

namespace HybridBatch.Testing;

/// <summary>Settings of a simulated cluster.</summary>
public sealed record SimulatedClusterOptions
{
    /// <summary>The seed of every random choice (node ties, start jitter, retry jitter): the same seed gives the same run.</summary>
    public ulong Seed { get; init; }

    /// <summary>The virtual clock; a new one starting at <see cref="Start"/> when null. Advance it only through the cluster.</summary>
    public FakeTimeProvider? Time { get; init; }

    /// <summary>When the virtual clock starts, if the cluster makes it.</summary>
    public DateTimeOffset Start { get; init; } = new(2030, 1, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>A pod's container starts up to this much later than its script says, drawn from the seed.</summary>
    public TimeSpan StartJitter { get; init; }

    /// <summary>How each job's pod behaves; by default it runs one second and exits 0.</summary>
    public Func<SimulatedJob, PodBehaviour> Behaviour { get; init; } = _ => new PodBehaviour();

    /// <summary>How refused create calls are retried: the library's pipeline settings (only the back-off is used).</summary>
    public KubernetesResilienceOptions Resilience { get; init; } = new();
}

/// <summary>
/// A simulated Kubernetes cluster in virtual time: nodes with capacity, labels and taints; the runs' pods, placed as
/// the core decided and run as <see cref="SimulatedClusterOptions.Behaviour"/> scripts them; faults on demand. Time
/// moves only while a <see cref="SimulatedBatchSystem"/> waits for a job (or <see cref="AdvanceAsync"/> lets it pass),
/// straight to the next thing due, so nothing sleeps in real time. Thread-safe: one caller at a time goes on.
/// </summary>
public sealed class SimulatedCluster
{
    private readonly Lock _gate = new();
    private readonly FakeTimeProvider _time;
    private readonly Func<SimulatedJob, PodBehaviour> _behaviour;
    private readonly Queue<Delivery> _deliveries = new();
    private readonly Dictionary<string, JobRuntime> _runs = new(StringComparer.Ordinal);
    private readonly Dictionary<JobRuntime, (JobState.Model Model, long? Due)> _clocks = [];
    private World _world;
    private ulong _runIds;

    /// <summary>Creates a cluster with nodes.</summary>
    /// <param name="options">The seed, the clock and the pods' behaviour.</param>
    /// <param name="nodes">The nodes.</param>
    /// <exception cref="ArgumentException">A node or option cannot be: the message names the value.</exception>
    public SimulatedCluster(SimulatedClusterOptions options, params IEnumerable<SimulatedNode> nodes)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(nodes);
        _time = options.Time ?? new FakeTimeProvider(options.Start);
        _behaviour = options.Behaviour ?? throw new ArgumentException("A behaviour is needed.", nameof(options));
        var backoff = Retries.Policy(options.Resilience.FirstRetryDelay, options.Resilience.MaxRetryDelay, options.Resilience.RetryBudget);
        _world = Checked(Cluster.create(new ClusterConfig(options.Seed, (long)options.StartJitter.TotalMilliseconds, backoff)));
        _runIds = options.Seed;
        foreach (var node in nodes)
        {
            AddNode(node);
        }
    }

    /// <summary>The virtual clock.</summary>
    public TimeProvider Time => _time;

    /// <summary>Now, in virtual time.</summary>
    public DateTimeOffset Now => _time.GetUtcNow();

    /// <summary>The pods in the cluster now, of every run.</summary>
    public int PodCount
    {
        get
        {
            lock (_gate)
            {
                return _world.pods.Count;
            }
        }
    }

    /// <summary>The pods of a run now, oldest first, as a list of them would show them.</summary>
    /// <param name="runId">The run (<see cref="IBatchSystem.RunId"/>).</param>
    /// <returns>The pods.</returns>
    public IReadOnlyList<SimulatedPod> PodsOf(string runId)
    {
        lock (_gate)
        {
            return [.. Cluster.podsOf(runId, _world).Select(pod => SimulatedPod.Of(Cluster.facts(pod, false, null)))];
        }
    }

    /// <summary>How many node cleanups the runs asked for, by node.</summary>
    public IReadOnlyDictionary<string, int> NodeCleanups
    {
        get
        {
            lock (_gate)
            {
                return _world.cleanups.ToDictionary(kv => kv.Key, kv => kv.Value);
            }
        }
    }

    private long NowMs => _time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>Adds a node.</summary>
    /// <param name="node">The node.</param>
    /// <exception cref="ArgumentException">Its name is empty or taken, or a capacity is negative.</exception>
    public void AddNode(SimulatedNode node)
    {
        ArgumentNullException.ThrowIfNull(node);
        lock (_gate)
        {
            _world = Checked(Cluster.addNode(node.ToSpec(), _world));
            Run(NowMs);
        }
    }

    /// <summary>Loses a node after <paramref name="after"/>: its pods go with it and their jobs end Lost.</summary>
    /// <param name="node">The node's name.</param>
    /// <param name="after">How long from now; zero: now.</param>
    /// <exception cref="ArgumentException">No such node, or a time in the past.</exception>
    public void LoseNode(string node, TimeSpan after = default) => Schedule(Fault.NewLoseNode(node), after);

    /// <summary>The kubelet evicts the job's pod after <paramref name="after"/>; its job ends Lost. Nothing happens when it has none then.</summary>
    /// <param name="jobId">The job.</param>
    /// <param name="after">How long from now; zero: now.</param>
    public void EvictPod(int jobId, TimeSpan after = default) => Schedule(Fault.NewEvictPod(jobId), after);

    /// <summary>Someone deletes the job's pod after <paramref name="after"/>; its job ends Lost. Nothing happens when it has none then.</summary>
    /// <param name="jobId">The job.</param>
    /// <param name="after">How long from now; zero: now.</param>
    public void DeletePod(int jobId, TimeSpan after = default) => Schedule(Fault.NewDeletePod(jobId), after);

    /// <summary>The API server refuses creates for <paramref name="duration"/>, from <paramref name="after"/> on.</summary>
    /// <param name="refusal">429, 503 or a quota's 403.</param>
    /// <param name="duration">How long.</param>
    /// <param name="after">How long from now; zero: now.</param>
    public void RefuseCreates(ApiRefusal refusal, TimeSpan duration, TimeSpan after = default) =>
        Schedule(Fault.NewRefuseCreates(refusal, (long)duration.TotalMilliseconds), after);

    /// <summary>Every pod watch is down for <paramref name="duration"/>, from <paramref name="after"/> on, then lists again.</summary>
    /// <param name="duration">How long.</param>
    /// <param name="after">How long from now; zero: now.</param>
    public void CutWatch(TimeSpan duration, TimeSpan after = default) => Schedule(Fault.NewCutWatch((long)duration.TotalMilliseconds), after);

    /// <summary>Schedules a fault at a moment.</summary>
    /// <param name="fault">The fault.</param>
    /// <param name="at">When; not before now.</param>
    /// <exception cref="ArgumentException">The moment is past, the node unknown or a duration negative.</exception>
    public void Schedule(Fault fault, DateTimeOffset at)
    {
        ArgumentNullException.ThrowIfNull(fault);
        lock (_gate)
        {
            _world = Checked(Cluster.scheduleFault(at.ToUnixTimeMilliseconds(), NowMs, fault, _world));
            Run(NowMs);
        }
    }

    /// <summary>Schedules faults, each its time from now (a generated schedule, for one).</summary>
    /// <param name="faults">The faults.</param>
    public void Schedule(IEnumerable<FaultAt> faults)
    {
        ArgumentNullException.ThrowIfNull(faults);
        lock (_gate)
        {
            var now = Now;
            foreach (var fault in faults)
            {
                Schedule(fault.fault, now.AddMilliseconds(fault.after));
            }
        }
    }

    private void Schedule(Fault fault, TimeSpan after) => Schedule(fault, Now + after);

    /// <summary>Lets virtual time pass: everything due until then happens, in order.</summary>
    /// <param name="duration">How long.</param>
    /// <returns>A completed task.</returns>
    public Task AdvanceAsync(TimeSpan duration)
    {
        lock (_gate)
        {
            RunUntil(NowMs + Math.Max(0, (long)duration.TotalMilliseconds), static () => false);
            return Task.CompletedTask;
        }
    }

    /// <summary>A new run id, drawn from the seed.</summary>
    internal string NewRunId()
    {
        lock (_gate)
        {
            var (value, next) = Cluster.draw(_runIds);
            _runIds = next;
            return "sim" + value.ToString("x16", System.Globalization.CultureInfo.InvariantCulture);
        }
    }

    /// <summary>A run's batch system attaches: it adopts the run's pods, as a re-attaching client does, and lists them.</summary>
    internal void Attach(string run, JobRuntime runtime)
    {
        lock (_gate)
        {
            if (!_runs.TryAdd(run, runtime))
            {
                throw new InvalidOperationException($"A batch system of run {run} is already attached to this cluster: dispose it first.");
            }

            var now = NowMs;
            foreach (var pod in Cluster.podsOf(run, _world).OrderBy(p => p.job))
            {
                runtime.Apply(Events.Adopted(pod.job, pod.request, now));
            }

            Deliver(Cluster.watch(run, now, _world));
            Pump();
        }
    }

    /// <summary>A run's batch system goes (shut down, disposed or crashed): its pods stay.</summary>
    internal void Detach(string run)
    {
        lock (_gate)
        {
            Pump();
            if (_runs.Remove(run, out var runtime))
            {
                _clocks.Remove(runtime);
            }

            _world = Cluster.unwatch(run, _world);
        }
    }

    /// <summary>Runs an operation of a batch system, then delivers what it made happen.</summary>
    internal T Do<T>(Func<T> operation)
    {
        lock (_gate)
        {
            Pump();
            var result = operation();
            Pump();
            return result;
        }
    }

    /// <summary>The create call of a job's pod.</summary>
    internal void Create(string run, PreparedJob job)
    {
        lock (_gate)
        {
            var behaviour = _behaviour(new SimulatedJob(job.id, job.description, job.command, job.image, job.environment)) ?? new PodBehaviour();
            var script = Checked(Cluster.checkScript(behaviour.ToScript()));
            var now = NowMs;
            Deliver(Cluster.createPod(run, job, script, 1, now, now, _world));
        }
    }

    /// <summary>The delete call of a job's pod.</summary>
    internal void Delete(string pod)
    {
        lock (_gate)
        {
            Deliver(Cluster.deletePod(pod, NowMs, _world));
        }
    }

    /// <summary>The delete calls of a run's pods.</summary>
    internal void DeleteRun(string run)
    {
        lock (_gate)
        {
            Deliver(Cluster.deleteRun(run, NowMs, _world));
        }
    }

    /// <summary>A node cleanup's Job.</summary>
    internal void Cleanup(string node)
    {
        lock (_gate)
        {
            _world = Cluster.cleanup(node, _world);
        }
    }

    /// <summary>The log of a pod, if it is there.</summary>
    internal string? LogOf(string pod)
    {
        lock (_gate)
        {
            return Cluster.logOf(pod, _world)?.Value;
        }
    }

    /// <summary>
    /// Moves virtual time on, one due thing at a time, until a job of the run ended or <paramref name="wait"/> passed.
    /// </summary>
    /// <exception cref="SimulationStalledException">Nothing is scheduled to happen, yet jobs of the run wait.</exception>
    internal bool WaitForEnded(JobRuntime runtime, TimeSpan wait)
    {
        lock (_gate)
        {
            var deadline = NowMs + (long)Math.Min(wait.TotalMilliseconds, TimeSpan.FromDays(3650).TotalMilliseconds);
            var ended = RunUntil(deadline, () => !runtime.Model.ended.IsEmpty);
            if (ended is null)
            {
                if (runtime.Issued().Count > 0)
                {
                    throw new SimulationStalledException(CoreClock.stalled(runtime.Model));
                }

                SetTime(deadline);
                return false;
            }

            return ended.Value;
        }
    }

    /// <summary>
    /// Runs what is due, in order of time, up to <paramref name="deadline"/> or until <paramref name="done"/>: true when
    /// done, false at the deadline, null when nothing at all is scheduled to happen any more.
    /// </summary>
    private bool? RunUntil(long deadline, Func<bool> done)
    {
        while (true)
        {
            Pump();
            if (done())
            {
                return true;
            }

            var now = NowMs;
            long? next = OptionValue(Cluster.nextDue(_world));
            foreach (var runtime in _runs.Values)
            {
                if (ClockDue(runtime) is { } due && CoreClock.tickAt(due, now) is var tick && (next is null || tick < next))
                {
                    next = tick;
                }
            }

            if (next is null)
            {
                SetTime(deadline);
                return null;
            }

            if (next > deadline)
            {
                SetTime(deadline);
                return false;
            }

            var at = Math.Max(now, next.Value);
            SetTime(at);
            Run(at);
            foreach (var runtime in _runs.Values.ToArray())
            {
                if (ClockDue(runtime) is { } due && CoreClock.tickAt(due, now) <= at)
                {
                    runtime.Apply(Events.Tick(at));
                }
            }
        }
    }

    /// <summary>
    /// When the run's core next needs the clock (<see cref="CoreClock.due"/>), worked out once for each model the run
    /// holds: the models are immutable, and most moments of the simulation leave a run's model as it was.
    /// </summary>
    private long? ClockDue(JobRuntime runtime)
    {
        var model = runtime.Model;
        if (_clocks.TryGetValue(runtime, out var known) && ReferenceEquals(known.Model, model))
        {
            return known.Due;
        }

        var due = OptionValue(CoreClock.due(model));
        _clocks[runtime] = (model, due);
        return due;
    }

    /// <summary>Runs everything due at or before <paramref name="at"/>.</summary>
    private void Run(long at)
    {
        while (Cluster.step(at, _world) is { } stepped)
        {
            Deliver(stepped.Value);
            Pump();
        }

        Pump();
    }

    private void Deliver(Tuple<World, Microsoft.FSharp.Collections.FSharpList<Delivery>> stepped)
    {
        _world = stepped.Item1;
        foreach (var delivery in stepped.Item2)
        {
            _deliveries.Enqueue(delivery);
        }
    }

    /// <summary>Hands each run what its watch (or create call) told it, in order; a run's effects may add more.</summary>
    private void Pump()
    {
        while (_deliveries.TryDequeue(out var delivery))
        {
            if (_runs.TryGetValue(delivery.run, out var runtime))
            {
                runtime.Apply(delivery.@event);
            }
        }
    }

    private void SetTime(long at)
    {
        if (at > NowMs)
        {
            _time.SetUtcNow(DateTimeOffset.FromUnixTimeMilliseconds(at));
        }
    }

    private static long? OptionValue(FSharpOption<long>? option) => option?.Value;

    private static T Checked<T>(FSharpResult<T, SimulationError> result) =>
        result.IsOk ? result.ResultValue : throw new ArgumentException(result.ErrorValue.Message);
}
