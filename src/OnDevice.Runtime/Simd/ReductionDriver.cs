using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace OnDevice.Runtime.Simd;

/// <summary>
/// An associative float aggregate. <c>Invoke(acc, x)</c> folds one element into an accumulator (so the op also
/// drives element-wise accumulation of whole rows through <see cref="ElementwiseDriver.Binary{TOp}"/>);
/// <c>Merge</c> combines two partial accumulators.
/// </summary>
public interface IAggregateOp : IBinaryOp
{
    /// <summary>The accumulator's starting value.</summary>
    static abstract float Identity { get; }
    /// <summary>Combines two partial results.</summary>
    static abstract float Merge(float a, float b);
    /// <summary>Combines two partial results, 128-bit.</summary>
    static abstract Vector128<float> Merge(Vector128<float> a, Vector128<float> b);
    /// <summary>Combines two partial results, 256-bit.</summary>
    static abstract Vector256<float> Merge(Vector256<float> a, Vector256<float> b);
}

/// <summary>
/// Horizontal reductions of float spans and the row operations of softmax: the widest accelerated vector does
/// the bulk, narrower ones the remainder, scalar code the tail (Vector512 → Vector256 → Vector128 → scalar).
/// Partial sums are combined in a different order than a left-to-right scalar loop, so sums may differ from
/// the scalar definitions in the last bits.
/// </summary>
public static class ReductionDriver
{
    /// <summary>Folds <paramref name="x"/> into <c>TOp.Identity</c>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    public static float Aggregate<TOp>(ReadOnlySpan<float> x) where TOp : IAggregateOp
    {
        ref float xs = ref MemoryMarshal.GetReference(x);
        nuint n = (nuint)x.Length, i = 0;
        float r = TOp.Identity;
        if (n >= 4 && Vector128.IsHardwareAccelerated)
        {
            var acc256 = Vector256.Create(TOp.Identity);
            if (Vector512.IsHardwareAccelerated && n >= 16)
            {
                var acc512 = Vector512.Create(TOp.Identity);
                for (; i + 16 <= n; i += 16) acc512 = TOp.Invoke(acc512, Vector512.LoadUnsafe(ref xs, i));
                acc256 = TOp.Merge(acc512.GetLower(), acc512.GetUpper());
            }
            if (Vector256.IsHardwareAccelerated)
                for (; i + 8 <= n; i += 8) acc256 = TOp.Invoke(acc256, Vector256.LoadUnsafe(ref xs, i));
            var acc128 = TOp.Merge(acc256.GetLower(), acc256.GetUpper());
            for (; i + 4 <= n; i += 4) acc128 = TOp.Invoke(acc128, Vector128.LoadUnsafe(ref xs, i));
            r = TOp.Merge(TOp.Merge(acc128.GetElement(0), acc128.GetElement(1)), TOp.Merge(acc128.GetElement(2), acc128.GetElement(3)));
        }
        for (; i < n; i++) r = TOp.Invoke(r, Unsafe.Add(ref xs, i));
        return r;
    }

    /// <summary>acc[i] = TOp(acc[i], x[i]) — folds a row into a row of accumulators.</summary>
    public static void Accumulate<TOp>(ReadOnlySpan<float> x, Span<float> acc) where TOp : IAggregateOp =>
        ElementwiseDriver.Binary<TOp>(acc, x, acc);

    /// <summary>Sum of the elements.</summary>
    public static float Sum(ReadOnlySpan<float> x) => Aggregate<ReductionOps.SumOp>(x);

    /// <summary>Largest element (NaN if any is NaN; −∞ for an empty span).</summary>
    public static float Max(ReadOnlySpan<float> x) => Aggregate<ReductionOps.MaxOp>(x);

    /// <summary>y[i] = exp(x[i] − shift) and returns Σ y[i]. <paramref name="y"/> may be <paramref name="x"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    public static float ExpShiftSum(ReadOnlySpan<float> x, float shift, Span<float> y)
    {
        if (y.Length < x.Length) throw new ArgumentException("destination too short");
        ElementwiseDriver.BinaryScalarRight<ReductionOps.ExpSubOp>(x, shift, y);
        return Sum(y[..x.Length]);
    }

    /// <summary>y[i] = x[i] / d.</summary>
    public static void Divide(ReadOnlySpan<float> x, float d, Span<float> y) => ElementwiseDriver.BinaryScalarRight<ReductionOps.DivOp>(x, d, y);

    /// <summary>y[i] = x[i] − c.</summary>
    public static void Subtract(ReadOnlySpan<float> x, float c, Span<float> y) => ElementwiseDriver.BinaryScalarRight<ReductionOps.SubOp>(x, c, y);

    /// <summary>y ← y + a·x over a row (the inner step of a row-by-row matrix product).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    public static void MultiplyAdd(ReadOnlySpan<float> x, float a, Span<float> y)
    {
        if (y.Length < x.Length) throw new ArgumentException("destination too short");
        ref float xs = ref MemoryMarshal.GetReference(x);
        ref float ys = ref MemoryMarshal.GetReference(y);
        nuint n = (nuint)x.Length, i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var va = Vector512.Create(a);
            for (; i + 16 <= n; i += 16) (Vector512.LoadUnsafe(ref ys, i) + va * Vector512.LoadUnsafe(ref xs, i)).StoreUnsafe(ref ys, i);
        }
        if (Vector256.IsHardwareAccelerated)
        {
            var va = Vector256.Create(a);
            for (; i + 8 <= n; i += 8) (Vector256.LoadUnsafe(ref ys, i) + va * Vector256.LoadUnsafe(ref xs, i)).StoreUnsafe(ref ys, i);
        }
        if (Vector128.IsHardwareAccelerated)
        {
            var va = Vector128.Create(a);
            for (; i + 4 <= n; i += 4) (Vector128.LoadUnsafe(ref ys, i) + va * Vector128.LoadUnsafe(ref xs, i)).StoreUnsafe(ref ys, i);
        }
        for (; i < n; i++) Unsafe.Add(ref ys, i) += a * Unsafe.Add(ref xs, i);
    }
}

/// <summary>The aggregate and element-wise ops the reduction and softmax kernels use (scalar definition and vector forms side by side).</summary>
internal static class ReductionOps
{
    /// <summary>x + y.</summary>
    public readonly struct SumOp : IAggregateOp
    {
        public static float Identity => 0f;
        public static float Invoke(float acc, float x) => acc + x;
        public static Vector128<float> Invoke(Vector128<float> acc, Vector128<float> x) => acc + x;
        public static Vector256<float> Invoke(Vector256<float> acc, Vector256<float> x) => acc + x;
        public static Vector512<float> Invoke(Vector512<float> acc, Vector512<float> x) => acc + x;
        public static float Merge(float a, float b) => a + b;
        public static Vector128<float> Merge(Vector128<float> a, Vector128<float> b) => a + b;
        public static Vector256<float> Merge(Vector256<float> a, Vector256<float> b) => a + b;
    }

    /// <summary>acc + x².</summary>
    public readonly struct SumSquaresOp : IAggregateOp
    {
        public static float Identity => 0f;
        public static float Invoke(float acc, float x) => acc + x * x;
        public static Vector128<float> Invoke(Vector128<float> acc, Vector128<float> x) => acc + x * x;
        public static Vector256<float> Invoke(Vector256<float> acc, Vector256<float> x) => acc + x * x;
        public static Vector512<float> Invoke(Vector512<float> acc, Vector512<float> x) => acc + x * x;
        public static float Merge(float a, float b) => a + b;
        public static Vector128<float> Merge(Vector128<float> a, Vector128<float> b) => a + b;
        public static Vector256<float> Merge(Vector256<float> a, Vector256<float> b) => a + b;
    }

    /// <summary>acc + |x|.</summary>
    public readonly struct SumAbsOp : IAggregateOp
    {
        public static float Identity => 0f;
        public static float Invoke(float acc, float x) => acc + MathF.Abs(x);
        public static Vector128<float> Invoke(Vector128<float> acc, Vector128<float> x) => acc + Vector128.Abs(x);
        public static Vector256<float> Invoke(Vector256<float> acc, Vector256<float> x) => acc + Vector256.Abs(x);
        public static Vector512<float> Invoke(Vector512<float> acc, Vector512<float> x) => acc + Vector512.Abs(x);
        public static float Merge(float a, float b) => a + b;
        public static Vector128<float> Merge(Vector128<float> a, Vector128<float> b) => a + b;
        public static Vector256<float> Merge(Vector256<float> a, Vector256<float> b) => a + b;
    }

    /// <summary>acc · x.</summary>
    public readonly struct ProductOp : IAggregateOp
    {
        public static float Identity => 1f;
        public static float Invoke(float acc, float x) => acc * x;
        public static Vector128<float> Invoke(Vector128<float> acc, Vector128<float> x) => acc * x;
        public static Vector256<float> Invoke(Vector256<float> acc, Vector256<float> x) => acc * x;
        public static Vector512<float> Invoke(Vector512<float> acc, Vector512<float> x) => acc * x;
        public static float Merge(float a, float b) => a * b;
        public static Vector128<float> Merge(Vector128<float> a, Vector128<float> b) => a * b;
        public static Vector256<float> Merge(Vector256<float> a, Vector256<float> b) => a * b;
    }

    /// <summary>max(acc, x), NaN propagating (IEEE 754 maximum).</summary>
    public readonly struct MaxOp : IAggregateOp
    {
        public static float Identity => float.NegativeInfinity;
        public static float Invoke(float acc, float x) => MathF.Max(acc, x);
        public static Vector128<float> Invoke(Vector128<float> acc, Vector128<float> x) => Vector128.Max(acc, x);
        public static Vector256<float> Invoke(Vector256<float> acc, Vector256<float> x) => Vector256.Max(acc, x);
        public static Vector512<float> Invoke(Vector512<float> acc, Vector512<float> x) => Vector512.Max(acc, x);
        public static float Merge(float a, float b) => MathF.Max(a, b);
        public static Vector128<float> Merge(Vector128<float> a, Vector128<float> b) => Vector128.Max(a, b);
        public static Vector256<float> Merge(Vector256<float> a, Vector256<float> b) => Vector256.Max(a, b);
    }

    /// <summary>min(acc, x), NaN propagating (IEEE 754 minimum).</summary>
    public readonly struct MinOp : IAggregateOp
    {
        public static float Identity => float.PositiveInfinity;
        public static float Invoke(float acc, float x) => MathF.Min(acc, x);
        public static Vector128<float> Invoke(Vector128<float> acc, Vector128<float> x) => Vector128.Min(acc, x);
        public static Vector256<float> Invoke(Vector256<float> acc, Vector256<float> x) => Vector256.Min(acc, x);
        public static Vector512<float> Invoke(Vector512<float> acc, Vector512<float> x) => Vector512.Min(acc, x);
        public static float Merge(float a, float b) => MathF.Min(a, b);
        public static Vector128<float> Merge(Vector128<float> a, Vector128<float> b) => Vector128.Min(a, b);
        public static Vector256<float> Merge(Vector256<float> a, Vector256<float> b) => Vector256.Min(a, b);
    }

    /// <summary>exp(x − y). The scalar form evaluates the same vector algorithm on one lane, so every rung rounds alike.</summary>
    public readonly struct ExpSubOp : IBinaryOp
    {
        public static float Invoke(float x, float y) => Vector128.IsHardwareAccelerated ? Vector128.Exp(Vector128.CreateScalarUnsafe(x - y)).ToScalar() : MathF.Exp(x - y);
        public static Vector128<float> Invoke(Vector128<float> x, Vector128<float> y) => Vector128.Exp(x - y);
        public static Vector256<float> Invoke(Vector256<float> x, Vector256<float> y) => Vector256.Exp(x - y);
        public static Vector512<float> Invoke(Vector512<float> x, Vector512<float> y) => Vector512.Exp(x - y);
    }

    /// <summary>x − y.</summary>
    public readonly struct SubOp : IBinaryOp
    {
        public static float Invoke(float x, float y) => x - y;
        public static Vector128<float> Invoke(Vector128<float> x, Vector128<float> y) => x - y;
        public static Vector256<float> Invoke(Vector256<float> x, Vector256<float> y) => x - y;
        public static Vector512<float> Invoke(Vector512<float> x, Vector512<float> y) => x - y;
    }

    /// <summary>x / y.</summary>
    public readonly struct DivOp : IBinaryOp
    {
        public static float Invoke(float x, float y) => x / y;
        public static Vector128<float> Invoke(Vector128<float> x, Vector128<float> y) => x / y;
        public static Vector256<float> Invoke(Vector256<float> x, Vector256<float> y) => x / y;
        public static Vector512<float> Invoke(Vector512<float> x, Vector512<float> y) => x / y;
    }

    /// <summary>x + y (element-wise, for accumulating rows).</summary>
    public readonly struct AddOp : IBinaryOp
    {
        public static float Invoke(float x, float y) => x + y;
        public static Vector128<float> Invoke(Vector128<float> x, Vector128<float> y) => x + y;
        public static Vector256<float> Invoke(Vector256<float> x, Vector256<float> y) => x + y;
        public static Vector512<float> Invoke(Vector512<float> x, Vector512<float> y) => x + y;
    }
}
