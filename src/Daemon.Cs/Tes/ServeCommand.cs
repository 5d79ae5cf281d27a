using System.CommandLine;
using HybridBatch.Daemon.Hosting;

namespace HybridBatch.Daemon.Tes;

/// <summary><c>hybridbatch serve</c>: the long-running TES service.</summary>
internal static class ServeCommand
{
    /// <summary>Where the service listens unless <c>--urls</c> says otherwise.</summary>
    public const string DefaultUrls = "http://127.0.0.1:8000";

    /// <summary>The <c>serve</c> command.</summary>
    /// <returns>The command.</returns>
    public static Command Create()
    {
        var command = new Command(
            "serve",
            "Serve the GA4GH TES 1.1 API at /ga4gh/tes/v1, with /healthz, /readyz and /metrics. Tasks are kept in a SQLite database " +
            "under the data directory and survive restarts.")
        {
            new Option<string>("--urls") { Description = $"Where to listen (default {DefaultUrls}).", HelpName = "urls" },
            new Option<string>("--data-dir") { Description = "Directory for the task database and, unless --kubernetesHostPath is given, the tasks' work directories (Tes:DataDirectory).", HelpName = "path" },
            new Option<string>("--token") { Description = "Require 'Authorization: Bearer TOKEN' on the TES API (Tes:Token, HYBRIDBATCH_TES__TOKEN).", HelpName = "token" },
        };
        CommonOptions.AddTo(command);
        command.SetAction(async (parse, cancellationToken) =>
        {
            var app = DaemonHost.Build([.. parse.Tokens.Select(t => t.Value)]);
            await app.RunAsync(cancellationToken).ConfigureAwait(false);
            return 0;
        });
        return command;
    }
}
