using System.Reflection;
using System.Runtime.Versioning;
using HybridBatch.Daemon.Hosting;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace HybridBatch.Integration.Packaging;

/// <summary>
/// The library, the simulated cluster's package and the tool packed once from this build into a folder feed, as <c>dotnet pack</c> makes them for a
/// user, and the tool installed from that feed into a tool path. Packing reuses the build the tests run from (no
/// rebuild) and gives the packages a version no other run uses, so NuGet's global packages folder never serves a
/// stale copy; that version's copies there, the feed and the tool are removed afterwards.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class PackagedFeed(IMessageSink diagnostics) : IAsyncLifetime
{
    /// <summary>The library's package id.</summary>
    public const string LibraryId = "HybridBatch";

    /// <summary>The simulated cluster's package id.</summary>
    public const string TestingId = "HybridBatch.Testing";

    /// <summary>The tool's package id (ids compare case-insensitively, so it cannot be the command's name).</summary>
    public const string ToolId = "HybridBatch.Cli";

    private static readonly TimeSpan CommandTimeout = TimeSpan.FromMinutes(5);

    private readonly DirectoryInfo _root = Directory.CreateTempSubdirectory("hybridbatch-packaging-");

    /// <summary>The checkout the tests were built from.</summary>
    public string RepositoryRoot { get; } = ClusterConnection.FindRepositoryRoot()
        ?? throw new InvalidOperationException($"No HybridBatch.sln above {AppContext.BaseDirectory}: the packaging tests pack the checkout.");

    /// <summary>The version both packages have in this run.</summary>
    public string Version { get; } = $"0.1.0-test.{Guid.NewGuid():N}";

    /// <summary>The folder feed holding the .nupkg and .snupkg files.</summary>
    public string Feed => Path.Combine(_root.FullName, "feed");

    /// <summary>The installed tool's command.</summary>
    public string Tool => Path.Combine(_root.FullName, "tool", "hybridbatch");

    /// <summary>A new empty folder outside the checkout that every user can enter (tests run the tool as nobody too).</summary>
    /// <param name="name">A name for the folder.</param>
    /// <returns>Its path.</returns>
    public string NewFolder(string name)
    {
        var folder = Directory.CreateDirectory(Path.Combine(_root.FullName, $"{name}-{Guid.NewGuid():N}"));
        File.SetUnixFileMode(folder.FullName, OpenToAll);
        return folder.FullName;
    }

    /// <inheritdoc />
    public async Task InitializeAsync()
    {
        File.SetUnixFileMode(_root.FullName, OpenToAll);
        var configuration = typeof(PackagedFeed).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Release";
        var src = Path.Combine(RepositoryRoot, "src");
        await DotnetAsync("pack", Path.Combine(src, "Shell.Cs", "Shell.Cs.csproj"), "-c", configuration, "--no-build", "-o", Feed, $"-p:Version={Version}");
        await DotnetAsync("pack", Path.Combine(src, "Testing.Cs", "Testing.Cs.csproj"), "-c", configuration, "--no-build", "-o", Feed, $"-p:Version={Version}");
        // The tool is packed from a publish of the build; a publish folder of its own keeps stale files out.
        await DotnetAsync("pack", Path.Combine(src, "Daemon.Cs", "Daemon.Cs.csproj"), "-c", configuration, "--no-build", "-o", Feed, $"-p:Version={Version}",
            $"-p:PublishDir={Path.Combine(_root.FullName, "publish")}/");
        await DotnetAsync("tool", "install", "--tool-path", Path.GetDirectoryName(Tool)!, "--add-source", Feed, ToolId, "--version", Version);
    }

    /// <inheritdoc />
    public Task DisposeAsync()
    {
        _root.Delete(recursive: true);
        var globalPackages = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } configured
            ? configured
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        foreach (var id in new[] { LibraryId, TestingId, ToolId })
        {
            var copy = new DirectoryInfo(Path.Combine(globalPackages, id.ToLowerInvariant(), Version));
            if (copy.Exists)
            {
                copy.Delete(recursive: true);
                if (!copy.Parent!.EnumerateFileSystemInfos().Any())
                {
                    copy.Parent.Delete();
                }
            }
        }

        return Task.CompletedTask;
    }

    /// <summary>The path of one package file in the feed.</summary>
    /// <param name="id">The package id.</param>
    /// <param name="extension">nupkg or snupkg.</param>
    /// <returns>Its path.</returns>
    public string Package(string id, string extension = "nupkg") => Path.Combine(Feed, $"{id}.{Version}.{extension}");

    private const UnixFileMode OpenToAll = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
        | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute;

    private Task<ChildResult> DotnetAsync(params string[] arguments) =>
        ChildProcess.DotnetAsync(_root.FullName, CommandTimeout, message => diagnostics.OnMessage(new DiagnosticMessage($"[packaging] {message}")), arguments);
}
