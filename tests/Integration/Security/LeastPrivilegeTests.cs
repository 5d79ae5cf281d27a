using HybridBatch.Integration.Cluster;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Xunit.Abstractions;

namespace HybridBatch.Integration.Security;

/// <summary>
/// The product's identity (the least-privileged kubeconfig) can do each thing the batch system does, and nothing more:
/// asked of the API server (SelfSubjectAccessReview) and tried for real.
/// </summary>
public sealed class LeastPrivilegeTests(LocalClusterFixture cluster, ITestOutputHelper output) : IClassFixture<LocalClusterFixture>
{
    /// <summary>What the batch system does, in either object kind (pods create/delete: bare pods), and the quota reads of its admission: API group, resource, subresource, verb.</summary>
    public static TheoryData<string, string, string, string> Needed() => new()
    {
        { "batch", "jobs", "", "create" },
        { "batch", "jobs", "", "list" },
        { "batch", "jobs", "", "watch" },
        { "batch", "jobs", "", "delete" },
        { "batch", "jobs", "", "deletecollection" },
        { "", "pods", "", "create" },
        { "", "pods", "", "list" },
        { "", "pods", "", "watch" },
        { "", "pods", "", "delete" },
        { "", "pods", "", "deletecollection" },
        { "", "pods", "log", "get" },
        { "", "resourcequotas", "", "get" },
        { "", "resourcequotas", "", "list" },
        { "", "resourcequotas", "", "watch" },
    };

    /// <summary>What it must not be able to do: namespace (null: cluster scope; "other": the other namespace), group, resource, subresource, verb.</summary>
    public static TheoryData<string?, string, string, string, string> Forbidden() => new()
    {
        { "own", "", "secrets", "", "get" },
        { "own", "", "secrets", "", "list" },
        { "own", "", "secrets", "", "create" },
        { "own", "", "configmaps", "", "get" },
        { "own", "", "configmaps", "", "list" },
        { "own", "", "configmaps", "", "create" },
        { "own", "", "serviceaccounts", "token", "create" },
        { "own", "", "pods", "exec", "create" },
        { "own", "rbac.authorization.k8s.io", "roles", "", "create" },
        { "own", "rbac.authorization.k8s.io", "rolebindings", "", "create" },
        { "other", "batch", "jobs", "", "create" },
        { "other", "batch", "jobs", "", "list" },
        { "other", "", "pods", "", "list" },
        { "other", "", "secrets", "", "list" },
        { null, "", "nodes", "", "patch" },
        { null, "", "nodes", "", "delete" },
        { null, "", "nodes", "status", "patch" },
        { null, "", "namespaces", "", "create" },
        { null, "", "namespaces", "", "delete" },
        { null, "rbac.authorization.k8s.io", "clusterrolebindings", "", "create" },
        { null, "", "persistentvolumes", "", "create" },
        { null, "", "secrets", "", "list" },
    };

    private async Task<V1SubjectAccessReviewStatus> AskAsync(string? @namespace, string group, string resource, string subresource, string verb)
    {
        var review = await cluster.Client.AuthorizationV1.CreateSelfSubjectAccessReviewAsync(new V1SelfSubjectAccessReview
        {
            Spec = new V1SelfSubjectAccessReviewSpec
            {
                ResourceAttributes = new V1ResourceAttributes
                {
                    NamespaceProperty = @namespace,
                    Group = group,
                    Resource = resource,
                    Subresource = subresource.Length == 0 ? null : subresource,
                    Verb = verb,
                },
            },
        });
        return review.Status;
    }

    [Theory]
    [MemberData(nameof(Needed))]
    public async Task The_identity_may_do_what_the_batch_system_needs(string group, string resource, string subresource, string verb)
    {
        var status = await AskAsync(cluster.Namespace, group, resource, subresource, verb);
        Assert.True(status.Allowed, $"{verb} {resource}{(subresource.Length > 0 ? "/" + subresource : "")} in {cluster.Namespace} should be allowed: {status.Reason}");
    }

    [Theory]
    [MemberData(nameof(Forbidden))]
    public async Task The_identity_holds_nothing_more(string? scope, string group, string resource, string subresource, string verb)
    {
        var @namespace = scope switch
        {
            "own" => cluster.Namespace,
            "other" => cluster.OtherNamespace,
            _ => null,
        };
        var status = await AskAsync(@namespace, group, resource, subresource, verb);
        output.WriteLine($"{verb} {group}/{resource}/{subresource} in {@namespace ?? "(cluster)"}: allowed={status.Allowed}");
        Assert.False(status.Allowed, $"{verb} {resource}{(subresource.Length > 0 ? "/" + subresource : "")} in {@namespace ?? "the cluster scope"} must be denied");
    }

    [Fact]
    public async Task Real_attempts_beyond_the_role_are_refused_with_403()
    {
        var client = cluster.Client;
        var attempts = new (string What, Func<Task> Call)[]
        {
            ("list secrets", () => client.CoreV1.ListNamespacedSecretAsync(cluster.Namespace)),
            ("read a service account token secret", () => client.CoreV1.ListNamespacedSecretAsync(cluster.Namespace, fieldSelector: "type=kubernetes.io/service-account-token")),
            ("list configmaps", () => client.CoreV1.ListNamespacedConfigMapAsync(cluster.Namespace)),
            ("create a configmap", () => client.CoreV1.CreateNamespacedConfigMapAsync(
                new V1ConfigMap { Metadata = new V1ObjectMeta { Name = "hb-must-not-exist" } }, cluster.Namespace)),
            ("list jobs in the other namespace", () => client.BatchV1.ListNamespacedJobAsync(cluster.OtherNamespace)),
            ("create a job in the other namespace", () => client.BatchV1.CreateNamespacedJobAsync(
                new V1Job
                {
                    Metadata = new V1ObjectMeta { Name = "hb-must-not-exist" },
                    Spec = new V1JobSpec
                    {
                        Template = new V1PodTemplateSpec
                        {
                            Spec = new V1PodSpec { RestartPolicy = "Never", Containers = [new V1Container { Name = "c", Image = "busybox:1.35" }] },
                        },
                    },
                },
                cluster.OtherNamespace)),
            ("create a namespace", () => client.CoreV1.CreateNamespaceAsync(new V1Namespace { Metadata = new V1ObjectMeta { Name = "hb-must-not-exist" } })),
            ("label a node", async () =>
            {
                var node = (await client.CoreV1.ListNodeAsync()).Items[0].Metadata.Name;
                await client.CoreV1.PatchNodeAsync(
                    new V1Patch("""{"metadata":{"labels":{"hybridbatch.io/must-not":"exist"}}}""", V1Patch.PatchType.MergePatch), node);
            }),
            ("delete a node", async () =>
            {
                var node = (await client.CoreV1.ListNodeAsync()).Items[0].Metadata.Name;
                await client.CoreV1.DeleteNodeAsync(node, new V1DeleteOptions { DryRun = ["All"] });
            }),
        };

        foreach (var (what, call) in attempts)
        {
            var error = await Assert.ThrowsAsync<HttpOperationException>(call);
            output.WriteLine($"{what}: {(int)error.Response.StatusCode}");
            Assert.True(error.Response.StatusCode == System.Net.HttpStatusCode.Forbidden, $"{what}: expected 403, got {error.Response.StatusCode}");
        }
    }
}
