using HybridBatch.Integration.Cluster;
using Xunit.Abstractions;

namespace HybridBatch.Integration.BatchSystem;

/// <summary>
/// Toil's <c>AbstractBatchSystemTest</c> for Kubernetes, translated, against the real cluster; each test that runs jobs
/// runs them as Jobs and as bare pods.
/// </summary>
public sealed class ToilContractTests(LocalClusterFixture cluster, ITestOutputHelper output) : IClassFixture<LocalClusterFixture>, IAsyncLifetime
{
    private KubernetesBatchSystem? started;

    public Task InitializeAsync() => Task.CompletedTask;

    private async Task<KubernetesBatchSystem> StartAsync(KubernetesObjectKind kind) =>
        started = await KubernetesBatchSystem.CreateAsync(Batch.Options(cluster, kind), Batch.Logging(output));

    public async Task DisposeAsync()
    {
        if (started is not null)
        {
            await started.ShutdownAsync();
            await started.DisposeAsync();
        }
    }

    private const string FooScript = "if [ \"x${FOO}\" = \"xbar\" ] ; then exit 23 ; else exit 42 ; fi";

    [Theory]
    [EachObjectKind]
    public async Task Two_jobs_run_at_once_a_kill_removes_them_and_only_the_next_job_is_reported(KubernetesObjectKind kind)
    {
        var system = await StartAsync(kind);
        var job1 = await system.IssueBatchJobAsync("sleep 1000", Batch.Job("test1"));
        var job2 = await system.IssueBatchJobAsync("sleep 1000", Batch.Job("test2"));
        Assert.Equal([job1, job2], await system.GetIssuedBatchJobIdsAsync());

        var bothRunning = await Batch.EventuallyAsync(
            async () => (await system.GetRunningBatchJobIdsAsync()).Count == 2, TimeSpan.FromSeconds(120));
        Assert.True(bothRunning, "both jobs should run at once within 120 s");
        Assert.Equal(new[] { job1, job2 }, (await system.GetRunningBatchJobIdsAsync()).Keys.Order());

        await system.KillBatchJobsAsync([job1, job2]);
        Assert.Empty(await system.GetRunningBatchJobIdsAsync());
        Assert.Empty(await system.GetIssuedBatchJobIdsAsync());

        var job3 = await system.IssueBatchJobAsync("mktemp -d", Batch.Job("test3"));
        var info = await Batch.NextAsync(system);
        Assert.Equal(job3, info.JobId);
        Assert.Equal(0, info.ExitStatus);
        Assert.Equal(BatchJobExitReason.Finished, info.ExitReason);
        Assert.True(info.WallTime > TimeSpan.Zero);
        Assert.Null(await system.GetUpdatedBatchJobAsync(TimeSpan.Zero));

        await system.KillBatchJobsAsync([10]);
        Assert.Null(await system.GetUpdatedBatchJobAsync(TimeSpan.FromSeconds(2)));
    }

    [Theory]
    [EachObjectKind]
    public async Task A_batch_environment_variable_reaches_jobs_issued_after_it_is_set(KubernetesObjectKind kind)
    {
        var system = await StartAsync(kind);
        var job4 = await system.IssueBatchJobAsync(FooScript, Batch.Job("test4"));
        var first = await Batch.NextAsync(system);
        Assert.Equal((job4, 42), (first.JobId, first.ExitStatus));

        system.SetEnv("FOO", "bar");
        var job5 = await system.IssueBatchJobAsync(FooScript, Batch.Job("test5"));
        var second = await Batch.NextAsync(system);
        Assert.Equal((job5, 23), (second.JobId, second.ExitStatus));
        Assert.Equal(BatchJobExitReason.Failed, second.ExitReason);
    }

    [Theory]
    [EachObjectKind]
    public async Task A_job_environment_variable_reaches_only_its_job(KubernetesObjectKind kind)
    {
        var system = await StartAsync(kind);
        var job6 = await system.IssueBatchJobAsync(FooScript, Batch.Job("test6"), new Dictionary<string, string> { ["FOO"] = "bar" });
        var first = await Batch.NextAsync(system);
        Assert.Equal((job6, 23), (first.JobId, first.ExitStatus));

        var job7 = await system.IssueBatchJobAsync(FooScript, Batch.Job("test7"));
        var second = await Batch.NextAsync(system);
        Assert.Equal((job7, 42), (second.JobId, second.ExitStatus));
    }

    [Fact]
    public async Task Requests_above_the_maxima_or_for_unknown_accelerators_are_refused_naming_the_resource()
    {
        // Checked against the options alone, whatever the jobs run as.
        var system = await StartAsync(KubernetesObjectKind.Job);
        var cores = Assert.Throws<InsufficientSystemResourcesException>(() => system.CheckResourceRequest(Batch.Job(cores: 2000, memory: 1000, disk: 1_000_000_000)));
        Assert.Equal("cores", cores.Resource);
        Assert.Contains("2000", cores.Message);
        Assert.Throws<InsufficientSystemResourcesException>(() => system.CheckResourceRequest(Batch.Job(cores: 2000, memory: 5, disk: 1_000_000_000)));
        var memory = Assert.Throws<InsufficientSystemResourcesException>(() => system.CheckResourceRequest(Batch.Job(cores: 1, memory: 5_000_000_000_000, disk: 1_000_000_000)));
        Assert.Equal("memory", memory.Resource);
        var disk = Assert.Throws<InsufficientSystemResourcesException>(() => system.CheckResourceRequest(Batch.Job(cores: 1, memory: 5, disk: 2_000_000_000)));
        Assert.Equal("disk", disk.Resource);
        Assert.Equal("2001", disk.Available);
        var accelerator = Assert.Throws<InsufficientSystemResourcesException>(() => system.CheckResourceRequest(
            Batch.Job(cores: 1, memory: 5, disk: 100) with { Accelerators = [new AcceleratorRequirement(1, "turbo-encabulator")] }));
        Assert.Equal("accelerators", accelerator.Resource);

        system.CheckResourceRequest(Batch.Job(cores: 1, memory: 10, disk: 100));
    }

    [Theory]
    [EachObjectKind]
    public async Task Issuing_refuses_bad_input_and_creates_nothing(KubernetesObjectKind kind)
    {
        var system = await StartAsync(kind);
        await Assert.ThrowsAsync<ArgumentException>(() => system.IssueBatchJobAsync("", Batch.Job()));
        await Assert.ThrowsAsync<ArgumentException>(() => system.IssueBatchJobAsync("true", Batch.Job(memory: -1)));
        await Assert.ThrowsAsync<ArgumentException>(() => system.IssueBatchJobAsync("true", Batch.Job(cores: double.NaN)));
        await Assert.ThrowsAsync<ArgumentException>(() => system.IssueBatchJobAsync("true", Batch.Job(), new Dictionary<string, string> { ["1BAD NAME"] = "x" }));
        Assert.Throws<ArgumentException>(() => system.SetEnv("HYBRIDBATCH_SURELY_UNSET_VARIABLE"));
        Assert.Throws<InvalidOperationException>(() => system.SetUserScript(new UserScript("workflow.py")));
        Assert.False(KubernetesBatchSystem.SupportsAutoDeployment);
        Assert.Empty(await system.GetIssuedBatchJobIdsAsync());
        Assert.Empty(await Batch.ObjectsOfRunAsync(cluster, system.RunId, kind));
        Assert.Empty(await Batch.PodsOfRunAsync(cluster, system.RunId));

        // Still usable.
        var id = await system.IssueBatchJobAsync("true", Batch.Job());
        Assert.Equal(id, (await Batch.NextAsync(system)).JobId);
    }
}
