namespace HybridBatch.Contract;

/// <summary>
/// What the contract suites share: the cluster under test, starting and ending batch systems on it, and waiting on its
/// clock. A test project runs a suite by deriving a class from it that names the cluster.
/// </summary>
/// <param name="cluster">The cluster under test.</param>
public abstract class ContractSuite(IClusterUnderTest cluster)
{
    /// <summary>The cluster under test.</summary>
    protected IClusterUnderTest Cluster { get; } = cluster;

    /// <summary>A batch system on the cluster under test, with Toil's test maxima, then <paramref name="change"/>.</summary>
    /// <param name="change">Changes to the options.</param>
    /// <returns>The batch system.</returns>
    protected Task<IBatchSystem> StartAsync(Func<KubernetesBatchSystemOptions, KubernetesBatchSystemOptions>? change = null) =>
        Cluster.StartAsync(change);

    /// <summary>A batch system that accepts jobs larger than any node and fails stuck ones after 5 s.</summary>
    /// <returns>The batch system.</returns>
    protected Task<IBatchSystem> StartForHugeJobsAsync() => StartAsync(TestJobs.ForHugeJobs);

    /// <summary>Shuts the batch system down and disposes of it.</summary>
    /// <param name="system">The batch system.</param>
    /// <returns>A task that completes when it is gone.</returns>
    protected static async Task EndAsync(IBatchSystem system)
    {
        await system.ShutdownAsync();
        await system.DisposeAsync();
    }

    /// <summary>Waits for a result, failing the test when none comes within the cluster's patience (or <paramref name="timeout"/>).</summary>
    /// <param name="system">The batch system.</param>
    /// <param name="timeout">How long at most.</param>
    /// <returns>The result.</returns>
    protected Task<UpdatedBatchJobInfo> NextAsync(IBatchSystem system, TimeSpan? timeout = null) =>
        Wait.NextAsync(system, timeout ?? Cluster.Patience);

    /// <summary>Waits until a condition holds, looking every 250 ms of the cluster's time; false when it did not within the timeout.</summary>
    /// <param name="condition">The condition.</param>
    /// <param name="timeout">How long at most.</param>
    /// <returns>Whether it held.</returns>
    protected Task<bool> EventuallyAsync(Func<Task<bool>> condition, TimeSpan timeout) =>
        Wait.UntilAsync(condition, timeout, () => Cluster.Now, Cluster.PauseAsync);

    /// <summary>Waits until the job runs, failing the test when it did not within the cluster's patience.</summary>
    /// <param name="system">The batch system.</param>
    /// <param name="jobIds">The jobs.</param>
    /// <returns>A task that completes when they run.</returns>
    protected async Task WaitUntilRunningAsync(IBatchSystem system, params int[] jobIds) =>
        Assert.True(
            await EventuallyAsync(async () => jobIds.All((await system.GetRunningBatchJobIdsAsync()).ContainsKey), Cluster.Patience),
            $"jobs {string.Join(", ", jobIds)} should run within {Cluster.Patience.TotalSeconds} s");

    /// <summary>Waits until none of the run's objects is left undeleted, failing the test when one is after 30 s.</summary>
    /// <param name="runId">The run.</param>
    /// <returns>A task that completes then.</returns>
    /// <remarks>
    /// A deleted bare pod stays listed, with a deletion timestamp, until its node's kubelet confirms its end: that is the
    /// node's business, and on a busy node it has taken longer than 30 s for a pod stuck pulling its image.
    /// </remarks>
    protected async Task WaitUntilAllDeletedAsync(string runId) =>
        Assert.True(
            await EventuallyAsync(async () => (await Cluster.ObjectsOfRunAsync(runId)).All(o => o.Deleting), TimeSpan.FromSeconds(30)),
            $"every object of run {runId} should have been deleted");
}
