using Microsoft.Extensions.Configuration;

namespace HybridBatch.Daemon.Hosting;

/// <summary>
/// Where <c>run</c> and <c>serve</c> read what the command line does not give, in increasing precedence:
/// <c>appsettings.json</c> beside the executable, <c>appsettings.json</c> in the current directory, then the
/// environment (the batch system's variables, see <see cref="KubernetesBatchSystemConfiguration.Settings"/>, and
/// <c>HYBRIDBATCH_</c> before a key with <c>__</c> between its sections, such as <c>HYBRIDBATCH_TES__TOKEN</c>).
/// </summary>
internal static class DaemonConfiguration
{
    /// <summary>The files and <c>HYBRIDBATCH_*</c> variables, for a configuration being built.</summary>
    public static IConfigurationBuilder AddDaemonSources(this IConfigurationBuilder builder) =>
        builder
            .AddJsonFile(Path.Combine(AppContext.BaseDirectory, "appsettings.json"), optional: true)
            .AddJsonFile(Path.Combine(Environment.CurrentDirectory, "appsettings.json"), optional: true)
            .AddEnvironmentVariables("HYBRIDBATCH_");

    /// <summary>The files and <c>HYBRIDBATCH_*</c> variables.</summary>
    public static IConfigurationRoot Build() => new ConfigurationBuilder().AddDaemonSources().Build();
}
