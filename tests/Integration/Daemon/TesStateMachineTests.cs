using System.Text.Json;
using HybridBatch.Daemon.Tes;

namespace HybridBatch.Integration.Daemon;

/// <summary>The TES lifecycle's transition function, as a table: every move there is, and nothing else.</summary>
public sealed class TesStateMachineTests
{
    // Every transition: state before (as TES names it), event, state after. Any other pair changes nothing.
    public static TheoryData<string, string, string> Allowed => new()
    {
        { "QUEUED", "Started", "INITIALIZING" },
        { "INITIALIZING", "Started", "INITIALIZING" }, // staged again after a restart during staging
        { "INITIALIZING", "PodRunning", "RUNNING" },
        { "INITIALIZING", "Retried", "INITIALIZING" }, // an attempt ended before its pod was seen running
        { "RUNNING", "Retried", "INITIALIZING" }, // the retry policy starts another attempt
        { "INITIALIZING", "ExecutorFailed", "EXECUTOR_ERROR" },
        { "RUNNING", "ExecutorFailed", "EXECUTOR_ERROR" },
        { "INITIALIZING", "SystemFailed", "SYSTEM_ERROR" },
        { "RUNNING", "SystemFailed", "SYSTEM_ERROR" },
        { "INITIALIZING", "Completed", "COMPLETE" }, // a pod too quick to be seen running
        { "RUNNING", "Completed", "COMPLETE" },
        { "QUEUED", "Canceled", "CANCELED" },
        { "INITIALIZING", "Canceled", "CANCELED" },
        { "RUNNING", "Canceled", "CANCELED" },
        { "CANCELING", "Canceled", "CANCELED" },
        { "INITIALIZING", "CancelPending", "CANCELING" },
        { "RUNNING", "CancelPending", "CANCELING" },
        { "CANCELING", "CancelPending", "CANCELING" },
    };

    private static TesState State(string name) =>
        TesStates.TryParse(name, out var state) ? state : throw new ArgumentException($"'{name}' is not a TES state", nameof(name));

    private static TesEvent Event(string name) => Enum.Parse<TesEvent>(name);

    [Theory]
    [MemberData(nameof(Allowed))]
    public void An_allowed_event_moves_the_task_to_its_next_state(string from, string happened, string to) =>
        Assert.Equal(State(to), TesStateMachine.Next(State(from), Event(happened)));

    [Theory]
    [InlineData("COMPLETE", "Canceled")] // a finished task is left as it is
    [InlineData("EXECUTOR_ERROR", "Completed")]
    [InlineData("CANCELED", "PodRunning")]
    [InlineData("QUEUED", "Completed")] // nothing ends before it started
    [InlineData("QUEUED", "CancelPending")] // a queued task has no job to wait for
    [InlineData("RUNNING", "PodRunning")] // a later stage's pod leaves a running task as it is
    [InlineData("RUNNING", "Started")] // a task is started once
    [InlineData("CANCELING", "Completed")] // a task being canceled ends canceled
    [InlineData("CANCELING", "Retried")] // nor is it retried
    [InlineData("QUEUED", "Retried")] // nothing is retried before it ran
    public void A_forbidden_event_changes_nothing(string from, string happened) =>
        Assert.Null(TesStateMachine.Next(State(from), Event(happened)));

    [Fact]
    public void Every_pair_not_in_the_table_is_forbidden()
    {
        var allowed = Allowed.Select(row => ((string)row[0], (string)row[1])).ToHashSet();
        foreach (var state in Enum.GetValues<TesState>())
        {
            foreach (var happened in Enum.GetValues<TesEvent>())
            {
                if (!allowed.Contains((TesStates.Name(state), happened.ToString())))
                {
                    Assert.True(TesStateMachine.Next(state, happened) is null, $"{TesStates.Name(state)} + {happened} is not in the table but moves the task");
                }
            }
        }
    }

    [Fact]
    public void A_final_state_is_one_that_no_event_leaves_and_it_is_one_of_the_five_the_schema_names()
    {
        string[] final = ["COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED", "PREEMPTED"];
        foreach (var state in Enum.GetValues<TesState>())
        {
            Assert.Equal(final.Contains(TesStates.Name(state)), TesStateMachine.IsTerminal(state));
            if (TesStateMachine.IsTerminal(state))
            {
                Assert.All(Enum.GetValues<TesEvent>(), happened => Assert.Null(TesStateMachine.Next(state, happened)));
            }
        }
    }

    [Fact]
    public void States_are_written_by_their_schema_names_and_read_back()
    {
        string[] schema = ["UNKNOWN", "QUEUED", "INITIALIZING", "RUNNING", "PAUSED", "COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED", "PREEMPTED", "CANCELING"];
        Assert.Equal(schema, TesStates.All);
        foreach (var state in Enum.GetValues<TesState>())
        {
            var json = JsonSerializer.Serialize(new TesTask { State = state }, TesJson.Options);
            Assert.Contains($"\"state\":\"{TesStates.Name(state)}\"", json);
            Assert.Equal(state, JsonSerializer.Deserialize<TesTask>(json, TesJson.Options)!.State);
        }
    }

    [Theory]
    [InlineData("""{"state": "DONE"}""")]
    [InlineData("""{"state": null}""")]
    [InlineData("""{}""")]
    public void A_create_request_may_carry_any_state_since_the_server_sets_it(string json) =>
        Assert.Equal(TesState.Unknown, JsonSerializer.Deserialize<TesTask>(json, TesJson.Options)!.State);
}
