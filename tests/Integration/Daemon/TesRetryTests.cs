using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using HybridBatch.Integration.Cluster;
using Xunit.Abstractions;

namespace HybridBatch.Integration.Daemon;

/// <summary>
/// The retry policy of TES tasks (<c>hybridbatch_retry_*</c> backend parameters): an attempt that ended as the policy
/// lists runs again, each attempt one entry of the task's <c>logs</c>; a policy that cannot be used is refused with 400
/// naming the parameter, and no task is created.
/// </summary>
public sealed class TesRetryTests(LocalClusterFixture cluster, ITestOutputHelper output)
    : InProcessDaemonTests(cluster, output, "tes-retry"), IClassFixture<LocalClusterFixture>
{
    private static string UniqueName() => "retry-" + Guid.NewGuid().ToString("N")[..8];

    private static JsonObject NewTask(string name, double? ramGb, JsonObject backendParameters, params string[] command)
    {
        var resources = new JsonObject { ["backend_parameters"] = backendParameters, ["backend_parameters_strict"] = true };
        if (ramGb is { } ram)
        {
            resources["ram_gb"] = ram;
        }

        return new JsonObject
        {
            ["name"] = name,
            ["executors"] = new JsonArray(TesApiTests.Executor(command)),
            ["resources"] = resources,
        };
    }

    private static string[] Strings(JsonNode? array) => [.. array?.AsArray().Select(l => l!.GetValue<string>()) ?? []];

    [Fact]
    public async Task A_task_killed_for_memory_runs_again_with_twice_the_memory_and_each_attempt_has_its_own_log()
    {
        // 25 MB + the daemon's 16Mi overhead is a 40 MiB limit: dd's 48 MiB buffer does not fit; 50 MB + 16Mi does.
        var id = await TesApiTests.CreateAsync(Client, NewTask(
            UniqueName(),
            0.025,
            new JsonObject
            {
                ["hybridbatch_retry_on"] = "memlimit,lost",
                ["hybridbatch_retry_attempts"] = "3",
                ["hybridbatch_retry_memory_factor"] = "2",
                ["hybridbatch_retry_memory_max"] = "256Mi",
            },
            "sh", "-c", "dd if=/dev/zero of=/dev/null bs=48M count=1 && echo fits"));

        var task = await TesApiTests.WaitForAsync(Client, id, TesApiTests.Terminal);
        Assert.Equal("COMPLETE", task["state"]!.GetValue<string>());
        Assert.Empty(TesSchema.Check(task, "tesTask"));
        var attempts = task["logs"]!.AsArray();
        Assert.Equal(2, attempts.Count);
        Assert.Equal("25M", attempts[0]!["metadata"]!["memory"]!.GetValue<string>());
        Assert.Equal("50M", attempts[1]!["metadata"]!["memory"]!.GetValue<string>());
        Assert.Equal("2", attempts[1]!["metadata"]!["attempt"]!.GetValue<string>());
        Assert.Contains(
            Strings(attempts[0]!["system_logs"]),
            l => l.StartsWith("attempt 1 ended memlimit", StringComparison.Ordinal) && l.EndsWith("retrying with 50M of memory (attempt 2 of 3)", StringComparison.Ordinal));
        Assert.NotNull(attempts[0]!["end_time"]);
        Assert.Equal("fits\n", attempts[1]!["logs"]![0]!["stdout"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_failing_executor_is_not_retried_when_the_policy_does_not_list_failed()
    {
        var id = await TesApiTests.CreateAsync(Client, NewTask(
            UniqueName(),
            null,
            new JsonObject { ["hybridbatch_retry_on"] = "lost, memlimit", ["hybridbatch_retry_attempts"] = "3" },
            "sh", "-c", "exit 3"));

        var task = await TesApiTests.WaitForAsync(Client, id, TesApiTests.Terminal);
        Assert.Equal("EXECUTOR_ERROR", task["state"]!.GetValue<string>());
        var attempt = Assert.Single(task["logs"]!.AsArray());
        Assert.Contains(Strings(attempt!["system_logs"]), l => l.EndsWith("not retried: the retry policy does not list failed", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_failing_executor_listed_in_the_policy_runs_exactly_as_many_times_as_its_attempts()
    {
        var id = await TesApiTests.CreateAsync(Client, NewTask(
            UniqueName(),
            null,
            new JsonObject { ["hybridbatch_retry_on"] = "failed", ["hybridbatch_retry_attempts"] = "3" },
            "sh", "-c", "echo try; exit 3"));

        var task = await TesApiTests.WaitForAsync(Client, id, TesApiTests.Terminal);
        Assert.Equal("EXECUTOR_ERROR", task["state"]!.GetValue<string>());
        Assert.Empty(TesSchema.Check(task, "tesTask"));
        var attempts = task["logs"]!.AsArray();
        Assert.Equal(3, attempts.Count);
        Assert.All(attempts, a => Assert.Equal(3, a!["logs"]![0]!["exit_code"]!.GetValue<int>()));
        Assert.Contains(Strings(attempts[2]!["system_logs"]), l => l.EndsWith("not retried: all 3 attempts used", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("hybridbatch_retry_on", "oom", "'oom' is not an exit reason (an out-of-memory kill is memlimit): list some of failed, lost, error, memlimit.")]
    [InlineData("hybridbatch_retry_on", "finished", "'finished' is never retried")]
    [InlineData("hybridbatch_retry_attempts", "0", "'0' is not a number of attempts: give the attempts in all, the first included, a whole number from 1 to 100")]
    [InlineData("hybridbatch_retry_attempts", "101", "'101' is not a number of attempts")]
    [InlineData("hybridbatch_retry_memory_factor", "1", "'1' is not a memory factor: give a number above 1")]
    [InlineData("hybridbatch_retry_memory_max", "64Mi", "'64Mi' is below the job's memory request, 128Mi")]
    [InlineData("hybridbatch_retry_memory_max", "lots", "'lots' is not an amount of bytes")]
    public async Task A_bad_retry_parameter_is_refused_with_400_naming_it_and_no_task_is_created(string key, string value, string message)
    {
        var parameters = new JsonObject
        {
            ["hybridbatch_retry_on"] = "memlimit",
            ["hybridbatch_retry_attempts"] = "2",
            ["hybridbatch_retry_memory_max"] = "1Gi",
        };
        parameters[key] = value;
        var name = UniqueName();
        using var response = await Client.PostAsJsonAsync("/ga4gh/tes/v1/tasks", NewTask(name, null, parameters, "true"));

        var error = (await response.Content.ReadFromJsonAsync<JsonObject>())!;
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal($"resources.backend_parameters.{key}", error["field"]!.GetValue<string>());
        Assert.Equal(400, error["status_code"]!.GetValue<int>());
        Assert.Contains($"resources.backend_parameters.{key}: {message}", error["msg"]!.GetValue<string>());
        var listed = (await Client.GetFromJsonAsync<JsonObject>($"/ga4gh/tes/v1/tasks?name_prefix={name}"))!["tasks"]!.AsArray();
        Assert.Empty(listed);
    }

    [Fact]
    public async Task Retry_parameters_without_attempts_are_refused_naming_the_missing_parameter()
    {
        using var response = await Client.PostAsJsonAsync(
            "/ga4gh/tes/v1/tasks", NewTask(UniqueName(), null, new JsonObject { ["hybridbatch_retry_on"] = "lost" }, "true"));

        var error = (await response.Content.ReadFromJsonAsync<JsonObject>())!;
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("resources.backend_parameters.hybridbatch_retry_attempts", error["field"]!.GetValue<string>());
        Assert.Contains("missing: give the number of attempts in all", error["msg"]!.GetValue<string>());
    }
}
