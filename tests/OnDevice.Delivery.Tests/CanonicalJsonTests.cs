using System.Text;
using System.Text.Json.Nodes;

namespace OnDevice.Delivery.Tests;

public class CanonicalJsonTests
{
    private static string C(string json) => Encoding.UTF8.GetString(CanonicalJson.Canonicalize(Encoding.UTF8.GetBytes(json)));

    [Fact]
    public void Sorts_keys_by_code_point_and_drops_whitespace()
    {
        Assert.Equal("{\"A\":1,\"a\":[1,2,{\"b\":null,\"c\":true}],\"é\":\"x\"}", C("{ \"é\": \"x\", \"a\": [1, 2, {\"c\": true, \"b\": null}], \"A\": 1 }"));
    }

    [Fact]
    public void Escapes_only_quote_and_backslash()
    {
        Assert.Equal("\"a\\\"b\\\\c\nd\"", Encoding.UTF8.GetString(CanonicalJson.Encode(JsonValue.Create("a\"b\\c\nd"))));
    }

    [Fact]
    public void Supplementary_characters_sort_after_the_bmp_private_use_area()
    {
        // UTF-16 ordinal order would put U+1F600 (surrogates D83D…) before U+E000; code point order puts it after.
        Assert.Equal("{\"\uE000\":1,\"\U0001F600\":2}", C("{\"\U0001F600\":2,\"\uE000\":1}"));
    }

    [Fact]
    public void Rejects_non_integer_numbers_and_bad_json()
    {
        Assert.Throws<MalformedMetadataException>(() => C("{\"a\":1.5}"));
        Assert.Throws<MalformedMetadataException>(() => C("{\"a\":1,}"));
        Assert.Throws<MalformedMetadataException>(() => C("{\"a\":1} x"));
    }

    [Fact]
    public void Signature_survives_reformatting()
    {
        var key = SigningKey.Generate();
        var ts = new TimestampMetadata { Version = 3, Expires = new DateTimeOffset(2031, 1, 1, 0, 0, 0, TimeSpan.Zero), Snapshot = new MetaFile(2, 10, new string('a', 64)) };
        var bytes = ts.Sign(key);
        var pretty = Encoding.UTF8.GetBytes(JsonNode.Parse(bytes)!.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
        var root = RootMetadata.Create(1, ts.Expires, Roles.All.ToDictionary(r => r, r => ((IReadOnlyList<PublicKey>)[key.Public], 1)));
        Envelope.Parse(pretty).VerifyThreshold(root, Roles.Timestamp);
    }
}
