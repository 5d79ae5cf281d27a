namespace HybridBatch.Properties

open FsCheck
open FsCheck.FSharp
open HybridBatch.Core

/// A node as the scheduler sees it: its labels and taints.
type Taint =
    { key: string
      value: string
      effect: TaintEffect }

/// A node with labels and taints.
type Node =
    { labels: Map<string, string>
      taints: Taint list }

/// A deliberately small model of how the Kubernetes scheduler filters and scores nodes for a pod's node affinity
/// and tolerations (the NodeAffinity and TaintToleration plugins), written from the Kubernetes documentation and
/// independent of the core.
module Scheduler =

    /// In: the label is present with one of the values; NotIn: absent, or present with none of them; Exists and
    /// DoesNotExist: presence alone.
    let matchesExpression (node: Node) (expression: NodeSelectorRequirement) =
        let label = node.labels.TryFind expression.key

        match expression.operator with
        | NodeSelectorOperator.In -> label |> Option.exists (fun v -> List.contains v expression.values)
        | NodeSelectorOperator.NotIn -> label |> Option.forall (fun v -> not (List.contains v expression.values))
        | NodeSelectorOperator.Exists -> label.IsSome
        | NodeSelectorOperator.DoesNotExist -> label.IsNone

    /// AND within a term; an empty term matches no node.
    let matchesTerm (node: Node) (term: NodeSelectorTerm) =
        not term.matchExpressions.IsEmpty && List.forall (matchesExpression node) term.matchExpressions

    /// OR across required terms; no required terms admit every node.
    let affinityAdmits (node: Node) (affinity: NodeAffinity option) =
        match affinity with
        | None -> true
        | Some affinity -> affinity.required.IsEmpty || List.exists (matchesTerm node) affinity.required

    /// An empty effect tolerates every effect; Exists tolerates any value, Equal only its own.
    let tolerates (toleration: Toleration) (taint: Taint) =
        (toleration.effect.IsNone || toleration.effect = Some taint.effect)
        && toleration.key = taint.key
        && match toleration.operator with
           | TolerationOperator.Exists -> true
           | TolerationOperator.Equal -> defaultArg toleration.value "" = taint.value

    /// NoSchedule and NoExecute taints keep a pod off unless tolerated; PreferNoSchedule only discourages.
    let isHard (taint: Taint) =
        match taint.effect with
        | TaintEffect.NoSchedule
        | TaintEffect.NoExecute -> true
        | TaintEffect.PreferNoSchedule -> false

    /// Every hard taint is tolerated by some toleration.
    let taintsAdmit (node: Node) (tolerations: Toleration list) =
        node.taints |> List.filter isHard |> List.forall (fun taint -> List.exists (fun t -> tolerates t taint) tolerations)

    /// Whether the scheduler would place the pod on the node.
    let admits (node: Node) (placement: PodPlacement) =
        affinityAdmits node placement.nodeAffinity && taintsAdmit node placement.tolerations

    /// The node-affinity score: the sum of the weights of the preferred terms the node matches.
    let score (node: Node) (placement: PodPlacement) =
        match placement.nodeAffinity with
        | None -> 0
        | Some affinity ->
            affinity.preferred
            |> List.filter (fun p -> matchesTerm node p.preference)
            |> List.sumBy _.weight

/// What a placement means, stated directly from Toil's documentation of `Placement` and the clouds' spot-node
/// conventions, without looking at the pod spec the core produces.
module Meaning =

    /// Every cloud's preemptible (spot) node labels: EKS, GKE preemptible, GKE spot, AKS spot, Karpenter.
    let spotLabels =
        [ "eks.amazonaws.com/capacityType", "SPOT"
          "cloud.google.com/gke-preemptible", "true"
          "cloud.google.com/gke-spot", "true"
          "kubernetes.azure.com/scalesetpriority", "spot"
          "karpenter.sh/capacity-type", "spot" ]

    /// The taints the clouds put on spot nodes (GKE preemptible, GKE spot, AKS spot).
    let spotTaints =
        [ "cloud.google.com/gke-preemptible", "true"
          "cloud.google.com/gke-spot", "true"
          "kubernetes.azure.com/scalesetpriority", "spot" ]

    /// Whether the node carries the label with one of the selector's values (any value when none are listed).
    let hasLabel (node: Node) (selector: LabelSelector) =
        match node.labels.TryFind selector.key with
        | Some value -> selector.values.IsEmpty || List.contains value selector.values
        | None -> false

    /// A node is preemptible when it carries any cloud's spot label.
    let isSpotNode (node: Node) =
        spotLabels |> List.exists (fun (key, value) -> node.labels.TryFind key = Some value)

    let private toleratesTaint (placement: Placement) (taint: Taint) =
        placement.toleratedTaints
        |> List.exists (fun s -> s.key = taint.key && (s.values.IsEmpty || List.contains taint.value s.values))
        || placement.preemptible = Some true && List.contains (taint.key, taint.value) spotTaints

    /// Required labels present, prohibited ones absent, off spot nodes unless preemptibility allows, and every
    /// hard taint tolerated (a preemptible job tolerates the spot taints).
    let admits (placement: Placement) (node: Node) =
        List.forall (hasLabel node) placement.requiredLabels
        && not (List.exists (hasLabel node) placement.prohibitedLabels)
        && not (placement.preemptible = Some false && isSpotNode node)
        && node.taints |> List.filter Scheduler.isHard |> List.forall (toleratesTaint placement)

    /// One point per desired label the node has, plus one per spot label it has when the job is preemptible.
    let score (placement: Placement) (node: Node) =
        let desired = placement.desiredLabels |> List.filter (hasLabel node) |> List.length

        let spot =
            if placement.preemptible = Some true then
                spotLabels |> List.filter (fun (k, v) -> node.labels.TryFind k = Some v) |> List.length
            else
                0

        desired + spot

/// Random nodes whose labels and taints come from the placement pools, so they hit the spot schemes often.
module NodeGen =

    let private effect =
        Gen.elements [ TaintEffect.NoSchedule; TaintEffect.PreferNoSchedule; TaintEffect.NoExecute ]

    /// A node with some pool labels (sometimes a whole spot scheme) and up to three pool taints.
    let node: Gen<Node> =
        gen {
            let! labels =
                PlacementPools.keys
                |> List.map (fun key ->
                    Gen.frequency
                        [ 4, Gen.constant None
                          2, Gen.elements PlacementPools.values |> Gen.map (fun v -> Some(key, v)) ])
                |> Gen.sequenceToList

            let! spot = Gen.frequency [ 2, Gen.constant None; 1, Gen.elements Meaning.spotLabels |> Gen.map Some ]
            let! taintCount = Gen.frequency [ 5, Gen.constant 0; 3, Gen.constant 1; 1, Gen.constant 2; 1, Gen.constant 3 ]

            let taint =
                gen {
                    let! key, value =
                        Gen.frequency
                            [ 2, Gen.elements Meaning.spotTaints
                              1, Gen.zip (Gen.elements PlacementPools.keys) (Gen.elements PlacementPools.values) ]

                    let! effect = effect
                    return { key = key; value = value; effect = effect }
                }

            let! taints = Gen.sequenceToList (List.replicate taintCount taint)
            let labels = List.choose id labels @ Option.toList spot

            return
                { labels = Map.ofList labels
                  taints = taints }
        }

    /// Fewer labels and taints.
    let shrink (node: Node) : seq<Node> =
        seq {
            for key in node.labels.Keys do
                yield { node with labels = node.labels.Remove key }

            for taints in Shrink.list (fun _ -> Seq.empty) node.taints do
                yield { node with taints = taints }
        }

    /// Nodes with shrinking.
    let arb: Arbitrary<Node> = Arb.fromGenShrink (node, shrink)
