using System.Diagnostics;
using System.Text.Json;
using HybridBatch.Daemon.Tes;
using Microsoft.Data.Sqlite;
using Xunit.Abstractions;

namespace HybridBatch.Integration.Daemon;

/// <summary>The task database: lists filtered and paged in the query, and databases of the first daemon migrated.</summary>
public sealed class TaskStoreTests(ITestOutputHelper output) : IDisposable
{
    // In memory where the machine has it: each added task is a synchronous write, and a thousand of them on disk would
    // slow the daemons of the tests that run meanwhile.
    private readonly string directory = Directory.Exists("/dev/shm")
        ? Directory.CreateDirectory(Path.Combine("/dev/shm", "hybridbatch-store-" + Guid.NewGuid().ToString("N")[..8])).FullName
        : Directory.CreateTempSubdirectory("hybridbatch-store-").FullName;

    private string DatabasePath => Path.Combine(directory, "tes.db");

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(directory, recursive: true);
    }

    private static TesTask NewTask(string id, string state, string name, Dictionary<string, string>? tags = null) =>
        JsonSerializer.Deserialize<TesTask>(
            JsonSerializer.Serialize(new { id, state, name, tags, executors = new[] { new { image = "busybox:1.35", command = new[] { "true" } } } }, TesJson.Options),
            TesJson.Options)!;

    private static string[] Ids(IReadOnlyList<ListedTask> tasks) => [.. tasks.Select(t => t.Id)];

    private static TaskFilter Filter(string? namePrefix = null, TesState? state = null, Dictionary<string, string>? tags = null) =>
        new(namePrefix, state, tags ?? []);

    // The first daemon's schema and rows, as it wrote them.
    private void WriteFirstDaemonDatabase()
    {
        using var connection = new SqliteConnection($"Data Source={DatabasePath};Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = """
            PRAGMA journal_mode=WAL;
            CREATE TABLE IF NOT EXISTS tasks (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                id TEXT NOT NULL UNIQUE,
                name TEXT NOT NULL,
                state TEXT NOT NULL,
                job_id INTEGER NULL,
                stage INTEGER NOT NULL DEFAULT 0,
                body TEXT NOT NULL);
            CREATE INDEX IF NOT EXISTS tasks_state ON tasks(state);
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            INSERT INTO meta(key, value) VALUES ('run_id', 'tesold');
            INSERT INTO tasks(id, name, state, job_id, stage, body) VALUES
                ('done', 'a-done', 'COMPLETE', NULL, 0, '{"id":"done","state":"COMPLETE","name":"a-done","tags":{"team":"x","kind":"old"}}'),
                ('running', 'a-running', 'RUNNING', 7, 1, '{"id":"running","state":"RUNNING","name":"a-running","tags":{"team":"y"}}'),
                ('failed', 'b-failed', 'SYSTEM_ERROR', NULL, 0, '{"id":"failed","state":"SYSTEM_ERROR","name":"b-failed"}'),
                ('queued', 'a-queued', 'QUEUED', NULL, 0, '{"id":"queued","state":"QUEUED","name":"a-queued","tags":{"team":"x","note":null}}'),
                ('canceling', 'c', 'CANCELING', 9, 0, '{"id":"canceling","state":"CANCELING","name":"c","tags":{}}');
            """;
        command.ExecuteNonQuery();
    }

    [Fact]
    public void A_database_of_the_first_daemon_keeps_its_run_and_tasks_and_its_tags_and_final_states_become_columns()
    {
        WriteFirstDaemonDatabase();

        using var store = new TaskStore(DatabasePath);

        Assert.Equal("tesold", store.GetOrAdd("run_id", () => "tesnew"));
        var unfinished = store.Unfinished();
        Assert.Equal(["running", "queued", "canceling"], unfinished.Select(t => t.Task.Id));
        Assert.Equal(((int?)7, 1, TesState.Running), (unfinished[0].JobId, unfinished[0].Stage, unfinished[0].Task.State));
        Assert.Equal(["done", "queued"], Ids(store.List(0, Filter(tags: new() { ["team"] = "x" }), 10, withJson: false).Tasks));
        Assert.Equal(["done", "running", "queued"], Ids(store.List(0, Filter(tags: new() { ["team"] = "" }), 10, withJson: false).Tasks));
        Assert.Equal(["queued"], Ids(store.List(0, Filter(tags: new() { ["note"] = "" }), 10, withJson: false).Tasks));
        Assert.Equal(["done"], Ids(store.List(0, Filter("a-", TesState.Complete), 10, withJson: false).Tasks));

        store.Add(NewTask("new", "QUEUED", "a-new", new() { ["team"] = "x" }));
        Assert.Equal(["done", "queued", "new"], Ids(store.List(0, Filter(tags: new() { ["team"] = "x" }), 10, withJson: false).Tasks));
    }

    [Fact]
    public void Opening_a_migrated_database_again_changes_nothing()
    {
        WriteFirstDaemonDatabase();
        using (new TaskStore(DatabasePath))
        {
        }

        using var store = new TaskStore(DatabasePath);
        Assert.Equal(["done", "queued"], Ids(store.List(0, Filter(tags: new() { ["team"] = "x" }), 10, withJson: false).Tasks));
        Assert.Equal(3, store.Unfinished().Count);
    }

    [Fact]
    public void A_database_of_a_newer_daemon_is_refused_with_the_way_out()
    {
        using (var store = new TaskStore(DatabasePath))
        {
        }

        using (var connection = new SqliteConnection($"Data Source={DatabasePath};Pooling=False"))
        {
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = "PRAGMA user_version = 99";
            command.ExecuteNonQuery();
        }

        var error = Assert.Throws<InvalidOperationException>(() => new TaskStore(DatabasePath));
        Assert.Contains("newer hybridbatch", error.Message);
        Assert.Contains("--data-dir", error.Message);
    }

    [Fact]
    public void A_saved_task_leaves_the_unfinished_ones_when_it_reaches_a_final_state()
    {
        using var store = new TaskStore(DatabasePath);
        var task = NewTask("t", "QUEUED", "t");
        store.Add(task);
        task.State = TesState.Canceling;
        store.Update(task, 3, 0);
        Assert.Single(store.Unfinished());
        task.State = TesState.Canceled;
        store.Update(task, null, 0);
        Assert.Empty(store.Unfinished());
        Assert.Equal(TesState.Canceled, store.Get("t")!.Task.State);
    }

    [Fact]
    public void A_tag_filter_with_a_value_matches_that_value_only_and_a_name_prefix_is_literal()
    {
        using var store = new TaskStore(DatabasePath);
        store.Add(NewTask("1", "QUEUED", "50%_done", new() { ["k"] = "v" }));
        store.Add(NewTask("2", "QUEUED", "50 done", new() { ["k"] = "V" }));
        store.Add(NewTask("3", "QUEUED", "5", new() { ["other"] = "v" }));

        Assert.Equal(["1"], Ids(store.List(0, Filter(tags: new() { ["k"] = "v" }), 10, withJson: false).Tasks));
        Assert.Equal(["1", "2"], Ids(store.List(0, Filter(tags: new() { ["k"] = "" }), 10, withJson: false).Tasks));
        Assert.Empty(store.List(0, Filter(tags: new() { ["k"] = "v", ["other"] = "v" }), 10, withJson: false).Tasks);
        Assert.Equal(["1"], Ids(store.List(0, Filter("50%_"), 10, withJson: false).Tasks));
    }

    [Fact]
    public void A_page_ends_with_a_token_only_when_more_tasks_match()
    {
        using var store = new TaskStore(DatabasePath);
        for (var i = 0; i < 5; i++)
        {
            store.Add(NewTask($"t{i}", "QUEUED", $"t{i}", new() { ["parity"] = i % 2 == 0 ? "even" : "odd" }));
        }

        var even = Filter(tags: new() { ["parity"] = "even" });
        var (first, next) = store.List(0, even, 2, withJson: true);
        Assert.Equal(["t0", "t2"], Ids(first));
        Assert.All(first, t => Assert.Contains("\"parity\":\"even\"", t.Json));
        var (second, last) = store.List(next!.Value, even, 2, withJson: false);
        Assert.Equal(["t4"], Ids(second));
        Assert.Null(second[0].Json);
        Assert.Null(last);
        Assert.Null(store.List(0, even, 3, withJson: false).Next);
    }

    // Not a timed assertion: the figures are printed for comparison with the daemon before tags were columns
    // (the same workload filtered in memory after reading and deserializing every row).
    [Fact]
    public void Listing_1000_tasks_by_tag_returns_the_matching_page()
    {
        using var store = new TaskStore(DatabasePath);
        var text = new string('x', 2048);
        for (var i = 0; i < 1000; i++)
        {
            var task = NewTask($"task{i:D5}", "COMPLETE", $"bench-{i}", new() { ["group"] = "bench", ["parity"] = i % 2 == 0 ? "even" : "odd", ["index"] = $"{i}" });
            task.Inputs = [new TesInput { Path = "/data/in.txt", Content = text }];
            task.Logs = [new TesTaskLog { StartTime = "2025-01-01T00:00:00.000Z", EndTime = "2025-01-01T00:00:01.000Z", SystemLogs = [], Logs = [new TesExecutorLog { Stdout = text, Stderr = text }] }];
            store.Add(task);
        }

        Measure("tag parity=even, page 256", new() { ["parity"] = "even" }, 256, "task00000", "task00510");
        Measure("tag index=999 (one match, last)", new() { ["index"] = "999" }, 1, "task00999", "task00999");
        Measure("tag group=bench & parity=odd, page 256", new() { ["group"] = "bench", ["parity"] = "odd" }, 256, "task00001", "task00511");

        void Measure(string what, Dictionary<string, string> tags, int count, string firstId, string lastId)
        {
            var times = new List<double>();
            foreach (var run in Enumerable.Range(0, 25))
            {
                var watch = Stopwatch.StartNew();
                var (tasks, _) = store.List(0, Filter(tags: tags), 256, withJson: false);
                watch.Stop();
                Assert.Equal(count, tasks.Count);
                Assert.Equal((firstId, lastId), (tasks[0].Id, tasks[^1].Id));
                if (run >= 5)
                {
                    times.Add(watch.Elapsed.TotalMilliseconds);
                }
            }

            times.Sort();
            output.WriteLine($"after: {what}: {count} tasks, median {times[times.Count / 2]:0.00} ms (min {times[0]:0.00})");
        }
    }
}
