using System.Collections;
using System.Runtime.Versioning;
using HybridBatch.Daemon.Hosting;
using HybridBatch.Daemon.Jobs;
using HybridBatch.Daemon.Tes;
using HybridBatch.Integration.Packaging;
using Microsoft.Extensions.Configuration;
using Xunit.Abstractions;

namespace HybridBatch.Integration.Configuration;

/// <summary>
/// The <c>hybridbatch</c> command line: one parser (System.CommandLine) whose options are made from the library's
/// settings, help that says what each option does and its default, and usage errors that exit 2.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class CommandLineTests(ITestOutputHelper output) : IDisposable
{
    private readonly DirectoryInfo _folder = Directory.CreateTempSubdirectory("hybridbatch-cli-");

    public void Dispose() => _folder.Delete(recursive: true);

    private async Task<(int Status, string Output, string Errors)> InvokeAsync(params string[] args)
    {
        var (text, errors) = (new StringWriter(), new StringWriter());
        var status = await DaemonCommand.InvokeAsync(args, text, errors);
        output.WriteLine($"$ hybridbatch {string.Join(' ', args)}\nexit {status}\n{text}{errors}");
        return (status, text.ToString(), errors.ToString());
    }

    [Theory]
    [InlineData("--help")]
    [InlineData("run", "--help")]
    [InlineData("serve", "--help")]
    [InlineData("example", "--help")]
    public async Task Usage_names_the_command_hybridbatch(params string[] args)
    {
        var (status, text, _) = await InvokeAsync(args);
        Assert.Equal(0, status);
        Assert.Contains($"Usage:{Environment.NewLine}  hybridbatch", text, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("run")]
    [InlineData("serve")]
    public async Task Every_option_in_help_says_what_it_does_and_its_default(string command)
    {
        var (_, text, _) = await InvokeAsync(command, "--help");
        var options = Options(text);
        Assert.Contains(options, o => o.StartsWith("--kubernetesPodTimeout <seconds>", StringComparison.Ordinal));
        Assert.Contains(options, o => o.StartsWith("--kubernetesObjectKind <job|pod>", StringComparison.Ordinal) && o.Contains("Default: job", StringComparison.Ordinal));
        Assert.Contains(options, o => o.StartsWith("--resourceOverhead <bytes>", StringComparison.Ordinal) && o.Contains("Default: 512Mi", StringComparison.Ordinal));
        Assert.All(options.Where(o => !o.StartsWith("-?, -h, --help", StringComparison.Ordinal)), o =>
        {
            Assert.Contains("Default: ", o, StringComparison.Ordinal);
            Assert.DoesNotContain("see the batch system's options", o, StringComparison.Ordinal);
        });
        Assert.Equal(KubernetesBatchSystemConfiguration.Settings.Count(s => s.Flag is not null), options.Count(o => KubernetesBatchSystemConfiguration.Settings.Any(s => s.Flag is { } flag && o.StartsWith(flag + " ", StringComparison.Ordinal))));
    }

    [Theory]
    [InlineData(new[] { "run", "jobs.yaml", "--maxMemory", "10G" }, "'10G' is not a valid value for --maxMemory / HYBRIDBATCH_MAX_MEMORY / HybridBatch:MaxMemory: give a whole number")]
    [InlineData(new[] { "run", "jobs.yaml", "--kubernetesPrivileged", "maybe" }, "'maybe' is not a valid value for --kubernetesPrivileged")]
    [InlineData(new[] { "run", "jobs.yaml", "--kubernetesPodTimeout=soon" }, "'soon' is not a valid value for --kubernetesPodTimeout")]
    [InlineData(new[] { "run", "jobs.yaml", "--kubernetesObjectKind", "deployment" }, "'deployment' is not a valid value for --kubernetesObjectKind / HYBRIDBATCH_OBJECT_KIND / HybridBatch:ObjectKind: give one of: job, pod")]
    [InlineData(new[] { "serve", "--kubernetesObjectKind=deployment" }, "'deployment' is not a valid value for --kubernetesObjectKind")]
    [InlineData(new[] { "serve", "--maxJobs", "1.5" }, "'1.5' is not a valid value for --maxJobs")]
    [InlineData(new[] { "serve", "--resourceOverhead", "16MB" }, "'16MB' is not a valid value for --resourceOverhead")]
    [InlineData(new[] { "run", "jobs.yaml", "--no-such-flag" }, "--no-such-flag")]
    [InlineData(new[] { "run" }, "run")]
    public async Task A_command_line_that_cannot_be_used_is_named_and_exits_2(string[] args, string message)
    {
        var (status, text, errors) = await InvokeAsync(args);
        Assert.Equal(RunCommand.UsageError, status);
        Assert.Contains("error: ", errors, StringComparison.Ordinal);
        Assert.Contains(message, errors, StringComparison.Ordinal);
        Assert.Contains($"See 'hybridbatch {args[0]} --help'.", errors, StringComparison.Ordinal);
        Assert.Empty(text);
    }

    [Fact]
    public void A_flag_wins_over_the_variable_and_the_key_and_a_bad_variable_it_overrides_does_not_matter()
    {
        var parse = DaemonCommand.Parse(["run", "jobs.yaml", "--maxJobs", "3", "--kubernetesPodTimeout", "30"]);
        var configuration = new ConfigurationBuilder().AddInMemoryCollection([new("HybridBatch:MaxJobs", "1"), new("HybridBatch:Image", "alpine:3")]).Build();
        var variables = new Hashtable { ["HYBRIDBATCH_MAX_JOBS"] = "lots", ["TOIL_KUBERNETES_POD_TIMEOUT"] = "90", ["HYBRIDBATCH_NAMESPACE"] = "batch" };

        var options = BatchSystemFlags.Bind(parse, configuration, variables);

        Assert.Equal((3, TimeSpan.FromSeconds(30), "batch", "alpine:3"), (options.MaxJobs, options.PodTimeout, options.Namespace, options.Image));
    }

    [Fact]
    public void Serve_binds_its_own_flags_over_the_TES_section_and_its_variables()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(
        [
            new("Tes:Token", "from-the-file"), new("Tes:DataDirectory", "/var/lib/tes"), new("Tes:MaxRequestBytes", "2048"), new("urls", "http://127.0.0.1:7"),
        ]).Build();
        var variables = new Hashtable { ["HYBRIDBATCH_MAX_JOBS"] = "6" };

        var fromFiles = ServeCommand.Bind(DaemonCommand.Parse(["serve"]), configuration, variables);
        Assert.Equal(
            ("http://127.0.0.1:7", "/var/lib/tes", "from-the-file", 2048L, 6),
            (fromFiles.Urls, fromFiles.Tes.DataDirectory, fromFiles.Tes.Token, fromFiles.Tes.MaxRequestBytes, fromFiles.BatchSystem.MaxJobs));

        var parse = DaemonCommand.Parse(["serve", "--urls", "http://127.0.0.1:9", "--data-dir", "/srv/tes", "--token", "t", "--maxJobs", "5"]);
        var fromFlags = ServeCommand.Bind(parse, configuration, variables);
        Assert.Equal(
            ("http://127.0.0.1:9", "/srv/tes", "t", "/srv/tes/tes.db", 5),
            (fromFlags.Urls, fromFlags.Tes.DataDirectory, fromFlags.Tes.Token, fromFlags.Tes.DatabasePath, fromFlags.BatchSystem.MaxJobs));
    }

    [Fact]
    public void A_bad_TES_setting_names_its_key()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection([new("Tes:MaxRequestBytes", "1MB")]).Build();
        var error = Assert.Throws<ArgumentException>(() => ServeCommand.Bind(DaemonCommand.Parse(["serve"]), configuration, new Hashtable()));
        Assert.Contains("Tes:MaxRequestBytes", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("run")]
    [InlineData("serve")]
    public async Task Run_and_serve_read_the_same_appsettings_json_and_a_bad_value_there_exits_2_naming_its_key(string command)
    {
        await File.WriteAllTextAsync(Path.Combine(_folder.FullName, "appsettings.json"), """{"HybridBatch": {"MaxJobs": "lots"}}""");
        await File.WriteAllTextAsync(Path.Combine(_folder.FullName, "jobs.yaml"), "jobs:\n  - command: echo hello\n");
        string[] args = command == "run" ? ["run", "jobs.yaml"] : ["serve", "--urls", "http://127.0.0.1:0"];

        var result = await ChildProcess.RunAsync(
            "dotnet",
            [Path.Combine(AppContext.BaseDirectory, "HybridBatch.Daemon.dll"), .. args],
            _folder.FullName,
            TimeSpan.FromMinutes(2),
            output.WriteLine,
            environment: e => ChildProcess.WithoutCluster(e, Directory.CreateDirectory(Path.Combine(_folder.FullName, "home")).FullName));

        Assert.True(result.ExitCode == RunCommand.UsageError, result.ToString());
        Assert.Contains("'lots' is not a valid value for --maxJobs / HYBRIDBATCH_MAX_JOBS / HybridBatch:MaxJobs", result.Output + result.Errors, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", result.Output + result.Errors, StringComparison.Ordinal);
    }

    // The help's options, one string each, whatever the width it was wrapped to.
    private static List<string> Options(string help)
    {
        var options = new List<string>();
        foreach (var line in help[help.IndexOf("Options:", StringComparison.Ordinal)..].Split('\n').Skip(1))
        {
            if (line.Trim().Length == 0)
            {
                break;
            }

            if (line.StartsWith("  -", StringComparison.Ordinal))
            {
                options.Add(line.Trim());
            }
            else
            {
                options[^1] += " " + line.Trim();
            }
        }

        return options;
    }
}
