using System.Diagnostics;
using HybridBatch.Testing;
using HybridBatch.Testing.Simulation;
using Xunit.Abstractions;

namespace HybridBatch.Simulation.Tests;

/// <summary>A burst of ten thousand jobs through a node loss and a 429 storm, in virtual time.</summary>
public sealed class ScaleTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Ten_thousand_jobs_through_a_node_loss_and_a_429_storm_are_each_returned_exactly_once()
    {
        var nodes = Enumerable.Range(1, 20).Select(i => Sim.Node($"n{i}", cores: 16)).ToArray();
        var cluster = new SimulatedCluster(
            new SimulatedClusterOptions { Seed = 10_000, StartJitter = TimeSpan.FromSeconds(2), Behaviour = j => PodBehaviour.Exits(0, TimeSpan.FromSeconds(30 + j.JobId % 90)) },
            nodes);
        await using var system = await SimulatedBatchSystem.CreateAsync(cluster, Sim.Options(maxJobs: 600));
        cluster.LoseNode("n7", after: TimeSpan.FromMinutes(10));
        cluster.RefuseCreates(ApiRefusal.TooManyRequests, TimeSpan.FromMinutes(1), after: TimeSpan.FromMinutes(5));
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var wall = Stopwatch.StartNew();

        for (var i = 0; i < 10_000; i++)
        {
            await system.IssueBatchJobAsync("true", Sim.Small);
        }

        var results = await Sim.DrainAsync(system);
        wall.Stop();
        cpu = Process.GetCurrentProcess().TotalProcessorTime - cpu;

        output.WriteLine(
            $"10,000 jobs: {wall.Elapsed.TotalSeconds:F2} s wall, {cpu.TotalSeconds:F2} s CPU, {cpu.TotalMicroseconds / 10_000:F0} µs CPU a job, " +
            $"{results.Count(r => r.ExitReason == BatchJobExitReason.Lost)} lost, {(cluster.Now - new SimulatedClusterOptions().Start).TotalMinutes:F0} virtual minutes");
        Assert.Equal(Enumerable.Range(1, 10_000), results.Select(r => r.JobId).Order());
    }
}
