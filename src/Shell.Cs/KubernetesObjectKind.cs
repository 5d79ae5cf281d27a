namespace HybridBatch;

/// <summary>
/// What Kubernetes object each batch job runs as (<see cref="KubernetesBatchSystemOptions.ObjectKind"/>, the flag
/// <c>--kubernetesObjectKind</c>). Either way a job is one pod with <c>restartPolicy: Never</c>, with the same name,
/// labels, annotations, placement, security context and volumes, watched the same way.
/// </summary>
public enum KubernetesObjectKind
{
    /// <summary>
    /// A <c>batch/v1</c> Job with <c>backoffLimit: 0</c> wrapping the pod, as Toil's Kubernetes batch system makes:
    /// the default. The Job controller creates the pod; on Kubernetes 1.20 it also starts a new pod for one that was
    /// evicted, <c>backoffLimit: 0</c> notwithstanding, so an evicted job's command may run again behind the caller's
    /// back until its Job is deleted (the job itself is reported <see cref="BatchJobExitReason.Lost"/>).
    /// </summary>
    Job,

    /// <summary>
    /// A bare pod, created by the batch system itself: no Job controller between the create and the pod, so jobs
    /// start faster and cost fewer API requests, and nothing reruns a pod that is evicted, deleted or lost with its
    /// node: the job is reported <see cref="BatchJobExitReason.Lost"/> once and the caller decides what to do. The
    /// identity needs <c>create</c> and <c>delete</c> on pods.
    /// </summary>
    Pod,
}
