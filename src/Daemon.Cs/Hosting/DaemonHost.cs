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
    private static readonly Dictionary<string, string> ServeSwitches = new()
    {
        ["--data-dir"] = TesOptions.SectionName + ":" + nameof(TesOptions.DataDirectory),
        ["--token"] = TesOptions.SectionName + ":" + nameof(TesOptions.Token),
        ["--urls"] = "urls",
    };

    /// <summary>Builds the application.</summary>
    /// <param name="args">The command line: <c>--urls</c>, <c>--data-dir</c>, <c>--token</c> and the batch system's flags.</param>
    /// <param name="configure">Adjusts the builder (tests use it).</param>
    /// <returns>The application, not yet started.</returns>
    public static WebApplication Build(string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(args);
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
        builder.Configuration.AddInMemoryCollection([new("urls", ServeCommand.DefaultUrls)]);
        builder.Configuration.AddJsonFile(Path.Combine(Environment.CurrentDirectory, "appsettings.json"), optional: true);
        builder.Configuration.AddEnvironmentVariables("HYBRIDBATCH_");
        builder.Configuration.AddHybridBatchSources(args);
        builder.Configuration.AddCommandLine(ServeOnly(args), ServeSwitches);
        builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
        configure?.Invoke(builder);

        var options = CommonOptions.Bind(builder.Configuration, args);
        builder.Services.AddSingleton(options);
        builder.Services.Configure<TesOptions>(builder.Configuration.GetSection(TesOptions.SectionName));
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton<DaemonMetrics>();
        builder.Services.AddSingleton(sp => new TaskStore(sp.GetRequiredService<IOptions<TesOptions>>().Value.DatabasePath));
        builder.Services.AddSingleton<TaskRunner>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<TaskRunner>());
        var maxBody = builder.Configuration.GetSection(TesOptions.SectionName).GetValue<long?>(nameof(TesOptions.MaxRequestBytes)) ?? new TesOptions().MaxRequestBytes;
        builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = maxBody);

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
        return app;
    }

    private static string[] ServeOnly(string[] args)
    {
        var kept = new List<string>();
        for (var i = 0; i < args.Length; i++)
        {
            var flag = args[i].Split('=', 2)[0];
            if (!ServeSwitches.ContainsKey(flag))
            {
                continue;
            }

            kept.Add(args[i]);
            if (!args[i].Contains('=', StringComparison.Ordinal) && i + 1 < args.Length)
            {
                kept.Add(args[++i]);
            }
        }

        return [.. kept];
    }
}
