/// The C# view of the core, in one style: static classes with PascalCase members that take arrays, read-only
/// collections and nulls, and return records; no F# lists, options, curried functions or out parameters. This file
/// holds the records C# gets; ApiJobs.fs, ApiNames.fs and ApiRetry.fs the classes it calls.
namespace HybridBatch.Core.Api

open System
open System.Collections.Generic
open HybridBatch.Core
open HybridBatch.Core.JobState

/// Why a job ended, numbered as Toil's `BatchJobExitReason`.
type ExitCode =
    /// The command exited 0.
    | Finished = 1
    /// The command exited non-zero.
    | Failed = 2
    /// The job's pod or Job vanished or was evicted, or its node was lost.
    | Lost = 3
    /// The job was killed on request.
    | Killed = 4
    /// The job could not run.
    | Error = 5
    /// The container exceeded its memory limit.
    | MemLimit = 6

/// A finished job.
type JobResult =
    {
      /// The job's id.
      JobId: int
      /// The container's exit code; 255 when unavailable.
      ExitStatus: int
      /// Why it ended.
      Reason: ExitCode
      /// From container start to finish (or from creation), always above zero.
      WallTimeMs: int64
      /// The name of the Kubernetes Job that ran it.
      BackingId: string
      /// Why it ended when the exit status alone does not say, or null.
      Message: string | null }

/// What a problem with a job is about: one of the caller's inputs, or more than the batch system may give (Toil's
/// `InsufficientSystemResources`).
type ProblemKind =
    /// The command.
    | Command = 1
    /// The job description: its image or an invalid amount.
    | Job = 2
    /// The job's environment.
    | Environment = 3
    /// The job's placement.
    | Placement = 4
    /// More than the maxima, or accelerators the cluster cannot provide.
    | InsufficientResources = 5

/// Why a job cannot be issued. Resource, Requested and Available are set for InsufficientResources, else empty.
type JobProblem =
    {
      /// What the problem is about.
      Kind: ProblemKind
      /// cores, memory, disk or accelerators.
      Resource: string
      /// The amount asked for, as text.
      Requested: string
      /// What the batch system may give, as text.
      Available: string
      /// What was wrong and how to fix it.
      Message: string }

/// A prepared job, or why the job cannot be issued: exactly one is set.
type Preparation =
    {
      /// The job, everything checked.
      Job: PreparedJob | null
      /// The first problem found.
      Problem: JobProblem | null }

/// One match expression, spelled as Kubernetes does (In, NotIn, Exists, DoesNotExist).
type NodeSelectorRequirementView =
    { Key: string
      Operator: string
      /// Empty for Exists and DoesNotExist.
      Values: IReadOnlyList<string> }

/// A preferred scheduling term: all expressions must match for the weight to count.
type PreferredSchedulingTermView =
    { Weight: int
      MatchExpressions: IReadOnlyList<NodeSelectorRequirementView> }

/// A toleration spelled as Kubernetes does.
type TolerationView =
    {
      /// The taint key.
      Key: string
      /// Equal or Exists.
      Operator: string
      /// The tolerated value for Equal; null for Exists.
      Value: string | null
      /// NoSchedule, PreferNoSchedule or NoExecute; null for every effect.
      Effect: string | null }

/// What to set on a pod spec; each part maps 1:1 onto `V1PodSpec`.
type PodPlacementView =
    {
      /// Whether to set `Affinity.NodeAffinity` at all.
      HasNodeAffinity: bool
      /// Required node selector terms (ORed), each a list of match expressions (ANDed); empty leaves the field unset.
      RequiredTerms: IReadOnlyList<IReadOnlyList<NodeSelectorRequirementView>>
      /// Preferred terms; empty leaves the field unset.
      PreferredTerms: IReadOnlyList<PreferredSchedulingTermView>
      /// Tolerations; empty leaves `Tolerations` unset.
      Tolerations: IReadOnlyList<TolerationView> }

/// A placement applied, or why it cannot be: exactly one is set.
type PlacementApplied =
    {
      /// The pod's node affinity and tolerations.
      Placement: PodPlacementView | null
      /// What was wrong, naming the label.
      Error: string | null }

/// What a job's Kubernetes Job is made of.
type JobManifest =
    { Id: int
      /// The Job's name.
      Name: string
      /// The human-readable name.
      Description: string | null
      Command: string
      Image: string
      /// The pool's share, kept on the Job for re-attaching.
      Millicores: int64
      Memory: int64
      Disk: int64
      /// Resource name → canonical quantity, for `V1ResourceRequirements.Requests`.
      Requests: IReadOnlyDictionary<string, string>
      /// Equal to the requests.
      Limits: IReadOnlyDictionary<string, string>
      Placement: PodPlacementView
      /// The container's variables in order.
      Environment: IReadOnlyList<KeyValuePair<string, string>> }

/// The next model and the effects to perform, in order.
type Transition =
    { Model: Model
      Effects: Effect array }

/// What collecting took: the result (null when none waits), the model without it, and the effects to perform.
type Collected =
    { Model: Model
      Result: JobResult | null
      Effects: Effect array }

/// What the shell does for each effect: one method per case, so a new case is a build error in every handler.
type IEffectHandler<'T> =
    /// Create the job's Kubernetes Job (see `Jobs.Manifest`).
    abstract Create: job: PreparedJob -> 'T
    /// Delete a Job; a missing one is fine.
    abstract Delete: jobId: int * name: string -> 'T
    /// A job ended; `pod` (or null) is the pod whose log explains a failure.
    abstract Ended: result: JobResult * pod: (string | null) -> 'T
    /// Remove the run's work directory on a node no job of the run is on any more.
    abstract CleanupNode: node: string -> 'T
    /// Delete every Job and pod of the run.
    abstract DeleteAll: unit -> 'T

/// Converting between the core's placements and their C# views.
module internal Views =

    /// C# may hand over nulls despite its annotations; they become empty text, which validation then names.
    let text (value: string) =
        match box value with
        | null -> ""
        | _ -> value

    let selectors (entries: IEnumerable<KeyValuePair<string, IReadOnlyList<string>>> | null) =
        match entries with
        | null -> []
        | entries ->
            entries
            |> Seq.map (fun entry ->
                { LabelSelector.key = text entry.Key
                  values =
                    match box entry.Value with
                    | null -> []
                    | _ -> entry.Value |> Seq.map text |> List.ofSeq })
            |> List.ofSeq

    let private operatorName operator =
        match operator with
        | NodeSelectorOperator.In -> "In"
        | NodeSelectorOperator.NotIn -> "NotIn"
        | NodeSelectorOperator.Exists -> "Exists"
        | NodeSelectorOperator.DoesNotExist -> "DoesNotExist"

    let private effectName effect =
        match effect with
        | TaintEffect.NoSchedule -> "NoSchedule"
        | TaintEffect.PreferNoSchedule -> "PreferNoSchedule"
        | TaintEffect.NoExecute -> "NoExecute"

    let private expressions (term: NodeSelectorTerm) : IReadOnlyList<NodeSelectorRequirementView> =
        term.matchExpressions
        |> List.map (fun e ->
            { NodeSelectorRequirementView.Key = e.key
              Operator = operatorName e.operator
              Values = Array.ofList e.values })
        |> Array.ofList
        :> _

    let placement (placement: PodPlacement) : PodPlacementView =
        let affinity = defaultArg placement.nodeAffinity { required = []; preferred = [] }

        { HasNodeAffinity = placement.nodeAffinity.IsSome
          RequiredTerms = affinity.required |> List.map expressions |> Array.ofList
          PreferredTerms =
            affinity.preferred
            |> List.map (fun p ->
                { Weight = p.weight
                  MatchExpressions = expressions p.preference })
            |> Array.ofList
          Tolerations =
            placement.tolerations
            |> List.map (fun t ->
                { TolerationView.Key = t.key
                  Operator =
                    (match t.operator with
                     | TolerationOperator.Equal -> "Equal"
                     | TolerationOperator.Exists -> "Exists")
                  Value = Option.toObj t.value
                  Effect = t.effect |> Option.map effectName |> Option.toObj })
            |> Array.ofList }

    let exitCode (reason: ExitReason) =
        match reason with
        | ExitReason.Finished -> ExitCode.Finished
        | ExitReason.Failed -> ExitCode.Failed
        | ExitReason.Lost -> ExitCode.Lost
        | ExitReason.Killed -> ExitCode.Killed
        | ExitReason.Error -> ExitCode.Error
        | ExitReason.MemLimit -> ExitCode.MemLimit

    let result (result: UpdatedJob) : JobResult =
        { JobId = result.id
          ExitStatus = result.exitStatus
          Reason = exitCode result.reason
          WallTimeMs = result.wallTime
          BackingId = result.backingId
          Message = Option.toObj result.message }

    let request (cores, memory, disk, accelerators: IReadOnlyList<AcceleratorRequirement> | null) : ResourceRequest =
        { cores = cores
          memory = memory
          disk = disk
          accelerators =
            match accelerators with
            | null -> []
            | accelerators -> List.ofSeq accelerators }

    let resourceProblem (request: ResourceRequest) (error: ResourceError) : JobProblem =
        let lack resource requested available =
            { Kind = ProblemKind.InsufficientResources
              Resource = resource
              Requested = requested
              Available = available
              Message = error.Message }

        match error with
        | ExceedsMaximum(_, resource, requested, maximum) -> lack resource.Name requested maximum
        | InvalidAcceleratorCount _
        | UnsupportedAccelerator _
        | InvalidAcceleratorBrand _
        | InvalidAcceleratorModel _ -> lack "accelerators" (string request.accelerators.Length) "none of that kind"
        | InvalidCores _
        | NegativeMemory _
        | NegativeDisk _
        | NegativeOverhead _
        | ResourceTooLarge _ ->
            { Kind = ProblemKind.Job
              Resource = ""
              Requested = ""
              Available = ""
              Message = error.Message }

    let problem (request: ResourceRequest) (error: JobError) : JobProblem =
        let about kind =
            { Kind = kind
              Resource = ""
              Requested = ""
              Available = ""
              Message = error.Message }

        match error with
        | EmptyCommand
        | CommandTooLong _ -> about ProblemKind.Command
        | InvalidImage _ -> about ProblemKind.Job
        | InvalidResources error -> resourceProblem request error
        | InvalidEnvironmentName _ -> about ProblemKind.Environment
        | InvalidPlacement _ -> about ProblemKind.Placement
