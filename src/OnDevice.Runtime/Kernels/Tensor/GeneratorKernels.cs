using System.Numerics;
using OnDevice.Core;
using OnDevice.Runtime.Reference;

namespace OnDevice.Runtime.Kernels.Tensors;

/// <summary>Ops that make tensors from attributes or shapes: Constant (when not lifted to an initializer),
/// ConstantOfShape, Range.</summary>
internal static class GeneratorKernels
{
    private static readonly DType[] RangeTypes = [DType.Float32, DType.Float64, DType.Int16, DType.Int32, DType.Int64];

    public static void Register(KernelRegistry r)
    {
        r.Add("Constant", 1, TypeSets.All, ctx => new ConstantKernel(ConstantLifting.ConstantValue(ctx.Node)!), supports: ctx =>
            ConstantLifting.ConstantValue(ctx.Node) is { } t
                ? t.DType is DType.String or DType.Int4 or DType.UInt4 ? $"Constant of type {t.DType.Name()} is not supported" : null
                : "Constant needs exactly one of value, value_float(s), value_int(s) (sparse values are not supported)");
        r.Add("ConstantOfShape", 9, [DType.Int64], ctx => new ConstantOfShapeKernel(FillValue(ctx.Node)!), supports: ctx =>
            FillValue(ctx.Node) is { } v && v.DType is not (DType.String or DType.Int4 or DType.UInt4) && v.ElementCount == 1
                ? null : "ConstantOfShape value must be a one-element tensor of a fixed-size type");
        r.Add("Range", 11, RangeTypes, _ => new RangeKernel());
    }

    private static Tensor? FillValue(Node n) =>
        n.Attr("value") is { } a ? (a.Kind == AttributeKind.Tensor ? a.AsTensor() : null) : Tensor.Scalar(0f);

    private sealed class ConstantKernel(Tensor value) : IKernel
    {
        private readonly int[] _shape = value.Dims.Select(d => TensorUtil.Dim(d)).ToArray();

        public void Execute(KernelContext ctx) => value.Bytes.CopyTo(ctx.Output(0, value.DType, _shape).Memory.Span);
    }

    private sealed class ConstantOfShapeKernel(Tensor value) : IKernel
    {
        private readonly byte[] _element = value.Bytes.ToArray();

        public void Execute(KernelContext ctx)
        {
            var dims = TensorUtil.Ints(ctx.Required(0));
            var shape = dims.Select(d => TensorUtil.Dim(d, "ConstantOfShape dimension")).ToArray();
            var y = ctx.Output(0, value.DType, shape).Memory.Span;
            switch (_element.Length)
            {
                case 1: y.Fill(_element[0]); break;
                case 2: TensorUtil.As<ushort>(y).Fill(BitConverter.ToUInt16(_element)); break;
                case 4: TensorUtil.As<uint>(y).Fill(BitConverter.ToUInt32(_element)); break;
                case 8: TensorUtil.As<ulong>(y).Fill(BitConverter.ToUInt64(_element)); break;
                default: throw new InvalidOperationException($"ConstantOfShape: unsupported element size {_element.Length}");
            }
        }
    }

    /// <summary>start, start + delta, ... while below (above, for negative delta) limit.</summary>
    private sealed class RangeKernel : IKernel
    {
        public void Execute(KernelContext ctx)
        {
            var (s, l, d) = (ctx.Required(0), ctx.Required(1), ctx.Required(2));
            if (s.Length != 1 || l.Length != 1 || d.Length != 1) throw new InvalidOperationException("Range: start, limit and delta must be scalars");
            switch (s.DType)
            {
                case DType.Float32: Run<float>(ctx, s, l, d); break;
                case DType.Float64: Run<double>(ctx, s, l, d); break;
                case DType.Int16: Run<short>(ctx, s, l, d); break;
                case DType.Int32: Run<int>(ctx, s, l, d); break;
                case DType.Int64: Run<long>(ctx, s, l, d); break;
                default: throw new InvalidOperationException($"Range of {s.DType.Name()} is not supported");
            }
        }

        private static void Run<T>(KernelContext ctx, TensorBuffer s, TensorBuffer l, TensorBuffer d) where T : unmanaged, INumber<T>
        {
            T start = s.Span<T>()[0], limit = l.Span<T>()[0], delta = d.Span<T>()[0];
            int n = TensorReference.RangeCount(start, limit, delta);
            var y = ctx.Output(0, s.DType, n).Span<T>();
            for (int i = 0; i < n; i++) y[i] = start + T.CreateTruncating(i) * delta;
        }
    }
}
