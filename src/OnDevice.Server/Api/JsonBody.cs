using System.Text.Json.Nodes;
using OnDevice.Delivery;

namespace OnDevice.Server.Api;

/// <summary>Reads a device's JSON request body (a JSON object) into a typed request, for the device-facing endpoints.</summary>
internal static class JsonBody
{
    /// <summary>
    /// Parses the request body as a JSON object and converts it with <paramref name="convert"/>. A body that is not
    /// JSON, not an object (then the message is <paramref name="notAnObject"/>) or that <paramref name="convert"/>
    /// rejects with <see cref="MalformedMetadataException"/> gives the error message instead of a value.
    /// </summary>
    public static async Task<(T? Value, string? Error)> ReadObjectAsync<T>(HttpRequest request, string notAnObject, Func<JsonObject, T> convert, CancellationToken ct)
        where T : class
    {
        try
        {
            var node = await JsonNode.ParseAsync(request.Body, cancellationToken: ct) as JsonObject
                ?? throw new MalformedMetadataException(notAnObject);
            return (convert(node), null);
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or MalformedMetadataException)
        {
            return (null, e.Message);
        }
    }
}
