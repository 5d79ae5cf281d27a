using HybridBatch.Resilience;
using Prometheus;

namespace HybridBatch.Daemon.Hosting;

/// <summary>
/// The daemon's Prometheus metrics, in a registry of its own (one per host, so that hosts in one process do not
/// share counters). Also observes the batch system's Kubernetes calls.
/// </summary>
internal sealed class DaemonMetrics : IKubernetesCallObserver
{
    private readonly Counter _created;
    private readonly Counter _submitted;
    private readonly Counter _requests;
    private readonly Counter _retries;
    private readonly Counter _watchRestarts;
    private readonly Histogram _detection;
    private readonly Gauge _tasks;

    /// <summary>Creates the metrics.</summary>
    public DaemonMetrics()
    {
        Registry = Metrics.NewCustomRegistry();
        var factory = Metrics.WithCustomRegistry(Registry);
        _created = factory.CreateCounter("hybridbatch_tes_tasks_created_total", "TES tasks accepted.");
        _submitted = factory.CreateCounter("hybridbatch_jobs_submitted_total", "Batch jobs submitted to Kubernetes.");
        _requests = factory.CreateCounter(
            "hybridbatch_kubernetes_requests_total", "Kubernetes API calls by verb, resource and outcome.", "verb", "resource", "outcome");
        _retries = factory.CreateCounter("hybridbatch_kubernetes_retries_total", "Retried Kubernetes API calls by verb and resource.", "verb", "resource");
        _watchRestarts = factory.CreateCounter("hybridbatch_watch_restarts_total", "Pod watches that ended and were started again.");
        _detection = factory.CreateHistogram(
            "hybridbatch_detection_latency_seconds",
            "Time from a task's last executor ending (as the container's clock says, to the second) to the daemon recording it.",
            new HistogramConfiguration { Buckets = [0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120] });
        _tasks = factory.CreateGauge("hybridbatch_tes_tasks", "TES tasks by state.", "state");
    }

    /// <summary>The registry /metrics serves.</summary>
    public CollectorRegistry Registry { get; }

    /// <summary>Counts an accepted task.</summary>
    public void TaskCreated() => _created.Inc();

    /// <summary>Counts a submitted batch job.</summary>
    public void JobSubmitted() => _submitted.Inc();

    /// <summary>Records how long it took to notice a task's end.</summary>
    /// <param name="latency">The delay.</param>
    public void Detected(TimeSpan latency) => _detection.Observe(Math.Max(0, latency.TotalSeconds));

    /// <summary>Sets the task counts by state.</summary>
    /// <param name="counts">State to count.</param>
    public void SetTasks(IReadOnlyDictionary<string, long> counts)
    {
        ArgumentNullException.ThrowIfNull(counts);
        foreach (var state in Tes.TesStates.All)
        {
            _tasks.WithLabels(state).Set(counts.TryGetValue(state, out var n) ? n : 0);
        }
    }

    /// <inheritdoc />
    public void OnRetry(KubernetesRetryRecord retry)
    {
        ArgumentNullException.ThrowIfNull(retry);
        _retries.WithLabels(retry.Verb, retry.Resource).Inc();
    }

    /// <inheritdoc />
    public void OnCompleted(KubernetesCallRecord call)
    {
        ArgumentNullException.ThrowIfNull(call);
        _requests.WithLabels(call.Verb, call.Resource, call.Outcome.ToString()).Inc();
        if (call.Verb == "watch")
        {
            _watchRestarts.Inc();
        }
    }
}
