using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using OnDevice.Core;
using OnDevice.Runtime.Kernels.LinearAlgebra;
using OnDevice.Runtime.Simd;

namespace OnDevice.Runtime.Kernels.Quantization;

/// <summary>
/// Run-time lookup tables of the QDQ neck fusion (see <c>FuseQdqNeck</c>): the tables are values of the graph, computed
/// each run by the original float nodes on a probe holding every byte value per channel, so they may depend on other
/// run-time values (a squeeze-excitation scale per image and channel).
/// </summary>
internal static class TableKernels
{
    public static void Register(KernelRegistry r)
    {
        r.Add("QLinearTableLookup", 1, [DType.UInt8, DType.Int8], _ => new TableLookupKernel(), domain: Elementwise.FusedElementwiseKernels.Domain);
        r.Add("QLinearTableAdd", 1, [DType.UInt8, DType.Int8], ctx => new TableAddKernel(ctx), domain: Elementwise.FusedElementwiseKernels.Domain);
        r.Add("DequantizeGlobalAveragePool", 1, [DType.UInt8, DType.Int8], _ => new DequantizeGlobalAveragePoolKernel(), domain: Elementwise.FusedElementwiseKernels.Domain);
    }

    /// <summary>
    /// Images and channels a table [Nt, Ct, 1…, 256] (or [Ct, 256], or [256]) covers for data [N, C, …]; Nt is 1 or N,
    /// Ct is 1 or C. Throws when it does not fit.
    /// </summary>
    internal static (int Images, int Channels) Layout(int[] data, TensorBuffer table, string op)
    {
        var t = table.Shape;
        bool ok = t.Length >= 1 && t[^1] == 256;
        int images = 1, channels = 1;
        if (ok && t.Length >= 2) channels = t[t.Length == 2 ? 0 : 1];
        if (ok && t.Length >= 3)
        {
            images = t[0];
            for (int i = 2; i < t.Length - 1; i++) ok &= t[i] == 1;
        }
        int n = data.Length > 0 ? data[0] : 1, c = data.Length > 1 ? data[1] : 1;
        if (!ok || (images != 1 && images != n) || (channels != 1 && channels != c) || (data.Length < 2 && channels != 1))
            throw new InvalidOperationException($"{op}: table {TensorBuffer.Format(t)} does not fit input {TensorBuffer.Format(data)} (expected [1 or N, 1 or C, 1…, 256])");
        return (images, channels);
    }

    /// <summary>Offset (in entries) of the table for image <paramref name="n"/>, channel <paramref name="c"/>.</summary>
    internal static int TableAt((int Images, int Channels) l, int n, int c) => ((l.Images == 1 ? 0 : n) * l.Channels + (l.Channels == 1 ? 0 : c)) * 256;
}

/// <summary>
/// <c>com.ondevice.QLinearTableLookup(x, table)</c>: y[n, c, …] = table[n, c][x[n, c, …]] (raw byte index), with a
/// table per image and channel, per channel, or one for all; y has the table's type (uint8, int8 or float32).
/// </summary>
internal sealed unsafe class TableLookupKernel : IKernel
{
    public void Execute(KernelContext ctx)
    {
        var x = ctx.Required(0);
        var table = ctx.Required(1);
        if (x.DType is not (DType.UInt8 or DType.Int8) || table.DType is not (DType.UInt8 or DType.Int8 or DType.Float32))
            throw new InvalidOperationException($"QLinearTableLookup: x must be uint8/int8 and the table uint8/int8/float32, got {x.DType.Name()} and {table.DType.Name()}");
        bool floats = table.DType == DType.Float32;
        var l = TableKernels.Layout(x.Shape, table, "QLinearTableLookup");
        var y = ctx.Output(0, table.DType, x.Shape);
        if (y.Length == 0) return;
        int n = x.Rank > 0 ? x.Shape[0] : 1, c = x.Rank > 1 ? x.Shape[1] : 1;
        int plane = x.Length / (n * c);
        fixed (byte* px = x.Memory.Span)
        fixed (byte* py = y.Memory.Span)
        fixed (byte* pt = table.Memory.Span)
        {
            nint xs = (nint)px, ys = (nint)py, ts = (nint)pt;
            PackedWeights.ForWorkers(ctx, n * c, PackedWeights.ChunkFor(plane), (_, p0, p1) =>
            {
                for (int p = p0; p < p1; p++)
                {
                    nint at = (nint)p * plane;
                    int t = TableKernels.TableAt(l, p / c, p % c);
                    if (floats) TableAddKernel.Lookup((byte*)xs + at, plane, (float*)ts + t, (float*)ys + at, accumulate: false);
                    else ByteLookup.Apply((byte*)xs + at, (byte*)ys + at, plane, (byte*)ts + t);
                }
            });
        }
    }
}

/// <summary>
/// <c>com.ondevice.QLinearTableAdd(a, table_a, b, table_b, y_scale, y_zero_point)</c>, attribute <c>upsample</c>
/// [fy, fx] (default 1, 1): y[n, c, i, j] = QuantizeLinear(table_a[n, c][a[n, c, i, j]] + table_b[n, c][b[n, c, i / fy, j / fx]])
/// with float32 tables (see <see cref="TableKernels.Layout"/>): the Add of two float values that are each a function
/// of one byte per channel, then the QuantizeLinear after it, in the same float arithmetic (a nearest, floor-mode
/// integer upsampling of b folded in). A b dimension of 1 broadcasts.
/// </summary>
internal sealed unsafe class TableAddKernel(KernelBuildContext build) : IKernel
{
    private readonly int _fy = build.Node.GetInts("upsample") is { Length: 2 } u ? checked((int)u[0]) : 1;
    private readonly int _fx = build.Node.GetInts("upsample") is { Length: 2 } u ? checked((int)u[1]) : 1;

    public void Execute(KernelContext ctx)
    {
        var a = ctx.Required(0);
        var ta = ctx.Required(1);
        var b = ctx.Required(2);
        var tb = ctx.Required(3);
        float sy = QuantValues.ScalarScale(ctx.Required(4), "y_scale");
        var yzp = ctx.Required(5);
        int zy = QuantValues.ScalarZeroPoint(yzp, "y_zero_point");
        if (a.DType is not (DType.UInt8 or DType.Int8) || b.DType is not (DType.UInt8 or DType.Int8) || ta.DType != DType.Float32 || tb.DType != DType.Float32)
            throw new InvalidOperationException($"QLinearTableAdd: a and b must be uint8/int8 and the tables float32, got {a.DType.Name()}, {ta.DType.Name()}, {b.DType.Name()}, {tb.DType.Name()}");
        if (_fy < 1 || _fx < 1) throw new InvalidOperationException($"QLinearTableAdd: upsample [{_fy}, {_fx}] must be positive");
        if (a.Rank < 2 || b.Rank != a.Rank || (a.Rank != 4 && (_fy != 1 || _fx != 1)))
            throw new InvalidOperationException($"QLinearTableAdd: inputs {TensorBuffer.Format(a.Shape)} and {TensorBuffer.Format(b.Shape)} must have the same rank ≥ 2 (4 when upsampling)");
        int n = a.Shape[0], c = a.Shape[1];
        int h = a.Rank == 4 ? a.Shape[2] : 1, w = a.Length / Math.Max(1, n * c * h);
        int hb = a.Rank == 4 ? b.Shape[2] : 1, wb = a.Rank == 4 ? b.Shape[3] : w;
        bool fits = b.Shape[0] == n && b.Shape[1] == c && (a.Rank == 4 ? Fits(h, hb, _fy) && Fits(w, wb, _fx) : b.Shape.AsSpan().SequenceEqual(a.Shape));
        if (!fits) throw new InvalidOperationException($"QLinearTableAdd: b {TensorBuffer.Format(b.Shape)} upsampled by [{_fy}, {_fx}] does not match a {TensorBuffer.Format(a.Shape)}");
        int fy = hb == 1 && h != 1 ? h : _fy, fx = wb == 1 && w != 1 ? w : _fx; // broadcasting = reading index 0
        var la = TableKernels.Layout(a.Shape, ta, "QLinearTableAdd");
        var lb = TableKernels.Layout(b.Shape, tb, "QLinearTableAdd");
        var (min, max) = QuantValues.Range(yzp.DType);
        var y = ctx.Output(0, yzp.DType, a.Shape);
        if (y.Length == 0) return;
        bool up = fx != 1 || fy != 1;
        int perWorker = (2 * w + wb) * sizeof(float) + 64;
        int workers = PackedWeights.Workers(ctx, n * c, PackedWeights.ChunkFor((long)h * w * 4));
        var scratch = ctx.Scratch(perWorker * workers);
        fixed (byte* pa = a.Memory.Span)
        fixed (byte* pb = b.Memory.Span)
        fixed (byte* py = y.Memory.Span)
        fixed (byte* pta = ta.Memory.Span)
        fixed (byte* ptb = tb.Memory.Span)
        fixed (byte* ps = scratch.Span)
        {
            nint na = (nint)pa, nb = (nint)pb, ny = (nint)py, nta = (nint)pta, ntb = (nint)ptb, nps = (nint)ps;
            PackedWeights.ForWorkers(ctx, n * c, PackedWeights.ChunkFor((long)h * w * 4), (worker, p0, p1) =>
            {
                float* sum = (float*)(nps + (nint)worker * perWorker);
                float* bWide = sum + w, bNarrow = bWide + w;
                for (int p = p0; p < p1; p++)
                {
                    int img = p / c, ch = p % c;
                    float* tA = (float*)nta + TableKernels.TableAt(la, img, ch);
                    float* tB = (float*)ntb + TableKernels.TableAt(lb, img, ch);
                    byte* aPlane = (byte*)na + (nint)p * h * w, yPlane = (byte*)ny + (nint)p * h * w, bPlane = (byte*)nb + (nint)p * hb * wb;
                    int lastRow = -1;
                    for (int i = 0; i < h; i++)
                    {
                        int bi = i / fy;
                        byte* bRow = bPlane + (nint)bi * wb;
                        if (!up) Row(aPlane + (nint)i * w, bRow, w, tA, tB, sum);
                        else
                        {
                            // b's values once per b row (fy output rows share it), widened as floats.
                            if (bi != lastRow)
                            {
                                Lookup(bRow, wb, tB, bNarrow, accumulate: false);
                                Widen(bNarrow, fx, w, bWide);
                                lastRow = bi;
                            }
                            Lookup(aPlane + (nint)i * w, w, tA, sum, accumulate: false);
                            Add(sum, bWide, w);
                        }
                        QuantizeVectors.Quantize(new ReadOnlySpan<float>(sum, w), sy, zy, min, max, new Span<byte>(yPlane + (nint)i * w, w));
                    }
                }
            });
        }
    }

    /// <summary>wide[j] = row[j / f] for j &lt; <paramref name="count"/> (nearest upsampling of one row of floats); AVX-512 permutes for f = 2.</summary>
    internal static void Widen(float* row, int f, int count, float* wide, bool vector = true)
    {
        int j = 0;
        if (vector && f == 2 && Avx512F.IsSupported)
        {
            var pairs = Vector512.Create(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
            for (; j + 16 <= count; j += 16)
                Avx512F.PermuteVar16x32(Vector256.Load(row + j / 2).ToVector512Unsafe(), pairs).Store(wide + j);
        }
        for (int src = j / f, k = j % f; j < count; j++)
        {
            wide[j] = row[src];
            if (++k == f) { k = 0; src++; }
        }
    }

    /// <summary>sum[j] += b[j] (one float add per element).</summary>
    internal static void Add(float* sum, float* b, int count)
    {
        int j = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; j + 16 <= count; j += 16) (Vector512.Load(sum + j) + Vector512.Load(b + j)).Store(sum + j);
        for (; j < count; j++) sum[j] += b[j];
    }

    private static bool Fits(int full, int small, int f) => small * f == full || (small == 1 && f == 1);

    /// <summary>sum[j] = tA[a[j]] + tB[b[j]] (one float add, as the Add node): two passes of <see cref="Lookup"/>.</summary>
    internal static void Row(byte* a, byte* b, int count, float* tA, float* tB, float* sum, bool vector = true)
    {
        Lookup(a, count, tA, sum, accumulate: false, vector);
        Lookup(b, count, tB, sum, accumulate: true, vector);
    }

    /// <summary>
    /// dst[j] = table[idx[j]] (or dst[j] += table[idx[j]]) for a 256-entry float table. AVX-512: the table in 16
    /// registers, eight two-register permutes (<c>vpermt2ps</c>, low 5 index bits) and a blend tree on bits 5–7, 16
    /// values per step, the table held in registers instead of gathered; the scalar loop (<paramref name="vector"/> false) is the twin.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    internal static void Lookup(byte* idx, int count, float* table, float* dst, bool accumulate, bool vector = true)
    {
        int j = 0;
        if (vector && Avx512F.IsSupported && count >= 16)
        {
            var t0 = Vector512.Load(table); var t1 = Vector512.Load(table + 16); var t2 = Vector512.Load(table + 32); var t3 = Vector512.Load(table + 48);
            var t4 = Vector512.Load(table + 64); var t5 = Vector512.Load(table + 80); var t6 = Vector512.Load(table + 96); var t7 = Vector512.Load(table + 112);
            var t8 = Vector512.Load(table + 128); var t9 = Vector512.Load(table + 144); var t10 = Vector512.Load(table + 160); var t11 = Vector512.Load(table + 176);
            var t12 = Vector512.Load(table + 192); var t13 = Vector512.Load(table + 208); var t14 = Vector512.Load(table + 224); var t15 = Vector512.Load(table + 240);
            var b5 = Vector512.Create(32);
            var b6 = Vector512.Create(64);
            var b7 = Vector512.Create(128);
            for (; j + 16 <= count; j += 16)
            {
                var i = Avx512F.ConvertToVector512Int32(Vector128.Load(idx + j));
                var m5 = Vector512.Equals(i & b5, b5).AsSingle();
                var m6 = Vector512.Equals(i & b6, b6).AsSingle();
                var m7 = Vector512.Equals(i & b7, b7).AsSingle();
                var r0 = Vector512.ConditionalSelect(m5, Avx512F.PermuteVar16x32x2(t2, i, t3), Avx512F.PermuteVar16x32x2(t0, i, t1));
                var r1 = Vector512.ConditionalSelect(m5, Avx512F.PermuteVar16x32x2(t6, i, t7), Avx512F.PermuteVar16x32x2(t4, i, t5));
                var r2 = Vector512.ConditionalSelect(m5, Avx512F.PermuteVar16x32x2(t10, i, t11), Avx512F.PermuteVar16x32x2(t8, i, t9));
                var r3 = Vector512.ConditionalSelect(m5, Avx512F.PermuteVar16x32x2(t14, i, t15), Avx512F.PermuteVar16x32x2(t12, i, t13));
                var lo = Vector512.ConditionalSelect(m6, r1, r0);
                var hi = Vector512.ConditionalSelect(m6, r3, r2);
                var v = Vector512.ConditionalSelect(m7, hi, lo);
                if (accumulate) v = Vector512.Load(dst + j) + v;
                v.Store(dst + j);
            }
        }
        if (accumulate) for (; j < count; j++) dst[j] += table[idx[j]];
        else for (; j < count; j++) dst[j] = table[idx[j]];
    }
}

/// <summary>
/// <c>com.ondevice.DequantizeGlobalAveragePool(x, x_scale [, x_zero_point])</c>: GlobalAveragePool(DequantizeLinear(x))
/// per tensor, without the float tensor: each plane is dequantized into a buffer (the same arithmetic as
/// DequantizeLinear) and summed by the same reduction as GlobalAveragePool, so the result is identical.
/// </summary>
internal sealed unsafe class DequantizeGlobalAveragePoolKernel : IKernel
{
    public void Execute(KernelContext ctx)
    {
        var x = ctx.Required(0);
        float scale = QuantValues.ScalarScale(ctx.Required(1), "x_scale");
        var zpb = ctx.Input(2);
        if (zpb is not null && zpb.DType != x.DType) throw new InvalidOperationException($"DequantizeGlobalAveragePool: zero point is {zpb.DType.Name()} but x is {x.DType.Name()}");
        int zp = QuantValues.ScalarZeroPoint(zpb, "x_zero_point");
        if (x.Rank < 2 || x.DType is not (DType.UInt8 or DType.Int8)) throw new InvalidOperationException($"DequantizeGlobalAveragePool: x must be uint8/int8 of rank >= 2, got {x}");
        var y = ctx.Output(0, DType.Float32, x.Shape.Select((d, i) => i < 2 ? d : 1).ToArray());
        int planes = x.Shape[0] * x.Shape[1];
        if (planes == 0) return;
        int size = x.Length / planes;
        bool signed = x.DType == DType.Int8;
        int perWorker = size * sizeof(float) + 64;
        int minChunk = PackedWeights.ChunkFor(size);
        var scratch = ctx.Scratch(checked(perWorker * PackedWeights.Workers(ctx, planes, minChunk)));
        fixed (byte* px = x.Memory.Span)
        fixed (float* py = y.Span<float>())
        fixed (byte* ps = scratch.Span)
        {
            nint nx = (nint)px, ny = (nint)py, nps = (nint)ps;
            PackedWeights.ForWorkers(ctx, planes, minChunk, (worker, begin, end) =>
            {
                var buffer = new Span<float>((float*)(nps + (nint)worker * perWorker), size);
                for (int i = begin; i < end; i++)
                {
                    QuantizeVectors.Dequantize(new ReadOnlySpan<byte>((byte*)nx + (nint)i * size, size), signed, scale, zp, buffer);
                    ((float*)ny)[i] = PlaneReduce.Sum(buffer) / size;
                }
            });
        }
    }
}
