using HybridBatch.Testing;

namespace HybridBatch.Simulation.Tests;

/// <summary>Scripted behaviours that cannot happen are refused with the value named.</summary>
public sealed class BadInputTests
{
    [Fact]
    public async Task A_negative_run_time_is_refused_naming_it()
    {
        var cluster = Sim.Cluster(_ => PodBehaviour.Exits(0, TimeSpan.FromSeconds(-5)));
        await using var system = await SimulatedBatchSystem.CreateAsync(cluster, Sim.Options());

        var error = await Assert.ThrowsAsync<ArgumentException>(() => system.IssueBatchJobAsync("true", Sim.Small));

        Assert.Contains("-5000 ms", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_node_with_negative_capacity_is_refused_naming_it()
    {
        var error = Assert.Throws<ArgumentException>(() => Sim.Cluster(nodes: [new SimulatedNode("n1", 2, -1, 0)]));

        Assert.Contains("'n1' has memory capacity -1", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_fault_in_the_past_is_refused_naming_when()
    {
        var cluster = Sim.Cluster();

        var error = Assert.Throws<ArgumentException>(() => cluster.LoseNode("n1", after: TimeSpan.FromSeconds(-3)));

        Assert.Contains("3000 ms before", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_unknown_node_is_refused_naming_it_and_the_nodes_there_are()
    {
        var cluster = Sim.Cluster();

        var error = Assert.Throws<ArgumentException>(() => cluster.LoseNode("n9"));

        Assert.Contains("no simulated node 'n9' (the nodes are: n1, n2)", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_exit_code_a_container_cannot_have_is_refused_naming_it()
    {
        var cluster = Sim.Cluster(_ => new PodBehaviour { ExitCode = 300 });
        await using var system = await SimulatedBatchSystem.CreateAsync(cluster, Sim.Options());

        var error = await Assert.ThrowsAsync<ArgumentException>(() => system.IssueBatchJobAsync("true", Sim.Small));

        Assert.Contains("exit code is 300", error.Message, StringComparison.Ordinal);
    }
}
