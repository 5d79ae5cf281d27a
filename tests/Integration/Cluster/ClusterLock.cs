namespace HybridBatch.Integration.Cluster;

/// <summary>
/// The machine's cluster lock, <c>/tmp/hybridbatch-cluster.lock</c>, the one <c>bench/run</c> holds with flock(1) while
/// its scenarios run. The fault tests hold it alone (exclusively) while they kill and restart the cluster's components;
/// a test run's fixture holds it shared while it brings the cluster up. So a second test run on the machine waits
/// instead of bringing back a component a fault test just killed: that happened once, when another run's fixture
/// restarted the kubelet 10 s after the node-loss test killed it, and the node was never lost.
/// </summary>
/// <remarks>
/// .NET locks a file with flock(2) on Linux, as flock(1) does: <see cref="FileShare.None"/> exclusively, any other share
/// shared, never waiting; so taking it polls. The descriptor is opened close-on-exec: nothing the tests start keeps it.
/// </remarks>
internal sealed class ClusterLock : IDisposable
{
    private const string LockPath = "/tmp/hybridbatch-cluster.lock";

    // The fault tests hold it in this process: the process's own fixtures and scripts run under that hold.
    private static int heldExclusively;

    private readonly FileStream? _file;
    private readonly bool _exclusive;

    private ClusterLock(FileStream? file, bool exclusive)
    {
        _file = file;
        _exclusive = exclusive;
    }

    /// <summary>Takes the lock, waiting for whoever holds it in a way that conflicts.</summary>
    /// <param name="exclusive">Alone (the fault tests), or beside other shared holders (bringing the cluster up).</param>
    /// <param name="timeout">How long to wait at most.</param>
    /// <param name="log">Where to say that it waits, and for how long it did.</param>
    /// <returns>The lock, to dispose of when done.</returns>
    /// <exception cref="TimeoutException">Someone held it the whole time.</exception>
    public static async Task<ClusterLock> TakeAsync(bool exclusive, TimeSpan timeout, Action<string> log)
    {
        if (Volatile.Read(ref heldExclusively) > 0)
        {
            return new ClusterLock(null, exclusive: false);
        }

        var waiting = System.Diagnostics.Stopwatch.StartNew();
        var said = false;
        while (true)
        {
            try
            {
                var file = new FileStream(LockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, exclusive ? FileShare.None : FileShare.ReadWrite);
                if (said)
                {
                    log($"took {LockPath} after {waiting.Elapsed.TotalSeconds:F0} s");
                }

                if (exclusive)
                {
                    Interlocked.Increment(ref heldExclusively);
                }

                return new ClusterLock(file, exclusive);
            }
            catch (IOException) when (waiting.Elapsed < timeout)
            {
                if (!said)
                {
                    log($"waiting for {LockPath}: another run on this machine (a benchmark, or tests disrupting the cluster) holds it");
                    said = true;
                }

                await Task.Delay(TimeSpan.FromSeconds(1));
            }
            catch (IOException e)
            {
                throw new TimeoutException($"{LockPath} stayed held for {timeout.TotalMinutes:F0} min by another run on this machine.", e);
            }
        }
    }

    /// <summary>Releases the lock.</summary>
    public void Dispose()
    {
        if (_file is null)
        {
            return;
        }

        if (_exclusive)
        {
            Interlocked.Decrement(ref heldExclusively);
        }

        _file.Dispose();
    }
}
