using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using OnDevice.Core;
using OnDevice.Runtime.Kernels.LinearAlgebra;
using OnDevice.Runtime.Simd;

namespace OnDevice.Runtime.Kernels.Quantization;

/// <summary>Shapes of a numpy-style matmul: 1-D promotion, broadcast batch dimensions.</summary>
internal sealed class MatMulGeometry
{
    public int M, K, N, Batches;
    public int[] OutShape = [], BatchShape = [], AStrides = [], BStrides = [];
    public int ABatches, BBatches;

    public static MatMulGeometry Of(int[] aShape, int[] bShape, string op)
    {
        if (aShape.Length == 0 || bShape.Length == 0) throw new InvalidOperationException($"{op} operands must have rank >= 1");
        bool aVec = aShape.Length == 1, bVec = bShape.Length == 1;
        var g = new MatMulGeometry
        {
            M = aVec ? 1 : aShape[^2],
            K = aShape[^1],
            N = bVec ? 1 : bShape[^1],
        };
        int kb = bVec ? bShape[0] : bShape[^2];
        if (g.K != kb) throw new InvalidOperationException($"{op}: {TensorBuffer.Format(aShape)} · {TensorBuffer.Format(bShape)}: inner dimensions differ");
        var aBatch = aVec ? [] : aShape[..^2];
        var bBatch = bVec ? [] : bShape[..^2];
        g.BatchShape = MatMulKernel.BroadcastBatch(aBatch, bBatch);
        g.AStrides = MatMulKernel.BatchStrides(aBatch, g.BatchShape.Length);
        g.BStrides = MatMulKernel.BatchStrides(bBatch, g.BatchShape.Length);
        var outShape = new List<int>(g.BatchShape);
        if (!aVec) outShape.Add(g.M);
        if (!bVec) outShape.Add(g.N);
        g.OutShape = [.. outShape];
        g.ABatches = aBatch.Aggregate(1, (p, d) => p * d);
        g.BBatches = bBatch.Aggregate(1, (p, d) => p * d);
        g.Batches = g.BatchShape.Aggregate(1, (p, d) => p * d);
        return g;
    }

    public int ABatch(int batch) => MatMulKernel.BatchIndex(BatchShape, AStrides, batch);
    public int BBatch(int batch) => MatMulKernel.BatchIndex(BatchShape, BStrides, batch);
}

/// <summary>
/// The integer matmul shared by MatMulInteger, QLinearMatMul, MatMulIntegerToFloat and DynamicQuantizeMatMul: A
/// (uint8/int8, per-tensor or per-row zero point) times B (uint8/int8, per-tensor or per-column zero point) into int32
/// on <see cref="Int8Gemm"/>. A constant B (with a constant zero point) is packed once when the session is built.
/// </summary>
internal sealed unsafe class IntegerMatMulCore
{
    private readonly Int8PackedB[]? _packed;
    private readonly int[]? _bShape;
    private readonly int _bInput, _bZpInput;

    /// <summary>Packs B (input <paramref name="bInput"/>, zero point input <paramref name="bZpInput"/>, −1 for none) when constant.</summary>
    public IntegerMatMulCore(KernelBuildContext ctx, int bInput, int bZpInput)
    {
        _bInput = bInput;
        _bZpInput = bZpInput;
        var b = ctx.Constant(bInput);
        var zp = bZpInput >= 0 ? ctx.Constant(bZpInput) : null;
        if (b is { DType: DType.UInt8 or DType.Int8, Dims.Length: >= 1 } && (bZpInput < 0 || !ctx.HasInput(bZpInput) || zp is not null))
        {
            _bShape = PackedWeights.Dims(b);
            int k = _bShape.Length == 1 ? _bShape[0] : _bShape[^2];
            int n = _bShape.Length == 1 ? 1 : _bShape[^1];
            int batches = _bShape.Length <= 2 ? 1 : _bShape[..^2].Aggregate(1, (p, d) => p * d);
            var zps = zp is null ? [] : QuantValues.Ints(TensorBuffer.Wrap(zp));
            if (zps.Length is not (0 or 1) && zps.Length != n) throw new InvalidOperationException($"B zero point has {zps.Length} values for {n} columns");
            _packed = new Int8PackedB[batches];
            var bytes = b.Bytes;
            for (int i = 0; i < batches; i++)
                _packed[i] = new Int8PackedB(bytes.Slice(i * k * n, k * n), b.DType == DType.Int8, k, n, n, 1, zps);
        }
    }

    /// <summary>Bytes held by prepacked weights.</summary>
    public long PackedBytes => _packed?.Sum(p => p.Bytes) ?? 0;

    /// <summary>
    /// C (int32, laid out as <see cref="MatMulGeometry.OutShape"/>) = (A − za)·(B − zb). <paramref name="aZeroPoints"/>
    /// has one value (per tensor) or <c>M</c> values (per row).
    /// </summary>
    public void Compute(KernelContext ctx, MatMulGeometry g, TensorBuffer a, ReadOnlySpan<int> aZeroPoints, TensorBuffer b, int* c)
    {
        if (a.DType is not (DType.UInt8 or DType.Int8) || b.DType is not (DType.UInt8 or DType.Int8))
            throw new InvalidOperationException($"integer matmul needs uint8/int8 operands, got {a.DType.Name()} and {b.DType.Name()}");
        if (aZeroPoints.Length != 1 && aZeroPoints.Length != g.M) throw new InvalidOperationException($"A zero point has {aZeroPoints.Length} values; expected 1 or {g.M}");
        int m = g.M, k = g.K, n = g.N;
        if ((long)g.Batches * m * n == 0) return;
        Int8PackedB[] packed;
        if (_packed is not null && b.Shape.AsSpan().SequenceEqual(_bShape)) packed = _packed;
        else
        {
            var zpb = _bZpInput >= 0 ? ctx.Input(_bZpInput) : null;
            var zps = zpb is null ? [] : QuantValues.Ints(zpb);
            if (zps.Length is not (0 or 1) && zps.Length != n) throw new InvalidOperationException($"B zero point has {zps.Length} values; expected 1 or {n}");
            packed = new Int8PackedB[g.BBatches];
            var bytes = b.Memory.Span;
            for (int i = 0; i < packed.Length; i++)
                packed[i] = new Int8PackedB(bytes.Slice(i * k * n, k * n), b.DType == DType.Int8, k, n, n, 1, zps);
        }
        int kp = packed[0].KPadded;
        bool signedA = a.DType == DType.Int8;
        var scratch = ctx.Scratch(checked((int)(Int8Gemm.PreparedABytes(m, kp) + 8L * m + 64)));
        var path = Int8Gemm.Best;
        fixed (byte* pa = a.Memory.Span)
        fixed (byte* ps = scratch.Span)
        {
            byte* prepared = ps;
            int* rowSums = (int*)(ps + ((Int8Gemm.PreparedABytes(m, kp) + 15) & ~15L));
            int* za = rowSums + m;
            for (int i = 0; i < m; i++) za[i] = aZeroPoints[aZeroPoints.Length == 1 ? 0 : i] + (signedA ? 128 : 0);
            for (int batch = 0; batch < g.Batches; batch++)
            {
                int ai = g.ABatch(batch), bi = g.BBatch(batch);
                Int8Gemm.PrepareA(pa + (nint)ai * m * k, m, k, k, signedA, prepared, kp, rowSums);
                Int8Gemm.Multiply(path, prepared, m, rowSums, za, packed[bi], c + (nint)batch * m * n, n, ctx.Threads);
            }
        }
    }
}

/// <summary>MatMulInteger, QLinearMatMul (ONNX) and MatMulIntegerToFloat, DynamicQuantizeMatMul (com.microsoft).</summary>
internal static class IntegerMatMulKernels
{
    private static readonly DType[] Bytes = [DType.UInt8, DType.Int8];

    public static void Register(KernelRegistry r)
    {
        r.Add("MatMulInteger", 10, Bytes, ctx => new MatMulIntegerKernel(ctx));
        r.Add("QLinearMatMul", 10, Bytes, ctx => new QLinearMatMulKernel(ctx));
        // The optimizer's fusion of DequantizeLinear → MatMul (→ Relu) → QuantizeLinear, with an optional fused Relu.
        r.Add("QLinearMatMul", 1, Bytes, ctx => new QLinearMatMulKernel(ctx), domain: Elementwise.FusedElementwiseKernels.Domain);
        r.Add("MatMulIntegerToFloat", 1, Bytes, ctx => new MatMulIntegerToFloatKernel(ctx), domain: "com.microsoft");
        r.Add("DynamicQuantizeMatMul", 1, TypeSets.Float, ctx => new DynamicQuantizeMatMulKernel(ctx), domain: "com.microsoft");
    }
}

/// <summary>Y (int32) = (A − a_zero_point)·(B − b_zero_point).</summary>
internal sealed unsafe class MatMulIntegerKernel(KernelBuildContext build) : IKernel
{
    private readonly IntegerMatMulCore _core = new(build, 1, 3);

    public void Execute(KernelContext ctx)
    {
        var a = ctx.Required(0);
        var b = ctx.Required(1);
        var g = MatMulGeometry.Of(a.Shape, b.Shape, "MatMulInteger");
        var za = ctx.Input(2) is { } z ? QuantValues.Ints(z) : [0];
        var y = ctx.Output(0, DType.Int32, g.OutShape);
        fixed (int* py = y.Span<int>()) _core.Compute(ctx, g, a, za, b, py);
    }
}

/// <summary>y = saturate(round((A − za)·(B − zb) · a_scale·b_scale / y_scale) + y_zero_point); b's scale and zero point may be per column.</summary>
internal sealed unsafe class QLinearMatMulKernel(KernelBuildContext build) : IKernel
{
    private readonly IntegerMatMulCore _core = new(build, 3, 5);
    private readonly bool _relu = build.Node.GetInt("relu", 0) != 0;
    // The optimizer's fold of a following DequantizeLinear (+ Add of a [N] bias, input 8): float output.
    private readonly bool _dequantize = build.Node.GetInt("dequantize", 0) != 0;
    // The optimizer's float-output form (DequantizeLinear → MatMul whose result stays float): y = S·a_scale·b_scale[j]
    // (+ bias[j], input 8), no requantization; inputs 6 and 7 are unused.
    private readonly bool _floatOutput = build.Node.GetInt("float_output", 0) != 0;

    [ThreadStatic]
    private static int[]? t_sums;

    public void Execute(KernelContext ctx)
    {
        var a = ctx.Required(0);
        var b = ctx.Required(3);
        var g = MatMulGeometry.Of(a.Shape, b.Shape, "QLinearMatMul");
        float sa = QuantValues.ScalarScale(ctx.Required(1), "a_scale");
        var za = QuantValues.Ints(ctx.Required(2));
        var sb = QuantValues.ScaleVector(ctx.Required(4), g.N, "b_scale");
        if (_floatOutput)
        {
            var yf = ctx.Output(0, DType.Float32, g.OutShape);
            var sums = t_sums is { } c0 && c0.Length >= yf.Length ? c0 : t_sums = GC.AllocateUninitializedArray<int>(Math.Max(1, yf.Length), pinned: true);
            fixed (int* c = sums) _core.Compute(ctx, g, a, za, b, c);
            var fb = ctx.Input(8) is { } fbb ? QuantValues.ScaleVector(fbb, g.N, "bias") : null;
            MatMulIntegerToFloatKernel.ToFloat(sums.AsSpan(0, yf.Length), sa, sb, fb, g.N, yf.Span<float>());
            return;
        }
        float sy = QuantValues.ScalarScale(ctx.Required(6), "y_scale");
        var yzp = ctx.Required(7);
        int zy = QuantValues.ScalarZeroPoint(yzp, "y_zero_point");
        var (min, max) = QuantValues.Range(yzp.DType);
        if (_relu) min = Math.Max(min, zy);
        var y = ctx.Output(0, _dequantize ? DType.Float32 : yzp.DType, g.OutShape);
        // The int32 products in a per-thread buffer kept across runs (a fresh array per run would be a large-object allocation).
        var scratch = t_sums is { } cached && cached.Length >= y.Length ? cached : t_sums = GC.AllocateUninitializedArray<int>(Math.Max(1, y.Length), pinned: true);
        fixed (int* c = scratch) _core.Compute(ctx, g, a, za, b, c);
        var multipliers = new float[g.N];
        for (int j = 0; j < g.N; j++) multipliers[j] = sa * sb[j] / sy;
        if (!_dequantize)
        {
            Requantize.Run(scratch.AsSpan(0, y.Length), null, multipliers, g.N, zy, min, max, y.Span<byte>());
            return;
        }
        var bias = ctx.Input(8) is { } bb ? QuantValues.ScaleVector(bb, g.N, "bias") : null;
        Requantize.RunDequantized(scratch.AsSpan(0, y.Length), multipliers, g.N, zy, min, max, sy, bias, y.Span<float>());
    }
}

/// <summary>Y (float) = (A − za)·(B − zb) · a_scale · b_scale (+ bias); b's scale and zero point may be per column.</summary>
internal sealed unsafe class MatMulIntegerToFloatKernel(KernelBuildContext build) : IKernel
{
    private readonly IntegerMatMulCore _core = new(build, 1, 5);

    public void Execute(KernelContext ctx)
    {
        var a = ctx.Required(0);
        var b = ctx.Required(1);
        var g = MatMulGeometry.Of(a.Shape, b.Shape, "MatMulIntegerToFloat");
        float sa = QuantValues.ScalarScale(ctx.Required(2), "a_scale");
        var sb = QuantValues.ScaleVector(ctx.Required(3), g.N, "b_scale");
        var za = ctx.Input(4) is { } z ? QuantValues.Ints(z) : [0];
        var bias = ctx.Input(6) is { } bb ? QuantValues.ScaleVector(bb, g.N, "bias") : null;
        var y = ctx.Output(0, DType.Float32, g.OutShape);
        var c = new int[Math.Max(1, y.Length)];
        fixed (int* pc = c) _core.Compute(ctx, g, a, za, b, pc);
        ToFloat(c, sa, sb, bias, g.N, y.Span<float>());
    }

    /// <summary>
    /// y[i, j] = c[i, j]·(sa·sb[j]) + bias[j]: sixteen columns at a time with AVX-512 (the same multiply and add);
    /// <paramref name="vector"/> false runs the scalar twin.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    internal static void ToFloat(ReadOnlySpan<int> c, float sa, float[] sb, float[]? bias, int n, Span<float> y, bool vector = true)
    {
        var scale = new float[n];
        for (int j = 0; j < n; j++) scale[j] = sa * sb[j];
        var b = bias ?? new float[n];
        fixed (int* pc = c) fixed (float* py = y) fixed (float* ps = scale) fixed (float* pb = b)
        {
            for (int i = 0; i < y.Length; i += n)
            {
                int j = 0;
                if (vector && Vector512.IsHardwareAccelerated)
                    for (; j + 16 <= n; j += 16)
                        (Vector512.ConvertToSingle(Vector512.Load(pc + i + j)) * Vector512.Load(ps + j) + Vector512.Load(pb + j)).Store(py + i + j);
                for (; j < n; j++) py[i + j] = pc[i + j] * ps[j] + pb[j];
            }
        }
    }
}

/// <summary>A (float) quantized to uint8 as DynamicQuantizeLinear does, then multiplied with int8/uint8 B and scaled back to float (+ bias).</summary>
internal sealed unsafe class DynamicQuantizeMatMulKernel(KernelBuildContext build) : IKernel
{
    private readonly IntegerMatMulCore _core = new(build, 1, 3);

    public void Execute(KernelContext ctx)
    {
        var a = ctx.Required(0);
        var b = ctx.Required(1);
        var g = MatMulGeometry.Of(a.Shape, b.Shape, "DynamicQuantizeMatMul");
        var sb = QuantValues.ScaleVector(ctx.Required(2), g.N, "b_scale");
        var bias = ctx.Input(4) is { } bb ? QuantValues.ScaleVector(bb, g.N, "bias") : null;
        var (sa, za) = DynamicQuantizeLinearKernel.Parameters(a.Span<float>());
        var aq = TensorBuffer.Allocate(DType.UInt8, a.Shape);
        DynamicQuantizeLinearKernel.Quantize(a.Span<float>(), sa, za, aq.Span<byte>());
        var y = ctx.Output(0, DType.Float32, g.OutShape);
        var c = new int[Math.Max(1, y.Length)];
        fixed (int* pc = c) _core.Compute(ctx, g, aq, [za], b, pc);
        MatMulIntegerToFloatKernel.ToFloat(c, sa, sb, bias, g.N, y.Span<float>());
    }
}

/// <summary>int32 accumulators to 8-bit outputs: saturate(round-half-even((c + bias[j])·multiplier[j]) + zp).</summary>
internal static class Requantize
{
    /// <summary>Rows of <paramref name="n"/> columns; bias and multipliers per column (bias may be null).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    public static unsafe void Run(ReadOnlySpan<int> c, int[]? bias, float[] multipliers, int n, int zp, int min, int max, Span<byte> y)
    {
        if (Avx512F.IsSupported && n >= 8)
        {
            // Eight columns at a time in double, the same arithmetic as One (bit-identical results).
            var mul = new double[n];
            for (int j = 0; j < n; j++) mul[j] = multipliers[j];
            var b = bias ?? new int[n];
            var vz = Vector512.Create((double)zp);
            var vmin = Vector512.Create((double)min);
            var vmax = Vector512.Create((double)max);
            fixed (int* pc = c) fixed (byte* py = y) fixed (double* pm = mul) fixed (int* pb = b)
            {
                int* tmp = stackalloc int[8];
                for (int i = 0; i < y.Length; i += n)
                {
                    int j = 0;
                    for (; j + 8 <= n; j += 8)
                    {
                        var acc = Vector256.Load(pc + i + j) + Vector256.Load(pb + j);
                        var v = Vector512.Round(Avx512F.ConvertToVector512Double(acc) * Vector512.Load(pm + j)) + vz;
                        Avx512F.ConvertToVector256Int32(Vector512.Min(Vector512.Max(v, vmin), vmax)).Store(tmp);
                        byte* d = py + i + j;
                        for (int t = 0; t < 8; t++) d[t] = (byte)tmp[t];
                    }
                    for (; j < n; j++) py[i + j] = (byte)One(pc[i + j] + pb[j], multipliers[j], zp, min, max);
                }
            }
            return;
        }
        for (int i = 0; i < y.Length; i += n)
            for (int j = 0; j < n; j++)
                y[i + j] = (byte)One(c[i + j] + (bias is null ? 0 : bias[j]), multipliers[j], zp, min, max);
    }

    /// <summary>
    /// A GEMM tile [count, channels] of int32 sums (row-major) requantized into <paramref name="channels"/> output planes
    /// (channel j at <paramref name="dst"/> + j·<paramref name="planeStride"/>, positions contiguous):
    /// saturate(round-half-even((s + bias[j])·multiplier[j]) + zp), in float as ONNX Runtime does. Eight channels at a
    /// time with Vector256; the scalar loop is the same arithmetic.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    public static unsafe void Tile(int* sums, int count, int channels, int* bias, float* multipliers, int zp, int min, int max, byte* dst, nint planeStride)
    {
        int j0 = 0;
        if (channels == 1 && Vector256.IsHardwareAccelerated)
        {
            // One channel (depthwise): positions are contiguous, vectorize along them.
            var vz = Vector256.Create((float)zp);
            var vmin = Vector256.Create((float)min);
            var vmax = Vector256.Create((float)max);
            var vb = Vector256.Create(bias[0]);
            var vm = Vector256.Create(multipliers[0]);
            int* tmp = stackalloc int[8];
            int p = 0;
            for (; p + 8 <= count; p += 8)
            {
                var v = Vector256.Round(Vector256.ConvertToSingle(Vector256.Load(sums + p) + vb) * vm) + vz;
                Vector256.ConvertToInt32(Vector256.Min(Vector256.Max(v, vmin), vmax)).Store(tmp);
                for (int t = 0; t < 8; t++) dst[p + t] = (byte)tmp[t];
            }
            for (; p < count; p++) dst[p] = (byte)OneFloat(sums[p] + bias[0], multipliers[0], zp, min, max);
            return;
        }
        if (System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated)
        {
            var vz = System.Runtime.Intrinsics.Vector256.Create((float)zp);
            var vmin = System.Runtime.Intrinsics.Vector256.Create((float)min);
            var vmax = System.Runtime.Intrinsics.Vector256.Create((float)max);
            int* tmp = stackalloc int[8];
            for (; j0 + 8 <= channels; j0 += 8)
            {
                var vb = System.Runtime.Intrinsics.Vector256.Load(bias + j0);
                var vm = System.Runtime.Intrinsics.Vector256.Load(multipliers + j0);
                for (int p = 0; p < count; p++)
                {
                    var acc = System.Runtime.Intrinsics.Vector256.Load(sums + (nint)p * channels + j0) + vb;
                    var v = System.Runtime.Intrinsics.Vector256.Round(System.Runtime.Intrinsics.Vector256.ConvertToSingle(acc) * vm) + vz;
                    System.Runtime.Intrinsics.Vector256.ConvertToInt32(System.Runtime.Intrinsics.Vector256.Min(System.Runtime.Intrinsics.Vector256.Max(v, vmin), vmax)).Store(tmp);
                    byte* d = dst + (nint)j0 * planeStride + p;
                    for (int t = 0; t < 8; t++) d[t * planeStride] = (byte)tmp[t];
                }
            }
        }
        for (int j = j0; j < channels; j++)
        {
            byte* d = dst + (nint)j * planeStride;
            float mul = multipliers[j];
            int b = bias[j];
            for (int p = 0; p < count; p++) d[p] = (byte)OneFloat(sums[(nint)p * channels + j] + b, mul, zp, min, max);
        }
    }

    /// <summary>
    /// One channel of exact integer sums held as floats (the float depthwise kernel's output on integer operands):
    /// dst[p] = saturate(round-half-even(((int)y[p] + bias)·multiplier) + zp), sixteen at a time with AVX-512; the
    /// scalar loop (<paramref name="vector"/> false) is the twin.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    public static unsafe void FromFloat(float* y, int count, int bias, float multiplier, int zp, int min, int max, byte* dst, bool vector = true)
    {
        int p = 0;
        if (vector && Avx512F.IsSupported)
        {
            var vb = Vector512.Create(bias);
            var vm = Vector512.Create(multiplier);
            var vz = Vector512.Create((float)zp);
            var vmin = Vector512.Create((float)min);
            var vmax = Vector512.Create((float)max);
            for (; p + 16 <= count; p += 16)
            {
                var acc = Vector512.ConvertToInt32(Vector512.Load(y + p)) + vb;
                var v = Vector512.Round(Vector512.ConvertToSingle(acc) * vm) + vz;
                Avx512F.ConvertToVector128Byte(Vector512.ConvertToInt32(Vector512.Min(Vector512.Max(v, vmin), vmax))).Store(dst + p);
            }
        }
        for (; p < count; p++) dst[p] = (byte)OneFloat(unchecked((int)y[p] + bias), multiplier, zp, min, max);
    }

    /// <summary>
    /// What requantizing with <see cref="One"/> and then DequantizeLinear (+ a float bias per column) computes, without
    /// the bytes: y = (q − zp)·scale + bias[j] with q = One(c, multiplier[j], zp, min, max). Eight columns at a time
    /// with AVX-512 (same arithmetic); <paramref name="vector"/> false runs the scalar twin.
    /// </summary>
    public static unsafe void RunDequantized(ReadOnlySpan<int> c, float[] multipliers, int n, int zp, int min, int max, float scale, float[]? bias, Span<float> y, bool vector = true)
    {
        int start = 0;
        if (vector && Avx512F.IsSupported && n >= 8)
        {
            var mul = new double[n];
            for (int j = 0; j < n; j++) mul[j] = multipliers[j];
            var b = bias ?? new float[n];
            var vz = Vector512.Create((double)zp);
            var vmin = Vector512.Create((double)min);
            var vmax = Vector512.Create((double)max);
            var vs = Vector256.Create(scale);
            fixed (int* pc = c) fixed (float* py = y) fixed (double* pm = mul) fixed (float* pb = b)
            {
                for (int i = 0; i < y.Length; i += n)
                {
                    int j = 0;
                    for (; j + 8 <= n; j += 8)
                    {
                        var q = Vector512.Min(Vector512.Max(Vector512.Round(Avx512F.ConvertToVector512Double(Vector256.Load(pc + i + j)) * Vector512.Load(pm + j)) + vz, vmin), vmax) - vz;
                        (Avx512F.ConvertToVector256Single(q) * vs + Vector256.Load(pb + j)).Store(py + i + j);
                    }
                    for (; j < n; j++) py[i + j] = (One(pc[i + j], multipliers[j], zp, min, max) - zp) * scale + pb[j];
                }
            }
            return;
        }
        for (int i = start; i < y.Length; i += n)
            for (int j = 0; j < n; j++)
            {
                float v = (One(c[i + j], multipliers[j], zp, min, max) - zp) * scale;
                y[i + j] = bias is null ? v : v + bias[j];
            }
    }

    /// <summary>One value in float arithmetic (the scalar twin of <see cref="Tile"/>).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public static int OneFloat(int acc, float multiplier, int zp, int min, int max)
    {
        float v = MathF.Round((float)acc * multiplier) + zp;
        return v <= min ? min : v >= max ? max : (int)v;
    }

    /// <summary>One value.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public static int One(int acc, float multiplier, int zp, int min, int max)
    {
        double v = Math.Round((double)acc * multiplier) + zp;
        return v <= min ? min : v >= max ? max : (int)v;
    }
}
