namespace HybridBatch.Contract;

/// <summary>
/// Where the contract suites run: the real cluster (with jobs as Jobs or as bare pods) or the simulated one. It starts
/// batch systems on itself, tells time, and does to a run's objects what someone other than the batch system would.
/// </summary>
public interface IClusterUnderTest
{
    /// <summary>How long a test waits for a job's result before it fails: on a real, shared node pods take their time.</summary>
    TimeSpan Patience { get; }

    /// <summary>How many jobs the exactly-once test runs: what the cluster affords in a test's time.</summary>
    int ManyJobs { get; }

    /// <summary>Now, on this cluster's clock (virtual on the simulated cluster).</summary>
    DateTimeOffset Now { get; }

    /// <summary>
    /// A batch system on this cluster, with Toil's test maxima (<see cref="TestJobs.WithToilMaxima"/>), then
    /// <paramref name="change"/>. Its command for a job is one of <see cref="Commands"/>.
    /// </summary>
    /// <param name="change">Changes to the options.</param>
    /// <returns>The batch system.</returns>
    Task<IBatchSystem> StartAsync(Func<KubernetesBatchSystemOptions, KubernetesBatchSystemOptions>? change = null);

    /// <summary>Lets time pass (virtual time on the simulated cluster).</summary>
    /// <param name="duration">How long.</param>
    /// <returns>A task that completes when it passed.</returns>
    Task PauseAsync(TimeSpan duration);

    /// <summary>What the run's jobs run as in the cluster (their Jobs, or their bare pods), as the cluster lists them.</summary>
    /// <param name="runId">The run.</param>
    /// <returns>The objects.</returns>
    Task<IReadOnlyList<ClusterObject>> ObjectsOfRunAsync(string runId);

    /// <summary>The pods of the run's jobs, bare or made by their Jobs, as the cluster lists them.</summary>
    /// <param name="runId">The run.</param>
    /// <returns>The pods, each with its phase.</returns>
    Task<IReadOnlyList<ClusterObject>> PodsOfRunAsync(string runId);

    /// <summary>Deletes what a job runs as (its Job or bare pod), as someone other than the batch system would.</summary>
    /// <param name="runId">The run.</param>
    /// <param name="jobId">The job.</param>
    /// <returns>A task that completes when the delete was asked for.</returns>
    Task DeleteFromOutsideAsync(string runId, int jobId);

    /// <summary>Evicts a job's pod, as a node drain or an autoscaler would.</summary>
    /// <param name="runId">The run.</param>
    /// <param name="jobId">The job.</param>
    /// <returns>A task that completes when the eviction was asked for.</returns>
    Task EvictAsync(string runId, int jobId);

    /// <summary>Writes a line to the test's output.</summary>
    /// <param name="line">The line.</param>
    void Log(string line);
}

/// <summary>A Job or a pod of a run, as the cluster lists it.</summary>
/// <param name="Name">Its name.</param>
/// <param name="JobId">The job it belongs to.</param>
/// <param name="Phase">A pod's phase (Pending, Running, Succeeded, Failed); null for a Job.</param>
/// <param name="Deleting">Its deletion was asked for, and the cluster has not finished it yet.</param>
public sealed record ClusterObject(string Name, int JobId, string? Phase, bool Deleting);
