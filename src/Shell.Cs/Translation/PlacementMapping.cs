using HybridBatch.Core.Api;
using k8s.Models;

namespace HybridBatch.Translation;

/// <summary>Copies the core's node affinity and tolerations onto a pod spec. Translation only: the core decides them.</summary>
internal static class PlacementMapping
{
    /// <summary>
    /// Sets <c>Affinity.NodeAffinity</c> (when anything is required or preferred) and <c>Tolerations</c> (when any)
    /// on <paramref name="podSpec"/>; other affinities are kept.
    /// </summary>
    /// <param name="placement">What the core decided.</param>
    /// <param name="podSpec">The pod spec to place.</param>
    public static void Apply(PodPlacementView placement, V1PodSpec podSpec)
    {
        if (placement.HasNodeAffinity)
        {
            podSpec.Affinity ??= new V1Affinity();
            podSpec.Affinity.NodeAffinity = new V1NodeAffinity
            {
                RequiredDuringSchedulingIgnoredDuringExecution = placement.RequiredTerms.Count == 0
                    ? null
                    : new V1NodeSelector { NodeSelectorTerms = [.. placement.RequiredTerms.Select(ToTerm)] },
                PreferredDuringSchedulingIgnoredDuringExecution = placement.PreferredTerms.Count == 0
                    ? null
                    : [.. placement.PreferredTerms.Select(ToPreference)],
            };
        }

        if (placement.Tolerations.Count > 0)
        {
            podSpec.Tolerations = [.. placement.Tolerations.Select(ToToleration)];
        }
    }

    private static V1NodeSelectorTerm ToTerm(IReadOnlyList<NodeSelectorRequirementView> expressions) =>
        new() { MatchExpressions = [.. expressions.Select(ToRequirement)] };

    private static V1NodeSelectorRequirement ToRequirement(NodeSelectorRequirementView expression) =>
        new()
        {
            Key = expression.Key,
            OperatorProperty = expression.Operator,
            Values = expression.Values.Count == 0 ? null : [.. expression.Values],
        };

    private static V1PreferredSchedulingTerm ToPreference(PreferredSchedulingTermView term) =>
        new() { Weight = term.Weight, Preference = ToTerm(term.MatchExpressions) };

    private static V1Toleration ToToleration(TolerationView toleration) =>
        new()
        {
            Key = toleration.Key,
            OperatorProperty = toleration.Operator,
            Value = toleration.Value,
            Effect = toleration.Effect,
        };
}
