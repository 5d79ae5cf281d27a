using HybridBatch.Core.Api;
using HybridBatch.Translation;
using k8s.Models;

namespace HybridBatch;

/// <summary>
/// Where a job's pod may and should land: Toil's <c>KubernetesBatchSystem.Placement</c> over the F# core. Labels and
/// taints map a key to the values that count; an empty list means any value.
/// </summary>
/// <remarks>
/// Translation only: the core decides the node affinity and tolerations (<see cref="Placements"/>), and
/// <see cref="Apply"/> copies them onto the pod spec.
/// </remarks>
public sealed class Placement
{
    /// <summary>Labels the node must have, each with one of its values (all of them must hold).</summary>
    public IDictionary<string, IReadOnlyList<string>> RequiredLabels { get; } =
        new Dictionary<string, IReadOnlyList<string>>();

    /// <summary>Labels the node should have; each one the node has adds weight 1 to its score.</summary>
    public IDictionary<string, IReadOnlyList<string>> DesiredLabels { get; } =
        new Dictionary<string, IReadOnlyList<string>>();

    /// <summary>Labels the node must not have with one of these values (a node without the label is fine).</summary>
    public IDictionary<string, IReadOnlyList<string>> ProhibitedLabels { get; } =
        new Dictionary<string, IReadOnlyList<string>>();

    /// <summary>Taints, with these values, the pod tolerates whatever their effect.</summary>
    public IDictionary<string, IReadOnlyList<string>> ToleratedTaints { get; } =
        new Dictionary<string, IReadOnlyList<string>>();

    /// <summary>
    /// Whether the job is preemptible: <see langword="true"/> prefers and tolerates spot nodes,
    /// <see langword="false"/> keeps it off them, <see langword="null"/> (the default) says nothing about them.
    /// </summary>
    public bool? Preemptible { get; private set; }

    /// <summary>
    /// Toil's <c>set_preemptible</c>: a preemptible job may run on preemptible or normal nodes and prefers
    /// preemptible ones; a non-preemptible job never lands on a preemptible node. Understands EKS, GKE preemptible
    /// and spot, AKS spot and Karpenter nodes. Unlike Toil, which appends constraints on every call, the last call
    /// wins.
    /// </summary>
    /// <param name="preemptible">Whether the job may be preempted.</param>
    public void SetPreemptible(bool preemptible) => Preemptible = preemptible;

    /// <summary>
    /// Sets <c>Affinity.NodeAffinity</c> (when anything is required or preferred) and <c>Tolerations</c> (when any)
    /// on <paramref name="podSpec"/>, so that the pod runs on the right kind of node; other affinities are kept.
    /// </summary>
    /// <param name="podSpec">The pod spec to place.</param>
    /// <exception cref="ArgumentException">A label or taint key or value is not valid Kubernetes syntax; the
    /// message names it and says how to fix it.</exception>
    public void Apply(V1PodSpec podSpec)
    {
        ArgumentNullException.ThrowIfNull(podSpec);
        var applied = Placements.Apply(RequiredLabels, DesiredLabels, ProhibitedLabels, ToleratedTaints, Preemptible);
        if (applied.Error is { } error)
        {
            throw new ArgumentException(error);
        }

        PlacementMapping.Apply(applied.Placement!, podSpec);
    }
}
