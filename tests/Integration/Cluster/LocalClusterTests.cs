using System.Net;
using k8s;
using k8s.Autorest;
using k8s.Models;

namespace HybridBatch.Integration.Cluster;

/// <summary>The cluster runs Jobs for the product's identity, and that identity stays in its lane.</summary>
public sealed class LocalClusterTests(LocalClusterFixture cluster) : IClassFixture<LocalClusterFixture>
{
    private static readonly TimeSpan JobTimeout = TimeSpan.FromMinutes(2);

    [Fact]
    public async Task A_busybox_job_succeeds_and_its_log_is_readable()
    {
        await WithJobAsync("echo hello", memoryLimit: null, async (job, pod, cancellationToken) =>
        {
            Assert.Equal(1, job.Status.Succeeded);
            await using var log = await cluster.Client.CoreV1.ReadNamespacedPodLogAsync(
                pod.Metadata.Name, cluster.Namespace, cancellationToken: cancellationToken);
            using var reader = new StreamReader(log);
            Assert.Equal("hello", (await reader.ReadToEndAsync(cancellationToken)).Trim());
        });
    }

    [Fact]
    public async Task A_job_exiting_3_fails_with_exit_code_3()
    {
        await WithJobAsync("exit 3", memoryLimit: null, (job, pod, _) =>
        {
            Assert.Equal(1, job.Status.Failed);
            Assert.Equal(3, Terminated(pod).ExitCode);
            return Task.CompletedTask;
        });
    }

    [Fact]
    public async Task A_job_over_its_memory_limit_is_reported_OOMKilled()
    {
        // tail keeps the whole newline-free stream in memory.
        await WithJobAsync("head -c 100m /dev/zero | tail", memoryLimit: "32Mi", (job, pod, _) =>
        {
            Assert.Equal(1, job.Status.Failed);
            Assert.Equal("OOMKilled", Terminated(pod).Reason);
            return Task.CompletedTask;
        });
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
            () => cluster.Client.BatchV1.CreateNamespacedJobAsync(ShellJob("it-forbidden", "true", null), cluster.OtherNamespace));
        Assert.Equal(HttpStatusCode.Forbidden, denied.Response.StatusCode);
    }

    [Fact]
    public async Task The_identity_cannot_list_pods_in_another_namespace()
    {
        var denied = await Assert.ThrowsAsync<HttpOperationException>(
            () => cluster.Client.CoreV1.ListNamespacedPodAsync(cluster.OtherNamespace));
        Assert.Equal(HttpStatusCode.Forbidden, denied.Response.StatusCode);
    }

    private static V1ContainerStateTerminated Terminated(V1Pod pod) =>
        Assert.Single(pod.Status.ContainerStatuses).State.Terminated
        ?? throw new InvalidOperationException($"pod {pod.Metadata.Name} has not terminated");

    // Runs a one-pod Job to its end, hands the ended Job and its pod to CHECK, and deletes the Job either way.
    private async Task WithJobAsync(string command, string? memoryLimit, Func<V1Job, V1Pod, CancellationToken, Task> check)
    {
        using var timeout = new CancellationTokenSource(JobTimeout);
        var name = $"it-{Guid.NewGuid():N}"[..16];
        await cluster.Client.BatchV1.CreateNamespacedJobAsync(
            ShellJob(name, command, memoryLimit), cluster.Namespace, cancellationToken: timeout.Token);
        try
        {
            var job = await WaitForJobEndAsync(name, timeout.Token);
            var pods = await cluster.Client.CoreV1.ListNamespacedPodAsync(
                cluster.Namespace, labelSelector: $"job-name={name}", cancellationToken: timeout.Token);
            await check(job, Assert.Single(pods.Items), timeout.Token);
        }
        finally
        {
            await cluster.Client.BatchV1.DeleteNamespacedJobAsync(
                name, cluster.Namespace, propagationPolicy: "Background", cancellationToken: CancellationToken.None);
        }
    }

    private static V1Job ShellJob(string name, string command, string? memoryLimit) => new()
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
                            Command = ["sh", "-c", command],
                            Resources = memoryLimit is null
                                ? null
                                : new V1ResourceRequirements { Limits = new Dictionary<string, ResourceQuantity> { ["memory"] = new(memoryLimit) } },
                        },
                    ],
                },
            },
        },
    };

    // Polling keeps the test independent of watch semantics, which the product's own tests cover. The pod's final
    // container status can trail the Job's counters, so the wait is for both.
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
