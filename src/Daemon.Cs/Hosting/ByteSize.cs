using System.Globalization;
using System.Text.RegularExpressions;

namespace HybridBatch.Daemon.Hosting;

/// <summary>Reads amounts of bytes written as plain numbers or with Kubernetes suffixes (<c>256Mi</c>, <c>1G</c>).</summary>
public static partial class ByteSize
{
    [GeneratedRegex(@"^\s*(?<n>[0-9]+(\.[0-9]+)?)\s*(?<s>Ki|Mi|Gi|Ti|Pi|k|K|M|G|T|P|KB|MB|GB|TB|KiB|MiB|GiB|TiB|B)?\s*$")]
    private static partial Regex Pattern();

    /// <summary>Parses an amount of bytes.</summary>
    /// <param name="text">A number of bytes, optionally with a suffix: Ki, Mi, Gi, Ti, Pi (powers of 1024) or k, M, G, T, P (powers of 1000).</param>
    /// <param name="bytes">The amount, rounded up to whole bytes.</param>
    /// <returns>Whether the text is an amount of bytes.</returns>
    public static bool TryParse(string? text, out long bytes)
    {
        bytes = 0;
        var match = text is null ? null : Pattern().Match(text);
        if (match is not { Success: true })
        {
            return false;
        }

        var number = decimal.Parse(match.Groups["n"].Value, CultureInfo.InvariantCulture);
        decimal multiplier = match.Groups["s"].Value switch
        {
            "Ki" or "KiB" => 1024m,
            "Mi" or "MiB" => 1024m * 1024,
            "Gi" or "GiB" => 1024m * 1024 * 1024,
            "Ti" or "TiB" => 1024m * 1024 * 1024 * 1024,
            "Pi" => 1024m * 1024 * 1024 * 1024 * 1024,
            "k" or "K" or "KB" => 1e3m,
            "M" or "MB" => 1e6m,
            "G" or "GB" => 1e9m,
            "T" or "TB" => 1e12m,
            "P" => 1e15m,
            _ => 1m,
        };
        var value = decimal.Ceiling(number * multiplier);
        if (value > long.MaxValue / 4)
        {
            return false;
        }

        bytes = (long)value;
        return true;
    }

    /// <summary>Formats bytes the way people read them (<c>512Mi</c>, <c>1.5Gi</c>).</summary>
    /// <param name="bytes">The amount.</param>
    /// <returns>The text.</returns>
    public static string Format(long bytes)
    {
        string[] units = ["", "Ki", "Mi", "Gi", "Ti", "Pi"];
        double value = bytes;
        var unit = 0;
        while (value >= 1024 && unit < units.Length - 1)
        {
            value /= 1024;
            unit++;
        }

        return value.ToString(unit == 0 ? "0" : "0.##", CultureInfo.InvariantCulture) + units[unit];
    }
}
