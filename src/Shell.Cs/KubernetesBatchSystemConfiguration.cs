using System.Collections;
using Microsoft.Extensions.Configuration;

namespace HybridBatch;

/// <summary>
/// Binds <see cref="KubernetesBatchSystemOptions"/> from command-line flags (Toil's names, such as
/// <c>--kubernetesHostPath</c>), environment variables (Toil's names, such as <c>TOIL_KUBERNETES_HOST_PATH</c>, and
/// <c>HYBRIDBATCH_*</c>) and any other configuration, in the usual .NET precedence: flags over environment over files.
/// </summary>
public static class KubernetesBatchSystemConfiguration
{
    private const string S = KubernetesBatchSystemOptions.SectionName + ":";

    /// <summary>Command-line flags and the configuration keys they set.</summary>
    public static IReadOnlyDictionary<string, string> SwitchMappings { get; } = new Dictionary<string, string>
    {
        ["--kubernetesHostPath"] = S + nameof(KubernetesBatchSystemOptions.HostPath),
        ["--kubernetesOwner"] = S + nameof(KubernetesBatchSystemOptions.Owner),
        ["--kubernetesServiceAccount"] = S + nameof(KubernetesBatchSystemOptions.ServiceAccount),
        ["--kubernetesPodTimeout"] = S + nameof(KubernetesBatchSystemOptions.PodTimeout),
        ["--kubernetesPrivileged"] = S + nameof(KubernetesBatchSystemOptions.Privileged),
        ["--kubernetesPodSecurityContext"] = S + nameof(KubernetesBatchSystemOptions.PodSecurityContext),
        ["--kubernetesSecurityContext"] = S + nameof(KubernetesBatchSystemOptions.SecurityContext),
        ["--maxJobs"] = S + nameof(KubernetesBatchSystemOptions.MaxJobs),
        ["--maxCores"] = S + nameof(KubernetesBatchSystemOptions.MaxCores),
        ["--maxMemory"] = S + nameof(KubernetesBatchSystemOptions.MaxMemory),
        ["--maxDisk"] = S + nameof(KubernetesBatchSystemOptions.MaxDisk),
        ["--namespace"] = S + nameof(KubernetesBatchSystemOptions.Namespace),
        ["--kubeconfig"] = S + nameof(KubernetesBatchSystemOptions.Kubeconfig),
        ["--context"] = S + nameof(KubernetesBatchSystemOptions.Context),
        ["--image"] = S + nameof(KubernetesBatchSystemOptions.Image),
        ["--runId"] = S + nameof(KubernetesBatchSystemOptions.RunId),
    };

    /// <summary>Environment variables and the configuration keys they set (Toil's names first, then HybridBatch's).</summary>
    public static IReadOnlyDictionary<string, string> EnvironmentVariables { get; } = BuildEnvironmentVariables();

    private static Dictionary<string, string> BuildEnvironmentVariables()
    {
        var names = new Dictionary<string, string>
        {
            ["TOIL_KUBERNETES_HOST_PATH"] = S + nameof(KubernetesBatchSystemOptions.HostPath),
            ["TOIL_KUBERNETES_OWNER"] = S + nameof(KubernetesBatchSystemOptions.Owner),
            ["TOIL_KUBERNETES_SERVICE_ACCOUNT"] = S + nameof(KubernetesBatchSystemOptions.ServiceAccount),
            ["TOIL_KUBERNETES_POD_TIMEOUT"] = S + nameof(KubernetesBatchSystemOptions.PodTimeout),
            ["TOIL_KUBERNETES_PRIVILEGED"] = S + nameof(KubernetesBatchSystemOptions.Privileged),
            ["TOIL_KUBERNETES_POD_SECURITY_CONTEXT"] = S + nameof(KubernetesBatchSystemOptions.PodSecurityContext),
            ["TOIL_KUBERNETES_SECURITY_CONTEXT"] = S + nameof(KubernetesBatchSystemOptions.SecurityContext),
        };

        // Every option also as HYBRIDBATCH_<UPPER_SNAKE_NAME>, e.g. HYBRIDBATCH_HOST_PATH.
        foreach (var property in typeof(KubernetesBatchSystemOptions).GetProperties())
        {
            if (property.PropertyType.IsClass && property.PropertyType != typeof(string))
            {
                continue;
            }

            var snake = string.Concat(property.Name.Select((c, i) => i > 0 && char.IsUpper(c) ? "_" + c : c.ToString()));
            names["HYBRIDBATCH_" + snake.ToUpperInvariant()] = S + property.Name;
        }

        return names;
    }

    /// <summary>Adds the environment's variables (lower precedence) and then the flags (higher precedence).</summary>
    /// <param name="builder">The configuration being built.</param>
    /// <param name="args">Command-line arguments; unknown flags are left to other parsers.</param>
    /// <param name="environment">The environment; this process's when null.</param>
    /// <returns>The builder.</returns>
    public static IConfigurationBuilder AddHybridBatchSources(this IConfigurationBuilder builder, string[]? args = null, IDictionary? environment = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        environment ??= Environment.GetEnvironmentVariables();
        var fromEnvironment = new Dictionary<string, string?>();
        foreach (var (variable, key) in EnvironmentVariables)
        {
            if (environment[variable] is string value)
            {
                fromEnvironment[key] = value;
            }
        }

        builder.AddInMemoryCollection(fromEnvironment);
        if (args is { Length: > 0 })
        {
            builder.AddCommandLine(KnownFlagsOnly(args), SwitchMappings.ToDictionary(kv => kv.Key, kv => kv.Value));
        }

        return builder;
    }

    /// <summary>Options from flags and the environment alone.</summary>
    /// <param name="args">Command-line arguments.</param>
    /// <param name="environment">The environment; this process's when null.</param>
    /// <returns>The bound options.</returns>
    /// <exception cref="ArgumentException">A value does not fit its option's type; the message names the flag.</exception>
    public static KubernetesBatchSystemOptions FromArguments(string[] args, IDictionary? environment = null) =>
        Bind(new ConfigurationBuilder().AddHybridBatchSources(args, environment).Build());

    /// <summary>Binds the options from the <c>HybridBatch</c> section of a configuration.</summary>
    /// <param name="configuration">The configuration.</param>
    /// <returns>The bound options.</returns>
    /// <exception cref="ArgumentException">A value does not fit its option's type; the message names the key.</exception>
    public static KubernetesBatchSystemOptions Bind(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        CheckValues(configuration);
        var options = new KubernetesBatchSystemOptions();
        try
        {
            configuration.GetSection(KubernetesBatchSystemOptions.SectionName).Bind(options);
        }
        catch (InvalidOperationException ex)
        {
            throw new ArgumentException($"{ex.Message} Fix the flag, environment variable or setting it came from.", ex);
        }

        return options;
    }

    // The binder's own error names only the configuration key ("HybridBatch:MaxCores"); the user typed a flag or an
    // environment variable, so name those, with the value, and what a valid value looks like.
    private static void CheckValues(IConfiguration configuration)
    {
        foreach (var property in typeof(KubernetesBatchSystemOptions).GetProperties())
        {
            var type = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
            if (type == typeof(string) || !type.IsPrimitive || !property.CanWrite)
            {
                continue;
            }

            var key = S + property.Name;
            if (configuration[key] is not { } value)
            {
                continue;
            }

            var converter = System.ComponentModel.TypeDescriptor.GetConverter(type);
            bool valid;
            try
            {
                valid = converter.ConvertFromInvariantString(value) is not null;
            }
            catch (Exception ex) when (ex is FormatException or ArgumentException or NotSupportedException or OverflowException)
            {
                valid = false;
            }

            if (!valid)
            {
                var sources = SwitchMappings.Where(kv => kv.Value == key).Select(kv => kv.Key)
                    .Concat(EnvironmentVariables.Where(kv => kv.Value == key).Select(kv => kv.Key))
                    .Append(key);
                var expected = type == typeof(bool) ? "true or false"
                    : type == typeof(double) ? "a number such as 2.5"
                    : $"a whole number such as 8 (a {type.Name}; no units)";
                throw new ArgumentException(
                    $"'{value}' is not a valid value for {string.Join(" / ", sources)}: give {expected}.");
            }
        }
    }

    // The command-line provider rejects flags it has no mapping for only when they start with a single dash; keep
    // the ones we know (with their values) so a workflow engine's own flags can share the command line.
    private static string[] KnownFlagsOnly(string[] args)
    {
        var kept = new List<string>();
        for (var i = 0; i < args.Length; i++)
        {
            var flag = args[i].Split('=', 2)[0];
            if (!SwitchMappings.ContainsKey(flag))
            {
                continue;
            }

            kept.Add(args[i]);
            if (!args[i].Contains('=') && i + 1 < args.Length)
            {
                kept.Add(args[++i]);
            }
        }

        return [.. kept];
    }
}
