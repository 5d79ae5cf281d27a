using System.CommandLine;
using HybridBatch.Daemon.Jobs;
using HybridBatch.Daemon.Tes;

var root = new RootCommand("HybridBatch: run batch jobs on Kubernetes from a jobs file (run), or serve the GA4GH TES 1.1 API (serve).")
{
    RunCommand.Create(),
    ExampleCommand.Create(),
    ServeCommand.Create(),
};
return await root.Parse(args).InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = TimeSpan.FromSeconds(90) });
