namespace HybridBatch.Properties

open System.Numerics
open System
open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open HybridBatch.Core

/// Shrinking helpers for hand-written generators.
module Shrink =

    /// Removes one element, then shrinks one element in place.
    let list (item: 'a -> seq<'a>) (values: 'a list) : seq<'a list> =
        seq {
            for i in 0 .. values.Length - 1 do
                yield List.removeAt i values

            for i in 0 .. values.Length - 1 do
                for smaller in item values[i] do
                    yield List.updateAt i smaller values
        }

/// Generators of quantities: exact values over Kubernetes' whole range, biased to the shapes its suffixes write.
module QuantityGen =

    let private pow10 (n: int) = BigInteger.Pow(10I, n)

    let private inRange (format, nanos) =
        match Quantity.ofNanos format nanos with
        | Ok q -> Some q
        | Error _ -> None

    /// Any quantity: decimal mantissas at every exponent from n to E, binary multiples up to Ei, and extremes.
    let quantity: Gen<Quantity> =
        let format = Gen.elements [ DecimalSI; BinarySI; DecimalExponent ]

        let decimal =
            gen {
                let! mantissa = Gen.oneof [ Gen.choose64 (-999_999L, 999_999L); Gen.choose64 (System.Int64.MinValue + 1L, System.Int64.MaxValue) ]
                let! exponent = Gen.choose (-9, 18)
                return mantissa |> BigInteger |> (*) (pow10 (exponent + 9))
            }

        let binary =
            gen {
                let! mantissa = Gen.choose64 (-8191L, 8191L)
                let! power = Gen.choose (0, 6)
                return BigInteger mantissa * BigInteger.Pow(1024I, power) * pow10 9
            }

        let extreme = Gen.elements [ 0I; 1I; -1I; Quantity.maxNanos; -Quantity.maxNanos; Quantity.maxNanos - 1I ]

        Gen.zip format (Gen.frequency [ 6, decimal; 3, binary; 1, extreme ])
        |> Gen.map inRange
        |> Gen.where Option.isSome
        |> Gen.map Option.get

    /// Towards zero: zero, a tenth, a half, and the same value in decimal.
    let shrink (q: Quantity) : seq<Quantity> =
        let nanos = Quantity.nanos q

        seq {
            if not nanos.IsZero then
                yield Quantity.zero

                for smaller in [ nanos / 10I; nanos / 2I ] do
                    if smaller <> nanos then
                        yield! Quantity.ofNanos (Quantity.formatOf q) smaller |> Result.toList

            if Quantity.formatOf q <> DecimalSI then
                yield! Quantity.ofNanos DecimalSI nanos |> Result.toList
        }

/// The keys and values placement generators draw from: every cloud's preemptible labels and taints and a few
/// ordinary ones, so generated nodes and placements hit the interesting keys often.
module PlacementPools =

    /// Label and taint keys, the preemptible schemes' first.
    let keys =
        [ "eks.amazonaws.com/capacityType"
          "cloud.google.com/gke-preemptible"
          "cloud.google.com/gke-spot"
          "kubernetes.azure.com/scalesetpriority"
          "karpenter.sh/capacity-type"
          "disktype"
          "example.com/zone"
          "GottaBeSetTo"
          "accelerator" ]

    /// Label and taint values, including the schemes' spot values and the empty value.
    let values = [ "SPOT"; "ON_DEMAND"; "true"; "false"; "spot"; "regular"; "ssd"; "a"; "" ]

    let private selector =
        gen {
            let! key = Gen.elements keys
            let! count = Gen.frequency [ 1, Gen.constant 0; 3, Gen.constant 1; 2, Gen.constant 2 ]
            let! values = Gen.sequenceToList (List.replicate count (Gen.elements values))
            return { key = key; values = List.distinct values }
        }

    let private selectors =
        gen {
            let! count = Gen.frequency [ 3, Gen.constant 0; 3, Gen.constant 1; 2, Gen.constant 2; 1, Gen.constant 3 ]
            return! Gen.sequenceToList (List.replicate count selector)
        }

    /// A placement of pool keys and values, with any preemptibility.
    let placement: Gen<Placement> =
        gen {
            let! required = selectors
            let! desired = selectors
            let! prohibited = selectors
            let! tolerated = selectors
            let! preemptible = Gen.elements [ None; Some true; Some false ]

            return
                { requiredLabels = required
                  desiredLabels = desired
                  prohibitedLabels = prohibited
                  toleratedTaints = tolerated
                  preemptible = preemptible }
        }

    let private shrinkSelector (selector: LabelSelector) =
        Shrink.list (fun _ -> Seq.empty) selector.values
        |> Seq.map (fun values -> { selector with values = values })

    /// Drops selectors and values, then preemptibility.
    let shrink (p: Placement) : seq<Placement> =
        seq {
            for smaller in Shrink.list shrinkSelector p.requiredLabels do
                yield { p with requiredLabels = smaller }

            for smaller in Shrink.list shrinkSelector p.desiredLabels do
                yield { p with desiredLabels = smaller }

            for smaller in Shrink.list shrinkSelector p.prohibitedLabels do
                yield { p with prohibitedLabels = smaller }

            for smaller in Shrink.list shrinkSelector p.toleratedTaints do
                yield { p with toleratedTaints = smaller }

            if p.preemptible.IsSome then
                yield { p with preemptible = None }
        }

/// Generators of valid resource requests: every amount Kubernetes can express, with GPUs of every brand and models.
module ResourceGen =

    /// Finite cores ≥ 0: whole and fractional counts, tiny amounts below a millicore, and very large ones.
    let cores: Gen<float> =
        Gen.oneof
            [ Gen.choose (0, 64) |> Gen.map float
              Gen.choose (0, 64_000) |> Gen.map (fun m -> float m / 1000.0)
              Gen.choose (1, 1_000_000) |> Gen.map (fun n -> float n / 1e7)
              Gen.elements [ 0.0; 1e-10; 5e-324; 0.1; 0.29; 1.0 / 3.0; 1e6; 1.5e12 ] ]

    /// Byte counts ≥ 0 that leave room for an overhead of up to 1 GiB.
    let bytes: Gen<int64> =
        Gen.oneof
            [ Gen.choose64 (0L, 1L <<< 40)
              Gen.choose64 (0L, System.Int64.MaxValue - (1L <<< 30))
              Gen.elements [ 0L; 1L; 1023L; 1024L; 536870912L; System.Int64.MaxValue - (1L <<< 30) ] ]

    /// A GPU of any brand (or none) and an optional model, or another kind with a model.
    let accelerator: Gen<AcceleratorRequirement> =
        gen {
            let! count = Gen.choose (1, 8)
            let! kind = Gen.frequency [ 4, Gen.constant "gpu"; 1, Gen.constant "fpga" ]
            let! brand = Gen.elements [ None; Some "nvidia"; Some "amd" ]
            let! model = Gen.elements [ None; Some "nvidia-tesla-k80"; Some "nvidia-a100"; Some "mi300x" ]
            let! api = Gen.elements [ None; Some "cuda"; Some "rocm" ]

            return
                { count = count
                  kind = kind
                  model = (if kind = "gpu" then model else Some(defaultArg model "xilinx-u250"))
                  brand = brand
                  api = api }
        }

    /// A valid request.
    let request: Gen<ResourceRequest> =
        gen {
            let! cores = cores
            let! memory = bytes
            let! disk = bytes
            let! count = Gen.frequency [ 3, Gen.constant 0; 2, Gen.constant 1; 1, Gen.constant 3 ]
            let! accelerators = Gen.sequenceToList (List.replicate count accelerator)

            return
                { cores = cores
                  memory = memory
                  disk = disk
                  accelerators = accelerators }
        }

    /// Towards smaller amounts and fewer accelerators.
    let shrink (r: ResourceRequest) : seq<ResourceRequest> =
        seq {
            for smaller in Shrink.list (fun _ -> Seq.empty) r.accelerators do
                yield { r with accelerators = smaller }

            if r.cores <> 0.0 then
                yield { r with cores = 0.0 }
                yield { r with cores = floor r.cores }

            if r.memory <> 0L then
                yield { r with memory = r.memory / 2L }

            if r.disk <> 0L then
                yield { r with disk = r.disk / 2L }
        }
        |> Seq.filter ((<>) r)
/// Generators for the retry classifier: plausible API failures and usable back-off policies.
module RetryGenerators =

    let private dnsLabel =
        gen {
            let! length = Gen.choose (1, 12)
            let! chars = Gen.arrayOfLength length (Gen.elements [ 'a' .. 'z' ])
            return String chars
        }

    /// A permission as the shell derives it from a request path.
    let permission: Gen<Permission> =
        gen {
            let! verb =
                Gen.elements
                    [ Verb.Get
                      Verb.List
                      Verb.Watch
                      Verb.Create
                      Verb.Update
                      Verb.Patch
                      Verb.Delete
                      Verb.DeleteCollection
                      Verb.Other "impersonate" ]

            let! group = Gen.elements [ ""; "batch"; "apps"; "metrics.k8s.io" ]
            let! resource = Gen.oneof [ Gen.elements [ "jobs"; "pods"; "nodes"; "events" ]; dnsLabel ]
            let! subresource = Gen.optionOf (Gen.elements [ "log"; "status"; "eviction" ])
            let! inNamespace = Gen.optionOf dnsLabel

            return
                { verb = verb
                  group = group
                  resource = resource
                  subresource = subresource
                  inNamespace = inNamespace }
        }

    /// A non-negative span of up to `maxMs` milliseconds, at tick resolution.
    let span (maxMs: int64) : Gen<TimeSpan> =
        Gen.choose64 (0L, maxMs * TimeSpan.TicksPerMillisecond) |> Gen.map TimeSpan.FromTicks

    let private fieldCause =
        gen {
            let! field = Gen.elements [ "spec.template.spec.containers[0].image"; "metadata.name"; "spec.backoffLimit"; "" ]
            let! reason = Gen.elements [ "FieldValueRequired"; "FieldValueInvalid"; "" ]
            let! message = Gen.elements [ "Required value"; "Invalid value: \"x\""; "" ]

            return
                { field = field
                  reason = reason
                  message = message }
        }

    /// A failure as the API server or the transport produces it.
    let apiError: Gen<ApiError> =
        gen {
            let! status =
                Gen.frequency
                    [ 6,
                      Gen.elements [ 400; 401; 403; 404; 408; 409; 410; 413; 422; 429; 500; 501; 502; 503; 504 ]
                      |> Gen.map Some
                      2, Gen.choose (100, 599) |> Gen.map Some
                      3, Gen.constant None ]

            let! reason =
                Gen.optionOf (
                    Gen.elements
                        [ "AlreadyExists"
                          "Conflict"
                          "Expired"
                          "Gone"
                          "Forbidden"
                          "Invalid"
                          "NotFound"
                          "TooManyRequests"
                          "ServerTimeout" ]
                )

            let! message = Gen.optionOf (Gen.elements [ "jobs.batch \"x\" is forbidden"; "too old resource version"; "boom" ])
            let! causes = Gen.listOf fieldCause
            let! retryAfter = Gen.optionOf (span 120_000L)

            let! transport =
                Gen.optionOf (
                    Gen.elements
                        [ TransportFailure.Refused
                          TransportFailure.Reset
                          TransportFailure.Timeout
                          TransportFailure.Dns
                          TransportFailure.Tls
                          TransportFailure.Other ]
                )

            let! permission = permission
            let! madeIdempotent = Gen.elements [ true; false ]

            return
                { status = status
                  reason = reason
                  message = message
                  causes = causes
                  retryAfter = retryAfter
                  transport = (if status.IsSome then None else transport)
                  permission = permission
                  madeIdempotent = madeIdempotent }
        }

    /// Shrinks a failure by forgetting what it does not need.
    let shrinkApiError (error: ApiError) : ApiError seq =
        seq {
            if error.retryAfter.IsSome then
                yield { error with retryAfter = None }

            if error.message.IsSome then
                yield { error with message = None }

            if not error.causes.IsEmpty then
                yield { error with causes = [] }

            if error.reason.IsSome then
                yield { error with reason = None }
        }

    /// A usable policy: 1 ms to 10 s first delay, a cap up to 10 minutes above it, a budget up to an hour.
    let policy: Gen<BackoffPolicy> =
        gen {
            let! first = span 10_000L |> Gen.map (fun t -> t + TimeSpan.FromMilliseconds 1.0)
            let! extra = span 600_000L
            let! budget = span 3_600_000L

            return
                { firstDelay = first
                  maxDelay = first + extra
                  budget = budget }
        }

    /// Shrinks a policy towards shorter delays and budgets, keeping it usable.
    let shrinkPolicy (p: BackoffPolicy) : BackoffPolicy seq =
        let half (t: TimeSpan) = TimeSpan.FromTicks(t.Ticks / 2L)

        seq {
            if p.budget > TimeSpan.Zero then
                yield { p with budget = half p.budget }

            if p.maxDelay > p.firstDelay then
                yield { p with maxDelay = max p.firstDelay (half p.maxDelay) }

            if p.firstDelay.Ticks > 1L then
                let first = half p.firstDelay
                yield { p with firstDelay = first }
        }

/// Generators that validity needs (label syntax, quantities, event sequences); everything else FsCheck derives.
type Arbs =
    /// Any quantity in Kubernetes' range, in any format.
    static member Quantity() : Arbitrary<Quantity> =
        Arb.fromGenShrink (QuantityGen.quantity, QuantityGen.shrink)

    /// Placements over the pool of preemptible-scheme and ordinary keys.
    static member Placement() : Arbitrary<Placement> =
        Arb.fromGenShrink (PlacementPools.placement, PlacementPools.shrink)

    /// Valid resource requests.
    static member ResourceRequest() : Arbitrary<ResourceRequest> =
        Arb.fromGenShrink (ResourceGen.request, ResourceGen.shrink)
    /// Permissions with plausible RBAC names.
    static member Permission() =
        Arb.fromGen RetryGenerators.permission

    /// API failures as servers and transports produce them.
    static member ApiError() =
        Arb.fromGenShrink (RetryGenerators.apiError, RetryGenerators.shrinkApiError)

    /// Usable back-off policies.
    static member BackoffPolicy() =
        Arb.fromGenShrink (RetryGenerators.policy, RetryGenerators.shrinkPolicy)

/// Every core property runs at least 1,000 cases and prints the failing seed (FsCheck's replay string).
type CorePropertyAttribute() =
    inherit PropertyAttribute(Arbitrary = [| typeof<Arbs> |], MaxTest = 1000, QuietOnSuccess = false)
