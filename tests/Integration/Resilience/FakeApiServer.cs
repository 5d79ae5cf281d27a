using System.Collections.Concurrent;
using System.Net;
using System.Text;
using HybridBatch.Resilience;
using k8s;

namespace HybridBatch.Integration.Resilience;

/// <summary>
/// A fake API server at the HTTP boundary: the innermost handler of the client, answering each request with what
/// the test says for that request's number (from 1), and counting them.
/// </summary>
internal sealed class FakeApiServer(Func<HttpRequestMessage, int, CancellationToken, Task<HttpResponseMessage>> respond) : DelegatingHandler
{
    private int _requests;

    public int Requests => Volatile.Read(ref _requests);

    public ConcurrentQueue<long> ArrivalTimestamps { get; } = new();

    public static FakeApiServer Answering(Func<int, HttpResponseMessage> respond) =>
        new((_, n, _) => Task.FromResult(respond(n)));

    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        ArrivalTimestamps.Enqueue(TimeProvider.System.GetTimestamp());
        var n = Interlocked.Increment(ref _requests);
        return respond(request, n, cancellationToken);
    }

    /// <summary>A client whose only way out is through the wrapper into this fake.</summary>
    public IKubernetes Client(KubernetesResilienceOptions options, IKubernetesCallObserver? observer = null) =>
        KubernetesClientFactory.Create(
            new KubernetesClientConfiguration { Host = "http://127.0.0.1:9" },
            options,
            loggerFactory: null,
            timeProvider: null,
            observer,
            innerHandlers: [this]);
}

/// <summary>Responses as the API server writes them.</summary>
internal static class Responses
{
    public static HttpResponseMessage Json(HttpStatusCode code, string json) =>
        new(code) { Content = new StringContent(json, Encoding.UTF8, "application/json") };

    public static HttpResponseMessage Status(int code, string reason, string message, string details = "{}", int? retryAfterSeconds = null)
    {
        var response = Json(
            (HttpStatusCode)code,
            $$"""{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":{{Quote(message)}},"reason":"{{reason}}","details":{{details}},"code":{{code}}}""");
        if (retryAfterSeconds is { } seconds)
        {
            response.Headers.TryAddWithoutValidation("Retry-After", seconds.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        return response;
    }

    public static HttpResponseMessage PodList() =>
        Json(HttpStatusCode.OK, """{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"7"},"items":[{"metadata":{"name":"p1","namespace":"hb-test"}}]}""");

    public static HttpResponseMessage Job(string name) =>
        Json(HttpStatusCode.Created, $$$"""{"kind":"Job","apiVersion":"batch/v1","metadata":{"name":"{{{name}}}","namespace":"hb-test"}}""");

    public static HttpResponseMessage Deleted() =>
        Json(HttpStatusCode.OK, """{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success","code":200}""");

    public const string PodAddedEvent = """{"type":"ADDED","object":{"kind":"Pod","apiVersion":"v1","metadata":{"name":"p1","namespace":"hb-test","resourceVersion":"8"}}}""";

    private static string Quote(string text) => System.Text.Json.JsonSerializer.Serialize(text);
}

/// <summary>Records every call and retry the wrapper reports.</summary>
internal sealed class RecordingObserver : IKubernetesCallObserver
{
    public ConcurrentQueue<KubernetesRetryRecord> Retries { get; } = new();

    public ConcurrentQueue<KubernetesCallRecord> Calls { get; } = new();

    public void OnRetry(KubernetesRetryRecord retry) => Retries.Enqueue(retry);

    public void OnCompleted(KubernetesCallRecord call) => Calls.Enqueue(call);
}

/// <summary>A response body that sends its first line only after a delay, like a quiet watch.</summary>
internal sealed class SlowLinesContent(TimeSpan delay, string line) : HttpContent
{
    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
        throw new NotSupportedException("Read as a stream.");

    protected override Task<Stream> CreateContentReadStreamAsync() => Task.FromResult<Stream>(new SlowStream(delay, Encoding.UTF8.GetBytes(line + "\n")));

    protected override bool TryComputeLength(out long length)
    {
        length = 0;
        return false;
    }

    private sealed class SlowStream(TimeSpan delay, byte[] payload) : Stream
    {
        private bool _sent;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (_sent)
            {
                return 0;
            }

            await Task.Delay(delay, cancellationToken);
            _sent = true;
            payload.CopyTo(buffer);
            return payload.Length;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer, offset, count).GetAwaiter().GetResult();

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
