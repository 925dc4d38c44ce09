using OnDevice.Core;
using OnDevice.Runtime.Simd;

namespace OnDevice.Runtime.Kernels.Quantization;

/// <summary>QuantizeLinear and DequantizeLinear (opsets 10, 13 axis, 19 float16 scales, 21 block_size and 4/16-bit
/// types) and DynamicQuantizeLinear.</summary>
internal static class QuantizeKernels
{
    public static void Register(KernelRegistry r)
    {
        r.Add("QuantizeLinear", 10, [DType.Float32, DType.Float16, DType.Int32], ctx => new QuantizeLinearKernel(ctx), supports: QuantizeLinearKernel.Supports);
        r.Add("DequantizeLinear", 10, QuantValues.Dequantizable, ctx => new DequantizeLinearKernel(ctx), supports: DequantizeLinearKernel.Supports);
        r.Add("DynamicQuantizeLinear", 11, TypeSets.Float, _ => new DynamicQuantizeLinearKernel());
        // ONNX Runtime's contrib copies (same semantics, per-tensor or per-axis).
        r.Add("QuantizeLinear", 1, [DType.Float32, DType.Float16], ctx => new QuantizeLinearKernel(ctx), domain: "com.microsoft", supports: QuantizeLinearKernel.Supports);
        r.Add("DequantizeLinear", 1, QuantValues.Dequantizable, ctx => new DequantizeLinearKernel(ctx), domain: "com.microsoft", supports: DequantizeLinearKernel.Supports);
    }
}

/// <summary>
/// How a scale/zero-point tensor maps onto a data tensor: one value for all (per-tensor), one per index along
/// <c>axis</c> (per-axis), or one per block of <c>block_size</c> consecutive indices along <c>axis</c> (blocked,
/// scale shape = data shape with ceil(D/B) on the axis).
/// </summary>
internal readonly struct QuantLayout
{
    public readonly int Outer, Axis, Inner, Block, Blocks;
    public readonly bool PerTensor;

    private QuantLayout(int outer, int axis, int inner, int block, int blocks, bool perTensor)
    {
        Outer = outer; Axis = axis; Inner = inner; Block = block; Blocks = blocks; PerTensor = perTensor;
    }

    /// <summary>Resolves the layout of <paramref name="scaleShape"/> against <paramref name="shape"/>; throws on a mismatch.</summary>
    public static QuantLayout Resolve(int[] shape, int[] scaleShape, long axisAttr, int blockSize, string op)
    {
        int scaleCount = TensorBuffer.CheckedLength(scaleShape);
        int total = TensorBuffer.CheckedLength(shape);
        if (blockSize <= 0 && (scaleShape.Length == 0 || scaleCount == 1 && scaleShape.Length <= 1))
            return new QuantLayout(1, total, 1, total, 1, true);
        if (shape.Length == 0) throw new InvalidOperationException($"{op}: a scalar input needs a scalar scale, got {TensorBuffer.Format(scaleShape)}");
        int axis = (int)(axisAttr < 0 ? axisAttr + shape.Length : axisAttr);
        if (axis < 0 || axis >= shape.Length) throw new InvalidOperationException($"{op}: axis {axisAttr} is out of range for rank {shape.Length}");
        int outer = 1, inner = 1;
        for (int d = 0; d < axis; d++) outer *= shape[d];
        for (int d = axis + 1; d < shape.Length; d++) inner *= shape[d];
        int dim = shape[axis];
        if (blockSize <= 0)
        {
            if (scaleShape.Length != 1 || scaleShape[0] != dim)
                throw new InvalidOperationException($"{op}: per-axis scale {TensorBuffer.Format(scaleShape)} does not match dimension {axis} ({dim}) of {TensorBuffer.Format(shape)}");
            return new QuantLayout(outer, dim, inner, 1, dim, false);
        }
        int blocks = (dim + blockSize - 1) / blockSize;
        bool ok = scaleShape.Length == shape.Length;
        for (int d = 0; ok && d < shape.Length; d++) ok = scaleShape[d] == (d == axis ? blocks : shape[d]);
        if (!ok) throw new InvalidOperationException($"{op}: blocked scale {TensorBuffer.Format(scaleShape)} does not match {TensorBuffer.Format(shape)} with block_size {blockSize} on axis {axis}");
        return new QuantLayout(outer, dim, inner, blockSize, blocks, false);
    }

    /// <summary>Calls <paramref name="body"/>(start, count, stride, scaleIndex) for runs of elements sharing one scale.</summary>
    public void ForEachRun(Action<int, int, int, int> body)
    {
        if (PerTensor)
        {
            body(0, Axis, 1, 0);
            return;
        }
        for (int o = 0; o < Outer; o++)
            for (int d = 0; d < Axis; d++)
            {
                int start = (o * Axis + d) * Inner;
                if (Inner == 1) body(start, 1, 1, Block == 1 ? d : o * Blocks + d / Block);
                else if (Block == 1) body(start, Inner, 1, d);
                else for (int i = 0; i < Inner; i++) body(start + i, 1, 1, (o * Blocks + d / Block) * Inner + i);
            }
    }
}

/// <summary>y = saturate(round-half-even(x / scale) + zero_point); the zero point's type (or output_dtype, default
/// uint8) sets y's type.</summary>
internal sealed class QuantizeLinearKernel(KernelBuildContext build) : IKernel
{
    private readonly long _axis = build.Node.GetInt("axis", 1);
    private readonly int _block = (int)build.Node.GetInt("block_size", 0);
    private readonly DType _outType = build.HasInput(2) && build.InputType(2) is { } t ? t : (DType)build.Node.GetInt("output_dtype", (long)DType.UInt8);

    public static string? Supports(KernelBuildContext ctx)
    {
        if (ctx.Node.GetInt("block_size", 0) < 0) return "block_size must not be negative";
        if (ctx.HasInput(2) && ctx.InputType(2) is { } zt && !QuantValues.Quantized.Contains(zt)) return $"QuantizeLinear to {zt.Name()} is not supported";
        if (!ctx.HasInput(2) && ctx.Node.Attr("output_dtype") is { } od && !QuantValues.Quantized.Contains((DType)od.AsInt()))
            return $"QuantizeLinear to {((DType)od.AsInt()).Name()} is not supported";
        return null;
    }

    public void Execute(KernelContext ctx)
    {
        var x = ctx.Required(0);
        var scale = ctx.Required(1);
        var zpb = ctx.Input(2);
        var outType = zpb?.DType ?? _outType;
        if (!QuantValues.Quantized.Contains(outType)) throw new InvalidOperationException($"QuantizeLinear to {outType.Name()} is not supported");
        if (zpb is not null && !zpb.Shape.AsSpan().SequenceEqual(scale.Shape) && zpb.Length != scale.Length)
            throw new InvalidOperationException($"QuantizeLinear: zero point {zpb} does not match scale {scale}");
        var layout = QuantLayout.Resolve(x.Shape, scale.Shape, _axis, _block, "QuantizeLinear");
        var s = QuantValues.Floats(scale);
        var zp = zpb is null ? new int[s.Length] : QuantValues.Ints(zpb);
        var y = ctx.Output(0, outType, x.Shape);
        var (min, max) = QuantValues.Range(outType);
        float[] xs = x.DType == DType.Float32 ? [] : ToFloat(x);
        var yb = y.Memory;
        var xm = x.Memory;
        bool f32 = x.DType == DType.Float32;
        layout.ForEachRun((start, count, stride, si) =>
        {
            float sc = s[si];
            int z = zp[si];
            ReadOnlySpan<float> src = f32 ? System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(xm.Span) : xs;
            var dst = yb.Span;
            if (outType is DType.UInt8 or DType.Int8 && stride == 1)
                QuantizeRun(src.Slice(start, count), sc, z, min, max, dst.Slice(start, count));
            else
                for (int i = 0; i < count; i++)
                    QuantValues.Set(outType, dst, start + i * stride, QuantValues.Quantize(src[start + i * stride] / sc, z, min, max));
        });
    }

    /// <summary>Quantizes a run to 8 bits (x / scale, rounded half to even, plus zp, saturated).</summary>
    internal static void QuantizeRun(ReadOnlySpan<float> x, float scale, int zp, int min, int max, Span<byte> y)
    {
        QuantizeVectors.Quantize(x, scale, zp, min, max, y);
    }

    private static float[] ToFloat(TensorBuffer x) => x.DType switch
    {
        DType.Float16 => x.Span<Half>().ToArray().Select(h => (float)h).ToArray(),
        DType.Int32 => x.Span<int>().ToArray().Select(v => (float)v).ToArray(),
        _ => throw new InvalidOperationException($"QuantizeLinear input must be float32, float16 or int32, got {x.DType.Name()}"),
    };
}

/// <summary>y = (x − zero_point) · scale, in the scale's type (float32 or float16).</summary>
internal sealed class DequantizeLinearKernel(KernelBuildContext build) : IKernel
{
    private readonly long _axis = build.Node.GetInt("axis", 1);
    private readonly int _block = (int)build.Node.GetInt("block_size", 0);

    public static string? Supports(KernelBuildContext ctx)
    {
        if (ctx.Node.GetInt("block_size", 0) < 0) return "block_size must not be negative";
        if (ctx.InputType(1) is { } st && !QuantValues.ScaleTypes.Contains(st)) return $"scale of type {st.Name()} is not supported";
        return null;
    }

    public void Execute(KernelContext ctx)
    {
        var x = ctx.Required(0);
        var scale = ctx.Required(1);
        var zpb = ctx.Input(2);
        if (zpb is not null && zpb.DType != x.DType) throw new InvalidOperationException($"DequantizeLinear: zero point is {zpb.DType.Name()} but x is {x.DType.Name()}");
        if (zpb is not null && zpb.Length != scale.Length) throw new InvalidOperationException($"DequantizeLinear: zero point {zpb} does not match scale {scale}");
        var layout = QuantLayout.Resolve(x.Shape, scale.Shape, _axis, _block, "DequantizeLinear");
        var s = QuantValues.Floats(scale);
        var zp = zpb is null ? new int[s.Length] : QuantValues.Ints(zpb);
        if (x.DType == DType.Int32 && zp.Any(z => z != 0)) throw new InvalidOperationException("DequantizeLinear: an int32 input needs a zero point of 0");
        var outType = scale.DType == DType.Float16 ? DType.Float16 : DType.Float32;
        var y = ctx.Output(0, outType, x.Shape);
        var xm = x.Memory;
        var ym = y.Memory;
        var xt = x.DType;
        layout.ForEachRun((start, count, stride, si) =>
        {
            float sc = s[si];
            int z = zp[si];
            var src = xm.Span;
            if (outType == DType.Float32)
            {
                var dst = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(ym.Span);
                if (xt == DType.UInt8 && stride == 1) DequantizeRun(src.Slice(start, count), false, sc, z, dst.Slice(start, count));
                else if (xt == DType.Int8 && stride == 1) DequantizeRun(src.Slice(start, count), true, sc, z, dst.Slice(start, count));
                else
                    for (int i = 0; i < count; i++)
                    {
                        int k = start + i * stride;
                        dst[k] = xt == DType.Int32 ? QuantValues.Get(xt, src, k) * sc : (QuantValues.Get(xt, src, k) - z) * sc;
                    }
            }
            else
            {
                var dst = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, Half>(ym.Span);
                for (int i = 0; i < count; i++)
                {
                    int k = start + i * stride;
                    dst[k] = (Half)((QuantValues.Get(xt, src, k) - z) * sc);
                }
            }
        });
    }

    /// <summary>(x − zp) · scale over a run of 8-bit values.</summary>
    internal static void DequantizeRun(ReadOnlySpan<byte> x, bool signed, float scale, int zp, Span<float> y)
    {
        QuantizeVectors.Dequantize(x, signed, scale, zp, y);
    }
}

/// <summary>
/// Per-tensor uint8 quantization with the range taken from the data: scale = (max(0, max x) − min(0, min x)) / 255,
/// zero point = saturate(round(−min / scale)); outputs y, scale, zero point.
/// </summary>
internal sealed class DynamicQuantizeLinearKernel : IKernel
{
    public void Execute(KernelContext ctx)
    {
        var x = ctx.Required(0);
        var xs = x.Span<float>();
        var (scale, zp) = Parameters(xs);
        var y = ctx.Output(0, DType.UInt8, x.Shape);
        Quantize(xs, scale, zp, y.Span<byte>());
        ctx.Output(1, DType.Float32).Span<float>()[0] = scale;
        ctx.Output(2, DType.UInt8).Span<byte>()[0] = (byte)zp;
    }

    /// <summary>The uint8 scale and zero point DynamicQuantizeLinear derives from <paramref name="x"/>.</summary>
    internal static (float Scale, int ZeroPoint) Parameters(ReadOnlySpan<float> x)
    {
        float min = 0, max = 0;
        if (x.Length > 0)
        {
            var (lo, hi) = QuantizeVectors.MinMax(x);
            min = Math.Min(0, lo);
            max = Math.Max(0, hi);
        }
        float scale = (max - min) / 255f;
        if (scale == 0 || float.IsNaN(scale)) return (0f, 0);
        int zp = QuantValues.Quantize(0f - min / scale, 0, 0, 255);
        return (scale, zp);
    }

    /// <summary>Quantizes with the parameters from <see cref="Parameters"/> (a zero scale gives all zero points).</summary>
    internal static void Quantize(ReadOnlySpan<float> x, float scale, int zp, Span<byte> y)
    {
        if (scale == 0)
        {
            y.Fill((byte)zp);
            return;
        }
        QuantizeLinearKernel.QuantizeRun(x, scale, zp, 0, 255, y);
    }
}
