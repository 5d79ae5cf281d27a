namespace HybridBatch.Core

/// A node label (or taint) key and the values that count; an empty list means any value.
type LabelSelector = { key: string; values: string list }

/// Where a job's pod may and should land, as Toil's `KubernetesBatchSystem.Placement`.
type Placement =
    {
        /// Labels the node must have, each with one of its values (all of them: AND).
        requiredLabels: LabelSelector list
        /// Labels the node should have; each one matched adds weight 1 to the node's score.
        desiredLabels: LabelSelector list
        /// Labels the node must not have with one of these values (absent is fine).
        prohibitedLabels: LabelSelector list
        /// Taints, with these values, the pod tolerates with every effect.
        toleratedTaints: LabelSelector list
        /// Whether the job is preemptible: Some true prefers and tolerates preemptible (spot) nodes, Some false
        /// keeps it off them, None says nothing about them. The last `setPreemptible` wins.
        preemptible: bool option
    }

/// A node selector operator, as Kubernetes spells it.
[<RequireQualifiedAccess>]
type NodeSelectorOperator =
    | In
    | NotIn
    | Exists
    | DoesNotExist

/// One match expression of a node selector term.
type NodeSelectorRequirement =
    { key: string
      operator: NodeSelectorOperator
      values: string list }

/// A node selector term: a node matches when it matches every expression (AND).
type NodeSelectorTerm =
    { matchExpressions: NodeSelectorRequirement list }

/// A preference: a node matching the term gains `weight` in scheduling.
type PreferredSchedulingTerm =
    { weight: int
      preference: NodeSelectorTerm }

/// Node affinity: a node is admitted when it matches any required term (OR); empty `required` admits every node
/// and leaves the field unset.
type NodeAffinity =
    { required: NodeSelectorTerm list
      preferred: PreferredSchedulingTerm list }

/// A taint effect, as Kubernetes spells it.
[<RequireQualifiedAccess>]
type TaintEffect =
    | NoSchedule
    | PreferNoSchedule
    | NoExecute

/// A toleration operator, as Kubernetes spells it.
[<RequireQualifiedAccess>]
type TolerationOperator =
    | Equal
    | Exists

/// A toleration: `Equal` tolerates the key with `value`, `Exists` any value; no effect means every effect.
type Toleration =
    { key: string
      operator: TolerationOperator
      value: string option
      effect: TaintEffect option }

/// What `Placement.apply` sets on a pod spec: node affinity when there is anything to require or prefer, and
/// tolerations (left unset when empty).
type PodPlacement =
    { nodeAffinity: NodeAffinity option
      tolerations: Toleration list }

/// Which of a placement's lists held an invalid entry.
[<RequireQualifiedAccess>]
type PlacementList =
    | RequiredLabels
    | DesiredLabels
    | ProhibitedLabels
    | ToleratedTaints

/// Why a placement cannot be applied; `Message` names the label and says how to fix it.
type PlacementError =
    /// A key that is not a Kubernetes qualified name.
    | InvalidKey of list: PlacementList * key: string * reason: string
    /// A value that is not a Kubernetes label value.
    | InvalidValue of list: PlacementList * key: string * value: string * reason: string

    /// What was wrong and how to fix it.
    member this.Message =
        let describe list =
            match list with
            | PlacementList.RequiredLabels -> "required label"
            | PlacementList.DesiredLabels -> "desired label"
            | PlacementList.ProhibitedLabels -> "prohibited label"
            | PlacementList.ToleratedTaints -> "tolerated taint"

        match this with
        | InvalidKey(list, key, reason) ->
            $"The %s{describe list} key \"%s{key}\" is invalid: %s{reason}. Use a key such as \"disktype\" or \"example.com/disktype\" (an optional DNS-subdomain prefix of at most 253 characters and '/', then at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit)."
        | InvalidValue(list, key, value, reason) ->
            $"The %s{describe list} \"%s{key}\" has the invalid value \"%s{value}\": %s{reason}. Use an empty value or at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit."

/// A cloud's way of marking preemptible (spot) nodes: labels (key, value) and taints (key, value).
type PreemptibleScheme =
    { name: string
      labels: (string * string) list
      taints: (string * string) list }

/// Building placements and turning them into pod node affinity and tolerations.
[<RequireQualifiedAccess>]
module Placement =

    /// No constraints: any node, no preference, no tolerations.
    let empty: Placement =
        { requiredLabels = []
          desiredLabels = []
          prohibitedLabels = []
          toleratedTaints = []
          preemptible = None }

    /// The preemptible-node schemes understood: Toil's two (EKS's capacity-type label, GCE's preemptible label and
    /// taint) first, in Toil's order, then GKE spot, AKS spot and Karpenter.
    let preemptibleSchemes: PreemptibleScheme list =
        [ { name = "EKS"
            labels = [ "eks.amazonaws.com/capacityType", "SPOT" ]
            taints = [] }
          { name = "GKE preemptible"
            labels = [ "cloud.google.com/gke-preemptible", "true" ]
            taints = [ "cloud.google.com/gke-preemptible", "true" ] }
          { name = "GKE spot"
            labels = [ "cloud.google.com/gke-spot", "true" ]
            taints = [ "cloud.google.com/gke-spot", "true" ] }
          { name = "AKS spot"
            labels = [ "kubernetes.azure.com/scalesetpriority", "spot" ]
            taints = [ "kubernetes.azure.com/scalesetpriority", "spot" ] }
          { name = "Karpenter"
            labels = [ "karpenter.sh/capacity-type", "spot" ]
            taints = [] } ]

    /// Toil's `set_preemptible`: a preemptible job may run on preemptible or normal nodes and prefers preemptible
    /// ones; a non-preemptible job never lands on a preemptible node. Unlike Toil, which appends on every call, the
    /// last call wins.
    let setPreemptible (preemptible: bool) (placement: Placement) : Placement =
        { placement with
            preemptible = Some preemptible }

    /// Adds a label the node must have with one of `values` (any value when empty).
    let requireLabel (key: string) (values: string list) (placement: Placement) : Placement =
        { placement with
            requiredLabels = placement.requiredLabels @ [ { key = key; values = values } ] }

    /// Requires a label with one of `values`, in place of the values of a required label with the same key (as
    /// setting an entry of Toil's dictionary does).
    let setRequiredLabel (key: string) (values: string list) (placement: Placement) : Placement =
        if placement.requiredLabels |> List.exists (fun selector -> selector.key = key) then
            { placement with
                requiredLabels =
                    placement.requiredLabels
                    |> List.map (fun selector -> if selector.key = key then { selector with values = values } else selector) }
        else
            requireLabel key values placement

    /// Adds a label the node should have with one of `values` (any value when empty).
    let desireLabel (key: string) (values: string list) (placement: Placement) : Placement =
        { placement with
            desiredLabels = placement.desiredLabels @ [ { key = key; values = values } ] }

    /// Adds a label the node must not have with one of `values` (must not have at all when empty).
    let prohibitLabel (key: string) (values: string list) (placement: Placement) : Placement =
        { placement with
            prohibitedLabels = placement.prohibitedLabels @ [ { key = key; values = values } ] }

    /// Adds a taint tolerated with any of `values` (with any value when empty), whatever its effect.
    let tolerateTaint (key: string) (values: string list) (placement: Placement) : Placement =
        { placement with
            toleratedTaints = placement.toleratedTaints @ [ { key = key; values = values } ] }

    let private schemeSelectors (pick: PreemptibleScheme -> (string * string) list) =
        preemptibleSchemes
        |> List.collect pick
        |> List.map (fun (key, value) -> { key = key; values = [ value ] })

    /// The placement with `preemptible` expanded into labels and taints, as Toil's lists would hold them.
    let expand (placement: Placement) : Placement =
        match placement.preemptible with
        | Some true ->
            { placement with
                desiredLabels = placement.desiredLabels @ schemeSelectors _.labels
                toleratedTaints = placement.toleratedTaints @ schemeSelectors _.taints
                preemptible = None }
        | Some false ->
            { placement with
                prohibitedLabels = placement.prohibitedLabels @ schemeSelectors _.labels
                preemptible = None }
        | None -> placement

    let private validateList list (selectors: LabelSelector list) =
        selectors
        |> List.tryPick (fun selector ->
            match LabelSyntax.checkKey selector.key with
            | Error reason -> Some(InvalidKey(list, selector.key, reason))
            | Ok() ->
                selector.values
                |> List.tryPick (fun value ->
                    match LabelSyntax.checkValue value with
                    | Error reason -> Some(InvalidValue(list, selector.key, value, reason))
                    | Ok() -> None))

    /// Checks every key and value against Kubernetes' label syntax; the error names the first invalid one.
    let validate (placement: Placement) : Result<unit, PlacementError> =
        [ PlacementList.RequiredLabels, placement.requiredLabels
          PlacementList.DesiredLabels, placement.desiredLabels
          PlacementList.ProhibitedLabels, placement.prohibitedLabels
          PlacementList.ToleratedTaints, placement.toleratedTaints ]
        |> List.tryPick (fun (list, selectors) -> validateList list selectors)
        |> Option.map Error
        |> Option.defaultValue (Ok())

    let private expression (operator, anyValue) (selector: LabelSelector) =
        match selector.values with
        | [] ->
            { key = selector.key
              operator = anyValue
              values = [] }
        | values ->
            { key = selector.key
              operator = operator
              values = values }

    let private has = expression (NodeSelectorOperator.In, NodeSelectorOperator.Exists)

    let private lacks =
        expression (NodeSelectorOperator.NotIn, NodeSelectorOperator.DoesNotExist)

    /// Toil's `apply`: one required term ANDing an In per required label and a NotIn per prohibited label (NotIn
    /// also admits nodes without the label; an empty value list becomes Exists / DoesNotExist), one weight-1
    /// preferred term per desired label, and one Equal toleration (every effect) per tolerated taint value
    /// (Exists when the value list is empty). Node affinity is None when nothing is required or preferred.
    let apply (placement: Placement) : Result<PodPlacement, PlacementError> =
        // The preemptible schemes' labels and taints are valid (a property checks it), so the caller's lists are checked
        // before `expand` appends them: once per job, not once per scheme's label per job.
        validate placement
        |> Result.map (fun () ->
            let placement = expand placement

            let requirements =
                List.map has placement.requiredLabels @ List.map lacks placement.prohibitedLabels

            let preferred =
                placement.desiredLabels
                |> List.map (fun selector ->
                    { weight = 1
                      preference = { matchExpressions = [ has selector ] } })

            let tolerations =
                placement.toleratedTaints
                |> List.collect (fun selector ->
                    match selector.values with
                    | [] ->
                        [ { key = selector.key
                            operator = TolerationOperator.Exists
                            value = None
                            effect = None } ]
                    | values ->
                        values
                        |> List.map (fun value ->
                            { key = selector.key
                              operator = TolerationOperator.Equal
                              value = Some value
                              effect = None }))

            let nodeAffinity =
                if List.isEmpty requirements && List.isEmpty preferred then
                    None
                else
                    Some
                        { required =
                            if List.isEmpty requirements then
                                []
                            else
                                [ { matchExpressions = requirements } ]
                          preferred = preferred }

            { nodeAffinity = nodeAffinity
              tolerations = tolerations })
