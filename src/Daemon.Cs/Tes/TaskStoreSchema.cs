using Microsoft.Data.Sqlite;

namespace HybridBatch.Daemon.Tes;

/// <summary>
/// The task database's tables and the steps that bring a database of any earlier version to the current one, so that
/// a daemon restarted on an older <c>tes.db</c> keeps its tasks. The version is SQLite's <c>user_version</c>; each step
/// runs in a transaction of its own with the version it reaches.
/// </summary>
internal static class TaskStoreSchema
{
    private static readonly Action<SqliteConnection, SqliteTransaction>[] Steps = [CreateTasks, AddTerminalAndTags];

    /// <summary>The version this daemon writes.</summary>
    public static int Current => Steps.Length;

    /// <summary>Brings the database to <see cref="Current"/>.</summary>
    /// <exception cref="InvalidOperationException">The database was written by a newer daemon.</exception>
    public static void Migrate(SqliteConnection connection, string path)
    {
        var version = Convert.ToInt32(Scalar(connection, null, "PRAGMA user_version"), System.Globalization.CultureInfo.InvariantCulture);
        if (version > Current)
        {
            throw new InvalidOperationException(
                $"The task database {path} has schema version {version}, written by a newer hybridbatch than this one (version {Current}): " +
                "run that hybridbatch, or give this one another --data-dir.");
        }

        for (; version < Current; version++)
        {
            using var transaction = connection.BeginTransaction();
            Steps[version](connection, transaction);
            Execute(connection, transaction, $"PRAGMA user_version = {version + 1}");
            transaction.Commit();
        }
    }

    // Version 1, the first daemon's: a task is its JSON body, with the columns the runner looks tasks up by. A database
    // of that daemon has these tables at version 0, which this step then leaves as they are.
    private static void CreateTasks(SqliteConnection connection, SqliteTransaction transaction) => Execute(connection, transaction, """
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

    // Version 2: whether a task is finished, and its tags, as columns, so that the unfinished tasks and the list filters
    // are queries. Both are filled from what the tasks already hold: the state column and the body's tags.
    private static void AddTerminalAndTags(SqliteConnection connection, SqliteTransaction transaction)
    {
        Execute(connection, transaction, """
            ALTER TABLE tasks ADD COLUMN terminal INTEGER NOT NULL DEFAULT 0;
            CREATE INDEX tasks_unfinished ON tasks(seq) WHERE terminal = 0;
            CREATE TABLE task_tags (
                seq INTEGER NOT NULL REFERENCES tasks(seq),
                key TEXT NOT NULL,
                value TEXT NULL,
                PRIMARY KEY (seq, key)) WITHOUT ROWID;
            CREATE INDEX task_tags_key ON task_tags(key, value);
            INSERT INTO task_tags(seq, key, value) SELECT tasks.seq, tag.key, tag.value FROM tasks, json_each(tasks.body, '$.tags') AS tag;
            """);
        foreach (var state in Enum.GetValues<TesState>().Where(TesStateMachine.IsTerminal))
        {
            using var update = connection.CreateCommand();
            update.Transaction = transaction;
            update.CommandText = "UPDATE tasks SET terminal = 1 WHERE state = $state";
            update.Parameters.AddWithValue("$state", TesStates.Name(state));
            update.ExecuteNonQuery();
        }
    }

    private static object? Scalar(SqliteConnection connection, SqliteTransaction? transaction, string sql)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        return command.ExecuteScalar();
    }

    private static void Execute(SqliteConnection connection, SqliteTransaction transaction, string sql)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }
}
