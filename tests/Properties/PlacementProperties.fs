namespace HybridBatch.Properties

open FsCheck
open FsCheck.FSharp
open HybridBatch.Core

/// Label syntax written out character by character from the Kubernetes documentation, to check the core's
/// regular expressions against.
module LabelModel =

    let private isAlphanumeric (c: char) =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')

    /// 1–63 characters of [A-Za-z0-9-_.], beginning and ending alphanumerically.
    let isName (s: string) =
        s.Length >= 1
        && s.Length <= 63
        && isAlphanumeric s[0]
        && isAlphanumeric s[s.Length - 1]
        && s |> Seq.forall (fun c -> isAlphanumeric c || c = '-' || c = '_' || c = '.')

    /// Kubernetes checks a subdomain's total length, not each label's.
    let private isDnsLabel (s: string) =
        s.Length >= 1
        && s |> Seq.forall (fun c -> (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c = '-')
        && s[0] <> '-'
        && s[s.Length - 1] <> '-'

    /// A qualified name: a name, or a DNS subdomain (≤ 253, dot-separated lower-case labels) then '/' then a name.
    let isKey (s: string) =
        match s.Split '/' with
        | [| name |] -> isName name
        | [| prefix; name |] -> prefix.Length <= 253 && prefix.Split '.' |> Array.forall isDnsLabel && isName name
        | _ -> false

    /// A label value: empty or a name.
    let isValue (s: string) = s.Length = 0 || isName s

/// Keys and values around the edges of the label syntax.
module LabelGen =

    let private alphabet = "aZ09-_./ Aé" |> Seq.toList

    let private run (c: char) (length: int) = System.String(c, length)

    /// Strings that are often valid and often just barely not: edge characters, lengths around 63 and 253.
    let keyLike: Gen<string> =
        let piece =
            Gen.oneof
                [ Gen.elements alphabet |> Gen.map string
                  Gen.elements [ 1; 61; 62; 63; 64 ] |> Gen.map (run 'a')
                  Gen.elements [ "example.com"; "k8s.io"; "a-b"; "A"; "-a"; "a-"; ".a"; "a.b" ] ]

        gen {
            let! count = Gen.choose (1, 5)
            let! pieces = Gen.sequenceToList (List.replicate count piece)
            // Prefixes of exactly 253 and 254 characters.
            let longPrefixes =
                [ String.concat "." [ run 'a' 63; run 'b' 63; run 'c' 63; run 'd' 61 ] + "/"
                  String.concat "." [ run 'a' 63; run 'b' 63; run 'c' 63; run 'd' 62 ] + "/" ]

            let! longPrefix = Gen.frequency [ 9, Gen.constant ""; 1, Gen.elements longPrefixes ]
            return longPrefix + String.concat "" pieces
        }

    /// Shorter strings, keeping the shape.
    let shrink (s: string) : seq<string> =
        seq {
            if s.Length > 1 then
                yield s.Substring(1)
                yield s.Substring(0, s.Length - 1)
        }

    let keyLikeArb = Arb.fromGenShrink (keyLike, shrink)

    /// A key the syntax refuses, with how it breaks the rules.
    let invalidKey: Gen<string> =
        Gen.elements
            [ ""
              "-leading-dash"
              "trailing-dash-"
              "has space"
              "has/two/slashes"
              "/empty-prefix"
              "Upper.Case/prefix"
              "example.com/"
              "caf\u00e9"
              run 'a' 64
              run 'a' 254 + "/name"
              "example.com/" + run 'b' 64 ]

    /// A value the syntax refuses.
    let invalidValue: Gen<string> =
        Gen.elements [ "-a"; "a-"; "has space"; "a/b"; run 'v' 64; "caf\u00e9"; "." ]

/// Placement: the pod spec the core produces admits exactly the nodes the placement means, per a separate model of
/// the scheduler, for nodes labelled and tainted as every cloud marks spot nodes.
module PlacementProperties =

    let private applied placement =
        match Placement.apply placement with
        | Ok spec -> spec
        | Error e -> failwith e.Message

    let private withoutSpot (node: Node) =
        { labels = Meaning.spotLabels |> List.fold (fun labels (key, _) -> Map.remove key labels) node.labels
          taints = node.taints |> List.filter (fun t -> not (List.contains (t.key, t.value) Meaning.spotTaints)) }

    let private spotVariants (node: Node) =
        Placement.preemptibleSchemes
        |> List.map (fun scheme ->
            let labels = scheme.labels |> List.fold (fun labels (k, v) -> Map.add k v labels) node.labels

            let taints =
                scheme.taints
                |> List.map (fun (k, v) ->
                    { key = k
                      value = v
                      effect = TaintEffect.NoSchedule })

            scheme.name,
            { labels = labels
              taints = node.taints @ taints })

    [<CoreProperty>]
    let ``the produced spec admits exactly the nodes the placement admits`` (placement: Placement) =
        Prop.forAll NodeGen.arb (fun node ->
            let spec = applied placement
            let expected = Meaning.admits placement node

            Prop.label
                $"affinity and taints: the scheduler says %b{Scheduler.admits node spec}, the placement means %b{expected}"
                (Scheduler.admits node spec = expected)
            |> Prop.classify expected "admitted"
            |> Prop.classify (Meaning.isSpotNode node) "spot node")

    [<CoreProperty>]
    let ``the produced preferences score every node as the placement's desires do`` (placement: Placement) =
        Prop.forAll NodeGen.arb (fun node ->
            let spec = applied placement
            Scheduler.score node spec = Meaning.score placement node)

    [<CoreProperty>]
    let ``a preemptible job scores a spot node of every cloud above the same node without spot labels``
        (placement: Placement)
        =
        Prop.forAll NodeGen.arb (fun node ->
            let spec = applied (Placement.setPreemptible true placement)
            let normal = withoutSpot node

            spotVariants normal
            |> List.map (fun (name, spot) ->
                Prop.label $"%s{name}: spot %d{Scheduler.score spot spec} > normal %d{Scheduler.score normal spec}" (
                    Scheduler.score spot spec > Scheduler.score normal spec
                ))
            |> List.reduce (.&.))

    [<CoreProperty>]
    let ``a preemptible job may run on the spot nodes of every cloud wherever it may run on a normal node``
        (placement: Placement)
        =
        let unrestricted =
            { placement with
                prohibitedLabels =
                    placement.prohibitedLabels
                    |> List.filter (fun s -> not (List.exists (fun (k, _) -> k = s.key) Meaning.spotLabels))
                requiredLabels =
                    placement.requiredLabels
                    |> List.filter (fun s -> not (List.exists (fun (k, _) -> k = s.key) Meaning.spotLabels)) }
            |> Placement.setPreemptible true

        Prop.forAll NodeGen.arb (fun node ->
            let spec = applied unrestricted
            let normal = withoutSpot node
            let admittedNormally = Scheduler.admits normal spec

            spotVariants normal
            |> List.map (fun (name, spot) -> Prop.label name (not admittedNormally || Scheduler.admits spot spec))
            |> List.reduce (.&.)
            |> Prop.classify admittedNormally "admitted on the normal node")

    [<CoreProperty>]
    let ``a non-preemptible job is never admitted on a spot node of any cloud`` (placement: Placement) =
        Prop.forAll NodeGen.arb (fun node ->
            let spec = applied (Placement.setPreemptible false placement)

            spotVariants node
            |> List.map (fun (name, spot) -> Prop.label name (not (Scheduler.admits spot spec)))
            |> List.reduce (.&.))

    [<CoreProperty>]
    let ``the produced spec is what the Kubernetes API accepts`` (placement: Placement) =
        let spec = applied placement

        let wellFormed (e: NodeSelectorRequirement) =
            match e.operator with
            | NodeSelectorOperator.In
            | NodeSelectorOperator.NotIn -> not e.values.IsEmpty
            | NodeSelectorOperator.Exists
            | NodeSelectorOperator.DoesNotExist -> e.values.IsEmpty

        let affinity =
            match spec.nodeAffinity with
            | None -> true
            | Some a ->
                not (a.required.IsEmpty && a.preferred.IsEmpty)
                && a.required |> List.forall (fun t -> not t.matchExpressions.IsEmpty && List.forall wellFormed t.matchExpressions)
                && a.preferred
                   |> List.forall (fun p ->
                       p.weight >= 1
                       && p.weight <= 100
                       && not p.preference.matchExpressions.IsEmpty
                       && List.forall wellFormed p.preference.matchExpressions)

        let tolerations =
            spec.tolerations
            |> List.forall (fun t ->
                match t.operator with
                | TolerationOperator.Exists -> t.value.IsNone
                | TolerationOperator.Equal -> t.value.IsSome)

        Prop.label "node affinity terms and expressions" affinity
        .&. Prop.label "toleration operators and values" tolerations

    [<CoreProperty>]
    let ``label keys are accepted exactly when they are Kubernetes qualified names`` () =
        Prop.forAll LabelGen.keyLikeArb (fun key ->
            let accepted = Placement.empty |> Placement.requireLabel key [] |> Placement.apply |> Result.isOk
            Prop.label $"key %s{key}: accepted %b{accepted}" (accepted = LabelModel.isKey key))

    [<CoreProperty>]
    let ``label values are accepted exactly when they are Kubernetes label values`` () =
        Prop.forAll LabelGen.keyLikeArb (fun value ->
            let accepted =
                Placement.empty |> Placement.desireLabel "disktype" [ value ] |> Placement.apply |> Result.isOk

            Prop.label $"value %s{value}: accepted %b{accepted}" (accepted = LabelModel.isValue value))

    [<CoreProperty>]
    let ``an invalid label key or value in any list is an error that names it`` (placement: Placement) =
        let lists: (string * (LabelSelector -> Placement -> Placement)) list =
            [ "required", (fun s p -> { p with requiredLabels = p.requiredLabels @ [ s ] })
              "desired", (fun s p -> { p with desiredLabels = p.desiredLabels @ [ s ] })
              "prohibited", (fun s p -> { p with prohibitedLabels = p.prohibitedLabels @ [ s ] })
              "tolerated", (fun s p -> { p with toleratedTaints = p.toleratedTaints @ [ s ] }) ]

        let cases =
            gen {
                let! list = Gen.elements lists
                let! badKey = Gen.elements [ true; false ]
                let! key = if badKey then LabelGen.invalidKey else Gen.constant "disktype"
                let! value = if badKey then Gen.constant "ssd" else LabelGen.invalidValue
                return list, key, value
            }

        Prop.forAll (Arb.fromGen cases) (fun ((name, add), key, value) ->
            let selector: LabelSelector = { key = key; values = [ value ] }

            match Placement.apply (add selector placement) with
            | Ok _ -> Prop.label $"%s{name} %s{key}=%s{value} was accepted" false
            | Error e ->
                Prop.label $"%s{name}: the message names the key \"%s{key}\"" (e.Message.Contains($"\"%s{key}\""))
                .&. Prop.label
                        $"%s{name}: the message names the value \"%s{value}\""
                        (LabelModel.isKey key = false || e.Message.Contains($"\"%s{value}\"")))

    [<CoreProperty>]
    let ``expanding preemptible into the clouds' labels and taints never changes whether a placement is valid``
        (placement: Placement)
        (preemptible: bool)
        =
        Placement.validate (Placement.expand { placement with preemptible = Some preemptible }) = Placement.validate placement
