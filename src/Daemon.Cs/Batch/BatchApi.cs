using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using HybridBatch.Daemon.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace HybridBatch.Daemon.Batch;

/// <summary>An accelerator as a client sends it (Toil's <c>AcceleratorRequirement</c>).</summary>
internal sealed record AcceleratorBody(int Count, string? Kind, string? Model, string? Brand, string? Api);

/// <summary>A job as a client issues it: Toil's <c>JobDescription</c> as a batch system reads it, and its environment.</summary>
internal sealed record JobBody(
    string? Command,
    string? Name,
    double Cores,
    long Memory,
    long Disk,
    bool Preemptible,
    string? Image,
    IReadOnlyList<AcceleratorBody>? Accelerators,
    IReadOnlyDictionary<string, string>? Environment);

/// <summary>Jobs to kill.</summary>
internal sealed record KillBody(IReadOnlyList<int>? Ids);

/// <summary>
/// The batch-system contract over HTTP under <c>/hybridbatch/v1</c>, for clients in other languages (the Toil plugin):
/// a session is one <see cref="KubernetesBatchSystem"/>, and each call is one of its methods. TES cannot carry the
/// contract: it has no wait for the next finished task (a client would poll every task), no exit reason beyond
/// EXECUTOR_ERROR and SYSTEM_ERROR (an OOM kill, a lost node and a missing image look alike), no running times, and
/// string ids where Toil counts integers.
/// </summary>
internal static class BatchApi
{
    public const string BasePath = "/hybridbatch/v1";

    /// <summary>The longest one request waits for a finished job; clients that want longer ask again.</summary>
    public static readonly TimeSpan MaxWait = TimeSpan.FromSeconds(30);

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        // Messages quote names with ' and are read by people too (curl); the relaxed encoder leaves them as they are.
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    };

    public static RouteGroupBuilder MapBatchSessions(this IEndpointRouteBuilder app)
    {
        ArgumentNullException.ThrowIfNull(app);
        var group = app.MapGroup(BasePath);
        group.RequireBearerToken(() => Error(StatusCodes.Status401Unauthorized, BearerToken.Required));
        group.MapPost("/sessions", OpenAsync);
        group.MapDelete("/sessions/{run}", CloseAsync);
        group.MapPost("/sessions/{run}/jobs", IssueAsync);
        group.MapGet("/sessions/{run}/updated", UpdatedAsync);
        group.MapPost("/sessions/{run}/kill", KillAsync);
        group.MapGet("/sessions/{run}/issued", IssuedAsync);
        group.MapGet("/sessions/{run}/running", RunningAsync);
        return group;
    }

    /// <summary>An error: <c>{"error": message}</c> with more fields when given.</summary>
    public static IResult Error(int status, string message, JsonObject? details = null)
    {
        var body = details ?? [];
        body["error"] = message;
        return Results.Json(body, Json, statusCode: status);
    }

    private static async Task<(T? Body, IResult? Problem)> ReadAsync<T>(HttpRequest request)
        where T : class
    {
        try
        {
            var body = await JsonSerializer.DeserializeAsync<T>(request.Body, Json, request.HttpContext.RequestAborted).ConfigureAwait(false);
            return body is null ? (null, Error(StatusCodes.Status400BadRequest, "the request body is empty: send a JSON object")) : (body, null);
        }
        catch (JsonException ex)
        {
            return (null, Error(StatusCodes.Status400BadRequest, $"the request body is not what this call takes: {ex.Message}"));
        }
    }

    // The message without .NET's " (Parameter 'job')" suffix, which names a C# parameter, not the request's field.
    private static string Reason(ArgumentException ex) =>
        ex.ParamName is { } name ? ex.Message.Replace($" (Parameter '{name}')", "", StringComparison.Ordinal) : ex.Message;

    private static IResult NoSession(string run) =>
        Error(StatusCodes.Status404NotFound, $"there is no session '{run}': open one with POST {BasePath}/sessions (with runId '{run}' to re-attach to its jobs)");

    private static async Task<IResult> OpenAsync(HttpRequest request, BatchSessions sessions)
    {
        var (body, problem) = request.ContentLength is 0 ? (new SessionRequest(), null) : await ReadAsync<SessionRequest>(request).ConfigureAwait(false);
        if (problem is not null)
        {
            return problem;
        }

        try
        {
            var system = await sessions.OpenAsync(body!, request.HttpContext.RequestAborted).ConfigureAwait(false);
            return Results.Json(new JsonObject { ["runId"] = system.RunId, ["namespace"] = system.Namespace, ["owner"] = system.Owner }, Json, statusCode: StatusCodes.Status201Created);
        }
        catch (SessionRefusedException ex)
        {
            return Error(ex.ClientError ? StatusCodes.Status400BadRequest : StatusCodes.Status503ServiceUnavailable, ex.Message);
        }
    }

    private static async Task<IResult> CloseAsync(string run, HttpRequest request, BatchSessions sessions) =>
        await sessions.CloseAsync(run, detach: request.Query["detach"] == "true", request.HttpContext.RequestAborted).ConfigureAwait(false)
            ? Results.NoContent()
            : NoSession(run);

    private static async Task<IResult> IssueAsync(string run, HttpRequest request, BatchSessions sessions)
    {
        if (sessions.Find(run) is not { } system)
        {
            return NoSession(run);
        }

        var (body, problem) = await ReadAsync<JobBody>(request).ConfigureAwait(false);
        if (problem is not null)
        {
            return problem;
        }

        var job = new JobDescription(body!.Name ?? "job", body.Cores, body.Memory, body.Disk)
        {
            Preemptible = body.Preemptible,
            Image = body.Image,
            Accelerators = [.. (body.Accelerators ?? []).Select(a => new AcceleratorRequirement(a.Count, a.Kind ?? "gpu", a.Model, a.Brand, a.Api))],
        };
        try
        {
            var id = await system.IssueBatchJobAsync(body.Command ?? "", job, body.Environment, request.HttpContext.RequestAborted).ConfigureAwait(false);
            return Results.Json(new JsonObject { ["id"] = id }, Json, statusCode: StatusCodes.Status201Created);
        }
        catch (InsufficientSystemResourcesException ex)
        {
            return Error(StatusCodes.Status422UnprocessableEntity, ex.Message, new JsonObject
            {
                ["resource"] = ex.Resource,
                ["requested"] = ex.Requested,
                ["available"] = ex.Available,
            });
        }
        catch (ArgumentException ex)
        {
            return Error(StatusCodes.Status400BadRequest, Reason(ex));
        }
        catch (ObjectDisposedException)
        {
            return NoSession(run);
        }
    }

    private static async Task<IResult> UpdatedAsync(string run, HttpRequest request, BatchSessions sessions)
    {
        if (sessions.Find(run) is not { } system)
        {
            return NoSession(run);
        }

        var wait = TimeSpan.Zero;
        if (request.Query["maxWait"] is { Count: > 0 } text)
        {
            if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) || !double.IsFinite(seconds) || seconds < 0)
            {
                return Error(StatusCodes.Status400BadRequest, $"maxWait '{text}' is not a number of seconds, 0 or more");
            }

            wait = TimeSpan.FromSeconds(Math.Min(seconds, MaxWait.TotalSeconds));
        }

        UpdatedBatchJobInfo? done;
        try
        {
            done = await system.GetUpdatedBatchJobAsync(wait, request.HttpContext.RequestAborted).ConfigureAwait(false);
        }
        catch (ObjectDisposedException)
        {
            return NoSession(run);
        }

        if (done is null)
        {
            return Results.NoContent();
        }

        return Results.Json(
            new JsonObject
            {
                ["jobId"] = done.JobId,
                ["exitStatus"] = done.ExitStatus,
                ["exitReason"] = done.ExitReason.ToString(),
                ["exitReasonCode"] = (int)done.ExitReason,
                ["wallTime"] = done.WallTime.TotalSeconds,
                ["backingId"] = done.BackingId,
                ["message"] = done.Message,
            },
            Json);
    }

    private static async Task<IResult> KillAsync(string run, HttpRequest request, BatchSessions sessions)
    {
        if (sessions.Find(run) is not { } system)
        {
            return NoSession(run);
        }

        var (body, problem) = await ReadAsync<KillBody>(request).ConfigureAwait(false);
        if (problem is not null)
        {
            return problem;
        }

        await system.KillBatchJobsAsync(body!.Ids ?? [], request.HttpContext.RequestAborted).ConfigureAwait(false);
        return Results.NoContent();
    }

    private static async Task<IResult> IssuedAsync(string run, HttpRequest request, BatchSessions sessions) =>
        sessions.Find(run) is { } system
            ? Results.Json(new { ids = await system.GetIssuedBatchJobIdsAsync(request.HttpContext.RequestAborted).ConfigureAwait(false) }, Json)
            : NoSession(run);

    private static async Task<IResult> RunningAsync(string run, HttpRequest request, BatchSessions sessions)
    {
        if (sessions.Find(run) is not { } system)
        {
            return NoSession(run);
        }

        var running = await system.GetRunningBatchJobIdsAsync(request.HttpContext.RequestAborted).ConfigureAwait(false);
        var seconds = new JsonObject();
        foreach (var (id, time) in running)
        {
            seconds[id.ToString(CultureInfo.InvariantCulture)] = time.TotalSeconds;
        }

        return Results.Json(new JsonObject { ["running"] = seconds }, Json);
    }
}
