using System.Collections.Concurrent;
using System.Runtime.Versioning;
using HybridBatch.Daemon.Hosting;
using HybridBatch.Daemon.Jobs;
using HybridBatch.Integration.Cluster;
using HybridBatch.Integration.Packaging;
using Xunit.Abstractions;

namespace HybridBatch.Integration.Daemon;

/// <summary>
/// <c>hybridbatch run</c> with no kubeconfig shows the local cluster script's progress while the script runs, not when
/// it ends. A stand-in <c>local-cluster</c> (named by <see cref="ClusterConnection.ScriptVariable"/>) prints its step
/// lines one at a time and prints the next only once the test has read the previous one from the run's stderr; so it
/// can only finish if every line reached the user while it was still running. Its <c>kubeconfig</c> is the test
/// cluster's, so the run then goes on as usual.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class ClusterProgressTests(LocalClusterFixture cluster, ITestOutputHelper output) : IClassFixture<LocalClusterFixture>, IDisposable
{
    private const int Steps = 3;
    private readonly DirectoryInfo _folder = Directory.CreateTempSubdirectory("hybridbatch-progress-");

    public void Dispose() => _folder.Delete(recursive: true);

    [Fact]
    public async Task Run_passes_on_each_line_of_the_cluster_script_while_the_script_is_still_running()
    {
        var script = Path.Combine(_folder.FullName, "local-cluster");
        var exited = Path.Combine(_folder.FullName, "up-exited");
        // No executable bit: the run must start the script through bash, as for the tool's extracted copy.
        await File.WriteAllTextAsync(script, $$"""
            #!/usr/bin/env bash
            set -euo pipefail
            here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
            case "$1" in
                up)
                    for i in $(seq {{Steps}}); do
                        printf '[%4ds] step %s of {{Steps}}\n' "$i" "$i" >&2
                        # The next line only once the reader has seen this one; a reader that waits for the end waits for ever.
                        for _ in $(seq 1200); do [[ -e "$here/seen-$i" ]] && break; sleep 0.05; done
                        [[ -e "$here/seen-$i" ]] || { echo "[  60s] error: step $i was not passed on while the script ran" >&2; exit 1; }
                    done
                    echo "[   4s] cluster ready" >&2
                    touch "$here/up-exited"
                    ;;
                kubeconfig) echo '{{cluster.KubeconfigPath}}' ;;
                *) exit 2 ;;
            esac
            """);
        var jobs = Path.Combine(_folder.FullName, "jobs.yaml");
        await File.WriteAllTextAsync(jobs, "resourceOverhead: 16Mi\njobs:\n  - name: after-the-cluster\n    command: echo up\n");
        var home = Directory.CreateDirectory(Path.Combine(_folder.FullName, "home")).FullName;

        var seenWhileRunning = new ConcurrentDictionary<int, bool>();
        var order = new ConcurrentQueue<string>();
        var run = await ChildProcess.RunAsync(
            "dotnet",
            [Path.Combine(AppContext.BaseDirectory, "HybridBatch.Daemon.dll"), "run", jobs, "--namespace", cluster.Namespace],
            _folder.FullName,
            TimeSpan.FromMinutes(5),
            output.WriteLine,
            environment: e =>
            {
                ChildProcess.WithoutCluster(e, home);
                e[ClusterConnection.ScriptVariable] = script;
            },
            onErrorLine: line =>
            {
                order.Enqueue(line);
                for (var i = 1; i <= Steps; i++)
                {
                    if (line.Contains($"step {i} of {Steps}", StringComparison.Ordinal))
                    {
                        seenWhileRunning[i] = !File.Exists(exited);
                        File.WriteAllText(Path.Combine(_folder.FullName, $"seen-{i}"), "");
                    }
                }
            });

        Assert.True(run.ExitCode == RunCommand.Success, run.ToString());
        Assert.True(File.Exists(exited), "the stand-in's up did not finish");
        Assert.Equal(Enumerable.Range(1, Steps).Select(i => (i, true)), seenWhileRunning.OrderBy(kv => kv.Key).Select(kv => (kv.Key, kv.Value)));
        var progress = order.Where(l => l.StartsWith("local-cluster [", StringComparison.Ordinal)).ToList();
        Assert.Equal(
            [.. Enumerable.Range(1, Steps).Select(i => $"local-cluster [{i,4}s] step {i} of {Steps}"), "local-cluster [   4s] cluster ready"],
            progress);
        Assert.Contains("1 job(s): 1 succeeded, 0 failed", run.Output, StringComparison.Ordinal);
    }
}
