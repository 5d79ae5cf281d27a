using System.CommandLine;
using Microsoft.Extensions.Configuration;

namespace HybridBatch.Daemon.Hosting;

/// <summary>The batch-system flags every command takes (Toil's names), and how the options are read.</summary>
internal static class CommonOptions
{
    /// <summary>The flag that sets the bytes added to every job's memory and disk.</summary>
    public const string ResourceOverheadFlag = "--resourceOverhead";

    /// <summary>Adds the batch system's flags to a command, so that <c>--help</c> lists them and the parser accepts them.</summary>
    /// <param name="command">The command.</param>
    public static void AddTo(Command command)
    {
        ArgumentNullException.ThrowIfNull(command);
        foreach (var (flag, key) in KubernetesBatchSystemConfiguration.SwitchMappings.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            command.Options.Add(new Option<string>(flag) { Description = $"Sets {key} (see the batch system's options).", HelpName = "value" });
        }

        command.Options.Add(new Option<string>(ResourceOverheadFlag)
        {
            Description = "Bytes added to each job's memory and disk for the container's own needs, e.g. 16Mi (default 512Mi, as in Toil).",
            HelpName = "bytes",
        });
    }

    /// <summary>
    /// Reads the configuration in the usual .NET precedence: <c>appsettings.json</c> beside the executable and in the
    /// current directory, then the environment (<c>HYBRIDBATCH_*</c> and Toil's names), then the flags.
    /// </summary>
    /// <param name="args">The command line.</param>
    /// <returns>The configuration.</returns>
    public static IConfiguration Configuration(string[] args) =>
        new ConfigurationBuilder()
            .AddJsonFile(Path.Combine(AppContext.BaseDirectory, "appsettings.json"), optional: true)
            .AddJsonFile(Path.Combine(Environment.CurrentDirectory, "appsettings.json"), optional: true)
            .AddHybridBatchSources(args)
            .Build();

    /// <summary>Binds the batch system's options, reading <c>--resourceOverhead</c> in human units.</summary>
    /// <param name="configuration">The configuration.</param>
    /// <param name="args">The command line.</param>
    /// <returns>The options.</returns>
    /// <exception cref="ArgumentException">A value is invalid; the message names it.</exception>
    public static KubernetesBatchSystemOptions Bind(IConfiguration configuration, string[] args)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        ArgumentNullException.ThrowIfNull(args);
        var overheadKey = KubernetesBatchSystemOptions.SectionName + ":" + nameof(KubernetesBatchSystemOptions.ResourceOverhead);
        string? overhead = configuration[overheadKey];
        for (var i = 0; i < args.Length; i++)
        {
            if (args[i] == ResourceOverheadFlag && i + 1 < args.Length)
            {
                overhead = args[i + 1];
            }
            else if (args[i].StartsWith(ResourceOverheadFlag + "=", StringComparison.Ordinal))
            {
                overhead = args[i][(ResourceOverheadFlag.Length + 1)..];
            }
        }

        long? overheadBytes = null;
        if (overhead is not null)
        {
            overheadBytes = ByteQuantity.TryParse(overhead, out var bytes)
                ? bytes
                : throw new ArgumentException($"{ResourceOverheadFlag} '{overhead}' is not an amount of bytes: write e.g. 16Mi or 536870912.");
            configuration[overheadKey] = null;
        }

        var options = KubernetesBatchSystemConfiguration.Bind(configuration);
        if (overheadBytes is { } value)
        {
            options.ResourceOverhead = value;
        }

        return options;
    }
}
