using System.Runtime.Intrinsics;
using OnDevice.Runtime.Kernels.Elementwise;
using OnDevice.Runtime.Simd;

namespace OnDevice.Runtime.Kernels.Quantization;

/// <summary>
/// The float epilogue of an integer convolution whose result is quantized only after an element-wise chain
/// (DequantizeLinear → Conv → [BatchNormalization] → chain → QuantizeLinear fused by the optimizer). The convolution
/// paths write each output channel's row as y = acc·scale[c] + bias[c] (<see cref="Affine"/> where the path does
/// not do it itself); <see cref="Row"/> then runs the chain (an <see cref="ElementwiseProgram"/>, the same evaluator
/// as <c>FusedElementwise</c>, per-channel constants taken as the row's scalars) in place and, for byte output,
/// quantizes the row (x / y_scale, round half to even, + zero point, saturate) while it is still in cache.
/// </summary>
internal sealed unsafe class ConvFloatEpilogue(ElementwiseProgram? program, bool quantize, float yScale, int yZero, int min, int max)
{
    /// <summary>The element-wise chain, or null.</summary>
    public ElementwiseProgram? Program { get; } = program;

    /// <summary>True when rows are quantized to bytes (else the float row is the output).</summary>
    public bool Quantize { get; } = quantize;

    /// <summary>True when <see cref="Row"/> has anything to do.</summary>
    public bool Active => Program is not null || Quantize;

    /// <summary>
    /// One output channel's row of <paramref name="count"/> floats (already scaled and biased), changed in place by
    /// the chain, then quantized into <paramref name="dst"/> when <see cref="Quantize"/> (dst unused otherwise).
    /// <paramref name="vector"/> false runs the scalar twin of the quantization.
    /// </summary>
    [System.Runtime.CompilerServices.SkipLocalsInit]
    public void Row(float* row, int count, int channel, byte* dst, bool vector = true)
    {
        if (count <= 0) return;
        var span = new Span<float>(row, count);
        if (Program is { } p)
        {
            Span<float> scratch = stackalloc float[Math.Max(1, p.Slots) * ElementwiseProgram.BlockElements];
            p.Run(span, span, channel, -1, scratch);
        }
        if (!Quantize) return;
        if (vector) QuantizeVectors.Quantize(span, yScale, yZero, min, max, new Span<byte>(dst, count));
        else for (int i = 0; i < count; i++) dst[i] = (byte)QuantizeVectors.QuantizeOne(row[i], yScale, yZero, min, max);
    }

    /// <summary>
    /// dst[i] = fma(src[i], scale, bias) (src and dst may be the same): exact integer sums held as floats to the
    /// convolution's float result. Sixteen (AVX-512) or eight at a time; <paramref name="vector"/> false is the scalar twin
    /// (bit-identical: the same fused multiply-add).
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    public static void Affine(float* src, int count, float scale, float bias, float* dst, bool vector = true)
    {
        int i = 0;
        if (vector && Vector512.IsHardwareAccelerated)
        {
            var vs = Vector512.Create(scale);
            var vb = Vector512.Create(bias);
            for (; i + 16 <= count; i += 16) Vector512.FusedMultiplyAdd(Vector512.Load(src + i), vs, vb).Store(dst + i);
        }
        else if (vector && Vector256.IsHardwareAccelerated)
        {
            var vs = Vector256.Create(scale);
            var vb = Vector256.Create(bias);
            for (; i + 8 <= count; i += 8) Vector256.FusedMultiplyAdd(Vector256.Load(src + i), vs, vb).Store(dst + i);
        }
        for (; i < count; i++) dst[i] = MathF.FusedMultiplyAdd(src[i], scale, bias);
    }
}
