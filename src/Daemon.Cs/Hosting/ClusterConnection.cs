using System.Diagnostics;
using k8s;
using Microsoft.Extensions.Logging;

namespace HybridBatch.Daemon.Hosting;

/// <summary>
/// Finds the cluster the way kubectl does (the <c>--kubeconfig</c> flag, <c>KUBECONFIG</c>, <c>~/.kube/config</c>,
/// the in-cluster service account) and, when there is none, starts the repository's embedded local cluster.
/// </summary>
public static class ClusterConnection
{
    /// <summary>
    /// Fills in <see cref="KubernetesBatchSystemOptions.Kubeconfig"/> from the embedded local cluster when no other
    /// kubeconfig can be found; leaves the options alone otherwise.
    /// </summary>
    /// <param name="options">The batch system's options.</param>
    /// <param name="logger">Where to say which cluster is used.</param>
    /// <param name="cancellationToken">Stops starting the local cluster.</param>
    /// <returns>A task that completes when a cluster is chosen.</returns>
    /// <exception cref="InvalidOperationException">No kubeconfig and no embedded cluster; the message says how to give one.</exception>
    public static async Task ResolveAsync(KubernetesBatchSystemOptions options, ILogger logger, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(logger);
        if (options.Kubeconfig is not null)
        {
            logger.LogInformation("Using the kubeconfig {Kubeconfig} given in the options", options.Kubeconfig);
            return;
        }

        var fromEnvironment = Environment.GetEnvironmentVariable("KUBECONFIG");
        if (!string.IsNullOrEmpty(fromEnvironment) && fromEnvironment.Split(Path.PathSeparator).Any(File.Exists))
        {
            logger.LogInformation("Using the kubeconfig {Kubeconfig} from KUBECONFIG", fromEnvironment);
            return;
        }

        var home = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".kube", "config");
        if (File.Exists(home))
        {
            logger.LogInformation("Using the kubeconfig {Kubeconfig}", home);
            return;
        }

        if (KubernetesClientConfiguration.IsInCluster())
        {
            logger.LogInformation("Using the in-cluster service account");
            return;
        }

        var root = FindRepositoryRoot() ?? throw new InvalidOperationException(
            "No Kubernetes cluster is configured: give one with --kubeconfig PATH or the KUBECONFIG variable, put it in ~/.kube/config, " +
            "or run inside a cluster. The embedded local cluster is only available from a HybridBatch checkout (no HybridBatch.sln was found above "
            + $"{AppContext.BaseDirectory} or {Environment.CurrentDirectory}).");
        var script = Path.Combine(root, "cluster", "local-cluster");
        logger.LogWarning("No kubeconfig found (--kubeconfig, KUBECONFIG, ~/.kube/config, in-cluster): starting the embedded local cluster with {Script} up", script);
        await RunAsync(script, "up", cancellationToken).ConfigureAwait(false);
        var path = (await RunAsync(script, "kubeconfig", cancellationToken).ConfigureAwait(false)).Trim();
        if (!File.Exists(path))
        {
            throw new InvalidOperationException($"'{script} kubeconfig' printed '{path}', which is not a file: run '{script} up' by hand to see why.");
        }

        logger.LogWarning("Using the embedded local cluster through {Kubeconfig}", path);
        options.Kubeconfig = path;
    }

    /// <summary>The checkout this executable or the current directory belongs to, found by HybridBatch.sln; null when none.</summary>
    /// <returns>The repository root, or null.</returns>
    public static string? FindRepositoryRoot()
    {
        foreach (var start in new[] { AppContext.BaseDirectory, Environment.CurrentDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "HybridBatch.sln")))
                {
                    return dir.FullName;
                }
            }
        }

        return null;
    }

    private const string CloseInheritedDescriptors =
        "for fd in /proc/$$/fd/*; do fd=${fd##*/}; if [ \"$fd\" -gt 2 ] 2>/dev/null; then eval \"exec $fd>&-\" 2>/dev/null; fi; done; exec \"$0\" \"$@\"";

    private static async Task<string> RunAsync(string script, string argument, CancellationToken cancellationToken)
    {
        // The cluster's daemons outlive this call: they must not inherit descriptors this process got from its parent
        // (a `flock FILE hybridbatch …` lock would be held by the kubelet for ever), so bash closes them first.
        var start = new ProcessStartInfo("/bin/bash")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(CloseInheritedDescriptors);
        start.ArgumentList.Add(script);
        start.ArgumentList.Add(argument);
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"Cannot start {script}.");
        var output = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var errors = process.StandardError.ReadToEndAsync(cancellationToken);
        try
        {
            await process.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        if (process.ExitCode != 0)
        {
            var tail = string.Join(Environment.NewLine, (await errors.ConfigureAwait(false)).Split('\n').TakeLast(20));
            throw new InvalidOperationException(
                $"'{script} {argument}' exited with {process.ExitCode}; give a kubeconfig with --kubeconfig or KUBECONFIG instead, or fix the local cluster:{Environment.NewLine}{tail}");
        }

        return await output.ConfigureAwait(false);
    }
}
