using System.Buffers.Binary;
using System.Security.Cryptography;

namespace OnDevice.Federated.SecureAggregation;

/// <summary>Message types of the protocol.</summary>
internal enum MessageType : byte
{
    AdvertiseKeys = 1,
    KeyList = 2,
    ShareKeys = 3,
    SharesForClient = 4,
    MaskedInput = 5,
    Survivors = 6,
    Unmask = 7,
}

/// <summary>Binary framing: 'S', version 1, type, 16-byte round id, sender id (u32 LE; 0 = server), body.</summary>
internal static class Wire
{
    public const int HeaderBytes = 23;
    public const int PublicKeyBytes = 65;
    public const int SharePlainBytes = 4 + 4 + Shamir.ShareBytes * 2;
    public const int ShareCipherBytes = 12 + SharePlainBytes + 16;

    public static byte[] Start(MessageType type, byte[] roundId, uint sender, int bodyBytes, out int offset)
    {
        var m = new byte[HeaderBytes + bodyBytes];
        m[0] = (byte)'S';
        m[1] = 1;
        m[2] = (byte)type;
        roundId.CopyTo(m, 3);
        BinaryPrimitives.WriteUInt32LittleEndian(m.AsSpan(19), sender);
        offset = HeaderBytes;
        return m;
    }

    public static uint ReadHeader(byte[] m, MessageType expected, byte[] roundId, int maxBytes)
    {
        if (m is null) throw new ProtocolException("empty message");
        if (m.Length > maxBytes) throw new ProtocolException($"message of {m.Length} bytes exceeds the {maxBytes}-byte limit for {expected}");
        if (m.Length < HeaderBytes) throw new ProtocolException("message shorter than its header");
        if (m[0] != (byte)'S' || m[1] != 1) throw new ProtocolException("not a secure-aggregation message (bad magic or version)");
        if (m[2] != (byte)expected) throw new ProtocolException($"expected a {expected} message, got type {m[2]}");
        if (!m.AsSpan(3, 16).SequenceEqual(roundId)) throw new ProtocolException("message belongs to another round");
        return BinaryPrimitives.ReadUInt32LittleEndian(m.AsSpan(19));
    }

    public static MessageType PeekType(byte[] m) =>
        m is { Length: >= HeaderBytes } && m[0] == (byte)'S' && m[1] == 1 ? (MessageType)m[2] : throw new ProtocolException("not a secure-aggregation message");

    public static byte[] ExportPublic(ECDiffieHellman k)
    {
        var p = k.ExportParameters(false);
        var b = new byte[PublicKeyBytes];
        b[0] = 4;
        p.Q.X!.CopyTo(b, 1);
        p.Q.Y!.CopyTo(b, 33);
        return b;
    }

    public static ECDiffieHellman ImportPublic(ReadOnlySpan<byte> b)
    {
        if (b.Length != PublicKeyBytes || b[0] != 4) throw new ProtocolException("public key is not an uncompressed P-256 point");
        try
        {
            return ECDiffieHellman.Create(new ECParameters { Curve = ECCurve.NamedCurves.nistP256, Q = new ECPoint { X = b.Slice(1, 32).ToArray(), Y = b.Slice(33, 32).ToArray() } });
        }
        catch (CryptographicException e)
        {
            throw new ProtocolException($"public key is not a valid P-256 point ({e.Message})");
        }
    }

    /// <summary>HKDF-SHA256 of the ECDH x-coordinate, salted with the round id and labelled by purpose.</summary>
    public static byte[] Agree(ECDiffieHellman mine, ECDiffieHellman theirs, byte[] roundId, string purpose)
    {
        var raw = mine.DeriveRawSecretAgreement(theirs.PublicKey);
        try
        {
            return HKDF.DeriveKey(HashAlgorithmName.SHA256, raw, 32, roundId, System.Text.Encoding.ASCII.GetBytes("ondevice-secagg/" + purpose));
        }
        finally { CryptographicOperations.ZeroMemory(raw); }
    }

    public static byte[] SeedCommitment(byte[] roundId, uint id, ReadOnlySpan<byte> seed)
    {
        Span<byte> buf = stackalloc byte[16 + 4 + 32];
        roundId.CopyTo(buf);
        BinaryPrimitives.WriteUInt32LittleEndian(buf[16..], id);
        seed.CopyTo(buf[20..]);
        return SHA256.HashData(buf);
    }

    public static void ShareAad(Span<byte> aad, byte[] roundId, uint from, uint to)
    {
        roundId.CopyTo(aad);
        BinaryPrimitives.WriteUInt32LittleEndian(aad[16..], from);
        BinaryPrimitives.WriteUInt32LittleEndian(aad[20..], to);
    }

    public static void WriteWord(Span<byte> dst, ulong v, int wordBytes)
    {
        for (int i = 0; i < wordBytes; i++) dst[i] = (byte)(v >> (8 * i));
    }

    public static ulong ReadWord(ReadOnlySpan<byte> src, int wordBytes)
    {
        ulong v = 0;
        for (int i = 0; i < wordBytes; i++) v |= (ulong)src[i] << (8 * i);
        return v;
    }
}

/// <summary>Bounds-checked little-endian reader that throws <see cref="ProtocolException"/> on truncation.</summary>
internal ref struct WireReader(ReadOnlySpan<byte> data, int offset)
{
    private readonly ReadOnlySpan<byte> _data = data;
    private int _pos = offset;

    public readonly int Remaining => _data.Length - _pos;

    public ReadOnlySpan<byte> Bytes(int n)
    {
        if (n < 0 || n > Remaining) throw new ProtocolException("message truncated");
        var s = _data.Slice(_pos, n);
        _pos += n;
        return s;
    }

    public uint U32() => BinaryPrimitives.ReadUInt32LittleEndian(Bytes(4));

    public byte U8() => Bytes(1)[0];

    public int Count(int max)
    {
        var c = U32();
        if (c > (uint)max) throw new ProtocolException($"count {c} exceeds the limit {max}");
        return (int)c;
    }

    public readonly void End()
    {
        if (Remaining != 0) throw new ProtocolException($"{Remaining} unexpected trailing bytes");
    }
}
