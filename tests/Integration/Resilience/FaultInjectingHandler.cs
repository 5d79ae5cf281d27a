using System.Globalization;
using System.Net;
using System.Text;
using HybridBatch.Resilience;

namespace HybridBatch.Integration.Resilience;

/// <summary>How often each fault is injected; the rest of the requests pass untouched.</summary>
/// <param name="Throttle">429 with <c>Retry-After</c>, without forwarding the request.</param>
/// <param name="ServerError">500 or 503 (no Retry-After), without forwarding the request.</param>
/// <param name="ResetAfterApplying">Forward the request, then lose the answer (connection reset): the ambiguous case.</param>
/// <param name="Slow">Forward the request after a delay.</param>
internal sealed record FaultRates(double Throttle = 0, double ServerError = 0, double ResetAfterApplying = 0, double Slow = 0)
{
    public TimeSpan RetryAfter { get; init; } = TimeSpan.FromSeconds(1);

    public TimeSpan SlowDelay { get; init; } = TimeSpan.FromMilliseconds(200);
}

/// <summary>
/// Issue 8's throttling faults as a handler between the <see cref="KubernetesResilienceHandler"/> and the network (or a fake
/// server): 429 with Retry-After, 500/503, resets after the server applied the request, and slow answers, at set
/// rates, from a seed so a failing run can be replayed.
/// </summary>
internal sealed class FaultInjectingHandler(FaultRates rates, int seed) : DelegatingHandler
{
    private readonly Random _random = new(seed);
    private readonly Lock _lock = new();
    private int _injected;

    public int Injected => Volatile.Read(ref _injected);

    /// <summary>Whether faults are injected now; off, every request passes untouched (to inject mid-run).</summary>
    public bool Enabled { get; set; } = true;

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        if (!Enabled)
        {
            return await base.SendAsync(request, cancellationToken);
        }

        double roll;
        lock (_lock)
        {
            roll = _random.NextDouble();
        }

        if ((roll -= rates.Throttle) < 0)
        {
            Interlocked.Increment(ref _injected);
            var throttled = Status(429, "TooManyRequests", "injected throttle");
            throttled.Headers.TryAddWithoutValidation("Retry-After", ((int)rates.RetryAfter.TotalSeconds).ToString(CultureInfo.InvariantCulture));
            return throttled;
        }

        if ((roll -= rates.ServerError) < 0)
        {
            Interlocked.Increment(ref _injected);
            return roll < -rates.ServerError / 2 ? Status(500, "InternalError", "injected error") : Status(503, "ServiceUnavailable", "injected unavailability");
        }

        if ((roll -= rates.ResetAfterApplying) < 0)
        {
            Interlocked.Increment(ref _injected);
            using var applied = await base.SendAsync(request, cancellationToken);
            throw new HttpRequestException(HttpRequestError.ResponseEnded, "injected reset after the request was applied");
        }

        if ((roll -= rates.Slow) < 0)
        {
            Interlocked.Increment(ref _injected);
            await Task.Delay(rates.SlowDelay, cancellationToken);
        }

        return await base.SendAsync(request, cancellationToken);
    }

    private static HttpResponseMessage Status(int code, string reason, string message) =>
        new((HttpStatusCode)code)
        {
            Content = new StringContent(
                $$"""{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"{{message}}","reason":"{{reason}}","code":{{code}}}""",
                Encoding.UTF8,
                "application/json"),
        };
}
