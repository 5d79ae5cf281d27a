using System.CommandLine;
using HybridBatch.Daemon.Hosting;
using Microsoft.Extensions.Logging;
using Spectre.Console;

namespace HybridBatch.Daemon.Jobs;

/// <summary><c>hybridbatch run FILE</c>: runs the jobs of a file on the cluster, with live progress and a summary.</summary>
internal static partial class RunCommand
{
    /// <summary>Exit status when every job succeeded.</summary>
    public const int Success = 0;

    /// <summary>Exit status when a job failed.</summary>
    public const int JobFailed = 1;

    /// <summary>Exit status when the file or the options are invalid, or the cluster cannot be used.</summary>
    public const int UsageError = 2;

    /// <summary>Exit status when the run was interrupted (Ctrl-C).</summary>
    public const int Interrupted = 130;

    /// <summary>The <c>run</c> command.</summary>
    /// <returns>The command.</returns>
    public static Command Create()
    {
        var file = new Argument<string>("FILE") { Description = "A YAML or JSON jobs file ('hybridbatch example' prints one)." };
        var plain = new Option<bool>("--plain") { Description = "Write plain progress lines even on a terminal (the default when output is redirected)." };
        var command = new Command(
            "run",
            "Run the jobs listed in FILE on Kubernetes, show live progress and a summary; exit 1 if any job failed, 130 if interrupted (unfinished jobs are killed).")
        {
            file,
            plain,
        };
        CommonOptions.AddTo(command);
        command.SetAction((parse, cancellationToken) =>
        {
            var console = AnsiConsole.Console;
            var interactive = !parse.GetValue(plain) && !Console.IsOutputRedirected && console.Profile.Capabilities.Interactive;
            if (Console.IsOutputRedirected)
            {
                // A log or CI: long lines stay whole instead of wrapping at 80 columns.
                console.Profile.Width = 240;
            }

            return ExecuteAsync(parse.GetValue(file)!, [.. parse.Tokens.Select(t => t.Value)], console, interactive, cancellationToken);
        });
        return command;
    }

    /// <summary>Runs a jobs file.</summary>
    /// <param name="path">The jobs file.</param>
    /// <param name="args">The command line (batch-system flags are read from it).</param>
    /// <param name="console">Where progress and the summary go.</param>
    /// <param name="interactive">Whether to draw a live display.</param>
    /// <param name="cancellationToken">Interrupts the run: unfinished jobs are killed.</param>
    /// <returns>The exit status.</returns>
    public static async Task<int> ExecuteAsync(string path, string[] args, IAnsiConsole console, bool interactive, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(console);
        using var loggerFactory = LoggerFactory.Create(b => b
            .SetMinimumLevel(LogLevel.Warning)
            .AddSimpleConsole(o => o.SingleLine = true)
            .AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace));
        var logger = loggerFactory.CreateLogger("HybridBatch.Run");
        JobsFile jobs;
        KubernetesBatchSystemOptions options;
        try
        {
            jobs = JobsFile.Load(path);
            options = CommonOptions.Bind(CommonOptions.Configuration(args), args);
        }
        catch (Exception ex) when (ex is JobsFileException or ArgumentException)
        {
            console.MarkupLine($"[red]error:[/] {Markup.Escape(ex.Message)}");
            return UsageError;
        }

        if (jobs.ResourceOverhead is { } overhead)
        {
            options.ResourceOverhead = overhead;
        }

        var total = jobs.Jobs.Sum(j => j.Count);
        console.MarkupLine(Markup.Escape(
            $"{path}: {total} job(s) from {jobs.Jobs.Count} entr{(jobs.Jobs.Count == 1 ? "y" : "ies")}; resource overhead {ByteQuantity.Format(options.ResourceOverhead)} per job"));
        KubernetesBatchSystem system;
        try
        {
            // The local cluster's script says what it does every few seconds (a first start builds Kubernetes for about
            // 10 minutes); its lines go to stderr as they come, beside the log's, so the run is never silent for long.
            await ClusterConnection.ResolveAsync(options, logger, line => Console.Error.WriteLine("local-cluster " + line), cancellationToken)
                .ConfigureAwait(false);
            system = await KubernetesBatchSystem.CreateAsync(options, loggerFactory, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is InvalidOperationException or ArgumentException)
        {
            console.MarkupLine($"[red]error:[/] {Markup.Escape(ex.Message)}");
            return UsageError;
        }
        catch (OperationCanceledException)
        {
            return Interrupted;
        }

        var time = TimeProvider.System;
        var start = time.GetTimestamp();
        IReadOnlyList<JobOutcome> outcomes;
        bool interrupted;
        try
        {
            foreach (var entry in jobs.Jobs)
            {
                try
                {
                    system.CheckResourceRequest(entry.Description);
                }
                catch (Exception ex) when (ex is InsufficientSystemResourcesException or ArgumentException)
                {
                    console.MarkupLine($"[red]error:[/] {Markup.Escape($"{path}:{entry.Line}: job '{entry.Name}': {ex.Message}")}");
                    return UsageError;
                }
            }

            console.MarkupLine(Markup.Escape($"cluster namespace {system.Namespace}, run {system.RunId}"));
            var runner = new JobsRunner(system, console, interactive, time, loggerFactory.CreateLogger<JobsRunner>());
            (outcomes, interrupted) = await runner.RunAsync(jobs, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            // The run is over either way: delete its Jobs and pods so nothing is left behind.
            await system.ShutdownAsync(CancellationToken.None).ConfigureAwait(false);
            await system.DisposeAsync().ConfigureAwait(false);
        }

        var elapsed = time.GetElapsedTime(start);
        console.Write(JobsRunner.Summary(outcomes));
        var failed = outcomes.Count(o => !o.Succeeded);
        console.MarkupLine(Markup.Escape(string.Create(
            System.Globalization.CultureInfo.InvariantCulture,
            $"{outcomes.Count} job(s): {outcomes.Count - failed} succeeded, {failed} failed or killed, in {elapsed.TotalSeconds:0.0}s")));
        return interrupted ? Interrupted : failed > 0 ? JobFailed : Success;
    }
}
