using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace OnDevice.Runtime.Simd;

/// <summary>
/// Vectorized 8-bit quantization loops: min/max of a float run, quantize (x / scale, round half to even, + zp,
/// saturate) and dequantize ((q − zp) · scale). Vector256 → Vector128 → scalar; the scalar loops are the twins the
/// tests compare against (results are bit-identical: the vector paths do the same float operations).
/// </summary>
public static class QuantizeVectors
{
    /// <summary>Smallest and largest value (NaN ignored by the vector paths only when absent; inputs are assumed finite).</summary>
    public static (float Min, float Max) MinMax(ReadOnlySpan<float> x)
    {
        if (x.Length == 0) return (0, 0);
        int i = 0;
        float lo = x[0], hi = x[0];
        if (Vector256.IsHardwareAccelerated && x.Length >= 8)
        {
            ref float r = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(x);
            var vlo = Vector256.LoadUnsafe(ref r);
            var vhi = vlo;
            for (i = 8; i + 8 <= x.Length; i += 8)
            {
                var v = Vector256.LoadUnsafe(ref r, (nuint)i);
                vlo = Vector256.Min(vlo, v);
                vhi = Vector256.Max(vhi, v);
            }
            for (int k = 0; k < 8; k++)
            {
                lo = Math.Min(lo, vlo.GetElement(k));
                hi = Math.Max(hi, vhi.GetElement(k));
            }
        }
        for (; i < x.Length; i++)
        {
            lo = Math.Min(lo, x[i]);
            hi = Math.Max(hi, x[i]);
        }
        return (lo, hi);
    }

    /// <summary>y = saturate(round-half-even(x / scale) + zp) into [min, max] (an 8-bit range), stored as bytes.</summary>
    public static void Quantize(ReadOnlySpan<float> x, float scale, int zp, int min, int max, Span<byte> y)
    {
        if (y.Length < x.Length) throw new ArgumentException("output is shorter than input");
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            ref float rx = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(x);
            ref byte ry = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(y);
            var vs = Vector256.Create(scale);
            var vz = Vector256.Create((float)zp);
            var vmin = Vector256.Create((float)min);
            var vmax = Vector256.Create((float)max);
            for (; i + 16 <= x.Length; i += 16)
            {
                var a = Vector256.ConvertToInt32(Vector256.Min(Vector256.Max(Vector256.Round(Vector256.LoadUnsafe(ref rx, (nuint)i) / vs) + vz, vmin), vmax));
                var b = Vector256.ConvertToInt32(Vector256.Min(Vector256.Max(Vector256.Round(Vector256.LoadUnsafe(ref rx, (nuint)(i + 8)) / vs) + vz, vmin), vmax));
                var s = Vector256.Narrow(a, b); // 16 shorts, in range
                var lower = s.GetLower();
                var upper = s.GetUpper();
                var bytes = Vector128.Narrow(lower.AsUInt16(), upper.AsUInt16()); // low bytes (two's complement for int8)
                bytes.StoreUnsafe(ref ry, (nuint)i);
            }
        }
        for (; i < x.Length; i++) y[i] = (byte)QuantizeOne(x[i], scale, zp, min, max);
    }

    /// <summary>The scalar twin of one element of <see cref="Quantize"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int QuantizeOne(float x, float scale, int zp, int min, int max)
    {
        float v = MathF.Round(x / scale) + zp;
        if (!(v >= min)) return float.IsNaN(v) ? Math.Clamp(zp, min, max) : min;
        return v > max ? max : (int)v;
    }

    /// <summary>y = (q − zp) · scale for uint8 (or int8 when <paramref name="signed"/>) values.</summary>
    public static void Dequantize(ReadOnlySpan<byte> q, bool signed, float scale, int zp, Span<float> y)
    {
        if (y.Length < q.Length) throw new ArgumentException("output is shorter than input");
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            ref byte rq = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(q);
            ref float ry = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(y);
            var vs = Vector256.Create(scale);
            var vz = Vector256.Create(zp);
            for (; i + 8 <= q.Length; i += 8)
            {
                var raw = Vector128.CreateScalar(Unsafe.ReadUnaligned<long>(ref Unsafe.Add(ref rq, i))).AsByte();
                Vector256<int> w;
                if (signed)
                {
                    var s16 = Vector128.WidenLower(raw.AsSByte());
                    w = Vector256.Create(Vector128.WidenLower(s16), Vector128.WidenUpper(s16));
                }
                else
                {
                    var u16 = Vector128.WidenLower(raw);
                    w = Vector256.Create(Vector128.WidenLower(u16), Vector128.WidenUpper(u16)).AsInt32();
                }
                (Vector256.ConvertToSingle(w - vz) * vs).StoreUnsafe(ref ry, (nuint)i);
            }
        }
        for (; i < q.Length; i++) y[i] = ((signed ? (sbyte)q[i] : q[i]) - zp) * scale;
    }
}
