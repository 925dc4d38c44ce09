using System.Globalization;
using System.Net.Http.Headers;
using System.Text.Json;

namespace OnDevice.Fleet;

/// <summary>Reads the newest rollout of a model from the server's operator API (<c>GET /api/v1/rollouts</c>) into a <see cref="RolloutSnapshot"/>.</summary>
public sealed class RolloutObserver : IDisposable
{
    private readonly HttpClient _http;
    private readonly string _model;

    /// <summary>Creates an observer using a token with at least the reader role (its own client: no injected failures).</summary>
    public RolloutObserver(Uri server, string token, string model)
    {
        _http = new HttpClient { BaseAddress = server, Timeout = TimeSpan.FromSeconds(30) };
        _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        _model = model;
    }

    /// <summary>The newest rollout of the model with its classes, cohorts and last 20 decisions, or null when there is none.</summary>
    /// <exception cref="HttpRequestException">The server refused (e.g. a bad token) or is unreachable.</exception>
    public async Task<RolloutSnapshot?> ReadAsync(CancellationToken cancellationToken = default)
    {
        using var list = JsonDocument.Parse(await GetAsync($"api/v1/rollouts?model={Uri.EscapeDataString(_model)}&limit=1", cancellationToken).ConfigureAwait(false));
        if (list.RootElement.ValueKind != JsonValueKind.Array || list.RootElement.GetArrayLength() == 0) return null;
        var id = list.RootElement[0].GetProperty("id").GetInt64();
        using var doc = JsonDocument.Parse(await GetAsync($"api/v1/rollouts/{id}?decisions=20", cancellationToken).ConfigureAwait(false));
        return Parse(doc.RootElement);
    }

    private async Task<string> GetAsync(string path, CancellationToken ct)
    {
        using var r = await _http.GetAsync(path, ct).ConfigureAwait(false);
        var body = await r.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
        if (!r.IsSuccessStatusCode) throw new HttpRequestException($"GET {path}: {(int)r.StatusCode} {body}", null, r.StatusCode);
        return body;
    }

    /// <summary>Reads a rollout view (the JSON of <c>GET /api/v1/rollouts/{id}</c>).</summary>
    public static RolloutSnapshot Parse(JsonElement v)
    {
        var classes = new SortedDictionary<string, string>(StringComparer.Ordinal);
        if (v.TryGetProperty("classes", out var cs) && cs.ValueKind == JsonValueKind.Array)
            foreach (var c in cs.EnumerateArray()) classes[c.GetProperty("deviceClass").GetString()!] = c.GetProperty("state").GetString()!;
        var cohorts = new SortedDictionary<string, CohortSize>(StringComparer.Ordinal);
        if (v.TryGetProperty("cohorts", out var co) && co.ValueKind == JsonValueKind.Array)
            foreach (var c in co.EnumerateArray())
            {
                var cls = c.GetProperty("deviceClass").GetString()!;
                long n = c.GetProperty("devices").GetInt64();
                bool inCohort = c.GetProperty("inCohort").GetBoolean();
                var old = cohorts.GetValueOrDefault(cls, new CohortSize(0, 0));
                cohorts[cls] = new CohortSize(old.InCohort + (inCohort ? n : 0), old.Total + n);
            }
        var decisions = new List<RolloutDecisionSummary>();
        if (v.TryGetProperty("decisions", out var ds) && ds.ValueKind == JsonValueKind.Array)
            foreach (var d in ds.EnumerateArray())
                decisions.Add(new RolloutDecisionSummary(d.GetProperty("id").GetInt64(), d.GetProperty("kind").GetString()!,
                    d.TryGetProperty("deviceClass", out var dc) && dc.ValueKind == JsonValueKind.String ? dc.GetString() : null,
                    d.GetProperty("percent").GetDouble(), Summarize(d.TryGetProperty("details", out var det) ? det : default)));
        return new RolloutSnapshot(v.GetProperty("id").GetInt64(), v.GetProperty("candidate").GetString()!,
            v.TryGetProperty("baseline", out var b) && b.ValueKind == JsonValueKind.String ? b.GetString() : null, v.GetProperty("status").GetString()!, v.GetProperty("stage").GetInt32(), v.GetProperty("stageCount").GetInt32(),
            v.GetProperty("percent").GetDouble(), classes, cohorts, decisions);
    }

    /// <summary>One line from a decision's details: its reason, its guard outcomes' reasons, or its stage change.</summary>
    public static string Summarize(JsonElement details)
    {
        if (details.ValueKind != JsonValueKind.Object) return "";
        var parts = new List<string>();
        if (details.TryGetProperty("outcomes", out var o) && o.ValueKind == JsonValueKind.Array)
            foreach (var x in o.EnumerateArray())
                if (x.TryGetProperty("reason", out var r) && r.ValueKind == JsonValueKind.String)
                    parts.Add($"{Str(x, "deviceClass")} {Str(x, "rule")}: {Str(x, "verdict")} ({r.GetString()})");
        if (parts.Count == 0 && details.TryGetProperty("reason", out var reason) && reason.ValueKind == JsonValueKind.String) parts.Add(reason.GetString()!);
        if (details.TryGetProperty("fromPercent", out var f) && details.TryGetProperty("toPercent", out var t) && f.ValueKind == JsonValueKind.Number)
            parts.Insert(0, string.Create(CultureInfo.InvariantCulture, $"{f.GetDouble():0.##}% -> {t.GetDouble():0.##}%"));
        return string.Join("; ", parts);
    }

    private static string Str(JsonElement e, string name) => e.TryGetProperty(name, out var p) ? p.ValueKind == JsonValueKind.String ? p.GetString()! : p.ToString() : "";

    /// <inheritdoc/>
    public void Dispose() => _http.Dispose();
}
