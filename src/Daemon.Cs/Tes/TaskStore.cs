using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.Data.Sqlite;

namespace HybridBatch.Daemon.Tes;

/// <summary>A stored task and where it runs.</summary>
/// <param name="Sequence">Its position in creation order (the paging key).</param>
/// <param name="Task">The TES task, logs included.</param>
/// <param name="JobId">The batch job running its current stage, if any.</param>
/// <param name="Stage">The index of its current stage.</param>
internal sealed record StoredTask(long Sequence, TesTask Task, int? JobId, int Stage);

/// <summary>A task as a list shows it: its id and state from their columns, its JSON only when asked for.</summary>
internal sealed record ListedTask(string Id, TesState State, string? Json);

/// <summary>What a list asks for; every part given must match.</summary>
/// <param name="NamePrefix">Names starting with this.</param>
/// <param name="State">Tasks in this state.</param>
/// <param name="Tags">Tasks with these tags; an empty value matches any value.</param>
internal sealed record TaskFilter(string? NamePrefix, TesState? State, IReadOnlyDictionary<string, string> Tags);

/// <summary>
/// Task records in SQLite, so that tasks survive a restart of the daemon. Thread-safe: one lock guards the connection,
/// held only while SQLite runs; rows are turned into tasks after it is released.
/// </summary>
internal sealed class TaskStore : IDisposable
{
    private const string Columns = "seq, body, job_id, stage";

    private readonly SqliteConnection _connection;
    private readonly Lock _gate = new();

    public TaskStore(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        _connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        _connection.Open();
        Execute("PRAGMA journal_mode=WAL;");
        Execute("PRAGMA synchronous=FULL;");
        TaskStoreSchema.Migrate(_connection, path);
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

    /// <summary>Adds a new task, with its id and state set; its tags are stored once, as they never change.</summary>
    public void Add(TesTask task)
    {
        ArgumentNullException.ThrowIfNull(task);
        var body = JsonSerializer.Serialize(task, TesJson.Options);
        lock (_gate)
        {
            using var transaction = _connection.BeginTransaction();
            using var insert = Command(
                "INSERT INTO tasks(id, name, state, terminal, body) VALUES ($id, $name, $state, $terminal, $body) RETURNING seq",
                ("$id", task.Id), ("$name", task.Name ?? ""), ("$state", TesStates.Name(task.State)), ("$terminal", TesStateMachine.IsTerminal(task.State)), ("$body", body));
            insert.Transaction = transaction;
            var seq = (long)insert.ExecuteScalar()!;
            foreach (var (key, value) in task.Tags ?? [])
            {
                using var tag = Command("INSERT INTO task_tags(seq, key, value) VALUES ($seq, $key, $value)", ("$seq", seq), ("$key", key), ("$value", value));
                tag.Transaction = transaction;
                tag.ExecuteNonQuery();
            }

            transaction.Commit();
        }
    }

    /// <summary>Saves a task's new state, logs and job.</summary>
    /// <param name="task">The task.</param>
    /// <param name="jobId">The batch job of its current stage, or null.</param>
    /// <param name="stage">Its current stage.</param>
    public void Update(TesTask task, int? jobId, int stage)
    {
        ArgumentNullException.ThrowIfNull(task);
        var body = JsonSerializer.Serialize(task, TesJson.Options);
        lock (_gate)
        {
            using var update = Command(
                "UPDATE tasks SET state = $state, terminal = $terminal, job_id = $job, stage = $stage, body = $body WHERE id = $id",
                ("$id", task.Id), ("$state", TesStates.Name(task.State)), ("$terminal", TesStateMachine.IsTerminal(task.State)),
                ("$job", jobId), ("$stage", stage), ("$body", body));
            update.ExecuteNonQuery();
        }
    }

    public StoredTask? Get(string id) => Tasks($"SELECT {Columns} FROM tasks WHERE id = $id", ("$id", id)).FirstOrDefault();

    /// <summary>Tasks not yet in a final state, in creation order.</summary>
    public IReadOnlyList<StoredTask> Unfinished() => Tasks($"SELECT {Columns} FROM tasks WHERE terminal = 0 ORDER BY seq");

    /// <summary>The number of tasks in each state, by the state's name.</summary>
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

    /// <summary>A page of the tasks that match, in creation order, after a position; filtered and cut in the query.</summary>
    /// <param name="after">The sequence number the previous page ended at; 0 for the first page.</param>
    /// <param name="filter">What the tasks must match.</param>
    /// <param name="pageSize">At most this many.</param>
    /// <param name="withJson">Whether each task's JSON is needed (views other than MINIMAL).</param>
    /// <returns>The tasks, and the sequence number of the last one when more follow.</returns>
    public (IReadOnlyList<ListedTask> Tasks, long? Next) List(long after, TaskFilter filter, int pageSize, bool withJson)
    {
        ArgumentNullException.ThrowIfNull(filter);
        var sql = new StringBuilder(withJson ? "SELECT seq, id, state, body" : "SELECT seq, id, state, NULL").Append(" FROM tasks WHERE seq > $after");
        var parameters = new List<(string, object?)> { ("$after", after), ("$limit", pageSize + 1) };
        if (!string.IsNullOrEmpty(filter.NamePrefix))
        {
            sql.Append(" AND substr(name, 1, length($prefix)) = $prefix");
            parameters.Add(("$prefix", filter.NamePrefix));
        }

        if (filter.State is { } state)
        {
            sql.Append(" AND state = $state");
            parameters.Add(("$state", TesStates.Name(state)));
        }

        // Each tag through the index on (key, value): a rare tag reads its few tasks, not every task before them.
        foreach (var (i, (key, value)) in filter.Tags.Index())
        {
            sql.Append(CultureInfo.InvariantCulture, $" AND seq IN (SELECT seq FROM task_tags WHERE key = $key{i}");
            parameters.Add(($"$key{i}", key));
            if (value.Length > 0)
            {
                sql.Append(CultureInfo.InvariantCulture, $" AND value = $value{i}");
                parameters.Add(($"$value{i}", value));
            }

            sql.Append(')');
        }

        sql.Append(" ORDER BY seq LIMIT $limit");
        var rows = new List<(long Sequence, ListedTask Task)>();
        lock (_gate)
        {
            using var select = Command(sql.ToString(), [.. parameters]);
            using var reader = select.ExecuteReader();
            while (reader.Read())
            {
                TesStates.TryParse(reader.GetString(2), out var rowState);
                rows.Add((reader.GetInt64(0), new ListedTask(reader.GetString(1), rowState, reader.IsDBNull(3) ? null : reader.GetString(3))));
            }
        }

        return rows.Count > pageSize
            ? ([.. rows.Take(pageSize).Select(r => r.Task)], rows[pageSize - 1].Sequence)
            : ([.. rows.Select(r => r.Task)], null);
    }

    private List<StoredTask> Tasks(string sql, params (string Name, object? Value)[] parameters)
    {
        var rows = new List<(long Sequence, string Body, int? JobId, int Stage)>();
        lock (_gate)
        {
            using var select = Command(sql, parameters);
            using var reader = select.ExecuteReader();
            while (reader.Read())
            {
                rows.Add((reader.GetInt64(0), reader.GetString(1), reader.IsDBNull(2) ? null : reader.GetInt32(2), reader.GetInt32(3)));
            }
        }

        return [.. rows.Select(r => new StoredTask(r.Sequence, JsonSerializer.Deserialize<TesTask>(r.Body, TesJson.Options)!, r.JobId, r.Stage))];
    }

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

    public void Dispose() => _connection.Dispose();

    /// <summary>Formats a page position as a page token.</summary>
    public static string Token(long sequence) => sequence.ToString(CultureInfo.InvariantCulture);
}
