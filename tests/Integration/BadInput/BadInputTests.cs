using HybridBatch.Integration.BatchSystem;
using HybridBatch.Integration.Cluster;
using k8s;
using Xunit.Abstractions;

namespace HybridBatch.Integration.BadInput;

/// <summary>
/// Every public entry point of the library given bad input: the error names the input and the fix, nothing is created
/// in the cluster, and the batch system still runs jobs afterwards.
/// </summary>
public sealed class BadInputTests(LocalClusterFixture cluster, ITestOutputHelper output) : IClassFixture<LocalClusterFixture>
{
    private static readonly string HugeCommand = new('x', 300 * 1024);

    /// <summary>Bad jobs: name of the row, the command, the job, its environment, the words the error must contain.</summary>
    public static TheoryData<string, string, JobDescription, Dictionary<string, string>?, string[]> BadJobs() => new()
    {
        { "negative cores", "true", TestJobs.Job(cores: -1), null, ["cores", "-1"] },
        { "NaN cores", "true", TestJobs.Job(cores: double.NaN), null, ["cores", "NaN"] },
        { "infinite cores", "true", TestJobs.Job(cores: double.PositiveInfinity), null, ["cores"] },
        { "absurd cores", "true", TestJobs.Job(cores: 1e9), null, ["cores", "maximum"] },
        { "negative memory", "true", TestJobs.Job(memory: -1), null, ["memory", "-1"] },
        { "absurd memory", "true", TestJobs.Job(memory: long.MaxValue), null, ["memory", "maximum"] },
        { "negative disk", "true", TestJobs.Job(disk: -5), null, ["disk", "-5"] },
        { "absurd disk", "true", TestJobs.Job(disk: long.MaxValue), null, ["disk", "maximum"] },
        { "zero accelerators", "true", TestJobs.Job() with { Accelerators = [new AcceleratorRequirement(0)] }, null, ["accelerator"] },
        { "an FPGA", "true", TestJobs.Job() with { Accelerators = [new AcceleratorRequirement(1, "fpga")] }, null, ["fpga"] },
        { "empty command", "", TestJobs.Job(), null, ["command is empty"] },
        { "blank command", " \t\n", TestJobs.Job(), null, ["command is empty"] },
        { "huge command", HugeCommand, TestJobs.Job(), null, ["command has 307200 characters", "256 KiB"] },
        { "environment name with a space", "true", TestJobs.Job(), new() { ["MY VAR"] = "1" }, ["'MY VAR'", "environment variable name"] },
        { "environment name with '='", "true", TestJobs.Job(), new() { ["A=B"] = "1" }, ["'A=B'", "environment variable name"] },
        { "environment name starting with a digit", "true", TestJobs.Job(), new() { ["1ABC"] = "1" }, ["'1ABC'", "not starting with a digit"] },
        { "empty environment name", "true", TestJobs.Job(), new() { [""] = "1" }, ["''", "environment variable name"] },
        { "empty image", "true", TestJobs.Job() with { Image = "" }, null, ["image", "busybox"] },
        { "image with spaces", "true", TestJobs.Job() with { Image = "busy box" }, null, ["'busy box'", "image"] },
        { "label key with a space", "true", Placed(p => p.RequiredLabels["bad key"] = ["x"]), null, ["bad key"] },
        { "label key with an upper-case prefix", "true", Placed(p => p.DesiredLabels["Example.COM/zone"] = ["x"]), null, ["Example.COM/zone"] },
        { "label key of 64 characters", "true", Placed(p => p.ProhibitedLabels[new string('k', 64)] = []), null, [new string('k', 64)] },
        { "label value with a slash", "true", Placed(p => p.RequiredLabels["zone"] = ["a/b"]), null, ["a/b"] },
        { "label value of 64 characters", "true", Placed(p => p.RequiredLabels["zone"] = [new string('v', 64)]), null, [new string('v', 64)] },
        { "taint key with a colon", "true", Placed(p => p.ToleratedTaints["dedicated:x"] = []), null, ["dedicated:x"] },
    };

    private static JobDescription Placed(Action<Placement> place)
    {
        var placement = new Placement();
        place(placement);
        return TestJobs.Job() with { Placement = placement };
    }

    [Theory]
    [MemberData(nameof(BadJobs))]
    public async Task A_bad_job_is_refused_with_a_clear_error_creates_nothing_and_the_system_still_runs_jobs(
        string row, string command, JobDescription job, Dictionary<string, string>? environment, string[] mentions)
    {
        var system = await KubernetesBatchSystem.CreateAsync(Batch.Options(cluster), Batch.Logging(output));
        try
        {
            var error = await Assert.ThrowsAnyAsync<Exception>(() => system.IssueBatchJobAsync(command, job, environment));
            output.WriteLine($"[{row}] {error.GetType().Name}: {error.Message}");
            Assert.True(error is ArgumentException or InsufficientSystemResourcesException, error.ToString());
            foreach (var word in mentions)
            {
                Assert.Contains(word, error.Message, StringComparison.OrdinalIgnoreCase);
            }

            await AssertStillUsableAsync(system);
        }
        finally
        {
            await system.ShutdownAsync();
            await system.DisposeAsync();
        }
    }

    [Theory]
    [InlineData(-1.0, 100_000_000L, 1000L, "cores")]
    [InlineData(double.NaN, 100_000_000L, 1000L, "cores")]
    [InlineData(3.0, 100_000_000L, 1000L, "cores")]
    [InlineData(1.0, -1L, 1000L, "memory")]
    [InlineData(1.0, 2_000_000_000L, 1000L, "memory")]
    [InlineData(1.0, 100_000_000L, -1L, "disk")]
    [InlineData(1.0, 100_000_000L, 5000L, "disk")]
    public async Task CheckResourceRequest_names_the_resource_and_the_limit(double cores, long memory, long disk, string resource)
    {
        var system = await KubernetesBatchSystem.CreateAsync(Batch.Options(cluster), Batch.Logging(output));
        try
        {
            var error = Assert.ThrowsAny<Exception>(() => system.CheckResourceRequest(TestJobs.Job("checked", cores, memory, disk)));
            output.WriteLine($"[{resource} {cores}/{memory}/{disk}] {error.GetType().Name}: {error.Message}");
            Assert.Contains(resource, error.Message, StringComparison.OrdinalIgnoreCase);
            if (error is InsufficientSystemResourcesException lack)
            {
                Assert.Equal(resource, lack.Resource);
                Assert.Contains("maximum", error.Message, StringComparison.OrdinalIgnoreCase);
            }
            else
            {
                Assert.IsType<ArgumentException>(error);
            }

            Assert.Empty(await Batch.JobsOfRunAsync(cluster, system.RunId));
        }
        finally
        {
            await system.ShutdownAsync();
            await system.DisposeAsync();
        }
    }

    [Theory]
    [InlineData("", "''")]
    [InlineData("1X", "'1X'")]
    [InlineData("A=B", "'A=B'")]
    [InlineData("A B", "'A B'")]
    [InlineData("HYBRIDBATCH_SURELY_UNSET_VARIABLE", "pass a value")]
    public async Task SetEnv_refuses_a_bad_name_and_the_next_job_still_runs(string name, string mention)
    {
        var system = await KubernetesBatchSystem.CreateAsync(Batch.Options(cluster), Batch.Logging(output));
        try
        {
            var error = Assert.Throws<ArgumentException>(() => system.SetEnv(name, name.Contains('_') ? null : "value"));
            output.WriteLine($"[SetEnv '{name}'] {error.Message}");
            Assert.Contains(mention, error.Message);
            await AssertStillUsableAsync(system);
        }
        finally
        {
            await system.ShutdownAsync();
            await system.DisposeAsync();
        }
    }

    [Fact]
    public async Task Killing_unknown_ids_is_ignored_and_touches_no_running_job()
    {
        var system = await KubernetesBatchSystem.CreateAsync(Batch.Options(cluster), Batch.Logging(output));
        try
        {
            var sleeper = await system.IssueBatchJobAsync("sleep 5", TestJobs.Job("sleeper"));
            await system.KillBatchJobsAsync([-1, 0, sleeper + 1, 999_999, int.MaxValue]);
            Assert.Equal([sleeper], await system.GetIssuedBatchJobIdsAsync());
            var info = await Batch.NextAsync(system);
            Assert.Equal((sleeper, 0, BatchJobExitReason.Finished), (info.JobId, info.ExitStatus, info.ExitReason));
            Assert.Null(system.GetFailureLog("no-such-job"));
            await AssertStillUsableAsync(system);
        }
        finally
        {
            await system.ShutdownAsync();
            await system.DisposeAsync();
        }
    }

    /// <summary>Bad options: the row's name, the change, the words the problem must contain.</summary>
    public static TheoryData<string, Func<KubernetesBatchSystemOptions, KubernetesBatchSystemOptions>, string[]> BadOptions() => new()
    {
        { "zero pod timeout", o => o with { PodTimeout = TimeSpan.Zero }, ["pod timeout", "--kubernetesPodTimeout"] },
        { "negative pod timeout", o => o with { PodTimeout = TimeSpan.FromSeconds(-1) }, ["pod timeout", "--kubernetesPodTimeout"] },
        { "zero maxJobs", o => o with { MaxJobs = 0 }, ["--maxJobs", "at least 1"] },
        { "NaN maxCores", o => o with { MaxCores = double.NaN }, ["--maxCores", "positive"] },
        { "infinite maxCores", o => o with { MaxCores = double.PositiveInfinity }, ["--maxCores", "positive"] },
        { "zero maxMemory", o => o with { MaxMemory = 0 }, ["--maxMemory", "positive"] },
        { "negative maxDisk", o => o with { MaxDisk = -1 }, ["--maxDisk", "positive"] },
        { "negative overhead", o => o with { ResourceOverhead = -1 }, ["overhead", "zero or more"] },
        { "empty image", o => o with { Image = " " }, ["image", "busybox"] },
        { "run id that is not a label", o => o with { RunId = "Not A Label!" }, ["run id", "Not A Label!"] },
        { "run id of 64 characters", o => o with { RunId = new string('r', 64) }, ["run id"] },
        { "relative host path", o => o with { HostPath = "tmp/x" }, ["host path", "'/'"] },
        { "relative shared path", o => o with { SharedPaths = ["/data", "jobstore"] }, ["shared path", "'jobstore'", "'/'"] },
        { "the root as a shared path", o => o with { SharedPaths = ["/"] }, ["shared path", "root"] },
        { "a shared path with '..'", o => o with { SharedPaths = ["/data/../etc"] }, ["shared path", "'..'"] },
        { "a shared path over TMPDIR's scratch volume", o => o with { SharedPaths = ["/var"] }, ["shared path", "/var/tmp"] },
        { "a shared path in the work directory", o => o with { SharedPaths = ["/var/lib/hybridbatch/store"] }, ["shared path", "/var/lib/hybridbatch"] },
        { "a shared path given twice", o => o with { SharedPaths = ["/data", "/data"] }, ["shared path", "twice"] },
        { "a shared path given twice, once with a trailing '/'", o => o with { SharedPaths = ["/data", "/data/"] }, ["shared path", "twice"] },
        { "relative work directory", o => o with { WorkDir = "work" }, ["work directory", "'/'"] },
        { "work directory where TMPDIR's scratch volume is", o => o with { WorkDir = "/var/tmp/" }, ["work directory", "/var/tmp"] },
        { "negative finished-job TTL", o => o with { FinishedJobTtl = TimeSpan.FromSeconds(-1) }, ["TTL", "zero or more"] },
        { "no creates in flight", o => o with { MaxCreatesInFlight = 0 }, ["creates in flight", "at least 1"] },
        { "missing security context file", o => o with { SecurityContext = "/nonexistent/sc.yaml" }, ["/nonexistent/sc.yaml", "YAML"] },
        { "namespace that is not a DNS label", o => o with { Namespace = "Bad_Namespace" }, ["Bad_Namespace", "namespace"] },
        { "negative user id", o => o with { RunAsUser = -5 }, ["user id", "-5"] },
        { "an object kind that is neither job nor pod", o => o with { ObjectKind = (KubernetesObjectKind)7 }, ["object kind", "7", "one of: job, pod", "--kubernetesObjectKind"] },
    };

    [Theory]
    [MemberData(nameof(BadOptions))]
    public async Task Invalid_options_are_refused_before_anything_is_created(string row, Func<KubernetesBatchSystemOptions, KubernetesBatchSystemOptions> change, string[] mentions)
    {
        var runId = "badopt-" + Guid.NewGuid().ToString("N")[..8];
        var options = Batch.Options(cluster, o => change(o with { RunId = runId }));
        var problems = options.Validate();
        output.WriteLine($"[{row}] Validate: {string.Join(" | ", problems)}");
        Assert.NotEmpty(problems);

        var error = await Assert.ThrowsAsync<ArgumentException>(() => KubernetesBatchSystem.CreateAsync(options, Batch.Logging(output)));
        output.WriteLine($"[{row}] CreateAsync: {error.Message}");
        foreach (var word in mentions)
        {
            Assert.Contains(word, error.Message, StringComparison.OrdinalIgnoreCase);
        }

        Assert.Empty(await Batch.JobsOfRunAsync(cluster, runId));
        Assert.Empty(await Batch.PodsOfRunAsync(cluster, runId));
    }

    [Theory]
    [InlineData(new[] { "--maxCores", "lots" }, "--maxCores", "lots")]
    [InlineData(new[] { "--maxJobs=1.5" }, "--maxJobs", "1.5")]
    [InlineData(new[] { "--maxMemory", "10G" }, "--maxMemory", "10G")]
    [InlineData(new[] { "--kubernetesPodTimeout", "soon" }, "--kubernetesPodTimeout", "soon")]
    [InlineData(new[] { "--kubernetesPodTimeout=NaN" }, "--kubernetesPodTimeout", "NaN")]
    [InlineData(new[] { "--kubernetesPrivileged", "maybe" }, "--kubernetesPrivileged", "maybe")]
    public void Malformed_flags_name_the_flag_and_the_value(string[] args, string flag, string value)
    {
        var error = Assert.Throws<ArgumentException>(() => KubernetesBatchSystemConfiguration.FromArguments(args, new Dictionary<string, string>()));
        output.WriteLine($"[{string.Join(' ', args)}] {error.Message}");
        Assert.Contains(flag, error.Message);
        Assert.Contains($"'{value}'", error.Message);
    }

    [Theory]
    [InlineData("TOIL_KUBERNETES_POD_TIMEOUT", "two minutes")]
    [InlineData("HYBRIDBATCH_MAX_JOBS", "-")]
    public void Malformed_environment_variables_name_the_variable(string variable, string value)
    {
        var error = Assert.Throws<ArgumentException>(() =>
            KubernetesBatchSystemConfiguration.FromArguments([], new Dictionary<string, string> { [variable] = value }));
        output.WriteLine($"[{variable}={value}] {error.Message}");
        Assert.Contains(variable, error.Message);
        Assert.Contains($"'{value}'", error.Message);
    }

    [Fact]
    public async Task A_kubeconfig_that_is_missing_garbage_or_names_an_unknown_context_is_a_clear_error()
    {
        var runId = "badcfg-" + Guid.NewGuid().ToString("N")[..8];
        var missing = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            KubernetesBatchSystem.CreateAsync(Batch.Options(cluster, o => o with { Kubeconfig = "/nonexistent/kubeconfig", RunId = runId })));
        output.WriteLine($"[missing kubeconfig] {missing.Message}");
        Assert.Contains("/nonexistent/kubeconfig", missing.Message);
        Assert.Contains("does not exist", missing.Message);

        var garbage = Path.GetTempFileName();
        await File.WriteAllTextAsync(garbage, "this: [is not a kubeconfig");
        var bad = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            KubernetesBatchSystem.CreateAsync(Batch.Options(cluster, o => o with { Kubeconfig = garbage, RunId = runId })));
        output.WriteLine($"[garbage kubeconfig] {bad.Message}");
        Assert.Contains(garbage, bad.Message);
        Assert.Contains("cannot be used", bad.Message);
        File.Delete(garbage);

        var context = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            KubernetesBatchSystem.CreateAsync(Batch.Options(cluster, o => o with { Context = "no-such-context", RunId = runId })));
        output.WriteLine($"[unknown context] {context.Message}");
        Assert.Contains("no-such-context", context.Message);

        Assert.Empty(await Batch.JobsOfRunAsync(cluster, runId));
    }

    [Fact]
    public async Task An_unreachable_cluster_is_a_clear_error_naming_the_address()
    {
        var runId = "unreach-" + Guid.NewGuid().ToString("N")[..8];
        var unreachable = await KubeconfigAsync(c => System.Text.RegularExpressions.Regex.Replace(c, @"server: \S+", "server: https://127.0.0.1:1"));
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            KubernetesBatchSystem.CreateAsync(Batch.Options(cluster, o => o with
            {
                Kubeconfig = unreachable,
                RunId = runId,
                Resilience = o.Resilience with { RetryBudget = TimeSpan.FromSeconds(3) },
            })));
        output.WriteLine($"[unreachable] {error.Message}");
        Assert.Contains("127.0.0.1:1", error.Message);
        Assert.Contains("cluster/local-cluster up", error.Message);
        Assert.Empty(await Batch.JobsOfRunAsync(cluster, runId));
    }

    [Fact]
    public async Task A_bogus_token_is_a_clear_401_error()
    {
        var runId = "badtoken-" + Guid.NewGuid().ToString("N")[..8];
        var bogus = await KubeconfigAsync(c => System.Text.RegularExpressions.Regex.Replace(c, @"token: \S+", "token: bogus-token-for-a-test"));
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            KubernetesBatchSystem.CreateAsync(Batch.Options(cluster, o => o with { Kubeconfig = bogus, RunId = runId }), Batch.Logging(output)));
        output.WriteLine($"[bogus token] {error.Message}");
        Assert.Contains("401", error.Message);
        Assert.Contains("refresh the kubeconfig", error.Message);
        Assert.DoesNotContain("bogus-token-for-a-test", error.ToString());
        Assert.Empty(await Batch.JobsOfRunAsync(cluster, runId));
        await AssertStillUsableAsync();
    }

    [Fact]
    public async Task A_namespace_the_identity_may_not_use_is_a_clear_403_error_naming_the_missing_rule()
    {
        var runId = "forbid-" + Guid.NewGuid().ToString("N")[..8];
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            KubernetesBatchSystem.CreateAsync(Batch.Options(cluster, o => o with { Namespace = cluster.OtherNamespace, RunId = runId }), Batch.Logging(output)));
        output.WriteLine($"[forbidden namespace] {error.Message}");
        Assert.Contains("403", error.Message);
        Assert.Contains(cluster.OtherNamespace, error.Message);
        Assert.Contains("grant", error.Message);
        await AssertStillUsableAsync();
    }

    [Fact]
    public async Task A_service_account_without_a_role_is_a_clear_403_error()
    {
        using var admin = Admin.Client();
        var name = "hb-norole-" + Guid.NewGuid().ToString("N")[..6];
        var runId = "norole-" + Guid.NewGuid().ToString("N")[..8];
        try
        {
            var token = await Admin.ServiceAccountTokenAsync(admin, cluster.Namespace, name);
            var kubeconfig = await KubeconfigAsync(c => System.Text.RegularExpressions.Regex.Replace(c, @"token: \S+", "token: " + token));
            var error = await Assert.ThrowsAsync<InvalidOperationException>(() =>
                KubernetesBatchSystem.CreateAsync(Batch.Options(cluster, o => o with { Kubeconfig = kubeconfig, RunId = runId }), Batch.Logging(output)));
            output.WriteLine($"[service account without a role] {error.Message}");
            Assert.Contains("403", error.Message);
            Assert.Contains("list", error.Message);
            Assert.Contains("jobs", error.Message);
            Assert.DoesNotContain(token, error.ToString());
            Assert.Empty(await Batch.JobsOfRunAsync(cluster, runId));
        }
        finally
        {
            await admin.CoreV1.DeleteNamespacedServiceAccountAsync(name, cluster.Namespace);
        }

        await AssertStillUsableAsync();
    }

    private async Task<string> KubeconfigAsync(Func<string, string> change)
    {
        var path = Path.Combine(Path.GetTempPath(), $"hb-badinput-{Guid.NewGuid():N}.kubeconfig");
        await File.WriteAllTextAsync(path, change(await File.ReadAllTextAsync(cluster.KubeconfigPath)));
        return path;
    }

    private async Task AssertStillUsableAsync()
    {
        var system = await KubernetesBatchSystem.CreateAsync(Batch.Options(cluster), Batch.Logging(output));
        try
        {
            await AssertStillUsableAsync(system);
        }
        finally
        {
            await system.ShutdownAsync();
            await system.DisposeAsync();
        }
    }

    private async Task AssertStillUsableAsync(KubernetesBatchSystem system)
    {
        // Nothing was left by the bad call (a collected job's Job is deleted in the background, hence the wait);
        // the next good job runs and is reported.
        Assert.True(
            await Batch.EventuallyAsync(async () => (await Batch.JobsOfRunAsync(cluster, system.RunId)).Count == 0, TimeSpan.FromSeconds(10)),
            "the bad input left a Job in the cluster");
        var id = await system.IssueBatchJobAsync("true", TestJobs.Job("after-bad-input"));
        var info = await Batch.NextAsync(system);
        Assert.Equal((id, 0, BatchJobExitReason.Finished), (info.JobId, info.ExitStatus, info.ExitReason));
        Assert.Empty(await system.GetIssuedBatchJobIdsAsync());
    }
}
