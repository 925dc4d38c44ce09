using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace OnDevice.Runtime.Simd;

/// <summary>A float→float element-wise operation: one scalar definition and its vector forms.</summary>
public interface IUnaryOp
{
    /// <summary>The scalar definition.</summary>
    static abstract float Invoke(float x);
    /// <summary>128-bit form.</summary>
    static abstract Vector128<float> Invoke(Vector128<float> x);
    /// <summary>256-bit form.</summary>
    static abstract Vector256<float> Invoke(Vector256<float> x);
    /// <summary>512-bit form.</summary>
    static abstract Vector512<float> Invoke(Vector512<float> x);
}

/// <summary>A (float, float)→float element-wise operation: one scalar definition and its vector forms.</summary>
public interface IBinaryOp
{
    /// <summary>The scalar definition.</summary>
    static abstract float Invoke(float x, float y);
    /// <summary>128-bit form.</summary>
    static abstract Vector128<float> Invoke(Vector128<float> x, Vector128<float> y);
    /// <summary>256-bit form.</summary>
    static abstract Vector256<float> Invoke(Vector256<float> x, Vector256<float> y);
    /// <summary>512-bit form.</summary>
    static abstract Vector512<float> Invoke(Vector512<float> x, Vector512<float> y);
}

/// <summary>A float→float element-wise operation with parameters (alpha, bounds, ...) held in the struct.</summary>
public interface IParameterizedUnaryOp
{
    /// <summary>The scalar definition.</summary>
    float Invoke(float x);
    /// <summary>128-bit form.</summary>
    Vector128<float> Invoke(Vector128<float> x);
    /// <summary>256-bit form.</summary>
    Vector256<float> Invoke(Vector256<float> x);
    /// <summary>512-bit form.</summary>
    Vector512<float> Invoke(Vector512<float> x);
}

/// <summary>
/// The one place that owns element-wise loops: the widest accelerated vector does the bulk, narrower ones the
/// remainder, the scalar definition the last few elements (Vector512 → Vector256 → Vector128 → scalar).
/// The loops are compiled fully optimized on first use and never inlined into their callers: a tier-1 caller that
/// inlined one ran out of inlining budget before the op's vector math (e.g. Exp inside Sigmoid), which then ran as
/// separate tier-0 calls on every vector — 50–100× slower, in some processes and not others.
/// </summary>
public static class ElementwiseDriver
{
    /// <summary>y[i] = op(x[i]). <paramref name="y"/> may be <paramref name="x"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    public static void Unary<TOp>(ReadOnlySpan<float> x, Span<float> y) where TOp : IUnaryOp
    {
        if (y.Length < x.Length) throw new ArgumentException("destination too short");
        ref float xs = ref MemoryMarshal.GetReference(x);
        ref float ys = ref MemoryMarshal.GetReference(y);
        nuint n = (nuint)x.Length, i = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; i + 16 <= n; i += 16) TOp.Invoke(Vector512.LoadUnsafe(ref xs, i)).StoreUnsafe(ref ys, i);
        if (Vector256.IsHardwareAccelerated)
            for (; i + 8 <= n; i += 8) TOp.Invoke(Vector256.LoadUnsafe(ref xs, i)).StoreUnsafe(ref ys, i);
        if (Vector128.IsHardwareAccelerated)
            for (; i + 4 <= n; i += 4) TOp.Invoke(Vector128.LoadUnsafe(ref xs, i)).StoreUnsafe(ref ys, i);
        for (; i < n; i++) Unsafe.Add(ref ys, i) = TOp.Invoke(Unsafe.Add(ref xs, i));
    }

    /// <summary>y[i] = op(x[i]) for an op carrying parameters. <paramref name="y"/> may be <paramref name="x"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    public static void Unary<TOp>(TOp op, ReadOnlySpan<float> x, Span<float> y) where TOp : struct, IParameterizedUnaryOp
    {
        if (y.Length < x.Length) throw new ArgumentException("destination too short");
        ref float xs = ref MemoryMarshal.GetReference(x);
        ref float ys = ref MemoryMarshal.GetReference(y);
        nuint n = (nuint)x.Length, i = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; i + 16 <= n; i += 16) op.Invoke(Vector512.LoadUnsafe(ref xs, i)).StoreUnsafe(ref ys, i);
        if (Vector256.IsHardwareAccelerated)
            for (; i + 8 <= n; i += 8) op.Invoke(Vector256.LoadUnsafe(ref xs, i)).StoreUnsafe(ref ys, i);
        if (Vector128.IsHardwareAccelerated)
            for (; i + 4 <= n; i += 4) op.Invoke(Vector128.LoadUnsafe(ref xs, i)).StoreUnsafe(ref ys, i);
        for (; i < n; i++) Unsafe.Add(ref ys, i) = op.Invoke(Unsafe.Add(ref xs, i));
    }

    /// <summary>z[i] = op(x[i], y[i]).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    public static void Binary<TOp>(ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> z) where TOp : IBinaryOp
    {
        if (y.Length < x.Length || z.Length < x.Length) throw new ArgumentException("operand lengths differ");
        ref float xs = ref MemoryMarshal.GetReference(x);
        ref float ys = ref MemoryMarshal.GetReference(y);
        ref float zs = ref MemoryMarshal.GetReference(z);
        nuint n = (nuint)x.Length, i = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; i + 16 <= n; i += 16) TOp.Invoke(Vector512.LoadUnsafe(ref xs, i), Vector512.LoadUnsafe(ref ys, i)).StoreUnsafe(ref zs, i);
        if (Vector256.IsHardwareAccelerated)
            for (; i + 8 <= n; i += 8) TOp.Invoke(Vector256.LoadUnsafe(ref xs, i), Vector256.LoadUnsafe(ref ys, i)).StoreUnsafe(ref zs, i);
        if (Vector128.IsHardwareAccelerated)
            for (; i + 4 <= n; i += 4) TOp.Invoke(Vector128.LoadUnsafe(ref xs, i), Vector128.LoadUnsafe(ref ys, i)).StoreUnsafe(ref zs, i);
        for (; i < n; i++) Unsafe.Add(ref zs, i) = TOp.Invoke(Unsafe.Add(ref xs, i), Unsafe.Add(ref ys, i));
    }

    /// <summary>z[i] = op(x[i], y) with a scalar right operand.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    public static void BinaryScalarRight<TOp>(ReadOnlySpan<float> x, float y, Span<float> z) where TOp : IBinaryOp
    {
        if (z.Length < x.Length) throw new ArgumentException("destination too short");
        ref float xs = ref MemoryMarshal.GetReference(x);
        ref float zs = ref MemoryMarshal.GetReference(z);
        nuint n = (nuint)x.Length, i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var v = Vector512.Create(y);
            for (; i + 16 <= n; i += 16) TOp.Invoke(Vector512.LoadUnsafe(ref xs, i), v).StoreUnsafe(ref zs, i);
        }
        if (Vector256.IsHardwareAccelerated)
        {
            var v = Vector256.Create(y);
            for (; i + 8 <= n; i += 8) TOp.Invoke(Vector256.LoadUnsafe(ref xs, i), v).StoreUnsafe(ref zs, i);
        }
        if (Vector128.IsHardwareAccelerated)
        {
            var v = Vector128.Create(y);
            for (; i + 4 <= n; i += 4) TOp.Invoke(Vector128.LoadUnsafe(ref xs, i), v).StoreUnsafe(ref zs, i);
        }
        for (; i < n; i++) Unsafe.Add(ref zs, i) = TOp.Invoke(Unsafe.Add(ref xs, i), y);
    }

    /// <summary>z[i] = op(x, y[i]) with a scalar left operand.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    public static void BinaryScalarLeft<TOp>(float x, ReadOnlySpan<float> y, Span<float> z) where TOp : IBinaryOp
    {
        if (z.Length < y.Length) throw new ArgumentException("destination too short");
        ref float ys = ref MemoryMarshal.GetReference(y);
        ref float zs = ref MemoryMarshal.GetReference(z);
        nuint n = (nuint)y.Length, i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var v = Vector512.Create(x);
            for (; i + 16 <= n; i += 16) TOp.Invoke(v, Vector512.LoadUnsafe(ref ys, i)).StoreUnsafe(ref zs, i);
        }
        if (Vector256.IsHardwareAccelerated)
        {
            var v = Vector256.Create(x);
            for (; i + 8 <= n; i += 8) TOp.Invoke(v, Vector256.LoadUnsafe(ref ys, i)).StoreUnsafe(ref zs, i);
        }
        if (Vector128.IsHardwareAccelerated)
        {
            var v = Vector128.Create(x);
            for (; i + 4 <= n; i += 4) TOp.Invoke(v, Vector128.LoadUnsafe(ref ys, i)).StoreUnsafe(ref zs, i);
        }
        for (; i < n; i++) Unsafe.Add(ref zs, i) = TOp.Invoke(x, Unsafe.Add(ref ys, i));
    }
}
