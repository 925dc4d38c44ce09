using OnDevice.DeltaSamples;
using OnDevice.Delivery.Deltas;
using OnDevice.Formats;
using OnDevice.Formats.Onnx;
using OnDevice.Server.Deltas;
using OnDevice.TestSupport;
using Xunit.Abstractions;

namespace OnDevice.Server.Tests;

/// <summary>Model version pairs built once per test class (quantizing the recognizer takes seconds).</summary>
public sealed class DeltaPairs : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly Lazy<(string, string)> _requant, _sym, _head, _st;

    public DeltaPairs()
    {
        Rec = SampleModels.Path("paddleocr-rec");
        Det = SampleModels.Path("paddleocr-det");
        _requant = new(() => DeltaVariants.RequantizedHeadExcluded(Rec, Sub("requant")));
        _sym = new(() => DeltaVariants.RequantizedSymmetric(Rec, Sub("sym")));
        _head = new(() => DeltaVariants.FineTunedHead(Rec, Sub("head")));
        _st = new(() => DeltaVariants.SafetensorsHead(Rec, Sub("st")));
    }

    public string Rec { get; }
    public string Det { get; }
    public (string V1, string V2) Requantized => _requant.Value;
    public (string V1, string V2) Symmetric => _sym.Value;
    public (string V1, string V2) Head => _head.Value;
    public (string V1, string V2) SafetensorsHead => _st.Value;

    private string Sub(string name) => Directory.CreateDirectory(_dir.File(name)).FullName;

    public void Dispose() => _dir.Dispose();
}

/// <summary>Tensor-aware patches between real model versions: exact round trips, what is resent, when a patch is offered.</summary>
[Trait("Category", "Delivery")]
public class DeltaModelTests(DeltaPairs pairs, ITestOutputHelper output) : IClassFixture<DeltaPairs>
{
    private DeltaBuildResult RoundTrip(string v1, string v2, string label)
    {
        var old = File.ReadAllBytes(v1);
        var target = File.ReadAllBytes(v2);
        var built = DeltaFactory.Build(old, target);
        Assert.Equal(target, DeltaApplier.Apply(old, built.Patch));
        output.WriteLine($"{label}: {built.Patch.Length:N0} of {target.Length:N0} bytes ({built.Ratio:0.0000}), compressed alone {built.CompressedTargetBytes:N0}, " +
                         $"offered {built.WorthOffering()}, pieces {string.Join(", ", built.Pieces.GroupBy(p => p.Kind).Select(g => $"{g.Key}×{g.Count()}={g.Sum(p => p.PayloadLength):N0}"))}");
        return built;
    }

    [Fact]
    public void Layout_finds_the_constant_node_weights_of_paddleocr_as_the_reader_sees_them()
    {
        var bytes = File.ReadAllBytes(pairs.Rec);
        var map = TensorLayout.Locate(bytes);
        Assert.Equal(TensorFileKind.Onnx, map.Kind);
        var model = OnnxReader.Read(pairs.Rec);
        var constants = model.Graph.Nodes.Where(n => n.OpType == "Constant" && n.Attr("value") is not null).ToList();
        Assert.True(constants.Count > 50, $"{constants.Count} Constant nodes");
        var byKey = map.Tensors.ToDictionary(t => t.Key);
        int checkedCount = 0;
        foreach (var c in constants)
        {
            var t = c.Attr("value")!.AsTensor();
            if (t.ByteLength == 0) continue;
            var e = byKey[DeltaVariants.KeyOf(model.Graph, c.Outputs[0])];
            Assert.True(bytes.AsSpan((int)e.Offset, (int)e.Length).SequenceEqual(t.Bytes), $"{e.Key}: bytes differ from the reader's tensor");
            checkedCount++;
        }
        Assert.True(map.Tensors.Sum(t => t.Length) > 0.95 * bytes.Length, "tensor payloads should be nearly the whole file");
        Assert.True(map.Tensors.Zip(map.Tensors.Skip(1)).All(p => p.First.Offset + p.First.Length <= p.Second.Offset), "extents overlap");
        output.WriteLine($"{map.Tensors.Count} tensors, {checkedCount} Constant-node payloads match the reader");
    }

    [Fact]
    public void Layout_of_damaged_files_never_throws_and_stays_inside_the_file()
    {
        var good = File.ReadAllBytes(SampleModels.Path("paddleocr-cls"));
        var rng = new Random(8);
        int unknown = 0;
        for (int i = 0; i < 400; i++)
        {
            var b = (byte[])good.Clone();
            if (i % 3 == 0) b = b[..rng.Next(b.Length)];
            else for (int k = rng.Next(1, 20); k > 0; k--) b[rng.Next(b.Length)] = (byte)rng.Next(256);
            var map = TensorLayout.Locate(b);
            if (map.Kind == TensorFileKind.Unknown) { unknown++; continue; }
            Assert.All(map.Tensors, t => Assert.True(t.Offset >= 0 && t.Length > 0 && t.Offset + t.Length <= b.Length, $"{t.Key} [{t.Offset}, +{t.Length}) outside {b.Length}"));
            Assert.Equal(map.Tensors.Count, map.Tensors.Select(t => t.Key).Distinct().Count());
        }
        Assert.True(unknown > 0);
        Assert.Equal(TensorFileKind.Unknown, TensorLayout.Locate(DeltaPatchTestsBytes()).Kind);
    }

    private static byte[] DeltaPatchTestsBytes()
    {
        var b = new byte[10_000];
        new Random(3).NextBytes(b);
        return b;
    }

    [Fact]
    public void Quantized_models_keep_their_weights_in_initializers_and_the_layout_finds_them()
    {
        var bytes = File.ReadAllBytes(pairs.Requantized.V1);
        var map = TensorLayout.Locate(bytes);
        Assert.Equal(TensorFileKind.Onnx, map.Kind);
        var model = OnnxReader.Read(pairs.Requantized.V1);
        foreach (var (name, t) in model.Graph.Initializers)
        {
            if (t.ByteLength == 0) continue;
            var e = map.Tensors.Single(x => x.Key == DeltaVariants.KeyOf(model.Graph, name) || x.Key.StartsWith(DeltaVariants.KeyOf(model.Graph, name) + "@", StringComparison.Ordinal));
            if (!e.Key.Contains('@')) Assert.True(bytes.AsSpan((int)e.Offset, (int)e.Length).SequenceEqual(t.Bytes), e.Key);
        }
    }

    [Fact]
    public void Requantized_recognizer_with_the_head_left_float_resends_only_the_head()
    {
        var (v1, v2) = pairs.Requantized;
        var built = RoundTrip(v1, v2, "int8 → int8 with float head");
        Assert.True(built.TensorAware);
        Assert.True(built.WorthOffering());
        // Every int8 weight of v2 is in v1: the copied pieces cover all of v2 but the float head and small structure.
        var headBytes = TensorLayout.LocateOnnx(File.ReadAllBytes(v2)).Max(t => t.Length);
        long copied = built.Pieces.Where(p => p.Kind == DeltaPieceKind.Copy).Sum(p => p.TargetLength);
        Assert.True(copied >= built.Header.TargetLength - headBytes - 200_000, $"copied {copied} of {built.Header.TargetLength}, head {headBytes}");
        Assert.True(built.Patch.Length < headBytes, $"patch {built.Patch.Length} should be smaller than the float head alone ({headBytes})");
    }

    [Fact]
    public void Requantized_recognizer_asymmetric_to_symmetric_round_trips()
    {
        var (v1, v2) = pairs.Symmetric;
        var built = RoundTrip(v1, v2, "int8 asym → sym");
        Assert.True(built.TensorAware);
        Assert.True(built.Ratio < 0.8, $"ratio {built.Ratio}");
        Assert.Contains(built.Pieces, p => p.Kind is DeltaPieceKind.XorBrotli or DeltaPieceKind.AddBrotli);
    }

    [Fact]
    public void Fine_tuned_head_sends_only_the_head()
    {
        var (v1, v2) = pairs.Head;
        var built = RoundTrip(v1, v2, "fine-tuned head (onnx)");
        var model = OnnxReader.Read(v2);
        var headKey = DeltaVariants.KeyOf(model.Graph, DeltaVariants.Head(model.Graph).Weight);
        var sent = built.Pieces.Where(p => p.PayloadLength > 0).ToList();
        Assert.All(sent, p => Assert.Equal(headKey, p.Key));
        var head = TensorLayout.LocateOnnx(File.ReadAllBytes(v2)).Single(t => t.Key == headKey);
        Assert.True(built.Patch.Length < head.Length, $"patch {built.Patch.Length}, head {head.Length}");
        Assert.True(built.WorthOffering());
    }

    [Fact]
    public void Fine_tuned_head_in_safetensors_sends_only_the_head()
    {
        var (v1, v2) = pairs.SafetensorsHead;
        var built = RoundTrip(v1, v2, "fine-tuned head (safetensors)");
        Assert.True(built.TensorAware);
        var sent = built.Pieces.Where(p => p.PayloadLength > 0).ToList();
        Assert.Single(sent.Select(p => p.Key).Distinct());
        Assert.True(built.Ratio < 0.3, $"ratio {built.Ratio}");
        Assert.True(built.WorthOffering());
    }

    [Fact]
    public void Unrelated_model_is_not_offered()
    {
        var built = RoundTrip(pairs.Det, pairs.Rec, "unrelated (det → rec)");
        Assert.False(built.WorthOffering());
    }

    [Fact]
    public void A_model_against_a_non_model_file_falls_back_to_a_generic_diff()
    {
        var target = File.ReadAllBytes(pairs.Rec);
        var old = target.ToArray();
        old[0] ^= 0xFF; // not parsable as ONNX any more
        var built = DeltaFactory.Build(old, target);
        Assert.False(built.TensorAware);
        Assert.Equal(target, DeltaApplier.Apply(old, built.Patch));
        Assert.True(built.Ratio < 0.01, $"ratio {built.Ratio}");
    }
}
