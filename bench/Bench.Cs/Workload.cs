using System.Globalization;
using k8s.Models;

namespace HybridBatch.Bench;

/// <summary>
/// One end-to-end scenario: how many jobs of which command, on the real node or on fake nodes, run as Jobs or as bare
/// pods (<see cref="ObjectKind"/>: HybridBatch's mode and the baseline loop's objects; a pod-mode scenario also runs
/// HybridBatch in Job mode, for the ratio between the modes).
/// </summary>
internal sealed record Scenario(
    string Name, int Jobs, string Command, int FakeNodes, bool Idle = false, int IdleSeconds = 60, KubernetesObjectKind ObjectKind = KubernetesObjectKind.Job)
{
    public bool OnFakeNodes => FakeNodes > 0;

    public bool PodMode => ObjectKind == KubernetesObjectKind.Pod;

    public static IReadOnlyList<Scenario> Quick { get; } =
    [
        new("real-true-1", 1, "true", 0),
        new("real-sleep1-1", 1, "sleep 1", 0),
        new("real-true-100", 100, "true", 0),
        new("real-sleep1-100", 100, "sleep 1", 0),
    ];

    public static IReadOnlyList<Scenario> Full { get; } =
    [
        .. Quick,
        new("fake10-sleep1-100", 100, "sleep 1", 10),
        new("fake10-sleep1-1000", 1000, "sleep 1", 10),
        new("idle-fake10-1000", 1000, "sleep 3600", 10, Idle: true),
        new("fake10-sleep1-10000", 10000, "sleep 1", 10),
        new("idle-fake10-10000", 10000, "sleep 3600", 10, Idle: true),
        new("fake10-sleep1-1000-pod", 1000, "sleep 1", 10, ObjectKind: KubernetesObjectKind.Pod),
        new("fake10-sleep1-10000-pod", 10000, "sleep 1", 10, ObjectKind: KubernetesObjectKind.Pod),
        new("fake100-sleep1-1000", 1000, "sleep 1", 100),
        new("real-true-1000", 1000, "true", 0),
        new("real-sleep1-1000", 1000, "sleep 1", 0),
    ];

    public static Scenario? Find(string name) => Full.FirstOrDefault(s => s.Name == name) ?? Parse(name);

    /// <summary>Ad-hoc names: <c>real-true-N</c>, <c>fakeK-sleep1-N</c>, <c>idle-fakeK-N</c>; <c>-pod</c> at the end: in pod mode.</summary>
    private static Scenario? Parse(string name)
    {
        if (name.EndsWith("-pod", StringComparison.Ordinal))
        {
            return Parse(name[..^4]) is { Idle: false } job ? job with { Name = name, ObjectKind = KubernetesObjectKind.Pod } : null;
        }

        var parts = name.Split('-');
        if (parts.Length == 3 && parts[0] == "idle" && parts[1].StartsWith("fake", StringComparison.Ordinal)
            && int.TryParse(parts[1].AsSpan(4), CultureInfo.InvariantCulture, out var k) && int.TryParse(parts[2], CultureInfo.InvariantCulture, out var n))
        {
            return new(name, n, "sleep 3600", k, Idle: true);
        }

        if (parts.Length != 3 || !int.TryParse(parts[2], CultureInfo.InvariantCulture, out var jobs))
        {
            return null;
        }

        var command = parts[1] switch { "true" => "true", "sleep1" => "sleep 1", _ => null };
        if (command is null)
        {
            return null;
        }

        if (parts[0] == "real")
        {
            return new(name, jobs, command, 0);
        }

        return parts[0].StartsWith("fake", StringComparison.Ordinal) && int.TryParse(parts[0].AsSpan(4), CultureInfo.InvariantCulture, out var nodes)
            ? new(name, jobs, command, nodes)
            : null;
    }
}

/// <summary>What every job asks for, identical for HybridBatch and the baseline.</summary>
internal static class JobShape
{
    public const double Cores = 0.01;
    public const long Memory = 32L * 1024 * 1024;
    public const long Disk = 32L * 1024 * 1024;

    public static Placement Placement(bool fakeNodes)
    {
        var placement = new Placement();
        if (fakeNodes)
        {
            placement.RequiredLabels[Cluster.FakeNodeLabel] = ["true"];
            placement.ToleratedTaints[Cluster.FakeNodeLabel] = [];
        }

        return placement;
    }

    public static JobDescription Description(bool fakeNodes) =>
        new("bench", Cores, Memory, Disk) { Placement = Placement(fakeNodes) };

    /// <summary>The baseline's bare pod: busybox, requests = limits, restartPolicy Never, same placement.</summary>
    public static V1Pod BaselinePod(string name, string runLabel, string runId, int index, string command, bool fakeNodes)
    {
        var labels = new Dictionary<string, string> { [runLabel] = runId, ["bench.hybridbatch.io/index"] = index.ToString(CultureInfo.InvariantCulture) };
        var resources = new Dictionary<string, ResourceQuantity>
        {
            ["cpu"] = new("10m"),
            ["memory"] = new("32Mi"),
            ["ephemeral-storage"] = new("32Mi"),
        };
        var spec = new V1PodSpec
        {
            RestartPolicy = "Never",
            AutomountServiceAccountToken = false,
            Containers =
            [
                new V1Container
                {
                    Name = "runner-container",
                    Image = KubernetesBatchSystemOptions.DefaultImage,
                    ImagePullPolicy = "IfNotPresent",
                    Command = ["/bin/sh", "-c", command],
                    Resources = new V1ResourceRequirements { Requests = resources, Limits = new Dictionary<string, ResourceQuantity>(resources) },
                    Env = [new V1EnvVar { Name = "TMPDIR", Value = "/var/tmp" }],
                    VolumeMounts = [new V1VolumeMount { MountPath = "/var/lib/hybridbatch", Name = "workdir" }, new V1VolumeMount { MountPath = "/run/lock", Name = "coordination" }],
                    SecurityContext = new V1SecurityContext { AllowPrivilegeEscalation = false, Capabilities = new V1Capabilities { Drop = ["ALL"] } },
                },
            ],
            Volumes =
            [
                new V1Volume { Name = "workdir", EmptyDir = new V1EmptyDirVolumeSource() },
                new V1Volume { Name = "coordination", EmptyDir = new V1EmptyDirVolumeSource() },
            ],
        };
        var placement = Placement(fakeNodes);
        placement.SetPreemptible(false);
        placement.Apply(spec);
        return new V1Pod { ApiVersion = "v1", Kind = "Pod", Metadata = new V1ObjectMeta { Name = name, Labels = labels }, Spec = spec };
    }

    /// <summary>The baseline's Job: <see cref="BaselinePod"/>'s pod as its template, backoffLimit 0.</summary>
    public static V1Job BaselineJob(string name, string runLabel, string runId, int index, string command, bool fakeNodes)
    {
        var pod = BaselinePod(name, runLabel, runId, index, command, fakeNodes);
        return new V1Job
        {
            ApiVersion = "batch/v1",
            Kind = "Job",
            Metadata = new V1ObjectMeta { Name = name, Labels = pod.Metadata.Labels },
            Spec = new V1JobSpec
            {
                BackoffLimit = 0,
                TtlSecondsAfterFinished = 600,
                Template = new V1PodTemplateSpec { Metadata = new V1ObjectMeta { Labels = new Dictionary<string, string>(pod.Metadata.Labels) }, Spec = pod.Spec },
            },
        };
    }

    /// <summary>The job a pod runs: its Job's name (the Job controller's <c>job-name</c> label), else the bare pod's own name.</summary>
    public static string? JobOf(V1Pod pod) =>
        pod.Metadata?.Labels?.TryGetValue("job-name", out var job) == true ? job : pod.Metadata?.Name;
}

/// <summary>The figures of one side (HybridBatch or the baseline) of one scenario.</summary>
internal sealed class SideResult
{
    public double ElapsedS { get; set; }
    public int Returned { get; set; }
    public int NotFinished { get; set; }
    public long Requests { get; set; }
    public Dictionary<string, long> ByVerb { get; set; } = [];
    public List<double> DetectMs { get; } = [];

    /// <summary>Exit → a plain side watch in the same process seeing it: the API server's delivery, for comparison.</summary>
    public List<double> SideWatchMs { get; } = [];
    public List<double> OwnMs { get; } = [];
    public List<double> IssueMs { get; } = [];
    public double CpuS { get; set; }
    public long? BytesPerJob { get; set; }
    public double? IdleRequestsPerS { get; set; }
    public Dictionary<string, long>? IdleByVerb { get; set; }
    public double? IdleCpuS { get; set; }
    public long? ShutdownRequests { get; set; }
    public int Retries { get; set; }
    public double? FirstCreateMs { get; set; }
    public long Start { get; set; }
    public List<string> Warnings { get; } = [];
    public List<string> WatchLog { get; } = [];

    public double JobsPerS(int jobs) => ElapsedS > 0 ? Returned / ElapsedS : 0;
}
