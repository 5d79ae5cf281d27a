using System.Net;
using HybridBatch.Resilience;
using k8s;
using k8s.Models;

namespace HybridBatch.Integration.Resilience;

/// <summary>The resilience pipeline against a fake API server at the HTTP boundary.</summary>
public sealed class KubernetesResilienceHandlerTests
{
    private const string Ns = "hb-test";

    private static readonly KubernetesResilienceOptions Fast = new()
    {
        Qps = 0,
        PerRequestTimeout = TimeSpan.FromMilliseconds(300),
        FirstRetryDelay = TimeSpan.FromMilliseconds(10),
        MaxRetryDelay = TimeSpan.FromMilliseconds(50),
        RetryBudget = TimeSpan.FromSeconds(10),
    };

    private static V1Job NamedJob(string name) => new() { Metadata = new V1ObjectMeta { Name = name } };

    private static Task<HttpResponseMessage> Hang(CancellationToken cancellationToken) =>
        Task.Delay(Timeout.Infinite, cancellationToken).ContinueWith<HttpResponseMessage>(
            _ => throw new OperationCanceledException(cancellationToken), TaskScheduler.Default);

    [Fact]
    public async Task A_429_with_Retry_After_is_retried_after_at_least_that_long()
    {
        var server = FakeApiServer.Answering(n => n == 1
            ? Responses.Status(429, "TooManyRequests", "the server is throttling", retryAfterSeconds: 1)
            : Responses.PodList());
        var observer = new RecordingObserver();
        using var client = server.Client(Fast, observer);

        var started = TimeProvider.System.GetTimestamp();
        var pods = await client.CoreV1.ListNamespacedPodAsync(Ns);
        var elapsed = TimeProvider.System.GetElapsedTime(started);

        Assert.Single(pods.Items);
        Assert.Equal(2, server.Requests);
        var retry = Assert.Single(observer.Retries);
        Assert.True(retry.Delay >= TimeSpan.FromSeconds(1), $"waited {retry.Delay}, the server asked for 1 s");
        var arrivals = server.ArrivalTimestamps.ToArray();
        var gap = TimeProvider.System.GetElapsedTime(arrivals[0], arrivals[1]);
        Assert.True(gap >= TimeSpan.FromSeconds(1), $"the retry came {gap} after the 429");
        Assert.True(elapsed >= TimeSpan.FromSeconds(1));
    }

    [Fact]
    public async Task A_429_with_Retry_After_waits_on_the_injected_clock_and_never_less()
    {
        var clock = new ManualClock();
        var server = FakeApiServer.Answering(n => n == 1
            ? Responses.Status(429, "TooManyRequests", "the server is throttling", retryAfterSeconds: 30)
            : Responses.PodList());
        var options = Fast with { RetryBudget = TimeSpan.FromMinutes(2) };
        using var client = KubernetesClientFactory.Create(
            new KubernetesClientConfiguration { Host = "http://127.0.0.1:9" }, options, null, clock, null, [server]);

        var call = client.CoreV1.ListNamespacedPodAsync(Ns);
        await WaitUntil(() => clock.PendingTimers().Any(due => due >= TimeSpan.FromSeconds(30)));
        clock.Advance(TimeSpan.FromSeconds(29.9));
        await Task.Delay(100);

        Assert.Equal(1, server.Requests);
        Assert.False(call.IsCompleted);

        clock.Advance(TimeSpan.FromSeconds(1));
        var pods = await call.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Single(pods.Items);
        Assert.Equal(2, server.Requests);
    }

    private static async Task WaitUntil(Func<bool> condition)
    {
        var deadline = TimeProvider.System.GetTimestamp();
        while (!condition())
        {
            Assert.True(TimeProvider.System.GetElapsedTime(deadline) < TimeSpan.FromSeconds(10), "the condition never held");
            await Task.Delay(10);
        }
    }

    [Fact]
    public async Task A_500_on_a_list_is_retried()
    {
        var server = FakeApiServer.Answering(n => n == 1
            ? Responses.Status(500, "InternalError", "etcd leader changed")
            : Responses.PodList());
        var counter = new KubernetesCallCounter();
        using var client = server.Client(Fast, counter);

        var pods = await client.CoreV1.ListNamespacedPodAsync(Ns);

        Assert.Single(pods.Items);
        Assert.Equal(2, server.Requests);
        Assert.Equal(1, counter.Retries);
        Assert.Equal(1, counter.Count("list", KubernetesCallOutcome.Succeeded));
    }

    [Fact]
    public async Task A_reset_connection_on_a_read_is_retried()
    {
        var server = new FakeApiServer((_, n, _) => n == 1
            ? throw new HttpRequestException(HttpRequestError.ResponseEnded, "the server closed the connection")
            : Task.FromResult(Responses.PodList()));
        using var client = server.Client(Fast);

        var pods = await client.CoreV1.ListNamespacedPodAsync(Ns);

        Assert.Single(pods.Items);
        Assert.Equal(2, server.Requests);
    }

    [Fact]
    public async Task A_403_is_not_retried_and_the_exception_names_the_missing_permission()
    {
        var server = FakeApiServer.Answering(_ => Responses.Status(
            403,
            "Forbidden",
            "jobs.batch is forbidden: User \"system:serviceaccount:hb-test:runner\" cannot create resource \"jobs\" in API group \"batch\" in the namespace \"hb-test\"",
            """{"group":"batch","kind":"jobs"}"""));
        using var client = server.Client(Fast);

        var ex = await Assert.ThrowsAsync<KubernetesApiException>(() => client.BatchV1.CreateNamespacedJobAsync(NamedJob("hb-1"), Ns));

        Assert.Equal(1, server.Requests);
        Assert.Equal(KubernetesCallDecision.Fail, ex.Decision);
        Assert.Equal(HttpStatusCode.Forbidden, ex.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, ex.Response.StatusCode);
        Assert.Contains("cannot create jobs.batch in namespace hb-test", ex.Message, StringComparison.Ordinal);
        Assert.Contains("the Role bound in namespace hb-test", ex.Message, StringComparison.Ordinal);
        Assert.Contains("verbs: [\"create\"]", ex.Message, StringComparison.Ordinal);
    }

    private static HttpResponseMessage CannotCreateJobs() => Responses.Status(
        403,
        "Forbidden",
        "jobs.batch is forbidden: User \"system:serviceaccount:hb-test:runner\" cannot create resource \"jobs\" in API group \"batch\" in the namespace \"hb-test\"");

    [Fact]
    public async Task A_403_for_a_permission_this_client_used_before_is_retried_as_a_restarting_servers_refusal()
    {
        // Created once, then refused twice (the API server restarted and its authorization caches are empty), then accepted.
        var server = FakeApiServer.Answering(n => n is 2 or 3 ? CannotCreateJobs() : Responses.Job($"hb-{n}"));
        var observer = new RecordingObserver();
        using var client = server.Client(Fast, observer);

        await client.BatchV1.CreateNamespacedJobAsync(NamedJob("hb-1"), Ns);
        var second = await client.BatchV1.CreateNamespacedJobAsync(NamedJob("hb-2"), Ns);

        Assert.Equal("hb-4", second.Metadata.Name);
        Assert.Equal(4, server.Requests);
        Assert.Equal(2, observer.Retries.Count);
    }

    [Fact]
    public async Task A_403_soon_after_the_server_was_unreachable_is_retried_even_for_a_permission_not_used_before()
    {
        var server = new FakeApiServer((_, n, _) => n switch
        {
            1 => throw new HttpRequestException(HttpRequestError.ConnectionError, "connection refused"),
            2 => Task.FromResult(CannotCreateJobs()),
            _ => Task.FromResult(Responses.Job("hb-1")),
        });
        using var client = server.Client(Fast);

        var job = await client.BatchV1.CreateNamespacedJobAsync(NamedJob("hb-1"), Ns);

        Assert.Equal("hb-1", job.Metadata.Name);
        Assert.Equal(3, server.Requests);
    }

    [Fact]
    public async Task A_403_that_persists_for_a_permission_used_before_fails_within_the_budget_naming_the_permission()
    {
        var server = FakeApiServer.Answering(n => n == 1 ? Responses.Job("hb-1") : CannotCreateJobs());
        var options = Fast with { RetryBudget = TimeSpan.FromMilliseconds(500) };
        var observer = new RecordingObserver();
        using var client = server.Client(options, observer);
        await client.BatchV1.CreateNamespacedJobAsync(NamedJob("hb-1"), Ns);

        var ex = await Assert.ThrowsAsync<KubernetesApiException>(() => client.BatchV1.CreateNamespacedJobAsync(NamedJob("hb-2"), Ns));

        Assert.True(server.Requests > 2, "the refusal was not retried");
        var waited = observer.Retries.Aggregate(TimeSpan.Zero, (sum, r) => sum + r.Delay);
        Assert.True(waited <= options.RetryBudget, $"waited {waited} in retries, the budget being {options.RetryBudget}");
        Assert.Equal(KubernetesCallDecision.Fail, ex.Decision);
        Assert.Contains("cannot create jobs.batch in namespace hb-test", ex.Message, StringComparison.Ordinal);
        Assert.Contains("verbs: [\"create\"]", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_422_names_the_invalid_field_and_is_not_retried()
    {
        var server = FakeApiServer.Answering(_ => Responses.Status(
            422,
            "Invalid",
            "Job.batch \"hb-1\" is invalid",
            """{"name":"hb-1","group":"batch","kind":"Job","causes":[{"reason":"FieldValueRequired","message":"Required value","field":"spec.template.spec.containers[0].image"}]}"""));
        using var client = server.Client(Fast);

        var ex = await Assert.ThrowsAsync<KubernetesApiException>(() => client.BatchV1.CreateNamespacedJobAsync(NamedJob("hb-1"), Ns));

        Assert.Equal(1, server.Requests);
        Assert.Contains("spec.template.spec.containers[0].image: Required value", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_404_on_a_delete_is_already_done_for_the_caller()
    {
        var server = FakeApiServer.Answering(_ => Responses.Status(404, "NotFound", "jobs.batch \"gone\" not found"));
        var counter = new KubernetesCallCounter();
        using var client = server.Client(Fast, counter);

        var status = await client.BatchV1.DeleteNamespacedJobAsync("gone", Ns, propagationPolicy: "Background").AllowingAlreadyDoneAsync();

        Assert.Null(status);
        Assert.Equal(1, server.Requests);
        Assert.Equal(1, counter.Count("delete", KubernetesCallOutcome.AlreadyDone));
    }

    [Fact]
    public async Task A_create_that_times_out_is_retried_when_its_name_is_deterministic()
    {
        var server = new FakeApiServer((_, n, ct) => n == 1 ? Hang(ct) : Task.FromResult(Responses.Job("hb-1")));
        using var client = server.Client(Fast);

        var job = await client.BatchV1.CreateNamespacedJobAsync(NamedJob("hb-1"), Ns);

        Assert.Equal("hb-1", job.Metadata.Name);
        Assert.Equal(2, server.Requests);
    }

    [Fact]
    public async Task A_create_that_times_out_is_not_repeated_when_it_uses_generateName()
    {
        var server = new FakeApiServer((_, n, ct) => n == 1 ? Hang(ct) : Task.FromResult(Responses.Job("hb-x1")));
        using var client = server.Client(Fast);
        var job = new V1Job { Metadata = new V1ObjectMeta { GenerateName = "hb-" } };

        var ex = await Assert.ThrowsAsync<KubernetesApiException>(() => client.BatchV1.CreateNamespacedJobAsync(job, Ns));

        Assert.Equal(1, server.Requests);
        Assert.Equal(KubernetesCallDecision.Fail, ex.Decision);
        Assert.Null(ex.StatusCode);
        Assert.Contains("generateName", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_500_on_a_create_that_uses_generateName_is_not_repeated()
    {
        var server = FakeApiServer.Answering(n => n == 1 ? Responses.Status(500, "InternalError", "boom") : Responses.Job("hb-x1"));
        using var client = server.Client(Fast);
        var job = new V1Job { Metadata = new V1ObjectMeta { GenerateName = "hb-" } };

        await Assert.ThrowsAsync<KubernetesApiException>(() => client.BatchV1.CreateNamespacedJobAsync(job, Ns));

        Assert.Equal(1, server.Requests);
    }

    [Fact]
    public async Task A_repeated_create_that_finds_its_own_object_is_already_done()
    {
        // The first attempt was applied but its answer was lost; the repeat finds the object.
        var server = new FakeApiServer((_, n, ct) => n == 1
            ? Hang(ct)
            : Task.FromResult(Responses.Status(409, "AlreadyExists", "jobs.batch \"hb-1\" already exists")));
        using var client = server.Client(Fast);

        var job = await client.BatchV1.CreateNamespacedJobAsync(NamedJob("hb-1"), Ns).AllowingAlreadyDoneAsync();

        Assert.Null(job);
        Assert.Equal(2, server.Requests);
    }

    [Fact]
    public async Task A_call_that_keeps_failing_gives_up_within_the_budget()
    {
        var server = FakeApiServer.Answering(_ => Responses.Status(503, "ServiceUnavailable", "apiserver is shutting down"));
        var options = Fast with { RetryBudget = TimeSpan.FromMilliseconds(500) };
        using var client = server.Client(options);

        var ex = await Assert.ThrowsAsync<KubernetesApiException>(() => client.CoreV1.ListNamespacedPodAsync(Ns));

        Assert.True(ex.Decision == KubernetesCallDecision.Retry, "the last failure was still retryable");
        Assert.True(ex.Attempts > 1);
        Assert.Equal(ex.Attempts, server.Requests);
        Assert.True(ex.Elapsed < TimeSpan.FromMilliseconds(500) + Fast.PerRequestTimeout + TimeSpan.FromSeconds(1));
        Assert.Contains("gave up", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_watch_is_not_cut_by_the_per_request_timeout()
    {
        var quiet = TimeSpan.FromMilliseconds(900);
        var server = FakeApiServer.Answering(_ => new HttpResponseMessage(HttpStatusCode.OK) { Content = new SlowLinesContent(quiet, Responses.PodAddedEvent) });
        var counter = new KubernetesCallCounter();
        using var client = server.Client(Fast, counter);
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(10));

        var names = new List<string>();
        await foreach (var (type, pod) in client.CoreV1.WatchListNamespacedPodAsync(Ns, cancellationToken: cancel.Token))
        {
            Assert.Equal(WatchEventType.Added, type);
            names.Add(pod.Metadata.Name);
        }

        Assert.Equal(["p1"], names);
        Assert.Equal(1, server.Requests);
        Assert.Equal(1, counter.Count("watch", KubernetesCallOutcome.Succeeded));
    }

    [Fact]
    public async Task A_watch_from_an_expired_resourceVersion_asks_for_a_resync()
    {
        var server = FakeApiServer.Answering(_ => Responses.Status(410, "Expired", "too old resource version: 1 (7)"));
        using var client = server.Client(Fast);

        var ex = await Assert.ThrowsAsync<KubernetesApiException>(async () =>
        {
            await foreach (var _ in client.CoreV1.WatchListNamespacedPodAsync(Ns, resourceVersion: "1"))
            {
            }
        });

        Assert.True(KubernetesErrors.IsResync(ex));
        Assert.Equal(1, server.Requests);
    }

    [Fact]
    public async Task The_rate_limiter_caps_the_rate()
    {
        var server = FakeApiServer.Answering(_ => Responses.PodList());
        var options = Fast with { Qps = 20, Burst = 1 };
        using var client = server.Client(options);

        var started = TimeProvider.System.GetTimestamp();
        await Task.WhenAll(Enumerable.Range(0, 21).Select(_ => client.CoreV1.ListNamespacedPodAsync(Ns)));
        var elapsed = TimeProvider.System.GetElapsedTime(started);

        // One token at once, then 20 more at 20 per second: at least a second.
        Assert.Equal(21, server.Requests);
        Assert.True(elapsed >= TimeSpan.FromMilliseconds(900), $"21 requests at 20 QPS with burst 1 took only {elapsed}");
    }

    [Fact]
    public async Task A_cancelled_call_is_not_retried()
    {
        using var cancel = new CancellationTokenSource();
        var server = new FakeApiServer((_, _, ct) =>
        {
            cancel.Cancel();
            return Hang(ct);
        });
        using var client = server.Client(Fast);

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.CoreV1.ListNamespacedPodAsync(Ns, cancellationToken: cancel.Token));

        Assert.Equal(1, server.Requests);
    }
}
