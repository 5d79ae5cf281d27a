using System.Globalization;
using HybridBatch.Integration.Cluster;
using HybridBatch.Integration.Faults;
using Xunit.Abstractions;
using DaemonProcess = HybridBatch.Integration.Daemon.Daemon;

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
    private const string ToilImage = "docker.io/library/hybridbatch-toil:local";
    private static readonly SemaphoreSlim PrepareGate = new(1, 1);
    private static string? python;

    private static string Repository => Path.GetDirectoryName(Path.GetDirectoryName(Admin.Script))!;

    private static string ClientDirectory => Path.Combine(Repository, "clients", "toil");

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
        "BadInputTest.test_a_job_the_daemon_refuses_is_reported_failed_once_with_error",
        "ExitReasonTest.test_exit_codes_and_reasons_reach_toil",
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
        if (await PrepareAsync() is not { } interpreter)
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
        if (await PrepareAsync() is not { } interpreter)
        {
            return;
        }

        var token = Guid.NewGuid().ToString("N");
        var data = Directory.CreateTempSubdirectory("hybridbatch-toil-");
        try
        {
            await using var daemon = await DaemonProcess.StartAsync(cluster, data.FullName, output, "--image", ToilImage, "--token", token);
            var environment = new Dictionary<string, string>
            {
                ["HYBRIDBATCH_URL"] = daemon.Address.ToString(),
                ["HYBRIDBATCH_TOKEN"] = token,
                ["HYBRIDBATCH_IMAGE"] = ToilImage,
                ["TMPDIR"] = data.FullName,
            };
            var (code, text) = await Admin.RunAsync(
                interpreter, ["-m", "unittest", "-v", test], TimeSpan.FromMinutes(15), environment, Path.Combine(ClientDirectory, "tests"));
            output.WriteLine(text);
            Assert.True(code == 0, $"{test} failed (exit {code.ToString(CultureInfo.InvariantCulture)}):{Environment.NewLine}{Tail(text)}");
            // Skipped is not passed: Toil's decorators skip a test whose requirements are missing.
            Assert.DoesNotContain("skipped", text.Split('\n').Where(l => l.StartsWith("OK", StringComparison.Ordinal)).FirstOrDefault() ?? "", StringComparison.Ordinal);
            Assert.Contains("\nOK", text, StringComparison.Ordinal);
        }
        finally
        {
            data.Delete(recursive: true);
        }
    }

    private static string Tail(string text) => string.Join(Environment.NewLine, text.Split('\n').TakeLast(60));

    // Once per test run: Debian's toil and the worker image (clients/toil/build-image --import), and a virtual
    // environment over the system's Python with the plugin installed the way a user installs it.
    private async Task<string?> PrepareAsync()
    {
        if (!ClusterControl.Local)
        {
            output.WriteLine($"not run: {cluster.KubeconfigPath} is not the local cluster (cluster/local-cluster on this machine), which the worker image is imported into");
            return null;
        }

        await PrepareGate.WaitAsync();
        try
        {
            if (python is not null)
            {
                return python;
            }

            var (code, text) = await Admin.RunAsync(Path.Combine(ClientDirectory, "build-image"), ["--import"], TimeSpan.FromMinutes(30));
            Assert.True(code == 0, $"clients/toil/build-image --import failed:{Environment.NewLine}{Tail(text)}");
            output.WriteLine($"worker image: {text.Trim().Split('\n')[^1]}");

            var environment = Path.Combine(Path.GetTempPath(), "hybridbatch-toil-venv-" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
            // Over the Python that Debian's toil command runs with, which need not be the first python3 on PATH.
            var system = (await File.ReadAllLinesAsync("/usr/bin/toil"))[0].TrimStart('#', '!').Trim().Split(' ')[0];
            (code, text) = await Admin.RunAsync(system, ["-m", "venv", "--system-site-packages", "--without-pip", "--clear", environment], TimeSpan.FromMinutes(2));
            Assert.True(code == 0, $"python3 -m venv failed:{Environment.NewLine}{text}");
            var interpreter = Path.Combine(environment, "bin", "python3");
            (code, text) = await Admin.RunAsync(Path.Combine(ClientDirectory, "install"), ["--python", interpreter], TimeSpan.FromMinutes(2));
            Assert.True(code == 0, $"clients/toil/install failed:{Environment.NewLine}{text}");
            output.WriteLine(text.Trim());
            python = interpreter;
            return python;
        }
        finally
        {
            PrepareGate.Release();
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
