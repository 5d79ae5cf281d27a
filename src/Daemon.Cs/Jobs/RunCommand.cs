using System.CommandLine;
using HybridBatch.Core.Api;
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

    /// <summary>Exit status when the command line, the file or the options are invalid, or the cluster cannot be used.</summary>
    public const int UsageError = 2;

    /// <summary>Exit status when the run was interrupted (Ctrl-C).</summary>
    public const int Interrupted = 130;

    private const string FileArgument = "FILE";
    private const string PlainFlag = "--plain";

    /// <summary>The <c>run</c> command.</summary>
    public static Command Create()
    {
        var description = "Run the jobs listed in FILE on Kubernetes, show live progress and a summary; exit 1 if any job failed, 130 if " +
            "interrupted (unfinished jobs are killed), 2 if the file, the options or the cluster cannot be used. With no kubeconfig, it " +
            "starts the embedded local cluster. " + BatchSystemFlags.Precedence;
        var command = new Command("run", description)
        {
            new Argument<string>(FileArgument) { Description = "A YAML or JSON jobs file ('hybridbatch example' prints one)." },
            new Option<bool>(PlainFlag)
            {
                Description = "Write plain progress lines, not a live display. Default: false, plain only when output is redirected.",
            },
        };
        BatchSystemFlags.AddTo(command);
        command.SetAction((parse, cancellationToken) =>
        {
            var console = AnsiConsole.Console;
            var interactive = !parse.GetValue<bool>(PlainFlag) && !Console.IsOutputRedirected && console.Profile.Capabilities.Interactive;
            if (Console.IsOutputRedirected)
            {
                // A log or CI: long lines stay whole instead of wrapping at 80 columns.
                console.Profile.Width = 240;
            }

            return ExecuteAsync(parse, console, interactive, cancellationToken);
        });
        return command;
    }

    /// <summary>Runs the jobs file of a parsed <c>run</c> command line.</summary>
    /// <param name="parse">The command line; the batch system's flags are bound from it over the environment and appsettings.json.</param>
    /// <param name="console">Where progress and the summary go.</param>
    /// <param name="interactive">Whether to draw a live display.</param>
    /// <param name="cancellationToken">Interrupts the run: unfinished jobs are killed.</param>
    /// <returns>The exit status.</returns>
    public static async Task<int> ExecuteAsync(ParseResult parse, IAnsiConsole console, bool interactive, CancellationToken cancellationToken)
    {
        using var loggerFactory = LoggerFactory.Create(b => b
            .SetMinimumLevel(LogLevel.Warning)
            .AddSimpleConsole(o => o.SingleLine = true)
            .AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace));
        var logger = loggerFactory.CreateLogger("HybridBatch.Run");
        var path = parse.GetValue<string>(FileArgument)!;
        JobsFile jobs;
        KubernetesBatchSystemOptions options;
        try
        {
            jobs = JobsFile.Load(path);
            options = BatchSystemFlags.Bind(parse, DaemonConfiguration.Build(), Environment.GetEnvironmentVariables());
        }
        catch (Exception ex) when (ex is JobsFileException or ArgumentException or InvalidDataException)
        {
            console.MarkupLine($"[red]error:[/] {Markup.Escape(ex.Message)}");
            return UsageError;
        }

        if (jobs.ResourceOverhead is { } overhead)
        {
            options = options with { ResourceOverhead = overhead };
        }

        var total = jobs.Jobs.Sum(j => j.Count);
        console.MarkupLine(Markup.Escape(
            $"{path}: {total} job(s) from {jobs.Jobs.Count} entr{(jobs.Jobs.Count == 1 ? "y" : "ies")}; resource overhead {ByteQuantity.Format(options.ResourceOverhead)} per job"));
        KubernetesBatchSystem system;
        try
        {
            // The local cluster's script says what it does every few seconds (a first start builds Kubernetes for about
            // 10 minutes); its lines go to stderr as they come, beside the log's, so the run is never silent for long.
            options = await ClusterConnection.ResolveAsync(options, logger, line => Console.Error.WriteLine("local-cluster " + line), cancellationToken)
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

                // A retry may ask for up to the policy's maximum memory: the batch system must be able to give it.
                if (entry.Retry is { } retry && RetryPolicies.MaxMemory(retry) is { } max && max > entry.Description.Memory)
                {
                    try
                    {
                        system.CheckResourceRequest(entry.Description with { Memory = max });
                    }
                    catch (Exception ex) when (ex is InsufficientSystemResourcesException or ArgumentException)
                    {
                        console.MarkupLine($"[red]error:[/] {Markup.Escape($"{path}:{entry.Line}: job '{entry.Name}': retry.memory.max: {ex.Message}")}");
                        return UsageError;
                    }
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
        var retries = outcomes.Sum(o => o.Attempts - 1);
        var retried = retries == 0 ? "" : $", {retries} retr{(retries == 1 ? "y" : "ies")}";
        console.MarkupLine(Markup.Escape(string.Create(
            System.Globalization.CultureInfo.InvariantCulture,
            $"{outcomes.Count} job(s): {outcomes.Count - failed} succeeded, {failed} failed or killed{retried}, in {elapsed.TotalSeconds:0.0}s")));
        return interrupted ? Interrupted : failed > 0 ? JobFailed : Success;
    }
}
