namespace HybridBatch.Bench;

/// <summary>Percentiles of a sample, nearest-rank.</summary>
internal static class Stats
{
    public static double? Percentile(IReadOnlyCollection<double> values, double p)
    {
        if (values.Count == 0)
        {
            return null;
        }

        var sorted = values.Order().ToArray();
        var rank = (int)Math.Ceiling(p / 100.0 * sorted.Length) - 1;
        return sorted[Math.Clamp(rank, 0, sorted.Length - 1)];
    }

    public static double? Round(double? value, int digits = 2) => value is { } v ? Math.Round(v, digits) : null;
}

/// <summary>Counts requests by verb at the HTTP level, for the raw-client baseline.</summary>
internal sealed class CountingHandler : DelegatingHandler
{
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, long> _verbs = new();
    private long _total;

    public long Total => Interlocked.Read(ref _total);

    public IReadOnlyDictionary<string, long> Snapshot() => new Dictionary<string, long>(_verbs);

    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var query = request.RequestUri?.Query ?? "";
        var path = request.RequestUri?.AbsolutePath ?? "";
        var verb = request.Method.Method switch
        {
            "POST" => "create",
            "DELETE" => path.EndsWith("/jobs", StringComparison.Ordinal) || path.EndsWith("/pods", StringComparison.Ordinal) ? "deletecollection" : "delete",
            "PATCH" => "patch",
            "PUT" => "update",
            _ when query.Contains("watch=true", StringComparison.Ordinal) => "watch",
            _ when path.EndsWith('s') => "list",
            _ => "get",
        };
        Interlocked.Increment(ref _total);
        _verbs.AddOrUpdate(verb, 1, (_, n) => n + 1);
        return base.SendAsync(request, cancellationToken);
    }
}
