using System.Globalization;
using System.Text.Json;
using Microsoft.Data.Sqlite;

namespace HybridBatch.Daemon.Tes;

/// <summary>A stored task and where it runs.</summary>
/// <param name="Sequence">Its position in creation order (the paging key).</param>
/// <param name="Task">The TES task, logs included.</param>
/// <param name="JobId">The batch job running its current stage, if any.</param>
/// <param name="Stage">The index of its current stage.</param>
internal sealed record StoredTask(long Sequence, TesTask Task, int? JobId, int Stage);

/// <summary>Task records in SQLite, so that tasks survive a restart of the daemon. Thread-safe.</summary>
internal sealed class TaskStore : IDisposable
{
    private readonly SqliteConnection _connection;
    private readonly Lock _gate = new();

    /// <summary>Opens (creating if needed) the database.</summary>
    public TaskStore(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        _connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        _connection.Open();
        Execute("PRAGMA journal_mode=WAL;");
        Execute("PRAGMA synchronous=FULL;");
        Execute("""
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
            """);
    }

    /// <summary>The value stored under a key, storing <paramref name="create"/>'s when there is none.</summary>
    public string GetOrAdd(string key, Func<string> create)
    {
        ArgumentNullException.ThrowIfNull(create);
        lock (_gate)
        {
            using var select = Command("SELECT value FROM meta WHERE key = $k", ("$k", key));
            if (select.ExecuteScalar() is string value)
            {
                return value;
            }

            var created = create();
            using var insert = Command("INSERT INTO meta(key, value) VALUES ($k, $v)", ("$k", key), ("$v", created));
            insert.ExecuteNonQuery();
            return created;
        }
    }

    /// <summary>Adds a new task.</summary>
    public void Add(TesTask task)
    {
        ArgumentNullException.ThrowIfNull(task);
        lock (_gate)
        {
            using var insert = Command(
                "INSERT INTO tasks(id, name, state, body) VALUES ($id, $name, $state, $body)",
                ("$id", task.Id), ("$name", task.Name ?? ""), ("$state", TesStates.Name(task.State)), ("$body", JsonSerializer.Serialize(task, TesJson.Options)));
            insert.ExecuteNonQuery();
        }
    }

    /// <summary>Saves a task's new state, logs and job.</summary>
    /// <param name="task">The task.</param>
    /// <param name="jobId">The batch job of its current stage, or null.</param>
    /// <param name="stage">Its current stage.</param>
    public void Update(TesTask task, int? jobId, int stage)
    {
        ArgumentNullException.ThrowIfNull(task);
        lock (_gate)
        {
            using var update = Command(
                "UPDATE tasks SET state = $state, job_id = $job, stage = $stage, body = $body WHERE id = $id",
                ("$id", task.Id), ("$state", TesStates.Name(task.State)), ("$job", jobId), ("$stage", stage), ("$body", JsonSerializer.Serialize(task, TesJson.Options)));
            update.ExecuteNonQuery();
        }
    }

    /// <summary>A task by id.</summary>
    public StoredTask? Get(string id)
    {
        lock (_gate)
        {
            using var select = Command("SELECT seq, body, job_id, stage FROM tasks WHERE id = $id", ("$id", id));
            return Read(select).FirstOrDefault();
        }
    }

    /// <summary>Tasks not yet in a final state, in creation order.</summary>
    public IReadOnlyList<StoredTask> Unfinished()
    {
        lock (_gate)
        {
            // The final states as the state machine says, not as a second list here.
            var final = Enum.GetValues<TesState>().Where(TesStateMachine.IsTerminal).Select((state, i) => ($"$final{i}", (object?)TesStates.Name(state))).ToArray();
            using var select = Command(
                $"SELECT seq, body, job_id, stage FROM tasks WHERE state NOT IN ({string.Join(", ", final.Select(p => p.Item1))}) ORDER BY seq", final);
            return Read(select);
        }
    }

    /// <summary>Counts tasks by state.</summary>
    public IReadOnlyDictionary<string, long> CountByState()
    {
        lock (_gate)
        {
            using var select = Command("SELECT state, COUNT(*) FROM tasks GROUP BY state");
            using var reader = select.ExecuteReader();
            var counts = new Dictionary<string, long>(StringComparer.Ordinal);
            while (reader.Read())
            {
                counts[reader.GetString(0)] = reader.GetInt64(1);
            }

            return counts;
        }
    }

    /// <summary>A page of tasks in creation order, after a position.</summary>
    /// <param name="after">The sequence number the previous page ended at; 0 for the first page.</param>
    /// <param name="namePrefix">Only names starting with this, when given.</param>
    /// <param name="state">Only this state, when given.</param>
    /// <param name="tags">Only tasks with these tags (an empty value matches any value).</param>
    /// <param name="pageSize">At most this many.</param>
    /// <returns>The tasks, and the sequence number of the last one when more may follow.</returns>
    public (IReadOnlyList<StoredTask> Tasks, long? Next) List(long after, string? namePrefix, TesState? state, IReadOnlyDictionary<string, string> tags, int pageSize)
    {
        ArgumentNullException.ThrowIfNull(tags);
        lock (_gate)
        {
            var sql = "SELECT seq, body, job_id, stage FROM tasks WHERE seq > $after";
            var parameters = new List<(string, object?)> { ("$after", after) };
            if (!string.IsNullOrEmpty(namePrefix))
            {
                sql += " AND substr(name, 1, length($prefix)) = $prefix";
                parameters.Add(("$prefix", namePrefix));
            }

            if (state is { } only)
            {
                sql += " AND state = $state";
                parameters.Add(("$state", TesStates.Name(only)));
            }

            sql += " ORDER BY seq";
            using var select = Command(sql, [.. parameters]);
            using var reader = select.ExecuteReader();
            var page = new List<StoredTask>();
            while (reader.Read())
            {
                var stored = ReadRow(reader);
                if (!Matches(stored.Task.Tags, tags))
                {
                    continue;
                }

                if (page.Count == pageSize)
                {
                    return (page, page[^1].Sequence);
                }

                page.Add(stored);
            }

            return (page, null);
        }
    }

    private static bool Matches(Dictionary<string, string>? taskTags, IReadOnlyDictionary<string, string> filter) =>
        filter.All(f => taskTags is not null && taskTags.TryGetValue(f.Key, out var value) && (f.Value.Length == 0 || value == f.Value));

    private List<StoredTask> Read(SqliteCommand command)
    {
        using var reader = command.ExecuteReader();
        var result = new List<StoredTask>();
        while (reader.Read())
        {
            result.Add(ReadRow(reader));
        }

        return result;
    }

    private static StoredTask ReadRow(SqliteDataReader reader) => new(
        reader.GetInt64(0),
        JsonSerializer.Deserialize<TesTask>(reader.GetString(1), TesJson.Options)!,
        reader.IsDBNull(2) ? null : reader.GetInt32(2),
        reader.GetInt32(3));

    private void Execute(string sql)
    {
        using var command = Command(sql);
        command.ExecuteNonQuery();
    }

    private SqliteCommand Command(string sql, params (string Name, object? Value)[] parameters)
    {
        var command = _connection.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value ?? DBNull.Value);
        }

        return command;
    }

    /// <summary>Closes the database.</summary>
    public void Dispose() => _connection.Dispose();

    /// <summary>Formats a page position as a page token.</summary>
    public static string Token(long sequence) => sequence.ToString(CultureInfo.InvariantCulture);
}
