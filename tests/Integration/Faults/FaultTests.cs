using System.Diagnostics;
using System.Globalization;
using HybridBatch.Integration.BatchSystem;
using HybridBatch.Integration.Cluster;
using HybridBatch.Integration.Resilience;
using k8s;
using k8s.Models;
using Xunit.Abstractions;

namespace HybridBatch.Integration.Faults;

/// <summary>
/// Issue 8's faults injected into the real cluster mid-run. Each test runs a batch, injects its fault, and checks that
/// every ended job is reported once with its exit code, no killed job is reported, and nothing of the run is left
/// after shutdown. Disruptive ones restore the cluster (<c>cluster/local-cluster up</c>) before they end.
/// </summary>
[Collection(FaultsCollection.Name)]
[Trait("Category", "Faults")]
public sealed class FaultTests(LocalClusterFixture cluster, ITestOutputHelper output)
{
    // Jobs in flight with no result for this long are taken for lost; a slow machine just takes longer overall.
    private static readonly TimeSpan Stalled = TimeSpan.FromSeconds(120);

    // 36 jobs, the longest 25 s: all of them are done well within this.
    private static readonly TimeSpan AdoptedReported = TimeSpan.FromSeconds(240);

    private void Note(FaultRun run, string what) => output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} [t={run.Now}s] {what}");

    [Fact]
    public async Task Throttling_server_errors_resets_and_slow_answers_lose_and_duplicate_nothing()
    {
        var faults = new FaultInjectingHandler(
            new FaultRates(Throttle: 0.1, ServerError: 0.1, ResetAfterApplying: 0.05, Slow: 0.1)
            {
                RetryAfter = TimeSpan.FromSeconds(1),
                SlowDelay = TimeSpan.FromMilliseconds(500),
            },
            seed: 8)
        { Enabled = false };
        var run = await FaultRun.StartAsync(cluster, output, FaultRun.Options(cluster), [faults]);
        try
        {
            await run.IssueAsync(shortJobs: 40, sleepers: 3, longer: 3, longerSeconds: 15);
            Assert.True(await run.SleepersRunningAsync(TimeSpan.FromSeconds(120)));
            Assert.True(await run.ReportedAtLeastAsync(10, TimeSpan.FromSeconds(120)));

            var inFlight = run.InFlight;
            faults.Enabled = true;
            Note(run, $"faults on: 10% 429 (Retry-After 1 s), 10% 500/503, 5% reset after applying, 10% +500 ms; {inFlight} jobs in flight");
            await run.KillSleepersAsync();
            await run.IssueMoreAsync(20);
            await Task.Delay(TimeSpan.FromSeconds(20));
            faults.Enabled = false;
            var cleared = DateTime.UtcNow;
            Note(run, $"faults off after {faults.Injected} injected");

            await run.AllReportedAsync(Stalled);
            Assert.True(faults.Injected > 0);
            run.Check("429 + Retry-After, 500/503, resets after applying, slow answers (handler under the pipeline, 20 s)", inFlight + 20, run.FirstResultAfter(cleared));
        }
        finally
        {
            faults.Enabled = false;
            await run.EndAsync();
        }
    }

    [Fact]
    public async Task Watches_cut_mid_stream_lose_and_duplicate_nothing()
    {
        await using var relay = new TcpRelay(new Uri(cluster.Client.BaseUri.ToString()));
        var kubeconfig = relay.WriteKubeconfig(cluster.KubeconfigPath);
        var run = await FaultRun.StartAsync(cluster, output, FaultRun.Options(cluster, o => o with { Kubeconfig = kubeconfig }));
        try
        {
            await run.IssueAsync(shortJobs: 50, sleepers: 3, longer: 3, longerSeconds: 15);
            Assert.True(await run.SleepersRunningAsync(TimeSpan.FromSeconds(120)));
            Assert.True(await run.ReportedAtLeastAsync(5, TimeSpan.FromSeconds(120)));
            var inFlight = run.InFlight;
            var cuts = new List<DateTime>();
            for (var i = 0; i < 5; i++)
            {
                Note(run, $"cut {relay.CutAll()} connections");
                cuts.Add(DateTime.UtcNow);

                // New jobs right after each cut: their results can only come through the watches opened again.
                await run.IssueMoreAsync(8);
                if (i == 2)
                {
                    await run.KillSleepersAsync();
                }

                await Task.Delay(TimeSpan.FromSeconds(4));
            }

            await run.AllReportedAsync(Stalled);
            var recovery = cuts.Select(run.FirstResultAfter).Max();
            run.Check($"watch connections cut mid-stream (TCP relay, 5 cuts 4 s apart, {relay.Cuts} connections reset; 8 jobs issued after each)", inFlight + 40, recovery);
        }
        finally
        {
            await run.EndAsync();
            File.Delete(kubeconfig);
        }
    }

    [Fact]
    public async Task A_watch_resumed_from_an_expired_resource_version_relists_and_loses_and_duplicates_nothing()
    {
        if (!ClusterControl.Local)
        {
            output.WriteLine("not run: needs the local cluster's etcd (cluster/local-cluster on this machine)");
            return;
        }

        await using var relay = new TcpRelay(new Uri(cluster.Client.BaseUri.ToString()));
        var kubeconfig = relay.WriteKubeconfig(cluster.KubeconfigPath);
        var expiring = new ExpiringWatchHandler();
        var run = await FaultRun.StartAsync(cluster, output, FaultRun.Options(cluster, o => o with { Kubeconfig = kubeconfig }), [expiring]);
        try
        {
            await run.IssueAsync(shortJobs: 50, sleepers: 3, longer: 3, longerSeconds: 15);
            Assert.True(await run.SleepersRunningAsync(TimeSpan.FromSeconds(120)));
            Assert.True(await run.ReportedAtLeastAsync(5, TimeSpan.FromSeconds(120)));
            var inFlight = run.InFlight;

            // Away from the API server while the run's objects change: jobs end, and killed ones are deleted.
            Note(run, $"relay paused: {relay.Pause()} connections cut");
            var kill = run.KillSleepersAsync();
            await Task.Delay(TimeSpan.FromSeconds(8));
            await ClusterControl.CompactAsync(output);

            // The API server's watch cache still holds recent versions after an etcd compaction, so a resumed watch may
            // well be served; expire the first resumed pod watch as the server does once it no longer can.
            expiring.Arm("pods");
            relay.Resume();
            var cleared = DateTime.UtcNow;
            Note(run, "relay resumed");
            await kill;

            await run.AllReportedAsync(Stalled);
            var relists = run.Log.Count(l => l.Contains("410 Gone", StringComparison.Ordinal));
            Note(run, $"{expiring.Expired} watches answered 410 by the handler; {relists} relists after 410 logged");
            Assert.True(relists >= 1, "the pod watch was not resumed from an expired resource version");
            run.Check("watch resumed from an expired resourceVersion (relay paused 8 s, etcd compacted, 410 Expired on resume)", inFlight, run.FirstResultAfter(cleared));
        }
        finally
        {
            relay.Resume();
            await run.EndAsync();
            File.Delete(kubeconfig);
        }
    }

    [Theory]
    [InlineData("kube-apiserver")]
    [InlineData("etcd")]
    public async Task A_control_plane_component_killed_and_restarted_loses_and_duplicates_nothing(string component)
    {
        if (!ClusterControl.Local)
        {
            output.WriteLine("not run: needs the local cluster (cluster/local-cluster on this machine)");
            return;
        }

        var run = await FaultRun.StartAsync(cluster, output, FaultRun.Options(cluster));
        try
        {
            await run.IssueAsync(shortJobs: 40, sleepers: 3, longer: 3, longerSeconds: 20);
            Assert.True(await run.SleepersRunningAsync(TimeSpan.FromSeconds(120)));
            Assert.True(await run.ReportedAtLeastAsync(5, TimeSpan.FromSeconds(120)));
            var inFlight = run.InFlight;

            ClusterControl.Kill(component, output);
            var killed = DateTime.UtcNow;
            Note(run, $"{component} killed; {inFlight} jobs in flight");
            var more = run.IssueMoreAsync(10);
            var kill = run.KillSleepersAsync();
            await Task.Delay(TimeSpan.FromSeconds(5));
            await ClusterControl.UpAsync(output);
            var cleared = DateTime.UtcNow;
            Note(run, $"{component} back after {(cleared - killed).TotalSeconds:F1} s");
            await more;
            await kill;

            await run.AllReportedAsync(Stalled);
            run.Check($"{component} SIGKILLed, restarted by local-cluster up ({(cleared - killed).TotalSeconds:F0} s down)", inFlight + 10, run.FirstResultAfter(cleared));
        }
        finally
        {
            await ClusterControl.UpAsync(output);
            await run.EndAsync();
        }
    }

    [Fact]
    public async Task Jobs_issued_steadily_across_an_API_server_restart_all_end_as_their_commands_say()
    {
        if (!ClusterControl.Local)
        {
            output.WriteLine("not run: needs the local cluster (cluster/local-cluster on this machine)");
            return;
        }

        // As a workflow leader does: a job every half second, from well before the API server dies until well after
        // it is back. A restarting API server refuses with 403 until its authorization caches are filled; none of
        // those refusals may end a job. (Every quarter second issued twice the jobs for the same moments covered, and
        // the node, at about a pod a second, took 10 min to run them.)
        var run = await FaultRun.StartAsync(cluster, output, FaultRun.Options(cluster));
        using var issuing = new CancellationTokenSource();
        var issued = 0;
        var issuer = Task.Run(async () =>
        {
            using var tick = new PeriodicTimer(TimeSpan.FromMilliseconds(500));
            while (await tick.WaitForNextTickAsync(issuing.Token).ConfigureAwait(false))
            {
                await run.IssueMoreAsync(1);
                Interlocked.Increment(ref issued);
            }
        });
        try
        {
            Assert.True(await run.ReportedAtLeastAsync(10, TimeSpan.FromSeconds(120)), "no job finished before the fault");
            var inFlight = run.InFlight;

            ClusterControl.Kill("kube-apiserver", output);
            var killed = DateTime.UtcNow;
            Note(run, $"kube-apiserver killed; {Volatile.Read(ref issued)} issued so far, {inFlight} in flight");
            await ClusterControl.UpAsync(output);
            var back = DateTime.UtcNow;
            Note(run, $"kube-apiserver back after {(back - killed).TotalSeconds:F1} s");

            // Well after it is back: as long again as it was away, at least 20 s.
            var target = Volatile.Read(ref issued) + Math.Max(40, (int)((back - killed).TotalSeconds * 2));
            Assert.True(
                await Batch.EventuallyAsync(() => Task.FromResult(Volatile.Read(ref issued) >= target), TimeSpan.FromSeconds(180)),
                "the issuer stalled");
            await issuing.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => issuer);
            Note(run, $"{Volatile.Read(ref issued)} jobs issued in all");

            await run.AllReportedAsync(Stalled);
            run.Check(
                $"kube-apiserver SIGKILLed while a job is issued every 0.5 s ({(back - killed).TotalSeconds:F0} s down, {Volatile.Read(ref issued)} jobs)",
                Volatile.Read(ref issued),
                run.FirstResultAfter(back));
        }
        finally
        {
            await issuing.CancelAsync();
            await ClusterControl.UpAsync(output);
            await run.EndAsync();
        }
    }

    [Theory]
    [EachObjectKind]
    public async Task A_node_lost_when_its_kubelet_dies_reports_its_running_jobs_Lost_once(KubernetesObjectKind kind)
    {
        if (!ClusterControl.Local)
        {
            output.WriteLine("not run: needs the local cluster (cluster/local-cluster on this machine)");
            return;
        }

        await using var fake = await ClusterControl.FakeNode.StartAsync(output);
        output.WriteLine($"fake always-Ready node {fake.Name} registered");
        // Pods issued while the node is away wait unschedulable; they must not time out before it returns.
        var run = await FaultRun.StartAsync(cluster, output, FaultRun.Options(cluster, o => o with { PodTimeout = TimeSpan.FromSeconds(900), ObjectKind = kind }));
        var sleepers = new List<int>();
        try
        {
            await run.IssueAsync(shortJobs: 30, sleepers: 6);
            Assert.True(await run.SleepersRunningAsync(TimeSpan.FromSeconds(120)));
            sleepers.AddRange(run.Sleepers);
            Assert.True(await run.ReportedAtLeastAsync(30, TimeSpan.FromSeconds(120)));
            var inFlight = run.InFlight;

            ClusterControl.Kill("kubelet", output);
            var killed = DateTime.UtcNow;
            Note(run, $"kubelet killed; {inFlight} jobs in flight (sleepers {string.Join(",", sleepers)})");

            // Issued while the node still looks Ready: scheduled onto it, they never start, and go with it (Lost once).
            var onDyingNode = await run.IssueMoreAsync(5);

            // Kill two of the lost node's jobs while it is away: they must never be reported, even when evicted.
            var killedIds = sleepers.Take(2).ToArray();
            await run.KillAsync(killedIds);
            var running = sleepers.Skip(2).ToHashSet();
            var lostIds = running.Concat(onDyingNode).ToHashSet();
            var allLost = await Batch.EventuallyAsync(
                () => Task.FromResult(run.Reported.Count(r => running.Contains(r.Info.JobId)) == running.Count),
                TimeSpan.FromSeconds(180));
            var lostAt = run.Reported.Where(r => running.Contains(r.Info.JobId)).Select(r => r.At).DefaultIfEmpty(DateTime.UtcNow).Max();
            Note(run, $"{run.Reported.Count(r => running.Contains(r.Info.JobId))} of {running.Count} running jobs reported after {(lostAt - killed).TotalSeconds:F1} s; of the 5 issued in the grace period {run.Reported.Count(r => onDyingNode.Contains(r.Info.JobId) && r.Info.ExitReason == BatchJobExitReason.Lost)} Lost");
            Assert.True(allLost, "the lost node's jobs were not reported within 180 s");

            // Issued once the node is known lost: they wait unschedulable for it to return, then run normally.
            await run.IssueMoreAsync(10);

            await ClusterControl.UpAsync(output);
            var cleared = DateTime.UtcNow;
            Note(run, $"kubelet back after {(cleared - killed).TotalSeconds:F1} s");
            await run.AllReportedAsync(Stalled);

            // The run's killed sleepers are not reported; exactly the other ones are, Lost, once.
            run.Check(
                $"kubelet SIGKILLed, node lost (fake 2nd node Ready), {kind} mode; time to Lost {(lostAt - killed).TotalSeconds:F0} s",
                inFlight + 15,
                lostAt - killed,
                r => lostIds.Contains(r.JobId) && r.ExitReason == BatchJobExitReason.Lost);
            Assert.Equal(sleepers.Count - 2, run.Reported.Count(r => r.Info.ExitReason == BatchJobExitReason.Lost && sleepers.Contains(r.Info.JobId)));
            Assert.All(run.Reported.Where(r => sleepers.Contains(r.Info.JobId)), r => Assert.Equal(BatchJobExitReason.Lost, r.Info.ExitReason));
            Assert.DoesNotContain(run.Reported, r => killedIds.Contains(r.Info.JobId));
        }
        finally
        {
            await ClusterControl.UpAsync(output);
            await run.EndAsync();
        }
    }

    [Fact]
    public async Task On_a_full_node_the_cleanup_of_its_last_job_waits_for_room_instead_of_failing_and_then_removes_the_directory()
    {
        var hostPath = Path.Combine(Path.GetTempPath(), "hybridbatch-fullnode-" + Guid.NewGuid().ToString("N")[..8]);
        await using var system = await KubernetesBatchSystem.CreateAsync(Batch.Options(cluster, o => o with { HostPath = hostPath }), Batch.Logging(output));
        var runDirectory = Path.Combine(hostPath, system.RunId);
        var filler = "filler-" + Guid.NewGuid().ToString("N")[..8];
        // The node and every namespace's pods are the admin's to see; the product identity sees its namespace only.
        using var admin = Admin.Client();
        try
        {
            // The job holds on until the node is full, so its end (and the node's cleanup) comes while it is. It asks for
            // 1m of CPU: what its end gives back is less than the cleanup pod's 10m, so the node stays full for that.
            var id = await system.IssueBatchJobAsync(
                "touch /var/lib/hybridbatch/started && while [ ! -e /var/lib/hybridbatch/go ]; do sleep 0.2; done", TestJobs.Job("last", cores: 0.001));
            Assert.True(await Batch.EventuallyAsync(() => Task.FromResult(File.Exists(Path.Combine(runDirectory, "started"))), TimeSpan.FromSeconds(120)));
            var node = (await cluster.Client.CoreV1.ListNamespacedPodAsync(cluster.Namespace, labelSelector: $"hybridbatch.io/run={system.RunId}")).Items.Single().Spec.NodeName;

            // Fill the node: a pod outside the run asking for all the CPU the node's other pods leave. This collection runs
            // alone, so nothing else comes or goes meanwhile.
            var allocatable = (await admin.CoreV1.ReadNodeAsync(node)).Status.Allocatable["cpu"].ToDecimal();
            var pods = (await admin.CoreV1.ListPodForAllNamespacesAsync(fieldSelector: $"spec.nodeName={node}")).Items
                .Where(p => p.Status?.Phase is not ("Succeeded" or "Failed"));
            var requested = pods.SelectMany(p => p.Spec.Containers).Sum(c => c.Resources?.Requests?.TryGetValue("cpu", out var q) == true ? q.ToDecimal() : 0m);
            var free = (long)((allocatable - requested) * 1000m);
            output.WriteLine($"node {node}: {allocatable} CPU allocatable, {requested} requested; the filler asks for {free}m");
            Assert.True(free > 0, "the node has no CPU left before the filler: something else is running beside the fault tests");
            await admin.CoreV1.CreateNamespacedPodAsync(
                new V1Pod
                {
                    Metadata = new V1ObjectMeta { Name = filler },
                    Spec = new V1PodSpec
                    {
                        NodeName = node,
                        RestartPolicy = "Never",
                        TerminationGracePeriodSeconds = 0,
                        Containers =
                        [
                            new V1Container
                            {
                                Name = "filler",
                                Image = KubernetesBatchSystemOptions.DefaultImage,
                                Command = ["sleep", "3600"],
                                Resources = new V1ResourceRequirements { Requests = new Dictionary<string, ResourceQuantity> { ["cpu"] = new($"{free}m") } },
                            },
                        ],
                    },
                },
                cluster.Namespace);
            Assert.True(await Batch.EventuallyAsync(
                async () => (await admin.CoreV1.ReadNamespacedPodAsync(filler, cluster.Namespace)).Status?.Phase == "Running",
                TimeSpan.FromSeconds(120)), "the filler pod did not start");

            await File.WriteAllTextAsync(Path.Combine(runDirectory, "go"), "");
            Assert.Equal(id, (await Batch.NextAsync(system)).JobId);

            // The node's cleanup Job is made, and its pod waits for room: unscheduled, not failed.
            var cleanupSelector = $"hybridbatch.io/run={system.RunId},hybridbatch.io/cleanup";
            Assert.True(await Batch.EventuallyAsync(
                async () => (await cluster.Client.CoreV1.ListNamespacedPodAsync(cluster.Namespace, labelSelector: cleanupSelector)).Items
                    .Any(p => p.Status?.Conditions?.Any(c => c.Type == "PodScheduled" && c.Status == "False") == true),
                TimeSpan.FromSeconds(60)), "the cleanup pod did not wait unscheduled for room on the full node");
            var cleanups = (await cluster.Client.BatchV1.ListNamespacedJobAsync(cluster.Namespace, labelSelector: cleanupSelector)).Items;
            Assert.All(cleanups, j => Assert.True((j.Status?.Failed ?? 0) == 0, $"cleanup Job {j.Name()} has failed pods on the full node"));
            Assert.True(Directory.Exists(runDirectory));

            await admin.CoreV1.DeleteNamespacedPodAsync(filler, cluster.Namespace, gracePeriodSeconds: 0);
            Assert.True(
                await Batch.EventuallyAsync(() => Task.FromResult(!Directory.Exists(runDirectory)), TimeSpan.FromSeconds(120)),
                $"{runDirectory} should be removed once the node has room again");
            cleanups = (await cluster.Client.BatchV1.ListNamespacedJobAsync(cluster.Namespace, labelSelector: cleanupSelector)).Items;
            Assert.All(cleanups, j => Assert.True((j.Status?.Failed ?? 0) == 0, $"cleanup Job {j.Name()} has failed pods"));
        }
        finally
        {
            try
            {
                await admin.CoreV1.DeleteNamespacedPodAsync(filler, cluster.Namespace, gracePeriodSeconds: 0);
            }
            catch (k8s.Autorest.HttpOperationException)
            {
            }

            await system.ShutdownAsync();
            if (Directory.Exists(hostPath))
            {
                Directory.Delete(hostPath, recursive: true);
            }
        }
    }

    [Fact]
    public async Task A_client_killed_with_SIGKILL_is_replaced_by_one_that_reattaches_without_resubmitting()
    {
        var runId = "crash-" + Guid.NewGuid().ToString("N")[..8];
        const int shortJobs = 30, longJobs = 6, longSeconds = 25, collected = 5;
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[]
                 {
                     Path.Combine(AppContext.BaseDirectory, "HybridBatch.Integration.dll"), "fault-client", cluster.KubeconfigPath, cluster.Namespace,
                     runId, $"{shortJobs}", $"{longJobs}", $"{longSeconds}", $"{collected}",
                 })
        {
            start.ArgumentList.Add(arg);
        }

        var expected = new Dictionary<int, int>();
        var reportedByChild = new Dictionary<int, int>();
        var ready = new TaskCompletionSource();
        using var child = Process.Start(start)!;
        child.OutputDataReceived += (_, e) =>
        {
            var words = e.Data?.Split(' ') ?? [];
            lock (expected)
            {
                switch (words)
                {
                    case ["issued", var id, var code, _]:
                        expected[int.Parse(id, CultureInfo.InvariantCulture)] = int.Parse(code, CultureInfo.InvariantCulture);
                        break;
                    case ["reported", var id, var code, _]:
                        reportedByChild[int.Parse(id, CultureInfo.InvariantCulture)] = int.Parse(code, CultureInfo.InvariantCulture);
                        break;
                    case ["ready"]:
                        ready.TrySetResult();
                        break;
                }
            }
        };
        child.ErrorDataReceived += (_, e) => output.WriteLine($"child: {e.Data}");
        child.BeginOutputReadLine();
        child.BeginErrorReadLine();
        var selector = $"hybridbatch.io/run={runId}";
        KubernetesBatchSystem? second = null;
        try
        {
            await ready.Task.WaitAsync(TimeSpan.FromSeconds(180));
            // The collected jobs' Jobs are deleted right after collection; wait for that, and for the long ones to run.
            var settled = await Batch.EventuallyAsync(
                async () =>
                {
                    var jobs = (await cluster.Client.BatchV1.ListNamespacedJobAsync(cluster.Namespace, labelSelector: selector)).Items;
                    var pods = (await cluster.Client.CoreV1.ListNamespacedPodAsync(cluster.Namespace, labelSelector: selector)).Items;
                    return jobs.Count == shortJobs + longJobs - collected && pods.Count(p => p.Status?.Phase == "Running") >= 1;
                },
                TimeSpan.FromSeconds(60));
            Assert.True(settled, "the child's Jobs did not settle");

            child.Kill(entireProcessTree: true); // SIGKILL
            await child.WaitForExitAsync();
            var killed = DateTime.UtcNow;
            var sinceKill = Stopwatch.StartNew();
            var jobsAtKill = (await cluster.Client.BatchV1.ListNamespacedJobAsync(cluster.Namespace, labelSelector: selector)).Items;
            var uids = jobsAtKill.Select(j => j.Metadata.Uid).ToHashSet();
            var running = (await cluster.Client.CoreV1.ListNamespacedPodAsync(cluster.Namespace, labelSelector: selector)).Items
                .Count(p => p.Status?.Phase is "Running" or "Pending");
            output.WriteLine($"child killed with SIGKILL: {expected.Count} issued, {reportedByChild.Count} reported by it, {jobsAtKill.Count} Jobs left, {running} pods running");

            var run = await FaultRun.StartAsync(cluster, output, FaultRun.Options(cluster, o => o with { RunId = runId }));
            second = run.System;
            var reattach = sinceKill.Elapsed;
            var adopted = await run.System.GetIssuedBatchJobIdsAsync();
            Assert.Equal(expected.Keys.Except(reportedByChild.Keys).Order(), adopted.Order());

            var newJobs = 0;
            var done = await Batch.EventuallyAsync(
                async () =>
                {
                    var now = (await cluster.Client.BatchV1.ListNamespacedJobAsync(cluster.Namespace, labelSelector: selector)).Items;
                    newJobs += now.Count(j => !uids.Contains(j.Metadata.Uid));
                    uids.UnionWith(now.Select(j => j.Metadata.Uid));
                    return run.Reported.Count >= adopted.Count;
                },
                AdoptedReported);
            await Task.Delay(TimeSpan.FromSeconds(2));
            Assert.True(done, $"only {run.Reported.Count} of {adopted.Count} adopted jobs were reported");
            Assert.Equal(0, newJobs);

            var results = run.Reported.Select(r => r.Info).ToList();
            var twice = results.GroupBy(r => r.JobId).Count(g => g.Count() > 1) + results.Count(r => reportedByChild.ContainsKey(r.JobId));
            var lost = expected.Keys.Except(reportedByChild.Keys).Except(results.Select(r => r.JobId)).Count()
                + results.Count(r => r.ExitReason is BatchJobExitReason.Lost or BatchJobExitReason.Error);
            var row = $"| client (library) SIGKILLed, new batch system re-attaches by run id; {newJobs} Jobs resubmitted | {adopted.Count} | {lost} | {twice} | 0 | {(run.Reported.Select(r => r.At).DefaultIfEmpty(DateTime.UtcNow).Min() - killed).TotalSeconds:F1} s from the kill to the first result (re-attached {reattach.TotalSeconds:F1} s after it) |";
            output.WriteLine("FAULT-ROW " + row);
            File.AppendAllText(Path.Combine(Path.GetTempPath(), "hybridbatch-fault-rows.md"), $"{DateTime.UtcNow:O} {row}{Environment.NewLine}");
            Assert.Equal(0, twice);
            Assert.Equal(0, lost);
            Assert.All(results, r => Assert.Equal(expected[r.JobId], r.ExitStatus));
            Assert.All(reportedByChild, kv => Assert.Equal(expected[kv.Key], kv.Value));
            await run.EndAsync();
            second = null;
        }
        finally
        {
            if (!child.HasExited)
            {
                child.Kill(entireProcessTree: true);
            }

            if (second is not null)
            {
                await second.ShutdownAsync();
                await second.DisposeAsync();
            }
            else
            {
                // Whatever the child left behind, should the test fail before the second batch system took over.
                await cluster.Client.BatchV1.DeleteCollectionNamespacedJobAsync(
                    cluster.Namespace, new k8s.Models.V1DeleteOptions { PropagationPolicy = "Background" }, labelSelector: selector);
            }
        }
    }
}
