using System.Collections.Concurrent;
using System.Text.RegularExpressions;
using HybridBatch.Integration.BatchSystem;
using HybridBatch.Integration.Cluster;
using HybridBatch.Integration.Resilience;
using k8s;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace HybridBatch.Integration.Security;

/// <summary>Job pods are locked down unless the options say otherwise; commands arrive verbatim; tokens stay secret.</summary>
public sealed class SafeDefaultsTests(LocalClusterFixture cluster, ITestOutputHelper output) : IClassFixture<LocalClusterFixture>
{
    // /proc/self/status inside the container: no effective capability, and no way to gain privileges.
    private const string Unprivileged = "grep -q '^CapEff:[[:space:]]*0000000000000000$' /proc/self/status && grep -q '^NoNewPrivs:[[:space:]]*1$' /proc/self/status";

    private async Task<UpdatedBatchJobInfo> RunAsync(string command, Func<KubernetesBatchSystemOptions, KubernetesBatchSystemOptions>? change = null, Action<k8s.Models.V1Job>? inspect = null)
    {
        var system = await KubernetesBatchSystem.CreateAsync(Batch.Options(cluster, change), Batch.Logging(output));
        try
        {
            var id = await system.IssueBatchJobAsync(command, TestJobs.Job("security"));
            if (inspect is not null)
            {
                Assert.True(await Batch.EventuallyAsync(async () => (await Batch.JobsOfRunAsync(cluster, system.RunId)).Count == 1, TimeSpan.FromSeconds(30)));
                inspect(Assert.Single(await Batch.JobsOfRunAsync(cluster, system.RunId)));
            }

            var info = await Batch.NextAsync(system);
            Assert.Equal(id, info.JobId);
            return info;
        }
        finally
        {
            await system.ShutdownAsync();
            await system.DisposeAsync();
        }
    }

    [Fact]
    public async Task By_default_a_job_runs_without_capabilities_or_privilege_escalation()
    {
        var info = await RunAsync(Unprivileged, inspect: job =>
        {
            var context = job.Spec.Template.Spec.Containers[0].SecurityContext;
            Assert.False(context.AllowPrivilegeEscalation);
            Assert.Equal(["ALL"], context.Capabilities.Drop);
            Assert.Null(context.Privileged);
            Assert.False(job.Spec.Template.Spec.AutomountServiceAccountToken);
        });
        Assert.Equal((0, BatchJobExitReason.Finished), (info.ExitStatus, info.ExitReason));
    }

    [Fact]
    public async Task Privileged_loosens_the_container_explicitly()
    {
        var info = await RunAsync($"! ( {Unprivileged} )", o => o with { Privileged = true }, job =>
            Assert.True(job.Spec.Template.Spec.Containers[0].SecurityContext.Privileged));
        Assert.Equal((0, BatchJobExitReason.Finished), (info.ExitStatus, info.ExitReason));
    }

    [Fact]
    public async Task A_security_context_file_replaces_the_default_explicitly()
    {
        var file = Path.Combine(Path.GetTempPath(), $"hb-sc-{Guid.NewGuid():N}.yaml");
        await File.WriteAllTextAsync(file, "runAsUser: 1234\nallowPrivilegeEscalation: true\n");
        try
        {
            var info = await RunAsync("[ \"$(id -u)\" = 1234 ] && grep -q '^NoNewPrivs:[[:space:]]*0$' /proc/self/status", o => o with { SecurityContext = file }, job =>
            {
                var context = job.Spec.Template.Spec.Containers[0].SecurityContext;
                Assert.Equal(1234, context.RunAsUser);
                Assert.True(context.AllowPrivilegeEscalation);
            });
            Assert.Equal((0, BatchJobExitReason.Finished), (info.ExitStatus, info.ExitReason));
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task A_command_with_shell_metacharacters_reaches_the_container_as_one_argument_and_runs_exactly_as_given()
    {
        // Quotes, semicolons, a variable, a command substitution, a glob and a redirection: what the caller wrote is
        // what /bin/sh sees as its one -c argument, and nothing of it was interpreted before.
        const string command = """set -- 'one arg' "two;three" '$HOME' "a\"b" '*'; printf '[%s]' "$@"; echo; echo "$(echo sub)" 'x;y' >&2; exit 3""";
        var system = await KubernetesBatchSystem.CreateAsync(Batch.Options(cluster), Batch.Logging(output));
        try
        {
            var id = await system.IssueBatchJobAsync(command, TestJobs.Job("argv"));
            Assert.True(await Batch.EventuallyAsync(async () => (await Batch.JobsOfRunAsync(cluster, system.RunId)).Count == 1, TimeSpan.FromSeconds(30)));
            var job = Assert.Single(await Batch.JobsOfRunAsync(cluster, system.RunId));
            Assert.Equal(["/bin/sh", "-c", command], job.Spec.Template.Spec.Containers[0].Command);
            Assert.Null(job.Spec.Template.Spec.Containers[0].Args);

            var info = await Batch.NextAsync(system);
            Assert.Equal((id, 3, BatchJobExitReason.Failed), (info.JobId, info.ExitStatus, info.ExitReason));
            var log = system.GetFailureLog(info.BackingId);
            output.WriteLine(log);
            Assert.NotNull(log);
            Assert.Contains("[one arg][two;three][$HOME][a\"b][*]", log);
            Assert.Contains("sub x;y", log);
        }
        finally
        {
            await system.ShutdownAsync();
            await system.DisposeAsync();
        }
    }

    [Fact]
    public async Task The_kubeconfig_token_never_appears_in_logs_even_with_failures_and_retries()
    {
        var token = Regex.Match(await File.ReadAllTextAsync(cluster.KubeconfigPath), @"token: (\S+)").Groups[1].Value;
        Assert.True(token.Length > 8, "the test kubeconfig should authenticate with a token");
        var lines = new ConcurrentQueue<string>();
        using var logging = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Trace).AddProvider(new CapturingLoggerProvider(lines)));
        var faults = new FaultInjectingHandler(
            new FaultRates(Throttle: 0.1, ServerError: 0.1, ResetAfterApplying: 0.05, Slow: 0.05) { RetryAfter = TimeSpan.FromSeconds(1) }, seed: 8);
        var system = await KubernetesBatchSystem.CreateAsync(
            Batch.Options(cluster), logging, TimeProvider.System, observer: null, innerHandlers: [faults]);
        try
        {
            var ids = new List<int>();
            foreach (var command in new[] { "true", "exit 2", "echo \"$HOME\"; exit 5", "true", "cat /nonexistent" })
            {
                ids.Add(await system.IssueBatchJobAsync(command, TestJobs.Job("secret-check")));
            }

            for (var i = 0; i < ids.Count; i++)
            {
                await Batch.NextAsync(system);
            }
        }
        finally
        {
            await system.ShutdownAsync();
            await system.DisposeAsync();
        }

        output.WriteLine($"{lines.Count} log lines, {faults.Injected} faults injected");
        Assert.True(faults.Injected > 0);
        Assert.Contains(lines, l => l.Contains("Warning", StringComparison.Ordinal) || l.Contains("retry", StringComparison.OrdinalIgnoreCase));
        Assert.DoesNotContain(lines, l => l.Contains(token, StringComparison.Ordinal));
        Assert.DoesNotContain(lines, l => l.Contains(token[..12], StringComparison.Ordinal));

        // Nor in the namespace's events, which anyone with read access to the namespace sees.
        var events = await cluster.Client.CoreV1.ListNamespacedEventAsync(cluster.Namespace);
        Assert.DoesNotContain(events.Items, e => (e.Message ?? "").Contains(token[..12], StringComparison.Ordinal));
    }

    private sealed class CapturingLoggerProvider(ConcurrentQueue<string> lines) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new Logger(categoryName, lines);

        public void Dispose()
        {
        }

        private sealed class Logger(string category, ConcurrentQueue<string> lines) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                lines.Enqueue($"{logLevel} {category}: {formatter(state, exception)} {exception}");
        }
    }
}
