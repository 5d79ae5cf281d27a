using System.Globalization;
using System.Text.Json.Nodes;
using YamlDotNet.RepresentationModel;

namespace HybridBatch.Integration.Daemon;

/// <summary>
/// Checks JSON against the schemas of the TES 1.1 OpenAPI document: required fields, types, enums and, stricter than
/// the document, that every field is one the schema names (so a misspelt field is caught).
/// </summary>
internal static class TesSchema
{
    private static readonly Lazy<JsonObject> Document = new(Load);

    private static JsonObject Load()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "Daemon", "task_execution_service.openapi.yaml");
        var stream = new YamlStream();
        stream.Load(new StringReader(File.ReadAllText(path)));
        return (JsonObject)ToJson(stream.Documents[0].RootNode)!;
    }

    private static JsonNode? ToJson(YamlNode node) => node switch
    {
        YamlMappingNode map => new JsonObject(map.Children.Select(kv => KeyValuePair.Create(((YamlScalarNode)kv.Key).Value!, ToJson(kv.Value)))),
        YamlSequenceNode seq => new JsonArray([.. seq.Children.Select(ToJson)]),
        YamlScalarNode scalar => JsonValue.Create(scalar.Value),
        _ => null,
    };

    /// <summary>The problems of <paramref name="value"/> as an instance of the named schema; empty when it conforms.</summary>
    /// <remarks>With <paramref name="minimalTasks"/>, tasks need not have their required fields: the MINIMAL view shows only id and state.</remarks>
    public static List<string> Check(JsonNode? value, string schemaName, bool minimalTasks = false)
    {
        var problems = new List<string>();
        var schema = Document.Value["components"]!["schemas"]![schemaName] ?? throw new ArgumentException($"no schema {schemaName}");
        Check(value, schema.AsObject(), "$", problems, minimalTasks, open: false);
        return problems;
    }

    private static void Check(JsonNode? value, JsonObject schema, string at, List<string> problems, bool minimalTasks, bool open)
    {
        if (schema["$ref"]?.GetValue<string>() is { } reference)
        {
            if (reference.StartsWith("#/components/schemas/", StringComparison.Ordinal))
            {
                var name = reference["#/components/schemas/".Length..];
                Check(value, Document.Value["components"]!["schemas"]![name]!.AsObject(), at, problems, minimalTasks && name == "tesTask", open);
            }

            return; // External references (service-info's base schema) are checked by the caller.
        }

        foreach (var part in schema["allOf"]?.AsArray() ?? [])
        {
            // One part of an allOf names only some of the fields (the rest are the other parts', some external).
            Check(value, part!.AsObject(), at, problems, minimalTasks, open: true);
        }

        if (value is null)
        {
            return;
        }

        var type = schema["type"]?.GetValue<string>() ?? (schema["properties"] is not null ? "object" : null);
        switch (type)
        {
            case "object" when value is JsonObject obj:
                foreach (var required in minimalTasks ? [] : schema["required"]?.AsArray() ?? [])
                {
                    if (!obj.ContainsKey(required!.GetValue<string>()))
                    {
                        problems.Add($"{at}: missing required '{required}'");
                    }
                }

                var properties = schema["properties"]?.AsObject();
                foreach (var (name, child) in obj)
                {
                    if (properties?[name] is JsonObject propertySchema)
                    {
                        Check(child, propertySchema, $"{at}.{name}", problems, minimalTasks && name == "tasks", open: false);
                    }
                    else if (schema["additionalProperties"] is JsonObject additional)
                    {
                        Check(child, additional, $"{at}.{name}", problems, false, open: false);
                    }
                    else if (properties is not null && !open)
                    {
                        problems.Add($"{at}: '{name}' is not a field of the schema");
                    }
                }

                break;
            case "object":
                problems.Add($"{at}: expected an object");
                break;
            case "array" when value is JsonArray array:
                for (var i = 0; i < array.Count; i++)
                {
                    Check(array[i], schema["items"]!.AsObject(), $"{at}[{i}]", problems, minimalTasks, open: false);
                }

                break;
            case "array":
                problems.Add($"{at}: expected an array");
                break;
            case "string" when value.GetValueKind() != System.Text.Json.JsonValueKind.String:
                problems.Add($"{at}: expected a string");
                break;
            case "integer" when value.GetValueKind() != System.Text.Json.JsonValueKind.Number
                                || !long.TryParse(value.ToJsonString(), NumberStyles.Integer, CultureInfo.InvariantCulture, out _):
                problems.Add($"{at}: expected an integer");
                break;
            case "number" when value.GetValueKind() != System.Text.Json.JsonValueKind.Number:
                problems.Add($"{at}: expected a number");
                break;
            case "boolean" when value.GetValueKind() is not (System.Text.Json.JsonValueKind.True or System.Text.Json.JsonValueKind.False):
                problems.Add($"{at}: expected a boolean");
                break;
        }

        if (schema["enum"] is JsonArray values && value.GetValueKind() == System.Text.Json.JsonValueKind.String
            && !values.Any(v => v!.GetValue<string>() == value.GetValue<string>()))
        {
            problems.Add($"{at}: '{value}' is not one of {string.Join(", ", values)}");
        }
    }
}
