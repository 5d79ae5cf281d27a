using k8s;
using k8s.Autorest;
using k8s.Models;

namespace HybridBatch.Integration.Cluster;

/// <summary>
/// A namespace of its own for each test class, so that classes can run at once: made by the cluster's admin, with the
/// product identity's Role and RoleBinding copied from the identity's own namespace (one definition of what the product
/// may do: cluster/manifests/hybridbatch-rbac.yaml) and a default ServiceAccount that gives pods no API token, as there.
/// </summary>
internal static class TestNamespaces
{
    private const string Label = "hybridbatch.io/test-namespace";
    private const string IdentityRole = "hybridbatch";

    // Namespaces of test runs that were killed before they could delete theirs; no run lasts this long.
    private static readonly TimeSpan Abandoned = TimeSpan.FromHours(6);

    /// <summary>Creates a namespace the identity behind <paramref name="identity"/> may use as in its own, and waits until it may.</summary>
    public static async Task<string> CreateAsync(Kubernetes identity, string identityNamespace)
    {
        using var admin = Admin.Client();
        await DeleteAbandonedAsync(admin);
        var name = "hybridbatch-t-" + Guid.NewGuid().ToString("N")[..10];
        await admin.CoreV1.CreateNamespaceAsync(new V1Namespace
        {
            Metadata = new V1ObjectMeta { Name = name, Labels = new Dictionary<string, string> { [Label] = "true" } },
        });

        var role = await admin.RbacAuthorizationV1.ReadNamespacedRoleAsync(IdentityRole, identityNamespace);
        var binding = await admin.RbacAuthorizationV1.ReadNamespacedRoleBindingAsync(IdentityRole, identityNamespace);
        await admin.RbacAuthorizationV1.CreateNamespacedRoleAsync(
            new V1Role { Metadata = new V1ObjectMeta { Name = IdentityRole }, Rules = role.Rules }, name);
        await admin.RbacAuthorizationV1.CreateNamespacedRoleBindingAsync(
            new V1RoleBinding { Metadata = new V1ObjectMeta { Name = IdentityRole }, RoleRef = binding.RoleRef, Subjects = binding.Subjects }, name);

        // Pods are refused until the namespace's default ServiceAccount exists; the controller makes it shortly.
        V1ServiceAccount? defaultAccount = null;
        await WaitForAsync(
            async () => (defaultAccount = await TryAsync(() => admin.CoreV1.ReadNamespacedServiceAccountAsync("default", name))) is not null,
            $"the default ServiceAccount of namespace {name}");
        var automount = (await admin.CoreV1.ReadNamespacedServiceAccountAsync("default", identityNamespace)).AutomountServiceAccountToken;
        if (automount != defaultAccount!.AutomountServiceAccountToken)
        {
            // A merge patch, not a replace: the token controller updates the new account too, and a replace of the
            // version read here would conflict with it.
            var value = automount is { } on ? (on ? "true" : "false") : "null";
            await admin.CoreV1.PatchNamespacedServiceAccountAsync(
                new V1Patch($$"""{"automountServiceAccountToken":{{value}}}""", V1Patch.PatchType.MergePatch), "default", name);
        }

        // RBAC takes effect when the API server's caches see the new binding, a moment after it is created.
        await WaitForAsync(() => MayCreateJobsAsync(identity, name), $"the identity's permissions in namespace {name}");
        return name;
    }

    /// <summary>Deletes a test namespace; what is in it goes with it, in the background.</summary>
    public static async Task DeleteAsync(string name)
    {
        using var admin = Admin.Client();
        await TryAsync(() => admin.CoreV1.DeleteNamespaceAsync(name, new V1DeleteOptions { PropagationPolicy = "Background" }));
    }

    private static async Task DeleteAbandonedAsync(Kubernetes admin)
    {
        var namespaces = await admin.CoreV1.ListNamespaceAsync(labelSelector: Label);
        foreach (var ns in namespaces.Items.Where(n => n.Metadata.CreationTimestamp < DateTime.UtcNow - Abandoned && n.Metadata.DeletionTimestamp is null))
        {
            await TryAsync(() => admin.CoreV1.DeleteNamespaceAsync(ns.Metadata.Name));
        }
    }

    private static async Task<bool> MayCreateJobsAsync(Kubernetes identity, string @namespace)
    {
        var review = await identity.AuthorizationV1.CreateSelfSubjectAccessReviewAsync(new V1SelfSubjectAccessReview
        {
            Spec = new V1SelfSubjectAccessReviewSpec
            {
                ResourceAttributes = new V1ResourceAttributes { Group = "batch", Resource = "jobs", Verb = "create", NamespaceProperty = @namespace },
            },
        });
        return review.Status.Allowed;
    }

    private static async Task WaitForAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"{what}: not there within 60 s");
            }

            await Task.Delay(100);
        }
    }

    private static async Task<T?> TryAsync<T>(Func<Task<T>> call)
        where T : class
    {
        try
        {
            return await call();
        }
        catch (HttpOperationException ex) when (ex.Response.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
            return null;
        }
    }
}
