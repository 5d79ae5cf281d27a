using HybridBatch.Integration.Cluster;
using Xunit.Abstractions;

namespace HybridBatch.Integration.BatchSystem;

/// <summary>A failed job's result and the end of its log: the log is read before the result is handed out.</summary>
public sealed class FailureLogTests(LocalClusterFixture cluster, ITestOutputHelper output) : IClassFixture<LocalClusterFixture>
{
    [Fact]
    public async Task A_result_collected_while_its_log_is_read_waits_for_the_log_and_then_comes_back_with_it()
    {
        var held = new HeldLogHandler();
        var system = await KubernetesBatchSystem.CreateAsync(
            Batch.Options(cluster), Batch.Logging(output), TimeProvider.System, observer: null, innerHandlers: [held]);
        try
        {
            var id = await system.IssueBatchJobAsync("echo about to fail; exit 3", TestJobs.Job("fails"));

            // The job has ended in the batch system once its log is asked for; the answer is held back.
            await held.Asked.WaitAsync(TimeSpan.FromMinutes(3));

            // The ended job is there to collect, but not before its log was read: the call waits.
            var collecting = system.GetUpdatedBatchJobAsync(TimeSpan.FromMinutes(3));
            Assert.False(collecting.IsCompleted, "the result was handed out before its log was read");

            held.Release();
            var info = await collecting.WaitAsync(TimeSpan.FromMinutes(2));
            Assert.NotNull(info);
            Assert.Equal((id, 3, BatchJobExitReason.Failed), (info.JobId, info.ExitStatus, info.ExitReason));
            Assert.Contains("about to fail", system.GetFailureLog(info.BackingId!) ?? "", StringComparison.Ordinal);
        }
        finally
        {
            held.Release();
            await system.ShutdownAsync();
            await system.DisposeAsync();
        }
    }

    /// <summary>Holds the first pod-log request until released, and says when it came.</summary>
    private sealed class HeldLogHandler : DelegatingHandler
    {
        private readonly TaskCompletionSource _asked = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _held;

        public Task Asked => _asked.Task;

        public void Release() => _released.TrySetResult();

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            if (request.RequestUri?.AbsolutePath.EndsWith("/log", StringComparison.Ordinal) == true
                && Interlocked.Exchange(ref _held, 1) == 0)
            {
                _asked.TrySetResult();
                await _released.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
            }

            return await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
        }
    }
}
