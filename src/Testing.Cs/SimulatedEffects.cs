using HybridBatch.Core;
using HybridBatch.Core.Api;
using HybridBatch.Runtime;

namespace HybridBatch.Testing;

/// <summary>
/// The core's effects on a simulated cluster: the calls <see cref="JobEffects"/> makes to Kubernetes, made to the
/// simulation instead. Each returns at once; what the cluster answers comes back to the run as events.
/// </summary>
/// <param name="cluster">The simulated cluster.</param>
/// <param name="run">The run's id.</param>
/// <param name="failureLogs">Where failed jobs' logs are kept.</param>
internal sealed class SimulatedEffects(SimulatedCluster cluster, string run, FailureLogs failureLogs) : IJobEffects
{
    /// <inheritdoc/>
    public Task Create(PreparedJob job)
    {
        cluster.Create(run, job);
        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    public Task Delete(int jobId, string name)
    {
        cluster.Delete(name);
        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    public Task Ended(JobResult result, string? pod)
    {
        if (pod is not null)
        {
            // The core names a pod for a failure only; its result is held back until this read is over.
            if (cluster.LogOf(pod) is { } log)
            {
                failureLogs.Add(result.BackingId, log);
            }

            failureLogs.Done(result.BackingId);
        }

        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    public Task CleanupNode(string node)
    {
        cluster.Cleanup(node);
        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    public Task DeleteAll()
    {
        cluster.DeleteRun(run);
        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    public Task WaitForPodsGoneAsync(TimeSpan deadline, TimeProvider time, CancellationToken cancellationToken) => Task.CompletedTask;
}
