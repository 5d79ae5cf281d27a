using System.Globalization;
using System.Text;

namespace HybridBatch.Daemon.Tes;

/// <summary>
/// A task's work directory on the shared host path: the inputs staged for its pods (<c>inputs/N</c>), what its executors
/// leave (<c>exec/N.exit</c>, <c>.start</c>, <c>.end</c>, <c>.stdout</c>, <c>.stderr</c>, written by <see cref="TaskScript"/>)
/// and its outputs until they are delivered (<c>outputs/N</c>). Only files: the runner calls it outside every lock, so
/// a large copy delays its own task and no other.
/// </summary>
internal sealed class TaskWorkspace(string root)
{
    /// <summary>How much of an executor's standard output and error the task log keeps (the tail).</summary>
    public const int LogTailBytes = 10 * 1024;

    /// <summary>The directory on the host.</summary>
    public string Root { get; } = root;

    /// <summary>
    /// Checks that the outputs can be delivered and copies the inputs into a fresh directory; returns why the task
    /// cannot run, if it cannot.
    /// </summary>
    public string? Stage(TesTask task)
    {
        ArgumentNullException.ThrowIfNull(task);
        var outputs = task.Outputs ?? [];
        for (var j = 0; j < outputs.Count; j++)
        {
            if (LocalPath(outputs[j].Url!) is null)
            {
                return $"outputs[{j}] ({outputs[j].Name ?? outputs[j].Path}): the url '{outputs[j].Url}' cannot be served: this deployment delivers outputs to file:// urls only";
            }
        }

        try
        {
            if (Directory.Exists(Root))
            {
                Directory.Delete(Root, recursive: true);
            }

            var inputsDirectory = Path.Combine(Root, "inputs");
            Directory.CreateDirectory(inputsDirectory);
            Directory.CreateDirectory(Path.Combine(Root, "exec"));
            Directory.CreateDirectory(Path.Combine(Root, "outputs"));
            var inputs = task.Inputs ?? [];
            for (var i = 0; i < inputs.Count; i++)
            {
                if (StageInput(inputs[i], Path.Combine(inputsDirectory, i.ToString(CultureInfo.InvariantCulture)), $"inputs[{i}] ({inputs[i].Name ?? inputs[i].Path})") is { } problem)
                {
                    return problem;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return $"cannot stage the inputs in {Root}: {ex.Message}";
        }

        return null;
    }

    private static string? StageInput(TesInput input, string target, string label)
    {
        if (input.Content is { } content)
        {
            File.WriteAllText(target, content);
            return null;
        }

        if (LocalPath(input.Url!) is not { } source)
        {
            var scheme = Uri.TryCreate(input.Url, UriKind.Absolute, out var uri) ? uri.Scheme : "unknown";
            return $"{label}: the url '{input.Url}' cannot be served: this deployment has no access to '{scheme}' storage (no network); " +
                   "give inline content or a file:// path on the shared host path";
        }

        if (input.Type == "DIRECTORY" || Directory.Exists(source))
        {
            if (!Directory.Exists(source))
            {
                return $"{label}: the directory '{source}' does not exist";
            }

            CopyDirectory(source, target);
        }
        else if (File.Exists(source))
        {
            File.Copy(source, target);
        }
        else
        {
            return $"{label}: the file '{source}' does not exist";
        }

        return null;
    }

    /// <summary>What one executor left; null when it never finished (it has no exit code).</summary>
    public TesExecutorLog? ReadExecutor(int index)
    {
        var exec = Path.Combine(Root, "exec");
        var exitFile = Path.Combine(exec, $"{index}.exit");
        if (!File.Exists(exitFile)
            || !int.TryParse(File.ReadAllText(exitFile).Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var exit))
        {
            return null;
        }

        return new TesExecutorLog
        {
            ExitCode = exit,
            StartTime = ReadText(Path.Combine(exec, $"{index}.start")),
            EndTime = ReadText(Path.Combine(exec, $"{index}.end")),
            Stdout = Tail(Path.Combine(exec, $"{index}.stdout")) ?? "",
            Stderr = Tail(Path.Combine(exec, $"{index}.stderr")) ?? "",
        };
    }

    /// <summary>
    /// Copies each output the last stage collected to its url, in order, up to the first that cannot be delivered.
    /// </summary>
    /// <returns>The outputs delivered, and why the next one could not be, if one could not.</returns>
    public (IReadOnlyList<TesOutputFileLog> Delivered, string? Problem) Deliver(TesTask task)
    {
        ArgumentNullException.ThrowIfNull(task);
        var delivered = new List<TesOutputFileLog>();
        var outputs = task.Outputs ?? [];
        for (var j = 0; j < outputs.Count; j++)
        {
            var output = outputs[j];
            var source = Path.Combine(Root, "outputs", j.ToString(CultureInfo.InvariantCulture));
            var target = LocalPath(output.Url!)!;
            try
            {
                long size;
                if (Directory.Exists(source))
                {
                    CopyDirectory(source, target);
                    size = new DirectoryInfo(target).EnumerateFiles("*", SearchOption.AllDirectories).Sum(f => f.Length);
                }
                else if (File.Exists(source))
                {
                    Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                    File.Copy(source, target, overwrite: true);
                    size = new FileInfo(target).Length;
                }
                else
                {
                    return (delivered, $"outputs[{j}] ({output.Name ?? output.Path}): the executors did not produce {output.Path}");
                }

                delivered.Add(new TesOutputFileLog { Url = output.Url!, Path = output.Path!, SizeBytes = size.ToString(CultureInfo.InvariantCulture) });
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                return (delivered, $"outputs[{j}] ({output.Name ?? output.Path}): cannot deliver to {output.Url}: {ex.Message}");
            }
        }

        return (delivered, null);
    }

    /// <summary>Removes the directory; returns why it could not, if it could not.</summary>
    public string? Delete()
    {
        try
        {
            if (Directory.Exists(Root))
            {
                Directory.Delete(Root, recursive: true);
            }

            return null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return ex.Message;
        }
    }

    /// <summary>The local path of a <c>file://</c> url on this machine; null for any other url.</summary>
    public static string? LocalPath(string url) =>
        Uri.TryCreate(url, UriKind.Absolute, out var uri) && uri.IsFile && uri.IsLoopback ? uri.LocalPath : null;

    // The last LogTailBytes of a file, as UTF-8; null when it does not exist.
    private static string? Tail(string path)
    {
        if (!File.Exists(path))
        {
            return null;
        }

        using var stream = File.OpenRead(path);
        var length = (int)Math.Min(stream.Length, LogTailBytes);
        stream.Seek(-length, SeekOrigin.End);
        var buffer = new byte[length];
        stream.ReadExactly(buffer);
        return Encoding.UTF8.GetString(buffer);
    }

    private static string? ReadText(string path) => File.Exists(path) ? File.ReadAllText(path).Trim() : null;

    private static void CopyDirectory(string source, string target)
    {
        Directory.CreateDirectory(target);
        foreach (var file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
        {
            var destination = Path.Combine(target, Path.GetRelativePath(source, file));
            Directory.CreateDirectory(Path.GetDirectoryName(destination)!);
            File.Copy(file, destination, overwrite: true);
        }
    }
}
