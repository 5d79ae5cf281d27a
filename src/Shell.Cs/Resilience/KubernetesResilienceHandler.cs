using System.Net;
using System.Threading.RateLimiting;
using HybridBatch.Core;
using HybridBatch.Core.Api;
using k8s.Autorest;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Polly;
using Polly.RateLimiting;
using Polly.Retry;
using Polly.Timeout;

namespace HybridBatch.Resilience;

/// <summary>
/// The resilience handler, Toil's <c>DecoratorWrapper</c>: the one place every Kubernetes API call goes through. A handler in the client's
/// HTTP pipeline that runs each request through one Polly pipeline: a retry strategy whose decisions and delays come
/// from the core's classifier and back-off (honouring <c>Retry-After</c>, within the retry budget; a 403 for a
/// permission this client has used before, or soon after the server was unreachable, is a restarting server's passing
/// refusal and is retried too), a client-side
/// token-bucket rate limit that every attempt passes, and a per-attempt timeout. A watch or a followed log passes the
/// rate limit and the retry while connecting, and its timeout covers only the response headers, never the stream.
/// A call that ends unsuccessfully throws <see cref="KubernetesApiException"/> carrying the core's decision.
/// </summary>
public sealed partial class KubernetesResilienceHandler : DelegatingHandler
{
    private static readonly ResiliencePropertyKey<CallState> CallKey = new("HybridBatch.KubernetesCall");
    private static readonly TimeSpan TimerSlack = TimeSpan.FromMilliseconds(20);

    private readonly KubernetesResilienceOptions _options;
    private readonly BackoffPolicy _policy;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly IKubernetesCallObserver? _observer;
    private readonly string _basePath;
    private readonly RateLimiter? _limiter;
    private readonly ResiliencePipeline<HttpResponseMessage> _pipeline;
    private readonly long _origin;

    // What this client has seen of its API server (permissions used, when it was last unreachable): the core tells a
    // restarting server's passing 403 from a missing permission by it. Replaced, never mutated, so reads need no lock.
    private ServerHistory _history = Retries.EmptyHistory;

    /// <summary>Creates the handler; <see cref="KubernetesClientFactory"/> is the usual way to get a client with it.</summary>
    /// <param name="options">Rate limit, timeout and retry settings; validated here.</param>
    /// <param name="loggerFactory">Where retries and failures are logged, if anywhere.</param>
    /// <param name="timeProvider">The clock for delays and timeouts; <see cref="TimeProvider.System"/> by default.</param>
    /// <param name="observer">Sees every call and retry, if given.</param>
    /// <param name="basePath">The path of the configured API server URL (for a server behind a path prefix).</param>
    /// <exception cref="ArgumentException">An option is out of range.</exception>
    public KubernetesResilienceHandler(
        KubernetesResilienceOptions options,
        ILoggerFactory? loggerFactory = null,
        TimeProvider? timeProvider = null,
        IKubernetesCallObserver? observer = null,
        string basePath = "/")
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        _policy = options.BackoffPolicy;
        _time = timeProvider ?? TimeProvider.System;
        _logger = loggerFactory?.CreateLogger<KubernetesResilienceHandler>() ?? NullLogger<KubernetesResilienceHandler>.Instance;
        _observer = observer;
        _basePath = string.IsNullOrEmpty(basePath) ? "/" : basePath;
        _limiter = options.Qps > 0 ? CreateLimiter(options) : null;
        _pipeline = BuildPipeline();
        _origin = _time.GetTimestamp();
    }

    /// <inheritdoc/>
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var body = request.Content is null ? null : await request.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
        var call = KubernetesRequest.From(request.Method, request.RequestUri, request.Content?.Headers.ContentType?.MediaType, body, _basePath);
        var state = new CallState(call, _time.GetTimestamp(), unchecked((ulong)Random.Shared.NextInt64()));

        var context = ResilienceContextPool.Shared.Get(cancellationToken);
        context.Properties.Set(CallKey, state);
        HttpResponseMessage response;
        try
        {
            response = await _pipeline.ExecuteAsync(
                static (ctx, s) => s.Self.AttemptAsync(ctx, s.Request, s.Body, s.State),
                context,
                (Self: this, Request: request, Body: body, State: state)).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            Complete(state, KubernetesCallOutcome.Cancelled, statusCode: null);
            throw;
        }
        catch (Exception ex) when (state.LastDecision is not null)
        {
            throw GiveUp(state, request, body, response: null, responseBody: null, ex);
        }
        catch (Exception)
        {
            // Not a failure the classifier understands (a bug, a full rate-limiter queue): surfaced as it is.
            Complete(state, KubernetesCallOutcome.Failed, statusCode: null);
            throw;
        }
        finally
        {
            ResilienceContextPool.Shared.Return(context);
        }

        if (response.IsSuccessStatusCode || state.LastDecision is null)
        {
            if (response.IsSuccessStatusCode)
            {
                Remember(h => Retries.Succeeded(h, call.Permission));
            }

            Complete(state, KubernetesCallOutcome.Succeeded, (int)response.StatusCode);
            return response;
        }

        using (response)
        {
            var responseBody = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            throw GiveUp(state, request, body, response, responseBody, inner: null);
        }
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _limiter?.Dispose();
        }

        base.Dispose(disposing);
    }

    private static TokenBucketRateLimiter CreateLimiter(KubernetesResilienceOptions options)
    {
        // Refill in steps of about 100 ms: the bucket's timer ticks for ever, even when nothing is asked, so a fine
        // step costs idle CPU (a 10 ms step alone used about 1.4 CPU s per minute); the burst absorbs the coarser refill.
        var tokensPerPeriod = Math.Max(1, (int)Math.Ceiling(options.Qps / 10));
        return new TokenBucketRateLimiter(new TokenBucketRateLimiterOptions
        {
            TokenLimit = options.Burst,
            TokensPerPeriod = tokensPerPeriod,
            ReplenishmentPeriod = TimeSpan.FromSeconds(tokensPerPeriod / options.Qps),
            QueueLimit = options.MaxQueuedRequests,
            QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
            AutoReplenishment = true,
        });
    }

    private ResiliencePipeline<HttpResponseMessage> BuildPipeline()
    {
        // Outermost first: each retry passes the rate limiter again, and the timeout bounds one attempt.
        var builder = new ResiliencePipelineBuilder<HttpResponseMessage> { Name = "kubernetes", TimeProvider = _time };
        builder.AddRetry(new RetryStrategyOptions<HttpResponseMessage>
        {
            MaxRetryAttempts = int.MaxValue,
            BackoffType = DelayBackoffType.Constant,
            UseJitter = false,
            ShouldHandle = ShouldRetryAsync,
            DelayGenerator = static args => ValueTask.FromResult(args.Context.Properties.GetValue(CallKey, null!).NextDelay),
            OnRetry = OnRetry,
        });
        if (_limiter is not null)
        {
            builder.AddRateLimiter(_limiter);
        }

        builder.AddTimeout(new TimeoutStrategyOptions
        {
            Timeout = _options.PerRequestTimeout,
            // A stream's attempt returns at its headers, which AttemptAsync bounds itself; Polly's pooled token must
            // not stay attached to a response body that is read long after the attempt.
            TimeoutGenerator = args => ValueTask.FromResult(
                args.Context.Properties.GetValue(CallKey, null!).Request.IsStreaming ? Timeout.InfiniteTimeSpan : _options.PerRequestTimeout),
        });
        return builder.Build();
    }

    private async ValueTask<HttpResponseMessage> AttemptAsync(ResilienceContext context, HttpRequestMessage original, byte[]? body, CallState state)
    {
        state.Attempts++;
        var token = context.CancellationToken;
        // Not disposed: a streamed response may still be reading through it; it holds no unmanaged resources.
        var attempt = Clone(original, body);
        HttpResponseMessage response;
        if (state.Request.IsStreaming)
        {
            using var deadline = new CancellationTokenSource(_options.PerRequestTimeout, _time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(token, deadline.Token);
            try
            {
                response = await base.SendAsync(attempt, linked.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException ex) when (deadline.IsCancellationRequested && !token.IsCancellationRequested)
            {
                throw new TimeoutRejectedException($"No response headers within {_options.PerRequestTimeout}.", _options.PerRequestTimeout, ex);
            }
        }
        else
        {
            response = await base.SendAsync(attempt, token).ConfigureAwait(false);
        }

        // The client reads its own request back from the response.
        response.RequestMessage = original;
        if (state.Request.IsStreaming && response.IsSuccessStatusCode)
        {
            return response;
        }

        try
        {
            // Inside the attempt, so the timeout covers the body and a reset mid-body is retried like any other.
            await response.Content.LoadIntoBufferAsync(token).ConfigureAwait(false);
            return response;
        }
        catch
        {
            response.Dispose();
            throw;
        }
    }

    private async ValueTask<bool> ShouldRetryAsync(RetryPredicateArguments<HttpResponseMessage> args)
    {
        var state = args.Context.Properties.GetValue(CallKey, null!);
        var token = args.Context.CancellationToken;
        ApiError error;
        switch (args.Outcome)
        {
            case { Exception: OperationCanceledException } when token.IsCancellationRequested:
                return false;
            case { Exception: { } ex } when KubernetesErrors.TransportOf(ex) is not null:
                error = KubernetesErrors.Describe(ex, state.Request, _time.GetUtcNow());
                state.LastCause = KubernetesErrors.TransportOf(ex)!.ToString()!;
                state.LastStatus = null;
                break;
            case { Result: { IsSuccessStatusCode: false } failed }:
                var responseBody = await failed.Content.ReadAsStringAsync(token).ConfigureAwait(false);
                error = KubernetesErrors.Describe(failed, responseBody, state.Request, _time.GetUtcNow());
                state.LastCause = $"HTTP {(int)failed.StatusCode} {failed.ReasonPhrase}".TrimEnd();
                state.LastStatus = failed.StatusCode;
                break;
            default:
                state.LastDecision = null;
                return false;
        }

        var now = _time.GetElapsedTime(_origin);
        var history = Remember(h => Retries.Failed(h, now, error));
        var next = Retries.Next(_policy, history, now, args.AttemptNumber + 1, state.Seed, _time.GetElapsedTime(state.Started), error);
        var decision = next.Decision;
        state.LastDecision = decision;
        state.NextDelay = next.Wait;
        if (state.NextDelay is { } delay && Retries.RetryAfter(decision).HasValue)
        {
            // Timers may fire up to a tick of the system clock early; the server's Retry-After must not be undercut.
            state.NextDelay = delay + TimerSlack;
        }

        return state.NextDelay.HasValue;
    }

    private ServerHistory Remember(Func<ServerHistory, ServerHistory> change)
    {
        while (true)
        {
            var seen = Volatile.Read(ref _history);
            var updated = change(seen);
            if (ReferenceEquals(updated, seen) || ReferenceEquals(Interlocked.CompareExchange(ref _history, updated, seen), seen))
            {
                return updated;
            }
        }
    }

    private ValueTask OnRetry(OnRetryArguments<HttpResponseMessage> args)
    {
        var state = args.Context.Properties.GetValue(CallKey, null!);
        var request = state.Request;
        LogRetry(_logger, request.Verb, request.Resource, request.Namespace ?? "", state.LastCause, args.AttemptNumber + 1, args.RetryDelay);
        _observer?.OnRetry(new KubernetesRetryRecord(request.Verb, request.Resource, request.Namespace, args.AttemptNumber + 1, args.RetryDelay, state.LastCause));
        return ValueTask.CompletedTask;
    }

    private KubernetesApiException GiveUp(
        CallState state,
        HttpRequestMessage request,
        byte[]? requestBody,
        HttpResponseMessage? response,
        string? responseBody,
        Exception? inner)
    {
        var decision = state.LastDecision!;
        var kind = KubernetesCallDecisions.Of(decision);
        var elapsed = _time.GetElapsedTime(state.Started);
        var outcome = kind switch
        {
            KubernetesCallDecision.Retry => KubernetesCallOutcome.GaveUp,
            KubernetesCallDecision.AlreadyDone => KubernetesCallOutcome.AlreadyDone,
            KubernetesCallDecision.Resync => KubernetesCallOutcome.Resync,
            _ => KubernetesCallOutcome.Failed,
        };
        var explanation = Retries.Explain(decision);
        var gaveUp = kind == KubernetesCallDecision.Retry || state.Attempts > 1
            ? $"gave up after {state.Attempts} attempt(s) in {elapsed}, the retry budget being {_options.RetryBudget}. "
            : "";
        var message = $"{request.Method} {state.Request.Path} failed ({state.LastCause}): {gaveUp}{explanation}";
        var exception = new KubernetesApiException(message, decision, state.LastStatus, state.Attempts, elapsed, inner)
        {
            Request = new HttpRequestMessageWrapper(request, requestBody is null ? "" : System.Text.Encoding.UTF8.GetString(requestBody)),
        };
        if (response is not null)
        {
            exception.Response = new HttpResponseMessageWrapper(response, responseBody ?? "");
        }

        if (outcome is KubernetesCallOutcome.Failed or KubernetesCallOutcome.GaveUp)
        {
            LogFailure(_logger, state.Request.Verb, state.Request.Resource, state.Request.Namespace ?? "", state.Attempts, message);
        }

        Complete(state, outcome, (int?)state.LastStatus);
        return exception;
    }

    private void Complete(CallState state, KubernetesCallOutcome outcome, int? statusCode)
    {
        var request = state.Request;
        _observer?.OnCompleted(new KubernetesCallRecord(
            request.Verb, request.Resource, request.Namespace, outcome, statusCode, state.Attempts, _time.GetElapsedTime(state.Started)));
    }

    private static HttpRequestMessage Clone(HttpRequestMessage original, byte[]? body)
    {
        var clone = new HttpRequestMessage(original.Method, original.RequestUri)
        {
            Version = original.Version,
            VersionPolicy = original.VersionPolicy,
        };
        foreach (var header in original.Headers)
        {
            clone.Headers.TryAddWithoutValidation(header.Key, header.Value);
        }

        foreach (var option in original.Options)
        {
            ((IDictionary<string, object?>)clone.Options)[option.Key] = option.Value;
        }

        if (body is not null)
        {
            clone.Content = new ByteArrayContent(body);
            foreach (var header in original.Content!.Headers)
            {
                if (!string.Equals(header.Key, "Content-Length", StringComparison.OrdinalIgnoreCase))
                {
                    clone.Content.Headers.TryAddWithoutValidation(header.Key, header.Value);
                }
            }
        }

        return clone;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Kubernetes {Verb} {Resource} (namespace {Namespace}) failed with {Cause} on attempt {Attempt}; retrying in {Delay}")]
    private static partial void LogRetry(ILogger logger, string verb, string resource, string @namespace, string cause, int attempt, TimeSpan delay);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Kubernetes {Verb} {Resource} (namespace {Namespace}) failed after {Attempts} attempt(s): {Explanation}")]
    private static partial void LogFailure(ILogger logger, string verb, string resource, string @namespace, int attempts, string explanation);

    /// <summary>One call's progress through the pipeline; attempts are sequential, so no locking is needed.</summary>
    private sealed class CallState(KubernetesRequest request, long started, ulong seed)
    {
        public KubernetesRequest Request { get; } = request;

        public long Started { get; } = started;

        public ulong Seed { get; } = seed;

        public int Attempts { get; set; }

        public Decision? LastDecision { get; set; }

        public TimeSpan? NextDelay { get; set; }

        public string LastCause { get; set; } = "";

        public HttpStatusCode? LastStatus { get; set; }
    }
}
