using System.Globalization;
using HybridBatch.Integration.Cluster;
using HybridBatch.Integration.Faults;
using Xunit.Abstractions;
using DaemonProcess = HybridBatch.Integration.Daemon.Daemon;

namespace HybridBatch.Integration.Toil;

/// <summary>
/// Debian's Toil with the plugin, as a user installs them, once per test run: <c>clients/toil/build-image --import</c>
/// (Debian's toil on the machine and in the workers' image, imported into the local cluster) and a virtual environment
/// over the system's Python with the plugin installed by <c>clients/toil/install</c>.
/// </summary>
internal static class ToilSetup
{
    /// <summary>The workers' image <c>clients/toil/build-image</c> makes: Debian with the same toil as the leader.</summary>
    public const string Image = "docker.io/library/hybridbatch-toil:local";

    /// <summary>What the daemon adds to each job's memory for a Toil worker's own needs (<c>--resourceOverhead</c>).</summary>
    public const string WorkerOverhead = "256Mi";

    private static readonly SemaphoreSlim PrepareGate = new(1, 1);
    private static string? python;

    private static string Repository => Path.GetDirectoryName(Path.GetDirectoryName(Admin.Script))!;

    /// <summary>The plugin's folder, <c>clients/toil</c>.</summary>
    public static string ClientDirectory => Path.Combine(Repository, "clients", "toil");

    /// <summary>The last 60 lines of a program's output, for a failure message.</summary>
    public static string Tail(string text) => string.Join(Environment.NewLine, text.Split('\n').TakeLast(60));

    /// <summary>
    /// Starts a daemon in this process for a Toil leader, with a token and the workers' image, and returns it with the
    /// environment the leader finds it by (and keeps its temporary files in <paramref name="dataDirectory"/> under).
    /// </summary>
    public static async Task<(DaemonProcess Daemon, Dictionary<string, string> Environment)> StartDaemonAsync(
        LocalClusterFixture cluster, ITestOutputHelper output, string dataDirectory, params string[] extra)
    {
        var token = Guid.NewGuid().ToString("N");
        var daemon = await DaemonProcess.StartAsync(cluster, dataDirectory, output, ["--image", Image, "--token", token, .. extra]);
        return (daemon, new Dictionary<string, string>
        {
            ["HYBRIDBATCH_URL"] = daemon.Address.ToString(),
            ["HYBRIDBATCH_TOKEN"] = token,
            ["HYBRIDBATCH_IMAGE"] = Image,
            ["TMPDIR"] = dataDirectory,
        });
    }

    /// <summary>The virtual environment's python3, with Toil and the plugin; null (and why, in the output) where the worker image cannot be imported.</summary>
    public static async Task<string?> PrepareAsync(LocalClusterFixture cluster, ITestOutputHelper output)
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
