using System.Text.Json;
using System.Text.RegularExpressions;

namespace HybridBatch.Daemon.Tes;

/// <summary>A request that is not valid TES; the message names the field.</summary>
internal sealed class TesValidationException(string field, string message) : Exception(message)
{
    /// <summary>The bad field, as a JSON path such as <c>executors[0].image</c>.</summary>
    public string Field { get; } = field;
}

/// <summary>Checks that a create request is valid TES 1.1.</summary>
internal static partial class TesValidation
{
    [GeneratedRegex("^[-._a-zA-Z][-._a-zA-Z0-9]*$")]
    private static partial Regex EnvironmentName();

    /// <summary>Reads a create request; <paramref name="defaults"/> give the resources of a task that names none.</summary>
    /// <exception cref="TesValidationException">The body is not a valid task.</exception>
    public static TesTask Parse(string body, TesOptions defaults)
    {
        try
        {
            using var document = JsonDocument.Parse(body);
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new TesValidationException("body", "body: expected a task object");
            }
        }
        catch (JsonException ex)
        {
            var where = ex.LineNumber is { } line ? $" at line {line + 1}, byte {ex.BytePositionInLine + 1}" : "";
            throw new TesValidationException("body", $"body: not valid JSON{where}");
        }

        TesTask? task;
        try
        {
            task = JsonSerializer.Deserialize<TesTask>(body, TesJson.Options);
        }
        catch (JsonException ex)
        {
            var field = string.IsNullOrEmpty(ex.Path) ? "body" : ex.Path.TrimStart('$', '.');
            throw new TesValidationException(field, $"{field}: the value has the wrong type or the JSON is malformed ({FirstSentence(ex.Message)})");
        }

        if (task is null)
        {
            throw new TesValidationException("body", "body: expected a task object");
        }

        Validate(task, defaults);
        return task;
    }

    private static string FirstSentence(string message) => message.Split(". ", 2)[0];

    /// <summary>Checks a task; <paramref name="defaults"/> give the resources of a task that names none.</summary>
    /// <exception cref="TesValidationException">A field is invalid.</exception>
    public static void Validate(TesTask task, TesOptions defaults)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(defaults);
        if (task.Executors is not { Count: > 0 } executors)
        {
            throw new TesValidationException("executors", "executors: a task needs at least one executor");
        }

        for (var i = 0; i < executors.Count; i++)
        {
            var e = executors[i] ?? throw new TesValidationException($"executors[{i}]", $"executors[{i}]: expected an executor object");
            if (string.IsNullOrWhiteSpace(e.Image))
            {
                throw new TesValidationException($"executors[{i}].image", $"executors[{i}].image: the image is required and must not be empty");
            }

            if (e.Command is not { Count: > 0 } || string.IsNullOrEmpty(e.Command[0]))
            {
                throw new TesValidationException($"executors[{i}].command", $"executors[{i}].command: give the program and its arguments as a non-empty list");
            }

            Absolute(e.Workdir, $"executors[{i}].workdir");
            Absolute(e.Stdin, $"executors[{i}].stdin");
            Absolute(e.Stdout, $"executors[{i}].stdout");
            Absolute(e.Stderr, $"executors[{i}].stderr");
            foreach (var name in e.Env?.Keys ?? Enumerable.Empty<string>())
            {
                if (!EnvironmentName().IsMatch(name))
                {
                    throw new TesValidationException($"executors[{i}].env", $"executors[{i}].env: '{name}' is not a valid environment variable name");
                }
            }
        }

        for (var i = 0; i < (task.Inputs?.Count ?? 0); i++)
        {
            var input = task.Inputs![i] ?? throw new TesValidationException($"inputs[{i}]", $"inputs[{i}]: expected an input object");
            if (string.IsNullOrEmpty(input.Path))
            {
                throw new TesValidationException($"inputs[{i}].path", $"inputs[{i}].path: the container path is required");
            }

            Absolute(input.Path, $"inputs[{i}].path");
            if (string.IsNullOrEmpty(input.Url) && input.Content is null)
            {
                throw new TesValidationException($"inputs[{i}].url", $"inputs[{i}].url: give a url or inline content");
            }

            FileType(input.Type, $"inputs[{i}].type");
        }

        for (var i = 0; i < (task.Outputs?.Count ?? 0); i++)
        {
            var output = task.Outputs![i] ?? throw new TesValidationException($"outputs[{i}]", $"outputs[{i}]: expected an output object");
            if (string.IsNullOrEmpty(output.Url))
            {
                throw new TesValidationException($"outputs[{i}].url", $"outputs[{i}].url: the destination url is required");
            }

            if (string.IsNullOrEmpty(output.Path))
            {
                throw new TesValidationException($"outputs[{i}].path", $"outputs[{i}].path: the container path is required");
            }

            Absolute(output.Path, $"outputs[{i}].path");
            FileType(output.Type, $"outputs[{i}].type");
        }

        for (var i = 0; i < (task.Volumes?.Count ?? 0); i++)
        {
            Absolute(task.Volumes![i], $"volumes[{i}]");
        }

        if (task.Resources is { } r)
        {
            if (r.CpuCores < 0)
            {
                throw new TesValidationException("resources.cpu_cores", $"resources.cpu_cores: {r.CpuCores} is negative");
            }

            if (r.RamGb is { } ram && (ram < 0 || double.IsNaN(ram)))
            {
                throw new TesValidationException("resources.ram_gb", $"resources.ram_gb: {ram} is negative");
            }

            if (r.DiskGb is { } disk && (disk < 0 || double.IsNaN(disk)))
            {
                throw new TesValidationException("resources.disk_gb", $"resources.disk_gb: {disk} is negative");
            }

            if (r.BackendParametersStrict == true && BackendParameters.Unsupported(r) is [var first, ..] unsupported)
            {
                var field = $"resources.backend_parameters.{first}";
                var named = string.Join(", ", unsupported.Select(k => $"'{k}'"));
                var (what, them) = unsupported.Count == 1 ? ($"backend parameter {named} is", "it") : ($"backend parameters {named} are", "them");
                var supported = BackendParameters.Supported.Count == 0 ? "none" : string.Join(", ", BackendParameters.Supported);
                throw new TesValidationException(
                    field,
                    $"{field}: {what} not supported (this service supports {supported}); " +
                    $"remove {them}, or set backend_parameters_strict to false to have {them} ignored");
            }

            // A supported key with a value that cannot be used is refused, strict or not.
            TaskRetry.Policy(task, defaults);
        }
    }

    private static void Absolute(string? path, string field)
    {
        if (path is not null && !path.StartsWith('/'))
        {
            throw new TesValidationException(field, $"{field}: '{path}' is not an absolute container path");
        }
    }

    private static void FileType(string? type, string field)
    {
        if (type is not null and not "FILE" and not "DIRECTORY")
        {
            throw new TesValidationException(field, $"{field}: '{type}' is not FILE or DIRECTORY");
        }
    }
}
