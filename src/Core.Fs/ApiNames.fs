namespace HybridBatch.Core.Api

open System
open System.Collections.Generic
open HybridBatch.Core

/// Placements (Toil's `Placement`) turned into pod node affinity and tolerations.
[<AbstractClass; Sealed>]
type Placements =
    /// Applies a placement given as key → values lists (an empty list means any value) and an optional
    /// preemptibility; the error names the invalid label when a key or value is invalid.
    static member Apply
        (
            requiredLabels: IEnumerable<KeyValuePair<string, IReadOnlyList<string>>> | null,
            desiredLabels: IEnumerable<KeyValuePair<string, IReadOnlyList<string>>> | null,
            prohibitedLabels: IEnumerable<KeyValuePair<string, IReadOnlyList<string>>> | null,
            toleratedTaints: IEnumerable<KeyValuePair<string, IReadOnlyList<string>>> | null,
            preemptible: Nullable<bool>
        ) : PlacementApplied =
        let placement =
            { requiredLabels = Views.selectors requiredLabels
              desiredLabels = Views.selectors desiredLabels
              prohibitedLabels = Views.selectors prohibitedLabels
              toleratedTaints = Views.selectors toleratedTaints
              preemptible = Option.ofNullable preemptible }

        match Placement.apply placement with
        | Ok applied ->
            { Placement = Views.placement applied
              Error = null }
        | Error error -> { Placement = null; Error = error.Message }

/// Names and labels of the objects the batch system creates.
[<AbstractClass; Sealed>]
type Names =
    /// The label key naming the run.
    static member RunLabel = Naming.Labels.Run
    /// The label key naming the owner.
    static member OwnerLabel = Naming.Labels.Owner
    /// The label key holding the job id.
    static member JobIdLabel = Naming.Labels.JobId
    /// The label key marking cleanup Jobs.
    static member CleanupLabel = Naming.Labels.Cleanup

    /// The name of a node's cleanup Job.
    static member CleanupName(runId: string, node: string) = Naming.cleanupName runId node

    /// The owner label value.
    static member OwnerValue(owner: string) = Naming.ownerLabel owner

    /// Toil's default owner for a user name.
    static member DefaultOwner(userName: string) = Naming.defaultOwner userName

    /// Null when the run id is a valid label value, else why not and how to fix it.
    static member CheckRunId(runId: string) : string | null =
        match Naming.checkRunId runId with
        | Ok _ -> null
        | Error message -> message
