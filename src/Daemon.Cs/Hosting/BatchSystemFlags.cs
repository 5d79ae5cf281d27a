using System.Collections;
using System.CommandLine;
using Microsoft.Extensions.Configuration;

namespace HybridBatch.Daemon.Hosting;

/// <summary>
/// The batch system's settings as options of a command, one typed option per setting that has a flag, made from
/// <see cref="KubernetesBatchSystemConfiguration.Settings"/>: System.CommandLine parses them and writes their help, and
/// each value is read by its setting's own parser, so a bad one is named with what to give instead.
/// </summary>
internal static class BatchSystemFlags
{
    /// <summary>Where options come from besides flags, for the commands' help.</summary>
    public const string Precedence =
        "A flag wins over the variables it names, which win over appsettings.json (beside the executable, then in the current " +
        "directory), where the batch system's options are the HybridBatch section's (HybridBatch:MaxJobs).";

    /// <summary>Adds an option for each of the batch system's flags.</summary>
    public static void AddTo(Command command)
    {
        foreach (var setting in KubernetesBatchSystemConfiguration.Settings.Where(s => s.Flag is not null))
        {
            command.Options.Add(setting.Accept(FlagMaker.Instance));
        }
    }

    /// <summary>
    /// The batch system's options: the command's flags over the environment's variables over the configuration's
    /// <c>HybridBatch</c> section. A variable or key is not read when its flag was given, so a bad one there does not
    /// matter.
    /// </summary>
    /// <exception cref="ArgumentException">A variable or key has a bad value; the message names it.</exception>
    public static KubernetesBatchSystemOptions Bind(ParseResult parse, IConfiguration configuration, IDictionary environment)
    {
        var given = parse.CommandResult.Command.Options.OfType<IBatchSystemFlag>().Where(flag => parse.GetResult((Option)flag) is not null).ToList();
        var options = KubernetesBatchSystemConfiguration.Bind(configuration, environment, [.. given.Select(flag => flag.Setting)]);
        return given.Aggregate(options, (bound, flag) => flag.Apply(parse, bound));
    }

    private interface IBatchSystemFlag
    {
        KubernetesBatchSystemSetting Setting { get; }

        KubernetesBatchSystemOptions Apply(ParseResult parse, KubernetesBatchSystemOptions options);
    }

    private sealed class FlagMaker : IKubernetesBatchSystemSettingVisitor<Option>
    {
        public static readonly FlagMaker Instance = new();

        public Option Visit<T>(KubernetesBatchSystemSetting<T> setting) => new Flag<T>(setting);
    }

    // The value is wrapped because System.CommandLine hands a bool option only the tokens that read as bool: the setting's
    // parser would never see `--kubernetesPrivileged maybe`, and the user would be told 'maybe' is unrecognized.
    private sealed class Flag<T> : Option<Flag<T>.Value>, IBatchSystemFlag
    {
        private readonly KubernetesBatchSystemSetting<T> _setting;

        public Flag(KubernetesBatchSystemSetting<T> setting)
            : base(setting.Flag!)
        {
            _setting = setting;
            var variables = setting.EnvironmentVariables.Count == 1 ? "Variable" : "Variables";
            Description = $"{setting.Description} Default: {setting.Default}. {variables}: {string.Join(", ", setting.EnvironmentVariables)}.";
            HelpName = setting.ValueName;
            CustomParser = result =>
            {
                if (setting.TryParse(result.Tokens[0].Value, out var value, out var problem))
                {
                    return new Value(value);
                }

                result.AddError(problem);
                return default;
            };
        }

        public KubernetesBatchSystemSetting Setting => _setting;

        public KubernetesBatchSystemOptions Apply(ParseResult parse, KubernetesBatchSystemOptions options) =>
            _setting.Apply(options, parse.GetValue(this).Item);

        public readonly record struct Value(T Item);
    }
}
