using OnDevice.Core;

namespace OnDevice.Runtime.Kernels.Elementwise;

/// <summary>Logical And/Or/Xor/Not on bool tensors (one byte per element, any nonzero byte reads as true, results are
/// 0 or 1) and Where, which selects between two tensors of any fixed-size type with three-way broadcasting.</summary>
internal static class LogicalKernels
{
    private static readonly DType[] WhereTypes = [.. TypeSets.All];

    public static void Register(KernelRegistry r)
    {
        r.Add("And", 7, TypeSets.Bool, _ => new LogicalKernel<AndFunc>());
        r.Add("Or", 7, TypeSets.Bool, _ => new LogicalKernel<OrFunc>());
        r.Add("Xor", 7, TypeSets.Bool, _ => new LogicalKernel<XorFunc>());
        r.Add("Not", 1, TypeSets.Bool, _ => new NotKernel());
        r.Add("Where", 9, WhereTypes, _ => new WhereKernel(), typeInput: 1);
    }

    /// <summary>a ∧ b.</summary>
    public readonly struct AndFunc : IElementFunc<byte, byte, byte>
    {
        public static byte Invoke(byte a, byte b) => a != 0 && b != 0 ? (byte)1 : (byte)0;
    }

    /// <summary>a ∨ b.</summary>
    public readonly struct OrFunc : IElementFunc<byte, byte, byte>
    {
        public static byte Invoke(byte a, byte b) => a != 0 || b != 0 ? (byte)1 : (byte)0;
    }

    /// <summary>a ⊕ b.</summary>
    public readonly struct XorFunc : IElementFunc<byte, byte, byte>
    {
        public static byte Invoke(byte a, byte b) => (a != 0) != (b != 0) ? (byte)1 : (byte)0;
    }

    private sealed class LogicalKernel<TF> : IKernel where TF : IElementFunc<byte, byte, byte>
    {
        public void Execute(KernelContext ctx)
        {
            var a = ctx.Required(0);
            var b = ctx.Required(1);
            if (a.DType != DType.Bool || b.DType != DType.Bool)
                throw new InvalidOperationException($"node {ctx.Node.Label}: operands are {a.DType.Name()} and {b.DType.Name()}; both must be bool");
            var plan = Binary.Plan(ctx, a.Shape, b.Shape);
            var y = ctx.Output(0, DType.Bool, plan.OutShape);
            BroadcastLoop.Run<byte, byte, byte, TF>(plan, 0, 1, a.Span<byte>(), b.Span<byte>(), y.Span<byte>());
        }
    }

    private sealed class NotKernel : IKernel
    {
        public void Execute(KernelContext ctx)
        {
            var x = ctx.Required(0);
            if (x.DType != DType.Bool) throw new InvalidOperationException($"node {ctx.Node.Label}: input is {x.DType.Name()}, not bool");
            var xs = x.Span<byte>();
            var ys = ctx.Output(0, DType.Bool, x.Shape).Span<byte>();
            for (int i = 0; i < xs.Length; i++) ys[i] = xs[i] == 0 ? (byte)1 : (byte)0;
        }
    }

    /// <summary>Where(cond, X, Y): X where cond is true, else Y; the three shapes broadcast together.</summary>
    private sealed class WhereKernel : IKernel
    {
        public void Execute(KernelContext ctx)
        {
            var c = ctx.Required(0);
            var x = ctx.Required(1);
            var y = ctx.Required(2);
            if (c.DType != DType.Bool) throw new InvalidOperationException($"node {ctx.Node.Label}: condition is {c.DType.Name()}, not bool");
            Binary.CheckSameType(ctx, x, y);
            var plan = Binary.Plan(ctx, c.Shape, x.Shape, y.Shape);
            var o = ctx.Output(0, x.DType, plan.OutShape);
            switch (x.DType.BitsPerElement())
            {
                case 8: Select(plan, c.Span<byte>(), x.Span<byte>(), y.Span<byte>(), o.Span<byte>()); break;
                case 16: Select(plan, c.Span<byte>(), x.Span<ushort>(), y.Span<ushort>(), o.Span<ushort>()); break;
                case 32: Select(plan, c.Span<byte>(), x.Span<uint>(), y.Span<uint>(), o.Span<uint>()); break;
                case 64: Select(plan, c.Span<byte>(), x.Span<ulong>(), y.Span<ulong>(), o.Span<ulong>()); break;
                default: throw new InvalidOperationException($"node {ctx.Node.Label}: Where on {x.DType.Name()} is not supported");
            }
        }

        private static void Select<T>(Broadcast plan, ReadOnlySpan<byte> c, ReadOnlySpan<T> x, ReadOnlySpan<T> y, Span<T> o) where T : unmanaged
        {
            int inner = plan.Inner;
            int sc = plan.InnerContiguous[0] ? 1 : 0, sx = plan.InnerContiguous[1] ? 1 : 0, sy = plan.InnerContiguous[2] ? 1 : 0;
            for (int blk = 0, blocks = plan.Blocks; blk < blocks; blk++)
            {
                int oc = plan.Offset(0, blk), ox = plan.Offset(1, blk), oy = plan.Offset(2, blk);
                var dst = o.Slice(blk * inner, inner);
                for (int i = 0; i < dst.Length; i++)
                    dst[i] = c[oc + i * sc] != 0 ? x[ox + i * sx] : y[oy + i * sy];
            }
        }
    }
}
