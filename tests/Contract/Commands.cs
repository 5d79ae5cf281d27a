namespace HybridBatch.Contract;

/// <summary>
/// The commands the contract suites run. The real cluster runs them in busybox; the simulated cluster scripts each as
/// the pod behaviour it stands for, so a suite uses none but these.
/// </summary>
public static class Commands
{
    /// <summary>Exits 23 when <c>FOO</c> is <c>bar</c>, else 42 (Toil's test of environment variables).</summary>
    public const string ExitByFoo = "if [ \"x${FOO}\" = \"xbar\" ] ; then exit 23 ; else exit 42 ; fi";

    /// <summary>Fills memory until the container is OOM-killed: tail keeps its last lines, and /dev/zero is one endless line.</summary>
    public const string OverMemory = "head -c 200000000 /dev/zero | tail >/dev/null";

    /// <summary>Runs 600 s, and ends at once (143) on SIGTERM, so a deleted or evicted pod goes without its grace period.</summary>
    public const string UntilStopped = "trap 'exit 143' TERM; sleep 600 & wait";

    /// <summary>Exits 0 after making a temporary directory (as Toil's test).</summary>
    public const string MakeTemporaryDirectory = "mktemp -d";

    /// <summary>An image no registry has.</summary>
    public const string MissingImage = "registry.invalid/hybridbatch/missing:1";

    /// <summary>Exits with <paramref name="code"/> at once.</summary>
    /// <param name="code">0 to 255.</param>
    /// <returns>The command.</returns>
    public static string Exit(int code) => code == 0 ? "true" : $"exit {code}";

    /// <summary>Sleeps <paramref name="seconds"/> and exits 0.</summary>
    /// <param name="seconds">How long.</param>
    /// <returns>The command.</returns>
    public static string Sleep(int seconds) => $"sleep {seconds}";
}

/// <summary>The suites' job descriptions and options.</summary>
public static class TestJobs
{
    /// <summary>
    /// Toil's default test job (100 MB, 1000 bytes of disk) with a tenth of a core instead of one: the local node has two
    /// cores, so two of Toil's 1-core jobs could only run at once while no other pod on the node asked for any CPU, and
    /// whether they did would depend on what else runs there.
    /// </summary>
    /// <param name="name">The job's name.</param>
    /// <param name="cores">Cores.</param>
    /// <param name="memory">Bytes of memory.</param>
    /// <param name="disk">Bytes of disk.</param>
    /// <returns>The description.</returns>
    public static JobDescription Job(string name = "test", double cores = 0.1, long memory = 100_000_000, long disk = 1000) =>
        new(name, cores, memory, disk);

    /// <summary>
    /// Toil's test maxima (2 cores, 1e9 bytes, 2001 bytes of disk), and 16 MiB of overhead a pod: on the small local node
    /// Toil's 512 MiB would let only a few test pods fit at once.
    /// </summary>
    /// <param name="options">The options.</param>
    /// <returns>The options with the maxima.</returns>
    public static KubernetesBatchSystemOptions WithToilMaxima(KubernetesBatchSystemOptions options) => options with
    {
        MaxCores = 2,
        MaxMemory = 1_000_000_000,
        MaxDisk = 2001,
        ResourceOverhead = 16L * 1024 * 1024,
    };

    /// <summary>Accepts jobs larger than any node (10,000 cores) and fails stuck ones after 5 s.</summary>
    /// <param name="options">The options.</param>
    /// <returns>The options for huge jobs.</returns>
    public static KubernetesBatchSystemOptions ForHugeJobs(KubernetesBatchSystemOptions options) => options with
    {
        PodTimeout = TimeSpan.FromSeconds(5),
        MaxCores = 10_000,
    };
}
