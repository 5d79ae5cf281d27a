using k8s;
using k8s.Models;

namespace HybridBatch.Integration;

/// <summary>
/// Placement's exact affinity and toleration output, translated from Toil's <c>KubernetesBatchSystemBenchTest</c>
/// (<c>test_preemptability_constraints</c>, <c>test_label_constraints</c>). Toil's two preemptible schemes come first,
/// in Toil's order; GKE spot, AKS spot and Karpenter follow. Tolerations spell out <c>Equal</c>, which Toil leaves
/// unset (Kubernetes' default, so the same toleration).
/// </summary>
public sealed class PlacementTests
{
    private static V1PodSpec Applied(Placement placement)
    {
        var spec = new V1PodSpec { Containers = [] };
        placement.Apply(spec);
        return spec;
    }

    private static string Json(object? value) => value is null ? "null" : KubernetesJson.Serialize(value);

    private static string Lines(params string[] lines) => string.Concat(lines);

    [Fact]
    public void A_non_preemptible_job_is_kept_off_the_spot_nodes_of_every_cloud()
    {
        var placement = new Placement();
        placement.SetPreemptible(false);

        var spec = Applied(placement);

        Assert.Equal(
            Lines(
                """{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchExpressions":[""",
                """{"key":"eks.amazonaws.com/capacityType","operator":"NotIn","values":["SPOT"]},""",
                """{"key":"cloud.google.com/gke-preemptible","operator":"NotIn","values":["true"]},""",
                """{"key":"cloud.google.com/gke-spot","operator":"NotIn","values":["true"]},""",
                """{"key":"kubernetes.azure.com/scalesetpriority","operator":"NotIn","values":["spot"]},""",
                """{"key":"karpenter.sh/capacity-type","operator":"NotIn","values":["spot"]}""",
                """]}]}}}"""),
            Json(spec.Affinity));
        Assert.Null(spec.Tolerations);
    }

    [Fact]
    public void A_preemptible_job_prefers_the_spot_nodes_of_every_cloud_and_tolerates_their_taints()
    {
        var placement = new Placement();
        placement.SetPreemptible(true);

        var spec = Applied(placement);

        Assert.Equal(
            Lines(
                """{"nodeAffinity":{"preferredDuringSchedulingIgnoredDuringExecution":[""",
                """{"preference":{"matchExpressions":[{"key":"eks.amazonaws.com/capacityType","operator":"In","values":["SPOT"]}]},"weight":1},""",
                """{"preference":{"matchExpressions":[{"key":"cloud.google.com/gke-preemptible","operator":"In","values":["true"]}]},"weight":1},""",
                """{"preference":{"matchExpressions":[{"key":"cloud.google.com/gke-spot","operator":"In","values":["true"]}]},"weight":1},""",
                """{"preference":{"matchExpressions":[{"key":"kubernetes.azure.com/scalesetpriority","operator":"In","values":["spot"]}]},"weight":1},""",
                """{"preference":{"matchExpressions":[{"key":"karpenter.sh/capacity-type","operator":"In","values":["spot"]}]},"weight":1}""",
                """]}}"""),
            Json(spec.Affinity));
        Assert.Equal(
            Lines(
                """[{"key":"cloud.google.com/gke-preemptible","operator":"Equal","value":"true"},""",
                """{"key":"cloud.google.com/gke-spot","operator":"Equal","value":"true"},""",
                """{"key":"kubernetes.azure.com/scalesetpriority","operator":"Equal","value":"spot"}]"""),
            Json(spec.Tolerations));
    }

    [Fact]
    public void A_labelled_job_requires_desires_and_prohibits_its_labels()
    {
        var placement = new Placement();
        placement.RequiredLabels["GottaBeSetTo"] = ["This"];
        placement.DesiredLabels["OutghtToBeSetTo"] = ["That"];
        placement.ProhibitedLabels["CannotBe"] = ["ABadThing"];

        var spec = Applied(placement);

        Assert.Equal(
            Lines(
                """{"nodeAffinity":{"preferredDuringSchedulingIgnoredDuringExecution":[""",
                """{"preference":{"matchExpressions":[{"key":"OutghtToBeSetTo","operator":"In","values":["That"]}]},"weight":1}],""",
                "\"requiredDuringSchedulingIgnoredDuringExecution\":{\"nodeSelectorTerms\":[{\"matchExpressions\":[",
                """{"key":"GottaBeSetTo","operator":"In","values":["This"]},""",
                """{"key":"CannotBe","operator":"NotIn","values":["ABadThing"]}""",
                """]}]}}}"""),
            Json(spec.Affinity));
        Assert.Null(spec.Tolerations);
    }

    [Fact]
    public void An_empty_value_list_means_any_value()
    {
        var placement = new Placement();
        placement.RequiredLabels["disktype"] = [];
        placement.DesiredLabels["example.com/zone"] = [];
        placement.ProhibitedLabels["example.com/draining"] = [];
        placement.ToleratedTaints["example.com/dedicated"] = [];

        var spec = Applied(placement);

        Assert.Equal(
            Lines(
                """{"nodeAffinity":{"preferredDuringSchedulingIgnoredDuringExecution":[""",
                """{"preference":{"matchExpressions":[{"key":"example.com/zone","operator":"Exists"}]},"weight":1}],""",
                "\"requiredDuringSchedulingIgnoredDuringExecution\":{\"nodeSelectorTerms\":[{\"matchExpressions\":[",
                """{"key":"disktype","operator":"Exists"},""",
                """{"key":"example.com/draining","operator":"DoesNotExist"}""",
                """]}]}}}"""),
            Json(spec.Affinity));
        Assert.Equal("""[{"key":"example.com/dedicated","operator":"Exists"}]""", Json(spec.Tolerations));
    }

    [Fact]
    public void A_tolerated_taint_gets_one_toleration_per_value()
    {
        var placement = new Placement();
        placement.ToleratedTaints["example.com/dedicated"] = ["batch", "gpu"];

        var spec = Applied(placement);

        Assert.Null(spec.Affinity);
        Assert.Equal(
            Lines(
                """[{"key":"example.com/dedicated","operator":"Equal","value":"batch"},""",
                """{"key":"example.com/dedicated","operator":"Equal","value":"gpu"}]"""),
            Json(spec.Tolerations));
    }

    [Fact]
    public void An_empty_placement_leaves_the_pod_spec_alone()
    {
        var spec = Applied(new Placement());

        Assert.Null(spec.Affinity);
        Assert.Null(spec.Tolerations);
    }

    [Fact]
    public void Applying_keeps_the_pods_other_affinities()
    {
        var podAffinity = new V1PodAffinity();
        var spec = new V1PodSpec { Containers = [], Affinity = new V1Affinity { PodAffinity = podAffinity } };
        var placement = new Placement();
        placement.SetPreemptible(false);

        placement.Apply(spec);

        Assert.Same(podAffinity, spec.Affinity.PodAffinity);
        Assert.NotNull(spec.Affinity.NodeAffinity);
    }

    [Fact]
    public void The_last_preemptibility_set_wins()
    {
        var placement = new Placement();
        placement.SetPreemptible(true);
        placement.SetPreemptible(false);

        var spec = Applied(placement);

        Assert.Null(spec.Affinity.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution);
        Assert.Null(spec.Tolerations);
        Assert.Equal(5, spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchExpressions.Count);
    }

    [Theory]
    [InlineData("required", "has space", "x")]
    [InlineData("desired", "example.com/two/slashes", "x")]
    [InlineData("prohibited", "Upper.Case/prefix", "x")]
    [InlineData("tolerated", "-leading-dash", "x")]
    [InlineData("required", "disktype", "not a value")]
    [InlineData("tolerated", "dedicated", "-a")]
    public void An_invalid_label_throws_an_ArgumentException_naming_it(string list, string key, string value)
    {
        var placement = new Placement();
        var labels = list switch
        {
            "required" => placement.RequiredLabels,
            "desired" => placement.DesiredLabels,
            "prohibited" => placement.ProhibitedLabels,
            _ => placement.ToleratedTaints,
        };
        labels[key] = [value];

        var error = Assert.Throws<ArgumentException>(() => placement.Apply(new V1PodSpec { Containers = [] }));

        Assert.Contains($"\"{key}\"", error.Message, StringComparison.Ordinal);
        if (value != "x")
        {
            Assert.Contains($"\"{value}\"", error.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void A_label_longer_than_63_characters_is_refused_with_its_length()
    {
        var placement = new Placement();
        var key = new string('a', 64);
        placement.RequiredLabels[key] = ["x"];

        var error = Assert.Throws<ArgumentException>(() => placement.Apply(new V1PodSpec { Containers = [] }));

        Assert.Contains(key, error.Message, StringComparison.Ordinal);
        Assert.Contains("more than 63", error.Message, StringComparison.Ordinal);
    }
}
