namespace OnDevice.Runtime.Kernels;

/// <summary>The list of kernel families; each registers its kernels in its own file.</summary>
internal static class KernelFamilies
{
    public static void RegisterAll(KernelRegistry r)
    {
        ControlFlow.ControlFlowKernels.Register(r);
        Elementwise.ActivationKernels.Register(r);
        Elementwise.ArithmeticKernels.Register(r);
        Elementwise.MathKernels.Register(r);
        Elementwise.ComparisonKernels.Register(r);
        Elementwise.LogicalKernels.Register(r);
        Elementwise.CastKernels.Register(r);
        Elementwise.FusedElementwiseKernels.Register(r);
        Tensors.ShapeKernels.Register(r);
        Tensors.GeneratorKernels.Register(r);
        Tensors.TransposeKernels.Register(r);
        Tensors.ConcatSplitKernels.Register(r);
        Tensors.SliceKernels.Register(r);
        Tensors.GatherKernels.Register(r);
        Tensors.GatherNDKernels.Register(r);
        Tensors.ExpandTileKernels.Register(r);
        Tensors.PadKernels.Register(r);
        Tensors.ResizeKernels.Register(r);
        Reduce.ReduceKernels.Register(r);
        Reduce.ArgKernels.Register(r);
        Reduce.SoftmaxKernels.Register(r);
        Reduce.TopKKernels.Register(r);
        Reduce.CumSumKernels.Register(r);
        Reduce.EinsumKernels.Register(r);
        LinearAlgebra.MatMulKernels.Register(r);
        Nn.ConvKernels.Register(r);
        Nn.ConvTransposeKernels.Register(r);
        Nn.PoolKernels.Register(r);
        Nn.NormalizationKernels.Register(r);
        Nn.RecurrentKernels.Register(r);
        Quantization.QuantizeKernels.Register(r);
        Quantization.IntegerMatMulKernels.Register(r);
        Quantization.IntegerConvKernels.Register(r);
        Quantization.QLinearKernels.Register(r);
        Quantization.MatMulNBitsKernel.Register(r);
        Quantization.QLinearConvTransposeKernel.Register(r);
        Quantization.TableKernels.Register(r);
    }
}
