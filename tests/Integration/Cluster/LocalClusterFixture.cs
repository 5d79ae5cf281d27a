using System.Diagnostics;
using k8s;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace HybridBatch.Integration.Cluster;

/// <summary>Tests in this collection share one cluster and one client.</summary>
[CollectionDefinition(Name)]
public sealed class LocalClusterCollection : ICollectionFixture<LocalClusterFixture>
{
    /// <summary>The collection name for <c>[Collection(LocalClusterCollection.Name)]</c>.</summary>
    public const string Name = "Kubernetes cluster";
}

/// <summary>
/// The cluster the integration tests run against, seen through the product's least-privileged identity.
/// <c>HYBRIDBATCH_KUBECONFIG</c> or <c>KUBECONFIG</c>, when it names a file, selects any existing cluster;
/// otherwise the repository's local cluster is brought up (<c>cluster/local-cluster up</c>, built on first use)
/// and its least-privileged kubeconfig is used.
/// </summary>
public sealed class LocalClusterFixture(IMessageSink diagnostics) : IAsyncLifetime
{
    // A cold start builds Kubernetes from source (about 10 minutes on 2 cores).
    private static readonly TimeSpan UpTimeout = TimeSpan.FromMinutes(40);

    private Kubernetes? client;

    /// <summary>The client, authenticated as the kubeconfig's identity.</summary>
    public Kubernetes Client => client ?? throw new InvalidOperationException("The cluster fixture is not initialized.");

    /// <summary>The namespace the tests may use: <c>HYBRIDBATCH_NAMESPACE</c>, else the kubeconfig context's.</summary>
    public string Namespace { get; private set; } = "";

    /// <summary>A namespace the identity must not be able to touch (<c>HYBRIDBATCH_OTHER_NAMESPACE</c>).</summary>
    public string OtherNamespace { get; } =
        Environment.GetEnvironmentVariable("HYBRIDBATCH_OTHER_NAMESPACE") is { Length: > 0 } other ? other : "hybridbatch-other";

    /// <summary>The kubeconfig in use.</summary>
    public string KubeconfigPath { get; private set; } = "";

    /// <inheritdoc />
    public async Task InitializeAsync()
    {
        KubeconfigPath = GivenKubeconfig() ?? await StartLocalClusterAsync();
        var config = KubernetesClientConfiguration.BuildConfigFromConfigFile(KubeconfigPath);
        Namespace = Environment.GetEnvironmentVariable("HYBRIDBATCH_NAMESPACE") is { Length: > 0 } ns
            ? ns
            : config.Namespace ?? "default";
        client = new Kubernetes(config);
        Log($"cluster {config.Host}, namespace {Namespace}, kubeconfig {KubeconfigPath}");
    }

    /// <inheritdoc />
    public Task DisposeAsync()
    {
        client?.Dispose();
        return Task.CompletedTask;
    }

    private static string? GivenKubeconfig()
    {
        foreach (var variable in new[] { "HYBRIDBATCH_KUBECONFIG", "KUBECONFIG" })
        {
            if (Environment.GetEnvironmentVariable(variable) is { Length: > 0 } path && File.Exists(path))
            {
                return path;
            }
        }

        return null;
    }

    private async Task<string> StartLocalClusterAsync()
    {
        var script = Path.Combine(FindRepositoryRoot(), "cluster", "local-cluster");
        await RunAsync(script, "up");
        var path = (await RunAsync(script, "kubeconfig")).Trim();
        return File.Exists(path)
            ? path
            : throw new InvalidOperationException($"'{script} kubeconfig' printed '{path}', which is not a file.");
    }

    private static string FindRepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "HybridBatch.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException(
            $"No HybridBatch.sln above {AppContext.BaseDirectory}; set HYBRIDBATCH_KUBECONFIG to use an existing cluster.");
    }

    // Progress lines go to xunit's diagnostics (visible with diagnosticMessages), so a cold build does not look hung.
    private async Task<string> RunAsync(string script, string arguments)
    {
        var start = new ProcessStartInfo(script, arguments)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"Cannot start {script}.");
        var errors = new List<string>();
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                return;
            }

            lock (errors)
            {
                errors.Add(e.Data);
            }

            Log(e.Data);
        };
        process.BeginErrorReadLine();
        var output = process.StandardOutput.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(UpTimeout);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{script} {arguments} did not finish within {UpTimeout}.");
        }

        if (process.ExitCode != 0)
        {
            string tail;
            lock (errors)
            {
                tail = string.Join(Environment.NewLine, errors.TakeLast(30));
            }

            throw new InvalidOperationException($"{script} {arguments} exited with {process.ExitCode}:{Environment.NewLine}{tail}");
        }

        return await output;
    }

    private void Log(string message) => diagnostics.OnMessage(new DiagnosticMessage($"[cluster] {message}"));
}
