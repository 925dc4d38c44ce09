using System.Runtime.Intrinsics;
using OnDevice.Core;
using OnDevice.Runtime.Simd;

namespace OnDevice.Runtime.Kernels.Elementwise;

/// <summary>Broadcasting binary arithmetic.</summary>
internal static class ArithmeticKernels
{
    public static void Register(KernelRegistry r)
    {
        r.Add("Add", 7, TypeSets.Float, _ => new BinaryKernel<AddOp>());
    }

    /// <summary>x + y.</summary>
    public readonly struct AddOp : IBinaryOp
    {
        public static float Invoke(float x, float y) => x + y;
        public static Vector128<float> Invoke(Vector128<float> x, Vector128<float> y) => x + y;
        public static Vector256<float> Invoke(Vector256<float> x, Vector256<float> y) => x + y;
        public static Vector512<float> Invoke(Vector512<float> x, Vector512<float> y) => x + y;
    }
}

/// <summary>Runs a float32 binary op with ONNX broadcasting, block by contiguous block.</summary>
internal sealed class BinaryKernel<TOp> : IKernel where TOp : IBinaryOp
{
    public void Execute(KernelContext ctx)
    {
        var a = ctx.Required(0);
        var b = ctx.Required(1);
        var plan = new Broadcast(a.Shape, b.Shape);
        var y = ctx.Output(0, DType.Float32, plan.OutShape);
        var sa = a.Span<float>();
        var sb = b.Span<float>();
        var sy = y.Span<float>();
        int inner = plan.Inner;
        for (int blk = 0; blk < plan.Blocks; blk++)
        {
            int oa = plan.Offset(0, blk), ob = plan.Offset(1, blk);
            var dst = sy.Slice(blk * inner, inner);
            bool ca = plan.InnerContiguous[0], cb = plan.InnerContiguous[1];
            if (ca && cb) ElementwiseDriver.Binary<TOp>(sa.Slice(oa, inner), sb.Slice(ob, inner), dst);
            else if (ca) ElementwiseDriver.BinaryScalarRight<TOp>(sa.Slice(oa, inner), sb[ob], dst);
            else if (cb) ElementwiseDriver.BinaryScalarLeft<TOp>(sa[oa], sb.Slice(ob, inner), dst);
            else dst.Fill(TOp.Invoke(sa[oa], sb[ob]));
        }
    }
}
