using System.Diagnostics;
using System.Text;
using k8s;
using k8s.Models;

namespace HybridBatch.Integration.Cluster;

/// <summary>
/// The local cluster's administrator: its kubeconfig, its state directory and its control script. Only tests that set
/// the cluster up for a check (an identity without a role, a fake node) or disrupt it (kill a component) use it; the
/// product itself never runs as admin.
/// </summary>
internal static class Admin
{
    /// <summary>The cluster's state directory (<c>HYBRIDBATCH_CLUSTER_HOME</c>, else the script's default).</summary>
    public static string StateDirectory { get; } =
        Environment.GetEnvironmentVariable("HYBRIDBATCH_CLUSTER_HOME") is { Length: > 0 } home ? home : "/var/lib/hybridbatch-cluster";

    /// <summary>The admin kubeconfig (<c>HYBRIDBATCH_ADMIN_KUBECONFIG</c>, else the local cluster's).</summary>
    public static string KubeconfigPath { get; } =
        Environment.GetEnvironmentVariable("HYBRIDBATCH_ADMIN_KUBECONFIG") is { Length: > 0 } path
            ? path
            : Path.Combine(StateDirectory, "kubeconfig", "admin.kubeconfig");

    /// <summary>Whether the admin kubeconfig exists (the local cluster, or one given by environment).</summary>
    public static bool Available => File.Exists(KubeconfigPath);

    /// <summary>A client authenticated as the cluster's administrator.</summary>
    public static Kubernetes Client() => new(KubernetesClientConfiguration.BuildConfigFromConfigFile(KubeconfigPath));

    /// <summary>The repository's <c>cluster/local-cluster</c> script.</summary>
    public static string Script
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                var script = Path.Combine(dir.FullName, "cluster", "local-cluster");
                if (File.Exists(script))
                {
                    return script;
                }
            }

            throw new InvalidOperationException($"No cluster/local-cluster above {AppContext.BaseDirectory}.");
        }
    }

    /// <summary>Creates a service account with no role at all and returns its token (1.20 mints it as a secret).</summary>
    public static async Task<string> ServiceAccountTokenAsync(Kubernetes admin, string @namespace, string name)
    {
        await admin.CoreV1.CreateNamespacedServiceAccountAsync(new V1ServiceAccount { Metadata = new V1ObjectMeta { Name = name } }, @namespace);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            var account = await admin.CoreV1.ReadNamespacedServiceAccountAsync(name, @namespace);
            if (account.Secrets is { Count: > 0 } secrets)
            {
                var secret = await admin.CoreV1.ReadNamespacedSecretAsync(secrets[0].Name, @namespace);
                if (secret.Data?.TryGetValue("token", out var token) == true)
                {
                    return Encoding.UTF8.GetString(token);
                }
            }

            await Task.Delay(250);
        }

        throw new TimeoutException($"service account {@namespace}/{name} got no token secret within 60 s");
    }

    /// <summary>Runs the cluster script (e.g. <c>up</c>, <c>status</c>); returns its exit code and output.</summary>
    /// <remarks>
    /// The script runs with only stdin, stdout and stderr: a test run under <c>flock</c> has the lock's descriptor
    /// open, and a daemon the script starts must not inherit it, or the lock stays held for as long as that daemon runs.
    /// </remarks>
    public static async Task<(int ExitCode, string Output)> RunScriptAsync(string arguments, TimeSpan timeout) =>
        await RunAsync(
            "bash",
            ["-c", """for fd in /proc/$$/fd/*; do fd=${fd##*/}; if [ "$fd" -gt 2 ]; then eval "exec $fd>&-"; fi; done 2>/dev/null; exec "$0" "$@" """, Script, .. arguments.Split(' ', StringSplitOptions.RemoveEmptyEntries)],
            timeout);

    /// <summary>Runs a program; returns its exit code and its standard output and error, interleaved.</summary>
    public static Task<(int ExitCode, string Output)> RunAsync(string program, string arguments, TimeSpan timeout) =>
        RunAsync(program, arguments.Split(' ', StringSplitOptions.RemoveEmptyEntries), timeout);

    /// <summary>Runs a program with an argument vector (and extra environment variables); returns its exit code and its standard output and error, interleaved.</summary>
    public static async Task<(int ExitCode, string Output)> RunAsync(
        string program, IEnumerable<string> arguments, TimeSpan timeout, IReadOnlyDictionary<string, string>? environment = null, string? workingDirectory = null)
    {
        var start = new ProcessStartInfo(program, arguments)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? "",
        };
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[name] = value;
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"Cannot start {program}.");
        var text = new StringBuilder();
        process.OutputDataReceived += (_, e) =>
        {
            lock (text)
            {
                text.AppendLine(e.Data);
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            lock (text)
            {
                text.AppendLine(e.Data);
            }
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var cancel = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cancel.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{program} {arguments} did not finish within {timeout}.");
        }

        lock (text)
        {
            return (process.ExitCode, text.ToString());
        }
    }
}
