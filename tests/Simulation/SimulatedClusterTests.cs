using HybridBatch.Testing;

namespace HybridBatch.Simulation.Tests;

/// <summary>
/// What the simulated cluster adds to the contract suites (<see cref="ToilContractTests"/>, <see cref="BehaviourTests"/>,
/// <see cref="StuckAndLostTests"/>): scripted run times and logs, virtual time, placement on labelled and tainted nodes,
/// and a wait that cannot end.
/// </summary>
public sealed class SimulatedClusterTests
{
    [Fact]
    public async Task A_job_that_exits_0_finishes_with_its_run_time_as_wall_time()
    {
        var cluster = Sim.Cluster(_ => PodBehaviour.Exits(0, TimeSpan.FromMinutes(5)));
        await using var system = await SimulatedBatchSystem.CreateAsync(cluster, Sim.Options());
        var id = await system.IssueBatchJobAsync("true", Sim.Small);

        var result = await system.GetUpdatedBatchJobAsync(TimeSpan.FromHours(1));

        Assert.Equal((id, 0, BatchJobExitReason.Finished, TimeSpan.FromMinutes(5)), (result!.JobId, result.ExitStatus, result.ExitReason, result.WallTime));
    }

    [Fact]
    public async Task A_job_that_exits_non_zero_fails_with_its_exit_code_and_its_log_kept()
    {
        var cluster = Sim.Cluster(_ => PodBehaviour.Exits(3, TimeSpan.FromSeconds(10)) with { Log = "boom" });
        await using var system = await SimulatedBatchSystem.CreateAsync(cluster, Sim.Options());
        await system.IssueBatchJobAsync("exit 3", Sim.Small);

        var result = await system.GetUpdatedBatchJobAsync(TimeSpan.FromHours(1));

        Assert.Equal((3, BatchJobExitReason.Failed, "boom"), (result!.ExitStatus, result.ExitReason, system.GetFailureLog(result.BackingId)));
    }

    [Fact]
    public async Task A_job_whose_image_is_missing_ends_with_Error_after_the_pod_timeout()
    {
        var cluster = Sim.Cluster(_ => new PodBehaviour { ImageMissing = true });
        await using var system = await SimulatedBatchSystem.CreateAsync(cluster, Sim.Options());
        var start = cluster.Now;
        await system.IssueBatchJobAsync("true", Sim.Small with { Image = "no/such:image" });

        var result = await system.GetUpdatedBatchJobAsync(TimeSpan.FromHours(1));

        Assert.Equal(BatchJobExitReason.Error, result!.ExitReason);
        Assert.Contains("ErrImagePull", result.Message, StringComparison.Ordinal);
        Assert.InRange(cluster.Now - start, TimeSpan.FromSeconds(60), TimeSpan.FromSeconds(62));
    }

    [Fact]
    public async Task A_job_larger_than_every_node_ends_with_Error_naming_why_it_cannot_be_scheduled()
    {
        var cluster = Sim.Cluster(nodes: [Sim.Node("n1", cores: 2)]);
        await using var system = await SimulatedBatchSystem.CreateAsync(cluster, Sim.Options());
        await system.IssueBatchJobAsync("true", Sim.Small with { Cores = 8 });

        var result = await system.GetUpdatedBatchJobAsync(TimeSpan.FromHours(1));

        Assert.Equal(BatchJobExitReason.Error, result!.ExitReason);
        Assert.Contains("Insufficient cpu", result.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_required_label_no_node_has_keeps_the_job_off_every_node()
    {
        var cluster = Sim.Cluster(nodes: [Sim.Node("n1") with { Labels = new Dictionary<string, string> { ["disk"] = "hdd" } }]);
        await using var system = await SimulatedBatchSystem.CreateAsync(cluster, Sim.Options());
        var placement = new Placement();
        placement.RequiredLabels["disk"] = ["ssd"];
        await system.IssueBatchJobAsync("true", Sim.Small with { Placement = placement });

        var result = await system.GetUpdatedBatchJobAsync(TimeSpan.FromHours(1));

        Assert.Contains("node affinity", result!.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_job_lands_on_a_tainted_node_only_when_it_tolerates_the_taint()
    {
        var tainted = Sim.Node("gpu") with { Taints = [new SimulatedTaint("dedicated", "gpu")] };
        var cluster = Sim.Cluster(nodes: [tainted]);
        await using var system = await SimulatedBatchSystem.CreateAsync(cluster, Sim.Options());
        var tolerant = new Placement();
        tolerant.ToleratedTaints["dedicated"] = ["gpu"];
        await system.IssueBatchJobAsync("true", Sim.Small with { Placement = tolerant });
        await system.IssueBatchJobAsync("true", Sim.Small);

        var results = (await Sim.DrainAsync(system)).OrderBy(r => r.JobId).Select(r => r.ExitReason);

        Assert.Equal([BatchJobExitReason.Finished, BatchJobExitReason.Error], results);
    }

    [Fact]
    public async Task A_running_job_shows_in_the_running_set_with_the_virtual_time_it_ran()
    {
        var cluster = Sim.Cluster(_ => PodBehaviour.RunsForever);
        await using var system = await SimulatedBatchSystem.CreateAsync(cluster, Sim.Options());
        var id = await system.IssueBatchJobAsync("sleep", Sim.Small);

        await cluster.AdvanceAsync(TimeSpan.FromMinutes(10));

        Assert.Equal(TimeSpan.FromMinutes(10), (await system.GetRunningBatchJobIdsAsync())[id]);
    }

    [Fact]
    public async Task A_wait_that_cannot_end_throws_naming_the_waiting_job()
    {
        var cluster = Sim.Cluster(_ => PodBehaviour.RunsForever);
        await using var system = await SimulatedBatchSystem.CreateAsync(cluster, Sim.Options());
        var id = await system.IssueBatchJobAsync("sleep", Sim.Small);

        var stalled = await Assert.ThrowsAsync<SimulationStalledException>(() => system.GetUpdatedBatchJobAsync(TimeSpan.FromDays(1)));

        Assert.Contains($"job {id} runs", stalled.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_wait_with_no_job_issued_returns_null_once_its_virtual_time_is_up()
    {
        var cluster = Sim.Cluster();
        await using var system = await SimulatedBatchSystem.CreateAsync(cluster, Sim.Options());
        var start = cluster.Now;

        Assert.Null(await system.GetUpdatedBatchJobAsync(TimeSpan.FromMinutes(3)));
        Assert.Equal(TimeSpan.FromMinutes(3), cluster.Now - start);
    }
}
