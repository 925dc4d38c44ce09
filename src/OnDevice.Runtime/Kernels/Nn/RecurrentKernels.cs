using OnDevice.Core;
using OnDevice.Runtime.Kernels.LinearAlgebra;
using OnDevice.Runtime.Simd;

namespace OnDevice.Runtime.Kernels.Nn;

/// <summary>LSTM, GRU and RNN on float32: forward, reverse, bidirectional; sequence_lens; initial states; layout 0/1.</summary>
internal static class RecurrentKernels
{
    public static void Register(KernelRegistry r)
    {
        r.Add("LSTM", 1, TypeSets.Float, ctx => new RecurrentKernel(ctx, RecurrentKernel.Cell.Lstm), supports: ctx => RecurrentKernel.Supports(ctx, RecurrentKernel.Cell.Lstm));
        r.Add("GRU", 1, TypeSets.Float, ctx => new RecurrentKernel(ctx, RecurrentKernel.Cell.Gru), supports: ctx => RecurrentKernel.Supports(ctx, RecurrentKernel.Cell.Gru));
        r.Add("RNN", 1, TypeSets.Float, ctx => new RecurrentKernel(ctx, RecurrentKernel.Cell.Rnn), supports: ctx => RecurrentKernel.Supports(ctx, RecurrentKernel.Cell.Rnn));
    }
}

/// <summary>An RNN activation function (ONNX names) with its alpha/beta.</summary>
internal readonly record struct RnnActivation(RnnActivation.Kind Function, float Alpha, float Beta)
{
    public enum Kind { Sigmoid, Tanh, Relu, Affine, LeakyRelu, ThresholdedRelu, ScaledTanh, HardSigmoid, Elu, Softsign, Softplus }

    public float Apply(float x) => Function switch
    {
        Kind.Sigmoid => 1f / (1f + MathF.Exp(-x)),
        Kind.Tanh => MathF.Tanh(x),
        Kind.Relu => x > 0 ? x : 0,
        Kind.Affine => Alpha * x + Beta,
        Kind.LeakyRelu => x >= 0 ? x : Alpha * x,
        Kind.ThresholdedRelu => x > Alpha ? x : 0,
        Kind.ScaledTanh => Alpha * MathF.Tanh(Beta * x),
        Kind.HardSigmoid => Math.Max(0, Math.Min(1, Alpha * x + Beta)),
        Kind.Elu => x >= 0 ? x : Alpha * (MathF.Exp(x) - 1),
        Kind.Softsign => x / (1 + Math.Abs(x)),
        _ => x > 20 ? x : MathF.Log(1 + MathF.Exp(x)),
    };

    /// <summary>Reads <c>activations</c>, consuming <c>activation_alpha</c>/<c>activation_beta</c> in order for the functions
    /// that take them (defaults as the ONNX operators of the same name: LeakyRelu 0.01, ThresholdedRelu 1, HardSigmoid
    /// 0.2/0.5, Elu 1; Affine 1/0 and ScaledTanh 1/1).</summary>
    public static RnnActivation[] Parse(Node node, string[] defaults, int directions)
    {
        var names = node.Attr("activations")?.AsStrings() ?? [];
        if (names.Length == 0) names = [.. Enumerable.Range(0, directions).SelectMany(_ => defaults)];
        else if (names.Length == defaults.Length && directions == 2) names = [.. names, .. names];
        if (names.Length != defaults.Length * directions)
            throw new NotSupportedException($"expected {defaults.Length * directions} activations, found {names.Length}");
        var alphas = node.Attr("activation_alpha")?.AsFloats() ?? [];
        var betas = node.Attr("activation_beta")?.AsFloats() ?? [];
        int ai = 0, bi = 0;
        var result = new RnnActivation[names.Length];
        for (int i = 0; i < names.Length; i++)
        {
            var (kind, alpha, beta, usesAlpha, usesBeta) = names[i].ToLowerInvariant() switch
            {
                "sigmoid" => (Kind.Sigmoid, 0f, 0f, false, false),
                "tanh" => (Kind.Tanh, 0f, 0f, false, false),
                "relu" => (Kind.Relu, 0f, 0f, false, false),
                "affine" => (Kind.Affine, 1f, 0f, true, true),
                "leakyrelu" => (Kind.LeakyRelu, 0.01f, 0f, true, false),
                "thresholdedrelu" => (Kind.ThresholdedRelu, 1f, 0f, true, false),
                "scaledtanh" => (Kind.ScaledTanh, 1f, 1f, true, true),
                "hardsigmoid" => (Kind.HardSigmoid, 0.2f, 0.5f, true, true),
                "elu" => (Kind.Elu, 1f, 0f, true, false),
                "softsign" => (Kind.Softsign, 0f, 0f, false, false),
                "softplus" => (Kind.Softplus, 0f, 0f, false, false),
                _ => throw new NotSupportedException($"unknown activation '{names[i]}'"),
            };
            if (usesAlpha && ai < alphas.Length) alpha = alphas[ai++];
            if (usesBeta && bi < betas.Length) beta = betas[bi++];
            result[i] = new RnnActivation(kind, alpha, beta);
        }
        return result;
    }
}

/// <summary>
/// One recurrent layer. Per direction: the input projection X·Wᵀ + biases for every time step is one GEMM; each step
/// then multiplies the previous hidden state by the prepacked Rᵀ (GRU: [Rz; Rr]ᵀ and Rhᵀ separately, the latter after
/// the reset gate) and applies the gate equations element-wise. The definition is <c>Reference.RecurrentReference</c>.
/// </summary>
internal sealed unsafe class RecurrentKernel : IKernel
{
    public enum Cell { Lstm, Gru, Rnn }

    /// <summary>Most rows for which run-time weights are read by dot products instead of being packed.</summary>
    private const int DotRowsLimit = 8;

    private readonly Cell _cell;
    private readonly int _gates;
    private readonly string _direction;
    private readonly int _dirs;
    private readonly int _layout;
    private readonly float? _clip;
    private readonly bool _inputForget, _linearBeforeReset;
    private readonly long _hiddenAttr;
    private readonly RnnActivation[] _activations;
    private readonly int[]? _wShape, _rShape;
    private readonly float[][]? _packedW;  // per direction: Wᵀ panels (K = input, N = gates·hidden)
    private readonly float[][]? _packedR;  // per direction: Rᵀ panels (LSTM/RNN: all gates; GRU: z and r)
    private readonly float[][]? _packedRh; // per direction, GRU only: Rhᵀ panels

    private static string[] Defaults(Cell cell) => cell switch
    {
        Cell.Lstm => ["Sigmoid", "Tanh", "Tanh"],
        Cell.Gru => ["Sigmoid", "Tanh"],
        _ => ["Tanh"],
    };

    public static string? Supports(KernelBuildContext ctx, Cell cell)
    {
        var n = ctx.Node;
        var dir = n.GetString("direction", "forward");
        if (dir is not ("forward" or "reverse" or "bidirectional")) return $"direction '{dir}' is not forward, reverse or bidirectional";
        if (n.GetInt("layout", 0) is not (0 or 1)) return "layout must be 0 or 1";
        if (n.Attr("hidden_size") is { } hs && hs.AsInt() < 1) return "hidden_size must be positive";
        try { RnnActivation.Parse(n, Defaults(cell), dir == "bidirectional" ? 2 : 1); }
        catch (NotSupportedException e) { return e.Message; }
        return null;
    }

    public RecurrentKernel(KernelBuildContext ctx, Cell cell)
    {
        var n = ctx.Node;
        _cell = cell;
        _gates = cell switch { Cell.Lstm => 4, Cell.Gru => 3, _ => 1 };
        _direction = n.GetString("direction", "forward");
        _dirs = _direction == "bidirectional" ? 2 : 1;
        _layout = (int)n.GetInt("layout", 0);
        _clip = n.Attr("clip") is { } c ? c.AsFloat() : null;
        _inputForget = n.GetInt("input_forget", 0) != 0;
        _linearBeforeReset = n.GetInt("linear_before_reset", 0) != 0;
        _hiddenAttr = n.GetInt("hidden_size", 0);
        _activations = RnnActivation.Parse(n, Defaults(cell), _dirs);
        if (PackedWeights.FloatConstant(ctx, 1) is { Dims.Length: 3 } w && w.Dims[0] == _dirs)
        {
            _wShape = PackedWeights.Dims(w);
            _packedW = new float[_dirs][];
            int rows = _wShape[1], input = _wShape[2];
            for (int d = 0; d < _dirs; d++)
                _packedW[d] = PackedWeights.PackB(w.AsSpan<float>().Slice(d * rows * input, rows * input), input, rows, true, 1f);
        }
        if (PackedWeights.FloatConstant(ctx, 2) is { Dims.Length: 3 } r && r.Dims[0] == _dirs)
        {
            _rShape = PackedWeights.Dims(r);
            int rows = _rShape[1], hidden = _rShape[2];
            int main = cell == Cell.Gru ? 2 * hidden : rows;
            _packedR = new float[_dirs][];
            _packedRh = cell == Cell.Gru ? new float[_dirs][] : null;
            for (int d = 0; d < _dirs; d++)
            {
                var rd = r.AsSpan<float>().Slice(d * rows * hidden, rows * hidden);
                _packedR[d] = PackedWeights.PackB(rd[..(main * hidden)], hidden, main, true, 1f);
                if (_packedRh is not null) _packedRh[d] = PackedWeights.PackB(rd[(main * hidden)..], hidden, hidden, true, 1f);
            }
        }
    }

    public void Execute(KernelContext ctx)
    {
        var x = ctx.Required(0);
        var w = ctx.Required(1);
        var r = ctx.Required(2);
        var bias = ctx.Input(3);
        var seqLens = ctx.Input(4);
        var initH = ctx.Input(5);
        var initC = _cell == Cell.Lstm ? ctx.Input(6) : null;
        var peep = _cell == Cell.Lstm ? ctx.Input(7) : null;
        string op = ctx.Node.OpType;
        if (x.Rank != 3) throw new InvalidOperationException($"{op}: X must have rank 3");
        int seq = _layout == 0 ? x.Shape[0] : x.Shape[1], batch = _layout == 0 ? x.Shape[1] : x.Shape[0], input = x.Shape[2];
        int hidden = r.Rank == 3 ? r.Shape[2] : 0;
        if (_hiddenAttr > 0 && _hiddenAttr != hidden) throw new InvalidOperationException($"{op}: hidden_size {_hiddenAttr} does not match R {TensorBuffer.Format(r.Shape)}");
        int gh = _gates * hidden;
        if (w.Rank != 3 || w.Shape[0] != _dirs || w.Shape[1] != gh || w.Shape[2] != input)
            throw new InvalidOperationException($"{op}: W {TensorBuffer.Format(w.Shape)} should be [{_dirs},{gh},{input}]");
        if (r.Shape[0] != _dirs || r.Shape[1] != gh) throw new InvalidOperationException($"{op}: R {TensorBuffer.Format(r.Shape)} should be [{_dirs},{gh},{hidden}]");
        if (bias is not null && bias.Length != _dirs * 2 * gh) throw new InvalidOperationException($"{op}: B must have {_dirs * 2 * gh} values");
        if (peep is not null && peep.Length != _dirs * 3 * hidden) throw new InvalidOperationException($"{op}: P must have {_dirs * 3 * hidden} values");
        int stateLen = _dirs * batch * hidden;
        if (initH is not null && initH.Length != stateLen) throw new InvalidOperationException($"{op}: initial_h must have {stateLen} values");
        if (initC is not null && initC.Length != stateLen) throw new InvalidOperationException($"{op}: initial_c must have {stateLen} values");
        var lens = new int[batch];
        for (int b = 0; b < batch; b++)
        {
            lens[b] = seqLens is null ? seq : seqLens.DType == DType.Int64 ? checked((int)seqLens.Span<long>()[b]) : seqLens.Span<int>()[b];
            if (lens[b] < 0 || lens[b] > seq) throw new InvalidOperationException($"{op}: sequence_lens[{b}] = {lens[b]} is outside [0, {seq}]");
        }

        int[] yShape = _layout == 0 ? [seq, _dirs, batch, hidden] : [batch, seq, _dirs, hidden];
        int[] stateShape = _layout == 0 ? [_dirs, batch, hidden] : [batch, _dirs, hidden];
        var y = ctx.IsOutputUsed(0) ? ctx.Output(0, DType.Float32, yShape) : null;
        var yh = ctx.IsOutputUsed(1) ? ctx.Output(1, DType.Float32, stateShape) : null;
        var yc = _cell == Cell.Lstm && ctx.IsOutputUsed(2) ? ctx.Output(2, DType.Float32, stateShape) : null;

        bool wPacked = _packedW is not null && w.Shape.AsSpan().SequenceEqual(_wShape);
        bool rPacked = _packedR is not null && r.Shape.AsSpan().SequenceEqual(_rShape);
        int rows = seq * batch, mainN = _cell == Cell.Gru ? 2 * hidden : gh;
        // With few rows (batch-1 streaming, a VAD or keyword spotter) GEMM tiles would be mostly padding, and weights that
        // are not constants would be packed on every run: dot products read the weight rows in place instead.
        bool dotW = rows <= DotRowsLimit, dotR = batch <= DotRowsLimit;
        long fX = PackedWeights.Lines(Gemm.PackedASize(rows, input));
        long fXW = PackedWeights.Lines((long)rows * gh);
        long fHR = PackedWeights.Lines((long)batch * gh);
        long fPH = PackedWeights.Lines(Gemm.PackedASize(batch, hidden));
        long fState = PackedWeights.Lines((long)batch * hidden);
        long fBias = PackedWeights.Lines(gh);
        long fW = wPacked || dotW ? 0 : PackedWeights.Lines(Gemm.PackedBSize(input, gh));
        long fR = rPacked || dotR ? 0 : PackedWeights.Lines(Gemm.PackedBSize(hidden, mainN)) + PackedWeights.Lines(Gemm.PackedBSize(hidden, hidden));
        long total = fX + fXW + fHR + fPH + 3 * fState + fBias + fW + fR;
        var scratch = ctx.Scratch(PackedWeights.ScratchBytes(total));
        int threads = ctx.Threads;

        fixed (float* px = x.Span<float>())
        fixed (float* pw = w.Span<float>())
        fixed (float* pr = r.Span<float>())
        fixed (float* pb = bias is null ? default : bias.Span<float>())
        fixed (float* pih = initH is null ? default : initH.Span<float>())
        fixed (float* pic = initC is null ? default : initC.Span<float>())
        fixed (float* pp = peep is null ? default : peep.Span<float>())
        fixed (float* py = y is null ? default : y.Span<float>())
        fixed (float* pyh = yh is null ? default : yh.Span<float>())
        fixed (float* pyc = yc is null ? default : yc.Span<float>())
        fixed (byte* ps = scratch.Span)
        {
            float* packedX = PackedWeights.Align(ps);
            float* xw = packedX + fX;
            float* hr = xw + fXW;
            float* packedH = hr + fHR;
            float* h = packedH + fPH;
            float* c = h + fState;
            float* rh = c + fState;
            float* gateBias = rh + fState;
            float* wScratch = gateBias + fBias;
            float* rScratch = wScratch + fW;
            float* rhScratch = rScratch + (rPacked || dotR ? 0 : PackedWeights.Lines(Gemm.PackedBSize(hidden, mainN)));

            if (y is not null) new Span<float>(py, y.Length).Clear();
            // X rows in memory order: layout 0 row = t·batch + b, layout 1 row = b·seq + t.
            Gemm.PackA(px, rows, input, input, 1, 1f, packedX);
            for (int d = 0; d < _dirs; d++)
            {
                bool reverse = _direction == "reverse" || d == 1;
                // Input projection with the biases that sit outside any gate product.
                for (int j = 0; j < gh; j++)
                {
                    float wb = bias is null ? 0 : pb[d * 2 * gh + j], rb = bias is null ? 0 : pb[d * 2 * gh + gh + j];
                    bool keepRb = _cell == Cell.Gru && _linearBeforeReset && j >= 2 * hidden;
                    gateBias[j] = keepRb ? wb : wb + rb;
                }
                if (dotW)
                {
                    DotRows.Multiply(px, rows, input, input, pw + (nint)d * gh * input, gh, input, xw, gh, false);
                    for (int i = 0; i < rows; i++)
                        for (int j = 0; j < gh; j++) xw[(nint)i * gh + j] += gateBias[j];
                }
                else
                {
                    float* wd;
                    if (wPacked) wd = PackedWeights.Address(_packedW![d]);
                    else
                    {
                        Gemm.PackB(pw + (nint)d * gh * input, input, gh, 1, input, 1f, wScratch);
                        wd = wScratch;
                    }
                    Gemm.Multiply(new PrepackedB(wd, input), packedX, rows, gh, input, xw, gh, false,
                        new GemmEpilogue(GemmBias.PerColumn), gateBias, threads, null);
                }
                float* rd = null, rhd = null;
                float* rRows = pr + (nint)d * gh * hidden;
                if (dotR) { }
                else if (rPacked)
                {
                    rd = PackedWeights.Address(_packedR![d]);
                    if (_packedRh is not null) rhd = PackedWeights.Address(_packedRh[d]);
                }
                else
                {
                    float* rsrc = pr + (nint)d * gh * hidden;
                    Gemm.PackB(rsrc, hidden, mainN, 1, hidden, 1f, rScratch);
                    rd = rScratch;
                    if (_cell == Cell.Gru)
                    {
                        Gemm.PackB(rsrc + (nint)mainN * hidden, hidden, hidden, 1, hidden, 1f, rhScratch);
                        rhd = rhScratch;
                    }
                }
                // Initial state.
                for (int b = 0; b < batch; b++)
                    for (int j = 0; j < hidden; j++)
                    {
                        int si = StateIndex(d, b, j, batch, hidden);
                        h[b * hidden + j] = initH is null ? 0 : pih[si];
                        c[b * hidden + j] = initC is null ? 0 : pic[si];
                    }
                float* pd = peep is null ? null : pp + d * 3 * hidden;
                float* recurrentBias = bias is null ? null : pb + d * 2 * gh + gh + 2 * hidden; // GRU Rbh
                for (int s = 0; s < seq; s++)
                {
                    // hr = h·Rᵀ for every batch row (rows whose sequence has ended are ignored).
                    if (dotR) DotRows.Multiply(h, batch, hidden, hidden, rRows, mainN, hidden, hr, gh, false);
                    else
                    {
                        Gemm.PackA(h, batch, hidden, hidden, 1, 1f, packedH);
                        Gemm.Multiply(new PrepackedB(rd, hidden), packedH, batch, mainN, hidden, hr, gh, false, GemmEpilogue.None, null, threads, null);
                    }
                    if (_cell == Cell.Gru)
                        GruStep(s, d, reverse, lens, seq, batch, hidden, xw, hr, h, rh, packedH, rhd, dotR ? rRows + (nint)mainN * hidden : null,
                            recurrentBias, py, threads);
                    else
                        for (int b = 0; b < batch; b++)
                        {
                            if (s >= lens[b]) continue;
                            int t = reverse ? lens[b] - 1 - s : s;
                            float* xr = xw + (nint)Row(t, b, seq, batch) * gh;
                            float* hrr = hr + (nint)b * gh;
                            if (_cell == Cell.Lstm) LstmCell(d, xr, hrr, h + b * hidden, c + b * hidden, pd, hidden);
                            else RnnCell(d, xr, hrr, h + b * hidden, hidden);
                            if (py != null) WriteY(py, t, d, b, h + b * hidden, seq, batch, hidden);
                        }
                }
                for (int b = 0; b < batch; b++)
                    for (int j = 0; j < hidden; j++)
                    {
                        int si = StateIndex(d, b, j, batch, hidden);
                        if (pyh != null) pyh[si] = h[b * hidden + j];
                        if (pyc != null) pyc[si] = c[b * hidden + j];
                    }
            }
        }
    }

    private int Row(int t, int b, int seq, int batch) => _layout == 0 ? t * batch + b : b * seq + t;

    private int StateIndex(int d, int b, int j, int batch, int hidden) =>
        _layout == 0 ? (d * batch + b) * hidden + j : (b * _dirs + d) * hidden + j;

    private void WriteY(float* y, int t, int d, int b, float* h, int seq, int batch, int hidden)
    {
        nint at = _layout == 0 ? ((nint)(t * _dirs + d) * batch + b) * hidden : ((nint)(b * seq + t) * _dirs + d) * hidden;
        new ReadOnlySpan<float>(h, hidden).CopyTo(new Span<float>(y + at, hidden));
    }

    private float Clip(float v) => _clip is { } c ? Math.Max(-c, Math.Min(c, v)) : v;

    /// <summary>Gates i, o, f, c; xr holds X·Wᵀ + biases, hr holds h·Rᵀ; updates h and c in place.</summary>
    private void LstmCell(int d, float* xr, float* hr, float* h, float* c, float* peep, int hidden)
    {
        var f = _activations[d * 3];
        var g = _activations[d * 3 + 1];
        var hAct = _activations[d * 3 + 2];
        for (int j = 0; j < hidden; j++)
        {
            float cPrev = c[j];
            float pi = peep == null ? 0 : peep[j], po = peep == null ? 0 : peep[hidden + j], pf = peep == null ? 0 : peep[2 * hidden + j];
            float it = f.Apply(Clip(xr[j] + hr[j] + pi * cPrev));
            float ft = _inputForget ? 1 - it : f.Apply(Clip(xr[2 * hidden + j] + hr[2 * hidden + j] + pf * cPrev));
            float ct = g.Apply(Clip(xr[3 * hidden + j] + hr[3 * hidden + j]));
            float cNew = ft * cPrev + it * ct;
            float ot = f.Apply(Clip(xr[hidden + j] + hr[hidden + j] + po * cNew));
            c[j] = cNew;
            h[j] = ot * hAct.Apply(cNew);
        }
    }

    private void RnnCell(int d, float* xr, float* hr, float* h, int hidden)
    {
        var f = _activations[d];
        for (int j = 0; j < hidden; j++) h[j] = f.Apply(Clip(xr[j] + hr[j]));
    }

    /// <summary>One GRU step for every active batch row: z and r from hr (= h·[Rz; Rr]ᵀ), then the candidate with Rh.</summary>
    private void GruStep(int s, int d, bool reverse, int[] lens, int seq, int batch, int hidden, float* xw, float* hr, float* h, float* rh,
        float* packedH, float* rhPacked, float* rhRows, float* recurrentBias, float* y, int threads)
    {
        var f = _activations[d * 2];
        var g = _activations[d * 2 + 1];
        int gh = 3 * hidden;
        // z and r into hr[.., 0..2H); r⊙h (before reset) or h (linear before reset) into rh.
        for (int b = 0; b < batch; b++)
        {
            int t = s < lens[b] ? (reverse ? lens[b] - 1 - s : s) : 0;
            float* xr = xw + (nint)Row(t, b, seq, batch) * gh;
            float* hrr = hr + (nint)b * gh;
            for (int j = 0; j < hidden; j++)
            {
                hrr[j] = f.Apply(Clip(xr[j] + hrr[j]));
                hrr[hidden + j] = f.Apply(Clip(xr[hidden + j] + hrr[hidden + j]));
                rh[b * hidden + j] = _linearBeforeReset ? h[b * hidden + j] : hrr[hidden + j] * h[b * hidden + j];
            }
        }
        // Candidate pre-activation: (r⊙h)·Rhᵀ or h·Rhᵀ into hr[.., 2H..3H).
        if (rhRows != null) DotRows.Multiply(rh, batch, hidden, hidden, rhRows, hidden, hidden, hr + 2 * hidden, gh, false);
        else
        {
            Gemm.PackA(rh, batch, hidden, hidden, 1, 1f, packedH);
            Gemm.Multiply(new PrepackedB(rhPacked, hidden), packedH, batch, hidden, hidden, hr + 2 * hidden, gh, false, GemmEpilogue.None, null, threads, null);
        }
        for (int b = 0; b < batch; b++)
        {
            if (s >= lens[b]) continue;
            int t = reverse ? lens[b] - 1 - s : s;
            float* xr = xw + (nint)Row(t, b, seq, batch) * gh;
            float* hrr = hr + (nint)b * gh;
            float* hb = h + b * hidden;
            for (int j = 0; j < hidden; j++)
            {
                float z = hrr[j], r = hrr[hidden + j];
                float pre = _linearBeforeReset
                    ? xr[2 * hidden + j] + r * (hrr[2 * hidden + j] + (recurrentBias == null ? 0 : recurrentBias[j]))
                    : xr[2 * hidden + j] + hrr[2 * hidden + j];
                float ht = g.Apply(Clip(pre));
                hb[j] = (1 - z) * ht + z * hb[j];
            }
            if (y != null) WriteY(y, t, d, b, hb, seq, batch, hidden);
        }
    }
}
