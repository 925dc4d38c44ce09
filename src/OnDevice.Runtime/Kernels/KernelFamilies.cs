namespace OnDevice.Runtime.Kernels;

/// <summary>The list of kernel families; each registers its kernels in its own file.</summary>
internal static class KernelFamilies
{
    public static void RegisterAll(KernelRegistry r)
    {
        ControlFlow.ControlFlowKernels.Register(r);
        Elementwise.ActivationKernels.Register(r);
        Elementwise.ArithmeticKernels.Register(r);
        LinearAlgebra.MatMulKernels.Register(r);
        Nn.ConvKernels.Register(r);
        Nn.ConvTransposeKernels.Register(r);
        Nn.PoolKernels.Register(r);
        Nn.NormalizationKernels.Register(r);
        Nn.RecurrentKernels.Register(r);
    }
}
