using HybridBatch.Core;
using HybridBatch.Core.Api;
using k8s.Models;

namespace HybridBatch.Translation;

/// <summary>Translates Kubernetes pods into the core's observations. Translation only: no decisions.</summary>
internal static class Observations
{
    /// <summary>The job id on an object of this run, from its label (never parsed out of a name).</summary>
    public static int? JobId(V1ObjectMeta? metadata) =>
        metadata?.Labels is { } labels
        && labels.TryGetValue(Names.JobIdLabel, out var text)
        && int.TryParse(text, System.Globalization.CultureInfo.InvariantCulture, out var id)
            ? id
            : null;

    private static long? Millis(DateTime? time) =>
        time is { } t ? new DateTimeOffset(DateTime.SpecifyKind(t, DateTimeKind.Utc)).ToUnixTimeMilliseconds() : null;

    /// <summary>What a pod says about its job, or null when the pod carries no job id.</summary>
    /// <param name="pod">The pod.</param>
    /// <param name="nowMs">The time to assume for a start the pod does not state.</param>
    public static JobState.PodFacts? Of(V1Pod pod, long nowMs)
    {
        if (JobId(pod.Metadata) is not { } id)
        {
            return null;
        }

        var status = pod.Status;
        var scheduled = status?.Conditions?.FirstOrDefault(c => c.Type == "PodScheduled");
        var unschedulable = scheduled is { Status: "False", Reason: "Unschedulable" } ? scheduled.Message ?? "no node fits the pod" : null;
        var container = status?.ContainerStatuses?.FirstOrDefault();
        return Pods.Facts(
            id,
            pod.Metadata.Name,
            pod.Spec?.NodeName,
            Pods.Phase(status?.Phase),
            status?.Reason,
            status?.Message,
            unschedulable,
            Of(container, nowMs),
            pod.Metadata.DeletionTimestamp is not null);
    }

    private static JobState.Container Of(V1ContainerStatus? status, long nowMs)
    {
        var state = status?.State;
        if (state?.Terminated is { } terminated)
        {
            return Pods.Terminated(
                terminated.ExitCode,
                terminated.Reason,
                terminated.Message,
                Millis(terminated.StartedAt),
                Millis(terminated.FinishedAt));
        }

        if (state?.Running is { } running)
        {
            return Pods.Running(Millis(running.StartedAt) ?? nowMs);
        }

        if (state?.Waiting is { } waiting)
        {
            return Pods.Waiting(waiting.Reason, waiting.Message);
        }

        return Pods.NotCreated;
    }
}
