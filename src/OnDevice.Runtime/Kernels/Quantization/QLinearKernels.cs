using OnDevice.Core;
using OnDevice.Runtime.Kernels.Nn;

namespace OnDevice.Runtime.Kernels.Quantization;

/// <summary>
/// The com.microsoft quantized element-wise and pooling operators ONNX Runtime's QOperator quantizer emits:
/// QLinearAdd, QLinearMul (with broadcasting), QLinearSigmoid, QLinearLeakyRelu (256-entry lookup tables),
/// QLinearGlobalAveragePool, QLinearAveragePool and QLinearConcat, on uint8/int8 tensors. Each computes what
/// dequantize → float op → quantize (round half to even, saturate) computes, as ONNX Runtime does.
/// </summary>
internal static class QLinearKernels
{
    private const string Ms = "com.microsoft";
    private static readonly DType[] Bytes = [DType.UInt8, DType.Int8];

    public static void Register(KernelRegistry r)
    {
        r.Add("QLinearAdd", 1, Bytes, _ => new QLinearBinaryKernel(false), domain: Ms);
        r.Add("QLinearMul", 1, Bytes, _ => new QLinearBinaryKernel(true), domain: Ms);
        r.Add("QLinearSigmoid", 1, Bytes, _ => new QLinearLookupKernel(x => 1f / (1f + MathF.Exp(-x))), domain: Ms);
        r.Add("QLinearLeakyRelu", 1, Bytes, ctx =>
        {
            float alpha = ctx.Node.GetFloat("alpha", 0.01f);
            return new QLinearLookupKernel(x => x >= 0 ? x : alpha * x);
        }, domain: Ms);
        r.Add("QLinearGlobalAveragePool", 1, Bytes, ctx => new QLinearGlobalAveragePoolKernel(ctx.Node.GetInt("channels_last", 0) != 0), domain: Ms);
        r.Add("QLinearAveragePool", 1, Bytes, ctx => new QLinearAveragePoolKernel(ctx), domain: Ms, supports: ctx =>
            ctx.Node.GetInt("channels_last", 0) != 0 ? "channels_last QLinearAveragePool is not supported"
            : WindowGeometry.Read(ctx.Node) is var g && g.KernelShape is null ? "kernel_shape is required" : g.Check(g.KernelShape!.Length));
        r.Add("QLinearConcat", 1, Bytes, ctx => new QLinearConcatKernel(ctx.Node.GetInt("axis", 0)), domain: Ms, typeInput: 2);
    }

    /// <summary>(scale, zero point, range) of a quantized operand from its scale and optional zero-point inputs.</summary>
    internal static (float Scale, int Zp) Params(KernelContext ctx, int scaleInput, int zpInput, string what) =>
        (QuantValues.ScalarScale(ctx.Required(scaleInput), what + " scale"), QuantValues.ScalarZeroPoint(ctx.Input(zpInput), what + " zero point"));

    internal static int Value(byte raw, bool signed) => signed ? (sbyte)raw : raw;
}

/// <summary>C = quantize(deq(A) + deq(B)) or quantize(deq(A)·deq(B)): Add as sa/sc·(A − za) + sb/sc·(B − zb) (two 256-entry tables), Mul as sa·sb/sc·(A − za)(B − zb).</summary>
internal sealed class QLinearBinaryKernel(bool multiply) : IKernel
{
    public void Execute(KernelContext ctx)
    {
        var a = ctx.Required(0);
        var b = ctx.Required(3);
        if (a.DType != b.DType) throw new InvalidOperationException($"{ctx.Node.OpType}: A is {a.DType.Name()} but B is {b.DType.Name()}");
        var (sa, za) = QLinearKernels.Params(ctx, 1, 2, "A");
        var (sb, zb) = QLinearKernels.Params(ctx, 4, 5, "B");
        var (sc, zc) = QLinearKernels.Params(ctx, 6, 7, "C");
        var (min, max) = QuantValues.Range(a.DType);
        bool signed = a.DType == DType.Int8;
        var bc = new Broadcast(a.Shape, b.Shape);
        var y = ctx.Output(0, a.DType, bc.OutShape);
        var av = a.Memory.Span;
        var bv = b.Memory.Span;
        var yv = y.Memory.Span;
        int inner = bc.Inner;
        bool aStep = bc.InnerContiguous[0], bStep = bc.InnerContiguous[1];
        if (!multiply)
        {
            // Tables of each operand's contribution in output units.
            Span<float> ta = stackalloc float[256], tb = stackalloc float[256];
            float ra = sa / sc, rb = sb / sc;
            for (int v = 0; v < 256; v++)
            {
                ta[v] = ra * (QLinearKernels.Value((byte)v, signed) - za);
                tb[v] = rb * (QLinearKernels.Value((byte)v, signed) - zb);
            }
            for (int blk = 0; blk < bc.Blocks; blk++)
            {
                int oa = bc.Offset(0, blk), ob = bc.Offset(1, blk), oy = blk * inner;
                for (int i = 0; i < inner; i++)
                    yv[oy + i] = (byte)Clamp(MathF.Round(ta[av[oa + (aStep ? i : 0)]] + tb[bv[ob + (bStep ? i : 0)]]) + zc, min, max);
            }
        }
        else
        {
            float r = sa * sb / sc;
            for (int blk = 0; blk < bc.Blocks; blk++)
            {
                int oa = bc.Offset(0, blk), ob = bc.Offset(1, blk), oy = blk * inner;
                for (int i = 0; i < inner; i++)
                {
                    int x1 = QLinearKernels.Value(av[oa + (aStep ? i : 0)], signed) - za, x2 = QLinearKernels.Value(bv[ob + (bStep ? i : 0)], signed) - zb;
                    yv[oy + i] = (byte)Clamp(MathF.Round(r * (x1 * x2)) + zc, min, max);
                }
            }
        }
    }

    internal static int Clamp(float v, int min, int max) => v <= min ? min : v >= max ? max : (int)v;
}

/// <summary>A unary function on a quantized tensor through a 256-entry table: y = quantize(f(deq(x))).</summary>
internal sealed class QLinearLookupKernel(Func<float, float> f) : IKernel
{
    public void Execute(KernelContext ctx)
    {
        var x = ctx.Required(0);
        var (sx, zx) = QLinearKernels.Params(ctx, 1, 2, "X");
        var (sy, zy) = QLinearKernels.Params(ctx, 3, 4, "Y");
        var (min, max) = QuantValues.Range(x.DType);
        bool signed = x.DType == DType.Int8;
        Span<byte> table = stackalloc byte[256];
        for (int v = 0; v < 256; v++)
            table[v] = (byte)QuantValues.Quantize(f((QLinearKernels.Value((byte)v, signed) - zx) * sx) / sy, zy, min, max);
        var y = ctx.Output(0, x.DType, x.Shape);
        var xs = x.Memory.Span;
        var ys = y.Memory.Span;
        for (int i = 0; i < xs.Length; i++) ys[i] = table[xs[i]];
    }
}

/// <summary>y[n, c] = quantize(mean over the spatial positions of deq(x)), NCHW… or channels-last.</summary>
internal sealed class QLinearGlobalAveragePoolKernel(bool channelsLast) : IKernel
{
    public void Execute(KernelContext ctx)
    {
        var x = ctx.Required(0);
        if (x.Rank < 3) throw new InvalidOperationException($"QLinearGlobalAveragePool needs rank >= 3, got {x}");
        var (sx, zx) = QLinearKernels.Params(ctx, 1, 2, "x");
        var (sy, zy) = QLinearKernels.Params(ctx, 3, 4, "y");
        var (min, max) = QuantValues.Range(x.DType);
        bool signed = x.DType == DType.Int8;
        int n = x.Shape[0], c = channelsLast ? x.Shape[^1] : x.Shape[1];
        int spatial = x.Length / Math.Max(1, n * c);
        int[] shape = channelsLast ? [n, .. Enumerable.Repeat(1, x.Rank - 2), c] : [n, c, .. Enumerable.Repeat(1, x.Rank - 2)];
        var y = ctx.Output(0, x.DType, shape);
        var xs = x.Memory.Span;
        var ys = y.Memory.Span;
        float scale = sx / (sy * spatial);
        for (int b = 0; b < n; b++)
            for (int ch = 0; ch < c; ch++)
            {
                long sum = 0;
                if (channelsLast)
                    for (int p = 0; p < spatial; p++) sum += QLinearKernels.Value(xs[(b * spatial + p) * c + ch], signed);
                else
                {
                    var plane = xs.Slice((b * c + ch) * spatial, spatial);
                    for (int p = 0; p < spatial; p++) sum += QLinearKernels.Value(plane[p], signed);
                }
                ys[b * c + ch] = (byte)QuantValues.Quantize((sum - (long)zx * spatial) * scale, zy, min, max);
            }
    }
}

/// <summary>Average pooling on quantized NCHW… tensors: padding contributes the real value 0; count_include_pad as AveragePool.</summary>
internal sealed class QLinearAveragePoolKernel(KernelBuildContext build) : IKernel
{
    private readonly WindowGeometry _geometry = WindowGeometry.Read(build.Node);
    private readonly bool _includePad = build.Node.GetInt("count_include_pad", 0) != 0;

    public void Execute(KernelContext ctx)
    {
        var x = ctx.Required(0);
        var (sx, zx) = QLinearKernels.Params(ctx, 1, 2, "x");
        var (sy, zy) = QLinearKernels.Params(ctx, 3, 4, "y");
        var (min, max) = QuantValues.Range(x.DType);
        bool signed = x.DType == DType.Int8;
        var kernel = _geometry.KernelShape!;
        int r = x.Rank - 2;
        if (r != kernel.Length) throw new InvalidOperationException($"QLinearAveragePool: kernel_shape has {kernel.Length} values for input {x}");
        var win = _geometry.Resolve(x.Shape.AsSpan(2), kernel);
        var w3 = win.To3D();
        int[] in3 = [.. Enumerable.Repeat(1, 3 - r), .. x.Shape[2..]];
        var y = ctx.Output(0, x.DType, [x.Shape[0], x.Shape[1], .. win.Output]);
        int planes = x.Shape[0] * x.Shape[1];
        int inSize = in3[0] * in3[1] * in3[2], outSize = y.Length / Math.Max(1, planes);
        var xs = x.Memory.Span;
        var ys = y.Memory.Span;
        float ratio = sx / sy;
        for (int pl = 0; pl < planes; pl++)
        {
            var src = xs.Slice(pl * inSize, inSize);
            int p = 0;
            for (int oz = 0; oz < w3.Output[0]; oz++)
                for (int oy = 0; oy < w3.Output[1]; oy++)
                    for (int ox = 0; ox < w3.Output[2]; ox++, p++)
                    {
                        long sum = 0;
                        int count = 0, padded = 0;
                        for (int a = 0; a < w3.Kernel[0]; a++)
                            for (int b = 0; b < w3.Kernel[1]; b++)
                                for (int e = 0; e < w3.Kernel[2]; e++)
                                {
                                    int iz = oz * w3.Strides[0] - w3.PadBegin[0] + a * w3.Dilations[0];
                                    int iy = oy * w3.Strides[1] - w3.PadBegin[1] + b * w3.Dilations[1];
                                    int ix = ox * w3.Strides[2] - w3.PadBegin[2] + e * w3.Dilations[2];
                                    if ((uint)iz < (uint)in3[0] && (uint)iy < (uint)in3[1] && (uint)ix < (uint)in3[2])
                                    {
                                        sum += QLinearKernels.Value(src[(iz * in3[1] + iy) * in3[2] + ix], signed) - zx;
                                        count++;
                                    }
                                    else if (iz < in3[0] + w3.PadEnd[0] && iy < in3[1] + w3.PadEnd[1] && ix < in3[2] + w3.PadEnd[2]) padded++;
                                }
                        int divisor = _includePad ? count + padded : count;
                        ys[pl * outSize + p] = (byte)QuantValues.Quantize(divisor == 0 ? 0 : (float)sum / divisor * ratio, zy, min, max);
                    }
        }
    }
}

/// <summary>QLinearConcat(Y_scale, Y_zero_point, X1, X1_scale, X1_zero_point, …): each input requantized to Y's parameters, then concatenated.</summary>
internal sealed class QLinearConcatKernel(long axisAttr) : IKernel
{
    public void Execute(KernelContext ctx)
    {
        var (sy, zy) = QLinearKernels.Params(ctx, 0, 1, "Y");
        int count = (ctx.InputCount - 2) / 3;
        if (count < 1 || (ctx.InputCount - 2) % 3 != 0) throw new InvalidOperationException("QLinearConcat needs (X, X_scale, X_zero_point) triples after Y_scale and Y_zero_point");
        var first = ctx.Required(2);
        int rank = first.Rank;
        int axis = (int)(axisAttr < 0 ? axisAttr + rank : axisAttr);
        if (axis < 0 || axis >= rank) throw new InvalidOperationException($"QLinearConcat: axis {axisAttr} is out of range for rank {rank}");
        var shape = (int[])first.Shape.Clone();
        shape[axis] = 0;
        var xs = new TensorBuffer[count];
        for (int i = 0; i < count; i++)
        {
            xs[i] = ctx.Required(2 + 3 * i);
            if (xs[i].DType != first.DType || xs[i].Rank != rank) throw new InvalidOperationException($"QLinearConcat: input {i} is {xs[i]}, expected {first.DType.Name()} of rank {rank}");
            for (int d = 0; d < rank; d++)
                if (d != axis && xs[i].Shape[d] != first.Shape[d]) throw new InvalidOperationException($"QLinearConcat: input {i} {xs[i]} does not match {first} outside axis {axis}");
            shape[axis] += xs[i].Shape[axis];
        }
        var (min, max) = QuantValues.Range(first.DType);
        bool signed = first.DType == DType.Int8;
        var y = ctx.Output(0, first.DType, shape);
        int outer = 1, inner = 1;
        for (int d = 0; d < axis; d++) outer *= shape[d];
        for (int d = axis + 1; d < rank; d++) inner *= shape[d];
        var ys = y.Memory.Span;
        int offset = 0;
        Span<byte> table = stackalloc byte[256];
        for (int i = 0; i < count; i++)
        {
            var (sx, zx) = QLinearKernels.Params(ctx, 3 + 3 * i, 4 + 3 * i, $"X{i + 1}");
            bool same = sx == sy && zx == zy;
            for (int v = 0; v < 256; v++)
                table[v] = same ? (byte)v : (byte)QuantValues.Quantize((QLinearKernels.Value((byte)v, signed) - zx) * sx / sy, zy, min, max);
            int run = xs[i].Shape[axis] * inner;
            var src = xs[i].Memory.Span;
            for (int o = 0; o < outer; o++)
            {
                var s = src.Slice(o * run, run);
                var d = ys.Slice(o * shape[axis] * inner + offset, run);
                if (same) s.CopyTo(d);
                else for (int k = 0; k < run; k++) d[k] = table[s[k]];
            }
            offset += run;
        }
    }
}
