using System.Net;
using k8s;
using k8s.Autorest;
using k8s.Models;

namespace HybridBatch.Integration.Cluster;

/// <summary>The cluster runs Jobs for the product's identity, and that identity stays in its lane.</summary>
[Collection(LocalClusterCollection.Name)]
public sealed class LocalClusterTests(LocalClusterFixture cluster)
{
    private static readonly TimeSpan JobTimeout = TimeSpan.FromMinutes(2);

    [Fact]
    public async Task A_busybox_job_succeeds_and_its_log_is_readable()
    {
        using var timeout = new CancellationTokenSource(JobTimeout);
        var name = $"it-hello-{Guid.NewGuid():N}"[..20];
        await cluster.Client.BatchV1.CreateNamespacedJobAsync(EchoJob(name, "hello"), cluster.Namespace, cancellationToken: timeout.Token);
        try
        {
            var job = await WaitForJobEndAsync(name, timeout.Token);
            Assert.Equal(1, job.Status.Succeeded);

            var pods = await cluster.Client.CoreV1.ListNamespacedPodAsync(
                cluster.Namespace, labelSelector: $"job-name={name}", cancellationToken: timeout.Token);
            var pod = Assert.Single(pods.Items);
            await using var log = await cluster.Client.CoreV1.ReadNamespacedPodLogAsync(
                pod.Metadata.Name, cluster.Namespace, cancellationToken: timeout.Token);
            using var reader = new StreamReader(log);
            Assert.Equal("hello", (await reader.ReadToEndAsync(timeout.Token)).Trim());
        }
        finally
        {
            await cluster.Client.BatchV1.DeleteNamespacedJobAsync(
                name, cluster.Namespace, propagationPolicy: "Background", cancellationToken: CancellationToken.None);
        }
    }

    [Fact]
    public async Task The_identity_cannot_list_secrets()
    {
        var denied = await Assert.ThrowsAsync<HttpOperationException>(
            () => cluster.Client.CoreV1.ListNamespacedSecretAsync(cluster.Namespace));
        Assert.Equal(HttpStatusCode.Forbidden, denied.Response.StatusCode);
    }

    [Fact]
    public async Task The_identity_cannot_create_jobs_in_another_namespace()
    {
        var denied = await Assert.ThrowsAsync<HttpOperationException>(
            () => cluster.Client.BatchV1.CreateNamespacedJobAsync(EchoJob("it-forbidden", "no"), cluster.OtherNamespace));
        Assert.Equal(HttpStatusCode.Forbidden, denied.Response.StatusCode);
    }

    [Fact]
    public async Task The_identity_cannot_list_pods_in_another_namespace()
    {
        var denied = await Assert.ThrowsAsync<HttpOperationException>(
            () => cluster.Client.CoreV1.ListNamespacedPodAsync(cluster.OtherNamespace));
        Assert.Equal(HttpStatusCode.Forbidden, denied.Response.StatusCode);
    }

    private static V1Job EchoJob(string name, string text) => new()
    {
        Metadata = new V1ObjectMeta { Name = name },
        Spec = new V1JobSpec
        {
            BackoffLimit = 0,
            Template = new V1PodTemplateSpec
            {
                Spec = new V1PodSpec
                {
                    RestartPolicy = "Never",
                    Containers =
                    [
                        new V1Container
                        {
                            Name = "main",
                            Image = "busybox:1.35",
                            ImagePullPolicy = "IfNotPresent",
                            Command = ["sh", "-c", $"echo {text}"],
                        },
                    ],
                },
            },
        },
    };

    // Polling keeps the test independent of watch semantics, which the product's own tests cover.
    private async Task<V1Job> WaitForJobEndAsync(string name, CancellationToken cancellationToken)
    {
        while (true)
        {
            var job = await cluster.Client.BatchV1.ReadNamespacedJobAsync(name, cluster.Namespace, cancellationToken: cancellationToken);
            if (job.Status?.Succeeded > 0 || job.Status?.Failed > 0)
            {
                return job;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(250), cancellationToken);
        }
    }
}
