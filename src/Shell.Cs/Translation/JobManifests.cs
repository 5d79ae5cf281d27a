using System.Globalization;
using HybridBatch.Core.Api;
using k8s;
using k8s.Models;

namespace HybridBatch.Translation;

/// <summary>Builds the Kubernetes Job or bare pod of a batch job, as Toil's <c>_create_pod_spec</c> and <c>_launch_job</c> do.</summary>
/// <param name="options">The batch system's options.</param>
/// <param name="runId">The run's identity.</param>
/// <param name="owner">Who issues the jobs.</param>
internal sealed class JobManifests(KubernetesBatchSystemOptions options, string runId, string owner)
{
    /// <summary>The annotation that keeps the cluster autoscaler from evicting a job's pod.</summary>
    public const string SafeToEvict = "cluster-autoscaler.kubernetes.io/safe-to-evict";

    /// <summary>The annotation carrying the job's human-readable name.</summary>
    public const string NameAnnotation = "hybridbatch.io/name";

    /// <summary>The annotation carrying the pool request (millicores, memory, disk), read back when re-attaching.</summary>
    public const string RequestAnnotation = "hybridbatch.io/request";

    /// <summary>The container's name, as in Toil.</summary>
    public const string ContainerName = "runner-container";

    /// <summary>Where <c>TMPDIR</c> points, as in Toil; a scratch volume is mounted there.</summary>
    public const string ScratchDirectory = "/var/tmp";

    /// <summary>The lock directory jobs coordinate through: the node's /run/lock with a host path, else the pod's own.</summary>
    public const string CoordinationDirectory = "/run/lock";

    /// <summary>The name of the job's scratch volume.</summary>
    public const string ScratchVolume = "scratch";

    /// <summary>Directories the job container always mounts something at, which the work directory must not be.</summary>
    public static readonly IReadOnlyList<string> FixedMounts = [ScratchDirectory, CoordinationDirectory];

    private readonly V1SecurityContext? _containerSecurity = Load<V1SecurityContext>(options.SecurityContext);
    private readonly V1PodSecurityContext? _podSecurity = Load<V1PodSecurityContext>(options.PodSecurityContext);

    /// <summary>What each job runs as: a Job wrapping its pod, or a bare pod.</summary>
    public KubernetesObjectKind Kind => options.ObjectKind;

    /// <summary>The objects a job runs as, for messages: "Job" or "pod".</summary>
    public string Noun => Kind == KubernetesObjectKind.Pod ? "pod" : "Job";

    /// <summary>The label selector of this run's job objects (not its cleanup Jobs).</summary>
    public string JobSelector { get; } = $"{Names.RunLabel}={runId},{Names.JobIdLabel}";

    private static T? Load<T>(string? file)
        where T : class
    {
        if (file is null)
        {
            return null;
        }

        try
        {
            return KubernetesYaml.Deserialize<T>(File.ReadAllText(file));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or YamlDotNet.Core.YamlException)
        {
            throw new ArgumentException($"the security context file '{file}' could not be read as a {typeof(T).Name}: {ex.Message}", ex);
        }
    }

    /// <summary>The labels of a job's Job and pod, or of its bare pod.</summary>
    public Dictionary<string, string> Labels(int id) => new()
    {
        [Names.RunLabel] = runId,
        [Names.OwnerLabel] = Names.OwnerValue(owner),
        [Names.JobIdLabel] = id.ToString(CultureInfo.InvariantCulture),
    };

    /// <summary>
    /// The pod of a prepared job, as a bare pod (<see cref="KubernetesObjectKind.Pod"/>) and as the template of its Job:
    /// the one mapping from what the core prepared to the Kubernetes object.
    /// </summary>
    /// <param name="job">What the core prepared, from <see cref="Jobs.Manifest"/>.</param>
    public V1Pod BuildPod(JobManifest job)
    {
        var labels = Labels(job.Id);
        var annotations = new Dictionary<string, string>
        {
            [SafeToEvict] = "false",
            [NameAnnotation] = job.Description!,
            [RequestAnnotation] = string.Create(CultureInfo.InvariantCulture, $"{job.Millicores},{job.Memory},{job.Disk}"),
        };

        var env = new Dictionary<string, string>(StringComparer.Ordinal) { ["TMPDIR"] = ScratchDirectory };
        foreach (var (key, value) in job.Environment)
        {
            env[key] = value;
        }

        var container = new V1Container
        {
            Name = ContainerName,
            Image = job.Image,
            ImagePullPolicy = "IfNotPresent",
            Command = ["/bin/sh", "-c", job.Command],
            Env = [.. env.Select(kv => new V1EnvVar { Name = kv.Key, Value = kv.Value })],
            Resources = new V1ResourceRequirements
            {
                Requests = job.Requests.ToDictionary(kv => kv.Key, kv => new ResourceQuantity(kv.Value)),
                Limits = job.Limits.ToDictionary(kv => kv.Key, kv => new ResourceQuantity(kv.Value)),
            },
            VolumeMounts =
            [
                new V1VolumeMount { MountPath = options.WorkDir, Name = "workdir" },
                new V1VolumeMount { MountPath = CoordinationDirectory, Name = "coordination" },
                new V1VolumeMount { MountPath = ScratchDirectory, Name = ScratchVolume },
                .. options.SharedPaths.Select((path, i) => new V1VolumeMount { MountPath = path, Name = SharedVolume(i) }),
            ],
            SecurityContext = ContainerSecurity(),
        };

        var spec = new V1PodSpec
        {
            Containers = [container],
            RestartPolicy = "Never",
            Volumes =
            [
                .. Volumes(),
                Scratch(job.Requests),
                .. options.SharedPaths.Select((path, i) =>
                    new V1Volume { Name = SharedVolume(i), HostPath = new V1HostPathVolumeSource { Path = path, Type = "DirectoryOrCreate" } }),
            ],
            SecurityContext = _podSecurity,
            ServiceAccountName = options.ServiceAccount,
            // A job gets API credentials only when it is given an account to use them with.
            AutomountServiceAccountToken = options.ServiceAccount is not null,
        };

        PlacementMapping.Apply(job.Placement, spec);

        return new V1Pod
        {
            ApiVersion = "v1",
            Kind = "Pod",
            Metadata = new V1ObjectMeta { Name = job.Name, Labels = labels, Annotations = annotations },
            Spec = spec,
        };
    }

    /// <summary>
    /// The Job of a prepared job (<see cref="KubernetesObjectKind.Job"/>): <see cref="BuildPod"/>'s pod as its template,
    /// its name, labels and annotations on the Job too, at most one pod (backoff limit 0).
    /// </summary>
    /// <param name="job">What the core prepared, from <see cref="Jobs.Manifest"/>.</param>
    public V1Job Build(JobManifest job)
    {
        var pod = BuildPod(job);
        return new V1Job
        {
            ApiVersion = "batch/v1",
            Kind = "Job",
            Metadata = new V1ObjectMeta
            {
                Name = pod.Metadata.Name,
                Labels = new Dictionary<string, string>(pod.Metadata.Labels),
                Annotations = new Dictionary<string, string>(pod.Metadata.Annotations),
            },
            Spec = new V1JobSpec
            {
                BackoffLimit = 0,
                TtlSecondsAfterFinished = (int)options.FinishedJobTtl.TotalSeconds,
                // The Job controller names the pod itself (name-xxxxx); the template carries labels and annotations only.
                Template = new V1PodTemplateSpec
                {
                    Metadata = new V1ObjectMeta { Labels = pod.Metadata.Labels, Annotations = pod.Metadata.Annotations },
                    Spec = pod.Spec,
                },
            },
        };
    }

    private V1SecurityContext? ContainerSecurity()
    {
        var context = _containerSecurity is null ? null : KubernetesJson.Deserialize<V1SecurityContext>(KubernetesJson.Serialize(_containerSecurity));
        if (context is null && options.RestrictedSecurityContext && !options.Privileged)
        {
            context = new V1SecurityContext
            {
                AllowPrivilegeEscalation = false,
                Capabilities = new V1Capabilities { Drop = ["ALL"] },
            };
        }

        if (options.Privileged)
        {
            context ??= new V1SecurityContext();
            context.Privileged = true;
        }

        if (options.RunAsUser is { } user)
        {
            context ??= new V1SecurityContext();
            context.RunAsUser = user;
        }

        return context;
    }

    private List<V1Volume> Volumes()
    {
        if (options.HostPath is { } hostPath)
        {
            return
            [
                new V1Volume { Name = "workdir", HostPath = new V1HostPathVolumeSource { Path = RunDirectory(hostPath), Type = "DirectoryOrCreate" } },
                new V1Volume { Name = "coordination", HostPath = new V1HostPathVolumeSource { Path = "/run/lock", Type = "Directory" } },
            ];
        }

        return
        [
            new V1Volume { Name = "workdir", EmptyDir = new V1EmptyDirVolumeSource() },
            new V1Volume { Name = "coordination", EmptyDir = new V1EmptyDirVolumeSource() },
        ];
    }

    // The job's TMPDIR, so mktemp works in any image, also one without /var/tmp (it hides the image's own /var/tmp).
    // Its size limit is the job's ephemeral-storage request, not an addition to it: the kubelet counts emptyDir usage
    // toward the pod's ephemeral storage, whose limit is the container's (equal to its request), so scratch, work
    // directory, writable layer and logs share the one disk budget the job was scheduled with. A size limit is no
    // request, so nothing is asked for twice; it states the volume's share, and an eviction for it names the volume.
    // The kubelet creates the directory 0777, so any user the job runs as can write; no sticky bit is needed, as the
    // pod has the directory to itself.
    private static V1Volume Scratch(IReadOnlyDictionary<string, string> requests) => new()
    {
        Name = ScratchVolume,
        EmptyDir = new V1EmptyDirVolumeSource
        {
            SizeLimit = requests.TryGetValue("ephemeral-storage", out var disk) ? new ResourceQuantity(disk) : null,
        },
    };

    /// <summary>The volume name of the <paramref name="index"/>th of <see cref="KubernetesBatchSystemOptions.SharedPaths"/>.</summary>
    public static string SharedVolume(int index) => "shared-" + index.ToString(CultureInfo.InvariantCulture);

    /// <summary>The run's own directory under the shared host path: what node cleanup removes.</summary>
    public string RunDirectory(string hostPath) => $"{hostPath.TrimEnd('/')}/{runId}";

    /// <summary>How long a cleanup Job may wait for its node (gone, cordoned or full for that long: nothing left to clean, or the node's own cleanup).</summary>
    public static readonly TimeSpan CleanupDeadline = TimeSpan.FromMinutes(30);

    /// <summary>
    /// A short Job, pinned to <paramref name="node"/>, that removes the run's work directory there. Pinned through the
    /// scheduler (a required node affinity on the node's name, as the DaemonSet controller pins its pods), not
    /// <c>nodeName</c>: a pod given a node directly skips the scheduler, and a node full of other pods makes its
    /// kubelet fail it at once (OutOfcpu, OutOfmemory, OutOfpods), so the Job would give up after its few retries and the
    /// directory would stay. Through the scheduler it waits until the node has room.
    /// </summary>
    public V1Job? Cleanup(string node)
    {
        if (options.HostPath is not { } hostPath)
        {
            return null;
        }

        var labels = new Dictionary<string, string>
        {
            [Names.RunLabel] = runId,
            [Names.OwnerLabel] = Names.OwnerValue(owner),
            [Names.CleanupLabel] = "node",
        };
        var parent = hostPath.TrimEnd('/');
        return new V1Job
        {
            ApiVersion = "batch/v1",
            Kind = "Job",
            Metadata = new V1ObjectMeta { Name = Names.CleanupName(runId, node), Labels = labels },
            Spec = new V1JobSpec
            {
                BackoffLimit = 2,
                TtlSecondsAfterFinished = 60,
                ActiveDeadlineSeconds = (long)CleanupDeadline.TotalSeconds,
                Template = new V1PodTemplateSpec
                {
                    Metadata = new V1ObjectMeta { Labels = new Dictionary<string, string>(labels) },
                    Spec = new V1PodSpec
                    {
                        Affinity = new V1Affinity
                        {
                            NodeAffinity = new V1NodeAffinity
                            {
                                RequiredDuringSchedulingIgnoredDuringExecution = new V1NodeSelector
                                {
                                    NodeSelectorTerms =
                                    [
                                        new V1NodeSelectorTerm
                                        {
                                            MatchFields = [new V1NodeSelectorRequirement { Key = "metadata.name", OperatorProperty = "In", Values = [node] }],
                                        },
                                    ],
                                },
                            },
                        },
                        RestartPolicy = "Never",
                        AutomountServiceAccountToken = false,
                        Tolerations = [new V1Toleration { OperatorProperty = "Exists" }],
                        Containers =
                        [
                            new V1Container
                            {
                                Name = "cleanup",
                                Image = options.Image,
                                ImagePullPolicy = "IfNotPresent",
                                // The run directory is named by the run id, a validated label value: no shell quoting needed.
                                Command = ["/bin/sh", "-c", "rm -rf -- \"/host/$RUN_ID\""],
                                Env = [new V1EnvVar { Name = "RUN_ID", Value = runId }],
                                VolumeMounts = [new V1VolumeMount { MountPath = "/host", Name = "parent" }],
                                Resources = new V1ResourceRequirements
                                {
                                    Requests = new Dictionary<string, ResourceQuantity> { ["cpu"] = new("10m"), ["memory"] = new("16Mi") },
                                    Limits = new Dictionary<string, ResourceQuantity> { ["cpu"] = new("100m"), ["memory"] = new("32Mi") },
                                },
                            },
                        ],
                        Volumes = [new V1Volume { Name = "parent", HostPath = new V1HostPathVolumeSource { Path = parent, Type = "DirectoryOrCreate" } }],
                    },
                },
            },
        };
    }

    /// <summary>The pool request stored on a Job or bare pod of this run, for re-attaching; null when absent or malformed.</summary>
    /// <param name="metadata">The object's metadata.</param>
    public static (long Millicores, long Memory, long Disk)? StoredRequest(V1ObjectMeta? metadata)
    {
        if (metadata?.Annotations is not { } annotations || !annotations.TryGetValue(RequestAnnotation, out var text))
        {
            return null;
        }

        var parts = text.Split(',');
        return parts.Length == 3
            && long.TryParse(parts[0], CultureInfo.InvariantCulture, out var millicores)
            && long.TryParse(parts[1], CultureInfo.InvariantCulture, out var memory)
            && long.TryParse(parts[2], CultureInfo.InvariantCulture, out var disk)
                ? (millicores, memory, disk)
                : null;
    }
}
