using System.Text.Json;
using System.Text.Json.Serialization;

namespace HybridBatch.Daemon.Tes;

// The JSON models of the TES 1.1 schema (task_execution_service.openapi.yaml), named after its types. A task is stored
// as this JSON too; the database's columns only index it.

/// <summary>A TES task (tesTask).</summary>
internal sealed class TesTask
{
    public string? Id { get; set; }

    /// <summary>Set by the server; what a create request gives is ignored.</summary>
    public TesState State { get; set; }

    public string? Name { get; set; }

    public string? Description { get; set; }

    public List<TesInput>? Inputs { get; set; }

    public List<TesOutput>? Outputs { get; set; }

    public TesResources? Resources { get; set; }

    /// <summary>The commands, run in order.</summary>
    public List<TesExecutor>? Executors { get; set; }

    /// <summary>Container paths shared between executors.</summary>
    public List<string>? Volumes { get; set; }

    public Dictionary<string, string>? Tags { get; set; }

    /// <summary>Logs of each attempt.</summary>
    public List<TesTaskLog>? Logs { get; set; }

    /// <summary>When the task was created (RFC 3339).</summary>
    public string? CreationTime { get; set; }
}

/// <summary>An input file (tesInput): from a url, or inline content.</summary>
internal sealed class TesInput
{
    public string? Name { get; set; }

    public string? Description { get; set; }

    public string? Url { get; set; }

    /// <summary>Where it goes in the container.</summary>
    public string? Path { get; set; }

    /// <summary>FILE or DIRECTORY.</summary>
    public string? Type { get; set; }

    public string? Content { get; set; }

    public bool? Streamable { get; set; }
}

/// <summary>An output file (tesOutput), copied from the container to a url after the executors ran.</summary>
internal sealed class TesOutput
{
    public string? Name { get; set; }

    public string? Description { get; set; }

    public string? Url { get; set; }

    /// <summary>Where it is in the container.</summary>
    public string? Path { get; set; }

    public string? PathPrefix { get; set; }

    /// <summary>FILE or DIRECTORY.</summary>
    public string? Type { get; set; }
}

/// <summary>What a task needs (tesResources).</summary>
internal sealed class TesResources
{
    public int? CpuCores { get; set; }

    public bool? Preemptible { get; set; }

    /// <summary>Memory in GB (10^9 bytes).</summary>
    public double? RamGb { get; set; }

    /// <summary>Disk in GB (10^9 bytes).</summary>
    public double? DiskGb { get; set; }

    public List<string>? Zones { get; set; }

    public Dictionary<string, string>? BackendParameters { get; set; }

    public bool? BackendParametersStrict { get; set; }
}

/// <summary>A command to run (tesExecutor).</summary>
internal sealed class TesExecutor
{
    public string? Image { get; set; }

    /// <summary>The program and its arguments.</summary>
    public List<string>? Command { get; set; }

    public string? Workdir { get; set; }

    /// <summary>A container path read as standard input.</summary>
    public string? Stdin { get; set; }

    /// <summary>A container path standard output is also written to.</summary>
    public string? Stdout { get; set; }

    /// <summary>A container path standard error is also written to.</summary>
    public string? Stderr { get; set; }

    public Dictionary<string, string>? Env { get; set; }

    /// <summary>Whether a non-zero exit goes on to the next executor.</summary>
    public bool? IgnoreError { get; set; }
}

/// <summary>The log of one attempt (tesTaskLog).</summary>
internal sealed class TesTaskLog
{
    /// <summary>One log per executor that ran.</summary>
    public List<TesExecutorLog> Logs { get; set; } = [];

    public Dictionary<string, string>? Metadata { get; set; }

    public string? StartTime { get; set; }

    public string? EndTime { get; set; }

    /// <summary>The outputs delivered.</summary>
    public List<TesOutputFileLog> Outputs { get; set; } = [];

    /// <summary>System messages (why a task failed to run).</summary>
    public List<string>? SystemLogs { get; set; }
}

/// <summary>The log of one executor (tesExecutorLog).</summary>
internal sealed class TesExecutorLog
{
    public string? StartTime { get; set; }

    public string? EndTime { get; set; }

    /// <summary>The tail of its standard output.</summary>
    public string? Stdout { get; set; }

    /// <summary>The tail of its standard error.</summary>
    public string? Stderr { get; set; }

    public int ExitCode { get; set; }
}

/// <summary>A delivered output (tesOutputFileLog).</summary>
internal sealed class TesOutputFileLog
{
    public string Url { get; set; } = "";

    public string Path { get; set; } = "";

    /// <summary>Its size (a string, as the schema says).</summary>
    public string SizeBytes { get; set; } = "0";
}

/// <summary>JSON settings of the TES API: snake_case names, nulls left out.</summary>
internal static class TesJson
{
    public static JsonSerializerOptions Options { get; } = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DictionaryKeyPolicy = null,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        NumberHandling = JsonNumberHandling.Strict,
    };
}
