using HybridBatch.Daemon.Jobs;
using HybridBatch.Integration.Cluster;
using k8s;
using k8s.Models;
using Xunit.Abstractions;

namespace HybridBatch.Integration.Daemon;

/// <summary>
/// The jobs file's <c>retry:</c> policies against the cluster: which endings are run again, how often, with how much
/// memory, what the summary says of each attempt, and the policies that are refused before anything is created.
/// </summary>
public sealed class RunRetryTests(LocalClusterFixture cluster, ITestOutputHelper output) : IClassFixture<LocalClusterFixture>
{
    private Task<(int Status, string Output)> RunAsync(string fileText, params string[] extra) =>
        RunCommandTests.RunAsync(cluster, output, fileText, extra: extra);

    // The jobs' Kubernetes Jobs created in this class's namespace since a moment (node cleanups aside).
    private async Task<IList<V1Job>> JobsCreatedSinceAsync(DateTime since) =>
        [.. (await cluster.Client.BatchV1.ListNamespacedJobAsync(cluster.Namespace, labelSelector: "hybridbatch.io/job-id")).Items
            .Where(j => j.Metadata.CreationTimestamp >= since.AddSeconds(-1))];

    // The summary row of a job: the table's line that starts with its name.
    private static string Row(string text, string job) =>
        Assert.Single(text.Split('\n'), l => l.TrimStart('│', '|', ' ').StartsWith(job + " ", StringComparison.Ordinal));

    [Fact]
    public async Task A_job_over_its_memory_limit_succeeds_on_its_second_attempt_with_twice_the_memory()
    {
        // No overhead, so the limit is the request: dd's 48 MiB buffer does not fit in 32Mi and fits in 64Mi.
        var (status, text) = await RunAsync("""
            resourceOverhead: 0
            jobs:
              - name: grows
                memory: 32Mi
                command: dd if=/dev/zero of=/dev/null bs=48M count=1
                retry: {on: [memlimit], attempts: 3, memory: {factor: 2, max: 256Mi}}
            """);

        Assert.Equal(RunCommand.Success, status);
        var row = Row(text, "grows");
        Assert.Contains("finished", row);
        Assert.Contains("2: OOM 32Mi, finished 64Mi", row);
        Assert.Contains("grows: OOM, exit 137: retrying with 64Mi of memory (attempt 2 of 3)", text);
        Assert.Contains("1 job(s): 1 succeeded, 0 failed or killed, 1 retry", text);
    }

    [Fact]
    public async Task A_job_out_of_memory_at_the_policy_maximum_is_not_retried_and_the_summary_says_so()
    {
        var (status, text) = await RunAsync("""
            resourceOverhead: 0
            jobs:
              - name: capped
                memory: 32Mi
                command: dd if=/dev/zero of=/dev/null bs=96M count=1
                retry: {on: [memlimit], attempts: 5, memory: {factor: 2, max: 48Mi}}
            """);

        Assert.Equal(RunCommand.JobFailed, status);
        var row = Row(text, "capped");
        Assert.Contains("2: OOM 32Mi, OOM 48Mi", row);
        Assert.Contains("not retried: out of memory at 48Mi, the retry policy's maximum memory", row);
    }

    [Fact]
    public async Task A_job_whose_Kubernetes_Job_is_deleted_from_outside_is_retried_once_and_succeeds()
    {
        var admin = Admin.Client();
        var run = RunAsync("""
            resourceOverhead: 16Mi
            jobs:
              - name: deleted
                command: sleep 6
                retry: {on: [lost], attempts: 3}
            """);

        // This class's namespace holds only this test's jobs: the first pod to run is the first attempt's.
        V1Pod? pod = null;
        var running = await BatchSystem.Batch.EventuallyAsync(
            async () =>
            {
                pod = (await admin.CoreV1.ListNamespacedPodAsync(cluster.Namespace, labelSelector: "hybridbatch.io/job-id")).Items
                    .FirstOrDefault(p => p.Status?.Phase == "Running");
                return pod is not null || run.IsCompleted;
            },
            TimeSpan.FromSeconds(120));
        Assert.True(running && pod is not null, "the job's pod never ran");
        var job = pod.Metadata.OwnerReferences.Single(o => o.Kind == "Job").Name;
        await admin.BatchV1.DeleteNamespacedJobAsync(job, cluster.Namespace, propagationPolicy: "Background");

        var (status, text) = await run;
        Assert.Equal(RunCommand.Success, status);
        var row = Row(text, "deleted");
        Assert.Contains("2: lost, finished", row);
        Assert.Contains("deleted: lost, exit 255: retrying (attempt 2 of 3)", text);
    }

    [Fact]
    public async Task A_failed_command_is_not_retried_when_the_policy_does_not_list_failed()
    {
        var (status, text) = await RunAsync("""
            resourceOverhead: 16Mi
            jobs:
              - name: exits-3
                command: exit 3
                retry: {on: [lost, error, memlimit], attempts: 3}
            """);

        Assert.Equal(RunCommand.JobFailed, status);
        var row = Row(text, "exits-3");
        Assert.Contains(" 3 ", row);
        Assert.Contains("not retried: the retry policy does not list failed", row);
        Assert.DoesNotContain("retrying", text);
        Assert.Contains("1 job(s): 0 succeeded, 1 failed or killed, in", text);
    }

    [Fact]
    public async Task A_failed_command_listed_in_the_policy_runs_exactly_as_many_times_as_its_attempts()
    {
        var (status, text) = await RunAsync("""
            resourceOverhead: 16Mi
            jobs:
              - name: always-fails
                command: echo attempt; exit 3
                retry: {on: [failed], attempts: 3}
            """);

        Assert.Equal(RunCommand.JobFailed, status);
        var row = Row(text, "always-fails");
        Assert.Contains("3: failed, failed, failed", row);
        Assert.Contains("not retried: all 3 attempts used", row);
        Assert.Contains("retrying (attempt 2 of 3)", text);
        Assert.Contains("retrying (attempt 3 of 3)", text);
        Assert.DoesNotContain("attempt 4", text);
        Assert.Contains("1 job(s): 0 succeeded, 1 failed or killed, 2 retries", text);
    }

    [Theory]
    [InlineData("    retry:\n      on: [memlimit, oom]\n      attempts: 2\n", "5:22", "retry.on: 'oom' is not an exit reason (an out-of-memory kill is memlimit): list some of failed, lost, error, memlimit.")]
    [InlineData("    retry:\n      on: [finished]\n      attempts: 2\n", "5:12", "retry.on: 'finished' is never retried")]
    [InlineData("    retry:\n      on: [lost]\n      attempts: 0\n", "6:17", "retry.attempts: '0' is not a number of attempts: give the attempts in all, the first included, a whole number from 1 to 100")]
    [InlineData("    retry:\n      on: [lost]\n      attempts: 101\n", "6:17", "retry.attempts: '101' is not a number of attempts")]
    [InlineData("    retry: {on: [lost]}\n", "4:12", "retry.attempts: missing: give the number of attempts in all")]
    [InlineData("    retry:\n      on: [memlimit]\n      attempts: 2\n      memory: {factor: 1, max: 1Gi}\n", "7:24", "retry.memory.factor: '1' is not a memory factor: give a number above 1")]
    [InlineData("    retry:\n      on: [memlimit]\n      attempts: 2\n      memory: {factor: 2, max: 32Mi}\n", "7:32", "retry.memory.max: '32Mi' is below the job's memory request, 64Mi")]
    [InlineData("    retry:\n      on: [lost]\n      attempts: 2\n      memory: {max: 1Gi}\n", "5:12", "retry.on: 'lost' does not list memlimit")]
    [InlineData("    retry:\n      on: [lost]\n      attempts: 2\n      tries: 3\n", "7:7", "retry: unknown key 'tries'")]
    public async Task A_bad_retry_policy_is_reported_by_line_column_and_field_and_nothing_is_created(string retry, string where, string message)
    {
        var since = DateTime.UtcNow;
        var (status, printed) = await RunAsync("jobs:\n  - name: a\n    command: x\n" + retry);

        Assert.Equal(RunCommand.UsageError, status);
        Assert.Contains($".yaml:{where}: jobs[0] (a).{message}", printed);
        Assert.DoesNotContain("   at ", printed);
        Assert.Empty(await JobsCreatedSinceAsync(since));
    }

    [Fact]
    public async Task A_retry_memory_maximum_above_what_the_batch_system_gives_is_refused_before_any_job_runs()
    {
        var since = DateTime.UtcNow;
        var (status, printed) = await RunAsync("""
            jobs:
              - name: huge
                command: "true"
                retry: {on: [memlimit], attempts: 2, memory: {max: 2Gi}}
            """,
            "--maxMemory",
            "1000000000");

        Assert.Equal(RunCommand.UsageError, status);
        Assert.Contains(".yaml:2: job 'huge': retry.memory.max: ", printed);
        Assert.Empty(await JobsCreatedSinceAsync(since));
    }
}
