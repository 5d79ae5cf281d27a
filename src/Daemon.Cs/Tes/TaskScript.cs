using System.Globalization;
using System.Text;

namespace HybridBatch.Daemon.Tes;

/// <summary>Consecutive executors that share an image, run in order by one batch job.</summary>
/// <param name="Index">The stage's position.</param>
/// <param name="From">The first executor.</param>
/// <param name="To">One past the last executor.</param>
/// <param name="Image">Their image.</param>
internal sealed record TaskStage(int Index, int From, int To, string Image);

/// <summary>
/// Turns a TES task into shell scripts that run its executors in order inside one container, recording each
/// executor's exit code, times and output in the task's work directory (on the shared host path), where
/// <see cref="TaskWorkspace"/> reads them back.
/// </summary>
internal static class TaskScript
{
    /// <summary>Splits the executors into stages: consecutive executors with the same image share a pod.</summary>
    public static IReadOnlyList<TaskStage> Stages(TesTask task)
    {
        ArgumentNullException.ThrowIfNull(task);
        var executors = task.Executors ?? [];
        var stages = new List<TaskStage>();
        var from = 0;
        for (var i = 1; i <= executors.Count; i++)
        {
            if (i == executors.Count || executors[i].Image != executors[from].Image)
            {
                stages.Add(new TaskStage(stages.Count, from, i, executors[from].Image!));
                from = i;
            }
        }

        return stages;
    }

    /// <summary>
    /// The script of one stage, for <c>/bin/sh -c</c>; the last stage also collects the outputs.
    /// <paramref name="containerDirectory"/> is the task's work directory as the container sees it.
    /// </summary>
    public static string Build(TesTask task, TaskStage stage, bool last, string containerDirectory)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(stage);
        var q = PosixShell.Quote;
        var s = new StringBuilder();
        s.Append("T=").Append(q(containerDirectory)).Append('\n');
        s.Append("mkdir -p \"$T/exec\" \"$T/outputs\"\n");
        s.Append("stamp() { date -u +%Y-%m-%dT%H:%M:%SZ; }\n");
        var inputs = task.Inputs ?? [];
        for (var i = 0; i < inputs.Count; i++)
        {
            var path = inputs[i].Path!;
            if (inputs[i].Type == "DIRECTORY")
            {
                s.Append(CultureInfo.InvariantCulture, $"mkdir -p {q(path)} && cp -R \"$T/inputs/{i}/.\" {q(path)} || {{ echo 'cannot place input {i}' >&2; exit 90; }}\n");
            }
            else
            {
                s.Append(CultureInfo.InvariantCulture, $"mkdir -p \"$(dirname {q(path)})\" && cp -R \"$T/inputs/{i}\" {q(path)} || {{ echo 'cannot place input {i}' >&2; exit 90; }}\n");
            }
        }

        foreach (var volume in task.Volumes ?? [])
        {
            s.Append("mkdir -p ").Append(q(volume)).Append('\n');
        }

        var executors = task.Executors!;
        for (var i = stage.From; i < stage.To; i++)
        {
            var e = executors[i];
            s.Append(CultureInfo.InvariantCulture, $"echo '@@hybridbatch executor {i} start'\n");
            s.Append(CultureInfo.InvariantCulture, $"stamp > \"$T/exec/{i}.start\"\n");
            s.Append('(');
            if (e.Workdir is { } workdir)
            {
                s.Append("mkdir -p ").Append(q(workdir)).Append(" && cd ").Append(q(workdir)).Append(" && ");
            }

            s.Append("exec ");
            if (e.Env is { Count: > 0 } env)
            {
                // env(1) rather than export: TES allows names such as a.b that the shell cannot export.
                s.Append("env ").Append(string.Join(' ', env.Select(kv => q(kv.Key + "=" + kv.Value)))).Append(' ');
            }

            s.Append(string.Join(' ', e.Command!.Select(q))).Append(')');
            s.Append(" < ").Append(e.Stdin is { } stdin ? q(stdin) : "/dev/null");
            s.Append(CultureInfo.InvariantCulture, $" > \"$T/exec/{i}.stdout\" 2> \"$T/exec/{i}.stderr\"\n");
            s.Append("rc=$?\n");
            s.Append(CultureInfo.InvariantCulture, $"stamp > \"$T/exec/{i}.end\"\n");
            if (e.Stdout is { } stdout)
            {
                s.Append(CultureInfo.InvariantCulture, $"mkdir -p \"$(dirname {q(stdout)})\" && cp \"$T/exec/{i}.stdout\" {q(stdout)}\n");
            }

            if (e.Stderr is { } stderr)
            {
                s.Append(CultureInfo.InvariantCulture, $"mkdir -p \"$(dirname {q(stderr)})\" && cp \"$T/exec/{i}.stderr\" {q(stderr)}\n");
            }

            s.Append(CultureInfo.InvariantCulture, $"echo $rc > \"$T/exec/{i}.exit\"\n");
            s.Append(CultureInfo.InvariantCulture, $"echo \"@@hybridbatch executor {i} exit $rc\"\n");
            if (e.IgnoreError != true)
            {
                s.Append("if [ $rc -ne 0 ]; then exit $rc; fi\n");
            }
        }

        if (last)
        {
            var outputs = task.Outputs ?? [];
            for (var j = 0; j < outputs.Count; j++)
            {
                var path = q(outputs[j].Path!);
                s.Append(CultureInfo.InvariantCulture, $"if [ -e {path} ]; then cp -R {path} \"$T/outputs/{j}\"; else : > \"$T/outputs/{j}.missing\"; fi\n");
            }
        }

        s.Append(CultureInfo.InvariantCulture, $"echo '@@hybridbatch stage {stage.Index} done'\n");
        return s.ToString();
    }
}
