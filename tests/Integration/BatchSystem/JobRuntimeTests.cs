using System.Collections.Concurrent;
using HybridBatch.Core;
using HybridBatch.Core.Api;
using HybridBatch.Runtime;
using HybridBatch.Translation;
using k8s;
using Microsoft.Extensions.Logging.Abstractions;

namespace HybridBatch.Integration.BatchSystem;

/// <summary>The runtime that owns the jobs' state, without a cluster: a pool of no jobs keeps every job queued, so no call is made.</summary>
public sealed class JobRuntimeTests
{
    private static readonly KubernetesBatchSystemOptions Options = new();

    private static readonly JobSettings Settings =
        Jobs.Settings("tester", "runtime-run", Options.Image, 0, Options.MaxCores, Options.MaxMemory, Options.MaxDisk);

    /// <summary>A runtime whose pool holds no job: every job issued stays queued, so the client is never called.</summary>
    private static JobRuntime QueueOnly(IKubernetes client)
    {
        var failureLogs = new FailureLogs();
        return new(
            Transitions.Initial(60_000, maxJobs: 0, Options.MaxCores, Options.MaxMemory, Options.MaxDisk),
            TimeProvider.System,
            failureLogs,
            r => new JobEffects(client, "hb", new JobManifests(Options, "runtime-run", "tester"), 1, failureLogs, NullLogger.Instance, r));
    }

    [Fact]
    public async Task Jobs_issued_from_many_threads_at_once_each_get_an_id_of_their_own_and_all_are_issued()
    {
        const int threads = 8;
        const int perThread = 250;
        using var client = new Kubernetes(new KubernetesClientConfiguration { Host = "http://127.0.0.1:9" });
        var runtime = QueueOnly(client);
        var named = new ConcurrentDictionary<int, string>();
        var returned = new ConcurrentBag<int>();

        Preparation Prepare(int id)
        {
            var preparation = Jobs.Prepare(Settings, id, "job", "true", null, 0.1, 1 << 20, 1 << 20, null, null, null, null, null, false, [], null);
            named[id] = preparation.Job!.request.name;
            return preparation;
        }

        using var start = new Barrier(threads);
        await Task.WhenAll(Enumerable.Range(0, threads).Select(_ => Task.Run(() =>
        {
            start.SignalAndWait();
            for (var i = 0; i < perThread; i++)
            {
                var (id, problem) = runtime.Issue(Prepare);
                Assert.Null(problem);
                returned.Add(id);
            }
        })));

        var expected = Enumerable.Range(1, threads * perThread).ToList();
        Assert.Equal(expected, returned.Order());
        Assert.Equal(expected, runtime.Issued());
        Assert.All(expected, id => Assert.EndsWith($"-{id}", named[id], StringComparison.Ordinal));
    }

    [Fact]
    public void A_job_refused_takes_no_id()
    {
        using var client = new Kubernetes(new KubernetesClientConfiguration { Host = "http://127.0.0.1:9" });
        var runtime = QueueOnly(client);

        var (_, problem) = runtime.Issue(id => Jobs.Prepare(Settings, id, "job", " ", null, 0.1, 1, 1, null, null, null, null, null, false, [], null));
        var (id, accepted) = runtime.Issue(id => Jobs.Prepare(Settings, id, "job", "true", null, 0.1, 1, 1, null, null, null, null, null, false, [], null));

        Assert.Equal(ProblemKind.Command, problem!.Kind);
        Assert.Null(accepted);
        Assert.Equal(1, id);
        Assert.Equal(new[] { 1 }, runtime.Issued());
    }
}
