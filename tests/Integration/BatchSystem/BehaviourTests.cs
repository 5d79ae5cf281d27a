using HybridBatch.Integration.Cluster;
using k8s;
using k8s.Models;
using Xunit.Abstractions;

namespace HybridBatch.Integration.BatchSystem;

/// <summary>
/// What HybridBatch promises beyond Toil's tests: exit reasons, stuck pods, lost jobs, queueing, scale, re-attaching,
/// shutting down; each whether jobs run as Jobs or as bare pods.
/// </summary>
public sealed class BehaviourTests(LocalClusterFixture cluster, ITestOutputHelper output) : BatchSystemTests(cluster, output), IClassFixture<LocalClusterFixture>
{
    [Theory]
    [EachObjectKind]
    public async Task Exit_codes_come_back_exactly_with_the_matching_reason(KubernetesObjectKind kind)
    {
        var system = await StartAsync(kind);
        try
        {
            var expected = new Dictionary<int, int>();
            foreach (var code in new[] { 0, 1, 42, 255 })
            {
                expected[await system.IssueBatchJobAsync($"exit {code}", Batch.Job($"exit-{code}"))] = code;
            }

            for (var i = 0; i < expected.Count; i++)
            {
                var info = await Batch.NextAsync(system);
                Assert.Equal(expected[info.JobId], info.ExitStatus);
                Assert.Equal(info.ExitStatus == 0 ? BatchJobExitReason.Finished : BatchJobExitReason.Failed, info.ExitReason);
                Assert.True(info.WallTime > TimeSpan.Zero);
            }

            Assert.Null(await system.GetUpdatedBatchJobAsync(TimeSpan.FromSeconds(1)));
        }
        finally
        {
            await EndAsync(system);
        }
    }

    [Theory]
    [EachObjectKind]
    public async Task A_container_over_its_memory_limit_is_reported_as_MemLimit(KubernetesObjectKind kind)
    {
        // No overhead, so 32 MiB is the memory limit; the disk is 16 MiB: with the test job's 1000 bytes and no overhead the
        // kubelet evicts any pod for its own few KiB of logs and mounts, and the eviction could come before the OOM kill.
        var system = await StartAsync(kind, o => o with { ResourceOverhead = 0, MaxDisk = 16 * 1024 * 1024 });
        try
        {
            // 32 MiB limit; tail keeps its last lines in memory, and /dev/zero is one endless line.
            var id = await system.IssueBatchJobAsync(
                "head -c 200000000 /dev/zero | tail >/dev/null", Batch.Job("oom", memory: 32 * 1024 * 1024, disk: 16 * 1024 * 1024));
            var info = await Batch.NextAsync(system);
            Assert.Equal(id, info.JobId);
            Assert.Equal(BatchJobExitReason.MemLimit, info.ExitReason);
            Assert.Equal(137, info.ExitStatus);
            Assert.Contains("OOMKilled", info.Message);
        }
        finally
        {
            await EndAsync(system);
        }
    }

    [Theory]
    [EachObjectKind]
    public async Task Shutting_down_leaves_no_Job_and_no_pod_of_the_run(KubernetesObjectKind kind)
    {
        // Three at once by --maxJobs alone (Toil's test disk maximum of 2001 bytes would let only two of them run).
        var system = await StartAsync(kind, o => o with { MaxJobs = 3, MaxCores = 1000, MaxMemory = long.MaxValue / 8, MaxDisk = long.MaxValue / 8 });
        try
        {
            // Running, finished but not collected, and queued behind --maxJobs when shutdown comes.
            var sleepers = new[]
            {
                await system.IssueBatchJobAsync("sleep 600", Batch.Job("sleeper-1")),
                await system.IssueBatchJobAsync("sleep 600", Batch.Job("sleeper-2")),
            };
            var done = await system.IssueBatchJobAsync("true", Batch.Job("done"));
            await system.IssueBatchJobAsync("sleep 600", Batch.Job("queued"));
            Assert.True(await Batch.EventuallyAsync(
                async () =>
                {
                    var running = await system.GetRunningBatchJobIdsAsync();
                    var pods = await Batch.PodsOfRunAsync(Cluster, system.RunId);
                    return sleepers.All(running.ContainsKey)
                        && pods.Any(p => p.Metadata.Labels["hybridbatch.io/job-id"] == done.ToString(System.Globalization.CultureInfo.InvariantCulture)
                            && p.Status?.Phase == "Succeeded");
                },
                TimeSpan.FromSeconds(120)));
            Assert.NotEmpty(await Batch.ObjectsOfRunAsync(Cluster, system.RunId, kind));

            await system.ShutdownAsync();

            Assert.Empty(await Batch.JobsOfRunAsync(Cluster, system.RunId));
            Assert.Empty(await Batch.PodsOfRunAsync(Cluster, system.RunId));
            Assert.Empty(await system.GetIssuedBatchJobIdsAsync());
        }
        finally
        {
            await EndAsync(system);
        }
    }

    [Theory]
    [EachObjectKind]
    public async Task A_queued_job_killed_before_launch_is_never_created(KubernetesObjectKind kind)
    {
        var system = await StartAsync(kind, o => o with { MaxJobs = 1 });
        try
        {
            var running = await system.IssueBatchJobAsync("sleep 600", Batch.Job("holder"));
            var queued = await system.IssueBatchJobAsync("true", Batch.Job("queued"));
            Assert.Equal([running, queued], await system.GetIssuedBatchJobIdsAsync());

            await system.KillBatchJobsAsync([queued]);
            Assert.Equal([running], await system.GetIssuedBatchJobIdsAsync());
            await system.KillBatchJobsAsync([running]);

            // Capacity is free again: a new job runs, and the killed queued one never appears in the cluster.
            var next = await system.IssueBatchJobAsync("true", Batch.Job("next"));
            Assert.Equal(next, (await Batch.NextAsync(system)).JobId);
            var ids = (await Batch.ObjectsOfRunAsync(Cluster, system.RunId, kind))
                .Select(j => j.Labels["hybridbatch.io/job-id"]).ToList();
            Assert.DoesNotContain(queued.ToString(System.Globalization.CultureInfo.InvariantCulture), ids);
            Assert.Null(await system.GetUpdatedBatchJobAsync(TimeSpan.FromSeconds(2)));
        }
        finally
        {
            await EndAsync(system);
        }
    }

    [Theory]
    [EachObjectKind]
    public async Task An_owner_of_100_characters_works(KubernetesObjectKind kind)
    {
        var owner = new string('o', 50) + "." + new string('w', 49);
        var system = await StartAsync(kind, o => o with { Owner = owner });
        try
        {
            var id = await system.IssueBatchJobAsync("true", Batch.Job());
            var info = await Batch.NextAsync(system);
            Assert.Equal((id, BatchJobExitReason.Finished), (info.JobId, info.ExitReason));
            Assert.True(info.BackingId.Length <= 63, info.BackingId);
        }
        finally
        {
            await EndAsync(system);
        }
    }

    [Theory]
    [EachObjectKind]
    public async Task Two_hundred_jobs_eight_times_the_concurrency_limit_are_each_reported_exactly_once(KubernetesObjectKind kind)
    {
        // 200 jobs through 25 slots: each slot is reused eight times, so Jobs are created, watched, reported and deleted
        // while others of the run start and end around them. The real node, not the batch system, bounds how fast they
        // run (about one pod a second on two cores, shared with the rest of the suite), so more jobs here would only
        // cost CI time (500 took 11 min of the suite). Larger runs, 1,000 and 10,000 jobs on fake nodes, are bench/'s.
        var system = await StartAsync(kind, o => o with
        {
            // Up to 25 at once: every other limit above what these tiny jobs ask for (Toil's test disk maximum of 2001
            // bytes would let only two run at a time). With 100 at once the kubelet had 100 pods to create, and a pod
            // created beside them waited 25–43 s to start (so with the rest of the suite running, other tests' pods
            // passed the 120 s pod timeout and ended as Error); with 25 at once such a pod started in 2–5 s.
            MaxCores = 1000,
            MaxMemory = long.MaxValue / 8,
            MaxDisk = long.MaxValue / 8,
            MaxJobs = 25,
        });
        try
        {
            var issued = new HashSet<int>();
            for (var i = 0; i < 200; i++)
            {
                issued.Add(await system.IssueBatchJobAsync(i % 7 == 0 ? "exit 3" : "true", Batch.Job($"many-{i}", cores: 0.001, memory: 4 * 1024 * 1024)));
            }

            var seen = new List<UpdatedBatchJobInfo>();
            while (seen.Count < issued.Count)
            {
                var info = await system.GetUpdatedBatchJobAsync(TimeSpan.FromSeconds(120));
                Assert.True(info is not null, $"only {seen.Count} of {issued.Count} jobs were reported");
                seen.Add(info);
            }

            Assert.Equal(issued.Order(), seen.Select(s => s.JobId).Order());
            Assert.All(seen, s => Assert.Equal(s.JobId % 7 == 1 ? 3 : 0, s.ExitStatus));
            Assert.Null(await system.GetUpdatedBatchJobAsync(TimeSpan.FromSeconds(2)));
            Assert.Empty(await system.GetIssuedBatchJobIdsAsync());
        }
        finally
        {
            await EndAsync(system);
        }
    }

    [Theory]
    [EachObjectKind]
    public async Task A_new_batch_system_with_the_same_run_id_reattaches_without_resubmitting(KubernetesObjectKind kind)
    {
        var runId = "reattach-" + Guid.NewGuid().ToString("N")[..8];
        var first = await StartAsync(kind, o => o with { RunId = runId });
        var done = await first.IssueBatchJobAsync("exit 7", Batch.Job("done"));
        var longer = await first.IssueBatchJobAsync("sleep 8", Batch.Job("longer"));
        Assert.True(await Batch.EventuallyAsync(
            async () => (await Cluster.Client.CoreV1.ListNamespacedPodAsync(
                    Cluster.Namespace, labelSelector: $"hybridbatch.io/run={runId},hybridbatch.io/job-id={done}")).Items
                .Any(p => p.Status?.Phase == "Failed"),
            TimeSpan.FromSeconds(120)));
        await first.DisposeAsync();

        var second = await StartAsync(kind, o => o with { RunId = runId });
        try
        {
            Assert.Equal([done, longer], await second.GetIssuedBatchJobIdsAsync());
            var a = await Batch.NextAsync(second);
            Assert.Equal((done, 7, BatchJobExitReason.Failed), (a.JobId, a.ExitStatus, a.ExitReason));
            var b = await Batch.NextAsync(second);
            Assert.Equal((longer, 0), (b.JobId, b.ExitStatus));
            Assert.Null(await second.GetUpdatedBatchJobAsync(TimeSpan.FromSeconds(2)));

            // Ids continue after the adopted ones; nothing was created twice.
            var next = await second.IssueBatchJobAsync("true", Batch.Job("next"));
            Assert.True(next > longer);
            Assert.Equal(next, (await Batch.NextAsync(second)).JobId);
        }
        finally
        {
            await EndAsync(second);
        }
    }

    [Theory]
    [EachObjectKind]
    public async Task When_a_nodes_last_job_leaves_the_runs_work_directory_there_is_removed(KubernetesObjectKind kind)
    {
        var hostPath = Path.Combine(Path.GetTempPath(), "hybridbatch-hostpath-" + Guid.NewGuid().ToString("N")[..8]);
        var system = await StartAsync(kind, o => o with { HostPath = hostPath });
        var runDirectory = Path.Combine(hostPath, system.RunId);
        try
        {
            var id = await system.IssueBatchJobAsync("echo data > /var/lib/hybridbatch/result && sleep 4", Batch.Job("writer"));
            Assert.True(await Batch.EventuallyAsync(() => Task.FromResult(File.Exists(Path.Combine(runDirectory, "result"))), TimeSpan.FromSeconds(120)));
            Assert.Equal(id, (await Batch.NextAsync(system)).JobId);
            Assert.True(
                await Batch.EventuallyAsync(() => Task.FromResult(!Directory.Exists(runDirectory)), TimeSpan.FromSeconds(60)),
                $"{runDirectory} should be removed once the node's last job left");
        }
        finally
        {
            await EndAsync(system);
            if (Directory.Exists(hostPath))
            {
                Directory.Delete(hostPath, recursive: true);
            }
        }
    }

    [Fact]
    public async Task An_unreachable_cluster_or_a_bad_kubeconfig_is_a_clear_error()
    {
        var missing = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            KubernetesBatchSystem.CreateAsync(new KubernetesBatchSystemOptions { Kubeconfig = "/nonexistent/kubeconfig" }));
        Assert.Contains("does not exist", missing.Message);

        var garbage = Path.GetTempFileName();
        await File.WriteAllTextAsync(garbage, "this: [is not a kubeconfig");
        var bad = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            KubernetesBatchSystem.CreateAsync(new KubernetesBatchSystemOptions { Kubeconfig = garbage }));
        Assert.Contains("cannot be used", bad.Message);

        // A cluster address where nothing listens: the loopback port 1 refuses at once.
        var config = await File.ReadAllTextAsync(Cluster.KubeconfigPath);
        var unreachable = Path.GetTempFileName();
        await File.WriteAllTextAsync(unreachable, System.Text.RegularExpressions.Regex.Replace(config, @"server: \S+", "server: https://127.0.0.1:1"));
        var options = new KubernetesBatchSystemOptions { Kubeconfig = unreachable, Resilience = new() { RetryBudget = TimeSpan.FromSeconds(3) } };
        var down = await Assert.ThrowsAsync<InvalidOperationException>(() => KubernetesBatchSystem.CreateAsync(options));
        Assert.Contains("127.0.0.1:1", down.Message);

        var invalid = await Assert.ThrowsAsync<ArgumentException>(() =>
            KubernetesBatchSystem.CreateAsync(new KubernetesBatchSystemOptions { PodTimeout = TimeSpan.FromSeconds(-1), RunId = "not a label!" }));
        Assert.Contains("pod timeout", invalid.Message);
        Assert.Contains("run id", invalid.Message);
    }
}
