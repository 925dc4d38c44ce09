using OnDevice.Core;
using OnDevice.Runtime.Simd;

namespace OnDevice.Runtime.Kernels.Quantization;

/// <summary>
/// <c>com.ondevice.QLinearLookup(x, table)</c>: the optimizer's replacement of DequantizeLinear → element-wise float
/// ops → QuantizeLinear (see <c>FuseQdq</c>). <c>table</c> is [256] (one table for the whole tensor) or [C, 256]
/// (one per channel, axis 1 of x), indexed by x's raw byte; y has the table's type and x's shape.
/// </summary>
internal sealed unsafe class ChannelLookupKernel : IKernel
{
    public static void Register(KernelRegistry r) =>
        r.Add("QLinearLookup", 1, [DType.UInt8, DType.Int8], _ => new ChannelLookupKernel(), domain: Elementwise.FusedElementwiseKernels.Domain);

    public void Execute(KernelContext ctx)
    {
        var x = ctx.Required(0);
        var table = ctx.Required(1);
        int channels = Channels(x.Shape, table, "QLinearLookup");
        var y = ctx.Output(0, table.DType, x.Shape);
        fixed (byte* px = x.Memory.Span)
        fixed (byte* py = y.Memory.Span)
        fixed (byte* pt = table.Memory.Span)
            Apply(px, py, x.Shape, channels, pt);
    }

    /// <summary>Channels the table covers (1 for one shared table); throws when the table does not fit <paramref name="shape"/>.</summary>
    internal static int Channels(int[] shape, TensorBuffer table, string op)
    {
        if (table.DType is not (DType.UInt8 or DType.Int8) || table.Length % 256 != 0 || table.Length == 0)
            throw new InvalidOperationException($"{op}: the lookup table must be uint8/int8 [256] or [C, 256], got {table}");
        int channels = table.Length / 256;
        if (channels > 1 && (shape.Length < 2 || shape[1] != channels))
            throw new InvalidOperationException($"{op}: a table for {channels} channels does not fit input {TensorBuffer.Format(shape)}");
        return channels;
    }

    /// <summary>y = table[c][x] plane by plane (channel axis 1), or over everything with one table.</summary>
    internal static void Apply(byte* x, byte* y, int[] shape, int channels, byte* table)
    {
        long total = 1;
        foreach (var d in shape) total *= d;
        if (total == 0) return;
        if (channels == 1)
        {
            ByteLookup.Apply(x, y, (nint)total, table);
            return;
        }
        long plane = total / shape[0] / channels;
        for (int n = 0; n < shape[0]; n++)
            for (int c = 0; c < channels; c++)
            {
                nint at = (nint)(((long)n * channels + c) * plane);
                ByteLookup.Apply(x + at, y + at, (nint)plane, table + c * 256);
            }
    }
}
