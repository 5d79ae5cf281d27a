using HybridBatch.Testing.Simulation;
using Microsoft.FSharp.Core;

namespace HybridBatch.Testing;

/// <summary>A simulated node: what it can hold, its labels and its taints.</summary>
/// <param name="Name">The node's name, unique in the cluster.</param>
/// <param name="Cores">Cores it can give to pods.</param>
/// <param name="Memory">Bytes of memory it can give to pods.</param>
/// <param name="Disk">Bytes of ephemeral storage it can give to pods.</param>
public sealed record SimulatedNode(string Name, double Cores, long Memory, long Disk)
{
    /// <summary>GPUs it can give to pods.</summary>
    public long Gpus { get; init; }

    /// <summary>Its labels, for the jobs' required, desired and prohibited labels.</summary>
    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();

    /// <summary>Its taints; a job's pod lands here only when it tolerates each that keeps pods off.</summary>
    public IReadOnlyList<SimulatedTaint> Taints { get; init; } = [];

    /// <summary>A node as the F# model (and its generators) describe it.</summary>
    /// <param name="spec">The node.</param>
    /// <returns>The node.</returns>
    public static SimulatedNode Of(NodeSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return new SimulatedNode(spec.name, spec.millicores / 1000.0, spec.memory, spec.disk)
        {
            Gpus = spec.gpus,
            Labels = spec.labels.ToDictionary(kv => kv.Key, kv => kv.Value),
            Taints = [.. spec.taints.Select(t => new SimulatedTaint(t.key, t.value, t.effect.ToString()))],
        };
    }

    internal NodeSpec ToSpec() => new(
        Name ?? "",
        double.IsFinite(Cores) ? (long)Math.Ceiling(Cores * 1000) : -1,
        Memory,
        Disk,
        Gpus,
        new Microsoft.FSharp.Collections.FSharpMap<string, string>(Labels.Select(kv => Tuple.Create(kv.Key, kv.Value))),
        Microsoft.FSharp.Collections.ListModule.OfSeq(Taints.Select(t => t.ToTaint())));
}

/// <summary>A node taint.</summary>
/// <param name="Key">The taint's key.</param>
/// <param name="Value">The taint's value.</param>
/// <param name="Effect">NoSchedule, PreferNoSchedule or NoExecute.</param>
public sealed record SimulatedTaint(string Key, string Value, string Effect = "NoSchedule")
{
    internal Taint ToTaint() => new(Key, Value, Effect switch
    {
        "NoSchedule" => Core.TaintEffect.NoSchedule,
        "PreferNoSchedule" => Core.TaintEffect.PreferNoSchedule,
        "NoExecute" => Core.TaintEffect.NoExecute,
        _ => throw new ArgumentException($"The taint {Key}={Value} has the effect '{Effect}': use NoSchedule, PreferNoSchedule or NoExecute.", nameof(Effect)),
    });
}

/// <summary>What the simulation tells a script about a job whose pod it starts.</summary>
/// <param name="JobId">The job's id.</param>
/// <param name="Name">The job's human-readable name.</param>
/// <param name="Command">Its command.</param>
/// <param name="Image">Its image.</param>
/// <param name="Environment">Its container's environment.</param>
public sealed record SimulatedJob(int JobId, string? Name, string Command, string Image, IReadOnlyList<KeyValuePair<string, string>> Environment);

/// <summary>A pod of a run in the simulated cluster, as a list of pods shows it.</summary>
/// <param name="Name">The pod's name.</param>
/// <param name="JobId">Its job.</param>
/// <param name="Node">The node it is on; null while pending (or evicted before it was placed).</param>
/// <param name="Phase">Pending, Running, Succeeded or Failed, as Kubernetes says.</param>
public sealed record SimulatedPod(string Name, int JobId, string? Node, string Phase)
{
    internal static SimulatedPod Of(Core.JobState.PodFacts facts) => new(
        facts.pod,
        facts.job,
        facts.node?.Value,
        facts.phase.IsRunning ? "Running"
            : facts.phase.IsSucceeded ? "Succeeded"
            : facts.phase.IsFailed ? "Failed"
            : facts.phase.IsUnknown ? "Unknown"
            : "Pending");
}

/// <summary>How a job's pod behaves, as a test scripts it. The default runs one second and exits 0.</summary>
public sealed record PodBehaviour
{
    /// <summary>How long the container runs; null runs it until it is deleted (a wait on it alone never ends).</summary>
    public TimeSpan? RunTime { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>The exit code when it ends by itself (0 to 255).</summary>
    public int ExitCode { get; init; }

    /// <summary>The most memory it uses, in bytes: above the job's memory limit it is OOM-killed (MemLimit) when its run time is up.</summary>
    public long MemoryUsed { get; init; }

    /// <summary>Its image cannot be pulled: it waits (ErrImagePull) until the pod timeout ends it with Error.</summary>
    public bool ImageMissing { get; init; }

    /// <summary>From placement on a node to the container's start.</summary>
    public TimeSpan StartDelay { get; init; }

    /// <summary>The tail of its log, kept for a failed job (<see cref="IBatchSystem.GetFailureLog"/>).</summary>
    public string Log { get; init; } = "";

    /// <summary>Runs for <paramref name="runTime"/> and exits with <paramref name="exitCode"/>.</summary>
    /// <param name="exitCode">The exit code.</param>
    /// <param name="runTime">How long it runs.</param>
    /// <returns>The behaviour.</returns>
    public static PodBehaviour Exits(int exitCode, TimeSpan runTime) => new() { ExitCode = exitCode, RunTime = runTime };

    /// <summary>Runs until it is deleted.</summary>
    public static PodBehaviour RunsForever { get; } = new() { RunTime = null };

    /// <summary>A behaviour as the F# model (and its generators) describe it.</summary>
    /// <param name="script">The script.</param>
    /// <returns>The behaviour.</returns>
    public static PodBehaviour Of(PodScript script)
    {
        ArgumentNullException.ThrowIfNull(script);
        return new PodBehaviour
        {
            StartDelay = TimeSpan.FromMilliseconds(script.startDelay),
            RunTime = script.runTime is { } run ? TimeSpan.FromMilliseconds(run.Value) : null,
            ExitCode = script.exitCode,
            MemoryUsed = script.memoryUsed,
            ImageMissing = script.imageMissing,
            Log = script.log,
        };
    }

    internal PodScript ToScript() => new(
        (long)StartDelay.TotalMilliseconds,
        RunTime is { } run ? FSharpOption<long>.Some((long)run.TotalMilliseconds) : FSharpOption<long>.None,
        ExitCode,
        MemoryUsed,
        ImageMissing,
        Log ?? "");
}

/// <summary>A wait that cannot end: nothing is scheduled to happen, yet jobs wait. The message names them.</summary>
public sealed class SimulationStalledException : InvalidOperationException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">Which jobs wait, and for what.</param>
    public SimulationStalledException(string message)
        : base(message)
    {
    }
}
