using System.Buffers.Binary;
using System.Security.Cryptography;

namespace OnDevice.Federated.SecureAggregation;

/// <summary>
/// The mask PRG: AES-256 in counter mode keyed by a 32-byte seed (zero IV, 128-bit big-endian counter), its
/// keystream read as little-endian 32-bit (k ≤ 32) or 64-bit words reduced mod 2^k.
/// </summary>
public static class MaskGenerator
{
    private const int ChunkBlocks = 4096;

    /// <summary>Adds (<paramref name="sign"/> = +1) or subtracts (−1) PRG(<paramref name="seed"/>) to <paramref name="acc"/> mod 2^<paramref name="bits"/>.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    public static void Apply(ReadOnlySpan<byte> seed, Span<ulong> acc, int bits, int sign)
    {
        if (seed.Length != 32) throw new FederatedException("mask seeds are 32 bytes");
        if (bits < 1 || bits > 64) throw new FederatedException($"bits must be 1..64, got {bits}");
        ulong mask = bits == 64 ? ulong.MaxValue : (1UL << bits) - 1;
        int wordBytes = bits <= 32 ? 4 : 8;
        using var aes = Aes.Create();
        aes.Key = seed.ToArray();
        var counters = new byte[ChunkBlocks * 16]; // high 64 bits of every counter stay zero
        var stream = new byte[ChunkBlocks * 16];
        long block = 0;
        int done = 0;
        while (done < acc.Length)
        {
            int wordsLeft = acc.Length - done;
            int blocks = Math.Min(ChunkBlocks, (wordsLeft * wordBytes + 15) / 16);
            for (int b = 0; b < blocks; b++) BinaryPrimitives.WriteInt64BigEndian(counters.AsSpan(b * 16 + 8, 8), block + b);
            block += blocks;
            aes.EncryptEcb(counters.AsSpan(0, blocks * 16), stream.AsSpan(0, blocks * 16), PaddingMode.None);
            int words = Math.Min(wordsLeft, blocks * 16 / wordBytes);
            var dst = acc.Slice(done, words);
            if (wordBytes == 4)
            {
                var w = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, uint>(stream.AsSpan(0, words * 4));
                if (!BitConverter.IsLittleEndian) for (int i = 0; i < words; i++) w[i] = BinaryPrimitives.ReverseEndianness(w[i]);
                if (sign > 0) for (int i = 0; i < words; i++) dst[i] = (dst[i] + w[i]) & mask;
                else for (int i = 0; i < words; i++) dst[i] = (dst[i] - w[i]) & mask;
            }
            else
            {
                var w = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ulong>(stream.AsSpan(0, words * 8));
                if (!BitConverter.IsLittleEndian) for (int i = 0; i < words; i++) w[i] = BinaryPrimitives.ReverseEndianness(w[i]);
                if (sign > 0) for (int i = 0; i < words; i++) dst[i] = (dst[i] + w[i]) & mask;
                else for (int i = 0; i < words; i++) dst[i] = (dst[i] - w[i]) & mask;
            }
            done += words;
        }
    }

    /// <summary>PRG(<paramref name="seed"/>) as <paramref name="length"/> words mod 2^<paramref name="bits"/>.</summary>
    public static ulong[] Generate(ReadOnlySpan<byte> seed, int length, int bits)
    {
        var v = new ulong[length];
        Apply(seed, v, bits, +1);
        return v;
    }
}
