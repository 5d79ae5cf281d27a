using System.Globalization;
using HybridBatch.Integration.Cluster;
using Xunit.Abstractions;

namespace HybridBatch.Integration.Toil;

/// <summary>
/// Toil's own example workflows, as Debian's toil ships them, run unmodified with <c>--batchSystem hybridbatch</c> and a
/// file job store: the plugin shares the job store's directory with every job at the same path (the one node is this
/// machine), and Toil's workers run in the pods from the image <c>clients/toil/build-image</c> makes. What the
/// workflows produce is checked, not only their exit status.
/// </summary>
[Collection(WholeNodeCollection.Name)]
public sealed class ToilWorkflowTests(LocalClusterFixture cluster, ITestOutputHelper output) : IDisposable
{
    private readonly List<DirectoryInfo> _directories = [];

    public void Dispose()
    {
        foreach (var directory in _directories.Where(d => d.Exists))
        {
            directory.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task Toils_hello_world_runs_its_two_jobs_in_pods_and_the_leader_gets_their_messages()
    {
        if (await RunWorkflowAsync("toil.test.mesos.helloWorld", []) is not (var code, var text, _))
        {
            return;
        }

        Assert.True(code == 0, $"the workflow failed (exit {code.ToString(CultureInfo.InvariantCulture)}):{Environment.NewLine}{ToilSetup.Tail(text)}");
        // Each job sends the leader a message from its worker (job.fileStore.logToMaster), which the leader logs.
        Assert.Contains("The parent job is now running!", text, StringComparison.Ordinal);
        Assert.Contains("The child job is now running!", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Toils_sort_workflow_sorts_a_file_with_its_jobs_in_pods()
    {
        // 240 lines of 24 letters (6 KB) split down to pieces of at most 1,500 bytes: about 15 jobs, each a worker in
        // a pod, reading and writing the shared job store.
        var random = new Random(20261202);
        var lines = Enumerable.Range(0, 240)
            .Select(_ => new string(Enumerable.Range(0, 24).Select(_ => (char)('a' + random.Next(26))).ToArray()))
            .ToList();
        if (await RunWorkflowAsync(
            "toil.test.sort.sort",
            // Toil links an imported file into a file job store (--linkImports, its default): the jobs read the
            // input where it is, so its directory is shared too.
            ["--fileToSort", "input.txt", "--outputFile", "sorted.txt", "--N", "1500", "--hybridbatchSharedPath", "."],
            folder => File.WriteAllText(Path.Combine(folder, "input.txt"), string.Concat(lines.Select(l => l + "\n")))) is not (var code, var text, var directory))
        {
            return;
        }

        Assert.True(code == 0, $"the workflow failed (exit {code.ToString(CultureInfo.InvariantCulture)}):{Environment.NewLine}{ToilSetup.Tail(text)}");
        var sorted = File.ReadAllText(Path.Combine(directory, "sorted.txt"));
        Assert.Equal(string.Concat(lines.Order(StringComparer.Ordinal).Select(l => l + "\n")), sorted);
    }

    // Runs `python3 -m MODULE file:DIR/jobstore --batchSystem hybridbatch ARGS` in a new directory DIR against a daemon
    // of its own, the way a user runs a workflow; returns its exit code, its output and DIR (deleted when the test ends),
    // or null where Toil's worker image cannot be used (not the local cluster: the output says so).
    private async Task<(int Code, string Output, string Directory)?> RunWorkflowAsync(string module, string[] arguments, Action<string>? prepare = null)
    {
        if (await ToilSetup.PrepareAsync(cluster, output) is not { } interpreter)
        {
            return null;
        }

        var data = Directory.CreateTempSubdirectory("hybridbatch-toil-daemon-");
        var folder = Directory.CreateTempSubdirectory("hybridbatch-toil-workflow-");
        _directories.AddRange([data, folder]);
        prepare?.Invoke(folder.FullName);
        // A Toil worker is a Python process with Toil loaded, about 100 MB before the job's own work, and Toil's
        // examples ask for less than that (helloWorld: 100 bytes): the daemon adds room for it to every job, as a Toil
        // user sets it up for Toil's workers.
        var (daemon, environment) = await ToilSetup.StartDaemonAsync(cluster, output, data.FullName, "--resourceOverhead", ToilSetup.WorkerOverhead);
        await using var running = daemon;
        var (code, text) = await Admin.RunAsync(
            interpreter,
            ["-m", module, $"file:{folder.FullName}/jobstore", "--batchSystem", "hybridbatch", "--logInfo", "--clean", "always", .. arguments],
            TimeSpan.FromMinutes(15),
            environment,
            folder.FullName);
        output.WriteLine(text);
        // The jobs ran through a HybridBatch session (the plugin logs the one it opens), not in the leader.
        Assert.Contains("HybridBatch session", text, StringComparison.Ordinal);
        return (code, text, folder.FullName);
    }
}
