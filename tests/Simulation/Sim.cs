using HybridBatch.Testing;

namespace HybridBatch.Simulation.Tests;

/// <summary>Small helpers: a cluster, a batch system on it, and collecting until every job is back.</summary>
internal static class Sim
{
    public static readonly JobDescription Small = new("small", 0.5, 256L << 20, 256L << 20);

    public static SimulatedNode Node(string name, double cores = 4) => new(name, cores, 16L << 30, 64L << 30);

    public static SimulatedCluster Cluster(Func<SimulatedJob, PodBehaviour>? behaviour = null, ulong seed = 1, params SimulatedNode[] nodes) =>
        new(new SimulatedClusterOptions { Seed = seed, Behaviour = behaviour ?? (_ => new PodBehaviour()) }, nodes.Length > 0 ? nodes : [Node("n1"), Node("n2")]);

    public static KubernetesBatchSystemOptions Options(int maxJobs = 1000) => new() { MaxJobs = maxJobs, PodTimeout = TimeSpan.FromSeconds(60) };

    /// <summary>Collects until no job is issued, failing on a result returned twice.</summary>
    public static async Task<List<UpdatedBatchJobInfo>> DrainAsync(IBatchSystem system)
    {
        var results = new List<UpdatedBatchJobInfo>();
        var seen = new HashSet<int>();
        var waiting = (await system.GetIssuedBatchJobIdsAsync()).Count;
        while (waiting > 0)
        {
            if (await system.GetUpdatedBatchJobAsync(TimeSpan.FromHours(1)) is { } result)
            {
                Assert.True(seen.Add(result.JobId), $"job {result.JobId} was returned twice");
                results.Add(result);
                waiting--;
            }
            else
            {
                waiting = (await system.GetIssuedBatchJobIdsAsync()).Count;
            }
        }

        Assert.Empty(await system.GetIssuedBatchJobIdsAsync());
        return results;
    }
}
