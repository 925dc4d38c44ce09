using System.Runtime.Intrinsics;
using OnDevice.Runtime.Kernels.Elementwise;
using OnDevice.Core;
using static OnDevice.Runtime.Kernels.Elementwise.ActivationKernels;
using static OnDevice.Runtime.Kernels.Elementwise.MathKernels;

namespace OnDevice.Runtime.Kernels.Quantization;

/// <summary>
/// The float epilogue of an integer convolution whose result is quantized only after an element-wise chain
/// (DequantizeLinear → Conv → [BatchNormalization] → chain → QuantizeLinear fused by the optimizer). The convolution
/// paths write each output channel's row as y = acc·scale[c] + bias[c] (<see cref="Affine"/> where the path does
/// not do it itself); <see cref="Row"/> then runs the chain (an <see cref="ElementwiseProgram"/>, the same evaluator
/// as <c>FusedElementwise</c>, per-channel constants taken as the row's scalars) in place and, for byte output,
/// quantizes the row (round half to even of x·(1/y_scale), + zero point, saturate; NaN is not expected) while it is
/// still in cache.
/// <para>
/// The commonest chains — an optional activation (Relu, Clip, HardSwish, or hard-swish written as
/// x·Clip(x + a, lo, hi) / d) followed by an optional Mul and then an optional Add by a scalar or per-channel constant
/// (PP-LCNet's hard-swish and learnable affine) — are recognised from the body and run in registers in the same pass
/// as the quantization: q = round(act(v)·k1[c] + k2[c]) + zero point with k1 = mul/(d·y_scale), k2 = add/y_scale (the
/// activation with the same operator implementations). Folding the divisions into k1 and k2 moves the value by a few
/// float ulps, so against the program a byte can differ by one where the value sits on a rounding midpoint.
/// </para>
/// </summary>
internal sealed unsafe class ConvFloatEpilogue
{
    private readonly float _yScale, _inv;
    private readonly int _yZero, _min, _max;
    private readonly Fast? _fast;

    /// <summary>The recognised chain: activation kind and constants, then y·mul[c] + add[c].</summary>
    private sealed record Fast(int Act, float A, float Lo, float Hi, float D, float[] Mul, float[] Add);

    private const int ActNone = 0, ActRelu = 1, ActClip = 2, ActHardSwish = 3, ActDecomposed = 4;

    /// <summary>An epilogue running <paramref name="body"/> (FusedElementwise form; null: none), then quantizing when <paramref name="quantize"/>.</summary>
    public ConvFloatEpilogue(Graph? body, int rank, long opset, bool quantize, float yScale, int yZero, int min, int max)
    {
        Program = body is null ? null : ElementwiseProgram.Compile(body, rank, opset, out var why) ?? throw new NotSupportedException($"epilogue chain cannot run: {why}");
        Quantize = quantize;
        _yScale = yScale;
        _inv = 1f / yScale;
        _yZero = yZero;
        _min = min;
        _max = max;
        _fast = quantize ? Recognise(body, rank, opset) : null;
    }

    /// <summary>The element-wise chain, or null.</summary>
    public ElementwiseProgram? Program { get; }

    /// <summary>True when rows are quantized to bytes (else the float row is the output).</summary>
    public bool Quantize { get; }

    /// <summary>True when <see cref="Row"/> has anything to do.</summary>
    public bool Active => Program is not null || Quantize;

    /// <summary>True when the chain runs in registers fused with the quantization.</summary>
    public bool Fused => _fast is not null;

    /// <summary>Checks per-channel constants against the output's channel count (null when fine).</summary>
    public string? CheckChannels(int channels)
    {
        if (Program?.CheckChannels(channels) is { } why) return why;
        if (_fast is { } f && ((f.Mul.Length != 1 && f.Mul.Length != channels) || (f.Add.Length != 1 && f.Add.Length != channels)))
            return $"a per-channel constant does not have {channels} values";
        return null;
    }

    /// <summary>
    /// One output channel's row of <paramref name="count"/> floats (already scaled and biased): the chain, then
    /// quantized into <paramref name="dst"/> when <see cref="Quantize"/> (the row may be overwritten); for float output
    /// the chain runs in place and dst is unused. <paramref name="vector"/> false runs the scalar twins;
    /// <paramref name="generic"/> forces the program path even for a recognised chain (for the twin tests).
    /// </summary>
    [System.Runtime.CompilerServices.SkipLocalsInit]
    public void Row(float* row, int count, int channel, byte* dst, bool vector = true, bool generic = false)
    {
        if (count <= 0) return;
        if (_fast is { } f && !generic)
        {
            float k1 = f.Mul[f.Mul.Length == 1 ? 0 : channel] / (f.D * _yScale), k2 = f.Add[f.Add.Length == 1 ? 0 : channel] / _yScale;
            if (vector) FastVector(f, k1, k2, row, count, dst);
            else for (int i = 0; i < count; i++) dst[i] = (byte)FastOne(f, k1, k2, row[i]);
            return;
        }
        var span = new Span<float>(row, count);
        if (Program is { } p)
        {
            Span<float> scratch = stackalloc float[Math.Max(1, p.Slots) * ElementwiseProgram.BlockElements];
            p.Run(span, span, channel, -1, scratch);
        }
        if (!Quantize) return;
        int i0 = vector ? QuantizeVector(row, count, dst) : 0;
        for (int i = i0; i < count; i++) dst[i] = (byte)QuantizeOne(row[i]);
    }

    /// <summary>
    /// As <see cref="Row"/> for a row of exact integer sums (as floats): first v = fma(sum, <paramref name="scale"/>,
    /// <paramref name="bias"/>) — inside the fused loop for a recognised chain, else as a pass of <see cref="Affine"/>
    /// in place (the same values either way).
    /// </summary>
    public void RowFromSums(float* sums, int count, int channel, float scale, float bias, byte* dst, bool vector = true, bool generic = false)
    {
        if (count <= 0) return;
        if (_fast is { } f && !generic)
        {
            float k1 = f.Mul[f.Mul.Length == 1 ? 0 : channel] / (f.D * _yScale), k2 = f.Add[f.Add.Length == 1 ? 0 : channel] / _yScale;
            if (vector) FastVector(f, k1, k2, sums, count, dst, scale, bias);
            else for (int i = 0; i < count; i++) dst[i] = (byte)FastOne(f, k1, k2, MathF.FusedMultiplyAdd(sums[i], scale, bias));
            return;
        }
        Affine(sums, count, scale, bias, sums, vector);
        Row(sums, count, channel, dst, vector, generic);
    }

    /// <summary>Scalar quantization: saturate(round-half-even(v·(1/y_scale)) + zero point).</summary>
    private int QuantizeOne(float v)
    {
        float q = MathF.Round(v * _inv) + _yZero;
        return q <= _min ? _min : q >= _max ? _max : (int)q;
    }

    /// <summary>Sixteen at a time (AVX-512); returns how many were done.</summary>
    private int QuantizeVector(float* row, int count, byte* dst)
    {
        if (!System.Runtime.Intrinsics.X86.Avx512F.IsSupported) return 0;
        var vi = Vector512.Create(_inv);
        var vz = Vector512.Create((float)_yZero);
        var vmin = Vector512.Create((float)_min);
        var vmax = Vector512.Create((float)_max);
        int i = 0;
        for (; i + 16 <= count; i += 16)
            Store(Vector512.Min(Vector512.Max(Vector512.Round(Vector512.Load(row + i) * vi) + vz, vmin), vmax), dst + i);
        return i;
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static void Store(Vector512<float> q, byte* dst) =>
        System.Runtime.Intrinsics.X86.Avx512F.ConvertToVector128Byte(Vector512.ConvertToInt32(q)).Store(dst); // in range: the low byte is the value

    /// <summary>The activation of the recognised chain (the decomposed hard-swish without its division, which is in k1).</summary>
    private static float Act(Fast f, float v) => f.Act switch
    {
        ActRelu => ReluOp.Invoke(v),
        ActClip => new ClipOp(f.Lo, f.Hi).Invoke(v),
        ActHardSwish => HardSwishOp.Invoke(v),
        ActDecomposed => v * new ClipOp(f.Lo, f.Hi).Invoke(v + f.A),
        _ => v,
    };

    /// <summary>Scalar twin of <see cref="FastVector"/>: saturate(round(act(v)·k1 + k2) + zero point).</summary>
    private int FastOne(Fast f, float k1, float k2, float v)
    {
        float q = MathF.Round(Act(f, v) * k1 + k2) + _yZero;
        return q <= _min ? _min : q >= _max ? _max : (int)q;
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    private void FastVector(Fast f, float k1, float k2, float* row, int count, byte* dst, float scale = 1f, float bias = 0f)
    {
        int i = 0;
        if (scale != 1f || bias != 0f)
        {
            // Sums in: the affine step in the same loop (fma, as Affine), then as below.
            if (System.Runtime.Intrinsics.X86.Avx512F.IsSupported)
            {
                var s1 = Vector512.Create(scale);
                var b1 = Vector512.Create(bias);
                var v1 = Vector512.Create(k1);
                var v2 = Vector512.Create(k2);
                var vz = Vector512.Create((float)_yZero);
                var vmin = Vector512.Create((float)_min);
                var vmax = Vector512.Create((float)_max);
                var clip = new ClipOp(f.Lo, f.Hi);
                var a = Vector512.Create(f.A);
                for (; i + 16 <= count; i += 16)
                {
                    var v = Vector512.FusedMultiplyAdd(Vector512.Load(row + i), s1, b1);
                    var t = f.Act switch
                    {
                        ActRelu => ReluOp.Invoke(v),
                        ActClip => clip.Invoke(v),
                        ActHardSwish => HardSwishOp.Invoke(v),
                        ActDecomposed => v * clip.Invoke(v + a),
                        _ => v,
                    };
                    Store(Vector512.Min(Vector512.Max(Vector512.Round(t * v1 + v2) + vz, vmin), vmax), dst + i);
                }
            }
            for (; i < count; i++) dst[i] = (byte)FastOne(f, k1, k2, MathF.FusedMultiplyAdd(row[i], scale, bias));
            return;
        }
        if (System.Runtime.Intrinsics.X86.Avx512F.IsSupported)
        {
            var v1 = Vector512.Create(k1);
            var v2 = Vector512.Create(k2);
            var vz = Vector512.Create((float)_yZero);
            var vmin = Vector512.Create((float)_min);
            var vmax = Vector512.Create((float)_max);
            var clip = new ClipOp(f.Lo, f.Hi);
            var a = Vector512.Create(f.A);
            switch (f.Act)
            {
                case ActNone:
                    for (; i + 16 <= count; i += 16) Store(Vector512.Min(Vector512.Max(Vector512.Round(Vector512.Load(row + i) * v1 + v2) + vz, vmin), vmax), dst + i);
                    break;
                case ActRelu:
                    for (; i + 16 <= count; i += 16) Store(Vector512.Min(Vector512.Max(Vector512.Round(ReluOp.Invoke(Vector512.Load(row + i)) * v1 + v2) + vz, vmin), vmax), dst + i);
                    break;
                case ActClip:
                    for (; i + 16 <= count; i += 16) Store(Vector512.Min(Vector512.Max(Vector512.Round(clip.Invoke(Vector512.Load(row + i)) * v1 + v2) + vz, vmin), vmax), dst + i);
                    break;
                case ActHardSwish:
                    for (; i + 16 <= count; i += 16) Store(Vector512.Min(Vector512.Max(Vector512.Round(HardSwishOp.Invoke(Vector512.Load(row + i)) * v1 + v2) + vz, vmin), vmax), dst + i);
                    break;
                case ActDecomposed:
                    for (; i + 16 <= count; i += 16)
                    {
                        var v = Vector512.Load(row + i);
                        Store(Vector512.Min(Vector512.Max(Vector512.Round(v * clip.Invoke(v + a) * v1 + v2) + vz, vmin), vmax), dst + i);
                    }
                    break;
            }
        }
        for (; i < count; i++) dst[i] = (byte)FastOne(f, k1, k2, row[i]);
    }

    /// <summary>
    /// The chain as [activation] → [Mul constant] → [Add constant] when the body is exactly that (constants scalar
    /// or per channel, on either side of Mul and Add; the chain value the left operand of the decomposed hard-swish's
    /// Add, Mul and Div); null otherwise.
    /// </summary>
    private static Fast? Recognise(Graph? body, int rank, long opset)
    {
        if (body is null) return new Fast(ActNone, 0, 0, 0, 1, [1f], [0f]);
        if (body.Inputs.Count != 1 || body.Outputs.Count != 1) return null;
        var nodes = body.Nodes;
        string cur = body.Inputs[0].Name;
        int k = 0;
        float? Scalar(string name) => body.Initializers.TryGetValue(name, out var t) && t.DType == OnDevice.Core.DType.Float32 && t.ElementCount == 1 ? t.ToFloatArray()[0] : null;
        float[]? Const(string name) => body.Initializers.TryGetValue(name, out var t) && t.DType == OnDevice.Core.DType.Float32
            && ElementwiseProgram.ChannelForm(t.Dims, rank) is not null ? t.ToFloatArray() : null;
        (float Lo, float Hi)? ClipBounds(Node n)
        {
            if (opset < 11) return (n.GetFloat("min", float.MinValue), n.GetFloat("max", float.MaxValue));
            float lo = float.MinValue, hi = float.MaxValue;
            if (n.Inputs.Count > 1 && n.Inputs[1].Length > 0) { if (Scalar(n.Inputs[1]) is not float l) return null; lo = l; }
            if (n.Inputs.Count > 2 && n.Inputs[2].Length > 0) { if (Scalar(n.Inputs[2]) is not float h) return null; hi = h; }
            return (lo, hi);
        }
        bool Is(int i, string op) => i < nodes.Count && nodes[i].IsDefaultDomain && nodes[i].OpType == op && nodes[i].Outputs.Count == 1;
        int act = ActNone;
        float a = 0, lo = 0, hi = 0, d = 1;
        if (Is(k, "Relu") && nodes[k].Inputs[0] == cur) { act = ActRelu; cur = nodes[k++].Outputs[0]; }
        else if (Is(k, "HardSwish") && nodes[k].Inputs[0] == cur) { act = ActHardSwish; cur = nodes[k++].Outputs[0]; }
        else if (Is(k, "Clip") && nodes[k].Inputs[0] == cur && ClipBounds(nodes[k]) is var (l0, h0)) { act = ActClip; lo = l0; hi = h0; cur = nodes[k++].Outputs[0]; }
        else if (Is(k, "Add") && Is(k + 1, "Clip") && Is(k + 2, "Mul") && Is(k + 3, "Div"))
        {
            // x·Clip(x + a, lo, hi) / d, x the chain value.
            var (add, clip, mul, div) = (nodes[k], nodes[k + 1], nodes[k + 2], nodes[k + 3]);
            if (add.Inputs[0] != cur || Scalar(add.Inputs[1]) is not float av || clip.Inputs[0] != add.Outputs[0] || ClipBounds(clip) is not var (l1, h1)
                || mul.Inputs.Count != 2 || mul.Inputs[0] != cur || mul.Inputs[1] != clip.Outputs[0] || div.Inputs[0] != mul.Outputs[0] || Scalar(div.Inputs[1]) is not float dv)
                return null;
            act = ActDecomposed; a = av; lo = l1; hi = h1; d = dv;
            cur = div.Outputs[0];
            k += 4;
        }
        // Mul and Add commute (exactly, in IEEE arithmetic): the constant may be either operand.
        float[]? Other(Node n) => n.Inputs.Count != 2 ? null : n.Inputs[0] == cur && n.Inputs[1] != cur ? Const(n.Inputs[1])
            : n.Inputs[1] == cur && n.Inputs[0] != cur ? Const(n.Inputs[0]) : null;
        float[] mulC = [1f], addC = [0f];
        if (Is(k, "Mul") && Other(nodes[k]) is { } mc) { mulC = mc; cur = nodes[k++].Outputs[0]; }
        if (Is(k, "Add") && Other(nodes[k]) is { } ac) { addC = ac; cur = nodes[k++].Outputs[0]; }
        if (k != nodes.Count || cur != body.Outputs[0].Name) return null;
        return new Fast(act, a, lo, hi, d, mulC, addC);
    }

    /// <summary>
    /// dst[i] = fma(src[i], scale, bias) (src and dst may be the same): exact integer sums held as floats to the
    /// convolution's float result. Sixteen (AVX-512) or eight at a time; <paramref name="vector"/> false is the scalar twin
    /// (bit-identical: the same fused multiply-add).
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    public static void Affine(float* src, int count, float scale, float bias, float* dst, bool vector = true)
    {
        int i = 0;
        if (vector && Vector512.IsHardwareAccelerated)
        {
            var vs = Vector512.Create(scale);
            var vb = Vector512.Create(bias);
            for (; i + 16 <= count; i += 16) Vector512.FusedMultiplyAdd(Vector512.Load(src + i), vs, vb).Store(dst + i);
        }
        else if (vector && Vector256.IsHardwareAccelerated)
        {
            var vs = Vector256.Create(scale);
            var vb = Vector256.Create(bias);
            for (; i + 8 <= count; i += 8) Vector256.FusedMultiplyAdd(Vector256.Load(src + i), vs, vb).Store(dst + i);
        }
        for (; i < count; i++) dst[i] = MathF.FusedMultiplyAdd(src[i], scale, bias);
    }
}

/// <summary>
/// A kernel's epilogue built from its node's <c>body</c>, <c>rank</c> and <c>opset</c> attributes, kept while the output
/// parameters stay the same (they are constants in fused graphs).
/// </summary>
internal sealed class ConvEpilogueCache(Node node)
{
    private readonly Graph? _body = node.Attr("body")?.AsGraph();
    private readonly int _rank = (int)node.GetInt("rank", 4);
    private readonly long _opset = node.GetInt("opset", 17);
    private ConvFloatEpilogue? _floatOnly;
    private Cached? _quantizing; // a reference, replaced atomically: concurrent runs see a whole entry or none

    private sealed record Cached(float Sy, int Zy, int Min, int Max, ConvFloatEpilogue Epilogue);

    /// <summary>The float-output epilogue (the chain only), or null when there is no chain.</summary>
    public ConvFloatEpilogue? FloatOutput() => _body is null ? null : _floatOnly ??= new ConvFloatEpilogue(_body, _rank, _opset, false, 1f, 0, 0, 0);

    /// <summary>The byte-output epilogue for these output parameters.</summary>
    public ConvFloatEpilogue Quantizing(float sy, int zy, int min, int max)
    {
        if (_quantizing is { } c && c.Sy == sy && c.Zy == zy && c.Min == min && c.Max == max) return c.Epilogue;
        var e = new ConvFloatEpilogue(_body, _rank, _opset, true, sy, zy, min, max);
        _quantizing = new Cached(sy, zy, min, max, e);
        return e;
    }
}
