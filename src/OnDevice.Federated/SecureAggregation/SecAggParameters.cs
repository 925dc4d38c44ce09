namespace OnDevice.Federated.SecureAggregation;

/// <summary>The public parameters of one secure-aggregation round, known to the server and every client.</summary>
public sealed class SecAggParameters
{
    /// <summary>Creates and checks the parameters.</summary>
    /// <param name="roundId">16 random bytes naming this round (bound into every message, key derivation and ciphertext).</param>
    /// <param name="threshold">t: shares needed to rebuild a secret, and the fewest clients that may finish a phase; more than half of <paramref name="maxClients"/>.</param>
    /// <param name="maxClients">n: the most clients that may advertise keys.</param>
    /// <param name="vectorLength">Entries in each client's input vector.</param>
    /// <param name="bits">k: inputs and the sum live in Z_{2^k}.</param>
    public SecAggParameters(byte[] roundId, int threshold, int maxClients, int vectorLength, int bits)
    {
        ArgumentNullException.ThrowIfNull(roundId);
        if (roundId.Length != 16) throw new FederatedException($"the round id must be 16 bytes, got {roundId.Length}");
        if (maxClients < 2 || maxClients > 100_000) throw new FederatedException($"the number of clients must be 2..100000, got {maxClients}");
        if (threshold <= maxClients / 2 || threshold > maxClients)
            throw new FederatedException($"the threshold t must satisfy n/2 < t ≤ n (n = {maxClients}), got {threshold}");
        if (vectorLength < 1 || vectorLength > 50_000_000) throw new FederatedException($"the vector length must be 1..50,000,000, got {vectorLength}");
        if (bits < 8 || bits > 64) throw new FederatedException($"bits must be 8..64, got {bits}");
        RoundId = (byte[])roundId.Clone();
        Threshold = threshold;
        MaxClients = maxClients;
        VectorLength = vectorLength;
        Bits = bits;
    }

    /// <summary>16 bytes naming the round.</summary>
    public byte[] RoundId { get; }

    /// <summary>t.</summary>
    public int Threshold { get; }

    /// <summary>n.</summary>
    public int MaxClients { get; }

    /// <summary>Entries per vector.</summary>
    public int VectorLength { get; }

    /// <summary>k (values mod 2^k).</summary>
    public int Bits { get; }

    /// <summary>2^k − 1.</summary>
    public ulong Mask => Bits == 64 ? ulong.MaxValue : (1UL << Bits) - 1;

    /// <summary>Bytes per entry on the wire: ⌈k/8⌉.</summary>
    public int WordBytes => (Bits + 7) / 8;

    /// <summary>A fresh round id.</summary>
    public static byte[] NewRoundId() => System.Security.Cryptography.RandomNumberGenerator.GetBytes(16);
}

/// <summary>Which secret of a client an unmasking share belongs to.</summary>
public enum ShareKind : byte
{
    /// <summary>The self-mask seed b_u (released only for clients whose masked input is in the sum).</summary>
    SelfMaskSeed = 1,

    /// <summary>The mask secret key s_u^SK (released only for clients that dropped out).</summary>
    MaskKey = 2,
}
