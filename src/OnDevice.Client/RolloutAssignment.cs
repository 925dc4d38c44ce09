using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using OnDevice.Delivery;

namespace OnDevice.Client;

/// <summary>
/// What the server's rollout says this install should run (<c>POST /v1/assign/{model}</c>). It only narrows the
/// choice: the client still picks and verifies a signed target through TUF, so a lying server can at most hold a
/// device on another signed version, never make it run unsigned bytes.
/// </summary>
/// <param name="Version">The assigned version, or null (see <paramref name="Action"/>).</param>
/// <param name="Action"><c>latest</c> (no rollout: newest signed version), <c>candidate</c>, <c>baseline</c>, <c>keep</c>,
/// <c>return</c> (go back to the last good version) or <c>none</c> (nothing assigned yet).</param>
/// <param name="RolloutId">The governing rollout, if any.</param>
/// <param name="DeviceClass">The device class the server used.</param>
/// <param name="Reason">The server's one-sentence reason.</param>
public sealed record RolloutAssignment(string? Version, string Action, long? RolloutId = null, string? DeviceClass = null, string? Reason = null)
{
    /// <summary>No rollout: any signed version may be chosen (the newest that fits).</summary>
    [JsonIgnore]
    public bool Unrestricted => Action == "latest";
}

/// <summary>The server assigned a version that no verified release contains; nothing is installed.</summary>
public sealed class UnsignedAssignmentException(string message) : TrustException(message);

/// <summary>Asks the server for this install's assignment and remembers the last answer in the cache directory.</summary>
internal static class RolloutAssignments
{
    private const string IdFile = "install-id";
    private const string AssignmentFile = "assignment.json";
    private static readonly JsonSerializerOptions Web = new(JsonSerializerDefaults.Web);

    /// <summary>The install id: <paramref name="configured"/>, else a random one kept in the cache directory.</summary>
    public static string InstallId(string cacheDirectory, string? configured)
    {
        if (configured is not null) return configured;
        var p = Path.Combine(cacheDirectory, IdFile);
        if (File.Exists(p))
        {
            var s = File.ReadAllText(p).Trim();
            if (s.Length >= 8) return s;
        }
        var id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        FileUtil.WriteAtomic(p, System.Text.Encoding.ASCII.GetBytes(id));
        return id;
    }

    /// <summary>The last assignment received, or null.</summary>
    public static RolloutAssignment? Load(string cacheDirectory)
    {
        var p = Path.Combine(cacheDirectory, AssignmentFile);
        if (!File.Exists(p)) return null;
        try { return JsonSerializer.Deserialize<RolloutAssignment>(File.ReadAllBytes(p), Web); }
        catch (JsonException) { return null; }
    }

    /// <summary>Keeps <paramref name="a"/> as the last assignment.</summary>
    public static void Save(string cacheDirectory, RolloutAssignment a) =>
        FileUtil.WriteAtomic(Path.Combine(cacheDirectory, AssignmentFile), JsonSerializer.SerializeToUtf8Bytes(a, Web));

    /// <summary>
    /// Asks the server. A server without the endpoint (404 on the route) means no rollouts. Network or server errors
    /// fall back to the last assignment received, and throw when there is none.
    /// </summary>
    public static async Task<RolloutAssignment> FetchAsync(HttpClient http, Uri server, string model, AssignmentRequest request, string cacheDirectory, CancellationToken ct)
    {
        try
        {
            using var content = new StringContent(request.ToJson().ToJsonString(), System.Text.Encoding.UTF8, "application/json");
            using var response = await http.PostAsync(new Uri(server, $"v1/assign/{Uri.EscapeDataString(model)}"), content, ct).ConfigureAwait(false);
            if (response.StatusCode == HttpStatusCode.NotFound) return new RolloutAssignment(null, "latest", Reason: "the server has no assignment for this model");
            if (!response.IsSuccessStatusCode)
                throw new HttpRequestException($"POST assign/{model}: {(int)response.StatusCode} {response.ReasonPhrase}", null, response.StatusCode);
            var a = await response.Content.ReadFromJsonAsync<RolloutAssignment>(Web, ct).ConfigureAwait(false)
                ?? throw new HttpRequestException($"POST assign/{model}: empty answer");
            if (a.Version is not null) TargetsNames.ValidateSegment("assigned version", a.Version);
            return a;
        }
        catch (Exception e) when (e is HttpRequestException or JsonException or MalformedMetadataException || (e is OperationCanceledException && !ct.IsCancellationRequested))
        {
            return Load(cacheDirectory) ?? throw new HttpRequestException($"cannot learn this device's rollout assignment: {e.Message}", e);
        }
    }

    /// <summary>
    /// The best variant among the verified releases that the assignment allows: any version when unrestricted,
    /// only the assigned version otherwise, nothing when no version is assigned.
    /// </summary>
    /// <exception cref="UnsignedAssignmentException">The server assigned a version that is not among the signed releases.</exception>
    public static VariantChoice? Select(IReadOnlyList<TargetsMetadata> releases, string model, DeviceDescription device, RolloutAssignment a)
    {
        if (a.Unrestricted) return VariantSelector.Select(releases, model, device);
        if (a.Version is not { } version) return null;
        var signed = releases.Where(r => r.Targets.Values.Any(f => f.Model is { } m && m.Model == model && m.Version == version)).ToList();
        if (signed.Count == 0) throw new UnsignedAssignmentException($"the server assigned {model} {version}, which is not a signed release");
        return VariantSelector.Select(signed, model, device);
    }
}
