using System.ComponentModel;
using System.Diagnostics;
using k8s;
using Microsoft.Extensions.Logging;

namespace HybridBatch.Daemon.Hosting;

/// <summary>
/// Finds the cluster the way kubectl does (the <c>--kubeconfig</c> flag, <c>KUBECONFIG</c>, <c>~/.kube/config</c>,
/// the in-cluster service account) and, when there is none, starts the embedded local cluster with the
/// <c>cluster/local-cluster</c> script shipped beside the executable (or, run from a checkout, the checkout's).
/// </summary>
internal static class ClusterConnection
{
    /// <summary>
    /// The environment variable that names a <c>local-cluster</c> script to run instead of the shipped one (tests use a
    /// stand-in).
    /// </summary>
    public const string ScriptVariable = "HYBRIDBATCH_LOCAL_CLUSTER_SCRIPT";

    private const string WayOut = "use another cluster: give its kubeconfig with --kubeconfig PATH or the KUBECONFIG variable";

    /// <summary>
    /// The options with <see cref="KubernetesBatchSystemOptions.Kubeconfig"/> set to the embedded local cluster's when no
    /// other kubeconfig can be found; the same options otherwise. The local cluster's progress lines are logged.
    /// </summary>
    /// <exception cref="InvalidOperationException">No kubeconfig, and the local cluster cannot be started; the message says why and how to give one.</exception>
    public static Task<KubernetesBatchSystemOptions> ResolveAsync(KubernetesBatchSystemOptions options, ILogger logger, CancellationToken cancellationToken) =>
        ResolveAsync(options, logger, progress: null, cancellationToken);

    /// <summary>
    /// The options with <see cref="KubernetesBatchSystemOptions.Kubeconfig"/> set to the embedded local cluster's when no
    /// other kubeconfig can be found; the same options otherwise.
    /// </summary>
    /// <param name="options">The batch system's options.</param>
    /// <param name="logger">Where to say which cluster is used.</param>
    /// <param name="progress">
    /// Receives each progress line of the local cluster's script as it is printed (a cold start builds Kubernetes for
    /// about 10 minutes); when null, the lines are logged.
    /// </param>
    /// <param name="cancellationToken">Stops starting the local cluster.</param>
    /// <returns>The options, with the cluster chosen.</returns>
    /// <exception cref="InvalidOperationException">No kubeconfig, and the local cluster cannot be started; the message says why and how to give one.</exception>
    public static async Task<KubernetesBatchSystemOptions> ResolveAsync(
        KubernetesBatchSystemOptions options, ILogger logger, Action<string>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(logger);
        if (options.Kubeconfig is not null)
        {
            logger.LogInformation("Using the kubeconfig {Kubeconfig} given in the options", options.Kubeconfig);
            return options;
        }

        var fromEnvironment = Environment.GetEnvironmentVariable("KUBECONFIG");
        if (!string.IsNullOrEmpty(fromEnvironment) && fromEnvironment.Split(Path.PathSeparator).Any(File.Exists))
        {
            logger.LogInformation("Using the kubeconfig {Kubeconfig} from KUBECONFIG", fromEnvironment);
            return options;
        }

        var home = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".kube", "config");
        if (File.Exists(home))
        {
            logger.LogInformation("Using the kubeconfig {Kubeconfig}", home);
            return options;
        }

        if (KubernetesClientConfiguration.IsInCluster())
        {
            logger.LogInformation("Using the in-cluster service account");
            return options;
        }

        var script = FindLocalClusterScript() ?? throw new InvalidOperationException(
            "No Kubernetes cluster is configured: give a kubeconfig with --kubeconfig PATH or the KUBECONFIG variable, put it in " +
            "~/.kube/config, or run inside a cluster. The embedded local cluster's scripts are missing: they belong in " +
            $"{Path.Combine(AppContext.BaseDirectory, "cluster")} (reinstall the tool) or in a HybridBatch checkout.");
        logger.LogWarning("No kubeconfig found (--kubeconfig, KUBECONFIG, ~/.kube/config, in-cluster): starting the embedded local cluster with {Script} up", script);
        var path = await StartLocalClusterAsync(script, progress ?? (line => logger.LogInformation("{Line}", line)), cancellationToken)
            .ConfigureAwait(false);
        logger.LogWarning("Using the embedded local cluster through {Kubeconfig}", path);
        return options with { Kubeconfig = path };
    }

    /// <summary>
    /// The <c>local-cluster</c> script to start the embedded cluster with: the one named by
    /// <see cref="ScriptVariable"/>, else the one shipped beside the executable (an installed tool), else the one of the
    /// checkout this executable or the current directory belongs to; null when there is none.
    /// </summary>
    /// <returns>The script's path, or null.</returns>
    public static string? FindLocalClusterScript()
    {
        if (Environment.GetEnvironmentVariable(ScriptVariable) is { Length: > 0 } named)
        {
            return Path.GetFullPath(named);
        }

        var shipped = Path.Combine(AppContext.BaseDirectory, "cluster", "local-cluster");
        if (File.Exists(shipped))
        {
            return shipped;
        }

        return FindRepositoryRoot() is { } root ? Path.Combine(root, "cluster", "local-cluster") : null;
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

    /// <summary>
    /// Runs <c>SCRIPT up</c> (a no-op when the cluster runs; a first start builds Kubernetes) and then
    /// <c>SCRIPT kubeconfig</c>, passing on each progress line the script prints as soon as it is printed.
    /// </summary>
    /// <param name="script">The <c>local-cluster</c> script; run with bash, so it needs no executable bit.</param>
    /// <param name="progress">Receives each progress line.</param>
    /// <param name="cancellationToken">Stops the script (and whatever it started that has not detached).</param>
    /// <returns>The path of the cluster's least-privileged kubeconfig.</returns>
    /// <exception cref="InvalidOperationException">The script failed; the message carries its error and the way out.</exception>
    public static async Task<string> StartLocalClusterAsync(string script, Action<string> progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(progress);
        await RunAsync(script, "up", progress, cancellationToken).ConfigureAwait(false);
        var path = (await RunAsync(script, "kubeconfig", progress, cancellationToken).ConfigureAwait(false)).Trim();
        return File.Exists(path)
            ? path
            : throw new InvalidOperationException(
                $"The embedded local cluster gave no kubeconfig: '{script} kubeconfig' printed '{path}', which is not a file. " +
                $"Run 'bash {script} up' to see why, or {WayOut}.");
    }

    // The cluster's daemons outlive this call: they must not inherit descriptors this process got from its parent (a
    // `flock FILE hybridbatch …` lock would be held by the kubelet for ever), so bash closes them first. The script is
    // run by bash, not exec'd: NuGet does not keep the executable bit when it extracts the tool.
    private const string CloseInheritedDescriptorsThenRun =
        "for fd in /proc/$$/fd/*; do fd=${fd##*/}; if [ \"$fd\" -gt 2 ] 2>/dev/null; then eval \"exec $fd>&-\" 2>/dev/null; fi; done; exec /bin/bash \"$0\" \"$@\"";

    private static async Task<string> RunAsync(string script, string argument, Action<string> progress, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo("/bin/bash")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(CloseInheritedDescriptorsThenRun);
        start.ArgumentList.Add(script);
        start.ArgumentList.Add(argument);
        Process process;
        try
        {
            process = Process.Start(start) ?? throw new InvalidOperationException($"Cannot start /bin/bash {script}; {WayOut}.");
        }
        catch (Win32Exception ex)
        {
            throw new InvalidOperationException($"Cannot start /bin/bash {script} ({ex.Message}); {WayOut}.", ex);
        }

        using (process)
        {
            var output = process.StandardOutput.ReadToEndAsync(cancellationToken);
            var lines = new List<string>();
            var errors = PassOnLinesAsync(process.StandardError, lines, progress, cancellationToken);
            try
            {
                await process.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
                await errors.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                throw;
            }

            if (process.ExitCode != 0)
            {
                // The script's own error line (`[ 12s] error: needs root …`) says what failed; the lines were shown already.
                var reason = (lines.LastOrDefault(l => l.Contains("error: ", StringComparison.Ordinal)) is { } error
                    ? error[(error.IndexOf("error: ", StringComparison.Ordinal) + "error: ".Length)..]
                    : lines.LastOrDefault(l => l.Trim().Length > 0) ?? "it printed no reason").Trim().TrimEnd('.');
                // The script names the way out itself for some failures (an unwritable cache); say it once.
                var wayOut = reason.Contains("kubeconfig", StringComparison.OrdinalIgnoreCase) ? "" : $" Fix that and run again, or {WayOut}.";
                throw new InvalidOperationException(
                    $"The embedded local cluster cannot be used: {reason}.{wayOut} ('{script} {argument}' exited with {process.ExitCode}.)");
            }

            return await output.ConfigureAwait(false);
        }
    }

    private static async Task PassOnLinesAsync(StreamReader reader, List<string> lines, Action<string> progress, CancellationToken cancellationToken)
    {
        while (await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false) is { } line)
        {
            lines.Add(line);
            progress(line);
        }
    }
}
