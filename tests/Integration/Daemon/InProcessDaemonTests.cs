using HybridBatch.Integration.Cluster;
using Xunit.Abstractions;

namespace HybridBatch.Integration.Daemon;

/// <summary>A test class whose tests talk to one daemon of its own, started in this process on a data directory of its own.</summary>
public abstract class InProcessDaemonTests(LocalClusterFixture cluster, ITestOutputHelper output, string name) : IAsyncLifetime
{
    private Daemon? daemon;

    protected LocalClusterFixture Cluster { get; } = cluster;

    protected ITestOutputHelper Output { get; } = output;

    protected string DataDirectory { get; } = Directory.CreateTempSubdirectory($"hybridbatch-{name}-").FullName;

    protected HttpClient Client => daemon!.Client;

    protected Task<string> RunIdAsync() => daemon!.RunIdAsync();

    public async Task InitializeAsync() => daemon = await Daemon.StartAsync(Cluster, DataDirectory, Output);

    public async Task DisposeAsync()
    {
        if (daemon is not null)
        {
            await daemon.DisposeAsync();
        }

        // The batch system's node cleanup (a pod that mounts the work directory, creating it if missing) may still be
        // running when the test ends; the directory is deleted once it has gone.
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                Directory.Delete(DataDirectory, recursive: true);
                return;
            }
            catch (IOException) when (attempt < 10)
            {
                await Task.Delay(TimeSpan.FromSeconds(1));
            }
        }
    }
}
