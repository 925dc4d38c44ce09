using System.Numerics;
using System.Security.Cryptography;

namespace OnDevice.Federated.SecureAggregation;

/// <summary>
/// Shamir t-of-n secret sharing over the prime field GF(2^521 − 1): a secret (a 32-byte key or seed, read as an
/// unsigned big-endian integer) is the constant term of a random polynomial of degree t − 1; holder x gets f(x).
/// Any t shares give the secret by Lagrange interpolation at 0; fewer reveal nothing.
/// </summary>
public static class Shamir
{
    /// <summary>The field prime 2^521 − 1 (a Mersenne prime).</summary>
    public static readonly BigInteger Prime = (BigInteger.One << 521) - 1;

    /// <summary>Bytes of one encoded share (a field element, big-endian).</summary>
    public const int ShareBytes = 66;

    /// <summary>Splits <paramref name="secret"/> so that any <paramref name="threshold"/> of the holders <paramref name="xs"/> can rebuild it.</summary>
    public static BigInteger[] Split(ReadOnlySpan<byte> secret, int threshold, IReadOnlyList<uint> xs)
    {
        ArgumentNullException.ThrowIfNull(xs);
        if (threshold < 1 || threshold > xs.Count) throw new FederatedException($"threshold {threshold} must be between 1 and the number of holders ({xs.Count})");
        var s = new BigInteger(secret, isUnsigned: true, isBigEndian: true);
        if (s >= Prime) throw new FederatedException("secret does not fit in the field");
        var coef = new BigInteger[threshold];
        coef[0] = s;
        Span<byte> buf = stackalloc byte[ShareBytes];
        for (int i = 1; i < threshold; i++) coef[i] = RandomFieldElement(buf);
        var ys = new BigInteger[xs.Count];
        for (int h = 0; h < xs.Count; h++)
        {
            if (xs[h] == 0) throw new FederatedException("share holder ids must be non-zero");
            BigInteger x = xs[h], acc = BigInteger.Zero;
            for (int i = threshold - 1; i >= 0; i--) acc = (acc * x + coef[i]) % Prime;
            ys[h] = acc;
        }
        return ys;
    }

    private static BigInteger RandomFieldElement(Span<byte> buf)
    {
        while (true)
        {
            RandomNumberGenerator.Fill(buf);
            buf[0] &= 0x01; // 521 bits
            var v = new BigInteger(buf, isUnsigned: true, isBigEndian: true);
            if (v < Prime) return v;
        }
    }

    /// <summary>Lagrange coefficients λ_i at 0 for the holders <paramref name="xs"/> (distinct, non-zero).</summary>
    public static BigInteger[] LagrangeAtZero(IReadOnlyList<uint> xs)
    {
        ArgumentNullException.ThrowIfNull(xs);
        if (xs.Distinct().Count() != xs.Count || xs.Contains(0u)) throw new FederatedException("share holders must be distinct and non-zero");
        var lambda = new BigInteger[xs.Count];
        for (int i = 0; i < xs.Count; i++)
        {
            BigInteger num = BigInteger.One, den = BigInteger.One;
            for (int j = 0; j < xs.Count; j++)
            {
                if (j == i) continue;
                num = num * xs[j] % Prime;
                den = den * Mod((BigInteger)xs[j] - xs[i]) % Prime;
            }
            lambda[i] = num * BigInteger.ModPow(den, Prime - 2, Prime) % Prime;
        }
        return lambda;
    }

    /// <summary>Rebuilds the secret from shares <paramref name="ys"/> with coefficients from <see cref="LagrangeAtZero"/>.</summary>
    public static BigInteger Combine(IReadOnlyList<BigInteger> lambda, IReadOnlyList<BigInteger> ys)
    {
        ArgumentNullException.ThrowIfNull(lambda);
        ArgumentNullException.ThrowIfNull(ys);
        if (lambda.Count != ys.Count) throw new FederatedException("one share per Lagrange coefficient");
        var acc = BigInteger.Zero;
        for (int i = 0; i < ys.Count; i++) acc += lambda[i] * ys[i];
        return acc % Prime;
    }

    /// <summary>Rebuilds the secret from the shares of holders <paramref name="xs"/>.</summary>
    public static BigInteger Combine(IReadOnlyList<uint> xs, IReadOnlyList<BigInteger> ys) => Combine(LagrangeAtZero(xs), ys);

    /// <summary>A field element as <see cref="ShareBytes"/> big-endian bytes.</summary>
    public static void Encode(BigInteger v, Span<byte> dest)
    {
        dest[..ShareBytes].Clear();
        var n = v.GetByteCount(isUnsigned: true);
        if (v.Sign < 0 || n > ShareBytes) throw new FederatedException("value out of field range");
        v.TryWriteBytes(dest.Slice(ShareBytes - n, n), out _, isUnsigned: true, isBigEndian: true);
    }

    /// <summary>Reads a field element; throws <see cref="ProtocolException"/> when it is not below the prime.</summary>
    public static BigInteger Decode(ReadOnlySpan<byte> src)
    {
        var v = new BigInteger(src[..ShareBytes], isUnsigned: true, isBigEndian: true);
        if (v >= Prime) throw new ProtocolException("share is not a field element");
        return v;
    }

    /// <summary>The secret as 32 big-endian bytes; throws <see cref="ProtocolException"/> if it does not fit (wrong shares).</summary>
    public static byte[] ToSecret32(BigInteger v)
    {
        var n = v.GetByteCount(isUnsigned: true);
        if (n > 32) throw new ProtocolException("reconstructed secret is out of range (shares do not agree)");
        var b = new byte[32];
        v.TryWriteBytes(b.AsSpan(32 - n), out _, isUnsigned: true, isBigEndian: true);
        return b;
    }

    private static BigInteger Mod(BigInteger a) => ((a % Prime) + Prime) % Prime;
}
