namespace HybridBatch.Contract;

/// <summary>
/// Jobs that cannot run (missing image, no node) end with Error after the pod timeout; jobs whose pod is deleted or
/// evicted end Lost, once. A suite of its own, beside <see cref="BehaviourContract"/>, so the two run at once.
/// </summary>
/// <param name="cluster">The cluster under test.</param>
public abstract class StuckAndLostContract(IClusterUnderTest cluster) : ContractSuite(cluster)
{
    [Fact]
    public async Task A_missing_image_fails_with_Error_after_the_pod_timeout_naming_the_cause()
    {
        var system = await StartAsync(o => o with { PodTimeout = TimeSpan.FromSeconds(5) });
        try
        {
            var id = await system.IssueBatchJobAsync(Commands.Exit(0), TestJobs.Job("no-image") with { Image = Commands.MissingImage });
            var info = await NextAsync(system, TimeSpan.FromSeconds(90));
            Assert.Equal(id, info.JobId);
            Assert.Equal(BatchJobExitReason.Error, info.ExitReason);
            Assert.Matches("ErrImagePull|ImagePullBackOff|InvalidImageName", info.Message);
            Assert.Contains("pod timeout", info.Message);
            await WaitUntilAllDeletedAsync(system.RunId);
        }
        finally
        {
            await EndAsync(system);
        }
    }

    [Fact]
    public async Task A_pod_that_can_never_be_scheduled_fails_with_Error_after_the_pod_timeout()
    {
        var system = await StartForHugeJobsAsync();
        try
        {
            var id = await system.IssueBatchJobAsync(Commands.Exit(0), TestJobs.Job("huge", cores: 1000));
            var info = await NextAsync(system, TimeSpan.FromSeconds(90));
            Assert.Equal(id, info.JobId);
            Assert.Equal(BatchJobExitReason.Error, info.ExitReason);
            Assert.Contains("Unschedulable", info.Message);
            Assert.Contains("cpu", info.Message);
            await WaitUntilAllDeletedAsync(system.RunId);
        }
        finally
        {
            await EndAsync(system);
        }
    }

    [Fact]
    public async Task A_Job_or_bare_pod_deleted_by_someone_else_is_reported_Lost_once()
    {
        var system = await StartAsync();
        try
        {
            var id = await system.IssueBatchJobAsync(Commands.UntilStopped, TestJobs.Job("victim"));
            await WaitUntilRunningAsync(system, id);
            Assert.Equal(id, Assert.Single(await Cluster.ObjectsOfRunAsync(system.RunId)).JobId);
            await Cluster.DeleteFromOutsideAsync(system.RunId, id);

            var info = await NextAsync(system, TimeSpan.FromSeconds(60));
            Assert.Equal(id, info.JobId);
            Assert.Equal(BatchJobExitReason.Lost, info.ExitReason);
            Assert.Null(await system.GetUpdatedBatchJobAsync(TimeSpan.FromSeconds(5)));
            Assert.Empty(await system.GetIssuedBatchJobIdsAsync());
        }
        finally
        {
            await EndAsync(system);
        }
    }

    [Fact]
    public async Task An_evicted_pod_is_reported_Lost_once_naming_the_pod()
    {
        // Evicted as a node drain or the cluster autoscaler evicts. The job leaves at once on SIGTERM, so its pod goes
        // without the grace period.
        var system = await StartAsync();
        try
        {
            var id = await system.IssueBatchJobAsync(Commands.UntilStopped, TestJobs.Job("evicted"));
            await WaitUntilRunningAsync(system, id);
            var victim = Assert.Single(await Cluster.PodsOfRunAsync(system.RunId));
            await Cluster.EvictAsync(system.RunId, id);

            var info = await NextAsync(system, TimeSpan.FromSeconds(120));
            Cluster.Log($"[evicted] {info.ExitReason}: {info.Message}");
            Assert.Equal((id, BatchJobExitReason.Lost), (info.JobId, info.ExitReason));
            Assert.Contains(victim.Name, info.Message);

            // Collected, the job's Job or pod is deleted. Not waited for: the kubelet's confirmation that the pod is gone. On a
            // node busy with another class's 200 jobs it stopped the evicted container 35 s after the eviction and removed
            // the pod 92 s after it, while the batch system had deleted it within 0.2 s (audit log, 13:18:56–13:20:28).
            await WaitUntilAllDeletedAsync(system.RunId);
            Assert.Null(await system.GetUpdatedBatchJobAsync(TimeSpan.FromSeconds(2)));
            Assert.Empty(await system.GetIssuedBatchJobIdsAsync());
        }
        finally
        {
            await EndAsync(system);
        }
    }
}
