using OnDevice.Core;

namespace OnDevice.Runtime.Kernels.Tensors;

/// <summary>Pad with modes constant, reflect, edge and wrap; pads as attribute (before opset 11) or input, optional
/// axes input (opset 18). Negative pads crop.</summary>
internal static class PadKernels
{
    public static void Register(KernelRegistry r)
    {
        r.Add("Pad", 1, TypeSets.Floats, ctx => new PadKernel(ModeOf(ctx), ctx.Node.GetInts("pads") ?? ctx.Node.GetInts("paddings"), ctx.Node.GetFloat("value", 0f)), until: 10,
            supports: ctx => ModeSupport(ctx) ?? ((ctx.Node.GetInts("pads") ?? ctx.Node.GetInts("paddings")) is null ? "Pad needs the pads attribute before opset 11" : null));
        r.Add("Pad", 11, TypeSets.All, ctx => new PadKernel(ModeOf(ctx), null, 0f), supports: ModeSupport);
    }

    private enum Mode { Constant, Reflect, Edge, Wrap }

    private static Mode ModeOf(KernelBuildContext ctx) => ctx.Node.GetString("mode", "constant") switch
    {
        "reflect" => Mode.Reflect,
        "edge" => Mode.Edge,
        "wrap" => Mode.Wrap,
        _ => Mode.Constant,
    };

    private static string? ModeSupport(KernelBuildContext ctx)
    {
        var m = ctx.Node.GetString("mode", "constant");
        if (m is "constant" or "reflect" or "edge") return null;
        if (m == "wrap" && ctx.Opset >= 19) return null;
        return $"Pad mode '{m}' is not defined at opset {ctx.Opset}";
    }

    /// <summary>For each output index along one axis, the input index it reads, or -1 for the constant value.</summary>
    public static int[] AxisMap(int dim, long begin, long end, int outDim, string mode)
    {
        var map = new int[outDim];
        for (int o = 0; o < outDim; o++)
        {
            long i = o - begin;
            if (i >= 0 && i < dim) { map[o] = (int)i; continue; }
            map[o] = mode switch
            {
                "constant" => -1,
                "edge" => dim == 0 ? throw new InvalidOperationException("Pad: edge mode on an empty axis") : (int)Math.Clamp(i, 0, dim - 1),
                "wrap" => dim == 0 ? throw new InvalidOperationException("Pad: wrap mode on an empty axis") : (int)(((i % dim) + dim) % dim),
                _ => Reflect(i, dim),
            };
        }
        return map;

        static int Reflect(long i, int dim)
        {
            if (dim == 0) throw new InvalidOperationException("Pad: reflect mode on an empty axis");
            if (dim == 1) return 0;
            long period = 2L * (dim - 1);
            long m = ((i % period) + period) % period;
            return (int)(m < dim ? m : period - m);
        }
    }

    private sealed class PadKernel(Mode mode, long[]? padsAttr, float valueAttr) : IKernel
    {
        private readonly string _mode = mode.ToString().ToLowerInvariant();

        public void Execute(KernelContext ctx)
        {
            var x = ctx.Required(0);
            int rank = x.Rank;
            var pads = padsAttr ?? TensorUtil.Ints(ctx.Required(1));
            int[] axes = padsAttr is null && ctx.Input(3) is { } ab ? TensorUtil.Axes(TensorUtil.Ints(ab), rank) : Enumerable.Range(0, rank).ToArray();
            if (pads.Length != 2 * axes.Length) throw new InvalidOperationException($"Pad: {pads.Length} pads for {axes.Length} axes");
            var begin = new long[rank];
            var end = new long[rank];
            for (int k = 0; k < axes.Length; k++)
            {
                begin[axes[k]] = pads[k];
                end[axes[k]] = pads[k + axes.Length];
            }
            var shape = new int[rank];
            for (int d = 0; d < rank; d++) shape[d] = TensorUtil.Dim(x.Shape[d] + begin[d] + end[d], "Pad output dimension");
            var y = ctx.Output(0, x.DType, shape);
            int esz = TensorUtil.ElementBytes(x.DType);
            var value = ConstantBytes(ctx, x.DType, esz);
            if (y.Length == 0) return;
            var dst = y.Memory.Span;
            if (rank == 0)
            {
                x.Memory.Span.CopyTo(dst);
                return;
            }
            var maps = new int[rank][];
            for (int d = 0; d < rank; d++) maps[d] = AxisMap(x.Shape[d], begin[d], end[d], shape[d], mode == Mode.Constant ? "constant" : _mode);
            var src = x.Memory.Span;
            var inStrides = TensorUtil.Strides(x.Shape);
            int last = rank - 1;
            int rowLen = shape[last];
            int rowBytes = rowLen * esz;
            var lastMap = maps[last];
            // The run of the last axis copied straight from the input row.
            int lo = (int)Math.Clamp(begin[last], 0, rowLen), hi = (int)Math.Clamp(begin[last] + x.Shape[last], 0, rowLen);
            int rows = y.Length / rowLen;
            var idx = new int[last];
            for (int row = 0; row < rows; row++)
            {
                var dRow = dst.Slice(row * rowBytes, rowBytes);
                long inOff = 0;
                bool constantRow = false;
                for (int d = 0; d < last; d++)
                {
                    int m = maps[d][idx[d]];
                    if (m < 0) { constantRow = true; break; }
                    inOff += (long)m * inStrides[d];
                }
                if (constantRow) ExpandTileKernels.FillElement(value, dRow, esz);
                else
                {
                    var sRow = src.Slice((int)(inOff * esz), x.Shape[last] * esz);
                    if (hi > lo) sRow.Slice((lo - (int)begin[last]) * esz, (hi - lo) * esz).CopyTo(dRow.Slice(lo * esz));
                    for (int j = 0; j < rowLen; j++)
                    {
                        if (j >= lo && j < hi) { j = hi - 1; continue; }
                        int m = lastMap[j];
                        if (m < 0) value.CopyTo(dRow.Slice(j * esz, esz));
                        else sRow.Slice(m * esz, esz).CopyTo(dRow.Slice(j * esz, esz));
                    }
                }
                for (int d = last - 1; d >= 0; d--)
                {
                    if (++idx[d] < shape[d]) break;
                    idx[d] = 0;
                }
            }
        }

        private byte[] ConstantBytes(KernelContext ctx, DType dtype, int esz)
        {
            var bytes = new byte[esz];
            if (padsAttr is not null)
            {
                switch (dtype)
                {
                    case DType.Float32: BitConverter.TryWriteBytes(bytes, valueAttr); break;
                    case DType.Float64: BitConverter.TryWriteBytes(bytes, (double)valueAttr); break;
                    case DType.Float16: BitConverter.TryWriteBytes(bytes, (Half)valueAttr); break;
                    default: throw new InvalidOperationException($"Pad before opset 11 pads float types only, not {dtype.Name()}");
                }
                return bytes;
            }
            if (mode == Mode.Constant && ctx.Input(2) is { Length: > 0 } c)
            {
                if (c.DType != dtype) throw new InvalidOperationException($"Pad: constant_value is {c.DType.Name()} but data is {dtype.Name()}");
                c.Memory.Span[..esz].CopyTo(bytes);
            }
            return bytes;
        }
    }
}
