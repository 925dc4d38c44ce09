using System.Text.Json;

namespace OnDevice.Planning;

/// <summary>A published figure for a preset's parameter count, rounded as published.</summary>
public sealed record PublishedParameters(long Parameters, long RoundedTo, long? NonEmbedding, long? NonEmbeddingRoundedTo, string Source, bool Truncated = false)
{
    /// <summary>True when <paramref name="exact"/> is consistent with the published figure as published (rounded, or cut when <see cref="Truncated"/>).</summary>
    public bool Agrees(long exact) => RoundedTo == 0 ? exact == Parameters
        : Truncated ? exact >= Parameters && exact < Parameters + RoundedTo
        : Math.Abs(exact - Parameters) * 2 <= RoundedTo;
}

/// <summary>A named model shape (see <see cref="Presets"/>).</summary>
public sealed record Preset(string Name, string ConfigSource, TransformerConfig Config, PublishedParameters Published);

/// <summary>Well-known model shapes from their published <c>config.json</c> files (embedded data file <c>Presets/presets.json</c>).</summary>
public static class Presets
{
    private static readonly Lazy<IReadOnlyList<Preset>> Loaded = new(Load);

    /// <summary>Every preset.</summary>
    public static IReadOnlyList<Preset> All => Loaded.Value;

    /// <summary>The preset named <paramref name="name"/> (case-insensitive); <see cref="UnknownNameException"/> lists the known names.</summary>
    public static Preset Get(string name) =>
        All.FirstOrDefault(p => string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase))
        ?? throw new UnknownNameException("preset", name, All.Select(p => p.Name));

    private static IReadOnlyList<Preset> Load()
    {
        using var stream = typeof(Presets).Assembly.GetManifestResourceStream("OnDevice.Planning.Presets.presets.json")
            ?? throw new InvalidOperationException("embedded presets.json is missing");
        using var doc = JsonDocument.Parse(stream);
        var list = new List<Preset>();
        foreach (var e in doc.RootElement.GetProperty("presets").EnumerateArray())
        {
            string name = e.GetProperty("name").GetString()!;
            var pub = e.GetProperty("published");
            long? Opt(string f) => pub.TryGetProperty(f, out var v) ? v.GetInt64() : null;
            list.Add(new Preset(name, e.GetProperty("configSource").GetString()!,
                TransformerConfig.FromHuggingFace(e.GetProperty("config"), name),
                new PublishedParameters(pub.GetProperty("parameters").GetInt64(), pub.GetProperty("roundedTo").GetInt64(),
                    Opt("nonEmbedding"), Opt("nonEmbeddingRoundedTo"), pub.GetProperty("source").GetString()!,
                    pub.TryGetProperty("truncated", out var tr) && tr.GetBoolean())));
        }
        return list;
    }
}
