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
    }
}
