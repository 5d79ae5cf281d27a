namespace HybridBatch.Daemon.Tes;

/// <summary>
/// The <c>resources.backend_parameters</c> this service honours. A task that asks for others is refused when it sets
/// <c>backend_parameters_strict</c>; otherwise they are dropped from the task and named in its system logs.
/// </summary>
internal static class BackendParameters
{
    /// <summary>
    /// The keys honoured, as service-info lists them: the retry policy's (<see cref="TaskRetry"/>). Every
    /// Kubernetes-specific knob (node labels, accelerators, service account) is the deployment's choice here, not a
    /// task's, and a key is listed only once it takes effect.
    /// </summary>
    public static IReadOnlyList<string> Supported { get; } = TaskRetry.Keys;

    /// <summary>Whether a key is honoured; keys are case-insensitive, as the schema says.</summary>
    public static bool IsSupported(string key) => Supported.Contains(key, StringComparer.OrdinalIgnoreCase);

    /// <summary>The keys of <paramref name="resources"/> that are not honoured, in the order given.</summary>
    public static IReadOnlyList<string> Unsupported(TesResources? resources) =>
        [.. resources?.BackendParameters?.Keys.Where(key => !IsSupported(key)) ?? []];

    /// <summary>
    /// Removes the unsupported keys from a task, since the schema says they are neither stored nor returned.
    /// </summary>
    public static IReadOnlyList<string> DropUnsupported(TesTask task)
    {
        ArgumentNullException.ThrowIfNull(task);
        var unsupported = Unsupported(task.Resources);
        foreach (var key in unsupported)
        {
            task.Resources!.BackendParameters!.Remove(key);
        }

        return [.. unsupported.Select(key => $"backend parameter '{key}' is not supported and was ignored")];
    }
}
