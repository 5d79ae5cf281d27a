using System.Diagnostics;
using HybridBatch.Integration.Cluster;
using HybridBatch.Integration.Faults;
using HybridBatch.Integration.Toil;
using k8s;
using Xunit.Abstractions;

namespace HybridBatch.Integration.BatchSystem;

/// <summary>
/// More jobs than the cluster has room for: the scheduler finds no node for the later ones until the run's own jobs end,
/// which is a turn to wait for, not a stuck pod. In the whole-node collection, so the node's CPU is the run's alone.
/// </summary>
[Collection(WholeNodeCollection.Name)]
public sealed class RoomTests(LocalClusterFixture cluster, ITestOutputHelper output)
{
    [Fact]
    public async Task Jobs_waiting_for_room_the_runs_own_jobs_hold_outlast_the_pod_timeout_and_run_in_turn()
    {
        // Each job asks for more than half of the node's CPU, so one runs at a time, and runs 8 s, well past the 3 s pod
        // timeout: the other two wait unschedulable for 8 s and 16 s.
        using var admin = Admin.Client();
        var node = Assert.Single((await admin.CoreV1.ListNodeAsync(labelSelector: "!hybridbatch.io/fake-node")).Items);
        var cores = Math.Round((double)node.Status.Allocatable["cpu"].ToDecimal() * 0.6, 2);
        output.WriteLine($"node {node.Metadata.Name}: {node.Status.Allocatable["cpu"]} CPU allocatable; each job asks for {cores}");
        var system = await KubernetesBatchSystem.CreateAsync(
            // No local limit holds them back (the pool's is the machine's cores): all three are created at once.
            Batch.Options(cluster, o => o with { PodTimeout = TimeSpan.FromSeconds(3), MaxCores = 10_000 }), Batch.Logging(output));
        try
        {
            var clock = Stopwatch.StartNew();
            var issued = new List<int>();
            for (var i = 0; i < 3; i++)
            {
                issued.Add(await system.IssueBatchJobAsync("sleep 8", TestJobs.Job($"room-{i}", cores: cores)));
            }

            var seen = new List<UpdatedBatchJobInfo>();
            for (var i = 0; i < 3; i++)
            {
                var info = await Batch.NextAsync(system, TimeSpan.FromMinutes(3));
                output.WriteLine($"job {info.JobId}: {info.ExitReason}, exit {info.ExitStatus}, after {clock.Elapsed.TotalSeconds:F1} s: {info.Message}");
                seen.Add(info);
            }

            Assert.All(seen, info => Assert.Equal((0, BatchJobExitReason.Finished), (info.ExitStatus, info.ExitReason)));
            Assert.Equal(issued, seen.Select(info => info.JobId).Order());
            // They ran one after another, so the later ones did wait past the pod timeout.
            Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(24), $"all three ended after {clock.Elapsed.TotalSeconds:F1} s: they did not run in turn");
        }
        finally
        {
            await system.ShutdownAsync();
            await system.DisposeAsync();
        }
    }
}
