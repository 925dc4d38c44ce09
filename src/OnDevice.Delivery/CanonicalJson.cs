using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace OnDevice.Delivery;

/// <summary>
/// Canonical JSON in the OLPC / securesystemslib form used for TUF signatures: object keys sorted by Unicode code
/// point, no insignificant whitespace, strings escape only <c>"</c> and <c>\</c>, numbers are integers only.
/// Two parties that parse the same document produce byte-identical output, so signatures survive re-serialization.
/// </summary>
public static class CanonicalJson
{
    /// <summary>Canonical UTF-8 bytes of <paramref name="node"/>.</summary>
    /// <exception cref="MalformedMetadataException">The node holds a non-integer number.</exception>
    public static byte[] Encode(JsonNode? node)
    {
        var sb = new StringBuilder();
        Write(sb, node);
        return Encoding.UTF8.GetBytes(sb.ToString());
    }

    /// <summary>Parses <paramref name="json"/> and returns its canonical bytes.</summary>
    public static byte[] Canonicalize(ReadOnlySpan<byte> json) => Encode(Parse(json));

    /// <summary>Parses UTF-8 JSON into a node tree, rejecting duplicate keys and trailing data.</summary>
    /// <exception cref="MalformedMetadataException">Not valid JSON.</exception>
    public static JsonNode Parse(ReadOnlySpan<byte> json)
    {
        try
        {
            var reader = new Utf8JsonReader(json, new JsonReaderOptions { AllowTrailingCommas = false, CommentHandling = JsonCommentHandling.Disallow, MaxDepth = 64 });
            var node = JsonNode.Parse(ref reader, new JsonNodeOptions { PropertyNameCaseInsensitive = false })
                ?? throw new MalformedMetadataException("JSON document is null");
            if (reader.BytesConsumed != json.Length && json[(int)reader.BytesConsumed..].IndexOfAnyExcept(" \t\r\n"u8) >= 0)
                throw new MalformedMetadataException("trailing data after the JSON document");
            return node;
        }
        catch (JsonException e)
        {
            throw new MalformedMetadataException($"not valid JSON: {e.Message}");
        }
        catch (ArgumentException e)
        {
            // JsonObject throws ArgumentException on a duplicate key.
            throw new MalformedMetadataException($"not valid JSON: {e.Message}");
        }
    }

    private static void Write(StringBuilder sb, JsonNode? node)
    {
        switch (node)
        {
            case null:
                sb.Append("null");
                break;
            case JsonObject o:
                sb.Append('{');
                bool first = true;
                foreach (var kv in o.OrderBy(kv => kv.Key, CodePointComparer.Instance))
                {
                    if (!first) sb.Append(',');
                    first = false;
                    WriteString(sb, kv.Key);
                    sb.Append(':');
                    Write(sb, kv.Value);
                }
                sb.Append('}');
                break;
            case JsonArray a:
                sb.Append('[');
                for (int i = 0; i < a.Count; i++)
                {
                    if (i > 0) sb.Append(',');
                    Write(sb, a[i]);
                }
                sb.Append(']');
                break;
            case JsonValue v:
                WriteValue(sb, v);
                break;
            default:
                throw new MalformedMetadataException($"unsupported JSON node {node.GetType().Name}");
        }
    }

    private static void WriteValue(StringBuilder sb, JsonValue v)
    {
        switch (v.GetValueKind())
        {
            case JsonValueKind.String:
                WriteString(sb, v.GetValue<string>());
                break;
            case JsonValueKind.True:
                sb.Append("true");
                break;
            case JsonValueKind.False:
                sb.Append("false");
                break;
            case JsonValueKind.Null:
                sb.Append("null");
                break;
            case JsonValueKind.Number:
                if (v.TryGetValue<long>(out var l)) { sb.Append(l.ToString(System.Globalization.CultureInfo.InvariantCulture)); break; }
                if (v.TryGetValue<int>(out var i)) { sb.Append(i.ToString(System.Globalization.CultureInfo.InvariantCulture)); break; }
                if (v.TryGetValue<JsonElement>(out var e) && e.TryGetInt64(out var el)) { sb.Append(el.ToString(System.Globalization.CultureInfo.InvariantCulture)); break; }
                throw new MalformedMetadataException($"canonical JSON allows integers only, got {v.ToJsonString()}");
            default:
                throw new MalformedMetadataException($"unsupported JSON value {v.ToJsonString()}");
        }
    }

    private static void WriteString(StringBuilder sb, string s)
    {
        sb.Append('"');
        foreach (var c in s)
        {
            if (c is '"' or '\\') sb.Append('\\');
            sb.Append(c);
        }
        sb.Append('"');
    }

    /// <summary>Orders strings by Unicode code point (the order of their UTF-8 bytes).</summary>
    private sealed class CodePointComparer : IComparer<string>
    {
        public static readonly CodePointComparer Instance = new();

        public int Compare(string? x, string? y)
        {
            if (ReferenceEquals(x, y)) return 0;
            if (x is null) return -1;
            if (y is null) return 1;
            var ex = x.EnumerateRunes();
            var ey = y.EnumerateRunes();
            while (true)
            {
                bool hx = ex.MoveNext(), hy = ey.MoveNext();
                if (!hx || !hy) return hx == hy ? 0 : hx ? 1 : -1;
                int c = ex.Current.Value.CompareTo(ey.Current.Value);
                if (c != 0) return c;
            }
        }
    }
}
