using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using HybridBatch.Integration.Cluster;
using Xunit.Abstractions;

namespace HybridBatch.Integration.Daemon;

/// <summary>
/// <c>resources.backend_parameters</c> of the TES API: the daemon supports only its retry policy's (TesRetryTests),
/// refuses others under <c>backend_parameters_strict</c> and otherwise runs the task without them, saying so in its
/// system logs.
/// </summary>
public sealed class TesBackendParametersTests(LocalClusterFixture cluster, ITestOutputHelper output)
    : InProcessDaemonTests(cluster, output, "tes-backend"), IClassFixture<LocalClusterFixture>
{
    private static JsonObject NewTask(string name, JsonObject backendParameters, bool? strict)
    {
        var resources = new JsonObject { ["backend_parameters"] = backendParameters };
        if (strict is { } s)
        {
            resources["backend_parameters_strict"] = s;
        }

        return new JsonObject
        {
            ["name"] = name,
            ["executors"] = new JsonArray(TesApiTests.Executor("echo", "hello")),
            ["resources"] = resources,
        };
    }

    private static string UniqueName() => "backend-" + Guid.NewGuid().ToString("N")[..8];

    private async Task<JsonArray> TasksNamedAsync(string name) =>
        (await Client.GetFromJsonAsync<JsonObject>($"/ga4gh/tes/v1/tasks?name_prefix={name}"))!["tasks"]!.AsArray();

    private static string[] SystemLogs(JsonObject task) =>
        [.. task["logs"]?[0]?["system_logs"]?.AsArray().Select(l => l!.GetValue<string>()) ?? []];

    [Fact]
    public async Task Service_info_advertises_the_retry_policy_parameters_and_no_others()
    {
        var info = (await Client.GetFromJsonAsync<JsonObject>("/ga4gh/tes/v1/service-info"))!;
        Assert.Empty(TesSchema.Check(info, "tesServiceInfo"));
        var advertised = Assert.IsType<JsonArray>(info["tesResources_backend_parameters"]);
        Assert.Equal(
            ["hybridbatch_retry_on", "hybridbatch_retry_attempts", "hybridbatch_retry_memory_factor", "hybridbatch_retry_memory_max"],
            advertised.Select(key => key!.GetValue<string>()));
    }

    [Fact]
    public async Task A_strict_task_with_an_unsupported_parameter_is_refused_with_400_naming_it_and_is_not_created()
    {
        // The ELIXIR TES compliance suite's create_task_backend_parameters_negative request.
        var name = UniqueName();
        using var response = await Client.PostAsJsonAsync(
            "/ga4gh/tes/v1/tasks", NewTask(name, new JsonObject { ["INVALID"] = "PARAMETER" }, strict: true));

        var error = (await response.Content.ReadFromJsonAsync<JsonObject>())!;
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal(400, error["status_code"]!.GetValue<int>());
        Assert.Equal("resources.backend_parameters.INVALID", error["field"]!.GetValue<string>());
        var message = error["msg"]!.GetValue<string>();
        Assert.StartsWith("resources.backend_parameters.INVALID: ", message);
        Assert.Contains("backend parameter 'INVALID' is not supported", message);
        Assert.Contains("backend_parameters_strict", message);
        Assert.Empty(await TasksNamedAsync(name));
    }

    [Fact]
    public async Task A_strict_refusal_names_every_unsupported_parameter()
    {
        using var response = await Client.PostAsJsonAsync(
            "/ga4gh/tes/v1/tasks", NewTask(UniqueName(), new JsonObject { ["VmSize"] = "Standard_D64_v3", ["gpu"] = "2" }, strict: true));

        var error = (await response.Content.ReadFromJsonAsync<JsonObject>())!;
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("resources.backend_parameters.VmSize", error["field"]!.GetValue<string>());
        Assert.Contains("backend parameters 'VmSize', 'gpu' are not supported", error["msg"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_strict_task_without_backend_parameters_is_accepted()
    {
        // An input this deployment cannot fetch ends the task at once without a pod: acceptance is the point here.
        var task = NewTask(UniqueName(), new JsonObject(), strict: true);
        task["inputs"] = new JsonArray(new JsonObject { ["url"] = "https://example.org/x", ["path"] = "/x" });
        var id = await TesApiTests.CreateAsync(Client, task);

        var stored = await TesApiTests.GetAsync(Client, id);
        Assert.True(stored["resources"]!["backend_parameters_strict"]!.GetValue<bool>());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(null)]
    public async Task Without_strict_unsupported_parameters_are_ignored_the_task_completes_and_its_system_logs_name_them(bool? strict)
    {
        var id = await TesApiTests.CreateAsync(
            Client, NewTask(UniqueName(), new JsonObject { ["VmSize"] = "Standard_D64_v3", ["INVALID"] = "PARAMETER" }, strict));
        string[] expected =
        [
            "backend parameter 'VmSize' is not supported and was ignored",
            "backend parameter 'INVALID' is not supported and was ignored",
        ];

        // Said from acceptance on, before the task has run.
        Assert.Equal(expected, SystemLogs(await TesApiTests.GetAsync(Client, id)));

        var task = await TesApiTests.WaitForAsync(Client, id, TesApiTests.Terminal);
        Assert.Equal("COMPLETE", task["state"]!.GetValue<string>());
        Assert.Empty(TesSchema.Check(task, "tesTask"));
        Assert.Equal("hello\n", task["logs"]![0]!["logs"]![0]!["stdout"]!.GetValue<string>());
        Assert.Equal(expected, SystemLogs(task));
        // The schema: backends shall not store or return unsupported keys.
        Assert.Empty(task["resources"]!["backend_parameters"]!.AsObject());
    }
}
