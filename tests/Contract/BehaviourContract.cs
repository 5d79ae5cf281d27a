namespace HybridBatch.Contract;

/// <summary>
/// What HybridBatch promises beyond Toil's tests: exact exit codes and reasons, queueing and killing, scale,
/// re-attaching, shutting down.
/// </summary>
/// <param name="cluster">The cluster under test.</param>
public abstract class BehaviourContract(IClusterUnderTest cluster) : ContractSuite(cluster)
{
    [Fact]
    public async Task Exit_codes_come_back_exactly_with_the_matching_reason()
    {
        var system = await StartAsync();
        try
        {
            var expected = new Dictionary<int, int>();
            foreach (var code in new[] { 0, 1, 42, 255 })
            {
                expected[await system.IssueBatchJobAsync(Commands.Exit(code), TestJobs.Job($"exit-{code}"))] = code;
            }

            for (var i = 0; i < expected.Count; i++)
            {
                var info = await NextAsync(system);
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

    [Fact]
    public async Task A_container_over_its_memory_limit_is_reported_as_MemLimit()
    {
        // No overhead, so 32 MiB is the memory limit; the disk is 16 MiB: with the test job's 1000 bytes and no overhead the
        // kubelet evicts any pod for its own few KiB of logs and mounts, and the eviction could come before the OOM kill.
        var system = await StartAsync(o => o with { ResourceOverhead = 0, MaxDisk = 16 * 1024 * 1024 });
        try
        {
            var id = await system.IssueBatchJobAsync(Commands.OverMemory, TestJobs.Job("oom", memory: 32 * 1024 * 1024, disk: 16 * 1024 * 1024));
            var info = await NextAsync(system);
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

    [Fact]
    public async Task Shutting_down_leaves_no_Job_and_no_pod_of_the_run()
    {
        // Three at once by --maxJobs alone (Toil's test disk maximum of 2001 bytes would let only two of them run).
        var system = await StartAsync(o => o with { MaxJobs = 3, MaxCores = 1000, MaxMemory = long.MaxValue / 8, MaxDisk = long.MaxValue / 8 });
        try
        {
            // Running, finished but not collected, and queued behind --maxJobs when shutdown comes.
            var sleepers = new[]
            {
                await system.IssueBatchJobAsync(Commands.UntilStopped, TestJobs.Job("sleeper-1")),
                await system.IssueBatchJobAsync(Commands.UntilStopped, TestJobs.Job("sleeper-2")),
            };
            var done = await system.IssueBatchJobAsync(Commands.Exit(0), TestJobs.Job("done"));
            await system.IssueBatchJobAsync(Commands.UntilStopped, TestJobs.Job("queued"));
            Assert.True(await EventuallyAsync(
                async () =>
                {
                    var running = await system.GetRunningBatchJobIdsAsync();
                    var pods = await Cluster.PodsOfRunAsync(system.RunId);
                    return sleepers.All(running.ContainsKey) && pods.Any(p => p.JobId == done && p.Phase == "Succeeded");
                },
                Cluster.Patience));
            Assert.NotEmpty(await Cluster.ObjectsOfRunAsync(system.RunId));

            await system.ShutdownAsync();

            Assert.Empty(await Cluster.ObjectsOfRunAsync(system.RunId));
            Assert.Empty(await Cluster.PodsOfRunAsync(system.RunId));
            Assert.Empty(await system.GetIssuedBatchJobIdsAsync());
        }
        finally
        {
            await EndAsync(system);
        }
    }

    [Fact]
    public async Task A_queued_job_killed_before_launch_is_never_created()
    {
        var system = await StartAsync(o => o with { MaxJobs = 1 });
        try
        {
            var running = await system.IssueBatchJobAsync(Commands.UntilStopped, TestJobs.Job("holder"));
            var queued = await system.IssueBatchJobAsync(Commands.Exit(0), TestJobs.Job("queued"));
            Assert.Equal([running, queued], await system.GetIssuedBatchJobIdsAsync());

            await system.KillBatchJobsAsync([queued]);
            Assert.Equal([running], await system.GetIssuedBatchJobIdsAsync());
            await system.KillBatchJobsAsync([running]);

            // Capacity is free again: a new job runs, and the killed queued one never appears in the cluster.
            var next = await system.IssueBatchJobAsync(Commands.Exit(0), TestJobs.Job("next"));
            Assert.Equal(next, (await NextAsync(system)).JobId);
            Assert.DoesNotContain(queued, (await Cluster.ObjectsOfRunAsync(system.RunId)).Select(o => o.JobId));
            Assert.Null(await system.GetUpdatedBatchJobAsync(TimeSpan.FromSeconds(2)));
        }
        finally
        {
            await EndAsync(system);
        }
    }

    [Fact]
    public async Task A_job_killed_once_its_pod_ended_but_before_it_was_collected_is_never_returned()
    {
        // The kill races the news of the job's end: whether the batch system has learned of it yet or not when the kill
        // comes, a killed job is not returned. (Waiting to see the job in the running set first was a race of its own: in
        // CI the kubelet reported the one-second job's pod Pending at 13:58:19.7 and next Succeeded at 13:58:22.4, never
        // Running, so the job was never in the running set; audit log.)
        var system = await StartAsync();
        try
        {
            var ending = await system.IssueBatchJobAsync(Commands.Sleep(1), TestJobs.Job("ending"));
            var other = await system.IssueBatchJobAsync(Commands.Sleep(3), TestJobs.Job("other"));
            Assert.True(await EventuallyAsync(
                async () => (await Cluster.PodsOfRunAsync(system.RunId)).Any(p => p.JobId == ending && p.Phase == "Succeeded"),
                Cluster.Patience));

            await system.KillBatchJobsAsync([ending]);

            Assert.Equal(other, (await NextAsync(system)).JobId);
            Assert.Null(await system.GetUpdatedBatchJobAsync(TimeSpan.FromSeconds(2)));
            Assert.Empty(await system.GetIssuedBatchJobIdsAsync());
        }
        finally
        {
            await EndAsync(system);
        }
    }

    [Fact]
    public async Task An_owner_of_100_characters_works()
    {
        var owner = new string('o', 50) + "." + new string('w', 49);
        var system = await StartAsync(o => o with { Owner = owner });
        try
        {
            var id = await system.IssueBatchJobAsync(Commands.Exit(0), TestJobs.Job());
            var info = await NextAsync(system);
            Assert.Equal((id, BatchJobExitReason.Finished), (info.JobId, info.ExitReason));
            Assert.True(info.BackingId.Length <= 63, info.BackingId);
        }
        finally
        {
            await EndAsync(system);
        }
    }

    [Fact]
    public async Task Many_jobs_eight_times_the_concurrency_limit_are_each_reported_exactly_once()
    {
        // The cluster's many jobs through a concurrency of an eighth of them: each slot is reused eight times, so jobs are
        // created, watched, reported and deleted while others of the run start and end around them. On the real node (the
        // real cluster runs 200) the node, not the batch system, bounds how fast they run (about one pod a second on two
        // cores, shared with the rest of the suite), so more jobs there would only cost CI time (500 took 11 min). Larger
        // runs, 1,000 and 10,000 jobs on fake nodes, are bench/'s.
        var count = Cluster.ManyJobs;
        var system = await StartAsync(o => o with
        {
            // Every other limit above what these tiny jobs ask for (Toil's test disk maximum of 2001 bytes would let only
            // two run at a time). With 100 at once the kubelet had 100 pods to create, and a pod created beside them waited
            // 25–43 s to start (so with the rest of the suite running, other tests' pods passed the 120 s pod timeout and
            // ended as Error); with 25 at once such a pod started in 2–5 s.
            MaxCores = 1000,
            MaxMemory = long.MaxValue / 8,
            MaxDisk = long.MaxValue / 8,
            MaxJobs = count / 8,
        });
        try
        {
            var issued = new HashSet<int>();
            for (var i = 0; i < count; i++)
            {
                issued.Add(await system.IssueBatchJobAsync(Commands.Exit(i % 7 == 0 ? 3 : 0), TestJobs.Job($"many-{i}", cores: 0.001, memory: 4 * 1024 * 1024)));
            }

            var seen = new List<UpdatedBatchJobInfo>();
            while (seen.Count < issued.Count)
            {
                var info = await system.GetUpdatedBatchJobAsync(Cluster.Patience);
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

    [Fact]
    public async Task A_new_batch_system_with_the_same_run_id_reattaches_without_resubmitting()
    {
        var runId = "reattach-" + Guid.NewGuid().ToString("N")[..8];
        var first = await StartAsync(o => o with { RunId = runId });
        var done = await first.IssueBatchJobAsync(Commands.Exit(7), TestJobs.Job("done"));
        var longer = await first.IssueBatchJobAsync(Commands.Sleep(8), TestJobs.Job("longer"));
        Assert.True(await EventuallyAsync(
            async () => (await Cluster.PodsOfRunAsync(runId)).Any(p => p.JobId == done && p.Phase == "Failed"),
            Cluster.Patience));
        await first.DisposeAsync();

        var second = await StartAsync(o => o with { RunId = runId });
        try
        {
            Assert.Equal([done, longer], await second.GetIssuedBatchJobIdsAsync());
            var a = await NextAsync(second);
            Assert.Equal((done, 7, BatchJobExitReason.Failed), (a.JobId, a.ExitStatus, a.ExitReason));
            var b = await NextAsync(second);
            Assert.Equal((longer, 0), (b.JobId, b.ExitStatus));
            Assert.Null(await second.GetUpdatedBatchJobAsync(TimeSpan.FromSeconds(2)));

            // Ids continue after the adopted ones; nothing was created twice.
            var next = await second.IssueBatchJobAsync(Commands.Exit(0), TestJobs.Job("next"));
            Assert.True(next > longer);
            Assert.Equal(next, (await NextAsync(second)).JobId);
        }
        finally
        {
            await EndAsync(second);
        }
    }
}
