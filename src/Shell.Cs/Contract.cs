namespace HybridBatch;

/// <summary>Why a batch job ended, as Toil's <c>BatchJobExitReason</c> names it.</summary>
public enum BatchJobExitReason
{
    /// <summary>The command exited 0.</summary>
    Finished = 1,

    /// <summary>The command exited non-zero.</summary>
    Failed = 2,

    /// <summary>The job's pod or Job vanished or was evicted, or its node was lost.</summary>
    Lost = 3,

    /// <summary>The job was killed on request. Killed jobs are never reported; the value completes Toil's set.</summary>
    Killed = 4,

    /// <summary>The job could not run: create failed, image missing, unschedulable or stuck creating.</summary>
    Error = 5,

    /// <summary>The container exceeded its memory limit and was OOM-killed.</summary>
    MemLimit = 6,
}

/// <summary>An accelerator a job needs, as Toil's <c>AcceleratorRequirement</c> describes it.</summary>
/// <param name="Count">How many (at least 1).</param>
/// <param name="Kind">The kind of accelerator; only <c>gpu</c> can be scheduled on Kubernetes.</param>
/// <param name="Model">A model name, required as the node label <c>accelerator</c> when set.</param>
/// <param name="Brand">The vendor (<c>nvidia</c>, <c>amd</c>); selects the <c>&lt;brand&gt;.com/gpu</c> resource.</param>
/// <param name="Api">The programming API, such as <c>cuda</c> or <c>rocm</c>.</param>
public sealed record AcceleratorRequirement(int Count, string Kind = "gpu", string? Model = null, string? Brand = null, string? Api = null);

/// <summary>What a job needs: Toil's <c>JobDescription</c> as far as a batch system reads it.</summary>
/// <param name="Name">A human-readable name, kept as an annotation on the Kubernetes Job.</param>
/// <param name="Cores">Cores (fractional allowed, at least 0).</param>
/// <param name="Memory">Memory in bytes.</param>
/// <param name="Disk">Scratch disk in bytes.</param>
public sealed record JobDescription(string Name, double Cores, long Memory, long Disk)
{
    /// <summary>Accelerators the job needs.</summary>
    public IReadOnlyList<AcceleratorRequirement> Accelerators { get; init; } = [];

    /// <summary>Whether the job may run on preemptible (spot) nodes.</summary>
    public bool Preemptible { get; init; }

    /// <summary>The container image; the batch system's image when null.</summary>
    public string? Image { get; init; }

    /// <summary>Extra placement constraints (node labels and taints).</summary>
    public Placement? Placement { get; init; }
}

/// <summary>A finished job, returned once by <see cref="KubernetesBatchSystem.GetUpdatedBatchJobAsync"/>.</summary>
/// <param name="JobId">The id <see cref="KubernetesBatchSystem.IssueBatchJobAsync"/> returned.</param>
/// <param name="ExitStatus">The container's exit code; 255 when unavailable.</param>
/// <param name="ExitReason">Why the job ended.</param>
/// <param name="WallTime">From container start to finish; always above zero.</param>
/// <param name="BackingId">The name of the Kubernetes Job that ran it.</param>
public sealed record UpdatedBatchJobInfo(int JobId, int ExitStatus, BatchJobExitReason ExitReason, TimeSpan WallTime, string BackingId)
{
    /// <summary>Why the job ended when the exit status alone does not say (errors, lost jobs, OOM).</summary>
    public string? Message { get; init; }
}

/// <summary>A user script to ship to workers. Auto-deployment does not exist in .NET; the type completes Toil's contract.</summary>
/// <param name="Name">The script's name.</param>
public sealed record UserScript(string Name);

/// <summary>A job asked for more than the batch system may give it.</summary>
public sealed class InsufficientSystemResourcesException : Exception
{
    /// <summary>Creates the exception.</summary>
    public InsufficientSystemResourcesException(string resource, string requested, string available, string message)
        : base(message)
    {
        Resource = resource;
        Requested = requested;
        Available = available;
    }

    /// <summary>The resource that does not suffice: cores, memory, disk or accelerators.</summary>
    public string Resource { get; }

    /// <summary>What the job asked for.</summary>
    public string Requested { get; }

    /// <summary>What the batch system may give.</summary>
    public string Available { get; }
}
