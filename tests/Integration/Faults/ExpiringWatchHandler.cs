using System.Net;
using System.Text;

namespace HybridBatch.Integration.Faults;

/// <summary>
/// Answers the next watches that resume from a resource version as the API server does once that version was compacted
/// away or fell out of its watch cache: HTTP 200, one ERROR event carrying a 410 Expired status, end of stream.
/// </summary>
internal sealed class ExpiringWatchHandler : DelegatingHandler
{
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, byte> _armed = new();
    private int _expired;

    /// <summary>Watches answered with 410 so far.</summary>
    public int Expired => Volatile.Read(ref _expired);

    /// <summary>Expire the next resumed watch of each of these resources (e.g. "pods", "jobs").</summary>
    public void Arm(params string[] resources)
    {
        foreach (var resource in resources)
        {
            _armed[resource] = 0;
        }
    }

    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var query = request.RequestUri?.Query ?? "";
        var resource = request.RequestUri?.AbsolutePath.Split('/')[^1] ?? "";
        if (query.Contains("watch=true", StringComparison.Ordinal)
            && query.Contains("resourceVersion=", StringComparison.Ordinal)
            && _armed.TryRemove(resource, out _))
        {
            Interlocked.Increment(ref _expired);
            const string line = """{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 1 (2)","reason":"Expired","code":410}}""";
            return Task.FromResult(new HttpResponseMessage(HttpStatusCode.OK)
            {
                Content = new StringContent(line + "\n", Encoding.UTF8, "application/json"),
            });
        }

        return base.SendAsync(request, cancellationToken);
    }
}
