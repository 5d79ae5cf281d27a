using System.IO.Compression;
using System.Runtime.Versioning;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using HybridBatch.Daemon.Jobs;
using HybridBatch.Integration.Cluster;
using Xunit.Abstractions;

namespace HybridBatch.Integration.Packaging;

/// <summary>
/// The packages as a user gets them: the library added to a new console project from a folder feed, and the tool
/// installed into a tool path and run from a folder that is not a checkout.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed partial class PackageTests(LocalClusterFixture cluster, PackagedFeed feed, ITestOutputHelper output) : IClassFixture<LocalClusterFixture>, IClassFixture<PackagedFeed>
{
    private static readonly TimeSpan BuildTimeout = TimeSpan.FromMinutes(5);
    private static readonly TimeSpan RunTimeout = TimeSpan.FromMinutes(10);

    [Fact]
    public void The_library_package_carries_the_core_the_XML_docs_the_README_and_its_metadata_and_the_symbol_package_both_PDBs()
    {
        using var package = ZipFile.OpenRead(feed.Package(PackagedFeed.LibraryId));
        var files = package.Entries.Select(e => e.FullName).ToHashSet();
        Assert.Superset(
            new HashSet<string> { "README.md", "lib/net10.0/HybridBatch.dll", "lib/net10.0/HybridBatch.xml", "lib/net10.0/HybridBatch.Core.dll", "lib/net10.0/HybridBatch.Core.xml" },
            files);
        Assert.DoesNotContain(files, f => f.EndsWith(".pdb", StringComparison.Ordinal));

        var metadata = Nuspec(package);
        Assert.Equal(feed.Version, Element(metadata, "version"));
        Assert.Equal("README.md", Element(metadata, "readme"));
        Assert.Equal("Apache-2.0", Element(metadata, "license"));
        Assert.False(string.IsNullOrWhiteSpace(Element(metadata, "authors")));
        Assert.False(string.IsNullOrWhiteSpace(Element(metadata, "description")));
        Assert.Contains("kubernetes", Element(metadata, "tags"), StringComparison.Ordinal);
        Assert.False(string.IsNullOrWhiteSpace(Element(metadata, "projectUrl")));
        var dependencies = metadata.Descendants().Where(e => e.Name.LocalName == "dependency").Select(e => (string)e.Attribute("id")!).ToList();
        Assert.Contains("KubernetesClient", dependencies);
        Assert.Contains("FSharp.Core", dependencies);
        Assert.DoesNotContain("HybridBatch.Core", dependencies);

        using var symbols = ZipFile.OpenRead(feed.Package(PackagedFeed.LibraryId, "snupkg"));
        Assert.Superset(
            new HashSet<string> { "lib/net10.0/HybridBatch.pdb", "lib/net10.0/HybridBatch.Core.pdb" },
            symbols.Entries.Select(e => e.FullName).ToHashSet());
    }

    [Fact]
    public async Task A_new_console_project_runs_the_READMEs_program_from_the_package_against_the_cluster()
    {
        var project = await NewConsoleProjectAsync("Consumer", PackagedFeed.LibraryId);
        await File.WriteAllTextAsync(Path.Combine(project, "Program.cs"), ReadmeCode("## The library"));

        var run = await ChildProcess.RunAsync(
            "dotnet", ["run", "--", "--kubeconfig", cluster.KubeconfigPath, "--namespace", cluster.Namespace], project, RunTimeout, output.WriteLine);

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("job 1: exit status 0, Finished", run.Output, StringComparison.Ordinal);
        Assert.DoesNotContain(File.ReadAllText(Path.Combine(project, "Consumer.csproj")), "ProjectReference", StringComparison.Ordinal);
    }

    [Fact]
    public void The_testing_package_carries_the_simulation_model_and_depends_on_exactly_this_HybridBatch()
    {
        using var package = ZipFile.OpenRead(feed.Package(PackagedFeed.TestingId));
        Assert.Superset(
            new HashSet<string>
            {
                "README.md", "lib/net10.0/HybridBatch.Testing.dll", "lib/net10.0/HybridBatch.Testing.xml",
                "lib/net10.0/HybridBatch.Testing.Simulation.dll", "lib/net10.0/HybridBatch.Testing.Simulation.xml",
            },
            package.Entries.Select(e => e.FullName).ToHashSet());
        var dependencies = Nuspec(package).Descendants().Where(e => e.Name.LocalName == "dependency")
            .ToDictionary(e => (string)e.Attribute("id")!, e => (string)e.Attribute("version")!);
        // It runs HybridBatch's internal runtime: any other HybridBatch version could differ there.
        Assert.Equal($"[{feed.Version}]", dependencies[PackagedFeed.LibraryId]);
        Assert.Contains("FsCheck", dependencies.Keys);
        Assert.DoesNotContain("HybridBatch.Testing.Simulation", dependencies.Keys);
    }

    [Fact]
    public async Task A_new_project_runs_the_READMEs_simulated_cluster_example_from_the_package_with_no_cluster()
    {
        var project = await NewConsoleProjectAsync("EngineTests", PackagedFeed.TestingId);
        // The README's example as a consumer pastes it, around an engine that runs 10,000 jobs and collects each.
        await File.WriteAllTextAsync(Path.Combine(project, "Program.cs"), $$"""
            using HybridBatch;
            using HybridBatch.Testing;

            var myEngine = new Engine();
            {{ReadmeCode("## Testing an engine without a cluster")}}

            sealed class Engine
            {
                public async Task RunAsync(IBatchSystem batch)
                {
                    for (var i = 0; i < 10_000; i++)
                    {
                        await batch.IssueBatchJobAsync("true", new JobDescription("job", 1, 1L << 30, 1L << 30));
                    }

                    var collected = new HashSet<int>();
                    var reasons = new Dictionary<BatchJobExitReason, int>();
                    while ((await batch.GetIssuedBatchJobIdsAsync()).Count > 0)
                    {
                        if (await batch.GetUpdatedBatchJobAsync(TimeSpan.FromHours(1)) is { } result)
                        {
                            if (!collected.Add(result.JobId)) throw new InvalidOperationException($"job {result.JobId} came back twice");
                            reasons[result.ExitReason] = reasons.GetValueOrDefault(result.ExitReason) + 1;
                        }
                    }

                    Console.WriteLine($"collected {collected.Count} jobs once each: " + string.Join(", ", reasons.OrderBy(r => r.Key).Select(r => $"{r.Key} {r.Value}")));
                }
            }
            """);

        // No kubeconfig anywhere and no cluster needed: nothing in the example may reach for one.
        var run = await ChildProcess.RunAsync("dotnet", ["run"], project, RunTimeout, output.WriteLine);

        Assert.True(run.ExitCode == 0, run.ToString());
        var summary = CollectedLine().Match(run.Output);
        Assert.True(summary.Success, run.Output);
        Assert.Equal("10000", summary.Groups["count"].Value);
        Assert.Matches(@"Failed [1-9]\d*", summary.Value);
        Assert.Matches(@"Lost [1-9]\d*", summary.Value);
    }

    [Fact]
    public async Task The_installed_tool_runs_the_quickstart_from_any_folder_on_the_embedded_cluster_it_carries()
    {
        var work = feed.NewFolder("quickstart");
        var example = await ChildProcess.RunAsync(feed.Tool, ["example"], work, BuildTimeout, output.WriteLine);
        Assert.Equal(0, example.ExitCode);
        Assert.Equal(await File.ReadAllTextAsync(Path.Combine(feed.RepositoryRoot, "examples", "quickstart.yaml")), example.Output.TrimEnd('\n') + "\n");
        await File.WriteAllTextAsync(Path.Combine(work, "quickstart.yaml"), example.Output);

        // No kubeconfig anywhere: the tool must start the local cluster with the scripts in its package. The cluster is
        // running, so `up` only checks it; the binary cache is the one the fixture's `up` used (HOME is empty).
        string[] arguments = cluster.IsLocalCluster
            ? ["run", "quickstart.yaml"]
            : ["run", "quickstart.yaml", "--kubeconfig", cluster.KubeconfigPath, "--namespace", cluster.Namespace];
        var cache = Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } xdg
            ? xdg
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        // The cluster's state directory goes along too when it is not the default: it says where the running cluster
        // lives on this machine, and without it the tool's `up` would start a second one beside it.
        var clusterHome = Environment.GetEnvironmentVariable("HYBRIDBATCH_CLUSTER_HOME");
        var run = await ChildProcess.RunAsync(feed.Tool, arguments, work, RunTimeout, output.WriteLine, environment: e =>
        {
            ChildProcess.WithoutCluster(e, feed.NewFolder("home"));
            e["XDG_CACHE_HOME"] = cache;
            if (clusterHome is { Length: > 0 })
            {
                e["HYBRIDBATCH_CLUSTER_HOME"] = clusterHome;
            }
        });

        Assert.True(run.ExitCode == RunCommand.JobFailed, run.ToString());
        if (cluster.IsLocalCluster)
        {
            Assert.Contains(".store/hybridbatch.cli/", run.Errors, StringComparison.Ordinal);
            Assert.Contains("cluster/local-cluster up", run.Errors, StringComparison.Ordinal);
            Assert.Matches(ProgressLine(), run.Errors);
        }

        var lines = run.Output.Split('\n');
        Assert.Contains(lines, l => Row("hello").IsMatch(l) && l.Contains(" 0 ", StringComparison.Ordinal) && l.Contains("finished", StringComparison.Ordinal));
        Assert.Contains(lines, l => Row("fails").IsMatch(l) && l.Contains(" 3 ", StringComparison.Ordinal) && l.Contains("failed", StringComparison.Ordinal));
        Assert.Contains(lines, l => Row("oom").IsMatch(l) && l.Contains("OOM", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("fanout (x50)", StringComparison.Ordinal) && l.Contains("all 50 succeeded", StringComparison.Ordinal));
        Assert.Contains("53 job(s): 51 succeeded, 2 failed or killed", run.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Installing_the_tool_again_over_the_installed_one_says_so_and_leaves_it_working()
    {
        // Installing over an installed tool is the dotnet CLI's to answer (the README says what it does); what HybridBatch
        // owes is that nothing is left half-installed: the command still runs, at the same version.
        var toolPath = Path.GetDirectoryName(feed.Tool)!;
        var before = await ChildProcess.RunAsync(feed.Tool, ["--version"], feed.NewFolder("version"), BuildTimeout, output.WriteLine);
        Assert.True(before.ExitCode == 0, before.ToString());
        var again = await ChildProcess.RunAsync(
            "dotnet", ["tool", "install", "--tool-path", toolPath, "--add-source", feed.Feed, PackagedFeed.ToolId, "--version", feed.Version],
            feed.NewFolder("reinstall"), BuildTimeout, output.WriteLine);
        Assert.Contains("already installed", again.Output + again.Errors, StringComparison.Ordinal);

        var version = await ChildProcess.RunAsync(feed.Tool, ["--version"], feed.NewFolder("version"), BuildTimeout, output.WriteLine);
        Assert.True(version.ExitCode == 0, version.ToString());
        Assert.Equal(before.Output, version.Output);
    }

    [Fact]
    public async Task Run_by_a_user_who_is_not_root_the_tool_says_the_local_cluster_needs_root_and_how_to_give_a_kubeconfig_and_exits_2()
    {
        var work = feed.NewFolder("not-root");
        await File.WriteAllTextAsync(Path.Combine(work, "quickstart.yaml"), ExampleCommand.Quickstart());
        File.SetUnixFileMode(Path.Combine(work, "quickstart.yaml"), UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead);

        // As root, drop to nobody for the run; any other user is already not root.
        var asRoot = Environment.UserName == "root";
        var run = await ChildProcess.RunAsync(
            asRoot ? "setpriv" : feed.Tool,
            asRoot ? ["--reuid=nobody", "--regid=nogroup", "--clear-groups", feed.Tool, "run", "quickstart.yaml"] : ["run", "quickstart.yaml"],
            work,
            RunTimeout,
            output.WriteLine,
            environment: e => ChildProcess.WithoutCluster(e, feed.NewFolder("home")));

        AssertRefusedWithTheWayOut(run, "needs root");
    }

    [Fact]
    public async Task With_a_build_cache_it_cannot_write_the_tool_names_the_cache_and_the_way_out_and_exits_2()
    {
        // The cache check comes after the root check: as any other user the run stops at "needs root".
        Assert.True(Environment.UserName == "root", "the local cluster's cache check is reached only as root");
        var work = feed.NewFolder("no-cache");
        await File.WriteAllTextAsync(Path.Combine(work, "quickstart.yaml"), ExampleCommand.Quickstart());

        // Nothing can be created under /proc, not even by root (a read-only folder would not stop root). With no binaries
        // in that cache, `up` must build them and so needs the cache, before it starts anything.
        var run = await ChildProcess.RunAsync(feed.Tool, ["run", "quickstart.yaml"], work, RunTimeout, output.WriteLine, environment: e =>
        {
            ChildProcess.WithoutCluster(e, feed.NewFolder("home"));
            e["XDG_CACHE_HOME"] = "/proc/hybridbatch-no-cache";
        });

        AssertRefusedWithTheWayOut(run, "cannot write the build cache /proc/hybridbatch-no-cache/hybridbatch");
        Assert.Contains("XDG_CACHE_HOME", run.Output, StringComparison.Ordinal);
    }

    private static void AssertRefusedWithTheWayOut(ChildResult run, string reason)
    {
        Assert.True(run.ExitCode == RunCommand.UsageError, run.ToString());
        var error = run.Output.Split('\n').SkipWhile(l => !l.StartsWith("error: ", StringComparison.Ordinal)).ToList();
        Assert.True(error.Count > 0, $"no error line:\n{run}");
        // The console wraps long lines.
        var message = Regex.Replace(string.Join(' ', error), @"\s+", " ");
        Assert.Contains(reason, message, StringComparison.Ordinal);
        Assert.Contains("--kubeconfig", message, StringComparison.Ordinal);
        Assert.Contains("KUBECONFIG", message, StringComparison.Ordinal);
        // The script's own line came through as it was printed, and nothing threw.
        Assert.Contains($"error: {reason}", run.Errors, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", run.Output + run.Errors, StringComparison.Ordinal);
        Assert.DoesNotContain("Exception", run.Output + run.Errors, StringComparison.Ordinal);
    }

    // A new console project in a folder of its own, with a package from the folder feed added as a user adds it. The
    // feed comes beside the machine's own sources (~/.nuget/NuGet/NuGet.Config), which serve the dependencies.
    private async Task<string> NewConsoleProjectAsync(string name, string packageId)
    {
        var project = feed.NewFolder(name.ToLowerInvariant());
        await File.WriteAllTextAsync(Path.Combine(project, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <add key="hybridbatch-packed" value="{feed.Feed}" />
              </packageSources>
            </configuration>
            """);
        await ChildProcess.DotnetAsync(project, BuildTimeout, output.WriteLine, "new", "console", "--name", name, "--output", ".", "--no-restore");
        await ChildProcess.DotnetAsync(project, BuildTimeout, output.WriteLine, "add", "package", packageId, "--version", feed.Version);
        return project;
    }

    // The first C# block of a section of the README, as a user would copy it.
    private string ReadmeCode(string heading)
    {
        var readme = File.ReadAllText(Path.Combine(feed.RepositoryRoot, "README.md"));
        var start = readme.IndexOf(heading, StringComparison.Ordinal);
        Assert.True(start >= 0, $"the README has no section '{heading}'");
        var block = CSharpBlock().Match(readme[start..]);
        Assert.True(block.Success, $"the README's section '{heading}' has no ```csharp block");
        return block.Groups["code"].Value;
    }

    private static XElement Nuspec(ZipArchive package)
    {
        using var stream = package.Entries.Single(e => e.FullName.EndsWith(".nuspec", StringComparison.Ordinal)).Open();
        return XDocument.Load(stream).Root!.Elements().Single(e => e.Name.LocalName == "metadata");
    }

    private static string Element(XElement metadata, string name) =>
        metadata.Elements().SingleOrDefault(e => e.Name.LocalName == name)?.Value ?? "";

    private static Regex Row(string job) => new($@"│ {Regex.Escape(job)} +│");

    [GeneratedRegex(@"local-cluster \[ *\d+s\] ")]
    private static partial Regex ProgressLine();

    [GeneratedRegex(@"```csharp\n(?<code>.*?)```", RegexOptions.Singleline)]
    private static partial Regex CSharpBlock();

    [GeneratedRegex(@"collected (?<count>\d+) jobs once each: .*")]
    private static partial Regex CollectedLine();
}
