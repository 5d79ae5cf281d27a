namespace HybridBatch.Core

/// The limits of the local pool: jobs wait in the local queue while issuing them would exceed any of these.
type PoolLimits =
    { maxJobs: int
      maxMillicores: int64
      maxMemory: int64
      maxDisk: int64 }

/// Resources the pool has handed out.
type PoolUsage =
    { jobs: int
      millicores: int64
      memory: int64
      disk: int64 }

/// The local pool's accounting: what the jobs issued to Kubernetes hold, against the limits.
[<RequireQualifiedAccess>]
module Pool =

    /// Nothing handed out.
    let empty: PoolUsage =
        { jobs = 0
          millicores = 0L
          memory = 0L
          disk = 0L }

    /// What is handed out with one more (sign 1) or one fewer (sign -1) job holding `request`.
    let add (usage: PoolUsage) (request: JobRequest) (sign: int) : PoolUsage =
        { jobs = usage.jobs + sign
          millicores = usage.millicores + int64 sign * request.millicores
          memory = usage.memory + int64 sign * request.memory
          disk = usage.disk + int64 sign * request.disk }

    /// Whether one more job holding `request` stays within every limit.
    let fits (limits: PoolLimits) (usage: PoolUsage) (request: JobRequest) : bool =
        usage.jobs + 1 <= limits.maxJobs
        && usage.millicores + request.millicores <= limits.maxMillicores
        && usage.memory + request.memory <= limits.maxMemory
        && usage.disk + request.disk <= limits.maxDisk
