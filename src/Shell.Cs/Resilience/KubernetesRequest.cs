using System.Text.Json;
using HybridBatch.Core;
using HybridBatch.Core.Api;

namespace HybridBatch.Resilience;

/// <summary>
/// What one HTTP request to the API server tries to do, read from its method, path, query and body: the RBAC
/// permission it exercises, whether its response is a stream, and whether repeating it is safe.
/// </summary>
internal sealed record KubernetesRequest(Permission Permission, bool IsStreaming, bool MadeIdempotent, string Method, string Path)
{
    /// <summary>The RBAC verb as Kubernetes spells it.</summary>
    public string Verb => Retries.VerbName(Permission.verb);

    /// <summary>The resource as RBAC names it, e.g. <c>jobs.batch</c> or <c>pods/log</c>.</summary>
    public string Resource => Retries.ResourceName(Permission);

    /// <summary>The namespace, or null for a cluster-scoped call.</summary>
    public string? Namespace => Permission.inNamespace is { } ns ? ns.Value : null;

    /// <summary>Reads a request; <paramref name="basePath"/> is the path of the configured server URL.</summary>
    public static KubernetesRequest From(HttpMethod method, Uri? uri, string? contentType, ReadOnlySpan<byte> body, string basePath = "/")
    {
        var path = uri?.AbsolutePath ?? "/";
        var query = uri?.Query ?? "";
        var segments = ApiSegments(path, basePath);
        var (group, resource, name, subresource, ns) = Parse(segments);
        var isWatch = QueryFlag(query, "watch");
        var isStreaming = isWatch || QueryFlag(query, "follow");
        var verb = Retries.VerbOf(method.Method, name is not null, isWatch);
        var permission = Retries.Permission(verb, group, resource, subresource, ns);
        return new KubernetesRequest(permission, isStreaming, IsMadeIdempotent(method, contentType, body), method.Method, path);
    }

    // A create whose object has a fixed name answers 409 AlreadyExists when repeated, and a merge or apply patch
    // converges, so both are safe to repeat; a create with generateName or a JSON patch is not.
    private static bool IsMadeIdempotent(HttpMethod method, string? contentType, ReadOnlySpan<byte> body)
    {
        if (method == HttpMethod.Patch)
        {
            return contentType is not null
                && (contentType.Contains("merge-patch", StringComparison.OrdinalIgnoreCase)
                    || contentType.Contains("apply-patch", StringComparison.OrdinalIgnoreCase));
        }

        if (method != HttpMethod.Post || body.IsEmpty)
        {
            return false;
        }

        try
        {
            var reader = new Utf8JsonReader(body);
            using var document = JsonDocument.ParseValue(ref reader);
            return document.RootElement.ValueKind == JsonValueKind.Object
                && document.RootElement.TryGetProperty("metadata", out var metadata)
                && metadata.ValueKind == JsonValueKind.Object
                && metadata.TryGetProperty("name", out var name)
                && name.ValueKind == JsonValueKind.String
                && !string.IsNullOrWhiteSpace(name.GetString());
        }
        catch (JsonException)
        {
            return false;
        }
    }

    private static bool QueryFlag(string query, string key)
    {
        foreach (var pair in query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = pair.Split('=', 2);
            if (string.Equals(Uri.UnescapeDataString(parts[0]), key, StringComparison.OrdinalIgnoreCase))
            {
                var value = parts.Length > 1 ? Uri.UnescapeDataString(parts[1]) : "true";
                return value is "1" || string.Equals(value, "true", StringComparison.OrdinalIgnoreCase);
            }
        }

        return false;
    }

    // The segments after /api/v1 or /apis/{group}/{version}, with the group; a path outside the API yields none.
    private static (string Group, string[] Segments) ApiSegments(string path, string basePath)
    {
        var relative = path;
        var prefix = basePath.TrimEnd('/');
        if (prefix.Length > 0 && relative.StartsWith(prefix + "/", StringComparison.Ordinal))
        {
            relative = relative[prefix.Length..];
        }

        var segments = relative.Split('/', StringSplitOptions.RemoveEmptyEntries).Select(Uri.UnescapeDataString).ToArray();
        return segments switch
        {
            ["api", _, .. var rest] => ("", rest),
            ["apis", var group, _, .. var rest] => (group, rest),
            _ => ("", segments),
        };
    }

    private static (string Group, string Resource, string? Name, string? Subresource, string? Namespace) Parse((string Group, string[] Segments) api)
    {
        var (group, rest) = api;
        return rest switch
        {
            ["namespaces", var ns, var resource, var name, var sub, ..] => (group, resource, name, sub, ns),
            ["namespaces", var ns, var resource, var name] => (group, resource, name, null, ns),
            ["namespaces", var ns, var resource] => (group, resource, null, null, ns),
            // A namespace itself, and cluster-scoped resources.
            [var resource, var name, var sub, ..] => (group, resource, name, sub, null),
            [var resource, var name] => (group, resource, name, null, null),
            [var resource] => (group, resource, null, null, null),
            _ => (group, "", null, null, null),
        };
    }
}
