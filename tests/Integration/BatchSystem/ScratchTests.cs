using HybridBatch.Core.Api;
using HybridBatch.Integration.Cluster;
using HybridBatch.Translation;
using Xunit.Abstractions;

namespace HybridBatch.Integration.BatchSystem;

/// <summary>The directories every job gets: a working temporary directory where TMPDIR points, whatever its image holds, and the shared paths.</summary>
public sealed class ScratchTests(LocalClusterFixture cluster, ITestOutputHelper output) : IClassFixture<LocalClusterFixture>
{
    /// <summary>busybox and nothing else: no /etc, /tmp or /var/tmp (cluster/lib/images.sh).</summary>
    private const string MinimalImage = "docker.io/hybridbatch/busybox-minimal:1.35";

    // Toil's test_run_jobs command (mktemp -d), then a file written to and read from the directory it made.
    private const string MakeAndUseTemporaryDirectory = "dir=$(mktemp -d) && echo x > \"$dir/f\" && test -s \"$dir/f\"";

    private async Task<UpdatedBatchJobInfo> RunAsync(string command, JobDescription job, Func<KubernetesBatchSystemOptions, KubernetesBatchSystemOptions>? change = null)
    {
        var system = await KubernetesBatchSystem.CreateAsync(Batch.Options(cluster, change), Batch.Logging(output));
        try
        {
            var id = await system.IssueBatchJobAsync(command, job);
            var info = await Batch.NextAsync(system);
            Assert.Equal(id, info.JobId);
            if (info.ExitStatus != 0)
            {
                output.WriteLine(system.GetFailureLog(info.BackingId) ?? "(no log)");
            }

            return info;
        }
        finally
        {
            await system.ShutdownAsync();
            await system.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_job_in_an_image_without_var_tmp_makes_and_uses_a_temporary_directory()
    {
        var info = await RunAsync(MakeAndUseTemporaryDirectory, TestJobs.Job("minimal") with { Image = MinimalImage });
        Assert.Equal((0, BatchJobExitReason.Finished), (info.ExitStatus, info.ExitReason));
    }

    [Fact]
    public async Task A_job_running_as_an_unprivileged_user_can_write_its_temporary_directory()
    {
        var info = await RunAsync(
            $"[ \"$(id -u)\" = 65534 ] && {MakeAndUseTemporaryDirectory}", TestJobs.Job("minimal-nobody") with { Image = MinimalImage }, o => o with { RunAsUser = 65534 });
        Assert.Equal((0, BatchJobExitReason.Finished), (info.ExitStatus, info.ExitReason));
    }

    [Fact]
    public async Task A_shared_path_is_the_same_directory_for_the_leader_and_every_job_at_the_same_path()
    {
        // The one node is this machine, so a directory here is the node's: what a job writes there, the leader reads.
        var shared = Directory.CreateTempSubdirectory("hybridbatch-shared-");
        try
        {
            var input = Path.Combine(shared.FullName, "in");
            await File.WriteAllTextAsync(input, "from the leader\n");
            var result = Path.Combine(shared.FullName, "out");
            var info = await RunAsync($"tr a-z A-Z < {input} > {result}", TestJobs.Job("shared"), o => o with { SharedPaths = [shared.FullName] });
            Assert.Equal((0, BatchJobExitReason.Finished), (info.ExitStatus, info.ExitReason));
            Assert.Equal("FROM THE LEADER\n", await File.ReadAllTextAsync(result));
        }
        finally
        {
            shared.Delete(recursive: true);
        }
    }
}

/// <summary>The scratch volume in the manifests, without a cluster.</summary>
public sealed class ScratchManifestTests
{
    private const long Overhead = 16L * 1024 * 1024;

    private static JobManifest Manifest(KubernetesBatchSystemOptions options)
    {
        var job = TestJobs.Job("scratch", disk: 3_000_000);
        var settings = Jobs.Settings("tester", "scratch-run", options.Image, Overhead, options.MaxCores, options.MaxMemory, options.MaxDisk);
        var prepared = Jobs.Prepare(
            settings, 1, job.Name, "true", job.Image, job.Cores, job.Memory, job.Disk, null, null, null, null, null, job.Preemptible, [], null);
        Assert.Null(prepared.Problem);
        return Jobs.Manifest(prepared.Job!);
    }

    private static (k8s.Models.V1Job Job, JobManifest Manifest) Build(KubernetesBatchSystemOptions options)
    {
        var manifest = Manifest(options);
        return (new JobManifests(options, "scratch-run", "tester").Build(manifest), manifest);
    }

    [Fact]
    public void A_bare_pod_is_the_Jobs_pod_under_the_Jobs_name_labels_and_annotations_with_restart_policy_Never()
    {
        var options = new KubernetesBatchSystemOptions { HostPath = "/var/lib/hybridbatch-host", SharedPaths = ["/data"], RunAsUser = 1000 };
        var manifests = new JobManifests(options with { ObjectKind = KubernetesObjectKind.Pod }, "scratch-run", "tester");
        var manifest = Manifest(options);
        var pod = manifests.BuildPod(manifest);
        var job = manifests.Build(manifest);

        Assert.Equal(("v1", "Pod", "Never"), (pod.ApiVersion, pod.Kind, pod.Spec.RestartPolicy));
        Assert.Equal(job.Metadata.Name, pod.Metadata.Name);
        Assert.Equal(job.Metadata.Labels, pod.Metadata.Labels);
        Assert.Equal(job.Metadata.Annotations, pod.Metadata.Annotations);
        Assert.Equal(job.Spec.Template.Metadata.Labels, pod.Metadata.Labels);
        Assert.Equal(job.Spec.Template.Metadata.Annotations, pod.Metadata.Annotations);
        Assert.Equal(k8s.KubernetesJson.Serialize(job.Spec.Template.Spec), k8s.KubernetesJson.Serialize(pod.Spec));
        Assert.Empty(pod.Metadata.OwnerReferences ?? []);

        // Re-attaching reads the pool request back from either object.
        Assert.Equal(JobManifests.StoredRequest(job.Metadata), JobManifests.StoredRequest(pod.Metadata));
        Assert.Equal((manifest.Millicores, manifest.Memory, manifest.Disk), JobManifests.StoredRequest(pod.Metadata));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("/var/lib/hybridbatch-host")]
    public void The_scratch_volume_is_mounted_where_TMPDIR_points_and_sized_by_the_job_disk_request(string? hostPath)
    {
        var (job, manifest) = Build(new KubernetesBatchSystemOptions { HostPath = hostPath });
        var pod = job.Spec.Template.Spec;
        var container = Assert.Single(pod.Containers);

        Assert.Equal(JobManifests.ScratchDirectory, Assert.Single(container.Env, e => e.Name == "TMPDIR").Value);
        var mount = Assert.Single(container.VolumeMounts, m => m.MountPath == JobManifests.ScratchDirectory);
        var volume = Assert.Single(pod.Volumes, v => v.Name == mount.Name);
        Assert.NotNull(volume.EmptyDir);
        Assert.Null(volume.EmptyDir.Medium);

        // The job's disk (3,000,000 bytes plus the overhead) is the volume's size and still the container's only
        // ephemeral-storage request and limit: scratch shares that budget rather than adding to it.
        var disk = manifest.Requests["ephemeral-storage"];
        Assert.Equal((3_000_000 + Overhead).ToString(System.Globalization.CultureInfo.InvariantCulture), disk);
        Assert.Equal(disk, volume.EmptyDir.SizeLimit.ToString());
        Assert.Equal(disk, container.Resources.Requests["ephemeral-storage"].ToString());
        Assert.Equal(disk, container.Resources.Limits["ephemeral-storage"].ToString());
    }

    [Fact]
    public void The_node_cleanup_job_mounts_only_the_host_directory()
    {
        var cleanup = new JobManifests(new KubernetesBatchSystemOptions { HostPath = "/var/lib/hybridbatch-host" }, "scratch-run", "tester")
            .Cleanup("node-1");
        Assert.NotNull(cleanup);
        var pod = cleanup.Spec.Template.Spec;
        Assert.Equal(["parent"], pod.Volumes.Select(v => v.Name));
        Assert.Equal(["/host"], Assert.Single(pod.Containers).VolumeMounts.Select(m => m.MountPath));
    }
}
