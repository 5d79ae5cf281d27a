using System.Diagnostics;
using System.Runtime.Versioning;

namespace HybridBatch.Integration.Cluster;

/// <summary>
/// The local cluster's install steps on a machine that has never run them: apt with no package lists and no deb-src
/// entry. A throw-away apt state (its own lists, sources and cache, through <c>APT_CONFIG</c>) stands in for the new
/// machine, so the machine's own apt state is never touched; the package step is a dry run that resolves every package
/// as if none were installed.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class InstallTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("hybridbatch-apt-").FullName;

    public InstallTests()
    {
        // apt downloads as the _apt user.
        File.SetUnixFileMode(_root, (UnixFileMode)0b111_101_101);
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public async Task From_an_empty_apt_state_the_install_steps_reach_a_resolved_Kubernetes_source_version()
    {
        RequireApt();

        // The machine's binary sources, as a new Debian machine has them: no deb-src stanza.
        var config = ThrowAwayAptState(Directory.GetFiles("/etc/apt/sources.list.d", "*.sources")
            .Select(f => (Path.GetFileName(f), BinaryStanzas(File.ReadAllText(f))))
            .Where(s => s.Item2.Length > 0));

        var (code, stdout, stderr) = await SourceVersionAsync(config);

        Assert.True(code == 0, $"exit {code}:\n{stderr}");
        Assert.Matches(@"^1\.20\.\S+$", stdout.Trim());
        Assert.Contains("apt-get update", stderr, StringComparison.Ordinal);
        Assert.Contains("adding a deb-src entry", stderr, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(_root, "sources.list.d", "hybridbatch-deb-src.sources")), "the deb-src entry went elsewhere");
        Assert.NotEmpty(Directory.GetFiles(Path.Combine(_root, "lists"), "*Sources*"));
    }

    [Fact]
    public async Task A_failing_install_step_names_the_command_and_shows_its_own_error()
    {
        RequireApt();

        // A source nothing listens at: apt-get update fails with its own words, which must reach the user.
        var config = ThrowAwayAptState([("unreachable.sources",
            "Types: deb\nURIs: http://127.0.0.1:9/debian\nSuites: bookworm\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n")]);

        var (code, stdout, stderr) = await SourceVersionAsync(config);

        Assert.NotEqual(0, code);
        Assert.Equal("", stdout.Trim());
        Assert.Contains("apt-get update failed", stderr, StringComparison.Ordinal);
        Assert.Contains("127.0.0.1", stderr, StringComparison.Ordinal);
    }

    // The local cluster installs with apt as root; so does this test of its install steps.
    private static void RequireApt()
    {
        Assert.True(Environment.UserName == "root", "the install steps need root, as the local cluster's install does");
        Assert.True(File.Exists("/usr/bin/apt-get"), "the install steps need apt (Debian)");
    }

    private static string BinaryStanzas(string sources) =>
        string.Join("\n\n", sources.Split("\n\n", StringSplitOptions.RemoveEmptyEntries)
            .Where(stanza => stanza.Split('\n').Any(l => l.StartsWith("Types:", StringComparison.Ordinal) && l.Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Contains("deb")))
            .Select(stanza => string.Join('\n', stanza.Split('\n').Select(l => l.StartsWith("Types:", StringComparison.Ordinal) ? "Types: deb" : l))));

    private string ThrowAwayAptState(IEnumerable<(string Name, string Content)> sources)
    {
        foreach (var dir in new[] { "lists/partial", "sources.list.d", "cache/archives/partial" })
        {
            Directory.CreateDirectory(Path.Combine(_root, dir));
        }

        foreach (var (name, content) in sources)
        {
            File.WriteAllText(Path.Combine(_root, "sources.list.d", name), content);
        }

        File.WriteAllText(Path.Combine(_root, "sources.list"), "");
        var config = Path.Combine(_root, "apt.conf");
        File.WriteAllText(config, $"""
            Dir::State::lists "{_root}/lists";
            Dir::Etc::sourcelist "{_root}/sources.list";
            Dir::Etc::sourceparts "{_root}/sources.list.d";
            Dir::Cache "{_root}/cache";
            Dir::Cache::pkgcache "";
            Dir::Cache::srcpkgcache "";
            """);
        return config;
    }

    private async Task<(int Code, string Stdout, string Stderr)> SourceVersionAsync(string aptConfig)
    {
        var start = new ProcessStartInfo(Admin.Script, "source-version")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.Environment["APT_CONFIG"] = aptConfig;
        start.Environment["HYBRIDBATCH_APT_SIMULATE"] = "1";
        // The apt log goes to the cache; keep it in the throw-away folder too.
        start.Environment["XDG_CACHE_HOME"] = Path.Combine(_root, "xdg-cache");
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout, await stderr);
    }
}
