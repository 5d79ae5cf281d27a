using System.Globalization;
using HybridBatch.Integration.Cluster;
using Xunit.Abstractions;

namespace HybridBatch.Integration.Toil;

/// <summary>
/// Toil itself (Debian's <c>toil</c> package) driving HybridBatch through the plugin in <c>clients/toil</c>, installed
/// as a user installs it (<c>clients/toil/install</c>, here into a virtual environment over the system's Toil), against
/// an in-process daemon: Toil's own <c>AbstractBatchSystemTest</c> cases with Toil's test code as written, and the
/// plugin's own tests. The jobs run in the image <c>clients/toil/build-image</c> makes (Debian with the same toil).
/// </summary>
[Collection(WholeNodeCollection.Name)]
public sealed class ToilPluginTests(LocalClusterFixture cluster, ITestOutputHelper output)
{
    /// <summary>Every test method of Toil's <c>hidden.AbstractBatchSystemTest</c>, as Toil 5.9 defines them.</summary>
    private static readonly string[] ToilTestNames =
        ["test_available_cores", "test_run_jobs", "test_set_env", "test_set_job_env", "testCheckResourceRequest", "testScalableBatchSystem"];

    public static TheoryData<string> ToilTests => new(ToilTestNames);

    /// <summary>The plugin's own tests in <c>clients/toil/tests/test_plugin.py</c>.</summary>
    public static TheoryData<string> PluginTests =>
    [
        "RegistrationTest.test_a_fresh_interpreter_finds_hybridbatch_among_toils_batch_systems",
        "RegistrationTest.test_toils_command_line_offers_the_batch_system_and_its_options",
        "BadInputTest.test_an_unreachable_daemon_stops_toil_at_start_with_the_reason_and_no_traceback",
        "BadInputTest.test_a_wrong_token_is_named",
        "BadInputTest.test_an_option_the_daemon_refuses_stops_with_its_message",
        "BadInputTest.test_a_shared_path_the_daemon_refuses_stops_with_its_message",
        "BadInputTest.test_a_job_the_daemon_refuses_is_reported_failed_once_with_error",
        "ExitReasonTest.test_exit_codes_and_reasons_reach_toil",
        "ExitReasonTest.test_why_a_job_could_not_run_is_in_the_leaders_log",
    ];

    [Theory]
    [MemberData(nameof(ToilTests))]
    public Task Toils_own_batch_system_test_passes_against_HybridBatch(string test) =>
        RunPythonTestAsync($"test_batch_system.HybridBatchSystemTest.{test}");

    [Theory]
    [MemberData(nameof(PluginTests))]
    public Task The_plugins_own_test_passes(string test) => RunPythonTestAsync($"test_plugin.{test}");

    [Fact]
    public async Task The_Toil_tests_run_here_are_every_test_of_Toils_AbstractBatchSystemTest()
    {
        if (await ToilSetup.PrepareAsync(cluster, output) is not { } interpreter)
        {
            return;
        }

        var (code, text) = await Admin.RunAsync(
            interpreter,
            ["-c", "from toil.test.batchSystems.batchSystemTest import hidden\nprint(' '.join(sorted(n for n in dir(hidden.AbstractBatchSystemTest) if n.startswith('test'))))"],
            TimeSpan.FromMinutes(2));
        Assert.True(code == 0, text);
        var defined = text.Trim().Split('\n')[^1].Split(' ', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal);
        Assert.Equal(defined, ToilTestNames.Order(StringComparer.Ordinal));
    }

    private async Task RunPythonTestAsync(string test)
    {
        if (await ToilSetup.PrepareAsync(cluster, output) is not { } interpreter)
        {
            return;
        }

        var data = Directory.CreateTempSubdirectory("hybridbatch-toil-");
        try
        {
            var (daemon, environment) = await ToilSetup.StartDaemonAsync(cluster, output, data.FullName);
            await using var running = daemon;
            var (code, text) = await Admin.RunAsync(
                interpreter, ["-m", "unittest", "-v", test], TimeSpan.FromMinutes(15), environment, Path.Combine(ToilSetup.ClientDirectory, "tests"));
            output.WriteLine(text);
            Assert.True(code == 0, $"{test} failed (exit {code.ToString(CultureInfo.InvariantCulture)}):{Environment.NewLine}{ToilSetup.Tail(text)}");
            // Skipped is not passed: Toil's decorators skip a test whose requirements are missing.
            Assert.DoesNotContain("skipped", text.Split('\n').Where(l => l.StartsWith("OK", StringComparison.Ordinal)).FirstOrDefault() ?? "", StringComparison.Ordinal);
            Assert.Contains("\nOK", text, StringComparison.Ordinal);
        }
        finally
        {
            data.Delete(recursive: true);
        }
    }
}

/// <summary>
/// Tests that need the node's CPU to themselves: Toil's <c>test_run_jobs</c> runs two jobs of one core each at once on
/// the two-core node and gives them 120 s to start, which other classes' pods beside them could use up. The collection
/// runs alone, after the parallel ones.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class WholeNodeCollection : ICollectionFixture<LocalClusterFixture>
{
    /// <summary>The collection name.</summary>
    public const string Name = "Whole node";
}
