using HybridBatch.Daemon.Hosting;
using k8s;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace HybridBatch.Integration.Cluster;

/// <summary>
/// The cluster the integration tests run against, seen through the product's least-privileged identity.
/// <c>HYBRIDBATCH_KUBECONFIG</c> or <c>KUBECONFIG</c>, when it names a file, selects any existing cluster;
/// otherwise the repository's local cluster is brought up (<c>cluster/local-cluster up</c>, built on first use)
/// and its least-privileged kubeconfig is used.
/// </summary>
/// <remarks>
/// Each test class gets its own fixture (<c>IClassFixture</c>), and with it a namespace of its own, so classes run in
/// parallel without seeing each other's Jobs, pods, events or LimitRanges: when the cluster's admin is at hand (the local
/// cluster), a fresh namespace with the identity's Role copied from its own namespace; otherwise
/// <c>HYBRIDBATCH_NAMESPACE</c> or the kubeconfig's namespace, shared.
/// </remarks>
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

    /// <summary>Whether the cluster is this machine's local cluster (no kubeconfig was given), which is now running.</summary>
    public bool IsLocalCluster { get; private set; }

    /// <summary>The identity's own namespace, from <c>HYBRIDBATCH_NAMESPACE</c> or the kubeconfig (which tests share).</summary>
    public string IdentityNamespace { get; private set; } = "";

    private bool ownsNamespace;

    /// <inheritdoc />
    public async Task InitializeAsync()
    {
        var given = GivenKubeconfig();
        IsLocalCluster = given is null;
        KubeconfigPath = given ?? await StartLocalClusterAsync();
        var config = KubernetesClientConfiguration.BuildConfigFromConfigFile(KubeconfigPath);
        IdentityNamespace = Environment.GetEnvironmentVariable("HYBRIDBATCH_NAMESPACE") is { Length: > 0 } ns
            ? ns
            : config.Namespace ?? "default";
        client = new Kubernetes(config);
        Namespace = IdentityNamespace;
        if (Admin.Available)
        {
            Namespace = await TestNamespaces.CreateAsync(client, IdentityNamespace);
            ownsNamespace = true;
        }

        Log($"cluster {config.Host}, namespace {Namespace}, kubeconfig {KubeconfigPath}");
    }

    /// <inheritdoc />
    public async Task DisposeAsync()
    {
        if (ownsNamespace)
        {
            await TestNamespaces.DeleteAsync(Namespace);
        }

        client?.Dispose();
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

    // The script's progress lines (a cold start builds Kubernetes for about 10 minutes, with a line every 5 s) go to
    // xunit's diagnostics as they come; xunit.runner.json turns those on, so `dotnet test` shows them.
    private async Task<string> StartLocalClusterAsync()
    {
        var script = Path.Combine(FindRepositoryRoot(), "cluster", "local-cluster");
        // Not while another run on the machine disrupts the cluster on purpose (ClusterLock says why).
        using var shared = await ClusterLock.TakeAsync(exclusive: false, UpTimeout, Log);
        using var timeout = new CancellationTokenSource(UpTimeout);
        try
        {
            return await ClusterConnection.StartLocalClusterAsync(script, Log, timeout.Token);
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested)
        {
            throw new TimeoutException($"{script} up did not finish within {UpTimeout}.");
        }
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

    private void Log(string message) => diagnostics.OnMessage(new DiagnosticMessage($"[cluster] {message}"));
}
