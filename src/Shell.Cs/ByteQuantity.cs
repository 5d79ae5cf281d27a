using HybridBatch.Core.Api;

namespace HybridBatch;

/// <summary>
/// Amounts of bytes written as Kubernetes quantities (<c>536870912</c>, <c>512Mi</c>, <c>1G</c>, <c>1.5Gi</c>), read by
/// the core's exact quantity parser: the settings' <c>--resourceOverhead</c> and the <c>hybridbatch</c> jobs file use it.
/// </summary>
public static class ByteQuantity
{
    /// <summary>The largest amount accepted, 2^61 - 1 bytes: sums of a job's request and its overhead cannot overflow.</summary>
    public const long MaxBytes = long.MaxValue / 4;

    /// <summary>Reads an amount of bytes: a whole number, or a number with a Kubernetes suffix.</summary>
    /// <param name="text">The amount, e.g. <c>16Mi</c>; suffixes Ki Mi Gi Ti Pi Ei (powers of 1024) or k M G T P E (powers of 1000).</param>
    /// <param name="bytes">The amount, rounded up to whole bytes.</param>
    /// <returns>False when the text is not a quantity, is negative or is above <see cref="MaxBytes"/>.</returns>
    public static bool TryParse(string? text, out long bytes)
    {
        bytes = 0;
        if (text is null)
        {
            return false;
        }

        // The one place the library reads a quantity from text: the core's parser is exact, as a float is not.
        if (Quantities.ParseBytes(text.Trim()) is not { } whole || whole > MaxBytes)
        {
            return false;
        }

        bytes = (long)whole;
        return true;
    }

    /// <summary>Writes an amount of bytes in Kubernetes' canonical form: <c>512Mi</c>, <c>1536Mi</c>, <c>1k</c>, <c>0</c>.</summary>
    /// <param name="bytes">The amount.</param>
    /// <returns>The text, which <see cref="TryParse"/> reads back as the same amount.</returns>
    public static string Format(long bytes) => Quantities.FormatBytes(bytes);
}
