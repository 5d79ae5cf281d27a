using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using HybridBatch.Integration.Cluster;
using k8s;
using Xunit.Abstractions;

namespace HybridBatch.Integration.Daemon;

/// <summary>The TES 1.1 API of <c>hybridbatch serve</c>, end to end against the cluster.</summary>
public sealed class TesApiTests(LocalClusterFixture cluster, ITestOutputHelper output)
    : InProcessDaemonTests(cluster, output, "tes"), IClassFixture<LocalClusterFixture>
{
    internal static JsonObject Executor(params string[] command) =>
        new() { ["image"] = "busybox:1.35", ["command"] = new JsonArray([.. command.Select(c => (JsonNode)c)]) };

    internal static async Task<string> CreateAsync(HttpClient client, JsonObject task)
    {
        using var response = await client.PostAsJsonAsync("/ga4gh/tes/v1/tasks", task);
        var body = await response.Content.ReadFromJsonAsync<JsonObject>();
        Assert.True(response.IsSuccessStatusCode, $"create answered {response.StatusCode}: {body}");
        Assert.Empty(TesSchema.Check(body, "tesCreateTaskResponse"));
        return body!["id"]!.GetValue<string>();
    }

    internal static async Task<JsonObject> GetAsync(HttpClient client, string id, string view = "FULL") =>
        (await client.GetFromJsonAsync<JsonObject>($"/ga4gh/tes/v1/tasks/{id}?view={view}"))!;

    internal static async Task<JsonObject> WaitForAsync(HttpClient client, string id, Func<string, bool> until, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(180));
        while (true)
        {
            var task = await GetAsync(client, id);
            var state = task["state"]!.GetValue<string>();
            if (until(state) || DateTime.UtcNow > deadline)
            {
                return task;
            }

            await Task.Delay(250);
        }
    }

    internal static bool Terminal(string state) => state is "COMPLETE" or "EXECUTOR_ERROR" or "SYSTEM_ERROR" or "CANCELED";

    [Fact]
    public async Task A_task_runs_its_executors_in_order_with_its_inputs_and_delivers_its_outputs()
    {
        var outputFile = Path.Combine(DataDirectory, "out", "result.txt");
        var hostInput = Path.Combine(DataDirectory, "in.txt");
        await File.WriteAllTextAsync(hostInput, "from the host\n");
        var stopwatch = Stopwatch.StartNew();
        var id = await CreateAsync(Client, new JsonObject
        {
            ["name"] = "complete",
            ["inputs"] = new JsonArray(
                new JsonObject { ["name"] = "inline", ["path"] = "/data/inline.txt", ["content"] = "inline content\n" },
                new JsonObject { ["name"] = "host", ["path"] = "/data/host.txt", ["url"] = "file://" + hostInput }),
            ["outputs"] = new JsonArray(new JsonObject { ["path"] = "/data/result.txt", ["url"] = "file://" + outputFile }),
            ["executors"] = new JsonArray(
                Executor("sh", "-c", "cat /data/inline.txt /data/host.txt > /data/result.txt; echo first"),
                Executor("sh", "-c", "echo second; echo to-stderr >&2")),
            ["resources"] = new JsonObject { ["cpu_cores"] = 1, ["ram_gb"] = 0.1 },
            ["tags"] = new JsonObject { ["suite"] = "daemon" },
        });

        var task = await WaitForAsync(Client, id, Terminal);
        Output.WriteLine($"create -> {task["state"]} in {stopwatch.Elapsed.TotalSeconds:0.0}s");
        Assert.Equal("COMPLETE", task["state"]!.GetValue<string>());
        Assert.Empty(TesSchema.Check(task, "tesTask"));
        var logs = task["logs"]![0]!["logs"]!.AsArray();
        Assert.Equal(2, logs.Count);
        Assert.Equal("first\n", logs[0]!["stdout"]!.GetValue<string>());
        Assert.Equal("second\n", logs[1]!["stdout"]!.GetValue<string>());
        Assert.Equal("to-stderr\n", logs[1]!["stderr"]!.GetValue<string>());
        Assert.All(logs, l => Assert.Equal(0, l!["exit_code"]!.GetValue<int>()));
        Assert.NotNull(logs[0]!["start_time"]);
        Assert.Equal("inline content\nfrom the host\n", await File.ReadAllTextAsync(outputFile));
        Assert.Equal("29", task["logs"]![0]!["outputs"]![0]!["size_bytes"]!.GetValue<string>());

        var basic = await GetAsync(Client, id, "BASIC");
        Assert.Empty(TesSchema.Check(basic, "tesTask"));
        Assert.Null(basic["logs"]![0]!["logs"]![0]!["stdout"]);
        Assert.Null(basic["inputs"]![0]!["content"]);
        var minimal = await GetAsync(Client, id, "MINIMAL");
        Assert.Equal(["id", "state"], minimal.Select(kv => kv.Key).Order().ToArray());
    }

    [Fact]
    public async Task A_task_of_two_stages_keeps_its_work_directory_until_it_ends_with_no_node_cleanup()
    {
        // Two images, so two stages, two jobs: between them the node has no job of the run, and a node cleanup then
        // would remove the task's work directory, where each stage places its inputs from and the outputs are read.
        var outputFile = Path.Combine(DataDirectory, "out", "kept.txt");
        var second = Executor("sh", "-c", "cat /data/seed.txt > /data/kept.txt");
        second["image"] = "docker.io/hybridbatch/busybox-minimal:1.35";
        var id = await CreateAsync(Client, new JsonObject
        {
            ["name"] = "kept",
            ["inputs"] = new JsonArray(new JsonObject { ["name"] = "seed", ["path"] = "/data/seed.txt", ["content"] = "seed\n" }),
            ["outputs"] = new JsonArray(new JsonObject { ["path"] = "/data/kept.txt", ["url"] = "file://" + outputFile }),
            ["executors"] = new JsonArray(Executor("sh", "-c", "cat /data/seed.txt"), second),
            ["resources"] = new JsonObject { ["cpu_cores"] = 1, ["ram_gb"] = 0.1 },
        });

        var task = await WaitForAsync(Client, id, Terminal);
        Output.WriteLine(task.ToJsonString());
        Assert.Equal("COMPLETE", task["state"]!.GetValue<string>());
        Assert.Equal("seed\n", await File.ReadAllTextAsync(outputFile));
        Assert.Equal(2, task["logs"]![0]!["logs"]!.AsArray().Count);

        // The daemon cleans its tasks' directories itself: the run has no node cleanup, which on storage the nodes share
        // would remove every task's directory.
        var runId = await RunIdAsync();
        var cleanups = await Cluster.Client.BatchV1.ListNamespacedJobAsync(
            Cluster.Namespace, labelSelector: $"{HybridBatch.Core.Api.Names.RunLabel}={runId},{HybridBatch.Core.Api.Names.CleanupLabel}");
        Assert.Empty(cleanups.Items);
        // The daemon removes it once the outputs are delivered, just after the task is marked COMPLETE.
        Assert.True(
            await BatchSystem.Batch.EventuallyAsync(
                () => Task.FromResult(!Directory.Exists(Path.Combine(DataDirectory, "work", runId, "tasks", id))), TimeSpan.FromSeconds(30)),
            "the finished task's work directory is still there");
    }

    [Fact]
    public async Task A_failing_executor_ends_the_task_in_EXECUTOR_ERROR_with_its_exit_code_and_skips_the_rest()
    {
        var id = await CreateAsync(Client, new JsonObject
        {
            ["name"] = "fails",
            ["executors"] = new JsonArray(Executor("sh", "-c", "echo broken >&2; exit 7"), Executor("echo", "never")),
        });

        var task = await WaitForAsync(Client, id, Terminal);
        Assert.Equal("EXECUTOR_ERROR", task["state"]!.GetValue<string>());
        Assert.Empty(TesSchema.Check(task, "tesTask"));
        var logs = task["logs"]![0]!["logs"]!.AsArray();
        var only = Assert.Single(logs);
        Assert.Equal(7, only!["exit_code"]!.GetValue<int>());
        Assert.Equal("broken\n", only["stderr"]!.GetValue<string>());
    }

    [Fact]
    public async Task Cancel_ends_a_running_task_CANCELED_and_its_pod_goes_away()
    {
        var id = await CreateAsync(Client, new JsonObject { ["name"] = "cancel-me", ["executors"] = new JsonArray(Executor("sleep", "300")) });
        // Normally RUNNING within seconds; on a busy shared cluster the pod may still be pending, which cancel must handle too.
        var running = await WaitForAsync(Client, id, s => s is "RUNNING" || Terminal(s), TimeSpan.FromSeconds(120));
        Assert.Contains(running["state"]!.GetValue<string>(), new[] { "RUNNING", "INITIALIZING" });
        var runId = await RunIdAsync();

        using var cancel = await Client.PostAsync($"/ga4gh/tes/v1/tasks/{id}:cancel", null);
        Assert.Equal(HttpStatusCode.OK, cancel.StatusCode);
        Assert.Empty(TesSchema.Check(await cancel.Content.ReadFromJsonAsync<JsonObject>(), "tesCancelTaskResponse"));
        var task = await GetAsync(Client, id);
        Assert.Equal("CANCELED", task["state"]!.GetValue<string>());
        Assert.False(Directory.Exists(Path.Combine(DataDirectory, "work", runId, "tasks", id)), "the canceled task's work directory is still there");

        // What the daemon does is delete the task's Job, its pod with it: the Job is gone and the pod is on its way out
        // (deletion requested). How soon the kubelet then removes the pod is the node's business: on a cluster started a
        // minute before, with the suite running beside it, it once took longer than 150 s after the container was killed.
        var deleted = await BatchSystem.Batch.EventuallyAsync(
            async () =>
                (await BatchSystem.Batch.JobsOfRunAsync(Cluster, runId)).Count == 0
                && (await Cluster.Client.CoreV1.ListNamespacedPodAsync(Cluster.Namespace, labelSelector: $"hybridbatch.io/run={runId},hybridbatch.io/job-id"))
                    .Items.All(p => p.Metadata.DeletionTimestamp is not null),
            TimeSpan.FromSeconds(150));
        Assert.True(deleted, "the canceled task's Job is still there, or its pod is not being deleted");
        await Task.Delay(2000);
        Assert.Equal("CANCELED", (await GetAsync(Client, id))["state"]!.GetValue<string>());
    }

    [Fact]
    public async Task An_input_this_deployment_cannot_fetch_is_accepted_and_ends_SYSTEM_ERROR_naming_the_input()
    {
        var id = await CreateAsync(Client, new JsonObject
        {
            ["name"] = "needs-network",
            ["inputs"] = new JsonArray(new JsonObject { ["name"] = "reference", ["url"] = "s3://bucket/ref.fa", ["path"] = "/data/ref.fa" }),
            ["executors"] = new JsonArray(Executor("cat", "/data/ref.fa")),
        });

        var task = await WaitForAsync(Client, id, Terminal);
        Assert.Equal("SYSTEM_ERROR", task["state"]!.GetValue<string>());
        var systemLog = string.Join("\n", task["logs"]![0]!["system_logs"]!.AsArray().Select(l => l!.GetValue<string>()));
        Assert.Contains("inputs[0] (reference)", systemLog);
        Assert.Contains("s3://bucket/ref.fa", systemLog);
    }

    [Fact]
    public async Task List_filters_by_name_prefix_state_and_tags_and_pages_with_a_token()
    {
        var prefix = "list-" + Guid.NewGuid().ToString("N")[..6];
        var ids = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            // Unservable inputs end at once in SYSTEM_ERROR, without a pod: cheap tasks to list.
            ids.Add(await CreateAsync(Client, new JsonObject
            {
                ["name"] = $"{prefix}-{i}",
                ["inputs"] = new JsonArray(new JsonObject { ["url"] = "https://example.org/x", ["path"] = "/x" }),
                ["executors"] = new JsonArray(Executor("true")),
                ["tags"] = new JsonObject { ["group"] = prefix, ["parity"] = i % 2 == 0 ? "even" : "odd" },
            }));
        }

        foreach (var id in ids)
        {
            await WaitForAsync(Client, id, Terminal);
        }

        async Task<JsonObject> List(string query)
        {
            var list = (await Client.GetFromJsonAsync<JsonObject>("/ga4gh/tes/v1/tasks?" + query))!;
            Assert.Empty(TesSchema.Check(list, "tesListTasksResponse", minimalTasks: !query.Contains("view=")));
            return list;
        }

        string[] Ids(JsonObject list) => [.. list["tasks"]!.AsArray().Select(t => t!["id"]!.GetValue<string>())];

        Assert.Equal(ids, Ids(await List($"name_prefix={prefix}")));
        Assert.Equal([ids[0], ids[2]], Ids(await List($"tag_key=group&tag_value={prefix}&tag_key=parity&tag_value=even")));
        Assert.Equal(ids, Ids(await List($"tag_key=group&tag_value={prefix}&tag_key=parity")));
        Assert.Empty(Ids(await List($"name_prefix={prefix}&state=COMPLETE")));
        Assert.Equal(ids, Ids(await List($"name_prefix={prefix}&state=SYSTEM_ERROR")));

        var first = await List($"name_prefix={prefix}&page_size=2&view=BASIC");
        Assert.Equal(ids[..2], Ids(first));
        Assert.Equal(prefix + "-0", first["tasks"]![0]!["name"]!.GetValue<string>());
        var token = first["next_page_token"]!.GetValue<string>();
        var second = await List($"name_prefix={prefix}&page_size=2&page_token={token}");
        Assert.Equal(ids[2..], Ids(second));
        Assert.Null(second["next_page_token"]);
        Assert.Equal(["id", "state"], second["tasks"]![0]!.AsObject().Select(kv => kv.Key).Order().ToArray());
    }

    [Theory]
    [InlineData("""{"name": "x"}""", "executors")]
    [InlineData("""{"executors": []}""", "executors")]
    [InlineData("""{"executors": [{"image": "", "command": ["true"]}]}""", "executors[0].image")]
    [InlineData("""{"executors": [{"image": "busybox:1.35"}]}""", "executors[0].command")]
    [InlineData("""{"executors": [{"image": "busybox:1.35", "command": ["true"]}], "resources": {"cpu_cores": -1}}""", "resources.cpu_cores")]
    [InlineData("""{"executors": [{"image": "busybox:1.35", "command": ["true"]}], "resources": {"ram_gb": -0.5}}""", "resources.ram_gb")]
    [InlineData("""{"executors": [{"image": "busybox:1.35", "command": ["true"]}], "resources": {"cpu_cores": "four"}}""", "resources.cpu_cores")]
    [InlineData("""{"executors": [{"image": "busybox:1.35", "command": ["true"]}], "inputs": [{"url": "file:///x"}]}""", "inputs[0].path")]
    [InlineData("""{"executors": [{"image": "busybox:1.35", "command": ["true"]}], "outputs": [{"path": "/x"}]}""", "outputs[0].url")]
    [InlineData("""{"executors": [ """, "body")]
    public async Task An_invalid_task_is_refused_with_400_naming_the_field(string body, string field)
    {
        using var content = new StringContent(body, Encoding.UTF8, "application/json");
        using var response = await Client.PostAsync("/ga4gh/tes/v1/tasks", content);
        var error = await response.Content.ReadFromJsonAsync<JsonObject>();
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal(field, error!["field"]!.GetValue<string>());
        Assert.StartsWith(field, error["msg"]!.GetValue<string>());
        Assert.Equal(400, error["status_code"]!.GetValue<int>());
    }

    [Theory]
    [InlineData("/ga4gh/tes/v1/tasks?view=EVERYTHING", "view")]
    [InlineData("/ga4gh/tes/v1/tasks/anything?view=full", "view")]
    [InlineData("/ga4gh/tes/v1/tasks?state=DONE", "state")]
    [InlineData("/ga4gh/tes/v1/tasks?page_size=5000", "page_size")]
    [InlineData("/ga4gh/tes/v1/tasks?page_token=abc", "page_token")]
    public async Task An_invalid_query_is_refused_with_400_naming_the_parameter(string url, string field)
    {
        using var response = await Client.GetAsync(url);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal(field, (await response.Content.ReadFromJsonAsync<JsonObject>())!["field"]!.GetValue<string>());
    }

    [Fact]
    public async Task Service_info_health_readiness_and_metrics_answer()
    {
        var info = (await Client.GetFromJsonAsync<JsonObject>("/ga4gh/tes/v1/service-info"))!;
        Assert.Empty(TesSchema.Check(info, "tesServiceInfo"));
        foreach (var required in new[] { "id", "name", "type", "organization", "version" })
        {
            Assert.True(info.ContainsKey(required), $"service-info lacks {required}");
        }

        Assert.Equal("tes", info["type"]!["artifact"]!.GetValue<string>());
        Assert.Equal("1.1.0", info["type"]!["version"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.OK, (await Client.GetAsync("/healthz")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Client.GetAsync("/readyz")).StatusCode);
        var metrics = await Client.GetStringAsync("/metrics");
        Assert.Contains("hybridbatch_tes_tasks", metrics);
        Assert.Contains("hybridbatch_kubernetes_requests_total", metrics);
        Assert.Equal(HttpStatusCode.NotFound, (await Client.GetAsync("/ga4gh/tes/v1/tasks/no-such-task")).StatusCode);
    }

    [Fact]
    public async Task A_configured_token_is_required_and_a_too_large_request_is_refused()
    {
        var secured = Directory.CreateTempSubdirectory("hybridbatch-tes-token-").FullName;
        await using var withToken = await Daemon.StartAsync(Cluster, secured, Output, "--token", "s3cret");
        Assert.Equal(HttpStatusCode.Unauthorized, (await withToken.Client.GetAsync("/ga4gh/tes/v1/tasks")).StatusCode);
        withToken.Client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "wrong");
        Assert.Equal(HttpStatusCode.Unauthorized, (await withToken.Client.GetAsync("/ga4gh/tes/v1/tasks")).StatusCode);
        withToken.Client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "s3cret");
        Assert.Equal(HttpStatusCode.OK, (await withToken.Client.GetAsync("/ga4gh/tes/v1/tasks")).StatusCode);

        using var huge = new StringContent(
            """{"executors": [{"image": "busybox:1.35", "command": ["echo", """ + "\"" + new string('x', 2 * 1024 * 1024) + "\"]}]}",
            Encoding.UTF8,
            "application/json");
        // A client that sends a large body asks first (Expect: 100-continue, as curl does above 1 MiB) and waits for the
        // answer: without that, the refusal races the upload and the client may see the connection closed under its
        // write instead of the 413.
        using var careful = new HttpClient(new SocketsHttpHandler { Expect100ContinueTimeout = TimeSpan.FromMinutes(1) })
        {
            BaseAddress = withToken.Address,
            Timeout = TimeSpan.FromMinutes(2),
        };
        using var post = new HttpRequestMessage(HttpMethod.Post, "/ga4gh/tes/v1/tasks") { Content = huge };
        post.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "s3cret");
        post.Headers.ExpectContinue = true;
        using var response = await careful.SendAsync(post);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        await withToken.DisposeAsync();
        Directory.Delete(secured, recursive: true);
    }
}
