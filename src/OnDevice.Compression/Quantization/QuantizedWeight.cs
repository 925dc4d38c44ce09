using OnDevice.Core;

namespace OnDevice.Compression.Quantization;

/// <summary>How a weight tensor is divided into groups that share one scale (and zero point).</summary>
public enum Granularity
{
    /// <summary>One scale for the whole tensor.</summary>
    PerTensor,
    /// <summary>One scale per slice along <see cref="QuantScheme.Axis"/> (an output channel).</summary>
    PerChannel,
    /// <summary>One scale per <see cref="QuantScheme.BlockSize"/> consecutive elements along the blocked axis (the reduction axis).</summary>
    Blocked,
}

/// <summary>A quantization grid: bits, signedness, symmetric or with a zero point, and how elements share scales.</summary>
/// <param name="Bits">4 or 8.</param>
/// <param name="Signed">int8/int4 when true, uint8/uint4 when false.</param>
/// <param name="Symmetric">Zero point fixed at 0 (signed) or the midpoint (unsigned) when true.</param>
/// <param name="Granularity">Scale sharing.</param>
/// <param name="Axis">Channel axis (per-channel) or blocked axis (blocked); ignored per-tensor.</param>
/// <param name="BlockSize">Elements per block (16, 32, 64, 128) for <see cref="Granularity.Blocked"/>.</param>
/// <param name="Fp16Scales">Store scales as float16 instead of float32.</param>
public sealed record QuantScheme(int Bits, bool Signed, bool Symmetric, Granularity Granularity, int Axis = 0, int BlockSize = 0, bool Fp16Scales = false)
{
    /// <summary>Smallest representable integer (−128, −8, 0).</summary>
    public int QMin => Signed ? -(1 << (Bits - 1)) : 0;

    /// <summary>Largest representable integer (127, 7, 255, 15).</summary>
    public int QMax => Signed ? (1 << (Bits - 1)) - 1 : (1 << Bits) - 1;

    /// <summary>The element type of the quantized values.</summary>
    public DType DType => (Bits, Signed) switch
    {
        (8, true) => DType.Int8,
        (8, false) => DType.UInt8,
        (4, true) => DType.Int4,
        (4, false) => DType.UInt4,
        _ => throw new NotSupportedException($"{Bits}-bit quantization is not supported (4 and 8 are)"),
    };
}

/// <summary>
/// A quantized weight: integer values on the grid of <see cref="Scheme"/>, one scale and zero point per group, and the
/// shape of the float tensor it stands for. Dequantized value = (q − zeroPoint) · scale. The neutral hand-over
/// between quantizers (RTN, GPTQ) and writers (QDQ, QOperator, MatMulNBits).
/// </summary>
/// <param name="Values">One integer per element of the float tensor, C order (not packed).</param>
/// <param name="Scales">One per group; groups in C order of the scale tensor's shape.</param>
/// <param name="ZeroPoints">One per group.</param>
/// <param name="Dims">Shape of the float tensor.</param>
/// <param name="Scheme">The grid.</param>
public sealed record QuantizedWeight(int[] Values, float[] Scales, int[] ZeroPoints, long[] Dims, QuantScheme Scheme)
{
    /// <summary>Shape of the scale (and zero point) tensor, as ONNX DequantizeLinear expects it: scalar per-tensor,
    /// [C] per-channel, the input shape with ceil(D/B) on the blocked axis for blocked.</summary>
    public long[] ScaleDims => Scheme.Granularity switch
    {
        Granularity.PerTensor => [],
        Granularity.PerChannel => [Dims[Scheme.Axis]],
        _ => Dims.Select((d, i) => i == Scheme.Axis ? (d + Scheme.BlockSize - 1) / Scheme.BlockSize : d).ToArray(),
    };

    /// <summary>Index of the group element <paramref name="flat"/> (C order) belongs to.</summary>
    public int GroupOf(long flat)
    {
        switch (Scheme.Granularity)
        {
            case Granularity.PerTensor:
                return 0;
            case Granularity.PerChannel:
            {
                long inner = 1;
                for (int d = Scheme.Axis + 1; d < Dims.Length; d++) inner *= Dims[d];
                return (int)(flat / inner % Dims[Scheme.Axis]);
            }
            default:
            {
                // Coordinates of the element, with the blocked axis divided by the block size, flattened in scale-shape order.
                var sd = ScaleDims;
                long rem = flat, group = 0, mul = 1;
                var coord = new long[Dims.Length];
                for (int d = Dims.Length - 1; d >= 0; d--) { coord[d] = rem % Dims[d]; rem /= Dims[d]; }
                for (int d = Dims.Length - 1; d >= 0; d--)
                {
                    long c = d == Scheme.Axis ? coord[d] / Scheme.BlockSize : coord[d];
                    group += c * mul;
                    mul *= sd[d];
                }
                return (int)group;
            }
        }
    }

    /// <summary>The float tensor this stands for.</summary>
    public float[] Dequantize()
    {
        var r = new float[Values.Length];
        for (long i = 0; i < r.Length; i++)
        {
            int g = GroupOf(i);
            r[i] = (Values[i] - ZeroPoints[g]) * Scales[g];
        }
        return r;
    }
}
