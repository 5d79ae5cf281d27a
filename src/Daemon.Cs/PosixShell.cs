namespace HybridBatch.Daemon;

/// <summary>Words for <c>/bin/sh</c>, shared by the jobs file (<c>run</c>) and the TES scripts (<c>serve</c>).</summary>
internal static class PosixShell
{
    /// <summary>Quotes a word so that it stays one argument; a word of safe characters only is left as it is.</summary>
    public static string Quote(string word) =>
        word.Length > 0 && word.All(ch => char.IsAsciiLetterOrDigit(ch) || "-_./=:,+@%".Contains(ch))
            ? word
            : "'" + word.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
}
