using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;
using HybridBatch.Resilience;
using k8s;
using k8s.Autorest;
using k8s.Models;

namespace HybridBatch.Integration.Resilience;

/// <summary>Toil's <c>is_retryable_kubernetes_error</c>, translated and answered by the core's classifier.</summary>
public sealed class KubernetesErrorsTests
{
    private static HttpOperationException Answered(HttpStatusCode code, HttpMethod method, string path, string requestBody = "")
    {
        using var request = new HttpRequestMessage(method, new Uri("https://cluster.example" + path));
        using var response = new HttpResponseMessage(code);
        return new HttpOperationException($"Operation returned an invalid status code '{code}'")
        {
            Request = new HttpRequestMessageWrapper(request, requestBody),
            Response = new HttpResponseMessageWrapper(response, ""),
        };
    }

    [Fact]
    public void The_considered_exception_types_cover_Toils_list()
    {
        // urllib3's MaxRetryError and ProtocolError, and the client's ApiException.
        Assert.Contains(typeof(HttpRequestException), KubernetesErrors.RetryableKubernetesErrors);
        Assert.Contains(typeof(IOException), KubernetesErrors.RetryableKubernetesErrors);
        Assert.Contains(typeof(HttpOperationException), KubernetesErrors.RetryableKubernetesErrors);
    }

    [Fact]
    public void Refused_connections_and_server_errors_on_reads_are_retryable()
    {
        Assert.True(KubernetesErrors.IsRetryable(new HttpRequestException(HttpRequestError.ConnectionError, "refused")));
        Assert.True(KubernetesErrors.IsRetryable(new SocketException((int)SocketError.ConnectionReset)));
        Assert.True(KubernetesErrors.IsRetryable(new TaskCanceledException("timed out", new TimeoutException())));
        Assert.True(KubernetesErrors.IsRetryable(Answered(HttpStatusCode.ServiceUnavailable, HttpMethod.Get, "/api/v1/namespaces/ns/pods")));
        Assert.True(KubernetesErrors.IsRetryable(Answered(HttpStatusCode.TooManyRequests, HttpMethod.Post, "/apis/batch/v1/namespaces/ns/jobs")));
    }

    [Fact]
    public void Permission_and_validity_failures_and_bugs_are_not_retryable()
    {
        Assert.False(KubernetesErrors.IsRetryable(Answered(HttpStatusCode.Forbidden, HttpMethod.Get, "/api/v1/namespaces/ns/pods")));
        Assert.False(KubernetesErrors.IsRetryable(Answered(HttpStatusCode.UnprocessableEntity, HttpMethod.Post, "/apis/batch/v1/namespaces/ns/jobs")));
        Assert.False(KubernetesErrors.IsRetryable(new HttpRequestException(HttpRequestError.SecureConnectionError, "bad certificate", new AuthenticationException())));
        Assert.False(KubernetesErrors.IsRetryable(new InvalidOperationException("a bug")));
    }

    [Fact]
    public void A_server_error_on_a_create_is_retryable_only_when_the_object_has_a_fixed_name()
    {
        const string jobs = "/apis/batch/v1/namespaces/ns/jobs";
        Assert.False(KubernetesErrors.IsRetryable(Answered(HttpStatusCode.InternalServerError, HttpMethod.Post, jobs, """{"metadata":{"generateName":"hb-"}}""")));
        Assert.True(KubernetesErrors.IsRetryable(Answered(HttpStatusCode.InternalServerError, HttpMethod.Post, jobs, """{"metadata":{"name":"hb-1"}}""")));
    }

    [Fact]
    public void A_403_explains_which_permission_is_missing()
    {
        var explanation = KubernetesErrors.Explain(Answered(HttpStatusCode.Forbidden, HttpMethod.Delete, "/apis/batch/v1/namespaces/hb/jobs/j1"));

        Assert.Contains("cannot delete jobs.batch in namespace hb", explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void A_404_on_a_delete_is_already_done_and_a_410_is_a_resync()
    {
        Assert.True(KubernetesErrors.IsAlreadyDone(Answered(HttpStatusCode.NotFound, HttpMethod.Delete, "/apis/batch/v1/namespaces/hb/jobs/j1")));
        Assert.False(KubernetesErrors.IsAlreadyDone(Answered(HttpStatusCode.NotFound, HttpMethod.Get, "/apis/batch/v1/namespaces/hb/jobs/j1")));
        Assert.True(KubernetesErrors.IsResync(new KubernetesException(new V1Status { Code = 410, Reason = "Expired", Message = "too old resource version" })));
    }

    [Theory]
    [InlineData("GET", "/api/v1/namespaces/hb/pods", "list", "pods", "hb", false)]
    [InlineData("GET", "/api/v1/namespaces/hb/pods?watch=true", "watch", "pods", "hb", true)]
    [InlineData("GET", "/api/v1/namespaces/hb/pods/p1/log?follow=true", "get", "pods/log", "hb", true)]
    [InlineData("POST", "/apis/batch/v1/namespaces/hb/jobs", "create", "jobs.batch", "hb", false)]
    [InlineData("DELETE", "/apis/batch/v1/namespaces/hb/jobs", "deletecollection", "jobs.batch", "hb", false)]
    [InlineData("GET", "/api/v1/nodes/n1", "get", "nodes", null, false)]
    [InlineData("PATCH", "/prefix/apis/batch/v1/namespaces/hb/jobs/j1", "patch", "jobs.batch", "hb", false)]
    public void A_request_is_read_as_the_permission_it_exercises(string method, string pathAndQuery, string verb, string resource, string? ns, bool streaming)
    {
        var request = KubernetesRequest.From(new HttpMethod(method), new Uri("https://cluster.example" + pathAndQuery), null, default, "/prefix/");

        Assert.Equal(verb, request.Verb);
        Assert.Equal(resource, request.Resource);
        Assert.Equal(ns, request.Namespace);
        Assert.Equal(streaming, request.IsStreaming);
    }

    [Fact]
    public void A_create_with_a_fixed_name_is_made_idempotent_and_one_with_generateName_is_not()
    {
        var uri = new Uri("https://cluster.example/apis/batch/v1/namespaces/hb/jobs");

        Assert.True(KubernetesRequest.From(HttpMethod.Post, uri, "application/json", """{"metadata":{"name":"hb-1"}}"""u8, "/").MadeIdempotent);
        Assert.False(KubernetesRequest.From(HttpMethod.Post, uri, "application/json", """{"metadata":{"generateName":"hb-"}}"""u8, "/").MadeIdempotent);
        Assert.True(KubernetesRequest.From(HttpMethod.Patch, uri, "application/merge-patch+json", "{}"u8, "/").MadeIdempotent);
        Assert.False(KubernetesRequest.From(HttpMethod.Patch, uri, "application/json-patch+json", "[]"u8, "/").MadeIdempotent);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_TLS_handshake_the_server_cuts_short_is_a_retryable_refusal_not_a_certificate_problem(bool reset)
    {
        // What a restarting API server or a load balancer in front of it does: accept, then reset or close at once.
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var server = Task.Run(async () =>
        {
            using var socket = await listener.AcceptSocketAsync();
            if (reset)
            {
                socket.LingerState = new LingerOption(true, 0);
            }

            socket.Close();
        });
        using var client = new HttpClient();
        var error = await Assert.ThrowsAsync<HttpRequestException>(() =>
            client.GetAsync(new Uri($"https://127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}/apis/batch/v1/namespaces/hb/jobs")));
        await server;

        // A reset can land before the handshake begins (ConnectionError) or during it (SecureConnectionError).
        Assert.Contains(error.HttpRequestError, new[] { HttpRequestError.SecureConnectionError, HttpRequestError.ConnectionError });
        Assert.Equal(HybridBatch.Core.TransportFailure.Refused, KubernetesErrors.TransportOf(error));
        Assert.True(KubernetesErrors.IsRetryable(error), error.ToString());
    }
}
