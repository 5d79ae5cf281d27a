using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Parsing;
using HybridBatch.Daemon.Jobs;
using HybridBatch.Daemon.Tes;

namespace HybridBatch.Daemon.Hosting;

/// <summary>The <c>hybridbatch</c> command line: <c>run</c>, <c>example</c> and <c>serve</c>.</summary>
internal static class DaemonCommand
{
    /// <summary>The command and its subcommands.</summary>
    // Not a RootCommand: that takes the assembly's name (HybridBatch.Daemon), while users type hybridbatch, whether the
    // apphost, the tool's shim or dotnet runs it.
    public static Command Create() =>
        new("hybridbatch", "HybridBatch: run batch jobs on Kubernetes from a jobs file (run), or serve the GA4GH TES 1.1 API (serve).")
        {
            new HelpOption(),
            new VersionOption(),
            RunCommand.Create(),
            ExampleCommand.Create(),
            ServeCommand.Create(),
        };

    /// <summary>Parses a command line as <c>hybridbatch</c> does.</summary>
    public static ParseResult Parse(string[] args) => Create().Parse(args);

    /// <summary>
    /// Runs a command line. One that cannot be parsed (an unknown flag, a bad value) is named on <paramref name="error"/>,
    /// with where to find the command's help, and ends with <see cref="RunCommand.UsageError"/>.
    /// </summary>
    public static async Task<int> InvokeAsync(string[] args, TextWriter? output = null, TextWriter? error = null)
    {
        var parse = Parse(args);
        var invocation = new InvocationConfiguration
        {
            ProcessTerminationTimeout = TimeSpan.FromSeconds(90),
            Output = output ?? Console.Out,
            Error = error ?? Console.Error,
        };
        if (parse.Errors.Count == 0)
        {
            return await parse.InvokeAsync(invocation).ConfigureAwait(false);
        }

        foreach (var problem in parse.Errors)
        {
            await invocation.Error.WriteLineAsync($"error: {problem.Message}").ConfigureAwait(false);
        }

        await invocation.Error.WriteLineAsync($"See '{CommandLine(parse.CommandResult)} --help'.").ConfigureAwait(false);
        return RunCommand.UsageError;
    }

    private static string CommandLine(CommandResult command) =>
        command.Parent is CommandResult parent ? $"{CommandLine(parent)} {command.Command.Name}" : command.Command.Name;
}
