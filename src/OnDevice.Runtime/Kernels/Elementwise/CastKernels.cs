using System.Numerics;
using OnDevice.Core;

namespace OnDevice.Runtime.Kernels.Elementwise;

/// <summary>
/// Cast and CastLike between every fixed-size numeric type and bool. Conversions: float → integer truncates toward
/// zero and saturates to the target range (NaN → 0); integer → narrower integer wraps (two's complement, like a C
/// cast); → float rounds to nearest even (float16 via <see cref="Half"/>, bfloat16 via <see cref="BFloat16"/>);
/// → bool is x != 0 (so NaN → true); bool → number is 0 or 1.
/// </summary>
internal static class CastKernels
{
    /// <summary>Element types Cast converts from and to.</summary>
    public static readonly DType[] Types = TypeSets.All;

    /// <summary>Packed 4-bit types Cast converts from (opset 21+; e.g. palettized weights' indices).</summary>
    public static readonly DType[] FourBit = [DType.UInt4, DType.Int4];

    public static void Register(KernelRegistry r)
    {
        r.Add("Cast", 6, Types, c => new CastKernel((DType)c.Node.GetInt("to", 0)), supports: c =>
            Types.Contains((DType)c.Node.GetInt("to", 0)) ? null : $"Cast to {((DType)c.Node.GetInt("to", 0)).Name()} is not supported");
        r.Add("Cast", 21, FourBit, c => new CastKernel((DType)c.Node.GetInt("to", 0)), supports: c =>
            Types.Contains((DType)c.Node.GetInt("to", 0)) ? null : $"Cast from 4-bit to {((DType)c.Node.GetInt("to", 0)).Name()} is not supported");
        r.Add("CastLike", 15, Types, _ => new CastKernel(null), supports: c =>
            c.InputType(1) is { } t && !Types.Contains(t) ? $"CastLike to {t.Name()} is not supported" : null);
    }

    /// <summary>Converts every element of <paramref name="x"/> into <paramref name="y"/> (same length, any two supported types).</summary>
    public static void Convert(TensorBuffer x, TensorBuffer y)
    {
        if (x.Length != y.Length) throw new ArgumentException($"cannot convert {x} into {y}: element counts differ");
        if (x.DType == y.DType)
        {
            x.Memory.Span.CopyTo(y.Memory.Span);
            return;
        }
        if (x.DType is DType.UInt4 or DType.Int4)
        {
            // Unpack in tiles to one byte per element (exact), then convert from int8/uint8.
            var tile = new byte[256];
            var packed = x.Memory.Span;
            bool signed = x.DType == DType.Int4;
            int ysz = y.DType.BitsPerElement() / 8;
            for (int i = 0; i < x.Length; i += 256)
            {
                int len = Math.Min(256, x.Length - i);
                for (int j = 0; j < len; j++) tile[j] = (byte)(signed ? Int4.GetSigned(packed, i + j) : Int4.GetUnsigned(packed, i + j));
                var bytes = new TensorBuffer(signed ? DType.Int8 : DType.UInt8, [len], tile.AsMemory(0, len));
                Convert(bytes, new TensorBuffer(y.DType, [len], y.Memory.Slice(i * ysz)));
            }
            return;
        }
        switch (x.DType)
        {
            case DType.Float32: From<float>(x.Span<float>(), y); break;
            case DType.Float64: From<double>(x.Span<double>(), y); break;
            case DType.Float16: From<Half>(x.Span<Half>(), y); break;
            case DType.Int8: From<sbyte>(x.Span<sbyte>(), y); break;
            case DType.UInt8: From<byte>(x.Span<byte>(), y); break;
            case DType.Int16: From<short>(x.Span<short>(), y); break;
            case DType.UInt16: From<ushort>(x.Span<ushort>(), y); break;
            case DType.Int32: From<int>(x.Span<int>(), y); break;
            case DType.UInt32: From<uint>(x.Span<uint>(), y); break;
            case DType.Int64: From<long>(x.Span<long>(), y); break;
            case DType.UInt64: From<ulong>(x.Span<ulong>(), y); break;
            case DType.Bool or DType.BFloat16:
            {
                // Widen in tiles: bool to 0/1 bytes, bfloat16 to float32 (both exact).
                Span<float> tileF = stackalloc float[256];
                Span<byte> tileB = stackalloc byte[256];
                var src = x.Memory;
                int width = x.DType == DType.Bool ? 1 : 2;
                for (int i = 0; i < x.Length; i += 256)
                {
                    int len = Math.Min(256, x.Length - i);
                    var dst = new TensorBuffer(y.DType, [len], y.Memory.Slice(i * (y.DType.BitsPerElement() / 8)));
                    if (x.DType == DType.Bool)
                    {
                        var b = src.Span.Slice(i * width, len);
                        for (int k = 0; k < len; k++) tileB[k] = b[k] != 0 ? (byte)1 : (byte)0;
                        From<byte>(tileB[..len], dst);
                    }
                    else
                    {
                        FloatUnary.Widen(true, x.Span<ushort>().Slice(i, len), tileF[..len]);
                        From<float>(tileF[..len], dst);
                    }
                }
                break;
            }
            default: throw new NotSupportedException($"Cast from {x.DType.Name()} is not supported");
        }
    }

    private static void From<S>(ReadOnlySpan<S> s, TensorBuffer y) where S : unmanaged, INumber<S>
    {
        switch (y.DType)
        {
            case DType.Float32: Loop(s, y.Span<float>()); break;
            case DType.Float64: Loop(s, y.Span<double>()); break;
            case DType.Float16: Loop(s, y.Span<Half>()); break;
            case DType.Int8: Loop(s, y.Span<sbyte>()); break;
            case DType.UInt8: Loop(s, y.Span<byte>()); break;
            case DType.Int16: Loop(s, y.Span<short>()); break;
            case DType.UInt16: Loop(s, y.Span<ushort>()); break;
            case DType.Int32: Loop(s, y.Span<int>()); break;
            case DType.UInt32: Loop(s, y.Span<uint>()); break;
            case DType.Int64: Loop(s, y.Span<long>()); break;
            case DType.UInt64: Loop(s, y.Span<ulong>()); break;
            case DType.Bool:
            {
                var d = y.Span<byte>();
                for (int i = 0; i < s.Length; i++) d[i] = s[i] != S.Zero ? (byte)1 : (byte)0;
                break;
            }
            case DType.BFloat16:
            {
                var d = y.Span<ushort>();
                for (int i = 0; i < s.Length; i++) d[i] = BFloat16.FromSingle(float.CreateTruncating(s[i]));
                break;
            }
            default: throw new NotSupportedException($"Cast to {y.DType.Name()} is not supported");
        }
    }

    private static void Loop<S, D>(ReadOnlySpan<S> s, Span<D> d) where S : unmanaged, INumber<S> where D : unmanaged, INumber<D>
    {
        if (Numeric.IsFloat<S>() && !Numeric.IsFloat<D>())
            for (int i = 0; i < s.Length; i++) d[i] = D.CreateSaturating(s[i]);
        else
            for (int i = 0; i < s.Length; i++) d[i] = D.CreateTruncating(s[i]);
    }

    /// <summary>Cast (target from the 'to' attribute) or CastLike (target = input 1's type when <c>to</c> is null).</summary>
    private sealed class CastKernel(DType? to) : IKernel
    {
        public void Execute(KernelContext ctx)
        {
            var x = ctx.Required(0);
            var target = to ?? ctx.Required(1).DType;
            var y = ctx.Output(0, target, x.Shape);
            try { Convert(x, y); }
            catch (NotSupportedException e) { throw new InvalidOperationException($"node {ctx.Node.Label}: {e.Message}"); }
        }
    }
}
