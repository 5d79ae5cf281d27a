using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using HybridBatch.Daemon.Hosting;
using HybridBatch.Daemon.Tes;
using HybridBatch.Integration.Cluster;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace HybridBatch.Integration.Daemon;

/// <summary>A running <c>hybridbatch serve</c>, in this process or as a child process that can be killed.</summary>
internal sealed class Daemon : IAsyncDisposable
{
    private readonly WebApplication? app;
    private readonly Process? process;

    private Daemon(Uri address, WebApplication? app, Process? process)
    {
        Address = address;
        this.app = app;
        this.process = process;
        Client = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromSeconds(60) };
    }

    public Uri Address { get; }

    public HttpClient Client { get; }

    /// <summary>
    /// The arguments of serve against the test cluster, with a small per-job overhead for the small node unless
    /// <paramref name="extra"/> gives one (serve refuses a flag given twice).
    /// </summary>
    public static List<string> Arguments(LocalClusterFixture cluster, string dataDirectory, int port, params string[] extra) =>
    [
        "--urls", $"http://127.0.0.1:{port}",
        "--data-dir", dataDirectory,
        "--kubeconfig", cluster.KubeconfigPath,
        "--namespace", cluster.Namespace,
        .. extra.Contains("--resourceOverhead") ? [] : (string[])["--resourceOverhead", "16Mi"],
        .. extra,
    ];

    /// <summary>Starts the daemon in this process.</summary>
    public static async Task<Daemon> StartAsync(LocalClusterFixture cluster, string dataDirectory, ITestOutputHelper output, params string[] extra)
    {
        var port = FreePort();
        var app = DaemonHost.Build(
            ServeCommand.Bind(DaemonCommand.Parse(["serve", .. Arguments(cluster, dataDirectory, port, extra)])),
            b =>
            {
                b.Logging.ClearProviders();
                b.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
                b.Logging.AddProvider(new BatchSystem.TestOutputLoggerProvider(output));
            });
        await app.StartAsync();
        var daemon = new Daemon(new Uri($"http://127.0.0.1:{port}"), app, null);
        await daemon.WaitReadyAsync();
        return daemon;
    }

    /// <summary>Starts the daemon as a child process (the built executable), so that a test can kill -9 it.</summary>
    public static async Task<Daemon> StartProcessAsync(LocalClusterFixture cluster, string dataDirectory, ITestOutputHelper output)
    {
        var port = FreePort();
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "HybridBatch.Daemon.dll"));
        start.ArgumentList.Add("serve");
        foreach (var argument in Arguments(cluster, dataDirectory, port))
        {
            start.ArgumentList.Add(argument);
        }

        var process = Process.Start(start)!;
        process.OutputDataReceived += (_, e) => Write(output, e.Data);
        process.ErrorDataReceived += (_, e) => Write(output, e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var daemon = new Daemon(new Uri($"http://127.0.0.1:{port}"), null, process);
        await daemon.WaitReadyAsync();
        return daemon;
    }

    private static void Write(ITestOutputHelper output, string? line)
    {
        if (line is null)
        {
            return;
        }

        try
        {
            output.WriteLine("[daemon] " + line);
        }
        catch (InvalidOperationException)
        {
        }
    }

    /// <summary>SIGKILL: no shutdown code runs.</summary>
    public void Kill()
    {
        process!.Kill(entireProcessTree: true);
        process.WaitForExit();
    }

    public async Task<string> RunIdAsync() =>
        (await Client.GetFromJsonAsync<JsonObject>("/readyz"))!["run"]!.GetValue<string>();

    private async Task WaitReadyAsync()
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(120);
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                using var response = await Client.GetAsync("/readyz");
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }

            if (process is { HasExited: true })
            {
                throw new InvalidOperationException($"the daemon exited with {process.ExitCode}");
            }

            await Task.Delay(250);
        }

        throw new TimeoutException("the daemon did not become ready in 120 s");
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private bool disposed;

    /// <summary>Cancels every task not yet finished, so that a failed test leaves no Jobs behind.</summary>
    public async Task CancelUnfinishedAsync()
    {
        try
        {
            var list = await Client.GetFromJsonAsync<JsonObject>("/ga4gh/tes/v1/tasks?page_size=2000");
            foreach (var task in list!["tasks"]!.AsArray())
            {
                if (task!["state"]!.GetValue<string>() is not ("COMPLETE" or "EXECUTOR_ERROR" or "SYSTEM_ERROR" or "CANCELED"))
                {
                    using var _ = await Client.PostAsync($"/ga4gh/tes/v1/tasks/{task["id"]}:cancel", null);
                }
            }
        }
        catch (HttpRequestException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (disposed)
        {
            return;
        }

        disposed = true;
        if (app is not null || process is { HasExited: false })
        {
            await CancelUnfinishedAsync();
        }

        Client.Dispose();
        if (app is not null)
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }

        if (process is not null)
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync();
            }

            process.Dispose();
        }
    }
}
