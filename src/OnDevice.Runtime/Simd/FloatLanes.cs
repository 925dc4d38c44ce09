using System.Runtime.Intrinsics;

namespace OnDevice.Runtime.Simd;

/// <summary>
/// float32 lanes (one scalar, or a 128/256/512-bit vector) with the operations vector math is written in. An algorithm
/// written once over <typeparamref name="TSelf"/> runs with identical rounding in the scalar tail and at every vector
/// width, because every operation here is exact or correctly rounded IEEE arithmetic (no fused multiply-add).
/// Masks are lanes with all bits set (true) or clear (false), as vector comparisons produce them.
/// </summary>
public interface IFloatLanes<TSelf> where TSelf : struct, IFloatLanes<TSelf>
{
    /// <summary>Number of lanes.</summary>
    static abstract int Count { get; }
    /// <summary>Every lane set to <paramref name="value"/>.</summary>
    static abstract TSelf Splat(float value);
    /// <summary>Lane-wise sum.</summary>
    static abstract TSelf operator +(TSelf a, TSelf b);
    /// <summary>Lane-wise difference.</summary>
    static abstract TSelf operator -(TSelf a, TSelf b);
    /// <summary>Lane-wise product.</summary>
    static abstract TSelf operator *(TSelf a, TSelf b);
    /// <summary>Lane-wise quotient.</summary>
    static abstract TSelf operator /(TSelf a, TSelf b);
    /// <summary>Lane-wise negation (flips the sign bit).</summary>
    static abstract TSelf operator -(TSelf a);
    /// <summary>Bitwise and.</summary>
    static abstract TSelf operator &(TSelf a, TSelf b);
    /// <summary>Bitwise or.</summary>
    static abstract TSelf operator |(TSelf a, TSelf b);
    /// <summary>Bitwise exclusive or.</summary>
    static abstract TSelf operator ^(TSelf a, TSelf b);
    /// <summary>Mask of a &lt; b (false when either is NaN).</summary>
    static abstract TSelf LessThan(TSelf a, TSelf b);
    /// <summary>Mask of a &lt;= b (false when either is NaN).</summary>
    static abstract TSelf LessThanOrEqual(TSelf a, TSelf b);
    /// <summary>Mask of a == b (false when either is NaN).</summary>
    static abstract TSelf Equal(TSelf a, TSelf b);
    /// <summary>Mask of lanes that are NaN.</summary>
    static abstract TSelf IsNaN(TSelf a);
    /// <summary>Per lane: <paramref name="whenTrue"/> where <paramref name="mask"/> is set, else <paramref name="whenFalse"/>.</summary>
    static abstract TSelf Select(TSelf mask, TSelf whenTrue, TSelf whenFalse);
    /// <summary>True when any lane of the mask is set.</summary>
    static abstract bool AnyTrue(TSelf mask);
    /// <summary>Absolute value (clears the sign bit).</summary>
    static abstract TSelf Abs(TSelf a);
    /// <summary>Correctly rounded square root.</summary>
    static abstract TSelf Sqrt(TSelf a);
    /// <summary>Round toward negative infinity.</summary>
    static abstract TSelf Floor(TSelf a);
    /// <summary>Round toward positive infinity.</summary>
    static abstract TSelf Ceiling(TSelf a);
    /// <summary>Round to nearest, ties to even.</summary>
    static abstract TSelf Round(TSelf a);
    /// <summary>Round toward zero.</summary>
    static abstract TSelf Truncate(TSelf a);
    /// <summary>2^n for lanes holding integers n in [-126, 127].</summary>
    static abstract TSelf Pow2(TSelf n);
    /// <summary>For positive normal x: the mantissa m in [0.5, 1) with x = m·2^e, and e as a float.</summary>
    static abstract TSelf Frexp(TSelf x, out TSelf exponent);
    /// <summary>Lane <paramref name="i"/>.</summary>
    static abstract float GetLane(TSelf v, int i);
    /// <summary>A copy with lane <paramref name="i"/> replaced.</summary>
    static abstract TSelf WithLane(TSelf v, int i, float value);
}

/// <summary>One float as lanes: the scalar rung, with exactly the rounding of the vector rungs.</summary>
public readonly struct Lanes1(float value) : IFloatLanes<Lanes1>
{
    /// <summary>The value.</summary>
    public readonly float V = value;

    private const int True = -1;
    private static int Bits(float f) => BitConverter.SingleToInt32Bits(f);
    private static Lanes1 FromBits(int b) => new(BitConverter.Int32BitsToSingle(b));
    private static Lanes1 Mask(bool b) => FromBits(b ? True : 0);

    /// <inheritdoc/>
    public static int Count => 1;
    /// <inheritdoc/>
    public static Lanes1 Splat(float value) => new(value);
    /// <inheritdoc/>
    public static Lanes1 operator +(Lanes1 a, Lanes1 b) => new(a.V + b.V);
    /// <inheritdoc/>
    public static Lanes1 operator -(Lanes1 a, Lanes1 b) => new(a.V - b.V);
    /// <inheritdoc/>
    public static Lanes1 operator *(Lanes1 a, Lanes1 b) => new(a.V * b.V);
    /// <inheritdoc/>
    public static Lanes1 operator /(Lanes1 a, Lanes1 b) => new(a.V / b.V);
    /// <inheritdoc/>
    public static Lanes1 operator -(Lanes1 a) => FromBits(Bits(a.V) ^ int.MinValue);
    /// <inheritdoc/>
    public static Lanes1 operator &(Lanes1 a, Lanes1 b) => FromBits(Bits(a.V) & Bits(b.V));
    /// <inheritdoc/>
    public static Lanes1 operator |(Lanes1 a, Lanes1 b) => FromBits(Bits(a.V) | Bits(b.V));
    /// <inheritdoc/>
    public static Lanes1 operator ^(Lanes1 a, Lanes1 b) => FromBits(Bits(a.V) ^ Bits(b.V));
    /// <inheritdoc/>
    public static Lanes1 LessThan(Lanes1 a, Lanes1 b) => Mask(a.V < b.V);
    /// <inheritdoc/>
    public static Lanes1 LessThanOrEqual(Lanes1 a, Lanes1 b) => Mask(a.V <= b.V);
    /// <inheritdoc/>
    public static Lanes1 Equal(Lanes1 a, Lanes1 b) => Mask(a.V == b.V);
    /// <inheritdoc/>
    public static Lanes1 IsNaN(Lanes1 a) => Mask(float.IsNaN(a.V));
    /// <inheritdoc/>
    public static Lanes1 Select(Lanes1 mask, Lanes1 whenTrue, Lanes1 whenFalse) => Bits(mask.V) != 0 ? whenTrue : whenFalse;
    /// <inheritdoc/>
    public static bool AnyTrue(Lanes1 mask) => Bits(mask.V) != 0;
    /// <inheritdoc/>
    public static Lanes1 Abs(Lanes1 a) => FromBits(Bits(a.V) & int.MaxValue);
    /// <inheritdoc/>
    public static Lanes1 Sqrt(Lanes1 a) => new(MathF.Sqrt(a.V));
    /// <inheritdoc/>
    public static Lanes1 Floor(Lanes1 a) => new(MathF.Floor(a.V));
    /// <inheritdoc/>
    public static Lanes1 Ceiling(Lanes1 a) => new(MathF.Ceiling(a.V));
    /// <inheritdoc/>
    public static Lanes1 Round(Lanes1 a) => new(MathF.Round(a.V, MidpointRounding.ToEven));
    /// <inheritdoc/>
    public static Lanes1 Truncate(Lanes1 a) => new(MathF.Truncate(a.V));
    /// <inheritdoc/>
    public static Lanes1 Pow2(Lanes1 n) => FromBits(((int)n.V + 127) << 23);
    /// <inheritdoc/>
    public static Lanes1 Frexp(Lanes1 x, out Lanes1 exponent)
    {
        int b = Bits(x.V);
        exponent = new(((b >> 23) & 0xFF) - 126);
        return FromBits((b & unchecked((int)0x807FFFFF)) | 0x3F000000);
    }
    /// <inheritdoc/>
    public static float GetLane(Lanes1 v, int i) => v.V;
    /// <inheritdoc/>
    public static Lanes1 WithLane(Lanes1 v, int i, float value) => new(value);
}

/// <summary>A <see cref="Vector128{T}"/> of floats as lanes.</summary>
public readonly struct Lanes128(Vector128<float> value) : IFloatLanes<Lanes128>
{
    /// <summary>The vector.</summary>
    public readonly Vector128<float> V = value;

    /// <inheritdoc/>
    public static int Count => Vector128<float>.Count;
    /// <inheritdoc/>
    public static Lanes128 Splat(float value) => new(Vector128.Create(value));
    /// <inheritdoc/>
    public static Lanes128 operator +(Lanes128 a, Lanes128 b) => new(a.V + b.V);
    /// <inheritdoc/>
    public static Lanes128 operator -(Lanes128 a, Lanes128 b) => new(a.V - b.V);
    /// <inheritdoc/>
    public static Lanes128 operator *(Lanes128 a, Lanes128 b) => new(a.V * b.V);
    /// <inheritdoc/>
    public static Lanes128 operator /(Lanes128 a, Lanes128 b) => new(a.V / b.V);
    /// <inheritdoc/>
    public static Lanes128 operator -(Lanes128 a) => new(a.V ^ Vector128.Create(-0f));
    /// <inheritdoc/>
    public static Lanes128 operator &(Lanes128 a, Lanes128 b) => new(a.V & b.V);
    /// <inheritdoc/>
    public static Lanes128 operator |(Lanes128 a, Lanes128 b) => new(a.V | b.V);
    /// <inheritdoc/>
    public static Lanes128 operator ^(Lanes128 a, Lanes128 b) => new(a.V ^ b.V);
    /// <inheritdoc/>
    public static Lanes128 LessThan(Lanes128 a, Lanes128 b) => new(Vector128.LessThan(a.V, b.V));
    /// <inheritdoc/>
    public static Lanes128 LessThanOrEqual(Lanes128 a, Lanes128 b) => new(Vector128.LessThanOrEqual(a.V, b.V));
    /// <inheritdoc/>
    public static Lanes128 Equal(Lanes128 a, Lanes128 b) => new(Vector128.Equals(a.V, b.V));
    /// <inheritdoc/>
    public static Lanes128 IsNaN(Lanes128 a) => new(~Vector128.Equals(a.V, a.V));
    /// <inheritdoc/>
    public static Lanes128 Select(Lanes128 mask, Lanes128 whenTrue, Lanes128 whenFalse) => new(Vector128.ConditionalSelect(mask.V, whenTrue.V, whenFalse.V));
    /// <inheritdoc/>
    public static bool AnyTrue(Lanes128 mask) => mask.V.AsInt32() != Vector128<int>.Zero;
    /// <inheritdoc/>
    public static Lanes128 Abs(Lanes128 a) => new(Vector128.AndNot(a.V, Vector128.Create(-0f)));
    /// <inheritdoc/>
    public static Lanes128 Sqrt(Lanes128 a) => new(Vector128.Sqrt(a.V));
    /// <inheritdoc/>
    public static Lanes128 Floor(Lanes128 a) => new(Vector128.Floor(a.V));
    /// <inheritdoc/>
    public static Lanes128 Ceiling(Lanes128 a) => new(Vector128.Ceiling(a.V));
    /// <inheritdoc/>
    public static Lanes128 Round(Lanes128 a) => new(Vector128.Round(a.V));
    /// <inheritdoc/>
    public static Lanes128 Truncate(Lanes128 a) => new(Vector128.Truncate(a.V));
    /// <inheritdoc/>
    public static Lanes128 Pow2(Lanes128 n) => new(Vector128.ShiftLeft(Vector128.ConvertToInt32(n.V) + Vector128.Create(127), 23).AsSingle());
    /// <inheritdoc/>
    public static Lanes128 Frexp(Lanes128 x, out Lanes128 exponent)
    {
        var b = x.V.AsInt32();
        exponent = new(Vector128.ConvertToSingle((Vector128.ShiftRightLogical(b, 23) & Vector128.Create(0xFF)) - Vector128.Create(126)));
        return new(((b & Vector128.Create(unchecked((int)0x807FFFFF))) | Vector128.Create(0x3F000000)).AsSingle());
    }
    /// <inheritdoc/>
    public static float GetLane(Lanes128 v, int i) => v.V.GetElement(i);
    /// <inheritdoc/>
    public static Lanes128 WithLane(Lanes128 v, int i, float value) => new(v.V.WithElement(i, value));
}

/// <summary>A <see cref="Vector256{T}"/> of floats as lanes.</summary>
public readonly struct Lanes256(Vector256<float> value) : IFloatLanes<Lanes256>
{
    /// <summary>The vector.</summary>
    public readonly Vector256<float> V = value;

    /// <inheritdoc/>
    public static int Count => Vector256<float>.Count;
    /// <inheritdoc/>
    public static Lanes256 Splat(float value) => new(Vector256.Create(value));
    /// <inheritdoc/>
    public static Lanes256 operator +(Lanes256 a, Lanes256 b) => new(a.V + b.V);
    /// <inheritdoc/>
    public static Lanes256 operator -(Lanes256 a, Lanes256 b) => new(a.V - b.V);
    /// <inheritdoc/>
    public static Lanes256 operator *(Lanes256 a, Lanes256 b) => new(a.V * b.V);
    /// <inheritdoc/>
    public static Lanes256 operator /(Lanes256 a, Lanes256 b) => new(a.V / b.V);
    /// <inheritdoc/>
    public static Lanes256 operator -(Lanes256 a) => new(a.V ^ Vector256.Create(-0f));
    /// <inheritdoc/>
    public static Lanes256 operator &(Lanes256 a, Lanes256 b) => new(a.V & b.V);
    /// <inheritdoc/>
    public static Lanes256 operator |(Lanes256 a, Lanes256 b) => new(a.V | b.V);
    /// <inheritdoc/>
    public static Lanes256 operator ^(Lanes256 a, Lanes256 b) => new(a.V ^ b.V);
    /// <inheritdoc/>
    public static Lanes256 LessThan(Lanes256 a, Lanes256 b) => new(Vector256.LessThan(a.V, b.V));
    /// <inheritdoc/>
    public static Lanes256 LessThanOrEqual(Lanes256 a, Lanes256 b) => new(Vector256.LessThanOrEqual(a.V, b.V));
    /// <inheritdoc/>
    public static Lanes256 Equal(Lanes256 a, Lanes256 b) => new(Vector256.Equals(a.V, b.V));
    /// <inheritdoc/>
    public static Lanes256 IsNaN(Lanes256 a) => new(~Vector256.Equals(a.V, a.V));
    /// <inheritdoc/>
    public static Lanes256 Select(Lanes256 mask, Lanes256 whenTrue, Lanes256 whenFalse) => new(Vector256.ConditionalSelect(mask.V, whenTrue.V, whenFalse.V));
    /// <inheritdoc/>
    public static bool AnyTrue(Lanes256 mask) => mask.V.AsInt32() != Vector256<int>.Zero;
    /// <inheritdoc/>
    public static Lanes256 Abs(Lanes256 a) => new(Vector256.AndNot(a.V, Vector256.Create(-0f)));
    /// <inheritdoc/>
    public static Lanes256 Sqrt(Lanes256 a) => new(Vector256.Sqrt(a.V));
    /// <inheritdoc/>
    public static Lanes256 Floor(Lanes256 a) => new(Vector256.Floor(a.V));
    /// <inheritdoc/>
    public static Lanes256 Ceiling(Lanes256 a) => new(Vector256.Ceiling(a.V));
    /// <inheritdoc/>
    public static Lanes256 Round(Lanes256 a) => new(Vector256.Round(a.V));
    /// <inheritdoc/>
    public static Lanes256 Truncate(Lanes256 a) => new(Vector256.Truncate(a.V));
    /// <inheritdoc/>
    public static Lanes256 Pow2(Lanes256 n) => new(Vector256.ShiftLeft(Vector256.ConvertToInt32(n.V) + Vector256.Create(127), 23).AsSingle());
    /// <inheritdoc/>
    public static Lanes256 Frexp(Lanes256 x, out Lanes256 exponent)
    {
        var b = x.V.AsInt32();
        exponent = new(Vector256.ConvertToSingle((Vector256.ShiftRightLogical(b, 23) & Vector256.Create(0xFF)) - Vector256.Create(126)));
        return new(((b & Vector256.Create(unchecked((int)0x807FFFFF))) | Vector256.Create(0x3F000000)).AsSingle());
    }
    /// <inheritdoc/>
    public static float GetLane(Lanes256 v, int i) => v.V.GetElement(i);
    /// <inheritdoc/>
    public static Lanes256 WithLane(Lanes256 v, int i, float value) => new(v.V.WithElement(i, value));
}

/// <summary>A <see cref="Vector512{T}"/> of floats as lanes.</summary>
public readonly struct Lanes512(Vector512<float> value) : IFloatLanes<Lanes512>
{
    /// <summary>The vector.</summary>
    public readonly Vector512<float> V = value;

    /// <inheritdoc/>
    public static int Count => Vector512<float>.Count;
    /// <inheritdoc/>
    public static Lanes512 Splat(float value) => new(Vector512.Create(value));
    /// <inheritdoc/>
    public static Lanes512 operator +(Lanes512 a, Lanes512 b) => new(a.V + b.V);
    /// <inheritdoc/>
    public static Lanes512 operator -(Lanes512 a, Lanes512 b) => new(a.V - b.V);
    /// <inheritdoc/>
    public static Lanes512 operator *(Lanes512 a, Lanes512 b) => new(a.V * b.V);
    /// <inheritdoc/>
    public static Lanes512 operator /(Lanes512 a, Lanes512 b) => new(a.V / b.V);
    /// <inheritdoc/>
    public static Lanes512 operator -(Lanes512 a) => new(a.V ^ Vector512.Create(-0f));
    /// <inheritdoc/>
    public static Lanes512 operator &(Lanes512 a, Lanes512 b) => new(a.V & b.V);
    /// <inheritdoc/>
    public static Lanes512 operator |(Lanes512 a, Lanes512 b) => new(a.V | b.V);
    /// <inheritdoc/>
    public static Lanes512 operator ^(Lanes512 a, Lanes512 b) => new(a.V ^ b.V);
    /// <inheritdoc/>
    public static Lanes512 LessThan(Lanes512 a, Lanes512 b) => new(Vector512.LessThan(a.V, b.V));
    /// <inheritdoc/>
    public static Lanes512 LessThanOrEqual(Lanes512 a, Lanes512 b) => new(Vector512.LessThanOrEqual(a.V, b.V));
    /// <inheritdoc/>
    public static Lanes512 Equal(Lanes512 a, Lanes512 b) => new(Vector512.Equals(a.V, b.V));
    /// <inheritdoc/>
    public static Lanes512 IsNaN(Lanes512 a) => new(~Vector512.Equals(a.V, a.V));
    /// <inheritdoc/>
    public static Lanes512 Select(Lanes512 mask, Lanes512 whenTrue, Lanes512 whenFalse) => new(Vector512.ConditionalSelect(mask.V, whenTrue.V, whenFalse.V));
    /// <inheritdoc/>
    public static bool AnyTrue(Lanes512 mask) => mask.V.AsInt32() != Vector512<int>.Zero;
    /// <inheritdoc/>
    public static Lanes512 Abs(Lanes512 a) => new(Vector512.AndNot(a.V, Vector512.Create(-0f)));
    /// <inheritdoc/>
    public static Lanes512 Sqrt(Lanes512 a) => new(Vector512.Sqrt(a.V));
    /// <inheritdoc/>
    public static Lanes512 Floor(Lanes512 a) => new(Vector512.Floor(a.V));
    /// <inheritdoc/>
    public static Lanes512 Ceiling(Lanes512 a) => new(Vector512.Ceiling(a.V));
    /// <inheritdoc/>
    public static Lanes512 Round(Lanes512 a) => new(Vector512.Round(a.V));
    /// <inheritdoc/>
    public static Lanes512 Truncate(Lanes512 a) => new(Vector512.Truncate(a.V));
    /// <inheritdoc/>
    public static Lanes512 Pow2(Lanes512 n) => new(Vector512.ShiftLeft(Vector512.ConvertToInt32(n.V) + Vector512.Create(127), 23).AsSingle());
    /// <inheritdoc/>
    public static Lanes512 Frexp(Lanes512 x, out Lanes512 exponent)
    {
        var b = x.V.AsInt32();
        exponent = new(Vector512.ConvertToSingle((Vector512.ShiftRightLogical(b, 23) & Vector512.Create(0xFF)) - Vector512.Create(126)));
        return new(((b & Vector512.Create(unchecked((int)0x807FFFFF))) | Vector512.Create(0x3F000000)).AsSingle());
    }
    /// <inheritdoc/>
    public static float GetLane(Lanes512 v, int i) => v.V.GetElement(i);
    /// <inheritdoc/>
    public static Lanes512 WithLane(Lanes512 v, int i, float value) => new(v.V.WithElement(i, value));
}
