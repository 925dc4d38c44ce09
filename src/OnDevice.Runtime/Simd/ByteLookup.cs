using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace OnDevice.Runtime.Simd;

/// <summary>
/// y[i] = table[x[i]] over bytes with a 256-entry table: with AVX-512 VBMI, 64 bytes per step (two
/// <c>vpermi2b</c> over the table's halves, blended on the index's top bit); otherwise the scalar loop, which is
/// the reference twin (results are identical). Source and destination may be the same buffer.
/// </summary>
public static unsafe class ByteLookup
{
    /// <summary>True when the 64-byte VBMI path runs on this machine.</summary>
    public static bool IsVectorized => Avx512Vbmi.IsSupported && Vector512.IsHardwareAccelerated;

    /// <summary>Maps <paramref name="n"/> bytes from <paramref name="x"/> to <paramref name="y"/> through <paramref name="table"/> (256 bytes).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Apply(byte* x, byte* y, nint n, byte* table)
    {
        nint i = 0;
        if (IsVectorized && n >= 64)
        {
            var t0 = Vector512.Load(table);
            var t1 = Vector512.Load(table + 64);
            var t2 = Vector512.Load(table + 128);
            var t3 = Vector512.Load(table + 192);
            for (; i + 64 <= n; i += 64)
            {
                var idx = Vector512.Load(x + i);
                var lo = Avx512Vbmi.PermuteVar64x8x2(t0, idx, t1);
                var hi = Avx512Vbmi.PermuteVar64x8x2(t2, idx, t3);
                var high = Vector512.LessThan(idx.AsSByte(), Vector512<sbyte>.Zero).AsByte();
                Vector512.ConditionalSelect(high, hi, lo).Store(y + i);
            }
            if (i < n)
            {
                // The last (overlapping) 64 bytes again, when source and destination differ; in place the tail is scalar.
                if (x != y)
                {
                    i = n - 64;
                    var idx = Vector512.Load(x + i);
                    var lo = Avx512Vbmi.PermuteVar64x8x2(t0, idx, t1);
                    var hi = Avx512Vbmi.PermuteVar64x8x2(t2, idx, t3);
                    var high = Vector512.LessThan(idx.AsSByte(), Vector512<sbyte>.Zero).AsByte();
                    Vector512.ConditionalSelect(high, hi, lo).Store(y + i);
                    return;
                }
            }
        }
        for (; i < n; i++) y[i] = table[x[i]];
    }

    /// <summary>The scalar twin of <see cref="Apply"/>.</summary>
    public static void ApplyScalar(ReadOnlySpan<byte> x, Span<byte> y, ReadOnlySpan<byte> table)
    {
        if (table.Length < 256) throw new ArgumentException("a byte lookup table needs 256 entries", nameof(table));
        if (y.Length < x.Length) throw new ArgumentException("output is shorter than input", nameof(y));
        for (int i = 0; i < x.Length; i++) y[i] = table[x[i]];
    }
}
