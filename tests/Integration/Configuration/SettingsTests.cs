using System.Collections;
using HybridBatch.Resilience;
using Microsoft.Extensions.Configuration;

namespace HybridBatch.Integration.Configuration;

/// <summary>The library's one list of settings and its binder: Toil's flags and variables, HybridBatch's, the configuration section.</summary>
public sealed class SettingsTests
{
    private static readonly Hashtable NoVariables = [];

    private static IConfiguration Configuration(params (string Key, string Value)[] values) =>
        new ConfigurationBuilder().AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>(v.Key, v.Value))).Build();

    [Fact]
    public void A_flag_wins_over_a_variable_which_wins_over_the_configuration()
    {
        var configuration = Configuration(("HybridBatch:MaxJobs", "1"));
        var variables = new Hashtable { ["HYBRIDBATCH_MAX_JOBS"] = "2" };

        Assert.Equal(1, KubernetesBatchSystemConfiguration.Bind(configuration).MaxJobs);
        Assert.Equal(2, KubernetesBatchSystemConfiguration.Bind(configuration, variables, []).MaxJobs);
        Assert.Equal(3, KubernetesBatchSystemConfiguration.FromArguments(["--maxJobs", "3"], variables).MaxJobs);
    }

    [Fact]
    public void Toils_variables_bind_and_HybridBatchs_own_win_over_them()
    {
        var toil = new Hashtable { ["TOIL_KUBERNETES_HOST_PATH"] = "/toil", ["TOIL_KUBERNETES_OWNER"] = "someone" };
        var options = KubernetesBatchSystemConfiguration.FromArguments([], toil);
        Assert.Equal(("/toil", "someone"), (options.HostPath, options.Owner));

        toil["HYBRIDBATCH_HOST_PATH"] = "/hybridbatch";
        Assert.Equal("/hybridbatch", KubernetesBatchSystemConfiguration.FromArguments([], toil).HostPath);
    }

    [Fact]
    public void Every_Toil_flag_of_the_README_binds_its_option()
    {
        var context = Path.GetTempFileName();
        var options = KubernetesBatchSystemConfiguration.FromArguments(
        [
            "--kubernetesHostPath", "/shared", "--kubernetesOwner=alice", "--kubernetesServiceAccount", "runner",
            "--kubernetesPodTimeout", "30", "--kubernetesPrivileged", "true", "--kubernetesPodSecurityContext", context,
            "--kubernetesSecurityContext", context, "--maxJobs", "7", "--maxCores", "2.5", "--maxMemory", "1000000000", "--maxDisk", "2001",
        ], NoVariables);
        File.Delete(context);

        Assert.Equal(
            ("/shared", "alice", "runner", TimeSpan.FromSeconds(30), true, context, context, 7, 2.5, 1_000_000_000L, 2001L),
            (options.HostPath, options.Owner, options.ServiceAccount, options.PodTimeout, options.Privileged, options.PodSecurityContext,
                options.SecurityContext, options.MaxJobs, options.MaxCores, options.MaxMemory, options.MaxDisk));
    }

    [Fact]
    public void Shared_paths_are_separated_by_colons_as_in_PATH()
    {
        Assert.Equal(["/data/jobstore", "/home/me/workflow"], KubernetesBatchSystemConfiguration.FromArguments(["--sharedPaths", "/data/jobstore:/home/me/workflow:"], NoVariables).SharedPaths);
        Assert.Equal(["/shared"], KubernetesBatchSystemConfiguration.FromArguments([], new Hashtable { ["HYBRIDBATCH_SHARED_PATHS"] = "/shared" }).SharedPaths);
        Assert.Empty(new KubernetesBatchSystemOptions().SharedPaths);
    }

    [Theory]
    [InlineData("90", 90_000)]
    [InlineData("1.5", 1_500)]
    [InlineData("-1", -1_000)]
    public void The_pod_timeout_is_given_in_seconds_as_in_Toil(string seconds, long milliseconds)
    {
        Assert.Equal(TimeSpan.FromMilliseconds(milliseconds), KubernetesBatchSystemConfiguration.FromArguments(["--kubernetesPodTimeout", seconds], NoVariables).PodTimeout);
        Assert.Equal(
            TimeSpan.FromMilliseconds(milliseconds),
            KubernetesBatchSystemConfiguration.FromArguments([], new Hashtable { ["TOIL_KUBERNETES_POD_TIMEOUT"] = seconds }).PodTimeout);
        Assert.Equal(TimeSpan.FromSeconds(120), new KubernetesBatchSystemOptions().PodTimeout);
    }

    [Theory]
    [InlineData("16Mi", 16L << 20)]
    [InlineData("1G", 1_000_000_000L)]
    [InlineData("1.5Gi", 3L << 29)]
    [InlineData("536870912", 512L << 20)]
    [InlineData("0", 0L)]
    public void The_resource_overhead_is_a_Kubernetes_quantity_from_a_flag_a_variable_or_a_key(string quantity, long bytes)
    {
        Assert.Equal(bytes, KubernetesBatchSystemConfiguration.FromArguments(["--resourceOverhead", quantity], NoVariables).ResourceOverhead);
        Assert.Equal(bytes, KubernetesBatchSystemConfiguration.FromArguments([], new Hashtable { ["HYBRIDBATCH_RESOURCE_OVERHEAD"] = quantity }).ResourceOverhead);
        Assert.Equal(bytes, KubernetesBatchSystemConfiguration.Bind(Configuration(("HybridBatch:ResourceOverhead", quantity))).ResourceOverhead);
    }

    [Theory]
    [InlineData("16MB")]
    [InlineData("-1Mi")]
    [InlineData("lots")]
    public void A_resource_overhead_that_is_not_an_amount_of_bytes_names_the_flag_and_the_value(string quantity)
    {
        var error = Assert.Throws<ArgumentException>(() => KubernetesBatchSystemConfiguration.FromArguments(["--resourceOverhead", quantity], NoVariables));
        Assert.Contains($"'{quantity}' is not a valid value for --resourceOverhead / HYBRIDBATCH_RESOURCE_OVERHEAD", error.Message);
        Assert.Contains("amount of bytes", error.Message);
    }

    [Theory]
    [InlineData("job", KubernetesObjectKind.Job)]
    [InlineData("pod", KubernetesObjectKind.Pod)]
    [InlineData("Pod", KubernetesObjectKind.Pod)]
    [InlineData("JOB", KubernetesObjectKind.Job)]
    public void The_object_kind_is_job_or_pod_in_any_case_from_a_flag_a_variable_or_a_key(string text, KubernetesObjectKind kind)
    {
        Assert.Equal(kind, KubernetesBatchSystemConfiguration.FromArguments(["--kubernetesObjectKind", text], NoVariables).ObjectKind);
        Assert.Equal(kind, KubernetesBatchSystemConfiguration.FromArguments([], new Hashtable { ["HYBRIDBATCH_OBJECT_KIND"] = text }).ObjectKind);
        Assert.Equal(kind, KubernetesBatchSystemConfiguration.Bind(Configuration(("HybridBatch:ObjectKind", text))).ObjectKind);
    }

    [Fact]
    public void The_object_kind_is_a_Job_by_default_as_in_Toil()
    {
        Assert.Equal(KubernetesObjectKind.Job, new KubernetesBatchSystemOptions().ObjectKind);
        Assert.Equal(KubernetesObjectKind.Job, KubernetesBatchSystemConfiguration.FromArguments([], NoVariables).ObjectKind);
        Assert.Equal("job", KubernetesBatchSystemConfiguration.Settings.Single(s => s.Key == nameof(KubernetesBatchSystemOptions.ObjectKind)).Default);
    }

    [Theory]
    [InlineData("deployment")]
    [InlineData("1")]
    [InlineData("")]
    [InlineData("job,pod")]
    public void An_unknown_object_kind_names_the_flag_the_value_and_the_kinds_there_are(string text)
    {
        var error = Assert.Throws<ArgumentException>(() => KubernetesBatchSystemConfiguration.FromArguments(["--kubernetesObjectKind", text], NoVariables));
        Assert.Contains($"'{text}' is not a valid value for --kubernetesObjectKind / HYBRIDBATCH_OBJECT_KIND / HybridBatch:ObjectKind", error.Message);
        Assert.Contains("one of: job, pod", error.Message);

        var variable = Assert.Throws<ArgumentException>(() => KubernetesBatchSystemConfiguration.FromArguments([], new Hashtable { ["HYBRIDBATCH_OBJECT_KIND"] = text }));
        Assert.Contains($"'{text}'", variable.Message);
        Assert.Contains("HYBRIDBATCH_OBJECT_KIND", variable.Message);
        var key = Assert.Throws<ArgumentException>(() => KubernetesBatchSystemConfiguration.Bind(Configuration(("HybridBatch:ObjectKind", text))));
        Assert.Contains("HybridBatch:ObjectKind", key.Message);
    }

    [Fact]
    public void A_workflow_engines_own_flags_and_arguments_are_left_alone()
    {
        var options = KubernetesBatchSystemConfiguration.FromArguments(
            ["file:jobstore", "--logLevel", "DEBUG", "--maxJobs=4", "--workDir", "/tmp", "--batchSystem", "kubernetes"], NoVariables);
        Assert.Equal(4, options.MaxJobs);
    }

    [Fact]
    public void A_flag_with_no_value_after_it_is_refused_naming_it()
    {
        var error = Assert.Throws<ArgumentException>(() => KubernetesBatchSystemConfiguration.FromArguments(["--maxJobs"], NoVariables));
        Assert.Contains("--maxJobs", error.Message);
    }

    [Fact]
    public void Each_setting_names_an_option_and_has_a_description_a_default_and_its_own_flag_variables_and_key()
    {
        var settings = KubernetesBatchSystemConfiguration.Settings;
        var properties = typeof(KubernetesBatchSystemOptions).GetProperties().Select(p => p.Name).ToHashSet();
        Assert.All(settings, s =>
        {
            Assert.Contains(s.Key, properties);
            Assert.False(string.IsNullOrWhiteSpace(s.Description), s.Key);
            Assert.False(string.IsNullOrWhiteSpace(s.Default), s.Key);
            Assert.Contains(s.EnvironmentVariables, v => v.StartsWith("HYBRIDBATCH_", StringComparison.Ordinal));
        });
        Assert.Equal(settings.Count, settings.Select(s => s.Key).Distinct().Count());
        Assert.Equal(settings.Count(s => s.Flag is not null), settings.Select(s => s.Flag).OfType<string>().Distinct().Count());
        Assert.Equal(settings.Sum(s => s.EnvironmentVariables.Count), settings.SelectMany(s => s.EnvironmentVariables).Distinct().Count());
        // Every option but the resilience section's is a setting.
        Assert.Equal(properties.Except([nameof(KubernetesBatchSystemOptions.Resilience)]).Order(), settings.Select(s => s.Key).Order());
    }

    [Fact]
    public void Defaults_in_help_come_from_the_options_themselves()
    {
        string Default(string key) => KubernetesBatchSystemConfiguration.Settings.Single(s => s.Key == key).Default;
        Assert.Equal("120", Default(nameof(KubernetesBatchSystemOptions.PodTimeout)));
        Assert.Equal("512Mi", Default(nameof(KubernetesBatchSystemOptions.ResourceOverhead)));
        Assert.Equal(KubernetesBatchSystemOptions.DefaultImage, Default(nameof(KubernetesBatchSystemOptions.Image)));
        Assert.Equal("false", Default(nameof(KubernetesBatchSystemOptions.Privileged)));
        Assert.Equal("job", Default(nameof(KubernetesBatchSystemOptions.ObjectKind)));
    }

    [Fact]
    public void The_client_has_one_request_rate_default_and_the_resilience_section_sets_it()
    {
        Assert.Equal(new KubernetesResilienceOptions(), new KubernetesBatchSystemOptions().Resilience);
        Assert.Equal((200.0, 400), (new KubernetesResilienceOptions().Qps, new KubernetesResilienceOptions().Burst));

        var options = KubernetesBatchSystemConfiguration.Bind(Configuration(("HybridBatch:Resilience:Qps", "50"), ("HybridBatch:Resilience:RetryBudget", "00:00:10")));
        Assert.Equal((50.0, 400, TimeSpan.FromSeconds(10)), (options.Resilience.Qps, options.Resilience.Burst, options.Resilience.RetryBudget));
    }

    [Fact]
    public void A_bad_resilience_setting_names_its_key()
    {
        var error = Assert.Throws<ArgumentException>(() => KubernetesBatchSystemConfiguration.Bind(Configuration(("HybridBatch:Resilience:Qps", "fast"))));
        Assert.Contains("HybridBatch:Resilience:Qps", error.Message);
    }
}
