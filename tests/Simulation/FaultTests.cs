using HybridBatch.Testing;
using HybridBatch.Testing.Simulation;

namespace HybridBatch.Simulation.Tests;

/// <summary>Faults on demand, and what the contract promises through them.</summary>
public sealed class FaultTests
{
    private static readonly Func<SimulatedJob, PodBehaviour> Minute = _ => PodBehaviour.Exits(0, TimeSpan.FromMinutes(1));

    [Fact]
    public async Task The_jobs_of_a_lost_node_end_Lost_once_and_the_others_finish()
    {
        var cluster = Sim.Cluster(Minute, nodes: [Sim.Node("n1", cores: 1), Sim.Node("n2", cores: 1)]);
        await using var system = await SimulatedBatchSystem.CreateAsync(cluster, Sim.Options());
        for (var i = 0; i < 4; i++)
        {
            await system.IssueBatchJobAsync("true", Sim.Small);
        }

        cluster.LoseNode("n1", after: TimeSpan.FromSeconds(30));
        var results = await Sim.DrainAsync(system);

        Assert.Equal(2, results.Count(r => r.ExitReason == BatchJobExitReason.Lost));
        Assert.Equal(2, results.Count(r => r.ExitReason == BatchJobExitReason.Finished));
    }

    [Fact]
    public async Task An_evicted_pod_s_job_ends_Lost()
    {
        var cluster = Sim.Cluster(Minute);
        await using var system = await SimulatedBatchSystem.CreateAsync(cluster, Sim.Options());
        var id = await system.IssueBatchJobAsync("true", Sim.Small);
        cluster.EvictPod(id, after: TimeSpan.FromSeconds(10));

        var result = await system.GetUpdatedBatchJobAsync(TimeSpan.FromHours(1));

        Assert.Equal(BatchJobExitReason.Lost, result!.ExitReason);
    }

    [Fact]
    public async Task A_pod_deleted_by_someone_else_ends_its_job_Lost()
    {
        var cluster = Sim.Cluster(Minute);
        await using var system = await SimulatedBatchSystem.CreateAsync(cluster, Sim.Options());
        var id = await system.IssueBatchJobAsync("true", Sim.Small);
        cluster.DeletePod(id, after: TimeSpan.FromSeconds(10));

        var result = await system.GetUpdatedBatchJobAsync(TimeSpan.FromHours(1));

        Assert.Equal((BatchJobExitReason.Lost, TimeSpan.FromSeconds(10)), (result!.ExitReason, result.WallTime));
    }

    [Theory]
    [InlineData("TooManyRequests")]
    [InlineData("QuotaExceeded")]
    [InlineData("Unavailable")]
    public async Task Creates_refused_for_a_while_are_retried_and_every_job_finishes_once(string refusal)
    {
        var cluster = Sim.Cluster(Minute);
        await using var system = await SimulatedBatchSystem.CreateAsync(cluster, Sim.Options());
        cluster.RefuseCreates(Refusal(refusal), TimeSpan.FromSeconds(20));
        for (var i = 0; i < 20; i++)
        {
            await system.IssueBatchJobAsync("true", Sim.Small);
        }

        var results = await Sim.DrainAsync(system);

        Assert.Equal(20, results.Count(r => r.ExitReason == BatchJobExitReason.Finished));
    }

    [Fact]
    public async Task Creates_refused_for_longer_than_the_retry_budget_end_their_jobs_with_Error()
    {
        var cluster = Sim.Cluster(Minute);
        await using var system = await SimulatedBatchSystem.CreateAsync(cluster, Sim.Options());
        cluster.RefuseCreates(ApiRefusal.TooManyRequests, TimeSpan.FromMinutes(10));
        await system.IssueBatchJobAsync("true", Sim.Small);

        var result = await system.GetUpdatedBatchJobAsync(TimeSpan.FromHours(1));

        Assert.Equal(BatchJobExitReason.Error, result!.ExitReason);
    }

    [Fact]
    public async Task Jobs_that_end_while_the_watch_is_cut_are_returned_once_after_the_relist()
    {
        var cluster = Sim.Cluster(Minute);
        await using var system = await SimulatedBatchSystem.CreateAsync(cluster, Sim.Options());
        for (var i = 0; i < 5; i++)
        {
            await system.IssueBatchJobAsync("true", Sim.Small);
        }

        cluster.CutWatch(TimeSpan.FromMinutes(5), after: TimeSpan.FromSeconds(30));
        var results = await Sim.DrainAsync(system);

        Assert.Equal(5, results.Count(r => r.ExitReason == BatchJobExitReason.Finished));
    }

    [Fact]
    public async Task A_client_that_crashed_re_attaches_by_run_id_and_gets_every_job_once()
    {
        var cluster = Sim.Cluster(Minute);
        var first = await SimulatedBatchSystem.CreateAsync(cluster, Sim.Options());
        for (var i = 0; i < 3; i++)
        {
            await first.IssueBatchJobAsync("true", Sim.Small);
        }

        await cluster.AdvanceAsync(TimeSpan.FromSeconds(10));
        await first.DisposeAsync();
        await cluster.AdvanceAsync(TimeSpan.FromMinutes(5));
        await using var again = await SimulatedBatchSystem.CreateAsync(cluster, Sim.Options() with { RunId = first.RunId });

        var results = await Sim.DrainAsync(again);

        Assert.Equal([1, 2, 3], results.Select(r => r.JobId).Order());
        Assert.All(results, r => Assert.Equal(BatchJobExitReason.Finished, r.ExitReason));
    }

    [Fact]
    public async Task Shutdown_leaves_no_pod_of_the_run()
    {
        var cluster = Sim.Cluster(Minute);
        var system = await SimulatedBatchSystem.CreateAsync(cluster, Sim.Options());
        await system.IssueBatchJobAsync("true", Sim.Small);
        await cluster.AdvanceAsync(TimeSpan.FromSeconds(5));

        await system.ShutdownAsync();

        Assert.Equal(0, cluster.PodCount);
    }

    [Fact]
    public async Task Five_hundred_jobs_through_faults_are_each_returned_exactly_once()
    {
        var cluster = Sim.Cluster(j => PodBehaviour.Exits(j.JobId % 7 == 0 ? 1 : 0, TimeSpan.FromSeconds(5 + j.JobId % 50)), seed: 7,
            nodes: [Sim.Node("n1", 8), Sim.Node("n2", 8), Sim.Node("n3", 8)]);
        await using var system = await SimulatedBatchSystem.CreateAsync(cluster, Sim.Options(maxJobs: 40));
        cluster.LoseNode("n2", after: TimeSpan.FromMinutes(2));
        cluster.RefuseCreates(ApiRefusal.TooManyRequests, TimeSpan.FromSeconds(30), after: TimeSpan.FromMinutes(1));
        cluster.CutWatch(TimeSpan.FromSeconds(20), after: TimeSpan.FromMinutes(3));
        for (var i = 0; i < 500; i++)
        {
            await system.IssueBatchJobAsync("true", Sim.Small);
        }

        var results = await Sim.DrainAsync(system);

        Assert.Equal(Enumerable.Range(1, 500), results.Select(r => r.JobId).Order());
    }

    [Fact]
    public async Task The_same_seed_gives_the_same_run()
    {
        static async Task<string> RunAsync()
        {
            var cluster = new SimulatedCluster(
                new SimulatedClusterOptions { Seed = 42, StartJitter = TimeSpan.FromSeconds(30), Behaviour = Minute },
                Sim.Node("n1", 2), Sim.Node("n2", 2));
            await using var system = await SimulatedBatchSystem.CreateAsync(cluster, Sim.Options());
            cluster.LoseNode("n1", after: TimeSpan.FromSeconds(70));
            for (var i = 0; i < 12; i++)
            {
                await system.IssueBatchJobAsync("true", Sim.Small);
            }

            var results = await Sim.DrainAsync(system);
            return system.RunId + ":" + string.Join(",", results.Select(r => $"{r.JobId}/{r.ExitReason}/{r.WallTime.TotalMilliseconds}"));
        }

        Assert.Equal(await RunAsync(), await RunAsync());
    }

    private static ApiRefusal Refusal(string name) => name switch
    {
        "TooManyRequests" => ApiRefusal.TooManyRequests,
        "QuotaExceeded" => ApiRefusal.QuotaExceeded,
        _ => ApiRefusal.Unavailable,
    };
}
