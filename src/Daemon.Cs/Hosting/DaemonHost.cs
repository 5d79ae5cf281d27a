using HybridBatch.Daemon.Batch;
using HybridBatch.Daemon.Tes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Prometheus;

namespace HybridBatch.Daemon.Hosting;

/// <summary>Builds the <c>serve</c> web application on the Generic Host.</summary>
internal static class DaemonHost
{
    /// <summary>Builds the application.</summary>
    /// <param name="settings">What to serve with, bound from serve's command line (<see cref="ServeCommand.Bind(System.CommandLine.ParseResult)"/>).</param>
    /// <param name="configure">Adjusts the builder (tests use it).</param>
    /// <returns>The application, not yet started.</returns>
    public static WebApplication Build(ServeSettings settings, Action<WebApplicationBuilder>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
        // The options are bound already; the host reads its own sections (Logging, Kestrel) from the same files and variables.
        builder.Configuration.AddConfiguration(settings.Configuration);
        builder.Configuration.AddInMemoryCollection([new("urls", settings.Urls)]);
        builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
        configure?.Invoke(builder);

        builder.Services.AddSingleton(settings.BatchSystem);
        builder.Services.AddSingleton(Options.Create(settings.Tes));
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton<DaemonMetrics>();
        builder.Services.AddSingleton(_ => new TaskStore(settings.Tes.DatabasePath));
        builder.Services.AddSingleton<TaskRunner>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<TaskRunner>());
        builder.Services.AddSingleton<BatchSessions>();
        builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = settings.Tes.MaxRequestBytes);

        var app = builder.Build();
        var metrics = app.Services.GetRequiredService<DaemonMetrics>();
        var store = app.Services.GetRequiredService<TaskStore>();
        metrics.Registry.AddBeforeCollectCallback(() => metrics.SetTasks(store.CountByState()));
        app.UseHttpMetrics(o => o.SetMetricFactory(Metrics.WithCustomRegistry(metrics.Registry)));
        app.MapGet("/healthz", () => Results.Json(new { status = "ok" }));
        app.MapGet("/readyz", async (TaskRunner runner, CancellationToken cancellationToken) =>
            await runner.CheckClusterAsync(cancellationToken).ConfigureAwait(false) is { } problem
                ? Results.Json(new { status = "unavailable", reason = problem }, statusCode: StatusCodes.Status503ServiceUnavailable)
                : Results.Json(new { status = "ready", run = runner.RunId }));
        app.MapMetrics("/metrics", metrics.Registry);
        app.MapTes();
        app.MapBatchSessions();
        return app;
    }
}
