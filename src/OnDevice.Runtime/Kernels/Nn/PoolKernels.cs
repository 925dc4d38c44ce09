using System.Numerics;
using OnDevice.Core;
using OnDevice.Runtime.Kernels.LinearAlgebra;
using OnDevice.Runtime.Simd;

namespace OnDevice.Runtime.Kernels.Nn;

/// <summary>MaxPool (with Indices), AveragePool, LpPool and their global forms over 1-3 spatial dimensions.</summary>
internal static class PoolKernels
{
    private static readonly DType[] MaxTypes = [DType.Float32, DType.Float64, DType.Int8, DType.UInt8];
    private static readonly DType[] FloatTypes = [DType.Float32, DType.Float64];

    public static void Register(KernelRegistry r)
    {
        r.Add("MaxPool", 1, MaxTypes, ctx => new PoolKernel(ctx, PoolKernel.Mode.Max), supports: ctx => PoolKernel.Supports(ctx, true));
        r.Add("AveragePool", 1, FloatTypes, ctx => new PoolKernel(ctx, PoolKernel.Mode.Average), supports: ctx => PoolKernel.Supports(ctx, false));
        r.Add("LpPool", 1, FloatTypes, ctx => new PoolKernel(ctx, PoolKernel.Mode.Lp), supports: ctx => PoolKernel.Supports(ctx, false));
        r.Add("GlobalMaxPool", 1, FloatTypes, _ => new GlobalPoolKernel(GlobalPoolKernel.Mode.Max, 0));
        r.Add("GlobalAveragePool", 1, FloatTypes, _ => new GlobalPoolKernel(GlobalPoolKernel.Mode.Average, 0));
        r.Add("GlobalLpPool", 1, FloatTypes, ctx => new GlobalPoolKernel(GlobalPoolKernel.Mode.Lp, PoolKernel.ReadP(ctx.Node)));
        r.Add("MaxUnpool", 9, TypeSets.All, ctx => new MaxUnpoolKernel(ctx), supports: MaxUnpoolKernel.Supports);
    }
}

/// <summary>Windowed pooling, one (image, channel) plane at a time, planes split across threads. Windows are clipped
/// to the input once per output position, so the inner loops never test bounds.</summary>
internal sealed unsafe class PoolKernel : IKernel
{
    public enum Mode { Max, Average, Lp }

    private readonly Mode _mode;
    private readonly WindowGeometry _geometry;
    private readonly bool _countIncludePad;
    private readonly bool _columnMajorIndices;
    private readonly double _p;

    public static string? Supports(KernelBuildContext ctx, bool max)
    {
        var g = WindowGeometry.Read(ctx.Node);
        if (g.KernelShape is null) return "kernel_shape is required";
        int r = g.KernelShape.Length;
        if (r < 1 || r > 3) return $"pooling over {r} spatial dimensions is not supported (1 to 3 are)";
        if (ctx.InputShape(0) is { } s && s.Rank != r + 2) return $"input rank {s.Rank} does not match kernel_shape";
        if (max && ctx.Node.GetInt("storage_order", 0) is not (0 or 1)) return "storage_order must be 0 or 1";
        if (ctx.Node.OpType == "LpPool" && ReadP(ctx.Node) <= 0) return "p must be positive";
        return g.Check(r);
    }

    /// <summary>The Lp norm order: a float attribute in opset 1, an int later; default 2.</summary>
    public static double ReadP(Node node) => node.Attr("p") switch
    {
        { Kind: AttributeKind.Float } a => a.AsFloat(),
        { Kind: AttributeKind.Int } a => a.AsInt(),
        _ => 2,
    };

    public PoolKernel(KernelBuildContext ctx, Mode mode)
    {
        _mode = mode;
        _geometry = WindowGeometry.Read(ctx.Node);
        _countIncludePad = ctx.Node.GetInt("count_include_pad", 0) != 0;
        _columnMajorIndices = ctx.Node.GetInt("storage_order", 0) == 1;
        _p = ReadP(ctx.Node);
    }

    public void Execute(KernelContext ctx)
    {
        var x = ctx.Required(0);
        int r = _geometry.KernelShape!.Length;
        if (x.Rank != r + 2) throw new InvalidOperationException($"{ctx.Node.OpType}: input {TensorBuffer.Format(x.Shape)} does not have {r} spatial dimensions");
        var win = _geometry.Resolve(x.Shape.AsSpan(2), _geometry.KernelShape);
        var y = ctx.Output(0, x.DType, [x.Shape[0], x.Shape[1], .. win.Output]);
        var indices = _mode == Mode.Max && ctx.IsOutputUsed(1) ? ctx.Output(1, DType.Int64, y.Shape) : null;
        if (y.Length == 0) return;
        switch (x.DType)
        {
            case DType.Float32: Run<float>(ctx, x, y, indices, win); break;
            case DType.Float64: Run<double>(ctx, x, y, indices, win); break;
            case DType.Int8 when _mode == Mode.Max: Run<sbyte>(ctx, x, y, indices, win); break;
            case DType.UInt8 when _mode == Mode.Max: Run<byte>(ctx, x, y, indices, win); break;
            default: throw new NotSupportedException($"{ctx.Node.OpType} on {x.DType.Name()}");
        }
    }

    private void Run<T>(KernelContext ctx, TensorBuffer x, TensorBuffer y, TensorBuffer? indices, Window win)
        where T : unmanaged, INumber<T>, IMinMaxValue<T>
    {
        var w = win.To3D();
        int r = win.Rank;
        int[] in3 = [.. Enumerable.Repeat(1, 3 - r), .. x.Shape[2..]];
        int inSize = in3[0] * in3[1] * in3[2], outSize = w.Output[0] * w.Output[1] * w.Output[2];
        int planes = x.Shape[0] * x.Shape[1];
        fixed (T* px = x.Span<T>())
        fixed (T* py = y.Span<T>())
        fixed (long* pi = indices is null ? default : indices.Span<long>())
        {
            nint nx = (nint)px, ny = (nint)py, ni = indices is null ? 0 : (nint)pi;
            var mode = _mode;
            bool include = _countIncludePad, colMajor = _columnMajorIndices;
            double p = _p;
            // Fast path: 2-D float max pooling without indices (the common CNN case).
            bool simdMax = mode == Mode.Max && typeof(T) == typeof(float) && ni == 0 && r <= 2;
            var shape = simdMax ? new PoolingMax.Shape(in3[1], in3[2], w.Kernel[1], w.Kernel[2], w.Strides[1], w.Strides[2],
                w.PadBegin[1], w.PadBegin[2], w.Dilations[1], w.Dilations[2], w.Output[1], w.Output[2]) : default;
            // Fast path: 2-D float average pooling whose windows all lie inside the input (no padding reached).
            var avgShape = new PoolingAverage.Shape(in3[1], in3[2], w.Kernel[1], w.Kernel[2], w.Strides[1], w.Strides[2],
                w.Dilations[1], w.Dilations[2], w.Output[1], w.Output[2]);
            bool simdAvg = mode == Mode.Average && typeof(T) == typeof(float) && r <= 2 && w.PadBegin[1] == 0 && w.PadBegin[2] == 0 && avgShape.Inside;
            long per = simdMax ? PackedWeights.Lines(shape.PlaneFloats) : simdAvg ? PackedWeights.Lines(avgShape.ScratchFloats) : 0;
            int chunk = PackedWeights.ChunkFor((long)outSize * w.Kernel[0] * w.Kernel[1] * w.Kernel[2]);
            int workers = PackedWeights.Workers(ctx, planes, chunk);
            var scratch = per > 0 ? ctx.Scratch(PackedWeights.ScratchBytes(per * workers)) : Memory<byte>.Empty;
            fixed (byte* ps = scratch.Span)
            {
                nint ns = per > 0 ? (nint)PackedWeights.Align(ps) : 0;
                PackedWeights.ForWorkers(ctx, planes, chunk, (worker, begin, end) =>
                {
                    for (int plane = begin; plane < end; plane++)
                    {
                        T* src = (T*)nx + (nint)plane * inSize;
                        T* dst = (T*)ny + (nint)plane * outSize;
                        if (simdMax)
                            PoolingMax.Plane(shape, (float*)src, (float*)dst, (float*)ns + worker * per);
                        else if (simdAvg)
                            PoolingAverage.Plane(avgShape, (float*)src, (float*)dst, (float*)ns + worker * per);
                        else
                            Plane(src, dst, ni == 0 ? null : (long*)ni + (nint)plane * outSize, (long)plane * inSize, in3, w, mode, include, colMajor, p);
                    }
                });
            }
        }
    }

    /// <summary>One plane, any mode, scalar.</summary>
    private static void Plane<T>(T* x, T* y, long* indices, long planeOffset, int[] inDims, Window w, Mode mode, bool includePad, bool colMajor, double p)
        where T : unmanaged, INumber<T>, IMinMaxValue<T>
    {
        int d = inDims[0], h = inDims[1], wd = inDims[2];
        int o = 0;
        for (int oz = 0; oz < w.Output[0]; oz++)
        {
            var (z0, z1, zPad) = Clip(oz, 0, w, d);
            for (int oy = 0; oy < w.Output[1]; oy++)
            {
                var (y0, y1, yPad) = Clip(oy, 1, w, h);
                for (int ox = 0; ox < w.Output[2]; ox++, o++)
                {
                    var (x0, x1, xPad) = Clip(ox, 2, w, wd);
                    int sz = oz * w.Strides[0] - w.PadBegin[0], sy = oy * w.Strides[1] - w.PadBegin[1], sx = ox * w.Strides[2] - w.PadBegin[2];
                    int dz = w.Dilations[0], dy = w.Dilations[1], dx = w.Dilations[2];
                    if (mode == Mode.Max)
                    {
                        T best = T.MinValue;
                        long at = -1;
                        for (int iz = z0; iz < z1; iz++)
                            for (int iy = y0; iy < y1; iy++)
                            {
                                int pz = sz + iz * dz, py = sy + iy * dy;
                                T* row = x + ((nint)pz * h + py) * wd;
                                for (int ix = x0; ix < x1; ix++)
                                {
                                    int px = sx + ix * dx;
                                    T v = row[px];
                                    if (v > best || at < 0)
                                    {
                                        best = v;
                                        at = colMajor ? ((long)px * h + py) * d + pz : ((long)pz * h + py) * wd + px;
                                    }
                                }
                            }
                        y[o] = best;
                        if (indices != null) indices[o] = at < 0 ? -1 : planeOffset + at;
                    }
                    else
                    {
                        double acc = 0;
                        for (int iz = z0; iz < z1; iz++)
                            for (int iy = y0; iy < y1; iy++)
                            {
                                T* row = x + ((nint)(sz + iz * dz) * h + sy + iy * dy) * wd;
                                if (mode == Mode.Average)
                                {
                                    if (typeof(T) == typeof(float))
                                    {
                                        float s = 0;
                                        for (int ix = x0; ix < x1; ix++) s += float.CreateTruncating(row[sx + ix * dx]);
                                        acc += s;
                                    }
                                    else
                                        for (int ix = x0; ix < x1; ix++) acc += double.CreateTruncating(row[sx + ix * dx]);
                                }
                                else
                                    for (int ix = x0; ix < x1; ix++)
                                    {
                                        double v = Math.Abs(double.CreateTruncating(row[sx + ix * dx]));
                                        acc += p == 2 ? v * v : p == 1 ? v : Math.Pow(v, p);
                                    }
                            }
                        int count = mode == Mode.Average && includePad ? zPad * yPad * xPad : (z1 - z0) * (y1 - y0) * (x1 - x0);
                        double result = mode == Mode.Average ? acc / count : p == 2 ? Math.Sqrt(acc) : p == 1 ? acc : Math.Pow(acc, 1 / p);
                        y[o] = T.CreateTruncating(result);
                    }
                }
            }
        }
    }

    /// <summary>Window indices i with o·s − pb + i·d inside [0, n), and the count of window positions inside the padded input.</summary>
    private static (int Lo, int Hi, int Padded) Clip(int o, int axis, Window w, int n)
    {
        int s = o * w.Strides[axis] - w.PadBegin[axis], d = w.Dilations[axis], k = w.Kernel[axis];
        int lo = s >= 0 ? 0 : (-s + d - 1) / d;
        int hi = n - s <= 0 ? 0 : Math.Min(k, (n - s + d - 1) / d);
        int lo2 = s >= -w.PadBegin[axis] ? 0 : (-w.PadBegin[axis] - s + d - 1) / d;
        int lim = n + w.PadEnd[axis] - s;
        int hi2 = lim <= 0 ? 0 : Math.Min(k, (lim + d - 1) / d);
        return (Math.Min(lo, k), Math.Max(hi, Math.Min(lo, k)), Math.Max(0, hi2 - lo2));
    }
}

/// <summary>Global pooling: one value per (image, channel) over all spatial positions.</summary>
internal sealed unsafe class GlobalPoolKernel(GlobalPoolKernel.Mode mode, double p) : IKernel
{
    public enum Mode { Max, Average, Lp }

    public void Execute(KernelContext ctx)
    {
        var x = ctx.Required(0);
        if (x.Rank < 2) throw new InvalidOperationException($"{ctx.Node.OpType}: input must have rank >= 2");
        var outShape = x.Shape.Select((d, i) => i < 2 ? d : 1).ToArray();
        var y = ctx.Output(0, x.DType, outShape);
        int planes = x.Shape[0] * x.Shape[1];
        int size = planes == 0 ? 0 : x.Length / planes;
        if (planes == 0) return;
        if (x.DType == DType.Float32)
        {
            fixed (float* px = x.Span<float>())
            fixed (float* py = y.Span<float>())
            {
                nint nx = (nint)px, ny = (nint)py;
                PackedWeights.ForWorkers(ctx, planes, PackedWeights.ChunkFor(size), (_, begin, end) =>
                {
                    for (int i = begin; i < end; i++)
                    {
                        var plane = new ReadOnlySpan<float>((float*)nx + (nint)i * size, size);
                        ((float*)ny)[i] = mode switch
                        {
                            Mode.Max => size == 0 ? float.MinValue : PlaneReduce.Max(plane),
                            Mode.Average => PlaneReduce.Sum(plane) / size,
                            _ => (float)Lp(plane, p),
                        };
                    }
                });
            }
        }
        else
        {
            var xs = x.Span<double>();
            var ys = y.Span<double>();
            for (int i = 0; i < planes; i++)
            {
                var plane = xs.Slice(i * size, size);
                double acc = mode == Mode.Max ? double.MinValue : 0;
                foreach (var v in plane)
                    acc = mode switch { Mode.Max => Math.Max(acc, v), Mode.Average => acc + v, _ => acc + Math.Pow(Math.Abs(v), p) };
                ys[i] = mode switch { Mode.Average => acc / size, Mode.Lp => Math.Pow(acc, 1 / p), _ => acc };
            }
        }
    }

    private static double Lp(ReadOnlySpan<float> plane, double p)
    {
        double acc = 0;
        foreach (var v in plane) acc += Math.Pow(Math.Abs(v), p);
        return Math.Pow(acc, 1 / p);
    }
}

/// <summary>MaxUnpool: zeros of the output shape with X scattered to the flat positions in I (from MaxPool's Indices).</summary>
internal sealed class MaxUnpoolKernel(KernelBuildContext build) : IKernel
{
    private readonly WindowGeometry _geometry = WindowGeometry.Read(build.Node);

    public static string? Supports(KernelBuildContext ctx)
    {
        var g = WindowGeometry.Read(ctx.Node);
        if (g.KernelShape is null) return "kernel_shape is required";
        return g.Check(g.KernelShape.Length);
    }

    public void Execute(KernelContext ctx)
    {
        var x = ctx.Required(0);
        var idx = ctx.Required(1);
        var shapeInput = ctx.Input(2);
        int r = _geometry.KernelShape!.Length;
        if (x.Rank != r + 2) throw new InvalidOperationException($"MaxUnpool: input {TensorBuffer.Format(x.Shape)} does not have {r} spatial dimensions");
        // Indices address the unpooled shape implied by the window; an explicit output_shape pads (or crops) that at the end.
        var inferred = new int[r + 2];
        inferred[0] = x.Shape[0];
        inferred[1] = x.Shape[1];
        for (int i = 0; i < r; i++)
            inferred[i + 2] = (x.Shape[i + 2] - 1) * (_geometry.Strides?[i] ?? 1) + _geometry.KernelShape[i]
                - (_geometry.Pads?[i] ?? 0) - (_geometry.Pads?[i + r] ?? 0);
        var outShape = shapeInput is null ? inferred : shapeInput.Span<long>().ToArray().Select(v => checked((int)v)).ToArray();
        if (outShape.Length != r + 2) throw new InvalidOperationException($"MaxUnpool: output_shape has {outShape.Length} values for rank {r + 2}");
        int size = x.DType.BitsPerElement() / 8;
        int inferredLength = TensorBuffer.CheckedLength(inferred);
        var full = new byte[(long)inferredLength * size];
        var src = x.Memory.Span;
        var ids = idx.Span<long>();
        if (ids.Length != x.Length) throw new InvalidOperationException("MaxUnpool: I must have X's shape");
        for (int i = 0; i < ids.Length; i++)
        {
            long at = ids[i];
            if (at < 0 || at >= inferredLength) throw new InvalidOperationException($"MaxUnpool: index {at} outside the unpooled tensor of {inferredLength} elements");
            src.Slice(i * size, size).CopyTo(full.AsSpan((int)at * size, size));
        }
        var y = ctx.Output(0, x.DType, outShape);
        var dst = y.Memory.Span;
        dst.Clear();
        // Copy the overlap of inferred and output shapes, innermost rows at a time.
        int rank = r + 2, inner = Math.Min(inferred[^1], outShape[^1]);
        int rows = 1;
        for (int d = 0; d < rank - 1; d++) rows *= Math.Min(inferred[d], outShape[d]);
        var coord = new int[rank - 1];
        for (int row = 0; row < rows; row++)
        {
            int rem = row;
            for (int d = rank - 2; d >= 0; d--)
            {
                int extent = Math.Min(inferred[d], outShape[d]);
                coord[d] = rem % extent;
                rem /= extent;
            }
            long si = 0, di = 0;
            for (int d = 0; d < rank - 1; d++)
            {
                si = si * inferred[d] + coord[d];
                di = di * outShape[d] + coord[d];
            }
            full.AsSpan((int)(si * inferred[^1] * size), inner * size).CopyTo(dst.Slice((int)(di * outShape[^1] * size), inner * size));
        }
    }
}
