using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace OnDevice.Runtime.Simd;

/// <summary>Strided gathers used when packing convolution and pooling inputs.</summary>
internal static unsafe class Strided
{
    /// <summary>dst[i] = src[2i] for i in [0, count) (reads never go past src[2·(count−1)]).</summary>
    public static void Deinterleave2(float* src, float* dst, int count)
    {
        int i = 0;
        if (Avx512F.IsSupported)
        {
            var evens = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
            // A block of 16 outputs reads src[2i .. 2i + 31]; it stays within src[0 .. 2(count − 1)] while i + 16 < count.
            for (; i + 16 < count; i += 16)
                Avx512F.PermuteVar16x32x2(Vector512.Load(src + 2 * i), evens, Vector512.Load(src + 2 * i + 16)).Store(dst + i);
        }
        for (; i < count; i++) dst[i] = src[2 * (nint)i];
    }
}
