using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;

namespace HybridBatch.Integration.Faults;

/// <summary>
/// A plain TCP relay on a loopback port in front of the API server (TLS passes through untouched) that can cut every
/// connection at once, and refuse new ones for a while: watches cut mid-stream, and an API server that is away.
/// </summary>
internal sealed partial class TcpRelay : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly string _host;
    private readonly int _port;
    private readonly ConcurrentDictionary<int, (Socket Client, Socket Server)> _connections = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;
    private int _next;
    private int _cuts;
    private volatile bool _refusing;

    /// <summary>Relays 127.0.0.1:<see cref="Port"/> to <paramref name="target"/> (an https URL).</summary>
    public TcpRelay(Uri target)
    {
        _host = target.Host;
        _port = target.Port;
        _listener.Start();
        _accepting = Task.Run(AcceptAsync);
    }

    /// <summary>The loopback port clients connect to.</summary>
    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>Connections cut so far.</summary>
    public int Cuts => Volatile.Read(ref _cuts);

    /// <summary>Connections open now.</summary>
    public int Open => _connections.Count;

    /// <summary>A copy of <paramref name="kubeconfig"/> whose server is this relay (the API server's certificate names 127.0.0.1).</summary>
    public string WriteKubeconfig(string kubeconfig)
    {
        var path = Path.Combine(Path.GetTempPath(), $"hb-relay-{Port}-{Guid.NewGuid():N}.kubeconfig");
        File.WriteAllText(path, Server().Replace(File.ReadAllText(kubeconfig), $"server: https://127.0.0.1:{Port}"));
        return path;
    }

    [GeneratedRegex(@"server: \S+")]
    private static partial Regex Server();

    /// <summary>Resets every open connection (the client sees its requests and watches end abruptly).</summary>
    public int CutAll()
    {
        var cut = 0;
        foreach (var (key, pair) in _connections)
        {
            if (_connections.TryRemove(key, out _))
            {
                Reset(pair.Client);
                Reset(pair.Server);
                cut++;
            }
        }

        Interlocked.Add(ref _cuts, cut);
        return cut;
    }

    /// <summary>Cuts everything and resets every new connection until <see cref="Resume"/>.</summary>
    public int Pause()
    {
        _refusing = true;
        return CutAll();
    }

    /// <summary>Relays new connections again.</summary>
    public void Resume() => _refusing = false;

    private static void Reset(Socket socket)
    {
        try
        {
            socket.LingerState = new LingerOption(true, 0);
            socket.Close();
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
        }
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptSocketAsync(_stop.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            if (_refusing)
            {
                Reset(client);
                continue;
            }

            _ = Task.Run(() => RelayAsync(client));
        }
    }

    private async Task RelayAsync(Socket client)
    {
        var server = new Socket(SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await server.ConnectAsync(_host, _port, _stop.Token);
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException)
        {
            Reset(client);
            server.Dispose();
            return;
        }

        var key = Interlocked.Increment(ref _next);
        _connections[key] = (client, server);
        await Task.WhenAny(PumpAsync(client, server), PumpAsync(server, client));
        if (_connections.TryRemove(key, out _))
        {
            client.Close();
            server.Close();
        }
    }

    private static async Task PumpAsync(Socket from, Socket to)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                var read = await from.ReceiveAsync(buffer, SocketFlags.None);
                if (read == 0)
                {
                    to.Shutdown(SocketShutdown.Send);
                    return;
                }

                await to.SendAsync(buffer.AsMemory(0, read), SocketFlags.None);
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        CutAll();
        await _accepting;
        _stop.Dispose();
    }
}
