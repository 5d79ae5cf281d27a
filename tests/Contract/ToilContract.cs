namespace HybridBatch.Contract;

/// <summary>Toil's <c>AbstractBatchSystemTest</c> for Kubernetes, translated.</summary>
/// <param name="cluster">The cluster under test.</param>
public abstract class ToilContract(IClusterUnderTest cluster) : ContractSuite(cluster)
{
    [Fact]
    public async Task Two_jobs_run_at_once_a_kill_removes_them_and_only_the_next_job_is_reported()
    {
        var system = await StartAsync();
        try
        {
            var job1 = await system.IssueBatchJobAsync(Commands.UntilStopped, TestJobs.Job("test1"));
            var job2 = await system.IssueBatchJobAsync(Commands.UntilStopped, TestJobs.Job("test2"));
            Assert.Equal([job1, job2], await system.GetIssuedBatchJobIdsAsync());

            await WaitUntilRunningAsync(system, job1, job2);
            Assert.Equal(new[] { job1, job2 }, (await system.GetRunningBatchJobIdsAsync()).Keys.Order());

            await system.KillBatchJobsAsync([job1, job2]);
            Assert.Empty(await system.GetRunningBatchJobIdsAsync());
            Assert.Empty(await system.GetIssuedBatchJobIdsAsync());

            var job3 = await system.IssueBatchJobAsync(Commands.MakeTemporaryDirectory, TestJobs.Job("test3"));
            var info = await NextAsync(system);
            Assert.Equal(job3, info.JobId);
            Assert.Equal(0, info.ExitStatus);
            Assert.Equal(BatchJobExitReason.Finished, info.ExitReason);
            Assert.True(info.WallTime > TimeSpan.Zero);
            Assert.Null(await system.GetUpdatedBatchJobAsync(TimeSpan.Zero));

            await system.KillBatchJobsAsync([10]);
            Assert.Null(await system.GetUpdatedBatchJobAsync(TimeSpan.FromSeconds(2)));
        }
        finally
        {
            await EndAsync(system);
        }
    }

    [Fact]
    public async Task A_batch_environment_variable_reaches_jobs_issued_after_it_is_set()
    {
        var system = await StartAsync();
        try
        {
            var job4 = await system.IssueBatchJobAsync(Commands.ExitByFoo, TestJobs.Job("test4"));
            var first = await NextAsync(system);
            Assert.Equal((job4, 42), (first.JobId, first.ExitStatus));

            system.SetEnv("FOO", "bar");
            var job5 = await system.IssueBatchJobAsync(Commands.ExitByFoo, TestJobs.Job("test5"));
            var second = await NextAsync(system);
            Assert.Equal((job5, 23), (second.JobId, second.ExitStatus));
            Assert.Equal(BatchJobExitReason.Failed, second.ExitReason);
        }
        finally
        {
            await EndAsync(system);
        }
    }

    [Fact]
    public async Task A_job_environment_variable_reaches_only_its_job()
    {
        var system = await StartAsync();
        try
        {
            var job6 = await system.IssueBatchJobAsync(Commands.ExitByFoo, TestJobs.Job("test6"), new Dictionary<string, string> { ["FOO"] = "bar" });
            var first = await NextAsync(system);
            Assert.Equal((job6, 23), (first.JobId, first.ExitStatus));

            var job7 = await system.IssueBatchJobAsync(Commands.ExitByFoo, TestJobs.Job("test7"));
            var second = await NextAsync(system);
            Assert.Equal((job7, 42), (second.JobId, second.ExitStatus));
        }
        finally
        {
            await EndAsync(system);
        }
    }

    [Fact]
    public async Task Requests_above_the_maxima_or_for_unknown_accelerators_are_refused_naming_the_resource()
    {
        var system = await StartAsync();
        try
        {
            var cores = Assert.Throws<InsufficientSystemResourcesException>(() => system.CheckResourceRequest(TestJobs.Job(cores: 2000, memory: 1000, disk: 1_000_000_000)));
            Assert.Equal("cores", cores.Resource);
            Assert.Contains("2000", cores.Message);
            Assert.Throws<InsufficientSystemResourcesException>(() => system.CheckResourceRequest(TestJobs.Job(cores: 2000, memory: 5, disk: 1_000_000_000)));
            var memory = Assert.Throws<InsufficientSystemResourcesException>(() => system.CheckResourceRequest(TestJobs.Job(cores: 1, memory: 5_000_000_000_000, disk: 1_000_000_000)));
            Assert.Equal("memory", memory.Resource);
            var disk = Assert.Throws<InsufficientSystemResourcesException>(() => system.CheckResourceRequest(TestJobs.Job(cores: 1, memory: 5, disk: 2_000_000_000)));
            Assert.Equal("disk", disk.Resource);
            Assert.Equal("2001", disk.Available);
            var accelerator = Assert.Throws<InsufficientSystemResourcesException>(() => system.CheckResourceRequest(
                TestJobs.Job(cores: 1, memory: 5, disk: 100) with { Accelerators = [new AcceleratorRequirement(1, "turbo-encabulator")] }));
            Assert.Equal("accelerators", accelerator.Resource);

            system.CheckResourceRequest(TestJobs.Job(cores: 1, memory: 10, disk: 100));
        }
        finally
        {
            await EndAsync(system);
        }
    }

    [Fact]
    public async Task Issuing_refuses_bad_input_and_creates_nothing()
    {
        var system = await StartAsync();
        try
        {
            await Assert.ThrowsAsync<ArgumentException>(() => system.IssueBatchJobAsync("", TestJobs.Job()));
            await Assert.ThrowsAsync<ArgumentException>(() => system.IssueBatchJobAsync(Commands.Exit(0), TestJobs.Job(memory: -1)));
            await Assert.ThrowsAsync<ArgumentException>(() => system.IssueBatchJobAsync(Commands.Exit(0), TestJobs.Job(cores: double.NaN)));
            await Assert.ThrowsAsync<ArgumentException>(() => system.IssueBatchJobAsync(
                Commands.Exit(0), TestJobs.Job(), new Dictionary<string, string> { ["1BAD NAME"] = "x" }));
            Assert.Throws<ArgumentException>(() => system.SetEnv("HYBRIDBATCH_SURELY_UNSET_VARIABLE"));
            Assert.Empty(await system.GetIssuedBatchJobIdsAsync());
            Assert.Empty(await Cluster.ObjectsOfRunAsync(system.RunId));
            Assert.Empty(await Cluster.PodsOfRunAsync(system.RunId));

            // Still usable.
            var id = await system.IssueBatchJobAsync(Commands.Exit(0), TestJobs.Job());
            Assert.Equal(id, (await NextAsync(system)).JobId);
        }
        finally
        {
            await EndAsync(system);
        }
    }
}
