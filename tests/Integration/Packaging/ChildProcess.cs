using System.Diagnostics;
using System.Text;

namespace HybridBatch.Integration.Packaging;

/// <summary>What a finished child process printed, and its exit status.</summary>
internal sealed record ChildResult(int ExitCode, string Output, string Errors)
{
    public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Output}\n--- stderr\n{Errors}";
}

/// <summary>Runs the dotnet CLI, the installed tool or a built executable as a user would, and collects what it prints.</summary>
internal static class ChildProcess
{
    /// <summary>Runs a command to its end, or kills it (and its children) after the timeout.</summary>
    /// <param name="onErrorLine">Sees each stderr line as soon as it is printed.</param>
    public static async Task<ChildResult> RunAsync(
        string fileName,
        IEnumerable<string> arguments,
        string workingDirectory,
        TimeSpan timeout,
        Action<string>? log = null,
        Action<IDictionary<string, string?>>? environment = null,
        Action<string>? onErrorLine = null)
    {
        var start = new ProcessStartInfo(fileName)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        ForCommandLineTools(start.Environment);
        environment?.Invoke(start.Environment);
        Write(log, $"$ {fileName} {string.Join(' ', start.ArgumentList)}   (in {workingDirectory})");

        var output = new StringBuilder();
        var errors = new StringBuilder();
        using var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                return;
            }

            lock (output)
            {
                output.AppendLine(e.Data);
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                return;
            }

            lock (errors)
            {
                errors.AppendLine(e.Data);
            }

            onErrorLine?.Invoke(e.Data);
        };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var deadline = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            throw new TimeoutException($"{fileName} {string.Join(' ', start.ArgumentList)} did not end within {timeout}:\n{Collected(output, errors)}");
        }

        var result = new ChildResult(process.ExitCode, Text(output), Text(errors));
        Write(log, result.ToString());
        return result;
    }

    /// <summary>Runs the dotnet CLI and fails with what it printed unless it exits 0.</summary>
    public static async Task<ChildResult> DotnetAsync(string workingDirectory, TimeSpan timeout, Action<string>? log, params string[] arguments)
    {
        var result = await RunAsync("dotnet", arguments, workingDirectory, timeout, log);
        return result.ExitCode == 0
            ? result
            : throw new InvalidOperationException($"dotnet {string.Join(' ', arguments)} failed: {result}");
    }

    /// <summary>
    /// An environment with no cluster in it, as on a machine that has never seen one: HOME is an empty folder (no
    /// ~/.kube), and no KUBECONFIG, in-cluster service, or HybridBatch or Toil setting is inherited from the test run.
    /// </summary>
    public static void WithoutCluster(IDictionary<string, string?> environment, string home)
    {
        foreach (var name in environment.Keys.ToList())
        {
            if (name is "KUBECONFIG" or "KUBERNETES_SERVICE_HOST" or "KUBERNETES_SERVICE_PORT"
                || name.StartsWith("HYBRIDBATCH_", StringComparison.Ordinal)
                || name.StartsWith("TOIL_", StringComparison.Ordinal))
            {
                environment.Remove(name);
            }
        }

        environment["HOME"] = home;
    }

    // dotnet test runs MSBuild in its own process and leaves these behind for the test host; a child dotnet CLI must
    // find its own SDK. No build server or node outlives a child build.
    private static void ForCommandLineTools(IDictionary<string, string?> environment)
    {
        foreach (var name in new[] { "MSBuildExtensionsPath", "MSBuildSDKsPath", "MSBUILD_EXE_PATH", "MSBuildLoadMicrosoftTargetsReadOnly" })
        {
            environment.Remove(name);
        }

        environment["MSBUILDDISABLENODEREUSE"] = "1";
        environment["DOTNET_CLI_USE_MSBUILD_SERVER"] = "0";
        environment["UseSharedCompilation"] = "false";
        environment["DOTNET_NOLOGO"] = "1";
        environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        environment["DOTNET_SKIP_FIRST_TIME_EXPERIENCE"] = "1";
    }

    private static string Text(StringBuilder builder)
    {
        lock (builder)
        {
            return builder.ToString();
        }
    }

    private static string Collected(StringBuilder output, StringBuilder errors) =>
        $"--- stdout\n{Text(output)}\n--- stderr\n{Text(errors)}";

    private static void Write(Action<string>? log, string text)
    {
        try
        {
            log?.Invoke(text);
        }
        catch (InvalidOperationException)
        {
            // The test has ended (a fixture's output outlives it).
        }
    }
}
