using System.Collections;
using HybridBatch.Resilience;
using Microsoft.Extensions.Configuration;
using static HybridBatch.SettingKind;
using Options = HybridBatch.KubernetesBatchSystemOptions;

namespace HybridBatch;

/// <summary>
/// Binds <see cref="KubernetesBatchSystemOptions"/> from command-line flags (Toil's names, such as
/// <c>--kubernetesHostPath</c>), environment variables (Toil's names, such as <c>TOIL_KUBERNETES_HOST_PATH</c>, and
/// <c>HYBRIDBATCH_*</c>) and the <c>HybridBatch</c> configuration section, in the usual .NET precedence: flags over
/// environment over configuration. <see cref="Settings"/> is the one list of what can be set, and how.
/// </summary>
public static class KubernetesBatchSystemConfiguration
{
    private static readonly Hashtable NoEnvironment = [];

    /// <summary>
    /// Every setting of <see cref="KubernetesBatchSystemOptions"/> but <see cref="KubernetesBatchSystemOptions.Resilience"/>
    /// (the configuration section <c>HybridBatch:Resilience</c> only): its flag, variables, key, kind of value, help and
    /// default. The <c>hybridbatch</c> command makes its options from this list.
    /// </summary>
    public static IReadOnlyList<KubernetesBatchSystemSetting> Settings { get; } =
    [
        Define(nameof(Options.Kubeconfig), "--kubeconfig", Text.Named("path"),
            ["HYBRIDBATCH_KUBECONFIG"], (o, v) => o with { Kubeconfig = v },
            "The kubeconfig file of the cluster the jobs run on.", defaultText: "KUBECONFIG, then ~/.kube/config, then the in-cluster service account"),
        Define(nameof(Options.Context), "--context", Text.Named("name"),
            ["HYBRIDBATCH_CONTEXT"], (o, v) => o with { Context = v },
            "The kubeconfig context to use.", defaultText: "the kubeconfig's current context"),
        Define(nameof(Options.Namespace), "--namespace", Text.Named("name"),
            ["HYBRIDBATCH_NAMESPACE"], (o, v) => o with { Namespace = v },
            "The namespace the jobs run in.", defaultText: "the context's namespace, else default"),
        Define(nameof(Options.Image), "--image", Text.Named("image"),
            ["HYBRIDBATCH_IMAGE"], (o, v) => o with { Image = v },
            "The image a job runs in when it names none.", o => o.Image),
        Define(nameof(Options.RunId), "--runId", Text.Named("id"),
            ["HYBRIDBATCH_RUN_ID"], (o, v) => o with { RunId = v },
            "The run's identity, a label on everything it creates; an earlier run's id re-attaches to that run's jobs.", defaultText: "a new one"),
        Define(nameof(Options.ObjectKind), "--kubernetesObjectKind", OneOf<KubernetesObjectKind>(),
            ["HYBRIDBATCH_OBJECT_KIND"], (o, v) => o with { ObjectKind = v },
            "What each job runs as: job, a Job wrapping its pod (as Toil does), or pod, a bare pod with restartPolicy Never that nothing reruns (faster; an evicted or deleted pod's job is Lost; the identity needs create and delete on pods).",
            o => o.ObjectKind),
        Define(nameof(Options.HostPath), "--kubernetesHostPath", Text.Named("path"),
            ["TOIL_KUBERNETES_HOST_PATH", "HYBRIDBATCH_HOST_PATH"], (o, v) => o with { HostPath = v },
            "A directory on the nodes that the run's jobs share as their work directory.", defaultText: "none, each pod gets an empty directory"),
        Define(nameof(Options.SharedPaths), "--sharedPaths", Paths,
            ["HYBRIDBATCH_SHARED_PATHS"], (o, v) => o with { SharedPaths = v },
            "Directories on the nodes every job mounts read-write at the same path (a Toil file job store, a workflow's scripts), separated by ':'.",
            defaultText: "none"),
        Define(nameof(Options.Owner), "--kubernetesOwner", Text.Named("name"),
            ["TOIL_KUBERNETES_OWNER", "HYBRIDBATCH_OWNER"], (o, v) => o with { Owner = v },
            "The user name the run's jobs are named and labelled with.", defaultText: "this user's name in lower case"),
        Define(nameof(Options.ServiceAccount), "--kubernetesServiceAccount", Text.Named("name"),
            ["TOIL_KUBERNETES_SERVICE_ACCOUNT", "HYBRIDBATCH_SERVICE_ACCOUNT"], (o, v) => o with { ServiceAccount = v },
            "The service account jobs run as, with its token mounted in their pods.", defaultText: "none, and no token in the pods"),
        Define(nameof(Options.PodTimeout), "--kubernetesPodTimeout", Seconds,
            ["TOIL_KUBERNETES_POD_TIMEOUT", "HYBRIDBATCH_POD_TIMEOUT"], (o, v) => o with { PodTimeout = v },
            "How long a pod may stay stuck (unschedulable, image missing, creating) before its job fails; an unschedulable pod waits while jobs of the run hold the room it needs.", o => o.PodTimeout),
        Define(nameof(Options.Privileged), "--kubernetesPrivileged", Switch,
            ["TOIL_KUBERNETES_PRIVILEGED", "HYBRIDBATCH_PRIVILEGED"], (o, v) => o with { Privileged = v },
            "Run job containers privileged.", o => o.Privileged),
        Define(nameof(Options.PodSecurityContext), "--kubernetesPodSecurityContext", Text.Named("file"),
            ["TOIL_KUBERNETES_POD_SECURITY_CONTEXT", "HYBRIDBATCH_POD_SECURITY_CONTEXT"], (o, v) => o with { PodSecurityContext = v },
            "A YAML file with the security context of every job's pod.", defaultText: "none"),
        Define(nameof(Options.SecurityContext), "--kubernetesSecurityContext", Text.Named("file"),
            ["TOIL_KUBERNETES_SECURITY_CONTEXT", "HYBRIDBATCH_SECURITY_CONTEXT"], (o, v) => o with { SecurityContext = v },
            "A YAML file with the security context of every job's container.",
            defaultText: "no privilege escalation and every capability dropped, unless HYBRIDBATCH_RESTRICTED_SECURITY_CONTEXT is false"),
        Define(nameof(Options.RestrictedSecurityContext), null, Switch,
            ["HYBRIDBATCH_RESTRICTED_SECURITY_CONTEXT"], (o, v) => o with { RestrictedSecurityContext = v },
            "Without a security context file, run job containers with no privilege escalation and every capability dropped.", o => o.RestrictedSecurityContext),
        Define(nameof(Options.RunAsUser), null, WholeNumber.Named("uid"),
            ["HYBRIDBATCH_RUN_AS_USER"], (o, v) => o with { RunAsUser = v },
            "The user id job containers run as.", defaultText: "the image's user"),
        Define(nameof(Options.MaxCores), "--maxCores", Number,
            ["HYBRIDBATCH_MAX_CORES"], (o, v) => o with { MaxCores = v },
            "Cores all running jobs may hold together, and the most one job may ask for.", o => o.MaxCores),
        Define(nameof(Options.MaxMemory), "--maxMemory", WholeBytes,
            ["HYBRIDBATCH_MAX_MEMORY"], (o, v) => o with { MaxMemory = v },
            "Bytes of memory all running jobs may hold together, and the most one job may ask for.", defaultText: "no limit"),
        Define(nameof(Options.MaxDisk), "--maxDisk", WholeBytes,
            ["HYBRIDBATCH_MAX_DISK"], (o, v) => o with { MaxDisk = v },
            "Bytes of disk all running jobs may hold together, and the most one job may ask for.", defaultText: "no limit"),
        Define(nameof(Options.MaxJobs), "--maxJobs", Count,
            ["HYBRIDBATCH_MAX_JOBS"], (o, v) => o with { MaxJobs = v },
            "How many jobs are submitted to Kubernetes at once; more wait in a local queue.", defaultText: "no limit"),
        Define(nameof(Options.ResourceOverhead), "--resourceOverhead", Bytes,
            ["HYBRIDBATCH_RESOURCE_OVERHEAD"], (o, v) => o with { ResourceOverhead = v },
            "Bytes added to each job's memory and disk for the container's own needs, as Toil adds them; e.g. 16Mi.", o => o.ResourceOverhead),
        Define(nameof(Options.WorkDir), null, Text.Named("path"),
            ["HYBRIDBATCH_WORK_DIR"], (o, v) => o with { WorkDir = v },
            "The work directory inside job containers.", o => o.WorkDir),
        Define(nameof(Options.FinishedJobTtl), null, Seconds,
            ["HYBRIDBATCH_FINISHED_JOB_TTL"], (o, v) => o with { FinishedJobTtl = v },
            "How long Kubernetes keeps a finished Job before deleting it itself, as a safety net (Job mode; a bare pod stays until the batch system deletes it).", o => o.FinishedJobTtl),
        Define(nameof(Options.MaxCreatesInFlight), null, Count,
            ["HYBRIDBATCH_MAX_CREATES_IN_FLIGHT"], (o, v) => o with { MaxCreatesInFlight = v },
            "How many create calls may be in flight at once.", o => o.MaxCreatesInFlight),
    ];

    /// <summary>Options from flags and the environment alone; flags that are not settings' are left for other parsers.</summary>
    /// <param name="args">Command-line arguments: <c>--flag value</c> or <c>--flag=value</c>, the last of a flag winning.</param>
    /// <param name="environment">The environment; this process's when null.</param>
    /// <returns>The bound options.</returns>
    /// <exception cref="ArgumentException">A value does not fit its option's type; the message names the flag.</exception>
    public static KubernetesBatchSystemOptions FromArguments(string[] args, IDictionary? environment = null)
    {
        ArgumentNullException.ThrowIfNull(args);
        return Bind(FlagValues(args), environment ?? Environment.GetEnvironmentVariables(), configuration: null, setByCaller: null);
    }

    /// <summary>Binds the options from the <c>HybridBatch</c> section of a configuration alone.</summary>
    /// <param name="configuration">The configuration.</param>
    /// <returns>The bound options.</returns>
    /// <exception cref="ArgumentException">A value does not fit its option's type; the message names the key.</exception>
    public static KubernetesBatchSystemOptions Bind(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        return Bind(new Dictionary<KubernetesBatchSystemSetting, string>(), NoEnvironment, configuration, setByCaller: null);
    }

    /// <summary>
    /// Binds the options from environment variables over the <c>HybridBatch</c> section of a configuration, for a caller
    /// that parses its own command line and then sets what it was given there with
    /// <see cref="KubernetesBatchSystemSetting{T}.Apply(KubernetesBatchSystemOptions, T)"/>.
    /// </summary>
    /// <param name="configuration">The configuration.</param>
    /// <param name="environment">The environment variables.</param>
    /// <param name="setByCaller">Settings the caller sets itself: their variables and keys are not read.</param>
    /// <returns>The bound options.</returns>
    /// <exception cref="ArgumentException">A value does not fit its option's type; the message names the variable and key.</exception>
    public static KubernetesBatchSystemOptions Bind(
        IConfiguration configuration, IDictionary environment, IReadOnlyCollection<KubernetesBatchSystemSetting> setByCaller)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        ArgumentNullException.ThrowIfNull(environment);
        ArgumentNullException.ThrowIfNull(setByCaller);
        return Bind(new Dictionary<KubernetesBatchSystemSetting, string>(), environment, configuration, setByCaller);
    }

    private static KubernetesBatchSystemOptions Bind(
        Dictionary<KubernetesBatchSystemSetting, string> flags,
        IDictionary environment,
        IConfiguration? configuration,
        IReadOnlyCollection<KubernetesBatchSystemSetting>? setByCaller)
    {
        var options = new KubernetesBatchSystemOptions();
        if (configuration?.GetSection(KubernetesBatchSystemOptions.SectionName + ":" + nameof(KubernetesBatchSystemOptions.Resilience)) is { } section
            && section.Exists())
        {
            options = options with { Resilience = BindResilience(section) };
        }

        foreach (var setting in Settings.Where(s => setByCaller?.Contains(s) != true))
        {
            var text = flags.GetValueOrDefault(setting)
                ?? setting.EnvironmentVariables.Select(variable => environment[variable] as string).LastOrDefault(value => value is not null)
                ?? configuration?[setting.ConfigurationKey];
            if (text is not null)
            {
                options = setting.Apply(options, text);
            }
        }

        return options;
    }

    // Settings only for files: the standard binder reads them (durations as 00:00:30), naming the key when one is wrong.
    private static KubernetesResilienceOptions BindResilience(IConfigurationSection section)
    {
        try
        {
            return section.Get<KubernetesResilienceOptions>() ?? new KubernetesResilienceOptions();
        }
        catch (InvalidOperationException ex)
        {
            throw new ArgumentException($"{ex.Message} Fix the setting it came from.", ex);
        }
    }

    // A workflow engine's command line carries its own flags too: only the settings' flags are read, as "--flag value"
    // or "--flag=value".
    private static Dictionary<KubernetesBatchSystemSetting, string> FlagValues(string[] args)
    {
        var byFlag = Settings.Where(s => s.Flag is not null).ToDictionary(s => s.Flag!, StringComparer.Ordinal);
        var values = new Dictionary<KubernetesBatchSystemSetting, string>();
        for (var i = 0; i < args.Length; i++)
        {
            var parts = args[i].Split('=', 2);
            if (!byFlag.TryGetValue(parts[0], out var setting))
            {
                continue;
            }

            if (parts.Length == 1 && i + 1 == args.Length)
            {
                throw new ArgumentException($"{parts[0]} is the last argument, with no value after it: give one, as in {parts[0]} VALUE.");
            }

            values[setting] = parts.Length == 2 ? parts[1] : args[++i];
        }

        return values;
    }

    private static KubernetesBatchSystemSetting<T> Define<T>(
        string key,
        string? flag,
        SettingKind<T> kind,
        string[] environmentVariables,
        Func<KubernetesBatchSystemOptions, T, KubernetesBatchSystemOptions> set,
        string description,
        Func<KubernetesBatchSystemOptions, T>? defaultValue = null,
        string? defaultText = null) =>
        new(key, flag, environmentVariables, kind, description, set, options => defaultText ?? kind.Format(defaultValue!(options)));
}
