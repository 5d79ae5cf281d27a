using System.Diagnostics;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json.Nodes;
using HybridBatch.Integration.Cluster;
using HybridBatch.Integration.Daemon;
using HybridBatch.Integration.Faults;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Xunit.Abstractions;
using static HybridBatch.Integration.Daemon.TesApiTests;

namespace HybridBatch.Integration.Deploy;

/// <summary>
/// The daemon as <c>deploy/</c> ships it, running inside the local cluster: its image built here
/// (<c>deploy/build-image --import</c>), <c>cluster/manifests/daemon</c> applied with <c>kubectl apply -k</c>, its
/// TES API reached through the API server's service proxy, the way a user outside the cluster would.
/// </summary>
public sealed class DaemonInClusterTests(LocalClusterFixture cluster, ITestOutputHelper output) : IClassFixture<LocalClusterFixture>
{
    // Both as in cluster/manifests/daemon.
    private const string Namespace = "hybridbatch-daemon";
    private const string DataDirectory = "/var/lib/hybridbatch-daemon-local";
    private const string WorkDirectory = "/var/lib/hybridbatch-tes";
    private const string PodSelector = "app.kubernetes.io/name=hybridbatch";
    private static readonly TimeSpan PodReadyTimeout = TimeSpan.FromMinutes(3);

    private static string Repository => Path.GetDirectoryName(Path.GetDirectoryName(Admin.Script))!;

    [Fact]
    public async Task The_deployed_daemon_completes_a_task_and_its_recreated_pod_lists_the_task_once_with_the_same_state()
    {
        if (!ClusterControl.Local)
        {
            output.WriteLine($"not run: {cluster.KubeconfigPath} is not the local cluster (cluster/local-cluster on this machine), which the image is imported into");
            return;
        }

        using var admin = Admin.Client();
        await RemoveDeploymentAsync(admin);
        string? runId = null;
        var passed = false;
        try
        {
            var watch = Stopwatch.StartNew();
            var (code, text) = await Admin.RunAsync(Path.Combine(Repository, "deploy", "build-image"), ["--import"], TimeSpan.FromMinutes(20));
            Assert.True(code == 0, $"deploy/build-image --import failed:{Environment.NewLine}{text}");
            output.WriteLine($"image built and imported in {watch.Elapsed.TotalSeconds:F1} s: {text.Trim().Split('\n')[^1]}");

            watch.Restart();
            (code, text) = await Admin.RunScriptAsync($"kubectl --admin apply -k {Path.Combine(Repository, "cluster", "manifests", "daemon")}", TimeSpan.FromMinutes(2));
            Assert.True(code == 0, $"kubectl apply -k failed:{Environment.NewLine}{text}");
            var first = await WaitForServingPodAsync(admin, replacing: null);
            output.WriteLine($"apply -> pod {first} Ready and behind the Service in {watch.Elapsed.TotalSeconds:F1} s");

            using var tes = ServiceProxyClient();
            runId = (await tes.GetFromJsonAsyncObject("/readyz"))["run"]?.GetValue<string>();
            var name = $"in-cluster-{Guid.NewGuid():N}";
            watch.Restart();
            var id = await CreateAsync(tes, new JsonObject { ["name"] = name, ["executors"] = new JsonArray(Executor("echo", "hello from the cluster")) });
            var task = await WaitForAsync(tes, id, Terminal);
            output.WriteLine($"create -> {task["state"]} in {watch.Elapsed.TotalSeconds:F1} s");
            Assert.Equal("COMPLETE", task["state"]!.GetValue<string>());
            Assert.Equal("hello from the cluster\n", task["logs"]![0]!["logs"]![0]!["stdout"]!.GetValue<string>());

            watch.Restart();
            await admin.CoreV1.DeleteNamespacedPodAsync(first, Namespace);
            var second = await WaitForServingPodAsync(admin, replacing: first);
            output.WriteLine($"pod {first} deleted -> pod {second} Ready and behind the Service in {watch.Elapsed.TotalSeconds:F1} s");

            var listed = (await tes.GetFromJsonAsyncObject($"/ga4gh/tes/v1/tasks?name_prefix={name}&view=BASIC"))["tasks"]!.AsArray();
            var only = Assert.Single(listed);
            Assert.Equal(id, only!["id"]!.GetValue<string>());
            Assert.Equal("COMPLETE", only["state"]!.GetValue<string>());
            var again = await GetAsync(tes, id);
            Assert.Equal("hello from the cluster\n", again["logs"]![0]!["logs"]![0]!["stdout"]!.GetValue<string>());
            passed = true;
        }
        finally
        {
            try
            {
                await RemoveDeploymentAsync(admin);
                if (runId is { Length: > 0 })
                {
                    DeleteDirectory(Path.Combine(WorkDirectory, runId));
                }
            }
            catch (Exception e) when (!passed)
            {
                // The test's own failure is the one to report; the next run removes what is left.
                output.WriteLine($"cleanup failed too: {e.Message}");
            }
        }
    }

    /// <summary>
    /// Waits until exactly one pod of the Deployment other than <paramref name="replacing"/> is Ready and is the only
    /// address behind the Service, so the next request through the Service reaches that pod.
    /// </summary>
    private async Task<string> WaitForServingPodAsync(Kubernetes admin, string? replacing)
    {
        var deadline = DateTime.UtcNow + PodReadyTimeout;
        while (true)
        {
            var pods = await Unreachable.AsNullAsync(() => admin.CoreV1.ListNamespacedPodAsync(Namespace, labelSelector: PodSelector));
            var ready = pods?.Items.Where(p => p.Metadata.Name != replacing && p.Metadata.DeletionTimestamp is null && IsReady(p)).ToList() ?? [];
            if (ready.Count == 1 && await Unreachable.AsNullAsync(() => ServedByAsync(admin)) is [var served] && served == ready[0].Metadata.Name)
            {
                return served;
            }

            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"no Ready daemon pod behind the Service within {PodReadyTimeout.TotalSeconds} s:{Environment.NewLine}{await DescribeAsync(admin)}");
            }

            await Task.Delay(250);
        }
    }

    private static bool IsReady(V1Pod pod) => pod.Status?.Conditions?.Any(c => c.Type == "Ready" && c.Status == "True") == true;

    private static async Task<List<string>> ServedByAsync(Kubernetes admin)
    {
        try
        {
            var endpoints = await admin.CoreV1.ReadNamespacedEndpointsAsync("hybridbatch", Namespace);
            return [.. (endpoints.Subsets ?? []).SelectMany(s => s.Addresses ?? []).Select(a => a.TargetRef?.Name ?? a.Ip)];
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
            return [];
        }
    }

    // What a failed wait needs to be understood: each pod's phase and container state, and the daemon's last log lines.
    private static async Task<string> DescribeAsync(Kubernetes admin)
    {
        var pods = await admin.CoreV1.ListNamespacedPodAsync(Namespace);
        var lines = new List<string>();
        foreach (var pod in pods.Items)
        {
            var state = pod.Status?.ContainerStatuses?.FirstOrDefault()?.State;
            lines.Add($"{pod.Metadata.Name}: {pod.Status?.Phase}, ready {IsReady(pod)}, waiting {state?.Waiting?.Reason} {state?.Waiting?.Message}, terminated {state?.Terminated?.Reason}");
            try
            {
                using var log = await admin.CoreV1.ReadNamespacedPodLogAsync(pod.Metadata.Name, Namespace, tailLines: 20);
                lines.Add(await new StreamReader(log).ReadToEndAsync());
            }
            catch (HttpOperationException e)
            {
                lines.Add($"(no log: {e.Response.StatusCode})");
            }
        }

        var events = await admin.CoreV1.ListNamespacedEventAsync(Namespace);
        lines.AddRange(events.Items.TakeLast(15).Select(e => $"event {e.InvolvedObject.Name}: {e.Reason} {e.Message}"));
        return string.Join(Environment.NewLine, lines);
    }

    /// <summary>
    /// An HTTP client for the daemon's TES API through the API server's proxy to the Service, as the cluster's admin:
    /// a request for <c>/ga4gh/tes/v1/tasks</c> goes to <c>/api/v1/namespaces/NS/services/hybridbatch:8000/proxy/ga4gh/tes/v1/tasks</c>.
    /// </summary>
    private static HttpClient ServiceProxyClient()
    {
        var config = KubernetesClientConfiguration.BuildConfigFromConfigFile(Admin.KubeconfigPath);
        var authorities = config.SslCaCerts ?? throw new InvalidOperationException($"{Admin.KubeconfigPath} names no certificate authority");
        var handler = new SocketsHttpHandler();
        handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
            (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) == SslPolicyErrors.None
            && certificate is X509Certificate2 server
            && IssuedBy(server, authorities);
        return new HttpClient(new PathPrefix($"/api/v1/namespaces/{Namespace}/services/hybridbatch:8000/proxy") { InnerHandler = handler })
        {
            BaseAddress = new Uri(config.Host),
            DefaultRequestHeaders = { Authorization = new AuthenticationHeaderValue("Bearer", config.AccessToken) },
            Timeout = TimeSpan.FromSeconds(60),
        };
    }

    private static bool IssuedBy(X509Certificate2 certificate, X509Certificate2Collection authorities)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(authorities);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(certificate);
    }

    private sealed class PathPrefix(string prefix) : DelegatingHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var uri = request.RequestUri!;
            request.RequestUri = new UriBuilder(uri) { Path = prefix + uri.AbsolutePath }.Uri;
            return base.SendAsync(request, cancellationToken);
        }
    }

    /// <summary>Deletes the namespace (everything applied, and the task's Jobs), waits until it is gone and removes the task database.</summary>
    private async Task RemoveDeploymentAsync(Kubernetes admin)
    {
        try
        {
            await admin.CoreV1.DeleteNamespaceAsync(Namespace);
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
            DeleteDirectory(DataDirectory);
            return;
        }

        // The namespace is Terminating, so nothing recreates them: without waiting for the kubelet, which here takes
        // about 45 s to confirm a pod whose container stopped in 4, the namespace goes in seconds.
        await admin.CoreV1.DeleteCollectionNamespacedPodAsync(Namespace, gracePeriodSeconds: 0);

        var watch = Stopwatch.StartNew();
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(3);
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                await admin.CoreV1.ReadNamespaceAsync(Namespace);
            }
            catch (HttpRequestException)
            {
                // The API server is restarting; keep asking until the deadline.
            }
            catch (HttpOperationException e) when (e.Response.StatusCode == System.Net.HttpStatusCode.NotFound)
            {
                output.WriteLine($"namespace {Namespace} deleted in {watch.Elapsed.TotalSeconds:F1} s");
                DeleteDirectory(DataDirectory);
                return;
            }

            await Task.Delay(250);
        }

        Assert.Fail($"namespace {Namespace} still exists {watch.Elapsed.TotalSeconds:F0} s after its deletion");
    }

    /// <summary>The shared local cluster's API server may be restarting (another run's fault test): a wait keeps polling through that.</summary>
    private static class Unreachable
    {
        public static async Task<T?> AsNullAsync<T>(Func<Task<T>> call)
            where T : class
        {
            try
            {
                return await call();
            }
            catch (HttpRequestException)
            {
                return null;
            }
        }
    }

    private static void DeleteDirectory(string path)
    {
        if (Directory.Exists(path))
        {
            Directory.Delete(path, recursive: true);
        }
    }
}
