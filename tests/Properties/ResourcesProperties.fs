namespace HybridBatch.Properties

open System
open System.Numerics
open FsCheck
open FsCheck.FSharp
open HybridBatch.Core

/// Resources: a request becomes Kubernetes requests equal to limits, with cores rounded up to millicores, bytes
/// exact plus the overhead, GPUs per brand, and every invalid amount or excessive request refused with a reason.
module ResourcesProperties =

    let private overheads =
        Arb.fromGen (Gen.oneof [ Gen.constant Resources.DefaultOverhead; Gen.choose64 (0L, 1L <<< 30) ])

    let private converted overhead request =
        match Resources.toKubernetes overhead request with
        | Ok resources -> resources
        | Error e -> failwith e.Message

    let private nanosOf (text: string) =
        match Quantity.parse text with
        | Ok q -> Quantity.nanos q
        | Error e -> failwith e.Message

    let private units (n: int64) = BigInteger n * BigInteger.Pow(10I, 9)

    [<CoreProperty>]
    let ``requests never exceed limits`` (request: ResourceRequest) =
        Prop.forAll overheads (fun overhead ->
            let resources = converted overhead request

            Prop.label "the same resources are requested and limited" (
                Set.ofSeq resources.requests.Keys = Set.ofSeq resources.limits.Keys
            )
            .&. Prop.label "every request is at most its limit" (
                resources.requests
                |> Map.forall (fun name amount -> nanosOf amount <= nanosOf resources.limits[name])
            ))

    [<CoreProperty>]
    let ``cpu is the requested cores rounded up to whole millicores and never zero for a positive request``
        (request: ResourceRequest)
        =
        let cpu = nanosOf (converted Resources.DefaultOverhead request).requests["cpu"]

        let exact =
            match Quantity.ofFloat DecimalSI request.cores with
            | Ok q -> Quantity.nanos q
            | Error e -> failwith e.Message

        let milli = BigInteger.Pow(10I, 6)

        Prop.label "whole millicores" ((cpu % milli).IsZero)
        .&. Prop.label "at least the cores asked" (cpu >= exact)
        .&. Prop.label "less than a millicore more" (cpu - exact < milli)
        .&. Prop.label "positive when cores are" ((request.cores > 0.0) = (cpu > 0I))

    [<CoreProperty>]
    let ``memory and ephemeral storage are the bytes asked plus the overhead exactly`` (request: ResourceRequest) =
        Prop.forAll overheads (fun overhead ->
            let resources = converted overhead request

            Prop.label "memory" (nanosOf resources.requests["memory"] = units (request.memory + overhead))
            .&. Prop.label "ephemeral-storage" (
                nanosOf resources.requests["ephemeral-storage"] = units (request.disk + overhead)
            ))

    [<CoreProperty>]
    let ``GPUs are counted per brand domain and models become required node labels`` (request: ResourceRequest) =
        let resources = converted Resources.DefaultOverhead request
        let gpus = request.accelerators |> List.filter (fun a -> a.kind = "gpu")

        let expected =
            gpus
            |> List.groupBy (fun a -> (defaultArg a.brand "nvidia") + ".com/gpu")
            |> List.map (fun (name, group) -> name, units (group |> List.sumBy (fun a -> int64 a.count)))
            |> Map.ofList

        let actual =
            resources.requests
            |> Map.filter (fun name _ -> name.EndsWith("/gpu", StringComparison.Ordinal))
            |> Map.map (fun _ amount -> nanosOf amount)

        let models = request.accelerators |> List.choose (fun a -> a.model) |> Set.ofList

        Prop.label "GPU counts" (actual = expected)
        .&. Prop.label "model labels" (
            resources.requiredNodeLabels |> List.map snd |> Set.ofList = models
            && resources.requiredNodeLabels |> List.forall (fun (key, _) -> key = "accelerator")
        )

    [<CoreProperty>]
    let ``negative NaN or infinite amounts and unusable accelerators are errors`` (request: ResourceRequest) =
        let invalid =
            Gen.elements
                [ "negative cores", (fun r -> { r with cores = -0.001 }), (fun e -> e = InvalidCores -0.001)
                  "NaN cores", (fun r -> { r with cores = nan }), (fun e -> match e with InvalidCores c -> Double.IsNaN c | _ -> false)
                  "infinite cores", (fun r -> { r with cores = infinity }), (fun e -> e = InvalidCores infinity)
                  "negative memory", (fun r -> { r with memory = -1L }), (fun e -> e = NegativeMemory -1L)
                  "negative disk", (fun r -> { r with disk = Int64.MinValue }), (fun e -> e = NegativeDisk Int64.MinValue)
                  "memory beyond the range with the overhead",
                  (fun r -> { r with memory = Int64.MaxValue }),
                  (fun e -> match e with ResourceTooLarge(LimitedResource.Memory, _) -> true | _ -> false)
                  "cores beyond the range",
                  (fun r -> { r with cores = 1e19 }),
                  (fun e -> match e with ResourceTooLarge(LimitedResource.Cores, _) -> true | _ -> false)
                  "a GPU count of zero",
                  (fun r -> { r with accelerators = r.accelerators @ [ { count = 0; kind = "gpu"; model = None; brand = None; api = None } ] }),
                  (fun e -> match e with InvalidAcceleratorCount _ -> true | _ -> false)
                  "an FPGA without a model",
                  (fun r -> { r with accelerators = r.accelerators @ [ { count = 1; kind = "fpga"; model = None; brand = None; api = None } ] }),
                  (fun e -> match e with UnsupportedAccelerator _ -> true | _ -> false)
                  "a brand that cannot be a domain",
                  (fun r -> { r with accelerators = r.accelerators @ [ { count = 1; kind = "gpu"; model = None; brand = Some "NVIDIA Corp"; api = None } ] }),
                  (fun e -> match e with InvalidAcceleratorBrand _ -> true | _ -> false)
                  "a model that cannot be a label",
                  (fun r -> { r with accelerators = r.accelerators @ [ { count = 1; kind = "gpu"; model = Some "tesla k80"; brand = None; api = None } ] }),
                  (fun e -> match e with InvalidAcceleratorModel _ -> true | _ -> false) ]

        Prop.forAll (Arb.fromGen invalid) (fun (name, spoil, expected) ->
            match Resources.toKubernetes Resources.DefaultOverhead (spoil request) with
            | Ok _ -> Prop.label $"%s{name} was accepted" false
            | Error e -> Prop.label $"%s{name}: %s{e.Message}" (expected e && e.Message.Length > 0))

    [<CoreProperty>]
    let ``a request above a configured maximum is refused naming the resource the amount and the limit``
        (request: ResourceRequest)
        =
        let limits =
            Gen.zip3 (Gen.elements [ 0.5; 1.0; 2.0; 64.0 ]) (Gen.choose64 (0L, 1L <<< 34)) (Gen.choose64 (0L, 1L <<< 34))
            |> Gen.map (fun (cores, memory, disk) ->
                { maxCores = cores
                  maxMemory = memory
                  maxDisk = disk })

        Prop.forAll (Arb.fromGen limits) (fun limits ->
            let over =
                [ request.cores > limits.maxCores, LimitedResource.Cores
                  request.memory > limits.maxMemory, LimitedResource.Memory
                  request.disk > limits.maxDisk, LimitedResource.Disk ]
                |> List.tryFind fst
                |> Option.map snd

            match Resources.checkResourceRequest limits (Some "job-7") request, over with
            | Ok(), None -> Prop.label "accepted within the limits" true
            | Error(ExceedsMaximum(job, resource, requested, maximum) as e), Some expected ->
                let name, flag =
                    match resource with
                    | LimitedResource.Cores -> "cores", "--maxCores"
                    | LimitedResource.Memory -> "memory", "--maxMemory"
                    | LimitedResource.Disk -> "disk", "--maxDisk"

                Prop.label "the first resource over its limit, in Toil's order" (resource = expected)
                .&. Prop.label "the job" (job = Some "job-7" && e.Message.Contains "The job job-7 is requesting")
                .&. Prop.label $"the amount %s{requested}" (e.Message.Contains $"requesting %s{requested} ")
                .&. Prop.label $"the limit %s{maximum}" (e.Message.Contains $"the maximum of %s{maximum} ")
                .&. Prop.label $"the resource %s{name} and %s{flag}" (e.Message.Contains name && e.Message.Contains flag)
            | result, expected -> Prop.label $"%A{result}, expected %A{expected}" false)
