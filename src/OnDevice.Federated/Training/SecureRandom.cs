using System.Buffers.Binary;
using System.Security.Cryptography;

namespace OnDevice.Federated.Training;

/// <summary>
/// Randomness for privacy: uniform doubles and Gaussian samples (Box–Muller) drawn from the operating system's
/// cryptographically secure generator (<see cref="RandomNumberGenerator"/>), buffered. Not thread-safe; one per thread.
/// </summary>
public sealed class SecureRandom
{
    private readonly byte[] _buf = new byte[8 * 1024];
    private int _pos = 8 * 1024;
    private double _spare;
    private bool _hasSpare;

    /// <summary>A uniform double in [0, 1) with 53 random bits.</summary>
    public double NextDouble()
    {
        if (_pos + 8 > _buf.Length) { RandomNumberGenerator.Fill(_buf); _pos = 0; }
        var v = BinaryPrimitives.ReadUInt64LittleEndian(_buf.AsSpan(_pos));
        _pos += 8;
        return (v >> 11) * (1.0 / (1UL << 53));
    }

    /// <summary>A standard normal sample (mean 0, variance 1).</summary>
    public double NextGaussian()
    {
        if (_hasSpare) { _hasSpare = false; return _spare; }
        double u1;
        do u1 = NextDouble(); while (u1 <= 0);
        var u2 = NextDouble();
        var r = Math.Sqrt(-2 * Math.Log(u1));
        _spare = r * Math.Sin(2 * Math.PI * u2);
        _hasSpare = true;
        return r * Math.Cos(2 * Math.PI * u2);
    }

    /// <summary>Adds N(0, <paramref name="std"/>²) independently to every entry.</summary>
    public void AddGaussian(Span<float> v, double std)
    {
        if (std == 0) return;
        for (int i = 0; i < v.Length; i++) v[i] += (float)(std * NextGaussian());
    }

    /// <summary>True with probability <paramref name="p"/>.</summary>
    public bool Bernoulli(double p) => NextDouble() < p;
}
