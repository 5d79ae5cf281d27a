using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using HybridBatch.Integration.Cluster;
using Xunit.Abstractions;
using static HybridBatch.Integration.Daemon.TesApiTests;

namespace HybridBatch.Integration.Daemon;

/// <summary>
/// A cancel waits for no file copy. The slow staging here is a named pipe given as a task's input: the daemon's copy of
/// it blocks until the test writes to the pipe, so "while that task is staging" is a condition the test holds, not a
/// duration it hopes for.
/// </summary>
public sealed class TesCancelTests(LocalClusterFixture cluster, ITestOutputHelper output)
    : InProcessDaemonTests(cluster, output, "tes-cancel"), IClassFixture<LocalClusterFixture>
{
    // Only bounds a wait that would otherwise hang the run; no assertion depends on it.
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(90);

    private string NewPipe()
    {
        var path = Path.Combine(DataDirectory, "pipe-" + Guid.NewGuid().ToString("N")[..8]);
        using var mkfifo = Process.Start("mkfifo", path)!;
        mkfifo.WaitForExit();
        Assert.Equal(0, mkfifo.ExitCode);
        return path;
    }

    // Writes the pipe's content: opening it for writing waits for the daemon's copy to open it for reading. When the
    // copy's task was canceled, the daemon removed the task's work directory at once; the copy, blocked opening the pipe,
    // then finds no destination and closes the pipe before the write, which finds no reader (EPIPE; in CI: canceled at
    // 14:29:25.712, the write refused right after). Only a canceled copy may cause that.
    private static async Task FillAsync(string pipe, string content, bool copyCanceled = false)
    {
        const int BrokenPipe = 32; // EPIPE, the errno .NET gives as the IOException's HResult on Linux.
        await Task.Run(() =>
        {
            try
            {
                using var writer = new StreamWriter(new FileStream(pipe, FileMode.Open, FileAccess.Write));
                writer.Write(content);
            }
            catch (IOException e) when (copyCanceled && e.HResult == BrokenPipe)
            {
            }
        }).WaitAsync(Bound);
    }

    private Task<string> CreateStagingFromAsync(string pipe) => CreateAsync(Client, new JsonObject
    {
        ["name"] = "slow-staging",
        ["inputs"] = new JsonArray(new JsonObject { ["path"] = "/data/in.txt", ["url"] = "file://" + pipe }),
        ["executors"] = new JsonArray(Executor("cat", "/data/in.txt")),
    });

    private async Task<string> StateAsync(string id) => (await GetAsync(Client, id))["state"]!.GetValue<string>();

    private async Task CancelAsync(string id)
    {
        using var cancel = await Client.PostAsync($"/ga4gh/tes/v1/tasks/{id}:cancel", null).WaitAsync(Bound);
        Assert.Equal(HttpStatusCode.OK, cancel.StatusCode);
    }

    [Fact]
    public async Task A_running_task_is_canceled_while_another_task_s_inputs_are_still_being_staged()
    {
        var pipe = NewPipe();
        // The batch system empties the run's work directory on a node when the run's last job there ends, and the
        // staging task's directory is in it: a second running task keeps the node from emptying when the first is canceled.
        var running = await CreateAsync(Client, new JsonObject { ["name"] = "to-cancel", ["executors"] = new JsonArray(Executor("sleep", "300")) });
        var keeper = await CreateAsync(Client, new JsonObject { ["name"] = "keeps-the-node", ["executors"] = new JsonArray(Executor("sleep", "300")) });
        foreach (var id in new[] { running, keeper })
        {
            Assert.Equal("RUNNING", (await WaitForAsync(Client, id, s => s == "RUNNING" || Terminal(s)))["state"]!.GetValue<string>());
        }

        var staging = await CreateStagingFromAsync(pipe);
        Assert.Equal("INITIALIZING", (await WaitForAsync(Client, staging, s => s != "QUEUED"))["state"]!.GetValue<string>());
        try
        {
            await CancelAsync(running);

            Assert.Equal("CANCELED", await StateAsync(running));
            // Nothing has been written to the pipe: the other task's copy has not ended.
            Assert.Equal("INITIALIZING", await StateAsync(staging));
        }
        finally
        {
            await FillAsync(pipe, "staged at last\n");
        }

        var task = await WaitForAsync(Client, staging, Terminal);
        Assert.Equal("COMPLETE", task["state"]!.GetValue<string>());
        Assert.Equal("staged at last\n", task["logs"]![0]!["logs"]![0]!["stdout"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_task_canceled_while_its_own_inputs_are_staged_ends_CANCELED_at_once_and_is_never_run()
    {
        var pipe = NewPipe();
        var staging = await CreateStagingFromAsync(pipe);
        Assert.Equal("INITIALIZING", (await WaitForAsync(Client, staging, s => s != "QUEUED"))["state"]!.GetValue<string>());
        try
        {
            await CancelAsync(staging);

            Assert.Equal("CANCELED", await StateAsync(staging));
        }
        finally
        {
            await FillAsync(pipe, "too late\n", copyCanceled: true);
        }

        // Tasks start one after another: once the next one has run, the canceled task's staging is over.
        var next = await CreateAsync(Client, new JsonObject { ["name"] = "after", ["executors"] = new JsonArray(Executor("true")) });
        Assert.Equal("COMPLETE", (await WaitForAsync(Client, next, Terminal))["state"]!.GetValue<string>());
        var canceled = await GetAsync(Client, staging);
        Assert.Equal("CANCELED", canceled["state"]!.GetValue<string>());
        Assert.Empty(canceled["logs"]![0]!["logs"]!.AsArray());
    }
}
