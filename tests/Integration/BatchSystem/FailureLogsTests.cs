using HybridBatch.Runtime;

namespace HybridBatch.Integration.BatchSystem;

/// <summary>The failed jobs' logs the batch system keeps, without a cluster: the most recent ones only.</summary>
public sealed class FailureLogsTests
{
    [Fact]
    public void When_more_logs_come_than_are_kept_the_oldest_goes()
    {
        var logs = new FailureLogs(capacity: 2);
        logs.Add("job-1", "one");
        logs.Add("job-2", "two");
        logs.Add("job-3", "three");

        Assert.Null(logs.Get("job-1"));
        Assert.Equal("two", logs.Get("job-2"));
        Assert.Equal("three", logs.Get("job-3"));
    }

    [Fact]
    public void A_log_kept_again_replaces_the_first_and_keeps_its_place()
    {
        var logs = new FailureLogs(capacity: 2);
        logs.Add("job-1", "first");
        logs.Add("job-2", "two");
        logs.Add("job-1", "again");
        logs.Add("job-3", "three");

        Assert.Null(logs.Get("job-1"));
        Assert.Equal("two", logs.Get("job-2"));
        Assert.Equal("three", logs.Get("job-3"));
    }

    [Fact]
    public void By_default_the_last_1024_logs_are_kept()
    {
        var logs = new FailureLogs();
        for (var i = 0; i <= FailureLogs.DefaultCapacity; i++)
        {
            logs.Add($"job-{i}", $"log {i}");
        }

        Assert.Null(logs.Get("job-0"));
        Assert.Equal("log 1", logs.Get("job-1"));
        Assert.Equal($"log {FailureLogs.DefaultCapacity}", logs.Get($"job-{FailureLogs.DefaultCapacity}"));
    }
}
