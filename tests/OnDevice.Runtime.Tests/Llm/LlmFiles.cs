using System.Text.Json;
using OnDevice.Formats.Llama2c;
using OnDevice.Formats.Llm;
using OnDevice.Runtime.Llm;
using OnDevice.TestSupport;

namespace OnDevice.Runtime.Tests.Llm;

/// <summary>The shared llama2.c model (../shared/models/llama2c): skipped with a message when absent, a failure under CI.</summary>
internal static class LlmFiles
{
    public static string? File(string name) => SharedFiles.Find("models", "llama2c", name);

    private static LlamaCheckpoint? _ck;
    private static LlamaVocabulary? _vocab;

    /// <summary>stories260K.bin and tok512.bin, or null when absent (outside CI).</summary>
    public static (LlamaCheckpoint Checkpoint, LlamaTokenizer Tokenizer)? Stories()
    {
        var model = File("stories260K.bin");
        var tok = File("tok512.bin");
        if (model is null || tok is null) return null;
        _ck ??= Llama2cReader.Read(model);
        _vocab ??= Llama2cReader.ReadTokenizer(tok, _ck.Config.VocabSize);
        return (_ck, new LlamaTokenizer(_vocab));
    }

    public sealed record ReferenceCase(string Prompt, int Steps, float Temperature, string ExpectedText);

    public static IReadOnlyList<ReferenceCase>? Reference()
    {
        var path = File("reference-greedy.json");
        if (path is null) return null;
        using var doc = JsonDocument.Parse(System.IO.File.ReadAllText(path));
        return doc.RootElement.GetProperty("cases").EnumerateArray()
            .Select(c => new ReferenceCase(c.GetProperty("prompt").GetString()!, c.GetProperty("steps").GetInt32(),
                c.GetProperty("temperature").GetSingle(), c.GetProperty("expected_text").GetString()!))
            .ToArray();
    }
}
