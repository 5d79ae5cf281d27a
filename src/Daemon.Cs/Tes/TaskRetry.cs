using System.Globalization;
using HybridBatch.Core;
using HybridBatch.Core.Api;

namespace HybridBatch.Daemon.Tes;

/// <summary>
/// The retry policy a task asks for through <c>resources.backend_parameters</c>, the jobs file's <c>retry:</c> as four
/// keys: <c>hybridbatch_retry_on</c> (exit reasons separated by commas: failed, lost, error, memlimit),
/// <c>hybridbatch_retry_attempts</c> (attempts in all, the first included), <c>hybridbatch_retry_memory_factor</c> and
/// <c>hybridbatch_retry_memory_max</c>. The core checks it and decides after each attempt; each attempt is one entry of
/// the task's <c>logs</c>, as TES models attempts.
/// </summary>
internal static class TaskRetry
{
    public const string On = "hybridbatch_retry_on";
    public const string Attempts = "hybridbatch_retry_attempts";
    public const string MemoryFactor = "hybridbatch_retry_memory_factor";
    public const string MemoryMax = "hybridbatch_retry_memory_max";

    /// <summary>The metadata key of an attempt's log that holds the memory it asked for.</summary>
    public const string MemoryMetadata = "memory";

    /// <summary>The keys, as service-info lists them.</summary>
    public static IReadOnlyList<string> Keys { get; } = [On, Attempts, MemoryFactor, MemoryMax];

    /// <summary>The task's retry policy; null when it gives none of the keys.</summary>
    /// <exception cref="TesValidationException">A key's value cannot be used; the field names the key as the task spells it.</exception>
    public static RetryPolicy? Policy(TesTask task, TesOptions defaults)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(defaults);
        if (task.Resources?.BackendParameters is not { Count: > 0 } parameters || !Keys.Any(key => Find(parameters, key) is not null))
        {
            return null;
        }

        var on = Find(parameters, On)?.Value;
        var check = RetryPolicies.Check(
            on is null ? null : [on],
            Find(parameters, Attempts)?.Value,
            Find(parameters, MemoryFactor)?.Value,
            Find(parameters, MemoryMax)?.Value,
            TaskJob.Memory(task.Resources, defaults));
        if (check.Policy is { } policy)
        {
            return policy;
        }

        var problem = check.Problem!;
        var key = problem.Field switch
        {
            "on" => On,
            "attempts" => Attempts,
            "memory.factor" => MemoryFactor,
            _ => MemoryMax,
        };
        var field = $"resources.backend_parameters.{Find(parameters, key)?.Key ?? key}";
        throw new TesValidationException(field, $"{field}: {problem.Message}");
    }

    /// <summary>The memory the task's current attempt asks for: its log's, else the task's resources'.</summary>
    public static long Memory(TesTask task, TesOptions defaults)
    {
        ArgumentNullException.ThrowIfNull(task);
        return task.Logs is [.., { Metadata: { } metadata }]
            && metadata.TryGetValue(MemoryMetadata, out var text)
            && ByteQuantity.TryParse(text, out var bytes)
                ? bytes
                : TaskJob.Memory(task.Resources, defaults);
    }

    /// <summary>The metadata of an attempt's log: the daemon's run, the attempt's number and its memory.</summary>
    public static Dictionary<string, string> Metadata(string runId, int attempt, long memory) => new()
    {
        ["run_id"] = runId,
        ["attempt"] = attempt.ToString(CultureInfo.InvariantCulture),
        [MemoryMetadata] = ByteQuantity.Format(memory),
    };

    /// <summary>The exit reason of a stage that did not succeed, as a policy sees it.</summary>
    /// <remarks>
    /// An executor that exited non-zero failed, unless the container was killed for memory; a pod that ended before its
    /// executors finished ended as the batch system says, and one whose end the daemon did not see (it was down) was lost.
    /// </remarks>
    public static ExitCode Reason(StageEnd ended, UpdatedBatchJobInfo? result) => (ended, result) switch
    {
        (_, { ExitReason: BatchJobExitReason.MemLimit }) => ExitCode.MemLimit,
        (StageEnd.ExecutorFailed, _) => ExitCode.Failed,
        (_, { ExitReason: not BatchJobExitReason.Finished and var reason }) => (ExitCode)(int)reason,
        _ => ExitCode.Lost,
    };

    // Keys are case-insensitive, as the schema says; the first spelling given wins.
    private static KeyValuePair<string, string>? Find(Dictionary<string, string> parameters, string key) =>
        parameters.FirstOrDefault(p => string.Equals(p.Key, key, StringComparison.OrdinalIgnoreCase)) is { Key: not null } found ? found : null;
}
