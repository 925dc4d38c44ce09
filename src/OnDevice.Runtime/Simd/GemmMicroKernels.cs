using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace OnDevice.Runtime.Simd;

/// <summary>A row count known to the JIT (each instantiation of a micro-kernel is compiled for one count).</summary>
internal interface IRows
{
    /// <summary>Rows of C the kernel computes.</summary>
    static abstract int Rows { get; }
}

#pragma warning disable CS1591 // row-count markers
internal struct R1 : IRows { public static int Rows => 1; }
internal struct R2 : IRows { public static int Rows => 2; }
internal struct R3 : IRows { public static int Rows => 3; }
internal struct R4 : IRows { public static int Rows => 4; }
internal struct R5 : IRows { public static int Rows => 5; }
internal struct R6 : IRows { public static int Rows => 6; }
internal struct R7 : IRows { public static int Rows => 7; }
internal struct R8 : IRows { public static int Rows => 8; }
internal struct R9 : IRows { public static int Rows => 9; }
internal struct R10 : IRows { public static int Rows => 10; }
internal struct R11 : IRows { public static int Rows => 11; }
internal struct R12 : IRows { public static int Rows => 12; }
#pragma warning restore CS1591

/// <summary>How a micro-kernel finds row k of its B panel.</summary>
internal unsafe interface IBRows
{
    /// <summary>Address of B[k, 0] for the panel starting at <paramref name="b"/>.</summary>
    static abstract float* Row(float* b, int* offsets, nint k, nint nr);
}

/// <summary>Packed panel: rows NR floats apart.</summary>
internal unsafe struct PackedRows : IBRows
{
    public static float* Row(float* b, int* offsets, nint k, nint nr) => b + k * nr;
}

/// <summary>Indirect: row k at <c>b + offsets[k]</c> (implicit-GEMM convolution over a padded image).</summary>
internal unsafe struct IndirectRows : IBRows
{
    public static float* Row(float* b, int* offsets, nint k, nint nr) => b + offsets[k];
}

/// <summary>
/// GEMM micro-kernels: C[r, 0..NR) (+)= Σ_k A[r, k]·B[k, 0..NR) for up to MR rows, with A packed MR values per k and
/// B packed NR values per k. Flags: <see cref="LoadC"/> adds the existing C; <see cref="Epilogue"/> adds the bias and
/// applies the activation (only on the last K block). One kernel per SIMD width; the row count is a type parameter so
/// each instantiation keeps exactly its accumulators in registers.
/// </summary>
internal static unsafe class GemmMicroKernels
{
    public const int LoadC = 1;
    public const int Epilogue = 2;

    /// <summary>Rows and columns of the AVX-512 tile (12 × 32: 24 accumulators of 32 registers).</summary>
    public const int MR512 = 12, NR512 = 32;
    /// <summary>Rows and columns of the 256-bit tile (6 × 16: 12 accumulators of 16 registers).</summary>
    public const int MR256 = 6, NR256 = 16;
    /// <summary>Rows and columns of the 128-bit tile.</summary>
    public const int MR128 = 6, NR128 = 8;
    /// <summary>Rows and columns of the scalar tile.</summary>
    public const int MRScalar = 4, NRScalar = 4;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Kernel512<TR, TB>(float* a, float* b, int* offsets, nint kc, float* c, nint ldc, int flags, float* biasRow, float* biasCol, FusedActivation act)
        where TR : struct, IRows where TB : struct, IBRows
    {
        Vector512<float> c0a = default, c0b = default;
        Vector512<float> c1a = default, c1b = default;
        Vector512<float> c2a = default, c2b = default;
        Vector512<float> c3a = default, c3b = default;
        Vector512<float> c4a = default, c4b = default;
        Vector512<float> c5a = default, c5b = default;
        Vector512<float> c6a = default, c6b = default;
        Vector512<float> c7a = default, c7b = default;
        Vector512<float> c8a = default, c8b = default;
        Vector512<float> c9a = default, c9b = default;
        Vector512<float> c10a = default, c10b = default;
        Vector512<float> c11a = default, c11b = default;
        for (nint k = 0; k < kc; k++)
        {
            float* bk = TB.Row(b, offsets, k, NR512);
            var b0 = Vector512.Load(bk);
            var b1 = Vector512.Load(bk + 16);
            { var av = Vector512.Create(a[0]); c0a = Vector512.FusedMultiplyAdd(av, b0, c0a); c0b = Vector512.FusedMultiplyAdd(av, b1, c0b); }
            if (TR.Rows > 1) { var av = Vector512.Create(a[1]); c1a = Vector512.FusedMultiplyAdd(av, b0, c1a); c1b = Vector512.FusedMultiplyAdd(av, b1, c1b); }
            if (TR.Rows > 2) { var av = Vector512.Create(a[2]); c2a = Vector512.FusedMultiplyAdd(av, b0, c2a); c2b = Vector512.FusedMultiplyAdd(av, b1, c2b); }
            if (TR.Rows > 3) { var av = Vector512.Create(a[3]); c3a = Vector512.FusedMultiplyAdd(av, b0, c3a); c3b = Vector512.FusedMultiplyAdd(av, b1, c3b); }
            if (TR.Rows > 4) { var av = Vector512.Create(a[4]); c4a = Vector512.FusedMultiplyAdd(av, b0, c4a); c4b = Vector512.FusedMultiplyAdd(av, b1, c4b); }
            if (TR.Rows > 5) { var av = Vector512.Create(a[5]); c5a = Vector512.FusedMultiplyAdd(av, b0, c5a); c5b = Vector512.FusedMultiplyAdd(av, b1, c5b); }
            if (TR.Rows > 6) { var av = Vector512.Create(a[6]); c6a = Vector512.FusedMultiplyAdd(av, b0, c6a); c6b = Vector512.FusedMultiplyAdd(av, b1, c6b); }
            if (TR.Rows > 7) { var av = Vector512.Create(a[7]); c7a = Vector512.FusedMultiplyAdd(av, b0, c7a); c7b = Vector512.FusedMultiplyAdd(av, b1, c7b); }
            if (TR.Rows > 8) { var av = Vector512.Create(a[8]); c8a = Vector512.FusedMultiplyAdd(av, b0, c8a); c8b = Vector512.FusedMultiplyAdd(av, b1, c8b); }
            if (TR.Rows > 9) { var av = Vector512.Create(a[9]); c9a = Vector512.FusedMultiplyAdd(av, b0, c9a); c9b = Vector512.FusedMultiplyAdd(av, b1, c9b); }
            if (TR.Rows > 10) { var av = Vector512.Create(a[10]); c10a = Vector512.FusedMultiplyAdd(av, b0, c10a); c10b = Vector512.FusedMultiplyAdd(av, b1, c10b); }
            if (TR.Rows > 11) { var av = Vector512.Create(a[11]); c11a = Vector512.FusedMultiplyAdd(av, b0, c11a); c11b = Vector512.FusedMultiplyAdd(av, b1, c11b); }
            a += MR512;
        }
        Store(c0a, c0b, c + 0 * ldc, flags, biasRow, 0, biasCol, act);
        if (TR.Rows > 1) Store(c1a, c1b, c + 1 * ldc, flags, biasRow, 1, biasCol, act);
        if (TR.Rows > 2) Store(c2a, c2b, c + 2 * ldc, flags, biasRow, 2, biasCol, act);
        if (TR.Rows > 3) Store(c3a, c3b, c + 3 * ldc, flags, biasRow, 3, biasCol, act);
        if (TR.Rows > 4) Store(c4a, c4b, c + 4 * ldc, flags, biasRow, 4, biasCol, act);
        if (TR.Rows > 5) Store(c5a, c5b, c + 5 * ldc, flags, biasRow, 5, biasCol, act);
        if (TR.Rows > 6) Store(c6a, c6b, c + 6 * ldc, flags, biasRow, 6, biasCol, act);
        if (TR.Rows > 7) Store(c7a, c7b, c + 7 * ldc, flags, biasRow, 7, biasCol, act);
        if (TR.Rows > 8) Store(c8a, c8b, c + 8 * ldc, flags, biasRow, 8, biasCol, act);
        if (TR.Rows > 9) Store(c9a, c9b, c + 9 * ldc, flags, biasRow, 9, biasCol, act);
        if (TR.Rows > 10) Store(c10a, c10b, c + 10 * ldc, flags, biasRow, 10, biasCol, act);
        if (TR.Rows > 11) Store(c11a, c11b, c + 11 * ldc, flags, biasRow, 11, biasCol, act);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(Vector512<float> x0, Vector512<float> x1, float* c, int flags, float* biasRow, int r, float* biasCol, FusedActivation act)
    {
        if ((flags & LoadC) != 0)
        {
            x0 += Vector512.Load(c);
            x1 += Vector512.Load(c + 16);
        }
        if ((flags & Epilogue) != 0)
        {
            if (biasRow != null)
            {
                var bb = Vector512.Create(biasRow[r]);
                x0 += bb;
                x1 += bb;
            }
            if (biasCol != null)
            {
                x0 += Vector512.Load(biasCol);
                x1 += Vector512.Load(biasCol + 16);
            }
            x0 = act.Apply(x0);
            x1 = act.Apply(x1);
        }
        x0.Store(c);
        x1.Store(c + 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Kernel256<TR, TB>(float* a, float* b, int* offsets, nint kc, float* c, nint ldc, int flags, float* biasRow, float* biasCol, FusedActivation act)
        where TR : struct, IRows where TB : struct, IBRows
    {
        Vector256<float> c0a = default, c0b = default;
        Vector256<float> c1a = default, c1b = default;
        Vector256<float> c2a = default, c2b = default;
        Vector256<float> c3a = default, c3b = default;
        Vector256<float> c4a = default, c4b = default;
        Vector256<float> c5a = default, c5b = default;
        for (nint k = 0; k < kc; k++)
        {
            float* bk = TB.Row(b, offsets, k, NR256);
            var b0 = Vector256.Load(bk);
            var b1 = Vector256.Load(bk + 8);
            { var av = Vector256.Create(a[0]); c0a = Vector256.MultiplyAddEstimate(av, b0, c0a); c0b = Vector256.MultiplyAddEstimate(av, b1, c0b); }
            if (TR.Rows > 1) { var av = Vector256.Create(a[1]); c1a = Vector256.MultiplyAddEstimate(av, b0, c1a); c1b = Vector256.MultiplyAddEstimate(av, b1, c1b); }
            if (TR.Rows > 2) { var av = Vector256.Create(a[2]); c2a = Vector256.MultiplyAddEstimate(av, b0, c2a); c2b = Vector256.MultiplyAddEstimate(av, b1, c2b); }
            if (TR.Rows > 3) { var av = Vector256.Create(a[3]); c3a = Vector256.MultiplyAddEstimate(av, b0, c3a); c3b = Vector256.MultiplyAddEstimate(av, b1, c3b); }
            if (TR.Rows > 4) { var av = Vector256.Create(a[4]); c4a = Vector256.MultiplyAddEstimate(av, b0, c4a); c4b = Vector256.MultiplyAddEstimate(av, b1, c4b); }
            if (TR.Rows > 5) { var av = Vector256.Create(a[5]); c5a = Vector256.MultiplyAddEstimate(av, b0, c5a); c5b = Vector256.MultiplyAddEstimate(av, b1, c5b); }
            a += MR256;
        }
        Store(c0a, c0b, c + 0 * ldc, flags, biasRow, 0, biasCol, act);
        if (TR.Rows > 1) Store(c1a, c1b, c + 1 * ldc, flags, biasRow, 1, biasCol, act);
        if (TR.Rows > 2) Store(c2a, c2b, c + 2 * ldc, flags, biasRow, 2, biasCol, act);
        if (TR.Rows > 3) Store(c3a, c3b, c + 3 * ldc, flags, biasRow, 3, biasCol, act);
        if (TR.Rows > 4) Store(c4a, c4b, c + 4 * ldc, flags, biasRow, 4, biasCol, act);
        if (TR.Rows > 5) Store(c5a, c5b, c + 5 * ldc, flags, biasRow, 5, biasCol, act);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(Vector256<float> x0, Vector256<float> x1, float* c, int flags, float* biasRow, int r, float* biasCol, FusedActivation act)
    {
        if ((flags & LoadC) != 0)
        {
            x0 += Vector256.Load(c);
            x1 += Vector256.Load(c + 8);
        }
        if ((flags & Epilogue) != 0)
        {
            if (biasRow != null)
            {
                var bb = Vector256.Create(biasRow[r]);
                x0 += bb;
                x1 += bb;
            }
            if (biasCol != null)
            {
                x0 += Vector256.Load(biasCol);
                x1 += Vector256.Load(biasCol + 8);
            }
            x0 = act.Apply(x0);
            x1 = act.Apply(x1);
        }
        x0.Store(c);
        x1.Store(c + 8);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Kernel128<TR, TB>(float* a, float* b, int* offsets, nint kc, float* c, nint ldc, int flags, float* biasRow, float* biasCol, FusedActivation act)
        where TR : struct, IRows where TB : struct, IBRows
    {
        Vector128<float> c0a = default, c0b = default;
        Vector128<float> c1a = default, c1b = default;
        Vector128<float> c2a = default, c2b = default;
        Vector128<float> c3a = default, c3b = default;
        Vector128<float> c4a = default, c4b = default;
        Vector128<float> c5a = default, c5b = default;
        for (nint k = 0; k < kc; k++)
        {
            float* bk = TB.Row(b, offsets, k, NR128);
            var b0 = Vector128.Load(bk);
            var b1 = Vector128.Load(bk + 4);
            { var av = Vector128.Create(a[0]); c0a = Vector128.MultiplyAddEstimate(av, b0, c0a); c0b = Vector128.MultiplyAddEstimate(av, b1, c0b); }
            if (TR.Rows > 1) { var av = Vector128.Create(a[1]); c1a = Vector128.MultiplyAddEstimate(av, b0, c1a); c1b = Vector128.MultiplyAddEstimate(av, b1, c1b); }
            if (TR.Rows > 2) { var av = Vector128.Create(a[2]); c2a = Vector128.MultiplyAddEstimate(av, b0, c2a); c2b = Vector128.MultiplyAddEstimate(av, b1, c2b); }
            if (TR.Rows > 3) { var av = Vector128.Create(a[3]); c3a = Vector128.MultiplyAddEstimate(av, b0, c3a); c3b = Vector128.MultiplyAddEstimate(av, b1, c3b); }
            if (TR.Rows > 4) { var av = Vector128.Create(a[4]); c4a = Vector128.MultiplyAddEstimate(av, b0, c4a); c4b = Vector128.MultiplyAddEstimate(av, b1, c4b); }
            if (TR.Rows > 5) { var av = Vector128.Create(a[5]); c5a = Vector128.MultiplyAddEstimate(av, b0, c5a); c5b = Vector128.MultiplyAddEstimate(av, b1, c5b); }
            a += MR128;
        }
        Store(c0a, c0b, c + 0 * ldc, flags, biasRow, 0, biasCol, act);
        if (TR.Rows > 1) Store(c1a, c1b, c + 1 * ldc, flags, biasRow, 1, biasCol, act);
        if (TR.Rows > 2) Store(c2a, c2b, c + 2 * ldc, flags, biasRow, 2, biasCol, act);
        if (TR.Rows > 3) Store(c3a, c3b, c + 3 * ldc, flags, biasRow, 3, biasCol, act);
        if (TR.Rows > 4) Store(c4a, c4b, c + 4 * ldc, flags, biasRow, 4, biasCol, act);
        if (TR.Rows > 5) Store(c5a, c5b, c + 5 * ldc, flags, biasRow, 5, biasCol, act);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(Vector128<float> x0, Vector128<float> x1, float* c, int flags, float* biasRow, int r, float* biasCol, FusedActivation act)
    {
        if ((flags & LoadC) != 0)
        {
            x0 += Vector128.Load(c);
            x1 += Vector128.Load(c + 4);
        }
        if ((flags & Epilogue) != 0)
        {
            if (biasRow != null)
            {
                var bb = Vector128.Create(biasRow[r]);
                x0 += bb;
                x1 += bb;
            }
            if (biasCol != null)
            {
                x0 += Vector128.Load(biasCol);
                x1 += Vector128.Load(biasCol + 4);
            }
            x0 = act.Apply(x0);
            x1 = act.Apply(x1);
        }
        x0.Store(c);
        x1.Store(c + 4);
    }

    /// <summary>The portable tile: MRScalar × NRScalar with plain floats.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void KernelScalar<TB>(int rows, float* a, float* b, int* offsets, nint kc, float* c, nint ldc, int flags, float* biasRow, float* biasCol, FusedActivation act)
        where TB : struct, IBRows
    {
        float* acc = stackalloc float[MRScalar * NRScalar];
        for (int i = 0; i < MRScalar * NRScalar; i++) acc[i] = 0;
        for (nint k = 0; k < kc; k++)
        {
            float* bk = TB.Row(b, offsets, k, NRScalar);
            float b0 = bk[0], b1 = bk[1], b2 = bk[2], b3 = bk[3];
            for (int r = 0; r < rows; r++)
            {
                float av = a[r];
                float* row = acc + r * NRScalar;
                row[0] += av * b0;
                row[1] += av * b1;
                row[2] += av * b2;
                row[3] += av * b3;
            }
            a += MRScalar;
        }
        for (int r = 0; r < rows; r++)
        {
            float* cr = c + r * ldc;
            for (int j = 0; j < NRScalar; j++)
            {
                float x = acc[r * NRScalar + j];
                if ((flags & LoadC) != 0) x += cr[j];
                if ((flags & Epilogue) != 0)
                {
                    if (biasRow != null) x += biasRow[r];
                    if (biasCol != null) x += biasCol[j];
                    x = act.Apply(x);
                }
                cr[j] = x;
            }
        }
    }
}
