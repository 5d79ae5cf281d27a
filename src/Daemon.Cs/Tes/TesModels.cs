using System.Text.Json;
using System.Text.Json.Serialization;

namespace HybridBatch.Daemon.Tes;

/// <summary>TES task states (tesState).</summary>
public static class TesState
{
    /// <summary>The state is unknown.</summary>
    public const string Unknown = "UNKNOWN";

    /// <summary>Waiting to be staged.</summary>
    public const string Queued = "QUEUED";

    /// <summary>Inputs are being staged and the pod started.</summary>
    public const string Initializing = "INITIALIZING";

    /// <summary>The executors run.</summary>
    public const string Running = "RUNNING";

    /// <summary>Paused (never used here).</summary>
    public const string Paused = "PAUSED";

    /// <summary>Every executor succeeded and the outputs were delivered.</summary>
    public const string Complete = "COMPLETE";

    /// <summary>An executor exited non-zero.</summary>
    public const string ExecutorError = "EXECUTOR_ERROR";

    /// <summary>The system could not run the task.</summary>
    public const string SystemError = "SYSTEM_ERROR";

    /// <summary>Cancelled on request.</summary>
    public const string Canceled = "CANCELED";

    /// <summary>Preempted (never used here).</summary>
    public const string Preempted = "PREEMPTED";

    /// <summary>Being cancelled.</summary>
    public const string Canceling = "CANCELING";

    /// <summary>Every state, as the schema lists them.</summary>
    public static IReadOnlyList<string> All { get; } =
        [Unknown, Queued, Initializing, Running, Paused, Complete, ExecutorError, SystemError, Canceled, Preempted, Canceling];

    /// <summary>Whether a task in this state will not change again.</summary>
    /// <param name="state">The state.</param>
    /// <returns>True for COMPLETE, EXECUTOR_ERROR, SYSTEM_ERROR, CANCELED and PREEMPTED.</returns>
    public static bool IsTerminal(string state) =>
        state is Complete or ExecutorError or SystemError or Canceled or Preempted;
}

/// <summary>A TES task (tesTask).</summary>
public sealed class TesTask
{
    /// <summary>The id the server assigned.</summary>
    public string? Id { get; set; }

    /// <summary>The state.</summary>
    public string? State { get; set; }

    /// <summary>A user-given name.</summary>
    public string? Name { get; set; }

    /// <summary>A user-given description.</summary>
    public string? Description { get; set; }

    /// <summary>Files placed in the container before the executors run.</summary>
    public List<TesInput>? Inputs { get; set; }

    /// <summary>Files copied out after the executors ran.</summary>
    public List<TesOutput>? Outputs { get; set; }

    /// <summary>What the task needs.</summary>
    public TesResources? Resources { get; set; }

    /// <summary>The commands, run in order.</summary>
    public List<TesExecutor>? Executors { get; set; }

    /// <summary>Container paths shared between executors.</summary>
    public List<string>? Volumes { get; set; }

    /// <summary>User-given key/value tags.</summary>
    public Dictionary<string, string>? Tags { get; set; }

    /// <summary>Logs of each attempt.</summary>
    public List<TesTaskLog>? Logs { get; set; }

    /// <summary>When the task was created (RFC 3339).</summary>
    public string? CreationTime { get; set; }
}

/// <summary>An input file (tesInput).</summary>
public sealed class TesInput
{
    /// <summary>A name.</summary>
    public string? Name { get; set; }

    /// <summary>A description.</summary>
    public string? Description { get; set; }

    /// <summary>Where the file comes from.</summary>
    public string? Url { get; set; }

    /// <summary>Where it goes in the container.</summary>
    public string? Path { get; set; }

    /// <summary>FILE or DIRECTORY.</summary>
    public string? Type { get; set; }

    /// <summary>The file's content, instead of a URL.</summary>
    public string? Content { get; set; }

    /// <summary>Whether the file may be streamed.</summary>
    public bool? Streamable { get; set; }
}

/// <summary>An output file (tesOutput).</summary>
public sealed class TesOutput
{
    /// <summary>A name.</summary>
    public string? Name { get; set; }

    /// <summary>A description.</summary>
    public string? Description { get; set; }

    /// <summary>Where the file goes.</summary>
    public string? Url { get; set; }

    /// <summary>Where it is in the container.</summary>
    public string? Path { get; set; }

    /// <summary>A prefix for wildcard outputs.</summary>
    public string? PathPrefix { get; set; }

    /// <summary>FILE or DIRECTORY.</summary>
    public string? Type { get; set; }
}

/// <summary>What a task needs (tesResources).</summary>
public sealed class TesResources
{
    /// <summary>Cores.</summary>
    public int? CpuCores { get; set; }

    /// <summary>Whether the task may run on preemptible nodes.</summary>
    public bool? Preemptible { get; set; }

    /// <summary>Memory in GB.</summary>
    public double? RamGb { get; set; }

    /// <summary>Disk in GB.</summary>
    public double? DiskGb { get; set; }

    /// <summary>Zones the task may run in.</summary>
    public List<string>? Zones { get; set; }

    /// <summary>Backend-specific parameters.</summary>
    public Dictionary<string, string>? BackendParameters { get; set; }

    /// <summary>Whether unsupported backend parameters fail the task.</summary>
    public bool? BackendParametersStrict { get; set; }
}

/// <summary>A command to run (tesExecutor).</summary>
public sealed class TesExecutor
{
    /// <summary>The container image.</summary>
    public string? Image { get; set; }

    /// <summary>The program and its arguments.</summary>
    public List<string>? Command { get; set; }

    /// <summary>The working directory.</summary>
    public string? Workdir { get; set; }

    /// <summary>A container path read as standard input.</summary>
    public string? Stdin { get; set; }

    /// <summary>A container path standard output is written to.</summary>
    public string? Stdout { get; set; }

    /// <summary>A container path standard error is written to.</summary>
    public string? Stderr { get; set; }

    /// <summary>Environment variables.</summary>
    public Dictionary<string, string>? Env { get; set; }

    /// <summary>Whether a non-zero exit goes on to the next executor.</summary>
    public bool? IgnoreError { get; set; }
}

/// <summary>The log of one attempt (tesTaskLog).</summary>
public sealed class TesTaskLog
{
    /// <summary>One log per executor that ran.</summary>
    public List<TesExecutorLog> Logs { get; set; } = [];

    /// <summary>Backend details.</summary>
    public Dictionary<string, string>? Metadata { get; set; }

    /// <summary>When the attempt started.</summary>
    public string? StartTime { get; set; }

    /// <summary>When it ended.</summary>
    public string? EndTime { get; set; }

    /// <summary>The outputs delivered.</summary>
    public List<TesOutputFileLog> Outputs { get; set; } = [];

    /// <summary>System messages (why a task failed to run).</summary>
    public List<string>? SystemLogs { get; set; }
}

/// <summary>The log of one executor (tesExecutorLog).</summary>
public sealed class TesExecutorLog
{
    /// <summary>When it started.</summary>
    public string? StartTime { get; set; }

    /// <summary>When it ended.</summary>
    public string? EndTime { get; set; }

    /// <summary>The tail of its standard output.</summary>
    public string? Stdout { get; set; }

    /// <summary>The tail of its standard error.</summary>
    public string? Stderr { get; set; }

    /// <summary>Its exit code.</summary>
    public int ExitCode { get; set; }
}

/// <summary>A delivered output (tesOutputFileLog).</summary>
public sealed class TesOutputFileLog
{
    /// <summary>Where it went.</summary>
    public string Url { get; set; } = "";

    /// <summary>Where it was in the container.</summary>
    public string Path { get; set; } = "";

    /// <summary>Its size (a string, as the schema says).</summary>
    public string SizeBytes { get; set; } = "0";
}

/// <summary>JSON settings of the TES API: snake_case names, nulls left out.</summary>
public static class TesJson
{
    /// <summary>The serializer options.</summary>
    public static JsonSerializerOptions Options { get; } = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DictionaryKeyPolicy = null,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        NumberHandling = JsonNumberHandling.Strict,
    };
}
