using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace OnDevice.Delivery;

/// <summary>Strict field readers that throw <see cref="MalformedMetadataException"/> naming the field.</summary>
internal static class Json
{
    public const string TimeFormat = "yyyy-MM-dd'T'HH:mm:ss'Z'";

    public static string Str(JsonObject o, string name)
    {
        if (o[name] is JsonValue v && v.GetValueKind() == JsonValueKind.String) return v.GetValue<string>();
        throw new MalformedMetadataException($"field '{name}' must be a string");
    }

    public static string? OptStr(JsonObject o, string name) => o[name] is null ? null : Str(o, name);

    public static long Long(JsonObject o, string name)
    {
        if (o[name] is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<long>(out var l)) return l;
        if (o[name] is JsonValue v2 && v2.GetValueKind() == JsonValueKind.Number && v2.TryGetValue<JsonElement>(out var e) && e.TryGetInt64(out var l2)) return l2;
        throw new MalformedMetadataException($"field '{name}' must be an integer");
    }

    public static long? OptLong(JsonObject o, string name) => o[name] is null ? null : Long(o, name);

    public static bool Bool(JsonObject o, string name)
    {
        if (o[name] is JsonValue v && v.GetValueKind() is JsonValueKind.True or JsonValueKind.False) return v.GetValue<bool>();
        throw new MalformedMetadataException($"field '{name}' must be a boolean");
    }

    public static JsonObject Obj(JsonObject o, string name) =>
        o[name] as JsonObject ?? throw new MalformedMetadataException($"field '{name}' must be an object");

    public static JsonArray Arr(JsonObject o, string name) =>
        o[name] as JsonArray ?? throw new MalformedMetadataException($"field '{name}' must be an array");

    public static IReadOnlyList<string> StrList(JsonObject o, string name)
    {
        if (o[name] is null) return [];
        return Arr(o, name).Select(n => n is JsonValue v && v.GetValueKind() == JsonValueKind.String
            ? v.GetValue<string>() : throw new MalformedMetadataException($"field '{name}' must hold strings")).ToList();
    }

    public static DateTimeOffset Time(JsonObject o, string name)
    {
        var s = Str(o, name);
        if (!DateTimeOffset.TryParseExact(s, TimeFormat, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var t))
            throw new MalformedMetadataException($"field '{name}' must be a UTC time like 2030-01-01T00:00:00Z, got '{s}'");
        return t;
    }

    public static string FormatTime(DateTimeOffset t) => t.UtcDateTime.ToString(TimeFormat, CultureInfo.InvariantCulture);

    public static JsonArray ToArray(IEnumerable<string> items) => new(items.Select(s => (JsonNode?)JsonValue.Create(s)).ToArray());
}
