using System.Net;
using System.Net.Sockets;
using System.Text;
using HybridBatch.Resilience;
using k8s;
using k8s.Models;

namespace HybridBatch.Integration.Resilience;

/// <summary>
/// Every call through the client the factory returns goes through the wrapper: a loopback HTTP server counts what
/// reaches it, the wrapper's observer counts what passed through it, and the two agree for every kind of operation.
/// </summary>
public sealed class NoEscapeTests
{
    [Fact]
    public async Task No_call_path_escapes_the_wrapper()
    {
        using var server = new LoopbackApiServer();
        var counter = new KubernetesCallCounter();
        using var client = KubernetesClientFactory.Create(
            new KubernetesClientConfiguration { Host = server.Url },
            new KubernetesResilienceOptions { Qps = 100, Burst = 100 },
            observer: counter);
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var token = cancel.Token;

        await client.CoreV1.ListNamespacedPodAsync("hb", cancellationToken: token);
        await client.BatchV1.CreateNamespacedJobAsync(new V1Job { Metadata = new V1ObjectMeta { Name = "hb-1" } }, "hb", cancellationToken: token);
        await client.BatchV1.DeleteNamespacedJobAsync("hb-1", "hb", propagationPolicy: "Background", cancellationToken: token);
        await client.BatchV1.DeleteCollectionNamespacedJobAsync("hb", labelSelector: "run=1", cancellationToken: token);
        await using (var log = await client.CoreV1.ReadNamespacedPodLogAsync("p1", "hb", cancellationToken: token))
        {
            using var reader = new StreamReader(log);
            Assert.Equal("hello", (await reader.ReadToEndAsync(token)).Trim());
        }

        await foreach (var (_, pod) in client.CoreV1.WatchListNamespacedPodAsync("hb", cancellationToken: token))
        {
            Assert.Equal("p1", pod.Metadata.Name);
        }

        await client.CoreV1.ReadNamespaceAsync("hb", cancellationToken: token);

        Assert.Equal(7, server.Requests);
        Assert.Equal(server.Requests, counter.Requests);
        Assert.Equal(server.Requests, counter.Attempts);
        Assert.Equal(1, counter.Count("list"));
        Assert.Equal(1, counter.Count("create"));
        Assert.Equal(1, counter.Count("delete"));
        Assert.Equal(1, counter.Count("deletecollection"));
        Assert.Equal(1, counter.Count("watch"));
        Assert.Equal(2, counter.Count("get"));
    }

    /// <summary>A minimal API server on a loopback port, answering each kind of request the test makes.</summary>
    private sealed class LoopbackApiServer : IDisposable
    {
        private readonly HttpListener _listener = new();
        private readonly Task _serving;
        private int _requests;

        public LoopbackApiServer()
        {
            var port = FreePort();
            Url = $"http://127.0.0.1:{port}/";
            _listener.Prefixes.Add(Url);
            _listener.Start();
            _serving = Task.Run(ServeAsync);
        }

        public string Url { get; }

        public int Requests => Volatile.Read(ref _requests);

        public void Dispose()
        {
            _listener.Close();
            try
            {
                _serving.Wait(TimeSpan.FromSeconds(5));
            }
            catch (AggregateException)
            {
                // The listener was closed under the accept loop.
            }
        }

        private static int FreePort()
        {
            using var probe = new TcpListener(IPAddress.Loopback, 0);
            probe.Start();
            return ((IPEndPoint)probe.LocalEndpoint).Port;
        }

        private async Task ServeAsync()
        {
            while (_listener.IsListening)
            {
                HttpListenerContext context;
                try
                {
                    context = await _listener.GetContextAsync();
                }
                catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException or InvalidOperationException)
                {
                    return;
                }

                Interlocked.Increment(ref _requests);
                await AnswerAsync(context);
            }
        }

        private static async Task AnswerAsync(HttpListenerContext context)
        {
            var request = context.Request;
            var path = request.Url!.AbsolutePath;
            var watch = request.QueryString["watch"] is "true" or "1";
            var (status, body) = (request.HttpMethod, path) switch
            {
                ("GET", _) when watch => (200, Responses.PodAddedEvent + "\n"),
                ("GET", "/api/v1/namespaces/hb/pods") => (200, """{"kind":"PodList","apiVersion":"v1","metadata":{},"items":[]}"""),
                ("GET", "/api/v1/namespaces/hb/pods/p1/log") => (200, "hello\n"),
                ("GET", "/api/v1/namespaces/hb") => (200, """{"kind":"Namespace","apiVersion":"v1","metadata":{"name":"hb"}}"""),
                ("POST", _) => (201, """{"kind":"Job","apiVersion":"batch/v1","metadata":{"name":"hb-1"}}"""),
                ("DELETE", _) => (200, """{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success"}"""),
                _ => (404, """{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}"""),
            };
            var bytes = Encoding.UTF8.GetBytes(body);
            context.Response.StatusCode = status;
            context.Response.ContentType = "application/json";
            context.Response.ContentLength64 = bytes.Length;
            await context.Response.OutputStream.WriteAsync(bytes);
            context.Response.Close();
        }
    }
}
