using System.Diagnostics.CodeAnalysis;

namespace HybridBatch;

/// <summary>
/// One setting of <see cref="KubernetesBatchSystemOptions"/> as users give it: its command-line flag (Toil's name where
/// Toil has the option), its environment variables, its configuration key, what it does and its default. The library's
/// binder and the <c>hybridbatch</c> command's options are both made from
/// <see cref="KubernetesBatchSystemConfiguration.Settings"/>.
/// </summary>
public abstract class KubernetesBatchSystemSetting
{
    private protected KubernetesBatchSystemSetting(
        string key, string? flag, IReadOnlyList<string> environmentVariables, string valueName, string description)
    {
        Key = key;
        Flag = flag;
        EnvironmentVariables = environmentVariables;
        ValueName = valueName;
        Description = description;
    }

    /// <summary>The option's name, which is its key in the <c>HybridBatch</c> configuration section, e.g. <c>HostPath</c>.</summary>
    public string Key { get; }

    /// <summary>The configuration key, e.g. <c>HybridBatch:HostPath</c>.</summary>
    public string ConfigurationKey => KubernetesBatchSystemOptions.SectionName + ":" + Key;

    /// <summary>The command-line flag, e.g. <c>--kubernetesHostPath</c>; null for a setting given only by variable or configuration.</summary>
    public string? Flag { get; }

    /// <summary>The environment variables, a later one winning over an earlier one: Toil's name first, then <c>HYBRIDBATCH_*</c>.</summary>
    public IReadOnlyList<string> EnvironmentVariables { get; }

    /// <summary>What a value is, for help: <c>seconds</c>, <c>bytes</c>, <c>path</c> ….</summary>
    public string ValueName { get; }

    /// <summary>What the setting does.</summary>
    public string Description { get; }

    /// <summary>The default, as users write it or as a phrase for what happens without one.</summary>
    public abstract string Default { get; }

    /// <summary>Every name a value can be given under, e.g. <c>--maxMemory / HYBRIDBATCH_MAX_MEMORY / HybridBatch:MaxMemory</c>.</summary>
    public string Sources => string.Join(" / ", (Flag is null ? [] : new[] { Flag }).Concat(EnvironmentVariables).Append(ConfigurationKey));

    /// <summary>Calls <paramref name="visitor"/> with this setting as its typed self.</summary>
    /// <typeparam name="TResult">What the visitor makes.</typeparam>
    /// <param name="visitor">The visitor.</param>
    /// <returns>What the visitor made.</returns>
    public abstract TResult Accept<TResult>(IKubernetesBatchSystemSettingVisitor<TResult> visitor);

    /// <summary>Sets the option from a value written as text.</summary>
    /// <exception cref="ArgumentException">The text is not a valid value; the message names the setting's sources and what to give.</exception>
    internal abstract KubernetesBatchSystemOptions Apply(KubernetesBatchSystemOptions options, string text);
}

/// <summary>Does something with a <see cref="KubernetesBatchSystemSetting"/> that needs its value type, such as making a typed command-line option.</summary>
/// <typeparam name="TResult">What it makes.</typeparam>
public interface IKubernetesBatchSystemSettingVisitor<out TResult>
{
    /// <summary>Makes something of a setting whose values are <typeparamref name="T"/>.</summary>
    /// <typeparam name="T">The value type.</typeparam>
    /// <param name="setting">The setting.</param>
    /// <returns>What it makes.</returns>
    TResult Visit<T>(KubernetesBatchSystemSetting<T> setting);
}

/// <summary>A setting whose values are <typeparamref name="T"/>: how text becomes one, and which option it sets.</summary>
/// <typeparam name="T">The value type.</typeparam>
public sealed class KubernetesBatchSystemSetting<T> : KubernetesBatchSystemSetting
{
    private readonly SettingKind<T> _kind;
    private readonly Func<KubernetesBatchSystemOptions, T, KubernetesBatchSystemOptions> _set;
    private readonly Func<KubernetesBatchSystemOptions, string> _describeDefault;

    internal KubernetesBatchSystemSetting(
        string key,
        string? flag,
        IReadOnlyList<string> environmentVariables,
        SettingKind<T> kind,
        string description,
        Func<KubernetesBatchSystemOptions, T, KubernetesBatchSystemOptions> set,
        Func<KubernetesBatchSystemOptions, string> describeDefault)
        : base(key, flag, environmentVariables, kind.ValueName, description)
    {
        _kind = kind;
        _set = set;
        _describeDefault = describeDefault;
    }

    /// <inheritdoc />
    // From default options, so that the record's initialisers stay the one place a default is written.
    public override string Default => _describeDefault(new KubernetesBatchSystemOptions());

    /// <summary>Reads a value.</summary>
    /// <param name="text">The value as given.</param>
    /// <param name="value">The value.</param>
    /// <param name="problem">When the text is not a value: what was given, for which setting, and what to give instead.</param>
    /// <returns>Whether the text is a value.</returns>
    public bool TryParse(string text, [MaybeNullWhen(false)] out T value, [NotNullWhen(false)] out string? problem)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (_kind.TryParse(text, out value))
        {
            problem = null;
            return true;
        }

        problem = $"'{text}' is not a valid value for {Sources}: give {_kind.Expected}.";
        return false;
    }

    /// <summary>Options with this setting's option set to <paramref name="value"/>.</summary>
    /// <param name="options">The options.</param>
    /// <param name="value">The value.</param>
    /// <returns>A copy of the options with the value.</returns>
    public KubernetesBatchSystemOptions Apply(KubernetesBatchSystemOptions options, T value) => _set(options, value);

    /// <inheritdoc />
    public override TResult Accept<TResult>(IKubernetesBatchSystemSettingVisitor<TResult> visitor)
    {
        ArgumentNullException.ThrowIfNull(visitor);
        return visitor.Visit(this);
    }

    internal override KubernetesBatchSystemOptions Apply(KubernetesBatchSystemOptions options, string text) =>
        TryParse(text, out var value, out var problem) ? _set(options, value) : throw new ArgumentException(problem);
}
