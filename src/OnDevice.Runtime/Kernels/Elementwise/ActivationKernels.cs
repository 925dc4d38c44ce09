using System.Runtime.Intrinsics;
using OnDevice.Core;
using OnDevice.Runtime.Simd;

namespace OnDevice.Runtime.Kernels.Elementwise;

/// <summary>Element-wise activations on float32 (one readonly struct per op, one driver for all loops).</summary>
internal static class ActivationKernels
{
    public static void Register(KernelRegistry r)
    {
        r.Add("Relu", 6, TypeSets.Float, _ => new UnaryKernel<ReluOp>());
    }

    /// <summary>max(x, 0); NaN stays NaN as in ONNX Runtime.</summary>
    public readonly struct ReluOp : IUnaryOp
    {
        public static float Invoke(float x) => x > 0 ? x : (float.IsNaN(x) ? x : 0);
        public static Vector128<float> Invoke(Vector128<float> x) => Vector128.ConditionalSelect(Vector128.LessThanOrEqual(x, Vector128<float>.Zero), Vector128<float>.Zero, x);
        public static Vector256<float> Invoke(Vector256<float> x) => Vector256.ConditionalSelect(Vector256.LessThanOrEqual(x, Vector256<float>.Zero), Vector256<float>.Zero, x);
        public static Vector512<float> Invoke(Vector512<float> x) => Vector512.ConditionalSelect(Vector512.LessThanOrEqual(x, Vector512<float>.Zero), Vector512<float>.Zero, x);
    }
}

/// <summary>Runs a float32 unary op over the whole tensor.</summary>
internal sealed class UnaryKernel<TOp> : IKernel where TOp : IUnaryOp
{
    public void Execute(KernelContext ctx)
    {
        var x = ctx.Required(0);
        var y = ctx.Output(0, DType.Float32, x.Shape);
        ElementwiseDriver.Unary<TOp>(x.Span<float>(), y.Span<float>());
    }
}
