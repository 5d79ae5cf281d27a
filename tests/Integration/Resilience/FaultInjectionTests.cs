using System.Collections.Concurrent;
using System.Net;
using HybridBatch.Resilience;
using k8s;
using k8s.Models;

namespace HybridBatch.Integration.Resilience;

/// <summary>The pipeline under injected throttling, server errors, resets and slow answers.</summary>
public sealed class FaultInjectionTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public async Task Under_injected_faults_every_call_succeeds_and_each_job_exists_once_under_its_own_name(int seed)
    {
        var created = new ConcurrentDictionary<string, int>();
        var store = new FakeApiServer(async (request, _, ct) =>
        {
            if (request.Method != HttpMethod.Post)
            {
                return Responses.PodList();
            }

            var job = k8s.KubernetesJson.Deserialize<V1Job>(await request.Content!.ReadAsStringAsync(ct));
            var name = job.Metadata.Name;
            return created.AddOrUpdate(name, 1, (_, n) => n + 1) == 1
                ? Responses.Job(name)
                : Responses.Status(409, "AlreadyExists", $"jobs.batch \"{name}\" already exists");
        });
        var faults = new FaultInjectingHandler(
            new FaultRates(Throttle: 0.1, ServerError: 0.1, ResetAfterApplying: 0.1, Slow: 0.05) { RetryAfter = TimeSpan.Zero, SlowDelay = TimeSpan.FromMilliseconds(50) },
            seed);
        var counter = new KubernetesCallCounter();
        var options = new KubernetesResilienceOptions
        {
            Qps = 0,
            PerRequestTimeout = TimeSpan.FromSeconds(5),
            FirstRetryDelay = TimeSpan.FromMilliseconds(5),
            MaxRetryDelay = TimeSpan.FromMilliseconds(40),
            RetryBudget = TimeSpan.FromSeconds(20),
        };
        using var client = KubernetesClientFactory.Create(
            new KubernetesClientConfiguration { Host = "http://127.0.0.1:9" }, options, null, null, counter, [faults, store]);

        var names = Enumerable.Range(1, 40).Select(i => $"hb-{seed}-{i}").ToArray();
        var creates = names.Select(name => client.BatchV1
            .CreateNamespacedJobAsync(new V1Job { Metadata = new V1ObjectMeta { Name = name } }, "hb")
            .AllowingAlreadyDoneAsync());
        var lists = Enumerable.Range(0, 40).Select(_ => client.CoreV1.ListNamespacedPodAsync("hb"));
        await Task.WhenAll(Task.WhenAll(creates), Task.WhenAll(lists));

        Assert.True(faults.Injected > 0, "the seed injected no fault");
        // Repeats of an applied create met AlreadyExists instead of making a second Job.
        Assert.Equal(names.Order(), created.Keys.Order());
        Assert.Equal(80, counter.Requests);
        Assert.True(counter.Retries > 0);
        Assert.Equal(0, counter.Count("create", KubernetesCallOutcome.Failed) + counter.Count("create", KubernetesCallOutcome.GaveUp));
        Assert.Equal(40, counter.Count("list", KubernetesCallOutcome.Succeeded));
    }
}
