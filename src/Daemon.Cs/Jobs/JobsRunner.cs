using System.Globalization;
using Microsoft.Extensions.Logging;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace HybridBatch.Daemon.Jobs;

/// <summary>How one job instance of a jobs file ended.</summary>
/// <param name="Entry">The entry it came from.</param>
/// <param name="Name">The instance's name.</param>
/// <param name="Result">What the batch system reported; null when the job was killed or never finished.</param>
/// <param name="FailureLog">The tail of the pod's log, for a failed job.</param>
internal sealed record JobOutcome(JobEntry Entry, string Name, UpdatedBatchJobInfo? Result, string? FailureLog)
{
    /// <summary>Whether the job ran and exited 0.</summary>
    public bool Succeeded => Result is { ExitReason: BatchJobExitReason.Finished, ExitStatus: 0 };

    /// <summary>The exit reason as people say it: finished, failed, OOM, lost, error or killed.</summary>
    public string Reason => Result?.ExitReason switch
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

    /// <summary>Issues every job, waits for all to end (or for cancellation, which kills the rest), and returns the outcomes.</summary>
    /// <param name="file">The jobs.</param>
    /// <param name="cancellationToken">Cancels the run: the unfinished jobs are killed.</param>
    /// <returns>One outcome per job instance, in file order, and whether the run was interrupted.</returns>
    public async Task<(IReadOnlyList<JobOutcome> Outcomes, bool Interrupted)> RunAsync(JobsFile file, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(file);
        var start = time.GetTimestamp();
        var instances = new List<(JobEntry Entry, string Name)>();
        foreach (var entry in file.Jobs)
        {
            for (var i = 1; i <= entry.Count; i++)
            {
                instances.Add((entry, entry.Count == 1 ? entry.Name : $"{entry.Name}-{i}"));
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
                var (entry, name) = instances[i];
                var id = await system.IssueBatchJobAsync(entry.Command, entry.Description with { Name = name }, entry.Environment, cancellationToken)
                    .ConfigureAwait(false);
                ids[id] = i;
            }

            LogIssued(instances.Count);
            if (interactive)
            {
                await console.Live(Status(0, instances.Count, 0, 0, 0, TimeSpan.Zero)).StartAsync(async live =>
                {
                    await CollectAsync(instances, ids, results, start, (s) => { live.UpdateTarget(s); live.Refresh(); }, null, cancellationToken)
                        .ConfigureAwait(false);
                }).ConfigureAwait(false);
            }
            else
            {
                await CollectAsync(instances, ids, results, start, null, console.MarkupLine, cancellationToken).ConfigureAwait(false);
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
            outcomes.Add(results[i] ?? new JobOutcome(instances[i].Entry, instances[i].Name, null, null));
        }

        return (outcomes, interrupted);
    }

    private async Task CollectAsync(
        List<(JobEntry Entry, string Name)> instances,
        Dictionary<int, int> ids,
        JobOutcome?[] results,
        long start,
        Action<IRenderable>? update,
        Action<string>? line,
        CancellationToken cancellationToken)
    {
        var done = 0;
        var failed = 0;
        var lastLine = -PlainEvery;
        while (done + failed < instances.Count)
        {
            var result = await system.GetUpdatedBatchJobAsync(TimeSpan.FromMilliseconds(500), cancellationToken).ConfigureAwait(false);
            while (result is not null)
            {
                if (ids.TryGetValue(result.JobId, out var index) && results[index] is null)
                {
                    var log = result.ExitReason == BatchJobExitReason.Finished && result.ExitStatus == 0 ? null : system.GetFailureLog(result.BackingId);
                    var outcome = new JobOutcome(instances[index].Entry, instances[index].Name, result, log);
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
                        line($"[red]{Markup.Escape(outcome.Name)}[/]: {outcome.Reason}, exit {result.ExitStatus} {Markup.Escape(outcome.Message)}");
                    }
                }

                result = await system.GetUpdatedBatchJobAsync(TimeSpan.Zero, cancellationToken).ConfigureAwait(false);
            }

            var running = (await system.GetRunningBatchJobIdsAsync(cancellationToken).ConfigureAwait(false)).Count;
            var queued = Math.Max(0, instances.Count - done - failed - running);
            var elapsed = time.GetElapsedTime(start);
            update?.Invoke(Status(queued, instances.Count, running, done, failed, elapsed));
            if (line is not null && (elapsed - lastLine >= PlainEvery || done + failed == instances.Count))
            {
                lastLine = elapsed;
                line(Markup.Escape(StatusText(queued, running, done, failed, elapsed)));
            }
        }
    }

    private static string StatusText(int queued, int running, int done, int failed, TimeSpan elapsed)
    {
        var rate = elapsed.TotalSeconds > 0 ? (done + failed) / elapsed.TotalSeconds : 0;
        return string.Create(
            CultureInfo.InvariantCulture,
            $"[{elapsed.TotalSeconds,6:0.0}s] queued {queued}  running {running}  done {done}  failed {failed}  ({rate:0.00} jobs/s)");
    }

    private static Markup Status(int queued, int total, int running, int done, int failed, TimeSpan elapsed)
    {
        var rate = elapsed.TotalSeconds > 0 ? (done + failed) / elapsed.TotalSeconds : 0;
        return new Markup(string.Create(
            CultureInfo.InvariantCulture,
            $"[grey]{elapsed.TotalSeconds:0.0}s[/]  queued [blue]{queued}[/]  running [yellow]{running}[/]  done [green]{done}[/]  failed [red]{failed}[/]  of {total}  [grey]({rate:0.00} jobs/s)[/]"));
    }

    /// <summary>The summary table: one row per job, with a fan-out whose jobs all succeeded folded into one row.</summary>
    /// <param name="outcomes">The outcomes.</param>
    /// <returns>The table.</returns>
    public static Table Summary(IReadOnlyList<JobOutcome> outcomes)
    {
        ArgumentNullException.ThrowIfNull(outcomes);
        var table = new Table().AddColumns("Job", "Exit code", "Reason", "Wall time", "Message");
        foreach (var group in outcomes.GroupBy(o => o.Entry))
        {
            var list = group.ToList();
            if (list.Count > 1 && list.All(o => o.Succeeded))
            {
                var walls = list.Select(o => o.Result!.WallTime.TotalSeconds).ToList();
                table.AddRow(
                    Markup.Escape($"{group.Key.Name} (x{list.Count})"),
                    "0",
                    "[green]finished[/]",
                    string.Create(CultureInfo.InvariantCulture, $"{walls.Average():0.0}s avg, {walls.Max():0.0}s max"),
                    $"all {list.Count} succeeded");
                continue;
            }

            foreach (var outcome in list)
            {
                var color = outcome.Succeeded ? "green" : "red";
                table.AddRow(
                    Markup.Escape(outcome.Name),
                    outcome.Result?.ExitStatus.ToString(CultureInfo.InvariantCulture) ?? "-",
                    $"[{color}]{Markup.Escape(outcome.Reason)}[/]",
                    outcome.Result is { } r ? r.WallTime.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture) + "s" : "-",
                    Markup.Escape(Truncate(outcome.Message, 100)));
            }
        }

        return table;
    }

    private static string Truncate(string text, int length) => text.Length <= length ? text : text[..(length - 1)] + "…";

    [LoggerMessage(Level = LogLevel.Information, Message = "Issued {Count} jobs")]
    private partial void LogIssued(int count);
}
