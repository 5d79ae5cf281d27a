using System.Text.Json;
using System.Text.Json.Serialization;

namespace HybridBatch.Daemon.Tes;

/// <summary>The TES task states (tesState). Their names (<c>EXECUTOR_ERROR</c>) exist only in <see cref="TesStates"/>.</summary>
[JsonConverter(typeof(TesStateJsonConverter))]
internal enum TesState
{
    Unknown,
    Queued,
    Initializing,
    Running,
    Paused,
    Complete,
    ExecutorError,
    SystemError,
    Canceled,
    Preempted,
    Canceling,
}

/// <summary>
/// The states as the schema spells them, for the boundaries that speak text: JSON, the database's <c>state</c> column,
/// the <c>state</c> query parameter and the metrics' label.
/// </summary>
internal static class TesStates
{
    private static readonly Dictionary<TesState, string> Names = new()
    {
        [TesState.Unknown] = "UNKNOWN",
        [TesState.Queued] = "QUEUED",
        [TesState.Initializing] = "INITIALIZING",
        [TesState.Running] = "RUNNING",
        [TesState.Paused] = "PAUSED",
        [TesState.Complete] = "COMPLETE",
        [TesState.ExecutorError] = "EXECUTOR_ERROR",
        [TesState.SystemError] = "SYSTEM_ERROR",
        [TesState.Canceled] = "CANCELED",
        [TesState.Preempted] = "PREEMPTED",
        [TesState.Canceling] = "CANCELING",
    };

    private static readonly Dictionary<string, TesState> ByName = Names.ToDictionary(kv => kv.Value, kv => kv.Key, StringComparer.Ordinal);

    /// <summary>Every state's name, in the schema's order.</summary>
    public static IReadOnlyList<string> All { get; } = [.. Enum.GetValues<TesState>().Select(Name)];

    public static string Name(TesState state) => Names[state];

    /// <summary>Reads a name exactly as the schema spells it (upper case).</summary>
    public static bool TryParse(string? name, out TesState state) => ByName.TryGetValue(name ?? "", out state);
}

/// <summary>
/// Writes a state by its name. Reads null or a name it does not know as <see cref="TesState.Unknown"/>: a create request
/// may carry any state (the server sets it), and refusing one would refuse a task that was accepted before.
/// </summary>
internal sealed class TesStateJsonConverter : JsonConverter<TesState>
{
    public override TesState Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => reader.TokenType switch
    {
        JsonTokenType.String => TesStates.TryParse(reader.GetString(), out var state) ? state : TesState.Unknown,
        JsonTokenType.Null => TesState.Unknown,
        _ => throw new JsonException(),
    };

    public override void Write(Utf8JsonWriter writer, TesState value, JsonSerializerOptions options)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.WriteStringValue(TesStates.Name(value));
    }
}
