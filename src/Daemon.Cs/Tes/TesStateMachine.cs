namespace HybridBatch.Daemon.Tes;

/// <summary>What happens to a task, as the runner observes or decides it.</summary>
internal enum TesEvent
{
    /// <summary>The runner takes the task to stage its inputs and submit its first job (again after a restart during staging).</summary>
    Started,

    /// <summary>The pod of the task's first job runs.</summary>
    PodRunning,

    /// <summary>An attempt did not succeed and the task's retry policy runs it again: its inputs are staged afresh.</summary>
    Retried,

    /// <summary>An executor exited non-zero and did not set <c>ignore_error</c>.</summary>
    ExecutorFailed,

    /// <summary>The system could not run the task: an input, an output, its resources, a pod that ended early.</summary>
    SystemFailed,

    /// <summary>Every executor succeeded and the outputs were delivered.</summary>
    Completed,

    /// <summary>Canceled on request; its job, if it had one, was killed.</summary>
    Canceled,

    /// <summary>Canceled on request while its job cannot be killed yet: the runner is not connected to the cluster.</summary>
    CancelPending,
}

/// <summary>
/// The TES lifecycle as one transition function:
/// QUEUED → INITIALIZING (staging, job submitted) → RUNNING (the pod runs) → COMPLETE, EXECUTOR_ERROR or SYSTEM_ERROR,
/// back to INITIALIZING when a retry policy runs an attempt that did not succeed again, and CANCELED (through CANCELING
/// while the job cannot be killed) from any state that is not final; and how a task's record follows it
/// (<see cref="Move"/>, <see cref="Finish"/>). Pure: the time is an argument.
/// </summary>
/// <remarks>
/// In C#, not in the F# core: the core is the batch system's and knows nothing of TES, and this function needs no more
/// than a switch over two enums, which the transition table test covers case by case.
/// </remarks>
internal static class TesStateMachine
{
    /// <summary>Whether a task in this state never changes again.</summary>
    public static bool IsTerminal(TesState state) =>
        state is TesState.Complete or TesState.ExecutorError or TesState.SystemError or TesState.Canceled or TesState.Preempted;

    /// <summary>
    /// The state a task moves to on an event, or null when the event does not apply to a task in that state (a final
    /// state, a job that is no longer the task's, a second pod of a running task): the caller then changes nothing.
    /// </summary>
    public static TesState? Next(TesState state, TesEvent happened) => (state, happened) switch
    {
        (TesState.Queued or TesState.Initializing, TesEvent.Started) => TesState.Initializing,
        (TesState.Initializing, TesEvent.PodRunning) => TesState.Running,
        (TesState.Initializing or TesState.Running, TesEvent.Retried) => TesState.Initializing,
        (TesState.Initializing or TesState.Running, TesEvent.ExecutorFailed) => TesState.ExecutorError,
        (TesState.Initializing or TesState.Running, TesEvent.SystemFailed) => TesState.SystemError,
        (TesState.Initializing or TesState.Running, TesEvent.Completed) => TesState.Complete,
        (TesState.Queued or TesState.Initializing or TesState.Running or TesState.Canceling, TesEvent.Canceled) => TesState.Canceled,
        (TesState.Initializing or TesState.Running or TesState.Canceling, TesEvent.CancelPending) => TesState.Canceling,
        _ => null,
    };

    /// <summary>Moves a task on an event; false, changing nothing, when the event does not apply to its state.</summary>
    public static bool Move(this TesTask task, TesEvent happened)
    {
        ArgumentNullException.ThrowIfNull(task);
        if (Next(task.State, happened) is not { } next)
        {
            return false;
        }

        task.State = next;
        return true;
    }

    /// <summary>
    /// Moves a task on an event that ends its attempt and closes the attempt's log at <paramref name="now"/>, with a
    /// system message saying why when there is one; changes nothing when the event does not apply.
    /// </summary>
    public static void Finish(this TesTask task, string now, TesEvent happened, string? systemLog)
    {
        if (!task.Move(happened))
        {
            return;
        }

        task.Logs ??= [new TesTaskLog { StartTime = now, SystemLogs = [] }];
        var log = task.Logs[^1];
        log.EndTime = now;
        if (systemLog is not null)
        {
            (log.SystemLogs ??= []).Add(systemLog);
        }
    }
}
