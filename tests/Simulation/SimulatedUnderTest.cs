using System.Globalization;
using System.Text.RegularExpressions;
using HybridBatch.Contract;
using HybridBatch.Testing;
using Xunit.Abstractions;

namespace HybridBatch.Simulation.Tests;

/// <summary>
/// The simulated cluster under the contract suites: one node the size of the local cluster's, each of the suites'
/// <see cref="Commands"/> scripted as the pod behaviour it stands for, time virtual.
/// </summary>
/// <remarks>
/// The contract tests that stay in tests/Integration, and why the simulated cluster cannot run them:
/// <list type="bullet">
/// <item>the run's work directory removed from a node: the simulated cluster counts node cleanups, it has no disks;</item>
/// <item>admission refusing a pod (a LimitRange): the simulated API refuses creates only as 429, 503 or a quota's 403;</item>
/// <item>an evicted Job's pod run again by the Job controller: jobs run as bare pods, there is no Job controller;</item>
/// <item>an unreachable cluster or a bad kubeconfig: the simulated cluster is an object, never reached over a network.</item>
/// </list>
/// </remarks>
/// <param name="output">The test's output.</param>
internal sealed partial class SimulatedUnderTest(ITestOutputHelper output) : IClusterUnderTest
{
    private readonly SimulatedCluster _cluster = new(
        new SimulatedClusterOptions { Seed = 16, Behaviour = BehaviourOf },
        new SimulatedNode("node-1", 2, 8L << 30, 100L << 30));

    /// <inheritdoc/>
    public TimeSpan Patience => TimeSpan.FromSeconds(180);

    /// <summary>The 500: the simulator runs them in virtual time.</summary>
    public int ManyJobs => 500;

    /// <inheritdoc/>
    public DateTimeOffset Now => _cluster.Now;

    /// <inheritdoc/>
    public async Task<IBatchSystem> StartAsync(Func<KubernetesBatchSystemOptions, KubernetesBatchSystemOptions>? change = null)
    {
        var options = TestJobs.WithToilMaxima(new KubernetesBatchSystemOptions { ObjectKind = KubernetesObjectKind.Pod });
        return await SimulatedBatchSystem.CreateAsync(_cluster, change is null ? options : change(options));
    }

    /// <inheritdoc/>
    public Task PauseAsync(TimeSpan duration) => _cluster.AdvanceAsync(duration);

    /// <inheritdoc/>
    public Task<IReadOnlyList<ClusterObject>> ObjectsOfRunAsync(string runId) => PodsOfRunAsync(runId);

    /// <inheritdoc/>
    public Task<IReadOnlyList<ClusterObject>> PodsOfRunAsync(string runId) =>
        Task.FromResult<IReadOnlyList<ClusterObject>>([.. _cluster.PodsOf(runId).Select(p => new ClusterObject(p.Name, p.JobId, p.Phase, Deleting: false))]);

    /// <inheritdoc/>
    public Task DeleteFromOutsideAsync(string runId, int jobId)
    {
        _cluster.DeletePod(jobId);
        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    public Task EvictAsync(string runId, int jobId)
    {
        _cluster.EvictPod(jobId);
        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    public void Log(string line) => output.WriteLine(line);

    /// <summary>What each of the suites' commands does, as busybox would run it; a command the suites do not use is refused.</summary>
    private static PodBehaviour BehaviourOf(SimulatedJob job)
    {
        if (job.Image == Commands.MissingImage)
        {
            return new PodBehaviour { ImageMissing = true };
        }

        var second = TimeSpan.FromSeconds(1);
        return job.Command switch
        {
            Commands.ExitByFoo => PodBehaviour.Exits(job.Environment.Any(e => e is { Key: "FOO", Value: "bar" }) ? 23 : 42, second),
            Commands.OverMemory => new PodBehaviour { MemoryUsed = 200_000_000 },
            Commands.UntilStopped => PodBehaviour.Exits(0, TimeSpan.FromSeconds(600)),
            Commands.MakeTemporaryDirectory or "true" => PodBehaviour.Exits(0, second),
            _ when ExitCommand().Match(job.Command) is { Success: true } exit => PodBehaviour.Exits(Number(exit), second),
            _ when SleepCommand().Match(job.Command) is { Success: true } sleep => PodBehaviour.Exits(0, TimeSpan.FromSeconds(Number(sleep))),
            _ => throw new ArgumentException($"The simulated cluster has no script for the command '{job.Command}': use one of Commands."),
        };
    }

    private static int Number(Match match) => int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);

    [GeneratedRegex("^exit ([0-9]+)$")]
    private static partial Regex ExitCommand();

    [GeneratedRegex("^sleep ([0-9]+)$")]
    private static partial Regex SleepCommand();
}

/// <summary>Toil's translated tests (<see cref="ToilContract"/>) on the simulated cluster.</summary>
public sealed class ToilContractTests(ITestOutputHelper output) : ToilContract(new SimulatedUnderTest(output));

/// <summary>The behaviour suite (<see cref="BehaviourContract"/>) on the simulated cluster.</summary>
public sealed class BehaviourTests(ITestOutputHelper output) : BehaviourContract(new SimulatedUnderTest(output));

/// <summary>The stuck-and-lost suite (<see cref="StuckAndLostContract"/>) on the simulated cluster.</summary>
public sealed class StuckAndLostTests(ITestOutputHelper output) : StuckAndLostContract(new SimulatedUnderTest(output));
