using System.Globalization;
using System.Numerics;

namespace HybridBatch;

/// <summary>Reads a setting's value from text.</summary>
internal delegate bool TryParseSetting<T>(string text, out T value);

/// <summary>How the values of a kind of setting are written: read, named in help and errors, and written back.</summary>
/// <param name="TryParse">Reads a value.</param>
/// <param name="ValueName">What a value is, for help.</param>
/// <param name="Expected">What to give instead of a bad value, as the end of "give …".</param>
/// <param name="Format">Writes a value as users would give it.</param>
internal sealed record SettingKind<T>(TryParseSetting<T> TryParse, string ValueName, string Expected, Func<T, string> Format)
{
    /// <summary>The same kind, its values named otherwise in help (<c>path</c>, <c>name</c> …).</summary>
    public SettingKind<T> Named(string valueName) => this with { ValueName = valueName };
}

/// <summary>The kinds of values settings take. Numbers are invariant: a value means the same on every machine.</summary>
internal static class SettingKind
{
    public static readonly SettingKind<string> Text = new(
        (string text, out string value) =>
        {
            value = text;
            return true;
        },
        "text",
        "a value",
        text => text);

    /// <summary>Paths separated by ':', as in <c>PATH</c>; empty entries are skipped.</summary>
    public static readonly SettingKind<IReadOnlyList<string>> Paths = new(
        (string text, out IReadOnlyList<string> value) =>
        {
            value = text.Split(':', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            return true;
        },
        "path:path…",
        "paths separated by ':'",
        paths => string.Join(':', paths));

    public static readonly SettingKind<bool> Switch = new(bool.TryParse, "true|false", "true or false", value => value ? "true" : "false");

    public static readonly SettingKind<int> Count = Invariant<int>(NumberStyles.Integer, "n", "a whole number such as 8 (no units)");

    public static readonly SettingKind<long> WholeNumber = Invariant<long>(NumberStyles.Integer, "n", "a whole number such as 8 (no units)");

    /// <summary>Bytes as a plain whole number, as Toil's <c>--maxMemory</c> and <c>--maxDisk</c> take them here.</summary>
    public static readonly SettingKind<long> WholeBytes =
        Invariant<long>(NumberStyles.Integer, "bytes", "a whole number of bytes such as 8589934592 (no units)");

    public static readonly SettingKind<double> Number = Invariant<double>(NumberStyles.Float, "number", "a number such as 2.5");

    /// <summary>A duration given in seconds, as Toil gives its timeouts; fractions allowed.</summary>
    public static readonly SettingKind<TimeSpan> Seconds = new(
        (string text, out TimeSpan value) =>
        {
            value = default;
            if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds)
                || !double.IsFinite(seconds) || Math.Abs(seconds) > TimeSpan.MaxValue.TotalSeconds)
            {
                return false;
            }

            value = TimeSpan.FromSeconds(seconds);
            return true;
        },
        "seconds",
        "a number of seconds such as 120",
        value => value.TotalSeconds.ToString(CultureInfo.InvariantCulture));

    public static readonly SettingKind<long> Bytes = new(
        ByteQuantity.TryParse,
        "bytes",
        "an amount of bytes such as 536870912, 512Mi or 1G",
        ByteQuantity.Format);

    /// <summary>
    /// One of an enum's named values, written in lower case and read in any case (<c>job</c>, <c>Pod</c>); numbers are
    /// not values, though <see cref="Enum.TryParse{TEnum}(string, bool, out TEnum)"/> would take them.
    /// </summary>
    public static SettingKind<T> OneOf<T>()
        where T : struct, Enum
    {
        var names = Enum.GetNames<T>().Select(name => name.ToLowerInvariant()).ToArray();
        return new(
            (string text, out T value) =>
            {
                value = default;
                var trimmed = text.Trim();
                return names.Contains(trimmed, StringComparer.OrdinalIgnoreCase) && Enum.TryParse(trimmed, ignoreCase: true, out value);
            },
            string.Join('|', names),
            "one of: " + string.Join(", ", names),
            value => value.ToString().ToLowerInvariant());
    }

    private static SettingKind<T> Invariant<T>(NumberStyles styles, string valueName, string expected)
        where T : INumberBase<T> =>
        new(
            (string text, out T value) => T.TryParse(text, styles, CultureInfo.InvariantCulture, out value!),
            valueName,
            expected,
            value => value.ToString(null, CultureInfo.InvariantCulture));
}
