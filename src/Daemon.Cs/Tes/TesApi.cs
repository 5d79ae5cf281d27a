using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using HybridBatch.Daemon.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Options;

namespace HybridBatch.Daemon.Tes;

/// <summary>How much of a task a response shows.</summary>
internal enum TesView
{
    /// <summary>Its id and state.</summary>
    Minimal,

    /// <summary>All but the executors' output, the inputs' content and the system logs.</summary>
    Basic,

    /// <summary>All of it.</summary>
    Full,
}

/// <summary>The GA4GH TES 1.1 endpoints under <c>/ga4gh/tes/v1</c>.</summary>
internal static class TesApi
{
    public const string BasePath = "/ga4gh/tes/v1";

    /// <summary>The largest page a list may ask for, as the schema says (less than 2048).</summary>
    public const int MaxPageSize = 2047;

    public static RouteGroupBuilder MapTes(this IEndpointRouteBuilder app)
    {
        ArgumentNullException.ThrowIfNull(app);
        var group = app.MapGroup(BasePath);
        group.RequireBearerToken(() => Error(StatusCodes.Status401Unauthorized, "Authorization", BearerToken.Required));
        group.MapGet("/service-info", ServiceInfo);
        group.MapPost("/tasks", CreateAsync);
        group.MapGet("/tasks", List);
        group.MapGet("/tasks/{id}", Get);
        group.MapPost("/tasks/{id}:cancel", CancelAsync);
        return group;
    }

    /// <summary>A TES-style error: <c>{"msg": ..., "status_code": ..., "field": ...}</c>.</summary>
    public static IResult Error(int status, string? field, string message) =>
        Results.Json(
            new JsonObject { ["msg"] = message, ["status_code"] = status, ["field"] = field },
            TesJson.Options,
            statusCode: status);

    private static IResult ServiceInfo(HttpContext context, TaskRunner runner)
    {
        var version = typeof(TesApi).Assembly.GetName().Version?.ToString(3) ?? "1.0.0";
        var self = $"{context.Request.Scheme}://{context.Request.Host}";
        var info = new JsonObject
        {
            ["id"] = "io.hybridbatch.tes",
            ["name"] = "HybridBatch TES",
            ["type"] = new JsonObject { ["group"] = "org.ga4gh", ["artifact"] = "tes", ["version"] = "1.1.0" },
            ["description"] = "GA4GH Task Execution Service running tasks as Kubernetes Jobs through the HybridBatch batch system.",
            ["organization"] = new JsonObject { ["name"] = "HybridBatch", ["url"] = self },
            ["version"] = version,
            ["environment"] = "kubernetes",
            ["storage"] = new JsonArray(runner.Storage),
            ["tesResources_backend_parameters"] = new JsonArray([.. BackendParameters.Supported.Select(key => (JsonNode?)key)]),
        };
        return Results.Json(info, TesJson.Options);
    }

    private static async Task<IResult> CreateAsync(HttpContext context, TaskRunner runner, IOptions<TesOptions> options)
    {
        string body;
        try
        {
            using var reader = new StreamReader(context.Request.Body, Encoding.UTF8);
            body = await reader.ReadToEndAsync(context.RequestAborted).ConfigureAwait(false);
        }
        catch (BadHttpRequestException ex) when (ex.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return Error(StatusCodes.Status413PayloadTooLarge, "body", "the request body is larger than this service accepts (Tes:MaxRequestBytes)");
        }

        TesTask task;
        try
        {
            task = TesValidation.Parse(body, options.Value);
        }
        catch (TesValidationException ex)
        {
            return Error(StatusCodes.Status400BadRequest, ex.Field, ex.Message);
        }

        var id = runner.Create(task);
        return Results.Json(new JsonObject { ["id"] = id }, TesJson.Options);
    }

    private static IResult Get(string id, HttpRequest request, TaskStore store)
    {
        if (View(request) is not { } view)
        {
            return BadView(request);
        }

        return store.Get(id) is { } stored
            ? Results.Json(Shape(stored.Task, view), TesJson.Options)
            : Error(StatusCodes.Status404NotFound, "id", $"id: there is no task '{id}'");
    }

    private static async Task<IResult> CancelAsync(string id, TaskRunner runner, CancellationToken cancellationToken) =>
        await runner.CancelAsync(id, cancellationToken).ConfigureAwait(false)
            ? Results.Json(new JsonObject(), TesJson.Options)
            : Error(StatusCodes.Status404NotFound, "id", $"id: there is no task '{id}'");

    private static IResult List(HttpRequest request, TaskStore store, IOptions<TesOptions> options)
    {
        if (View(request) is not { } view)
        {
            return BadView(request);
        }

        var query = request.Query;
        string? stateName = query["state"];
        TesState? state = null;
        if (!string.IsNullOrEmpty(stateName))
        {
            if (!TesStates.TryParse(stateName, out var parsed))
            {
                return Error(StatusCodes.Status400BadRequest, "state", $"state: '{stateName}' is not a TES state ({string.Join(", ", TesStates.All)})");
            }

            state = parsed;
        }

        var pageSize = options.Value.DefaultPageSize;
        if (query["page_size"] is { Count: > 0 } sizeText)
        {
            if (!int.TryParse(sizeText, NumberStyles.Integer, CultureInfo.InvariantCulture, out pageSize) || pageSize < 1 || pageSize > MaxPageSize)
            {
                return Error(StatusCodes.Status400BadRequest, "page_size", $"page_size: '{sizeText}' is not a number from 1 to {MaxPageSize}");
            }
        }

        long after = 0;
        if (query["page_token"] is { Count: > 0 } token && !string.IsNullOrEmpty(token))
        {
            if (!long.TryParse(token, NumberStyles.None, CultureInfo.InvariantCulture, out after))
            {
                return Error(StatusCodes.Status400BadRequest, "page_token", $"page_token: '{token}' is not a token this service returned");
            }
        }

        var keys = query["tag_key"];
        var values = query["tag_value"];
        if (values.Count > keys.Count)
        {
            return Error(StatusCodes.Status400BadRequest, "tag_value", "tag_value: there are more tag_value than tag_key parameters");
        }

        var tags = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i < keys.Count; i++)
        {
            tags[keys[i] ?? ""] = i < values.Count ? values[i] ?? "" : "";
        }

        var filter = new TaskFilter(query["name_prefix"], state, tags);
        var (tasks, next) = store.List(after, filter, pageSize, withJson: view != TesView.Minimal);
        var response = new JsonObject { ["tasks"] = new JsonArray([.. tasks.Select(t => (JsonNode?)Shape(t, view))]) };
        if (next is { } n)
        {
            response["next_page_token"] = TaskStore.Token(n);
        }

        return Results.Json(response, TesJson.Options);
    }

    private static TesView? View(HttpRequest request)
    {
        string? view = request.Query["view"];
        return view switch
        {
            null or "" or "MINIMAL" => TesView.Minimal,
            "BASIC" => TesView.Basic,
            "FULL" => TesView.Full,
            _ => null,
        };
    }

    private static IResult BadView(HttpRequest request) =>
        Error(StatusCodes.Status400BadRequest, "view", $"view: '{request.Query["view"]}' is not MINIMAL, BASIC or FULL");

    /// <summary>A task as a view shows it.</summary>
    public static JsonObject Shape(TesTask task, TesView view)
    {
        ArgumentNullException.ThrowIfNull(task);
        return view == TesView.Minimal ? Minimal(task.Id, task.State) : Detail(JsonSerializer.SerializeToNode(task, TesJson.Options)!.AsObject(), view);
    }

    // A listed task: MINIMAL from its columns, the other views from its stored JSON, which is the task as serialized.
    private static JsonObject Shape(ListedTask task, TesView view) =>
        view == TesView.Minimal ? Minimal(task.Id, task.State) : Detail(JsonNode.Parse(task.Json!)!.AsObject(), view);

    private static JsonObject Minimal(string? id, TesState state) => new() { ["id"] = id, ["state"] = TesStates.Name(state) };

    // BASIC leaves out the executors' output, the inputs' content and the system logs; FULL is all of it.
    private static JsonObject Detail(JsonObject task, TesView view)
    {
        if (view == TesView.Basic)
        {
            foreach (var input in task["inputs"]?.AsArray() ?? [])
            {
                input?.AsObject().Remove("content");
            }

            foreach (var log in task["logs"]?.AsArray() ?? [])
            {
                log?.AsObject().Remove("system_logs");
                foreach (var executor in log?["logs"]?.AsArray() ?? [])
                {
                    executor?.AsObject().Remove("stdout");
                    executor?.AsObject().Remove("stderr");
                }
            }
        }

        return task;
    }
}
