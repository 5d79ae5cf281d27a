using System.Text.RegularExpressions;
using HybridBatch.Daemon.Hosting;
using HybridBatch.Daemon.Jobs;
using HybridBatch.Integration.Cluster;
using Spectre.Console;
using Xunit.Abstractions;

namespace HybridBatch.Integration.Daemon;

/// <summary><c>hybridbatch run FILE</c> against the cluster.</summary>
public sealed class RunCommandTests(LocalClusterFixture cluster, ITestOutputHelper output) : IClassFixture<LocalClusterFixture>
{
    private Task<(int Status, string Output)> RunAsync(string fileText, string extension = ".yaml", CancellationToken cancellationToken = default) =>
        RunAsync(cluster, output, fileText, extension, cancellationToken);

    /// <summary>Runs <c>hybridbatch run</c> on a jobs file with this text against the cluster, with plain output, which it returns.</summary>
    internal static async Task<(int Status, string Output)> RunAsync(
        LocalClusterFixture cluster,
        ITestOutputHelper output,
        string fileText,
        string extension = ".yaml",
        CancellationToken cancellationToken = default,
        params string[] extra)
    {
        var file = Path.Combine(Path.GetTempPath(), $"hybridbatch-jobs-{Guid.NewGuid():N}{extension}");
        await File.WriteAllTextAsync(file, fileText);
        try
        {
            var writer = new StringWriter();
            var console = AnsiConsole.Create(new AnsiConsoleSettings
            {
                Ansi = AnsiSupport.No,
                ColorSystem = ColorSystemSupport.NoColors,
                Interactive = InteractionSupport.No,
                Out = new AnsiConsoleOutput(writer),
            });
            console.Profile.Width = 240;
            string[] args = ["run", file, "--kubeconfig", cluster.KubeconfigPath, "--namespace", cluster.Namespace, .. extra];
            var status = await RunCommand.ExecuteAsync(DaemonCommand.Parse(args), console, interactive: false, cancellationToken);
            output.WriteLine(writer.ToString());
            return (status, writer.ToString());
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task A_run_with_a_failed_job_exits_non_zero_and_its_summary_names_each_reason()
    {
        var (status, text) = await RunAsync("""
            resourceOverhead: 16Mi
            jobs:
              - name: works
                command: echo ok
              - name: exits-3
                command: echo about to fail; exit 3
              - name: too-big
                memory: 32Mi
                command: head -c 200m /dev/zero | tail
              - name: fan
                count: 3
                command: "true"
            """);

        Assert.Equal(RunCommand.JobFailed, status);
        var lines = text.Split('\n');
        Assert.Contains(lines, l => l.Contains("exits-3") && l.Contains(" 3 ") && l.Contains("failed") && l.Contains("about to fail"));
        Assert.Contains(lines, l => l.Contains("too-big") && l.Contains("OOM"));
        Assert.Contains(lines, l => l.Contains("works") && l.Contains("finished"));
        Assert.Contains(lines, l => l.Contains("fan (x3)") && l.Contains("all 3 succeeded"));
        Assert.Contains("6 job(s): 4 succeeded, 2 failed or killed", text);
    }

    [Fact]
    public async Task A_run_where_every_job_succeeds_exits_zero()
    {
        var (status, text) = await RunAsync("""{"resourceOverhead": "16Mi", "jobs": [{"name": "a", "command": ["echo", "a b"]}, {"name": "b", "command": "true", "count": 2}]}""", ".json");
        Assert.Equal(RunCommand.Success, status);
        Assert.Contains("3 job(s): 3 succeeded, 0 failed", text);
    }

    [Fact]
    public async Task Interrupting_a_run_kills_its_jobs_deletes_them_and_exits_130()
    {
        using var interrupt = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var (status, text) = await RunAsync("resourceOverhead: 16Mi\njobs:\n  - name: long\n    count: 2\n    command: sleep 300\n", cancellationToken: interrupt.Token);

        Assert.Equal(RunCommand.Interrupted, status);
        var runId = Regex.Match(text, "run ([0-9a-f]{32})").Groups[1].Value;
        Assert.NotEmpty(runId);
        Assert.Empty(await BatchSystem.Batch.JobsOfRunAsync(cluster, runId));
        Assert.Contains(text.Split('\n'), l => l.Contains("long-1") && l.Contains("killed"));
        Assert.Contains("2 job(s): 0 succeeded, 2 failed or killed", text);
    }

    [Theory]
    [InlineData("jobs:\n  - name: a\n    command: echo\n    memory: lots\n", "4:13", "jobs[0] (a).memory: 'lots' is not an amount of bytes")]
    [InlineData("jobs:\n  - name: a\n    comand: echo\n", "3:5", "unknown key 'comand'")]
    [InlineData("jobs:\n  - name: a\n", "2:5", "jobs[0]: no 'command'")]
    [InlineData("jobs:\n  - name: a\n    command: x\n  - name: a\n    command: y\n", "4:5", "'a' is also the name of the job on line 2")]
    [InlineData("jobs: [\n  {\"name\": \"a\",\n", "3:1", "not valid YAML or JSON")]
    [InlineData("jobs:\n  - command: x\n    count: -1\n", "3:12", "count: '-1' is not a whole number")]
    [InlineData("jobs:\n  - command: x\n    placement:\n      required: {\"bad key!\": x}\n", "4:7", "placement: The required label key \"bad key!\" is invalid")]
    public async Task A_bad_jobs_file_is_reported_by_line_and_field_without_a_stack_trace(string text, string where, string message)
    {
        var (status, printed) = await RunAsync(text);
        Assert.Equal(RunCommand.UsageError, status);
        Assert.Contains($".yaml:{where}: ", printed);
        Assert.Contains(message, printed);
        Assert.DoesNotContain("   at ", printed);
    }
}
