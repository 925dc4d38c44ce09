using OnDevice.Core;
using OnDevice.Runtime.Simd;
using static OnDevice.Runtime.Kernels.Elementwise.ActivationKernels;
using static OnDevice.Runtime.Kernels.Elementwise.ArithmeticKernels;
using static OnDevice.Runtime.Kernels.Elementwise.MathKernels;

namespace OnDevice.Runtime.Kernels.Elementwise;

/// <summary>y = f(x) over a span (y may be x).</summary>
internal delegate void SpanUnary(ReadOnlySpan<float> x, Span<float> y);
/// <summary>z = f(x, y) over spans.</summary>
internal delegate void SpanBinary(ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> z);
/// <summary>z = f(x, s) with a scalar right operand.</summary>
internal delegate void SpanBinaryScalarRight(ReadOnlySpan<float> x, float s, Span<float> z);
/// <summary>z = f(s, y) with a scalar left operand.</summary>
internal delegate void SpanBinaryScalarLeft(float s, ReadOnlySpan<float> y, Span<float> z);

/// <summary>
/// A chain of float32 element-wise operators compiled into instructions over a few block-sized slots, so that a
/// whole chain (e.g. PaddleOCR's scale → shift → hard-swish → scale → shift after every convolution) runs in one
/// pass over memory, block by block in cache. Operands are the chain's own values or constants that are scalars
/// or one value per channel (axis 1). The program is the body graph of a <c>com.ondevice.FusedElementwise</c> node.
/// </summary>
internal sealed class ElementwiseProgram
{
    /// <summary>Elements per block: small enough that a handful of slots stay in L1.</summary>
    public const int BlockElements = 1024;

    /// <summary>Most live temporaries a program may need (bounded stack use).</summary>
    public const int MaxSlots = 6;

    private enum Kind { Unary, VecVec, VecConst, ConstVec }

    private sealed record Instr(Kind Kind, int A, int B, int Const, int Dst, SpanUnary? U, BinaryFns? Bin);

    private sealed record BinaryFns(SpanBinary VV, SpanBinaryScalarRight VS, SpanBinaryScalarLeft SV);

    private readonly Instr[] _code;
    private readonly float[][] _constants;
    private readonly bool[] _perChannel;

    private ElementwiseProgram(Instr[] code, float[][] constants, bool[] perChannel, int slots)
    {
        _code = code;
        _constants = constants;
        _perChannel = perChannel;
        Slots = slots;
    }

    /// <summary>Scratch slots needed (besides input and output).</summary>
    public int Slots { get; }

    /// <summary>True when some constant has one value per channel.</summary>
    public bool HasPerChannelConstants => _perChannel.Any(p => p);

    /// <summary>Channels the per-channel constants have (0 when none).</summary>
    public int Channels => _constants.Where((_, i) => _perChannel[i]).Select(c => c.Length).DefaultIfEmpty(0).Max();

    /// <summary>Operators a program can contain.</summary>
    public static readonly IReadOnlySet<string> SupportedOps = new HashSet<string>(StringComparer.Ordinal)
    {
        "Add", "Sub", "Mul", "Div", "Max", "Min", "Pow", "Relu", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish",
        "LeakyRelu", "Elu", "Clip", "Neg", "Abs", "Exp", "Log", "Sqrt", "Reciprocal", "Erf", "Softplus", "Mish", "Gelu",
        "Round",
    };

    /// <summary>
    /// Compiles <paramref name="body"/> (one input, one output, element-wise nodes, constants as initializers);
    /// <paramref name="rank"/> is the input's rank, used to recognise per-channel constants. Returns null with the reason on failure.
    /// </summary>
    public static ElementwiseProgram? Compile(Graph body, int rank, long opset, out string reason)
    {
        reason = "";
        if (body.Inputs.Count != 1 || body.Outputs.Count != 1) { reason = "body must have one input and one output"; return null; }
        var constIndex = new Dictionary<string, int>(StringComparer.Ordinal);
        var constants = new List<float[]>();
        var perChannel = new List<bool>();
        int ConstantOf(string name)
        {
            if (constIndex.TryGetValue(name, out int k)) return k;
            if (!body.Initializers.TryGetValue(name, out var t) || t.DType != DType.Float32) return -1;
            if (ChannelForm(t.Dims, rank) is not { } channel) return -1;
            constIndex[name] = constants.Count;
            constants.Add(t.ToFloatArray());
            perChannel.Add(channel);
            return constants.Count - 1;
        }

        // Values → slot numbers: 0 is the input; 1.. are scratch, reused once a value is dead.
        var lastUse = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < body.Nodes.Count; i++)
            foreach (var v in body.Nodes[i].Inputs) lastUse[v] = i;
        var slotOf = new Dictionary<string, int>(StringComparer.Ordinal) { [body.Inputs[0].Name] = 0 };
        var free = new SortedSet<int>();
        int slots = 0;
        var code = new List<Instr>();
        for (int i = 0; i < body.Nodes.Count; i++)
        {
            var n = body.Nodes[i];
            if (!n.IsDefaultDomain || !SupportedOps.Contains(n.OpType) || n.Outputs.Count != 1)
            {
                reason = $"{n.OpType} cannot be fused";
                return null;
            }
            int Operand(string name) => slotOf.TryGetValue(name, out int s) ? s : -1;
            Instr? instr;
            var binary = BinaryOf(n.OpType);
            if (binary is not null && n.Inputs.Count == 2)
            {
                int a = Operand(n.Inputs[0]), b = Operand(n.Inputs[1]);
                int ca = a < 0 ? ConstantOf(n.Inputs[0]) : -1, cb = b < 0 ? ConstantOf(n.Inputs[1]) : -1;
                instr = (a, b) switch
                {
                    ( >= 0, >= 0) => new Instr(Kind.VecVec, a, b, -1, -1, null, binary),
                    ( >= 0, < 0) when cb >= 0 => new Instr(Kind.VecConst, a, -1, cb, -1, null, binary),
                    ( < 0, >= 0) when ca >= 0 => new Instr(Kind.ConstVec, -1, b, ca, -1, null, binary),
                    _ => null,
                };
            }
            else
            {
                var u = UnaryOf(n, opset, body);
                int a = n.Inputs.Count > 0 ? Operand(n.Inputs[0]) : -1;
                instr = u is not null && a >= 0 ? new Instr(Kind.Unary, a, -1, -1, -1, u, null) : null;
            }
            if (instr is null)
            {
                reason = $"node {n.Label} has operands that are not chain values or scalar/per-channel float constants";
                return null;
            }
            // Free the slots of values whose last use is this node, then pick the output slot.
            foreach (var v in n.Inputs.Distinct())
                if (slotOf.TryGetValue(v, out int s) && s > 0 && lastUse[v] == i && v != body.Outputs[0].Name) free.Add(s);
            int dst;
            if (free.Count > 0) { dst = free.Min; free.Remove(dst); }
            else dst = ++slots;
            if (slots > MaxSlots) { reason = $"needs more than {MaxSlots} live temporaries"; return null; }
            slotOf[n.Outputs[0]] = dst;
            code.Add(instr with { Dst = dst });
        }
        if (!slotOf.TryGetValue(body.Outputs[0].Name, out int outSlot) || code.Count == 0 || code[^1].Dst != outSlot)
        {
            reason = "the body's output must be produced by its last node";
            return null;
        }
        return new ElementwiseProgram([.. code], [.. constants], [.. perChannel], slots);
    }

    /// <summary>
    /// Null when <paramref name="dims"/> is neither a scalar nor one value per channel for an input of
    /// <paramref name="rank"/>; otherwise whether it is per channel.
    /// </summary>
    public static bool? ChannelForm(long[] dims, int rank)
    {
        long n = 1;
        foreach (var d in dims) n *= d;
        if (n == 1 && dims.Length <= Math.Max(rank, 1)) return false;
        if (rank < 2 || dims.Length > rank) return null;
        int channelAxis = 1 - (rank - dims.Length); // axis 1 of the input, in the constant's own axes
        if (channelAxis < 0) return null;
        for (int i = 0; i < dims.Length; i++)
            if (i != channelAxis && dims[i] != 1) return null;
        return true;
    }

    /// <summary>
    /// Runs the program on <paramref name="x"/> into <paramref name="y"/> (same length; may be the same memory).
    /// <paramref name="channel"/> selects per-channel constants as scalars (row mode); when
    /// <paramref name="channelOffset"/> is not negative, per-channel constants are instead read as vectors starting
    /// at that channel (the block runs along the channel axis). <paramref name="scratch"/> holds Slots blocks.
    /// </summary>
    public void Run(ReadOnlySpan<float> x, Span<float> y, int channel, int channelOffset, Span<float> scratch)
    {
        for (int start = 0; start < x.Length; start += BlockElements)
        {
            int len = Math.Min(BlockElements, x.Length - start);
            RunBlock(x.Slice(start, len), y.Slice(start, len), channel, channelOffset < 0 ? -1 : channelOffset + start, scratch);
        }
    }

    private void RunBlock(ReadOnlySpan<float> x, Span<float> y, int channel, int channelOffset, Span<float> scratch)
    {
        int len = x.Length;
        for (int k = 0; k < _code.Length; k++)
        {
            var ins = _code[k];
            bool last = k == _code.Length - 1;
            var dst = last ? y : scratch.Slice((ins.Dst - 1) * BlockElements, len);
            ReadOnlySpan<float> a = ins.A < 0 ? default : ins.A == 0 ? x : scratch.Slice((ins.A - 1) * BlockElements, len);
            ReadOnlySpan<float> b = ins.B < 0 ? default : ins.B == 0 ? x : scratch.Slice((ins.B - 1) * BlockElements, len);
            switch (ins.Kind)
            {
                case Kind.Unary:
                    ins.U!(a, dst);
                    break;
                case Kind.VecVec:
                    ins.Bin!.VV(a, b, dst);
                    break;
                case Kind.VecConst:
                    if (IsVector(ins.Const, channelOffset)) ins.Bin!.VV(a, _constants[ins.Const].AsSpan(channelOffset, len), dst);
                    else ins.Bin!.VS(a, Scalar(ins.Const, channel), dst);
                    break;
                case Kind.ConstVec:
                    if (IsVector(ins.Const, channelOffset)) ins.Bin!.VV(_constants[ins.Const].AsSpan(channelOffset, len), b, dst);
                    else ins.Bin!.SV(Scalar(ins.Const, channel), b, dst);
                    break;
            }
        }
    }

    private bool IsVector(int c, int channelOffset) => channelOffset >= 0 && _perChannel[c];

    private float Scalar(int c, int channel) => _perChannel[c] ? _constants[c][channel] : _constants[c][0];

    /// <summary>Checks per-channel constants against the input's channel count.</summary>
    public string? CheckChannels(int channels)
    {
        for (int i = 0; i < _constants.Length; i++)
            if (_perChannel[i] && _constants[i].Length != channels)
                return $"a per-channel constant has {_constants[i].Length} values for {channels} channels";
        return null;
    }

    private static BinaryFns? BinaryOf(string op) => op switch
    {
        "Add" => Make<AddOp>(),
        "Sub" => Make<SubOp>(),
        "Mul" => Make<MulOp>(),
        "Div" => Make<DivOp>(),
        "Max" => Make<MaxOp>(),
        "Min" => Make<MinOp>(),
        "Pow" => Make<PowOp>(),
        _ => null,
    };

    private static BinaryFns Make<TOp>() where TOp : IBinaryOp => new(
        (a, b, z) => ElementwiseDriver.Binary<TOp>(a, b, z),
        (a, s, z) => ElementwiseDriver.BinaryScalarRight<TOp>(a, s, z),
        (s, b, z) => ElementwiseDriver.BinaryScalarLeft<TOp>(s, b, z));

    private static SpanUnary U<TOp>() where TOp : IUnaryOp => (x, y) => ElementwiseDriver.Unary<TOp>(x, y);

    private static SpanUnary P<TOp>(TOp op) where TOp : struct, IParameterizedUnaryOp => (x, y) => ElementwiseDriver.Unary(op, x, y);

    private static SpanUnary? UnaryOf(Node n, long opset, Graph body)
    {
        float? Const(int i) => i < n.Inputs.Count && n.Inputs[i].Length > 0
            ? body.Initializers.TryGetValue(n.Inputs[i], out var t) && t.ElementCount == 1 && t.DType == DType.Float32 ? t.ToFloatArray()[0] : float.NaN
            : null;
        return n.OpType switch
        {
            "Relu" => U<ReluOp>(),
            "Sigmoid" => U<SigmoidOp>(),
            "Tanh" => U<TanhOp>(),
            "HardSigmoid" => P(new HardSigmoidOp(n.GetFloat("alpha", 0.2f), n.GetFloat("beta", 0.5f))),
            "HardSwish" => U<HardSwishOp>(),
            "LeakyRelu" => P(new LeakyReluOp(n.GetFloat("alpha", 0.01f))),
            "Elu" => P(new EluOp(n.GetFloat("alpha", 1f))),
            "Softplus" => U<SoftplusOp>(),
            "Mish" => U<MishOp>(),
            "Gelu" => n.GetString("approximate", "none") == "tanh" ? U<GeluTanhOp>() : U<GeluOp>(),
            "Neg" => U<NegOp>(),
            "Abs" => U<AbsOp>(),
            "Exp" => U<ExpOp>(),
            "Log" => U<LogOp>(),
            "Sqrt" => U<SqrtOp>(),
            "Reciprocal" => U<ReciprocalOp>(),
            "Erf" => U<ErfOp>(),
            "Round" => U<RoundOp>(),
            "Clip" => opset < 11
                ? P(new ClipOp(n.GetFloat("min", float.MinValue), n.GetFloat("max", float.MaxValue)))
                : Const(1) is float.NaN || Const(2) is float.NaN ? null : P(new ClipOp(Const(1) ?? float.MinValue, Const(2) ?? float.MaxValue)),
            _ => null,
        };
    }
}
