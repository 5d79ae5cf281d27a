namespace HybridBatch.Properties

open System.Numerics
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

/// Generators that validity needs (label syntax, quantities, event sequences); everything else FsCheck derives.
type Arbs =
    static member Placeholder() = Arb.fromGen (Gen.constant ())

    /// Any quantity in Kubernetes' range, in any format.
    static member Quantity() : Arbitrary<Quantity> =
        Arb.fromGenShrink (QuantityGen.quantity, QuantityGen.shrink)

    /// Placements over the pool of preemptible-scheme and ordinary keys.
    static member Placement() : Arbitrary<Placement> =
        Arb.fromGenShrink (PlacementPools.placement, PlacementPools.shrink)

    /// Valid resource requests.
    static member ResourceRequest() : Arbitrary<ResourceRequest> =
        Arb.fromGenShrink (ResourceGen.request, ResourceGen.shrink)

/// Every core property runs at least 1,000 cases and prints the failing seed (FsCheck's replay string).
type CorePropertyAttribute() =
    inherit PropertyAttribute(Arbitrary = [| typeof<Arbs> |], MaxTest = 1000, QuietOnSuccess = false)
