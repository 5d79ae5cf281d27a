using System.Globalization;
using HybridBatch.Core;
using HybridBatch.Core.Api;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace HybridBatch.Daemon.Jobs;

/// <summary>A jobs file cannot be used; the message names the file, line, column and field, and the fix.</summary>
/// <param name="message">What is wrong.</param>
internal sealed class JobsFileException(string message) : Exception(message);

/// <summary>One entry of a jobs file, fanned out <see cref="Count"/> times.</summary>
/// <param name="Name">The job's name (instances of a fan-out get <c>-1</c>, <c>-2</c> … appended).</param>
/// <param name="Command">The command, run with <c>/bin/sh -c</c>.</param>
/// <param name="Description">What the batch system is asked for.</param>
/// <param name="Environment">Environment variables.</param>
/// <param name="Count">How many instances to run.</param>
/// <param name="Line">Where the entry starts in the file.</param>
/// <param name="Retry">When and how often an instance that did not succeed runs again; null: never.</param>
internal sealed record JobEntry(
    string Name,
    string Command,
    JobDescription Description,
    IReadOnlyDictionary<string, string> Environment,
    int Count,
    int Line,
    RetryPolicy? Retry = null);

/// <summary>A parsed jobs file.</summary>
/// <param name="Jobs">The entries, in file order.</param>
/// <param name="ResourceOverhead">Bytes added to each job's memory and disk, when the file sets it.</param>
internal sealed record JobsFile(IReadOnlyList<JobEntry> Jobs, long? ResourceOverhead)
{
    /// <summary>Default cores of a job: a tenth, so that a fan-out fits on a small node.</summary>
    public const double DefaultCores = 0.1;

    /// <summary>Default memory of a job.</summary>
    public const long DefaultMemory = 64L * 1024 * 1024;

    /// <summary>Default scratch disk of a job.</summary>
    public const long DefaultDisk = 64L * 1024 * 1024;

    /// <summary>The most instances one entry may fan out to.</summary>
    public const int MaxCount = 10_000;

    private static readonly string[] TopKeys = ["jobs", "resourceOverhead"];
    private static readonly string[] JobKeys =
        ["name", "command", "image", "cores", "memory", "disk", "gpus", "env", "preemptible", "placement", "count", "retry"];
    private static readonly string[] PlacementKeys = ["required", "desired", "prohibited", "tolerated"];
    private static readonly string[] RetryKeys = ["on", "attempts", "memory"];
    private static readonly string[] RetryMemoryKeys = ["factor", "max"];

    /// <summary>Reads a jobs file (YAML, or JSON, which is YAML too).</summary>
    /// <param name="path">The file.</param>
    /// <returns>The jobs.</returns>
    /// <exception cref="JobsFileException">The file is missing or invalid; the message says where and why.</exception>
    public static JobsFile Load(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new JobsFileException($"{path}: cannot read the jobs file: {ex.Message}");
        }

        return Parse(text, path);
    }

    /// <summary>Parses the text of a jobs file.</summary>
    /// <param name="text">YAML or JSON.</param>
    /// <param name="source">The file's name, for messages.</param>
    /// <returns>The jobs.</returns>
    /// <exception cref="JobsFileException">The text is invalid; the message says where and why.</exception>
    public static JobsFile Parse(string text, string source)
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(text));
        }
        catch (YamlException ex)
        {
            var inner = ex.InnerException?.Message is { } detail ? $" ({detail})" : "";
            throw new JobsFileException($"{source}:{ex.Start.Line}:{ex.Start.Column}: not valid YAML or JSON: {ex.Message}{inner}");
        }

        if (stream.Documents.Count == 0)
        {
            throw new JobsFileException($"{source}: the file is empty: list the jobs under 'jobs:' (see examples/quickstart.yaml).");
        }

        var reader = new Reader(source);
        var root = reader.Map(stream.Documents[0].RootNode, "the file", TopKeys);
        long? overhead = root.TryGetValue("resourceOverhead", out var o) ? reader.Bytes(o, "resourceOverhead") : null;
        if (!root.TryGetValue("jobs", out var jobsNode))
        {
            throw new JobsFileException($"{source}:{stream.Documents[0].RootNode.Start.Line}: no 'jobs:' list: list the jobs under 'jobs:' (see examples/quickstart.yaml).");
        }

        if (jobsNode is not YamlSequenceNode sequence || sequence.Children.Count == 0)
        {
            throw new JobsFileException($"{reader.At(jobsNode)}: jobs: expected a non-empty list of jobs.");
        }

        var jobs = new List<JobEntry>();
        var names = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < sequence.Children.Count; i++)
        {
            var entry = reader.Job(sequence.Children[i], $"jobs[{i}]");
            if (names.TryGetValue(entry.Name, out var previous))
            {
                throw new JobsFileException(
                    $"{reader.At(sequence.Children[i])}: jobs[{i}].name: '{entry.Name}' is also the name of the job on line {previous}: give each job its own name.");
            }

            names[entry.Name] = entry.Line;
            jobs.Add(entry);
        }

        return new JobsFile(jobs, overhead);
    }

    private sealed class Reader(string source)
    {
        public string At(YamlNode node) => $"{source}:{node.Start.Line}:{node.Start.Column}";

        public Dictionary<string, YamlNode> Map(YamlNode node, string field, string[] allowed)
        {
            if (node is not YamlMappingNode mapping)
            {
                throw new JobsFileException($"{At(node)}: {field}: expected a mapping of keys to values.");
            }

            var result = new Dictionary<string, YamlNode>(StringComparer.Ordinal);
            foreach (var (key, value) in mapping.Children)
            {
                var name = (key as YamlScalarNode)?.Value ?? "";
                if (!allowed.Contains(name, StringComparer.Ordinal))
                {
                    var suggestion = allowed.FirstOrDefault(a => string.Equals(a, name, StringComparison.OrdinalIgnoreCase));
                    var hint = suggestion is null ? $"the keys are {string.Join(", ", allowed)}" : $"did you mean '{suggestion}'?";
                    throw new JobsFileException($"{At(key)}: {field}: unknown key '{name}': {hint}.");
                }

                result[name] = value;
            }

            return result;
        }

        public string Text(YamlNode node, string field)
        {
            if (node is not YamlScalarNode { Value: { } value })
            {
                throw new JobsFileException($"{At(node)}: {field}: expected a string.");
            }

            return value;
        }

        public double Number(YamlNode node, string field, double min)
        {
            var text = Text(node, field);
            if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || double.IsNaN(value) || double.IsInfinity(value))
            {
                throw new JobsFileException($"{At(node)}: {field}: '{text}' is not a number: write e.g. 0.5.");
            }

            if (value < min)
            {
                throw new JobsFileException($"{At(node)}: {field}: {text} is below {min.ToString(CultureInfo.InvariantCulture)}.");
            }

            return value;
        }

        public int Integer(YamlNode node, string field, int min, int max)
        {
            var text = Text(node, field);
            if (!int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) || value < min || value > max)
            {
                throw new JobsFileException($"{At(node)}: {field}: '{text}' is not a whole number from {min} to {max}.");
            }

            return value;
        }

        public bool Boolean(YamlNode node, string field)
        {
            var text = Text(node, field);
            return text.ToUpperInvariant() switch
            {
                "TRUE" or "YES" or "ON" => true,
                "FALSE" or "NO" or "OFF" => false,
                _ => throw new JobsFileException($"{At(node)}: {field}: '{text}' is not true or false."),
            };
        }

        public long Bytes(YamlNode node, string field)
        {
            var text = Text(node, field);
            return ByteQuantity.TryParse(text, out var bytes)
                ? bytes
                : throw new JobsFileException($"{At(node)}: {field}: '{text}' is not an amount of bytes: write e.g. 268435456, 256Mi or 1G.");
        }

        public string Command(YamlNode node, string field)
        {
            if (node is YamlSequenceNode argv)
            {
                if (argv.Children.Count == 0)
                {
                    throw new JobsFileException($"{At(node)}: {field}: the command is an empty list: give the program and its arguments.");
                }

                return string.Join(' ', argv.Children.Select((a, i) => PosixShell.Quote(Text(a, $"{field}[{i}]"))));
            }

            var text = Text(node, field);
            return string.IsNullOrWhiteSpace(text)
                ? throw new JobsFileException($"{At(node)}: {field}: the command is empty: give a shell command, e.g. 'echo hello'.")
                : text;
        }

        public Dictionary<string, IReadOnlyList<string>> Labels(YamlNode node, string field)
        {
            if (node is not YamlMappingNode mapping)
            {
                throw new JobsFileException($"{At(node)}: {field}: expected a mapping of label keys to a value or a list of values.");
            }

            var result = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
            foreach (var (key, value) in mapping.Children)
            {
                var name = Text(key, field);
                result[name] = value switch
                {
                    YamlSequenceNode values => [.. values.Children.Select((v, i) => Text(v, $"{field}.{name}[{i}]"))],
                    YamlScalarNode { Value: null or "" or "~" } => [],
                    _ => [Text(value, $"{field}.{name}")],
                };
            }

            return result;
        }

        public JobEntry Job(YamlNode node, string field)
        {
            var map = Map(node, field, JobKeys);
            if (!map.TryGetValue("command", out var commandNode))
            {
                throw new JobsFileException($"{At(node)}: {field}: no 'command': give the shell command the job runs.");
            }

            var name = map.TryGetValue("name", out var n) ? Text(n, $"{field}.name") : $"job{field[5..^1]}";
            if (string.IsNullOrWhiteSpace(name))
            {
                throw new JobsFileException($"{At(n!)}: {field}.name: the name is empty.");
            }

            var label = $"{field} ({name})";
            var command = Command(commandNode, $"{label}.command");
            var cores = map.TryGetValue("cores", out var c) ? Number(c, $"{label}.cores", 0) : DefaultCores;
            var memory = map.TryGetValue("memory", out var m) ? Bytes(m, $"{label}.memory") : DefaultMemory;
            var disk = map.TryGetValue("disk", out var d) ? Bytes(d, $"{label}.disk") : DefaultDisk;
            var gpus = map.TryGetValue("gpus", out var g) ? Integer(g, $"{label}.gpus", 0, 64) : 0;
            var count = map.TryGetValue("count", out var k) ? Integer(k, $"{label}.count", 1, MaxCount) : 1;
            var preemptible = map.TryGetValue("preemptible", out var p) && Boolean(p, $"{label}.preemptible");
            string? image = null;
            if (map.TryGetValue("image", out var im))
            {
                image = Text(im, $"{label}.image");
                if (string.IsNullOrWhiteSpace(image))
                {
                    throw new JobsFileException($"{At(im)}: {label}.image: the image is empty: name one, e.g. busybox:1.35, or leave the key out.");
                }
            }

            var environment = new Dictionary<string, string>(StringComparer.Ordinal);
            if (map.TryGetValue("env", out var e))
            {
                if (e is not YamlMappingNode envMap)
                {
                    throw new JobsFileException($"{At(e)}: {label}.env: expected a mapping of variable names to values.");
                }

                foreach (var (key, value) in envMap.Children)
                {
                    var variable = Text(key, $"{label}.env");
                    environment[variable] = Text(value, $"{label}.env.{variable}");
                }
            }

            Placement? placement = null;
            if (map.TryGetValue("placement", out var pl))
            {
                placement = new Placement();
                var parts = Map(pl, $"{label}.placement", PlacementKeys);
                Copy(parts, "required", placement.RequiredLabels, label);
                Copy(parts, "desired", placement.DesiredLabels, label);
                Copy(parts, "prohibited", placement.ProhibitedLabels, label);
                Copy(parts, "tolerated", placement.ToleratedTaints, label);
                placement.SetPreemptible(preemptible);
                try
                {
                    placement.Apply(new k8s.Models.V1PodSpec());
                }
                catch (ArgumentException ex)
                {
                    throw new JobsFileException($"{At(pl)}: {label}.placement: {ex.Message}");
                }
            }

            var retry = map.TryGetValue("retry", out var r) ? Retry(r, $"{label}.retry", memory) : null;
            var description = new JobDescription(name, cores, memory, disk)
            {
                Image = image,
                Preemptible = preemptible,
                Placement = placement,
                Accelerators = gpus > 0 ? [new AcceleratorRequirement(gpus)] : [],
            };
            return new JobEntry(name, command, description, environment, count, (int)node.Start.Line, retry);
        }

        // The core checks the policy; a problem is reported at the node of the field it names (the item of 'on' it
        // names), or at the nearest enclosing node when the field is missing.
        private RetryPolicy Retry(YamlNode node, string field, long firstMemory)
        {
            var parts = Map(node, field, RetryKeys);
            YamlNode? onNode = parts.GetValueOrDefault("on");
            List<(YamlNode Node, string Text)>? on = onNode switch
            {
                null => null,
                YamlSequenceNode items => [.. items.Children.Select((item, i) => (item, Text(item, $"{field}.on[{i}]")))],
                YamlScalarNode { Value: null or "" or "~" } => [],
                _ => [(onNode, Text(onNode, $"{field}.on"))],
            };
            var attempts = parts.TryGetValue("attempts", out var a) ? Text(a, $"{field}.attempts") : null;
            Dictionary<string, YamlNode>? memory = parts.TryGetValue("memory", out var m) ? Map(m, $"{field}.memory", RetryMemoryKeys) : null;
            var factor = memory?.TryGetValue("factor", out var f) == true ? Text(f, $"{field}.memory.factor") : null;
            var max = memory?.TryGetValue("max", out var x) == true ? Text(x, $"{field}.memory.max") : null;
            var check = RetryPolicies.Check(on?.Select(item => item.Text).ToArray(), attempts, factor, max, firstMemory);
            if (check.Policy is { } policy)
            {
                return policy;
            }

            var problem = check.Problem!;
            var at = problem.Field switch
            {
                "on" => on?.FirstOrDefault(item => Words(item.Text).Contains(problem.Value, StringComparer.OrdinalIgnoreCase)).Node ?? onNode,
                "attempts" => a,
                "memory.factor" => memory?.GetValueOrDefault("factor") ?? m,
                _ => memory?.GetValueOrDefault("max") ?? m,
            };
            throw new JobsFileException($"{At(at ?? node)}: {field}.{problem.Field}: {problem.Message}");
        }

        private static string[] Words(string text) => text.Split([',', ' ', '\t'], StringSplitOptions.RemoveEmptyEntries);

        private void Copy(Dictionary<string, YamlNode> parts, string key, IDictionary<string, IReadOnlyList<string>> target, string label)
        {
            if (!parts.TryGetValue(key, out var node))
            {
                return;
            }

            foreach (var (name, values) in Labels(node, $"{label}.placement.{key}"))
            {
                target[name] = values;
            }
        }
    }
}
