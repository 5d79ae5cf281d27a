using System.Collections;
using System.CommandLine;
using HybridBatch.Daemon.Hosting;
using HybridBatch.Daemon.Jobs;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;

namespace HybridBatch.Daemon.Tes;

/// <summary>What <c>serve</c> runs with, bound from its flags over the environment over <c>appsettings.json</c>.</summary>
/// <param name="Urls">Where the service listens.</param>
/// <param name="Tes">The TES service's options.</param>
/// <param name="BatchSystem">The batch system's options.</param>
/// <param name="Configuration">The files and variables they were read from, where the host finds its own sections (Logging, Kestrel).</param>
internal sealed record ServeSettings(string Urls, TesOptions Tes, KubernetesBatchSystemOptions BatchSystem, IConfiguration Configuration);

/// <summary><c>hybridbatch serve</c>: the long-running TES service.</summary>
internal static class ServeCommand
{
    /// <summary>Where the service listens unless <c>--urls</c> says otherwise.</summary>
    public const string DefaultUrls = "http://127.0.0.1:8000";

    private const string Description =
        "Serve the GA4GH TES 1.1 API at /ga4gh/tes/v1, with /healthz, /readyz and /metrics. Tasks are kept in a SQLite database under " +
        "the data directory and survive restarts. " + BatchSystemFlags.Precedence + " The TES settings are the Tes section's (Tes:Token).";

    private const string UrlsFlag = "--urls";
    private const string DataDirectoryFlag = "--data-dir";
    private const string TokenFlag = "--token";

    /// <summary>The <c>serve</c> command.</summary>
    public static Command Create()
    {
        var command = new Command("serve", Description)
        {
            new Option<string>(UrlsFlag)
            {
                Description = $"Where to listen, URLs separated by ';'. Default: {DefaultUrls}. Variable: HYBRIDBATCH_URLS.",
                HelpName = "urls",
            },
            new Option<string>(DataDirectoryFlag)
            {
                Description = "Directory for the task database and, unless --kubernetesHostPath is given, the tasks' work directories. " +
                    $"Default: {new TesOptions().DataDirectory}. Variable: HYBRIDBATCH_TES__DATADIRECTORY.",
                HelpName = "path",
            },
            new Option<string>(TokenFlag)
            {
                Description = "Require 'Authorization: Bearer TOKEN' on the TES API. Default: none, no authentication. Variable: HYBRIDBATCH_TES__TOKEN.",
                HelpName = "token",
            },
        };
        BatchSystemFlags.AddTo(command);
        command.SetAction(async (parse, cancellationToken) =>
        {
            ServeSettings settings;
            try
            {
                settings = Bind(parse);
            }
            catch (Exception ex) when (ex is ArgumentException or InvalidDataException)
            {
                await parse.InvocationConfiguration.Error.WriteLineAsync($"error: {ex.Message}").ConfigureAwait(false);
                return RunCommand.UsageError;
            }

            // RunAsync disposes the application when it stops.
            var app = DaemonHost.Build(settings);
            await app.RunAsync(cancellationToken).ConfigureAwait(false);
            return RunCommand.Success;
        });
        return command;
    }

    /// <summary>The settings of a parsed <c>serve</c> command line, over the environment and <c>appsettings.json</c>.</summary>
    /// <exception cref="ArgumentException">A variable or a setting in a file has a bad value; the message names it.</exception>
    /// <exception cref="InvalidDataException">An <c>appsettings.json</c> cannot be read.</exception>
    public static ServeSettings Bind(ParseResult parse) =>
        Bind(parse, DaemonConfiguration.Build(), Environment.GetEnvironmentVariables());

    /// <summary>The settings of a parsed <c>serve</c> command line, over the given environment and configuration.</summary>
    /// <exception cref="ArgumentException">A variable or a setting has a bad value; the message names it.</exception>
    public static ServeSettings Bind(ParseResult parse, IConfiguration configuration, IDictionary environment)
    {
        TesOptions tes;
        try
        {
            tes = configuration.GetSection(TesOptions.SectionName).Get<TesOptions>() ?? new TesOptions();
        }
        catch (InvalidOperationException ex)
        {
            throw new ArgumentException($"{ex.Message} Fix the setting it came from.", ex);
        }

        tes = tes with
        {
            DataDirectory = parse.GetValue<string>(DataDirectoryFlag) ?? tes.DataDirectory,
            Token = parse.GetValue<string>(TokenFlag) ?? tes.Token,
        };
        var urls = parse.GetValue<string>(UrlsFlag) ?? configuration["urls"] ?? DefaultUrls;
        return new ServeSettings(urls, tes, BatchSystemFlags.Bind(parse, configuration, environment), configuration);
    }
}
