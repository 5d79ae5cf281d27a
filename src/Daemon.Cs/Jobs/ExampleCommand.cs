using System.CommandLine;

namespace HybridBatch.Daemon.Jobs;

/// <summary>
/// <c>hybridbatch example</c>: prints the quickstart jobs file (examples/quickstart.yaml, carried in the executable), so
/// that an installed tool can run it with no checkout: <c>hybridbatch example &gt; quickstart.yaml</c>.
/// </summary>
internal static class ExampleCommand
{
    /// <summary>The <c>example</c> command.</summary>
    /// <returns>The command.</returns>
    public static Command Create()
    {
        var command = new Command(
            "example",
            "Print the quickstart jobs file: a job that succeeds, one that fails (exit 3), one killed for memory and a fan-out of 50. " +
            "Save it with 'hybridbatch example > quickstart.yaml', then 'hybridbatch run quickstart.yaml'.");
        command.SetAction(parse =>
        {
            parse.InvocationConfiguration.Output.Write(Quickstart());
            return RunCommand.Success;
        });
        return command;
    }

    /// <summary>The text of examples/quickstart.yaml.</summary>
    /// <returns>The jobs file.</returns>
    public static string Quickstart()
    {
        using var stream = typeof(ExampleCommand).Assembly.GetManifestResourceStream("quickstart.yaml")
            ?? throw new InvalidOperationException("The quickstart is missing from the executable's resources.");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
