using System.Reflection;
using HybridBatch.Resilience;

namespace HybridBatch.Integration.BatchSystem;

/// <summary>What the library shows C#, without a cluster: the core's F# unions stay behind records and enums.</summary>
public sealed class PublicApiTests
{
    private const BindingFlags Declared =
        BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;

    [Fact]
    public void No_public_type_or_member_of_the_library_shows_an_FSharp_union()
    {
        var unions = typeof(KubernetesBatchSystem).Assembly.GetExportedTypes()
            .SelectMany(type => Signatures(type).Select(signature => (Where: $"{type.FullName}{signature.Member}", signature.Type)))
            .Where(use => Mentions(use.Type).Any(IsUnion))
            .Select(use => $"{use.Where}: {use.Type}")
            .Distinct()
            .ToList();

        Assert.True(unions.Count == 0, "F# unions in the public API:\n" + string.Join("\n", unions));
    }

    [Fact]
    public void The_check_finds_an_FSharp_union_and_an_FSharp_option()
    {
        Assert.True(IsUnion(typeof(Core.JobState.Effect)));
        Assert.Contains(Mentions(typeof(Microsoft.FSharp.Core.FSharpOption<string>[])), IsUnion);
        Assert.DoesNotContain(Mentions(typeof(IReadOnlyList<KubernetesCallRecord>)), IsUnion);
    }

    /// <summary>Every type a public type shows: what it derives from and implements, and its public members' types.</summary>
    private static IEnumerable<(string Member, Type Type)> Signatures(Type type)
    {
        if (type.BaseType is { } baseType)
        {
            yield return (" : base", baseType);
        }

        foreach (var implemented in type.GetInterfaces())
        {
            yield return (" : interface", implemented);
        }

        foreach (var field in type.GetFields(Declared))
        {
            yield return ($".{field.Name}", field.FieldType);
        }

        foreach (var property in type.GetProperties(Declared))
        {
            yield return ($".{property.Name}", property.PropertyType);
        }

        foreach (var method in type.GetMethods(Declared).Cast<MethodBase>().Concat(type.GetConstructors(Declared)))
        {
            if (method is MethodInfo info)
            {
                yield return ($".{method.Name} returns", info.ReturnType);
            }

            foreach (var parameter in method.GetParameters())
            {
                yield return ($".{method.Name}({parameter.Name})", parameter.ParameterType);
            }
        }
    }

    /// <summary>A type and the types inside it: array elements, by-ref targets and generic arguments.</summary>
    private static IEnumerable<Type> Mentions(Type type)
    {
        yield return type;
        var inner = type.HasElementType ? [type.GetElementType()!] : type.IsGenericType ? type.GetGenericArguments() : [];
        foreach (var mentioned in inner.SelectMany(Mentions))
        {
            yield return mentioned;
        }
    }

    /// <summary>Whether F# compiled the type from a union (options and lists included): its CompilationMapping says SumType.</summary>
    private static bool IsUnion(Type type) =>
        type.GetCustomAttributesData().Any(attribute =>
            attribute.AttributeType.FullName == "Microsoft.FSharp.Core.CompilationMappingAttribute"
            && attribute.ConstructorArguments.Count > 0
            && (Convert.ToInt32(attribute.ConstructorArguments[0].Value, System.Globalization.CultureInfo.InvariantCulture) & 31) == 1);
}
