using System.Globalization;
using HybridBatch.Core.Api;
using Microsoft.Extensions.Logging;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace HybridBatch.Daemon.Jobs;

/// <summary>An attempt of a job that was retried: how it ended and the memory it asked for.</summary>
/// <param name="Reason">Why it ended.</param>
/// <param name="ExitStatus">The container's exit code.</param>
/// <param name="Memory">The bytes it asked for.</param>
internal sealed record JobAttempt(BatchJobExitReason Reason, int ExitStatus, long Memory);

/// <summary>How one job instance of a jobs file ended.</summary>
/// <param name="Entry">The entry it came from.</param>
/// <param name="Name">The instance's name.</param>
/// <param name="Result">What the batch system reported of its last attempt; null when the job was killed or never finished.</param>
/// <param name="FailureLog">The tail of the pod's log, for a failed job.</param>
internal sealed record JobOutcome(JobEntry Entry, string Name, UpdatedBatchJobInfo? Result, string? FailureLog)
{
    /// <summary>The attempts before the last, which were retried.</summary>
    public IReadOnlyList<JobAttempt> Retried { get; init; } = [];

    /// <summary>The bytes the last attempt asked for.</summary>
    public long Memory { get; init; } = Entry.Description.Memory;

    /// <summary>Why a job with a retry policy that did not succeed was not run again; null otherwise.</summary>
    public string? NotRetried { get; init; }

    /// <summary>How many times the job ran.</summary>
    public int Attempts => Retried.Count + 1;

    /// <summary>Whether the job ran and exited 0.</summary>
    public bool Succeeded => Result is { ExitReason: BatchJobExitReason.Finished, ExitStatus: 0 };

    /// <summary>The exit reason as people say it: finished, failed, OOM, lost, error or killed.</summary>
    public string Reason => ReasonOf(Result?.ExitReason);

    /// <summary>An exit reason as people say it; null is a job killed before it finished.</summary>
    public static string ReasonOf(BatchJobExitReason? reason) => reason switch
    {
        null => "killed",
        BatchJobExitReason.Finished => "finished",
        BatchJobExitReason.Failed => "failed",
        BatchJobExitReason.MemLimit => "OOM",
        BatchJobExitReason.Lost => "lost",
        BatchJobExitReason.Killed => "killed",
        _ => "error",
    };

    /// <summary>Why it ended, when the reason alone does not say: the batch system's message or the log's last line.</summary>
    public string Message => Result switch
    {
        null => "killed before it finished",
        { Message: { Length: > 0 } message } => message,
        { ExitReason: BatchJobExitReason.MemLimit } => "the container exceeded its memory limit",
        _ when FailureLog?.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault() is { } line
            => "log: " + line,
        _ => "",
    };

    /// <summary>
    /// Each attempt's reason, with its memory when the memory changed between attempts: <c>1</c>, or
    /// <c>2: OOM 32Mi, finished 64Mi</c>, or <c>3: failed, failed, failed</c>.
    /// </summary>
    public string AttemptsText
    {
        get
        {
            if (Retried.Count == 0)
            {
                return "1";
            }

            var grew = Retried.Any(a => a.Memory != Memory);
            var each = Retried.Select(a => (Reason: ReasonOf(a.Reason), a.Memory)).Append((Reason, Memory))
                .Select(a => grew ? $"{a.Reason} {ByteQuantity.Format(a.Memory)}" : a.Reason);
            return $"{Attempts}: {string.Join(", ", each)}";
        }
    }
}

/// <summary>Runs the jobs of a jobs file through the batch system, showing progress, and reports how each ended.</summary>
/// <param name="system">The batch system.</param>
/// <param name="console">Where progress and the summary go.</param>
/// <param name="interactive">Whether to draw a live display (a terminal) or write plain lines (a log, CI).</param>
/// <param name="time">The clock.</param>
/// <param name="logger">The log.</param>
internal sealed partial class JobsRunner(
    KubernetesBatchSystem system, IAnsiConsole console, bool interactive, TimeProvider time, ILogger<JobsRunner> logger)
{
    private static readonly TimeSpan PlainEvery = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Issues every job, waits for all to end (or for cancellation, which kills the rest), and returns the outcomes. A job
    /// whose entry has a retry policy runs again as the policy decides (the core's <see cref="RetryPolicies.Next"/>).
    /// </summary>
    /// <param name="file">The jobs.</param>
    /// <param name="cancellationToken">Cancels the run: the unfinished jobs are killed.</param>
    /// <returns>One outcome per job instance, in file order, and whether the run was interrupted.</returns>
    public async Task<(IReadOnlyList<JobOutcome> Outcomes, bool Interrupted)> RunAsync(JobsFile file, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(file);
        var start = time.GetTimestamp();
        var instances = new List<Instance>();
        foreach (var entry in file.Jobs)
        {
            for (var i = 1; i <= entry.Count; i++)
            {
                instances.Add(new Instance(entry, entry.Count == 1 ? entry.Name : $"{entry.Name}-{i}"));
            }
        }

        var ids = new Dictionary<int, int>();
        var results = new JobOutcome?[instances.Count];
        var interrupted = false;
        try
        {
            for (var i = 0; i < instances.Count; i++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                ids[await IssueAsync(instances[i], cancellationToken).ConfigureAwait(false)] = i;
            }

            LogIssued(instances.Count);
            var run = new Run(instances, ids, results, start);
            if (interactive)
            {
                await console.Live(Status(new Counts(0, instances.Count, 0, 0, 0, 0), TimeSpan.Zero)).StartAsync(async live =>
                {
                    await CollectAsync(run, (s) => { live.UpdateTarget(s); live.Refresh(); }, null, cancellationToken)
                        .ConfigureAwait(false);
                }).ConfigureAwait(false);
            }
            else
            {
                await CollectAsync(run, null, console.MarkupLine, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            interrupted = true;
            var outstanding = ids.Where(kv => results[kv.Value] is null).Select(kv => kv.Key).ToArray();
            console.MarkupLine($"[yellow]Interrupted: killing {outstanding.Length} unfinished job(s).[/]");
            await system.KillBatchJobsAsync(outstanding, CancellationToken.None).ConfigureAwait(false);
        }

        var outcomes = new List<JobOutcome>(instances.Count);
        for (var i = 0; i < instances.Count; i++)
        {
            outcomes.Add(results[i] ?? instances[i].Outcome(null, null, null));
        }

        return (outcomes, interrupted);
    }

    private Task<int> IssueAsync(Instance instance, CancellationToken cancellationToken) =>
        system.IssueBatchJobAsync(
            instance.Entry.Command,
            instance.Entry.Description with { Name = instance.Name, Memory = instance.Memory },
            instance.Entry.Environment,
            cancellationToken);

    private async Task CollectAsync(Run run, Action<IRenderable>? update, Action<string>? line, CancellationToken cancellationToken)
    {
        var (instances, ids, results, start) = run;
        var done = 0;
        var failed = 0;
        var retried = 0;
        var lastLine = -PlainEvery;
        while (done + failed < instances.Count)
        {
            var result = await system.GetUpdatedBatchJobAsync(TimeSpan.FromMilliseconds(500), cancellationToken).ConfigureAwait(false);
            while (result is not null)
            {
                if (ids.Remove(result.JobId, out var index) && results[index] is null)
                {
                    var instance = instances[index];
                    var succeeded = result is { ExitReason: BatchJobExitReason.Finished, ExitStatus: 0 };
                    var log = succeeded ? null : system.GetFailureLog(result.BackingId);
                    string? notRetried = null;
                    if (!succeeded && instance.Entry.Retry is { } policy)
                    {
                        var decision = RetryPolicies.Next(policy, instance.Retried.Count + 1, (ExitCode)(int)result.ExitReason, instance.Memory);
                        if (decision.Retry)
                        {
                            line?.Invoke($"[yellow]{Markup.Escape(instance.Name)}[/]: {JobOutcome.ReasonOf(result.ExitReason)}, exit {result.ExitStatus}: {Markup.Escape(decision.Message)}");
                            instance.Retry(result, decision.Memory);
                            ids[await IssueAsync(instance, cancellationToken).ConfigureAwait(false)] = index;
                            retried++;
                            result = await system.GetUpdatedBatchJobAsync(TimeSpan.Zero, cancellationToken).ConfigureAwait(false);
                            continue;
                        }

                        notRetried = decision.Message;
                    }

                    var outcome = instance.Outcome(result, log, notRetried);
                    results[index] = outcome;
                    if (outcome.Succeeded)
                    {
                        done++;
                    }
                    else
                    {
                        failed++;
                    }

                    if (line is not null && !outcome.Succeeded)
                    {
                        var why = notRetried is null ? "" : $" ({notRetried})";
                        line($"[red]{Markup.Escape(outcome.Name)}[/]: {outcome.Reason}, exit {result.ExitStatus} {Markup.Escape(outcome.Message + why)}");
                    }
                }

                result = await system.GetUpdatedBatchJobAsync(TimeSpan.Zero, cancellationToken).ConfigureAwait(false);
            }

            var running = (await system.GetRunningBatchJobIdsAsync(cancellationToken).ConfigureAwait(false)).Count;
            var counts = new Counts(Math.Max(0, instances.Count - done - failed - running), instances.Count, running, done, failed, retried);
            var elapsed = time.GetElapsedTime(start);
            update?.Invoke(Status(counts, elapsed));
            if (line is not null && (elapsed - lastLine >= PlainEvery || done + failed == instances.Count))
            {
                lastLine = elapsed;
                line(Markup.Escape(StatusText(counts, elapsed)));
            }
        }
    }

    private static string StatusText(Counts c, TimeSpan elapsed)
    {
        var rate = elapsed.TotalSeconds > 0 ? (c.Done + c.Failed) / elapsed.TotalSeconds : 0;
        return string.Create(
            CultureInfo.InvariantCulture,
            $"[{elapsed.TotalSeconds,6:0.0}s] queued {c.Queued}  running {c.Running}  done {c.Done}  failed {c.Failed}  retried {c.Retried}  ({rate:0.00} jobs/s)");
    }

    private static Markup Status(Counts c, TimeSpan elapsed)
    {
        var rate = elapsed.TotalSeconds > 0 ? (c.Done + c.Failed) / elapsed.TotalSeconds : 0;
        return new Markup(string.Create(
            CultureInfo.InvariantCulture,
            $"[grey]{elapsed.TotalSeconds:0.0}s[/]  queued [blue]{c.Queued}[/]  running [yellow]{c.Running}[/]  done [green]{c.Done}[/]  failed [red]{c.Failed}[/]  retried [yellow]{c.Retried}[/]  of {c.Total}  [grey]({rate:0.00} jobs/s)[/]"));
    }

    /// <summary>
    /// The summary table: one row per job, with a fan-out whose jobs all succeeded folded into one row. The attempts column
    /// gives each attempt's reason (and memory, when it grew); the message says why a failed job was not retried.
    /// </summary>
    /// <param name="outcomes">The outcomes.</param>
    /// <returns>The table.</returns>
    public static Table Summary(IReadOnlyList<JobOutcome> outcomes)
    {
        ArgumentNullException.ThrowIfNull(outcomes);
        var table = new Table().AddColumns("Job", "Exit code", "Reason", "Attempts", "Wall time", "Message");
        foreach (var group in outcomes.GroupBy(o => o.Entry))
        {
            var list = group.ToList();
            if (list.Count > 1 && list.All(o => o.Succeeded))
            {
                var walls = list.Select(o => o.Result!.WallTime.TotalSeconds).ToList();
                var retried = list.Count(o => o.Attempts > 1);
                table.AddRow(
                    Markup.Escape($"{group.Key.Name} (x{list.Count})"),
                    "0",
                    "[green]finished[/]",
                    retried == 0 ? "1" : Markup.Escape($"{list.Count + list.Sum(o => o.Attempts - 1)} ({retried} retried)"),
                    string.Create(CultureInfo.InvariantCulture, $"{walls.Average():0.0}s avg, {walls.Max():0.0}s max"),
                    $"all {list.Count} succeeded");
                continue;
            }

            foreach (var outcome in list)
            {
                var color = outcome.Succeeded ? "green" : "red";
                var message = outcome.NotRetried is { } why ? $"{why}; {outcome.Message}" : outcome.Message;
                table.AddRow(
                    Markup.Escape(outcome.Name),
                    outcome.Result?.ExitStatus.ToString(CultureInfo.InvariantCulture) ?? "-",
                    $"[{color}]{Markup.Escape(outcome.Reason)}[/]",
                    Markup.Escape(outcome.AttemptsText),
                    outcome.Result is { } r ? r.WallTime.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture) + "s" : "-",
                    Markup.Escape(Truncate(message.TrimEnd(' ', ';'), 140)));
            }
        }

        return table;
    }

    private static string Truncate(string text, int length) => text.Length <= length ? text : text[..(length - 1)] + "…";

    [LoggerMessage(Level = LogLevel.Information, Message = "Issued {Count} jobs")]
    private partial void LogIssued(int count);

    private sealed record Counts(int Queued, int Total, int Running, int Done, int Failed, int Retried);

    private sealed record Run(List<Instance> Instances, Dictionary<int, int> Ids, JobOutcome?[] Results, long Start);

    // One job instance across its attempts: the memory its next attempt asks for and the attempts retried so far.
    private sealed class Instance(JobEntry entry, string name)
    {
        private readonly List<JobAttempt> _retried = [];

        public JobEntry Entry { get; } = entry;

        public string Name { get; } = name;

        public long Memory { get; private set; } = entry.Description.Memory;

        public IReadOnlyList<JobAttempt> Retried => _retried;

        public void Retry(UpdatedBatchJobInfo ended, long memory)
        {
            _retried.Add(new JobAttempt(ended.ExitReason, ended.ExitStatus, Memory));
            Memory = memory;
        }

        public JobOutcome Outcome(UpdatedBatchJobInfo? result, string? log, string? notRetried) =>
            new(Entry, Name, result, log) { Retried = [.. _retried], Memory = Memory, NotRetried = notRetried };
    }
}
