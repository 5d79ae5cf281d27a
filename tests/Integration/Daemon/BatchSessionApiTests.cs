using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using HybridBatch.Integration.Cluster;
using Xunit.Abstractions;

namespace HybridBatch.Integration.Daemon;

/// <summary>The daemon's batch-session API (<c>/hybridbatch/v1</c>, what the Toil plugin calls), end to end against the cluster.</summary>
public sealed class BatchSessionApiTests(LocalClusterFixture cluster, ITestOutputHelper output)
    : InProcessDaemonTests(cluster, output, "sessions"), IClassFixture<LocalClusterFixture>
{
    private const string Sessions = "/hybridbatch/v1/sessions";

    private static JsonObject Job(string command) =>
        new() { ["command"] = command, ["name"] = command, ["cores"] = 0.1, ["memory"] = 100_000_000, ["disk"] = 1000 };

    private async Task<string> OpenAsync()
    {
        using var response = await Client.PostAsJsonAsync(Sessions, new JsonObject());
        var body = await response.Content.ReadFromJsonAsync<JsonObject>();
        Assert.True(response.StatusCode == HttpStatusCode.Created, $"open answered {response.StatusCode}: {body}");
        return body!["runId"]!.GetValue<string>();
    }

    private async Task<JsonObject> NextAsync(string run)
    {
        for (var i = 0; i < 12; i++)
        {
            using var response = await Client.GetAsync($"{Sessions}/{run}/updated?maxWait=30");
            if (response.StatusCode == HttpStatusCode.OK)
            {
                return (await response.Content.ReadFromJsonAsync<JsonObject>())!;
            }

            Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        }

        throw new TimeoutException("no job ended within 6 minutes");
    }

    [Fact]
    public async Task Jobs_end_once_with_their_exit_reason_a_killed_one_never_and_shutting_down_ends_the_session()
    {
        var run = await OpenAsync();
        var ids = new Dictionary<string, int>();
        foreach (var command in new[] { "true", "exit 3", "sleep 300" })
        {
            using var issued = await Client.PostAsJsonAsync($"{Sessions}/{run}/jobs", Job(command));
            Assert.Equal(HttpStatusCode.Created, issued.StatusCode);
            ids[command] = (await issued.Content.ReadFromJsonAsync<JsonObject>())!["id"]!.GetValue<int>();
        }

        var issuedIds = (await Client.GetFromJsonAsync<JsonObject>($"{Sessions}/{run}/issued"))!["ids"]!.AsArray().Select(n => n!.GetValue<int>());
        Assert.Equal(ids.Values.Order(), issuedIds.Order());
        using (var kill = await Client.PostAsJsonAsync($"{Sessions}/{run}/kill", new JsonObject { ["ids"] = new JsonArray(ids["sleep 300"]) }))
        {
            Assert.Equal(HttpStatusCode.NoContent, kill.StatusCode);
        }

        var ended = new Dictionary<int, JsonObject>();
        for (var i = 0; i < 2; i++)
        {
            var job = await NextAsync(run);
            ended.Add(job["jobId"]!.GetValue<int>(), job);
        }

        Assert.Equal(("Finished", 1, 0), (ended[ids["true"]]["exitReason"]!.GetValue<string>(), ended[ids["true"]]["exitReasonCode"]!.GetValue<int>(), ended[ids["true"]]["exitStatus"]!.GetValue<int>()));
        Assert.Equal(("Failed", 2, 3), (ended[ids["exit 3"]]["exitReason"]!.GetValue<string>(), ended[ids["exit 3"]]["exitReasonCode"]!.GetValue<int>(), ended[ids["exit 3"]]["exitStatus"]!.GetValue<int>()));
        Assert.True(ended[ids["true"]]["wallTime"]!.GetValue<double>() > 0);
        using (var none = await Client.GetAsync($"{Sessions}/{run}/updated?maxWait=1"))
        {
            Assert.Equal(HttpStatusCode.NoContent, none.StatusCode);
        }

        using (var close = await Client.DeleteAsync($"{Sessions}/{run}"))
        {
            Assert.Equal(HttpStatusCode.NoContent, close.StatusCode);
        }

        using var gone = await Client.GetAsync($"{Sessions}/{run}/issued");
        Assert.Equal(HttpStatusCode.NotFound, gone.StatusCode);
    }

    [Fact]
    public async Task Bad_requests_get_an_error_naming_the_problem_and_the_fix()
    {
        async Task<(HttpStatusCode Status, string Error)> ErrorOf(Task<HttpResponseMessage> call)
        {
            using var response = await call;
            var body = await response.Content.ReadFromJsonAsync<JsonObject>();
            return (response.StatusCode, body!["error"]!.GetValue<string>());
        }

        var (status, error) = await ErrorOf(Client.GetAsync($"{Sessions}/no-such-run/issued"));
        Assert.Equal(HttpStatusCode.NotFound, status);
        Assert.Contains("there is no session 'no-such-run': open one with POST /hybridbatch/v1/sessions", error, StringComparison.Ordinal);

        (status, error) = await ErrorOf(Client.PostAsJsonAsync(Sessions, new JsonObject { ["podTimeoutSeconds"] = -1 }));
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("pod timeout", error, StringComparison.OrdinalIgnoreCase);

        (status, error) = await ErrorOf(Client.PostAsJsonAsync(Sessions, new JsonObject { ["hostpth"] = "/x" }));
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("'hostpth'", error, StringComparison.Ordinal);

        var run = await OpenAsync();
        (status, error) = await ErrorOf(Client.GetAsync($"{Sessions}/{run}/updated?maxWait=soon"));
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("maxWait 'soon' is not a number of seconds, 0 or more", error);

        (status, error) = await ErrorOf(Client.PostAsJsonAsync($"{Sessions}/{run}/jobs", Job("true").Also(j => j["memory"] = -5)));
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("memory", error, StringComparison.Ordinal);
        Assert.DoesNotContain("Parameter", error, StringComparison.Ordinal);

        (status, error) = await ErrorOf(Client.PostAsJsonAsync($"{Sessions}/{run}/jobs", Job("true").Also(j => j["accelerators"] = new JsonArray(new JsonObject { ["count"] = 1, ["kind"] = "fpga" }))));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, status);
        Assert.Contains("fpga", error, StringComparison.Ordinal);
        Assert.Empty((await Client.GetFromJsonAsync<JsonObject>($"{Sessions}/{run}/issued"))!["ids"]!.AsArray());
        using var close = await Client.DeleteAsync($"{Sessions}/{run}");
        Assert.Equal(HttpStatusCode.NoContent, close.StatusCode);
    }
}

internal static class JsonObjectExtensions
{
    /// <summary>The object after <paramref name="change"/>: a test's request built from a valid one.</summary>
    public static JsonObject Also(this JsonObject json, Action<JsonObject> change)
    {
        change(json);
        return json;
    }
}
