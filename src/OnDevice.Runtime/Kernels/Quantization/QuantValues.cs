using System.Runtime.CompilerServices;
using OnDevice.Core;

namespace OnDevice.Runtime.Kernels.Quantization;

/// <summary>
/// Element access and rounding shared by the quantization kernels: reading and writing quantized integers of every
/// width (int4/uint4 packed two per byte, low nibble first), scales in float32 or float16, and ONNX's
/// saturate(round-half-to-even(x / scale) + zero_point).
/// </summary>
internal static class QuantValues
{
    /// <summary>Quantized element types QuantizeLinear writes and DequantizeLinear reads.</summary>
    public static readonly DType[] Quantized = [DType.UInt8, DType.Int8, DType.UInt4, DType.Int4, DType.UInt16, DType.Int16];

    /// <summary>Element types DequantizeLinear reads (the quantized types and int32).</summary>
    public static readonly DType[] Dequantizable = [.. Quantized, DType.Int32];

    /// <summary>Scale element types (float32, float16).</summary>
    public static readonly DType[] ScaleTypes = [DType.Float32, DType.Float16];

    /// <summary>Smallest and largest value of a quantized type.</summary>
    public static (int Min, int Max) Range(DType t) => t switch
    {
        DType.UInt8 => (0, 255),
        DType.Int8 => (-128, 127),
        DType.UInt4 => (0, 15),
        DType.Int4 => (-8, 7),
        DType.UInt16 => (0, 65535),
        DType.Int16 => (-32768, 32767),
        DType.Int32 => (int.MinValue, int.MaxValue),
        _ => throw new NotSupportedException($"{t.Name()} is not a quantized type"),
    };

    /// <summary>Element <paramref name="i"/> of a quantized buffer as an int.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Get(DType t, ReadOnlySpan<byte> bytes, int i) => t switch
    {
        DType.UInt8 => bytes[i],
        DType.Int8 => (sbyte)bytes[i],
        DType.UInt4 => Int4.GetUnsigned(bytes, i),
        DType.Int4 => Int4.GetSigned(bytes, i),
        DType.UInt16 => Unsafe.ReadUnaligned<ushort>(ref Unsafe.AsRef(in bytes[i * 2])),
        DType.Int16 => Unsafe.ReadUnaligned<short>(ref Unsafe.AsRef(in bytes[i * 2])),
        DType.Int32 => Unsafe.ReadUnaligned<int>(ref Unsafe.AsRef(in bytes[i * 4])),
        _ => throw new NotSupportedException($"{t.Name()} is not a quantized type"),
    };

    /// <summary>Stores <paramref name="v"/> (already in range) as element <paramref name="i"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Set(DType t, Span<byte> bytes, int i, int v)
    {
        switch (t)
        {
            case DType.UInt8 or DType.Int8: bytes[i] = (byte)v; break;
            case DType.UInt4 or DType.Int4: Int4.Set(bytes, i, v); break;
            case DType.UInt16 or DType.Int16: Unsafe.WriteUnaligned(ref bytes[i * 2], (short)v); break;
            default: throw new NotSupportedException($"{t.Name()} is not a quantized type");
        }
    }

    /// <summary>All elements of a scale tensor as float32.</summary>
    public static float[] Floats(TensorBuffer t) => t.DType switch
    {
        DType.Float32 => t.Span<float>().ToArray(),
        DType.Float16 => t.Span<Half>().ToArray().Select(h => (float)h).ToArray(),
        DType.BFloat16 => t.Span<ushort>().ToArray().Select(BFloat16.ToSingle).ToArray(),
        _ => throw new InvalidOperationException($"scale must be float32 or float16, got {t.DType.Name()}"),
    };

    /// <summary>All elements of a zero-point (or quantized) tensor as ints.</summary>
    public static int[] Ints(TensorBuffer t)
    {
        var r = new int[t.Length];
        var b = t.Memory.Span;
        for (int i = 0; i < r.Length; i++) r[i] = Get(t.DType, b, i);
        return r;
    }

    /// <summary>ONNX rounding and saturation: clamp(round-half-to-even(<paramref name="v"/>) + zp, min, max).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Quantize(float v, int zp, int min, int max)
    {
        float r = MathF.Round(v); // MidpointRounding.ToEven
        if (float.IsNaN(r)) return Math.Clamp(zp, min, max);
        double q = (double)r + zp;
        return q <= min ? min : q >= max ? max : (int)q;
    }

    /// <summary>A scalar float (scale) input, checked.</summary>
    public static float ScalarScale(TensorBuffer? t, string what)
    {
        if (t is null) throw new InvalidOperationException($"{what} is missing");
        if (t.Length != 1) throw new InvalidOperationException($"{what} must be a scalar, got {t}");
        return Floats(t)[0];
    }

    /// <summary>A scalar zero point (0 when omitted), checked.</summary>
    public static int ScalarZeroPoint(TensorBuffer? t, string what)
    {
        if (t is null) return 0;
        if (t.Length != 1) throw new InvalidOperationException($"{what} must be a scalar, got {t}");
        return Get(t.DType, t.Memory.Span, 0);
    }

    /// <summary>A per-tensor or per-channel vector of length <paramref name="n"/> (a scalar is broadcast); null input → fallback.</summary>
    public static float[] ScaleVector(TensorBuffer t, int n, string what)
    {
        var v = Floats(t);
        if (v.Length == 1 && n != 1) return Enumerable.Repeat(v[0], n).ToArray();
        if (v.Length != n) throw new InvalidOperationException($"{what} has {v.Length} values; expected 1 or {n}");
        return v;
    }

    /// <summary>A per-tensor or per-channel zero-point vector of length <paramref name="n"/> (0 when omitted).</summary>
    public static int[] ZeroPointVector(TensorBuffer? t, int n, string what)
    {
        if (t is null) return new int[n];
        var v = Ints(t);
        if (v.Length == 1 && n != 1) return Enumerable.Repeat(v[0], n).ToArray();
        if (v.Length != n) throw new InvalidOperationException($"{what} has {v.Length} values; expected 1 or {n}");
        return v;
    }
}
