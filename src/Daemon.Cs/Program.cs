using HybridBatch.Daemon.Hosting;

return await DaemonCommand.InvokeAsync(args);
