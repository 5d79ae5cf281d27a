using HybridBatch.Core;
using HybridBatch.Core.Api;

namespace HybridBatch.Resilience;

/// <summary>What the core's classifier decided about a failed Kubernetes call.</summary>
public enum KubernetesCallDecision
{
    /// <summary>Repeat the call; <see cref="KubernetesApiException"/> carries it when the retry budget ran out.</summary>
    Retry = 1,

    /// <summary>A watch's resourceVersion expired (410 Gone): list again and watch from the new resourceVersion.</summary>
    Resync = 2,

    /// <summary>What the call asked for is already so: 404 on a delete, 409 AlreadyExists on our create.</summary>
    AlreadyDone = 3,

    /// <summary>Give up: retrying cannot fix it; the message says why and how to fix it.</summary>
    Fail = 4,
}

/// <summary>The core's decisions as <see cref="KubernetesCallDecision"/>.</summary>
internal static class KubernetesCallDecisions
{
#pragma warning disable CS8524 // Every named kind is handled: a new kind is a build error (CS8509), not a silent default.
    /// <summary>The kind of a decision of the core.</summary>
    public static KubernetesCallDecision Of(Decision decision) => Retries.Kind(decision) switch
    {
        DecisionKind.Retry => KubernetesCallDecision.Retry,
        DecisionKind.Resync => KubernetesCallDecision.Resync,
        DecisionKind.AlreadyDone => KubernetesCallDecision.AlreadyDone,
        DecisionKind.Fail => KubernetesCallDecision.Fail,
    };
#pragma warning restore CS8524
}
