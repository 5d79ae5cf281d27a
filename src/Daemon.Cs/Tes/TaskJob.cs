namespace HybridBatch.Daemon.Tes;

/// <summary>
/// The batch job one stage of a task runs as: the task's resources (or the service's defaults), the stage's image, and
/// its placement (zones as the required node label <c>topology.kubernetes.io/zone</c>, preemptible nodes allowed or not).
/// </summary>
internal static class TaskJob
{
    /// <summary>The job of a stage; <paramref name="memory"/> is the attempt's memory in bytes (a retry's may be more).</summary>
    public static JobDescription Describe(TesTask task, TaskStage stage, TesOptions defaults, long memory)
    {
        var resources = task.Resources;
        return new JobDescription(
            $"tes-{task.Id}-{stage.Index}",
            resources?.CpuCores is { } cores and > 0 ? cores : defaults.DefaultCores,
            memory,
            resources?.DiskGb is { } disk and > 0 ? (long)Math.Ceiling(disk * 1e9) : defaults.DefaultDisk)
        {
            Image = stage.Image,
            Preemptible = resources?.Preemptible ?? false,
            Placement = Placement(resources),
        };
    }

    /// <summary>The memory a task's first attempt asks for: its <c>ram_gb</c> (10^9 bytes), or the service's default.</summary>
    public static long Memory(TesResources? resources, TesOptions defaults) =>
        resources?.RamGb is { } ram and > 0 ? (long)Math.Ceiling(ram * 1e9) : defaults.DefaultMemory;

    private static Placement? Placement(TesResources? resources)
    {
        if (resources is null || (resources.Zones is not { Count: > 0 } && resources.Preemptible is null))
        {
            return null;
        }

        var placement = new Placement();
        if (resources.Zones is { Count: > 0 } zones)
        {
            placement.RequiredLabels["topology.kubernetes.io/zone"] = zones;
        }

        if (resources.Preemptible is { } preemptible)
        {
            placement.SetPreemptible(preemptible);
        }

        return placement;
    }
}
