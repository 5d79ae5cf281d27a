using System.Globalization;
using System.Text.RegularExpressions;
using HybridBatch.Core.Api;
using HybridBatch.Resilience;
using HybridBatch.Translation;

namespace HybridBatch;

/// <summary>
/// Settings of a <see cref="KubernetesBatchSystem"/>: Toil's Kubernetes options under Toil's names, plus where the
/// cluster is. Bind them with <see cref="KubernetesBatchSystemConfiguration"/> from flags, environment and configuration,
/// whose <see cref="KubernetesBatchSystemConfiguration.Settings"/> name each one's flag, variables and default; change
/// them with <c>with</c>.
/// </summary>
public sealed partial record KubernetesBatchSystemOptions
{
    /// <summary>The configuration section the options bind from.</summary>
    public const string SectionName = "HybridBatch";

    /// <summary>The image jobs run in when their description names none; the local cluster ships it.</summary>
    public const string DefaultImage = "busybox:1.35";

    /// <summary>The kubeconfig file; null: <c>KUBECONFIG</c>, <c>~/.kube/config</c>, then the in-cluster account.</summary>
    public string? Kubeconfig { get; init; }

    /// <summary>The kubeconfig context; null: the current one.</summary>
    public string? Context { get; init; }

    /// <summary>The namespace for the jobs; null: the context's namespace, else <c>default</c>.</summary>
    public string? Namespace { get; init; }

    /// <summary>The image jobs run in by default.</summary>
    public string Image { get; init; } = DefaultImage;

    /// <summary>
    /// The run's identity, a label on every object. Null: a new one. Giving an earlier run's id re-attaches to its jobs.
    /// </summary>
    public string? RunId { get; init; }

    /// <summary>
    /// What each job runs as: a Job wrapping its pod (the default, as in Toil), or a bare pod with nothing to rerun it
    /// (faster; an evicted or deleted pod's job is <see cref="BatchJobExitReason.Lost"/>). See <see cref="KubernetesObjectKind"/>.
    /// </summary>
    public KubernetesObjectKind ObjectKind { get; init; } = KubernetesObjectKind.Job;

    /// <summary>A path on the nodes shared by the run's jobs as their work directory (Toil's <c>--kubernetesHostPath</c>); null: a per-pod empty directory.</summary>
    public string? HostPath { get; init; }

    /// <summary>
    /// Directories on the nodes that every job mounts read-write at the same path, so that the leader and its jobs see
    /// the same files there: a Toil file job store, a workflow's own scripts. The nodes must share them (a network file
    /// system, or a one-node cluster on the leader's machine); one missing on a node is created there, empty.
    /// </summary>
    public IReadOnlyList<string> SharedPaths { get; init; } = [];

    /// <summary>The user name jobs are marked with (Toil's <c>--kubernetesOwner</c>); null: <see cref="KubernetesBatchSystem.GetDefaultKubernetesOwner"/>.</summary>
    public string? Owner { get; init; }

    /// <summary>The service account jobs run as (Toil's <c>--kubernetesServiceAccount</c>).</summary>
    public string? ServiceAccount { get; init; }

    /// <summary>
    /// How long a pod may stay stuck (unschedulable, image missing, creating) before its job fails (Toil's
    /// <c>--kubernetesPodTimeout</c>, which gives it in seconds). An unschedulable pod's time runs only while no job of
    /// the run is on a node: until then it waits for the room those jobs hold.
    /// </summary>
    public TimeSpan PodTimeout { get; init; } = TimeSpan.FromSeconds(120);

    /// <summary>Run job containers privileged (Toil's <c>--kubernetesPrivileged</c>).</summary>
    public bool Privileged { get; init; }

    /// <summary>A YAML file with a pod security context for every pod (Toil's <c>--kubernetesPodSecurityContext</c>).</summary>
    public string? PodSecurityContext { get; init; }

    /// <summary>A YAML file with a security context for every job container (Toil's <c>--kubernetesSecurityContext</c>).</summary>
    public string? SecurityContext { get; init; }

    /// <summary>
    /// Apply the restrictive default container security context (no privilege escalation, every capability dropped)
    /// when no security context file is given. Set false to run jobs with the runtime's default capabilities.
    /// </summary>
    public bool RestrictedSecurityContext { get; init; } = true;

    /// <summary>The user id job containers run as; null: the image's user.</summary>
    public long? RunAsUser { get; init; }

    /// <summary>Jobs submitted to Kubernetes at once; more wait in the local queue (Toil's <c>--maxJobs</c>).</summary>
    public int MaxJobs { get; init; } = int.MaxValue;

    /// <summary>Cores all running jobs may hold together, and the most one job may ask for (Toil's <c>--maxCores</c>).</summary>
    public double MaxCores { get; init; } = 1_000_000;

    /// <summary>Bytes of memory all running jobs may hold together, and the most one job may ask for (Toil's <c>--maxMemory</c>).</summary>
    public long MaxMemory { get; init; } = long.MaxValue / 4;

    /// <summary>Bytes of disk all running jobs may hold together, and the most one job may ask for (Toil's <c>--maxDisk</c>).</summary>
    public long MaxDisk { get; init; } = long.MaxValue / 4;

    /// <summary>Bytes added to each job's memory and disk for the container's own needs (Toil adds 512 MiB).</summary>
    public long ResourceOverhead { get; init; } = 512L * 1024 * 1024;

    /// <summary>The work directory inside job containers.</summary>
    public string WorkDir { get; init; } = "/var/lib/hybridbatch";

    /// <summary>
    /// How long Kubernetes keeps a finished Job before collecting it itself, as a safety net; whole seconds. Job mode
    /// only: nothing collects a bare pod but the batch system (after its result is taken, and at shutdown).
    /// </summary>
    public TimeSpan FinishedJobTtl { get; init; } = TimeSpan.FromHours(1);

    /// <summary>Create calls in flight at once.</summary>
    public int MaxCreatesInFlight { get; init; } = 32;

    /// <summary>Rate limit, timeouts and retries of Kubernetes calls.</summary>
    public KubernetesResilienceOptions Resilience { get; init; } = new();

    /// <summary>The problems of these options, each saying how to fix it; empty when they are usable.</summary>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if (PodTimeout <= TimeSpan.Zero)
        {
            problems.Add($"the pod timeout {Seconds(PodTimeout)} s is not a positive number of seconds: set --kubernetesPodTimeout to e.g. 120");
        }

        if (!Enum.IsDefined(ObjectKind))
        {
            problems.Add($"the object kind {(int)ObjectKind} is not one of: job, pod (--kubernetesObjectKind)");
        }

        if (MaxJobs < 1)
        {
            problems.Add($"--maxJobs is {MaxJobs}: allow at least 1 job");
        }

        if (double.IsNaN(MaxCores) || MaxCores <= 0 || double.IsInfinity(MaxCores))
        {
            problems.Add($"--maxCores is {MaxCores.ToString(CultureInfo.InvariantCulture)}: give a positive number of cores");
        }

        if (MaxMemory < 1)
        {
            problems.Add($"--maxMemory is {MaxMemory}: give a positive number of bytes");
        }

        if (MaxDisk < 1)
        {
            problems.Add($"--maxDisk is {MaxDisk}: give a positive number of bytes");
        }

        if (ResourceOverhead < 0)
        {
            problems.Add($"the resource overhead is {ResourceOverhead}: give zero or more bytes");
        }

        if (string.IsNullOrWhiteSpace(Image))
        {
            problems.Add("the image is empty: name an image such as busybox:1.35");
        }
        else if (Image.Any(char.IsWhiteSpace))
        {
            problems.Add($"the image '{Image}' contains white space: name an image such as busybox:1.35");
        }

        if (Namespace is not null && !NamespaceName.IsMatch(Namespace))
        {
            problems.Add(
                $"the namespace '{Namespace}' is not a Kubernetes namespace name: use at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit (--namespace)");
        }

        if (RunAsUser is < 0)
        {
            problems.Add($"the user id {RunAsUser} is negative: give a user id of 0 or more, or leave it unset for the image's user");
        }

        if (RunId is not null && Names.CheckRunId(RunId) is { } runIdProblem)
        {
            problems.Add(runIdProblem);
        }

        if (HostPath is not null && !HostPath.StartsWith('/'))
        {
            problems.Add($"the host path '{HostPath}' is not absolute: give a path starting with '/'");
        }

        foreach (var path in SharedPaths)
        {
            if (SharedPathProblem(path) is { } problem)
            {
                problems.Add(problem);
            }
        }

        // "/data" and "/data/" are one mount point: Kubernetes refuses a pod that mounts it twice.
        if (SharedPaths.Select(path => path.TrimEnd('/')).Distinct(StringComparer.Ordinal).Count() < SharedPaths.Count)
        {
            problems.Add($"a shared path is given twice in '{string.Join(':', SharedPaths)}': give each once");
        }

        if (!WorkDir.StartsWith('/'))
        {
            problems.Add($"the work directory '{WorkDir}' is not absolute: give a path starting with '/'");
        }
        else if (JobManifests.FixedMounts.Contains(WorkDir.TrimEnd('/')))
        {
            problems.Add($"the work directory '{WorkDir}' is where job containers mount other volumes: choose another directory, such as /var/lib/hybridbatch");
        }

        if (FinishedJobTtl < TimeSpan.Zero || FinishedJobTtl > TimeSpan.FromSeconds(int.MaxValue) || FinishedJobTtl.Ticks % TimeSpan.TicksPerSecond != 0)
        {
            problems.Add($"the finished job TTL is {Seconds(FinishedJobTtl)} s: give zero or more whole seconds");
        }

        if (MaxCreatesInFlight < 1)
        {
            problems.Add($"creates in flight is {MaxCreatesInFlight}: allow at least 1");
        }

        foreach (var file in new[] { PodSecurityContext, SecurityContext })
        {
            if (file is not null && !File.Exists(file))
            {
                problems.Add($"the security context file '{file}' does not exist: give the path of a YAML file");
            }
        }

        return problems;
    }

    private string? SharedPathProblem(string path)
    {
        if (!path.StartsWith('/'))
        {
            return $"the shared path '{path}' is not absolute: give a path starting with '/'";
        }

        var normal = path.TrimEnd('/');
        if (normal.Length == 0 || normal.Split('/').Any(part => part is "." or ".."))
        {
            return $"the shared path '{path}' is the root or has '.' or '..' in it: give the directory to share, such as /data/jobstore";
        }

        var taken = JobManifests.FixedMounts.Append(WorkDir.TrimEnd('/')).FirstOrDefault(mount => Overlaps(normal, mount));
        return taken is null
            ? null
            : $"the shared path '{path}' overlaps {taken}, where job containers mount another volume: share another directory";
    }

    private static bool Overlaps(string path, string mount) =>
        path == mount || path.StartsWith(mount + "/", StringComparison.Ordinal) || mount.StartsWith(path + "/", StringComparison.Ordinal);

    private static string Seconds(TimeSpan duration) => duration.TotalSeconds.ToString(CultureInfo.InvariantCulture);

    [GeneratedRegex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")]
    private static partial Regex NamespaceName { get; }
}
