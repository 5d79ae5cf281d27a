namespace HybridBatch.Core

open System
open System.Globalization
open System.Text.RegularExpressions

/// Kubernetes' syntax for label keys and values, taint keys and extended resource domains. Placement validates
/// node labels with it; resources validate accelerator models (which become node labels) and brands (which become
/// resource domains).
[<RequireQualifiedAccess>]
module LabelSyntax =

    let private name =
        Regex(@"\A[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?\z", RegexOptions.CultureInvariant)

    let private dnsLabel =
        Regex(@"\A[a-z0-9]([-a-z0-9]*[a-z0-9])?\z", RegexOptions.CultureInvariant)

    let private dnsSubdomain =
        Regex(@"\A[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\z", RegexOptions.CultureInvariant)

    let private checkName (part: string) (text: string) =
        if text.Length = 0 then
            Error $"its %s{part} is empty"
        elif text.Length > 63 then
            Error $"its %s{part} has %d{text.Length} characters, more than 63"
        elif not (name.IsMatch text) then
            Error
                $"its %s{part} \"%s{text}\" must be letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
        else
            Ok()

    /// Checks a qualified name (a label or taint key): an optional DNS-subdomain prefix of at most 253 characters
    /// and a '/', then a name of 1 to 63 letters, digits, '-', '_' or '.' that starts and ends alphanumerically.
    /// The error says what is wrong with it.
    let checkKey (key: string) : Result<unit, string> =
        match key.Split '/' with
        | [| plain |] -> checkName "name" plain
        | [| prefix; rest |] ->
            if prefix.Length = 0 then
                Error "its prefix before '/' is empty"
            elif prefix.Length > 253 then
                Error $"its prefix has %d{prefix.Length} characters, more than 253"
            elif not (dnsSubdomain.IsMatch prefix) then
                Error
                    $"its prefix \"%s{prefix}\" must be a DNS subdomain: lower-case letters, digits, '-' and '.', starting and ending with a letter or digit"
            else
                checkName "name after '/'" rest
        | _ -> Error "it has more than one '/'"

    /// Checks a label or taint value: empty, or 1 to 63 letters, digits, '-', '_' or '.' that start and end
    /// alphanumerically. The error says what is wrong with it.
    let checkValue (value: string) : Result<unit, string> =
        if value.Length = 0 then Ok()
        else checkName "value" value

    /// Checks a DNS label (lower-case letters, digits and '-', at most 63 characters), such as a GPU brand that
    /// becomes the domain of an extended resource.
    let checkDnsLabel (label: string) : Result<unit, string> =
        if label.Length = 0 then
            Error "it is empty"
        elif label.Length > 63 then
            Error $"it has %d{label.Length} characters, more than 63"
        elif not (dnsLabel.IsMatch label) then
            Error "it must be lower-case letters, digits and '-', starting and ending with a letter or digit"
        else
            Ok()

/// One kind of accelerator a job needs, as Toil's `AcceleratorRequirement`.
type AcceleratorRequirement =
    {
        /// How many are needed, at least 1.
        count: int
        /// What kind: "gpu" is the one Kubernetes can count; others need a model.
        kind: string
        /// A model such as "nvidia-tesla-k80", required as the node label `accelerator`.
        model: string option
        /// The brand, such as "nvidia" or "amd", which names the extended resource `<brand>.com/gpu`.
        brand: string option
        /// The API the job talks to the accelerator with, such as "cuda" or "rocm"; informative only.
        api: string option
    }

/// What a job asks for.
type ResourceRequest =
    {
        /// Cores, fractional, finite and at least 0.
        cores: float
        /// Memory in bytes, at least 0.
        memory: int64
        /// Scratch disk in bytes, at least 0.
        disk: int64
        /// Accelerators, possibly none.
        accelerators: AcceleratorRequirement list
    }

/// The largest request the batch system accepts (Toil's --maxCores, --maxMemory, --maxDisk).
type ResourceLimits =
    { maxCores: float
      maxMemory: int64
      maxDisk: int64 }

/// A resource with a configured maximum.
[<RequireQualifiedAccess>]
type LimitedResource =
    | Cores
    | Memory
    | Disk

    /// The resource as Toil names it: cores, memory or disk.
    member this.Name =
        match this with
        | Cores -> "cores"
        | Memory -> "memory"
        | Disk -> "disk"

/// A request's resources as Kubernetes container resources: requests equal limits.
type KubernetesResources =
    {
        /// Resource name (cpu, memory, ephemeral-storage, nvidia.com/gpu, …) → canonical quantity.
        requests: Map<string, string>
        /// The same as `requests`, for predictable behaviour and because Kubernetes requires it for GPUs.
        limits: Map<string, string>
        /// Node labels (key, value) the pod must land on, each required on its own: accelerator models.
        requiredNodeLabels: (string * string) list
    }

/// Why a resource request cannot be turned into Kubernetes resources or is refused; `Message` says what was wrong
/// and how to fix it.
type ResourceError =
    /// Cores negative, NaN or infinite.
    | InvalidCores of cores: float
    /// Memory below zero.
    | NegativeMemory of memory: int64
    /// Disk below zero.
    | NegativeDisk of disk: int64
    /// The per-pod overhead below zero.
    | NegativeOverhead of overhead: int64
    /// An amount too large to express as a Kubernetes quantity (with the overhead added, for bytes).
    | ResourceTooLarge of resource: LimitedResource * requested: string
    /// An accelerator count below 1.
    | InvalidAcceleratorCount of accelerator: AcceleratorRequirement
    /// An accelerator that is neither a GPU nor has a model, which Kubernetes cannot be asked for.
    | UnsupportedAccelerator of accelerator: AcceleratorRequirement
    /// A brand that cannot be the domain of an extended resource.
    | InvalidAcceleratorBrand of accelerator: AcceleratorRequirement * reason: string
    /// A model that cannot be a node label value.
    | InvalidAcceleratorModel of accelerator: AcceleratorRequirement * reason: string
    /// More of a resource than the configured maximum (Toil's InsufficientSystemResources).
    | ExceedsMaximum of jobName: string option * resource: LimitedResource * requested: string * maximum: string

    /// What was wrong and how to fix it. For `ExceedsMaximum` it has the shape of Toil's
    /// InsufficientSystemResources message: the resource, the amount requested and the limit.
    member this.Message =
        let describe (a: AcceleratorRequirement) =
            let optional name value =
                value |> Option.map (fun v -> $", %s{name} \"%s{v}\"") |> Option.defaultValue ""

            let model, brand, api =
                optional "model" a.model, optional "brand" a.brand, optional "api" a.api

            $"{{count %d{a.count}, kind \"%s{a.kind}\"%s{model}%s{brand}%s{api}}}"

        match this with
        | InvalidCores cores ->
            $"The request for %s{cores.ToString(CultureInfo.InvariantCulture)} cores is invalid: cores must be a finite number of at least 0."
        | NegativeMemory memory ->
            $"The request for %d{memory} bytes of memory is invalid: memory must be at least 0 bytes."
        | NegativeDisk disk -> $"The request for %d{disk} bytes of disk is invalid: disk must be at least 0 bytes."
        | NegativeOverhead overhead ->
            $"The per-pod overhead of %d{overhead} bytes is invalid: configure an overhead of at least 0 bytes."
        | ResourceTooLarge(resource, requested) ->
            $"The request for %s{requested} %s{resource.Name} is too large for Kubernetes (at most 2^63 - 1 including the per-pod overhead). Request less."
        | InvalidAcceleratorCount accelerator ->
            $"The accelerator %s{describe accelerator} is invalid: its count must be at least 1."
        | UnsupportedAccelerator accelerator ->
            $"The accelerator %s{describe accelerator} could not be provided. The Kubernetes batch system only knows how to request gpu accelerators or accelerators with a defined model: set kind to \"gpu\" or give a model."
        | InvalidAcceleratorBrand(accelerator, reason) ->
            $"The accelerator %s{describe accelerator} has a brand that cannot name a Kubernetes resource <brand>.com/gpu: %s{reason}. Use a brand such as \"nvidia\" or \"amd\"."
        | InvalidAcceleratorModel(accelerator, reason) ->
            $"The accelerator %s{describe accelerator} has a model that cannot be a node label value: %s{reason}. Use the model name the nodes are labelled with, such as \"nvidia-tesla-k80\"."
        | ExceedsMaximum(jobName, resource, requested, maximum) ->
            let name = resource.Name

            let unit, purpose, flag =
                match resource with
                | LimitedResource.Cores -> "", "", "--maxCores"
                | LimitedResource.Memory -> "bytes of ", "", "--maxMemory"
                | LimitedResource.Disk -> "bytes of ", " for temporary space", "--maxDisk"

            let who =
                match jobName with
                | Some job -> $"The job %s{job} is requesting "
                | None -> "Requesting "

            $"%s{who}%s{requested} %s{unit}%s{name}%s{purpose}, more than the maximum of %s{maximum} %s{unit}%s{name} that this batch system was configured with, or enforced by %s{flag}. Lower the job's %s{name} request or raise %s{flag}."

/// Turning resource requests into Kubernetes container resources, and checking them against configured maxima.
[<RequireQualifiedAccess>]
module Resources =

    /// Toil's overhead added to memory and ephemeral storage: 512 MiB for the worker and Kubernetes itself.
    [<Literal>]
    let DefaultOverhead = 536870912L

    /// The node label an accelerator model is required as (Toil's choice; GKE-style clusters label nodes with it).
    [<Literal>]
    let AcceleratorLabelKey = "accelerator"

    let private isGpu (accelerator: AcceleratorRequirement) =
        String.Equals(accelerator.kind, "gpu", StringComparison.OrdinalIgnoreCase)

    let private invariant (value: float) =
        value.ToString("R", CultureInfo.InvariantCulture)

    let private checkAccelerator (accelerator: AcceleratorRequirement) =
        if accelerator.count < 1 then
            Error(InvalidAcceleratorCount accelerator)
        elif not (isGpu accelerator) && accelerator.model.IsNone then
            Error(UnsupportedAccelerator accelerator)
        else
            let brand =
                match accelerator.brand with
                | Some brand when isGpu accelerator ->
                    LabelSyntax.checkDnsLabel brand
                    |> Result.mapError (fun reason -> InvalidAcceleratorBrand(accelerator, reason))
                | Some _
                | None -> Ok()

            let model =
                match accelerator.model with
                | Some model ->
                    LabelSyntax.checkValue model
                    |> Result.bind (fun () -> if model.Length = 0 then Error "it is empty" else Ok())
                    |> Result.mapError (fun reason -> InvalidAcceleratorModel(accelerator, reason))
                | None -> Ok()

            brand |> Result.bind (fun () -> model)

    let private firstError (checks: Result<unit, ResourceError> list) =
        checks
        |> List.tryPick (fun check ->
            match check with
            | Error e -> Some e
            | Ok() -> None)
        |> Option.map Error
        |> Option.defaultValue (Ok())

    let private amounts (request: ResourceRequest) =
        firstError
            [ if not (Double.IsFinite request.cores && request.cores >= 0.0) then
                  Error(InvalidCores request.cores)
              if request.memory < 0L then
                  Error(NegativeMemory request.memory)
              if request.disk < 0L then
                  Error(NegativeDisk request.disk) ]

    let private accelerators (request: ResourceRequest) =
        firstError (request.accelerators |> List.map checkAccelerator)

    /// Checks that the amounts are valid: finite cores ≥ 0, memory and disk ≥ 0, and accelerators Kubernetes can
    /// provide (a count ≥ 1; a GPU, or any kind with a model; a brand usable as a resource domain; a model usable
    /// as a label value).
    let validate (request: ResourceRequest) : Result<unit, ResourceError> =
        amounts request |> Result.bind (fun () -> accelerators request)

    /// The most millicores the pool counts, a quarter of the int64 range, so that sums of requests cannot overflow.
    [<Literal>]
    let MaxMillicores = 2305843009213693951L

    /// Cores as a cpu quantity in whole millicores, rounded up as Kubernetes does (so a positive request never
    /// becomes 0): the one rounding of cores, for the container's cpu and the pool alike.
    let cpu (cores: float) : Result<Quantity, ResourceError> =
        Quantity.ofFloat DecimalSI cores
        |> Result.mapError (fun _ -> ResourceTooLarge(LimitedResource.Cores, invariant cores))
        |> Result.map Quantity.roundUpToMillis

    /// A cpu quantity in the pool's unit, whole millicores; amounts above `MaxMillicores` saturate.
    let millicores (cpu: Quantity) : int64 =
        let millis = Quantity.nanos cpu / 1_000_000I
        if millis > bigint MaxMillicores then MaxMillicores else int64 millis

    /// Cores in the pool's unit (for the pool's own limit): `cpu`, then `millicores`; an amount no quantity holds
    /// saturates.
    let poolMillicores (cores: float) : int64 =
        match cpu cores with
        | Ok quantity -> millicores quantity
        | Error _ -> MaxMillicores

    let private bytesWithOverhead resource (overhead: int64) (bytes: int64) =
        if bytes > Int64.MaxValue - overhead then
            Error(ResourceTooLarge(resource, $"%d{bytes} bytes of"))
        else
            Ok(Quantity.format (Quantity.ofInt64 BinarySI (bytes + overhead)))

    /// The container resources of checked amounts with the cpu already rounded.
    let private containerResources (overhead: int64) (cpu: Quantity) (request: ResourceRequest) =
        bytesWithOverhead LimitedResource.Memory overhead request.memory
        |> Result.bind (fun memory ->
            bytesWithOverhead LimitedResource.Disk overhead request.disk
            |> Result.map (fun disk -> memory, disk))
        |> Result.map (fun (memory, disk) ->
            let gpus =
                request.accelerators
                |> List.filter isGpu
                |> List.groupBy (fun a -> (defaultArg a.brand "nvidia") + ".com/gpu")
                |> List.map (fun (resource, accelerators) ->
                    let count = accelerators |> List.sumBy (fun a -> int64 a.count)
                    resource, Quantity.format (Quantity.ofInt64 DecimalSI count))

            let requests =
                Map.ofList ([ "cpu", Quantity.format cpu; "memory", memory; "ephemeral-storage", disk ] @ gpus)

            { requests = requests
              limits = requests
              requiredNodeLabels =
                request.accelerators
                |> List.choose (fun a -> a.model)
                |> List.distinct
                |> List.map (fun model -> AcceleratorLabelKey, model) })

    /// The resources of valid amounts (see `validate`) and the pool's millicores, cpu rounded once.
    let private convert (overhead: int64) (request: ResourceRequest) =
        if overhead < 0L then
            Error(NegativeOverhead overhead)
        else
            cpu request.cores
            |> Result.bind (fun cpu ->
                containerResources overhead cpu request
                |> Result.map (fun resources -> resources, millicores cpu))

    /// The Kubernetes requests and limits (equal) for a request: cpu in whole millicores rounded up (so a positive
    /// request never becomes 0), memory and ephemeral-storage in bytes exactly plus `overhead`, GPUs counted per
    /// `<brand>.com/gpu` (brand defaulting to nvidia), and each accelerator model as a required node label.
    let toKubernetes (overhead: int64) (request: ResourceRequest) : Result<KubernetesResources, ResourceError> =
        if overhead < 0L then
            Error(NegativeOverhead overhead)
        else
            validate request
            |> Result.bind (fun () -> convert overhead request)
            |> Result.map fst

    let private maxima (limits: ResourceLimits) (jobName: string option) (request: ResourceRequest) =
        firstError
            [ if request.cores > limits.maxCores then
                  Error(
                      ExceedsMaximum(jobName, LimitedResource.Cores, invariant request.cores, invariant limits.maxCores)
                  )
              if request.memory > limits.maxMemory then
                  Error(ExceedsMaximum(jobName, LimitedResource.Memory, string request.memory, string limits.maxMemory))
              if request.disk > limits.maxDisk then
                  Error(ExceedsMaximum(jobName, LimitedResource.Disk, string request.disk, string limits.maxDisk)) ]

    /// Toil's `check_resource_request`: refuses invalid amounts, then cores, memory and disk above the configured
    /// maxima (in that order, naming the resource, the amount requested and the limit), then accelerators that
    /// cannot be provided.
    let checkResourceRequest
        (limits: ResourceLimits)
        (jobName: string option)
        (request: ResourceRequest)
        : Result<unit, ResourceError> =
        amounts request
        |> Result.bind (fun () -> maxima limits jobName request)
        |> Result.bind (fun () -> accelerators request)

    /// What issuing a job needs of its request, each check made once: `checkResourceRequest`, then the Kubernetes
    /// resources (as `toKubernetes`) and the pool's millicores, from one rounding of the cores.
    let admit
        (limits: ResourceLimits)
        (jobName: string option)
        (overhead: int64)
        (request: ResourceRequest)
        : Result<KubernetesResources * int64, ResourceError> =
        checkResourceRequest limits jobName request
        |> Result.bind (fun () -> convert overhead request)
