using System.Text.Json.Nodes;
using HybridBatch.Integration.Cluster;
using Xunit.Abstractions;
using static HybridBatch.Integration.Daemon.TesApiTests;

namespace HybridBatch.Integration.Daemon;

/// <summary>Tasks survive the daemon being killed: listed after restart, re-attached, neither lost nor run twice.</summary>
public sealed class DaemonRestartTests(LocalClusterFixture cluster, ITestOutputHelper output) : IClassFixture<LocalClusterFixture>
{
    [Fact]
    public async Task After_kill_9_and_restart_every_task_is_listed_once_and_running_ones_finish_without_resubmission()
    {
        var data = Directory.CreateTempSubdirectory("hybridbatch-tes-restart-").FullName;
        try
        {
            // Disposed at the end too, so a failed check before the kill leaves no daemon running (disposing is idempotent).
            await using var first = await Daemon.StartProcessAsync(cluster, data, output);
            var runId = await first.RunIdAsync();

            // The survivors run until the test lets them end, after the restart: a file in the run's tasks directory on
            // the host path (the daemon's data directory), which their pods see under the default work directory.
            var release = Path.Combine(data, "work", runId, "tasks");
            var running = new List<string>();
            for (var i = 0; i < 2; i++)
            {
                running.Add(await CreateAsync(first.Client, new JsonObject
                {
                    ["name"] = $"survivor-{i}",
                    ["executors"] = new JsonArray(Executor(
                        "sh", "-c", $"t=/var/lib/hybridbatch/tasks; while [ -d $t ] && [ ! -e $t/release ]; do sleep 0.2; done; echo survived {i}")),
                }));
            }

            var done = await CreateAsync(first.Client, new JsonObject { ["name"] = "done-before", ["executors"] = new JsonArray(Executor("true")) });
            Assert.Equal("COMPLETE", (await WaitForAsync(first.Client, done, Terminal))["state"]!.GetValue<string>());
            foreach (var id in running)
            {
                Assert.Equal("RUNNING", (await WaitForAsync(first.Client, id, s => s == "RUNNING" || Terminal(s)))["state"]!.GetValue<string>());
            }

            var jobsBefore = (await BatchSystem.Batch.JobsOfRunAsync(cluster, runId)).Select(j => j.Metadata.Name).ToHashSet();
            Assert.True(jobsBefore.Count >= 2, $"expected the two running tasks' Jobs, found {jobsBefore.Count}");
            first.Kill();
            await first.DisposeAsync();

            await using var second = await Daemon.StartProcessAsync(cluster, data, output);
            Assert.Equal(runId, await second.RunIdAsync());
            var listed = (await second.Client.GetFromJsonAsyncObject("/ga4gh/tes/v1/tasks?page_size=100"))["tasks"]!.AsArray()
                .Select(t => t!["id"]!.GetValue<string>()).ToList();
            Assert.Equal([.. running, done], listed);
            Assert.Equal(3, listed.Distinct().Count());

            // Both survivors are still running, as no one let them end; now they may.
            foreach (var id in running)
            {
                Assert.Equal("RUNNING", (await WaitForAsync(second.Client, id, s => s == "RUNNING" || Terminal(s)))["state"]!.GetValue<string>());
            }

            await File.WriteAllTextAsync(Path.Combine(release, "release"), "");
            foreach (var (id, i) in running.Select((id, i) => (id, i)))
            {
                var task = await WaitForAsync(second.Client, id, Terminal);
                Assert.Equal("COMPLETE", task["state"]!.GetValue<string>());
                Assert.Equal($"survived {i}\n", task["logs"]![0]!["logs"]![0]!["stdout"]!.GetValue<string>());
                Assert.Contains(task["logs"]![0]!["metadata"]!["stage_0_job"]!.GetValue<string>(), jobsBefore);
            }

            Assert.True(
                await BatchSystem.Batch.EventuallyAsync(async () => (await BatchSystem.Batch.JobsOfRunAsync(cluster, runId)).Count == 0, TimeSpan.FromSeconds(60)),
                "finished tasks' Jobs are still in the cluster");
        }
        finally
        {
            Directory.Delete(data, recursive: true); // a survivor left behind ends too: its directory is gone
        }
    }
}

internal static class HttpClientJson
{
    public static async Task<JsonObject> GetFromJsonAsyncObject(this HttpClient client, string url) =>
        (await System.Net.Http.Json.HttpClientJsonExtensions.GetFromJsonAsync<JsonObject>(client, url))!;
}
