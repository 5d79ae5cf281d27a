namespace HybridBatch.Daemon.Tes;

/// <summary>
/// How one stage of a task ended, read from the files its executors left in the <see cref="TaskWorkspace"/>; after the
/// last stage, with its outputs delivered. A closed set: the cases below are all there are.
/// </summary>
internal abstract record StageEnd
{
    private StageEnd(IReadOnlyList<TesExecutorLog> executors) => Executors = executors;

    /// <summary>The logs of the stage's executors that finished, in order.</summary>
    public IReadOnlyList<TesExecutorLog> Executors { get; }

    /// <summary>Reads how a stage ended and, when it was the last and every executor succeeded, delivers the outputs.</summary>
    public static StageEnd Read(TesTask task, TaskStage stage, bool last, TaskWorkspace workspace)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(stage);
        ArgumentNullException.ThrowIfNull(workspace);
        var executors = new List<TesExecutorLog>();
        for (var i = stage.From; i < stage.To; i++)
        {
            if (workspace.ReadExecutor(i) is not { } log)
            {
                return new Unfinished(executors);
            }

            executors.Add(log);
            if (log.ExitCode != 0 && task.Executors![i].IgnoreError != true)
            {
                return new ExecutorFailed(executors, log);
            }
        }

        if (!last)
        {
            return new NextStage(executors);
        }

        var (delivered, problem) = workspace.Deliver(task);
        return new Delivered(executors, delivered, problem);
    }

    /// <summary>An executor exited non-zero without <c>ignore_error</c>; the rest were skipped.</summary>
    public sealed record ExecutorFailed(IReadOnlyList<TesExecutorLog> Executors, TesExecutorLog Failed) : StageEnd(Executors);

    /// <summary>The pod ended before every executor had finished (or left no results).</summary>
    public sealed record Unfinished(IReadOnlyList<TesExecutorLog> Executors) : StageEnd(Executors);

    /// <summary>Every executor finished and a further stage follows.</summary>
    public sealed record NextStage(IReadOnlyList<TesExecutorLog> Executors) : StageEnd(Executors);

    /// <summary>The last stage finished; its outputs were delivered up to the first that could not be (<paramref name="Problem"/>).</summary>
    public sealed record Delivered(IReadOnlyList<TesExecutorLog> Executors, IReadOnlyList<TesOutputFileLog> Outputs, string? Problem) : StageEnd(Executors);
}
