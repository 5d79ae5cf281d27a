namespace HybridBatch.Daemon.Tes;

/// <summary>Settings of the TES service: the <c>Tes</c> section (<c>HYBRIDBATCH_TES__*</c>), under the flags of <c>serve</c>.</summary>
internal sealed record TesOptions
{
    /// <summary>The configuration section.</summary>
    public const string SectionName = "Tes";

    /// <summary>Where the task database and, unless a host path is configured, the tasks' work directories live.</summary>
    public string DataDirectory { get; init; } = Path.Combine(
        Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.DoNotVerify) is { Length: > 0 } data
            ? data
            : Path.GetTempPath(),
        "hybridbatch");

    /// <summary>The bearer token clients must present; null or empty: no authentication.</summary>
    public string? Token { get; init; }

    /// <summary>The largest request body accepted, in bytes.</summary>
    public long MaxRequestBytes { get; init; } = 1024 * 1024;

    /// <summary>Cores a task gets when its resources do not say.</summary>
    public double DefaultCores { get; init; } = 0.1;

    /// <summary>Memory in bytes a task gets when its resources do not say.</summary>
    public long DefaultMemory { get; init; } = 128L * 1024 * 1024;

    /// <summary>Disk in bytes a task gets when its resources do not say.</summary>
    public long DefaultDisk { get; init; } = 128L * 1024 * 1024;

    /// <summary>The page size of a list request that gives none.</summary>
    public int DefaultPageSize { get; init; } = 256;

    /// <summary>The task database file.</summary>
    public string DatabasePath => Path.Combine(DataDirectory, "tes.db");
}
