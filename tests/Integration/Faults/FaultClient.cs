using System.Globalization;

namespace HybridBatch.Integration.Faults;

/// <summary>
/// The test assembly's entry point. vstest loads the assembly as a library and never calls it; run as
/// <c>dotnet HybridBatch.Integration.dll fault-client …</c> it is the workflow leader that the client-crash test kills
/// with SIGKILL: it issues jobs under a fixed run id, reports a few, says "ready" and waits to be killed.
/// </summary>
internal static class FaultClient
{
    /// <summary>fault-client KUBECONFIG NAMESPACE RUN_ID SHORT_JOBS LONG_JOBS LONG_SECONDS COLLECT</summary>
    public static async Task<int> Main(string[] args)
    {
        if (args.Length != 8 || args[0] != "fault-client")
        {
            await Console.Error.WriteLineAsync("usage: fault-client KUBECONFIG NAMESPACE RUN_ID SHORT_JOBS LONG_JOBS LONG_SECONDS COLLECT");
            return 2;
        }

        var number = (int i) => int.Parse(args[i], CultureInfo.InvariantCulture);
        var options = new KubernetesBatchSystemOptions
        {
            Kubeconfig = args[1],
            Namespace = args[2],
            RunId = args[3],
            MaxCores = 1000,
            MaxMemory = long.MaxValue / 8,
            MaxDisk = long.MaxValue / 8,
            ResourceOverhead = 16L * 1024 * 1024,
        };
        var system = await KubernetesBatchSystem.CreateAsync(options);
        var job = new JobDescription("client", 0.001, 4 * 1024 * 1024, 1000);
        for (var i = 0; i < number(5); i++)
        {
            var code = i % 2;
            var id = await system.IssueBatchJobAsync($"sleep {number(6)}; exit {code}", job with { Name = "long" });
            Console.WriteLine($"issued {id} {code} long");
        }

        for (var i = 0; i < number(4); i++)
        {
            var code = i % 4;
            var id = await system.IssueBatchJobAsync($"exit {code}", job with { Name = "short" });
            Console.WriteLine($"issued {id} {code} short");
        }

        for (var i = 0; i < number(7); i++)
        {
            if (await system.GetUpdatedBatchJobAsync(TimeSpan.FromSeconds(120)) is { } info)
            {
                Console.WriteLine($"reported {info.JobId} {info.ExitStatus} {info.ExitReason}");
            }
        }

        Console.WriteLine("ready");
        await Task.Delay(Timeout.Infinite);
        return 0;
    }
}
