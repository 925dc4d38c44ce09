using System.Buffers.Binary;
using System.Numerics;
using System.Security.Cryptography;

namespace OnDevice.Federated.SecureAggregation;

/// <summary>
/// One client of the Bonawitz et al. 2017 secure-aggregation protocol, as a message-passing state machine:
/// <see cref="AdvertiseKeys"/> → <see cref="ShareKeys"/> → <see cref="MaskedInput"/> → <see cref="Unmask"/>, each taking
/// the server's previous message (bytes) and returning the client's next one. A server message that is malformed,
/// inconsistent or below the threshold makes the client abort (<see cref="ProtocolException"/>) without revealing anything.
/// </summary>
public sealed class SecAggClient : IDisposable
{
    private enum State { New, Advertised, Shared, Masked, Done, Aborted }

    private readonly SecAggParameters _p;
    private readonly ECDiffieHellman _cKey = ECDiffieHellman.Create(ECCurve.NamedCurves.nistP256);
    private readonly ECDiffieHellman _sKey = ECDiffieHellman.Create(ECCurve.NamedCurves.nistP256);
    private State _state = State.New;
    private Dictionary<uint, (byte[] C, byte[] S)> _u1 = [];
    private HashSet<uint> _u2 = [];
    private readonly byte[] _selfSeed = new byte[32];
    private readonly Dictionary<uint, (BigInteger Key, BigInteger Seed)> _held = [];
    private readonly Dictionary<uint, byte[]> _shareKeys = []; // AES-GCM key shared with each peer (derived once)

    /// <summary>A client with id <paramref name="id"/> (non-zero, unique in the round; also its Shamir x-coordinate).</summary>
    public SecAggClient(SecAggParameters parameters, uint id)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (id == 0) throw new FederatedException("client ids must be non-zero");
        _p = parameters;
        Id = id;
    }

    /// <summary>This client's id.</summary>
    public uint Id { get; }

    /// <summary>Round 0: the client's two public keys (c for encrypting shares, s for pairwise masks).</summary>
    public byte[] AdvertiseKeys()
    {
        Expect(State.New);
        var m = Wire.Start(MessageType.AdvertiseKeys, _p.RoundId, Id, 2 * Wire.PublicKeyBytes, out var o);
        Wire.ExportPublic(_cKey).CopyTo(m, o);
        Wire.ExportPublic(_sKey).CopyTo(m, o + Wire.PublicKeyBytes);
        _state = State.Advertised;
        return m;
    }

    /// <summary>Round 1: given the server's key list, Shamir-shares s^SK and a fresh self-mask seed b, encrypted to each peer.</summary>
    public byte[] ShareKeys(byte[] keyList)
    {
        Expect(State.Advertised);
        try
        {
            var max = Wire.HeaderBytes + 4 + _p.MaxClients * (4 + 2 * Wire.PublicKeyBytes);
            Wire.ReadHeader(keyList, MessageType.KeyList, _p.RoundId, max);
            var r = new WireReader(keyList, Wire.HeaderBytes);
            int n = r.Count(_p.MaxClients);
            var u1 = new Dictionary<uint, (byte[] C, byte[] S)>();
            var seenKeys = new HashSet<string>();
            for (int i = 0; i < n; i++)
            {
                var id = r.U32();
                var c = r.Bytes(Wire.PublicKeyBytes).ToArray();
                var s = r.Bytes(Wire.PublicKeyBytes).ToArray();
                if (id == 0 || !u1.TryAdd(id, (c, s))) throw new ProtocolException("key list has a zero or repeated client id");
                if (!seenKeys.Add(Convert.ToHexString(c)) || !seenKeys.Add(Convert.ToHexString(s))) throw new ProtocolException("key list repeats a public key");
            }
            r.End();
            if (n < _p.Threshold) throw new ProtocolException($"only {n} clients advertised keys, fewer than t = {_p.Threshold}");
            if (!u1.TryGetValue(Id, out var mine) || !mine.C.AsSpan().SequenceEqual(Wire.ExportPublic(_cKey)) || !mine.S.AsSpan().SequenceEqual(Wire.ExportPublic(_sKey)))
                throw new ProtocolException("key list does not carry this client's own keys");
            _u1 = u1;

            RandomNumberGenerator.Fill(_selfSeed);
            var holders = u1.Keys.ToArray();
            var d = _sKey.ExportParameters(true).D!;
            var keyShares = Shamir.Split(d, _p.Threshold, holders);
            CryptographicOperations.ZeroMemory(d);
            var seedShares = Shamir.Split(_selfSeed, _p.Threshold, holders);

            var m = Wire.Start(MessageType.ShareKeys, _p.RoundId, Id, 32 + 4 + (n - 1) * (4 + Wire.ShareCipherBytes), out var o);
            Wire.SeedCommitment(_p.RoundId, Id, _selfSeed).CopyTo(m, o);
            o += 32;
            BinaryPrimitives.WriteUInt32LittleEndian(m.AsSpan(o), (uint)(n - 1));
            o += 4;
            Span<byte> plain = stackalloc byte[Wire.SharePlainBytes];
            Span<byte> aad = stackalloc byte[24];
            for (int h = 0; h < holders.Length; h++)
            {
                var v = holders[h];
                if (v == Id) { _held[Id] = (keyShares[h], seedShares[h]); continue; }
                BinaryPrimitives.WriteUInt32LittleEndian(m.AsSpan(o), v);
                o += 4;
                BinaryPrimitives.WriteUInt32LittleEndian(plain, Id);
                BinaryPrimitives.WriteUInt32LittleEndian(plain[4..], v);
                Shamir.Encode(keyShares[h], plain[8..]);
                Shamir.Encode(seedShares[h], plain[(8 + Shamir.ShareBytes)..]);
                using var peer = Wire.ImportPublic(u1[v].C);
                var key = Wire.Agree(_cKey, peer, _p.RoundId, "share-encryption");
                _shareKeys[v] = key;
                using (var gcm = new AesGcm(key, 16))
                {
                    var ct = m.AsSpan(o, Wire.ShareCipherBytes);
                    RandomNumberGenerator.Fill(ct[..12]);
                    Wire.ShareAad(aad, _p.RoundId, Id, v);
                    gcm.Encrypt(ct[..12], plain, ct.Slice(12, Wire.SharePlainBytes), ct[(12 + Wire.SharePlainBytes)..], aad);
                }
                o += Wire.ShareCipherBytes;
            }
            CryptographicOperations.ZeroMemory(plain);
            _state = State.Shared;
            return m;
        }
        catch (ProtocolException) { Abort(); throw; }
    }

    /// <summary>
    /// Round 2: given the shares addressed to this client, returns y = x + PRG(b) + Σ_v ±PRG(s_{u,v}) mod 2^k, plus the ids of
    /// senders whose shares failed to verify (the server then treats them as dropped).
    /// </summary>
    public byte[] MaskedInput(byte[] sharesForMe, ReadOnlySpan<ulong> input)
    {
        Expect(State.Shared);
        if (input.Length != _p.VectorLength) throw new FederatedException($"the input has {input.Length} entries, the round expects {_p.VectorLength}");
        foreach (var x in input) if (x > _p.Mask) throw new FederatedException($"input entries must be below 2^{_p.Bits}");
        try
        {
            var max = Wire.HeaderBytes + 4 + _p.MaxClients * (4 + Wire.ShareCipherBytes);
            Wire.ReadHeader(sharesForMe, MessageType.SharesForClient, _p.RoundId, max);
            var r = new WireReader(sharesForMe, Wire.HeaderBytes);
            int n = r.Count(_p.MaxClients);
            var u2 = new HashSet<uint> { Id };
            var failed = new List<uint>();
            Span<byte> plain = stackalloc byte[Wire.SharePlainBytes];
            Span<byte> aad = stackalloc byte[24];
            for (int i = 0; i < n; i++)
            {
                var from = r.U32();
                var ct = r.Bytes(Wire.ShareCipherBytes);
                if (from == Id || !_u1.ContainsKey(from) || !u2.Add(from)) throw new ProtocolException("shares come from an unknown or repeated client");
                var key = _shareKeys[from];
                try
                {
                    using var gcm = new AesGcm(key, 16);
                    Wire.ShareAad(aad, _p.RoundId, from, Id);
                    gcm.Decrypt(ct[..12], ct.Slice(12, Wire.SharePlainBytes), ct[(12 + Wire.SharePlainBytes)..], plain, aad);
                    if (BinaryPrimitives.ReadUInt32LittleEndian(plain) != from || BinaryPrimitives.ReadUInt32LittleEndian(plain[4..]) != Id)
                        throw new ProtocolException("share names the wrong clients");
                    _held[from] = (Shamir.Decode(plain[8..]), Shamir.Decode(plain[(8 + Shamir.ShareBytes)..]));
                }
                catch (Exception e) when (e is CryptographicException or ProtocolException)
                {
                    failed.Add(from);
                }
            }
            r.End();
            ForgetShareKeys();
            if (u2.Count < _p.Threshold) throw new ProtocolException($"only {u2.Count} clients shared keys, fewer than t = {_p.Threshold}");
            _u2 = u2;

            var y = input.ToArray();
            MaskGenerator.Apply(_selfSeed, y, _p.Bits, +1);
            foreach (var v in u2)
            {
                if (v == Id) continue;
                using var peer = Wire.ImportPublic(_u1[v].S);
                var seed = Wire.Agree(_sKey, peer, _p.RoundId, "pairwise-mask");
                MaskGenerator.Apply(seed, y, _p.Bits, Id > v ? +1 : -1);
                CryptographicOperations.ZeroMemory(seed);
            }
            var wb = _p.WordBytes;
            var m = Wire.Start(MessageType.MaskedInput, _p.RoundId, Id, 4 + 4 * failed.Count + y.Length * wb, out var o);
            BinaryPrimitives.WriteUInt32LittleEndian(m.AsSpan(o), (uint)failed.Count);
            o += 4;
            foreach (var f in failed) { BinaryPrimitives.WriteUInt32LittleEndian(m.AsSpan(o), f); o += 4; }
            for (int i = 0; i < y.Length; i++, o += wb) Wire.WriteWord(m.AsSpan(o), y[i], wb);
            _state = State.Masked;
            return m;
        }
        catch (ProtocolException) { Abort(); throw; }
    }

    /// <summary>
    /// Round 3: given the survivors U3 (whose masked inputs are in the sum), returns shares of b_v for v in U3 and of
    /// s_v^SK for v in U2 \ U3 — never both for the same client, and only once.
    /// </summary>
    public byte[] Unmask(byte[] survivors)
    {
        Expect(State.Masked);
        try
        {
            Wire.ReadHeader(survivors, MessageType.Survivors, _p.RoundId, Wire.HeaderBytes + 4 + 4 * _p.MaxClients);
            var r = new WireReader(survivors, Wire.HeaderBytes);
            int n = r.Count(_p.MaxClients);
            var u3 = new HashSet<uint>();
            for (int i = 0; i < n; i++)
            {
                var id = r.U32();
                if (!_u2.Contains(id) || !u3.Add(id)) throw new ProtocolException("survivor list names a client outside U2 or repeats one");
            }
            r.End();
            if (u3.Count < _p.Threshold) throw new ProtocolException($"only {u3.Count} masked inputs survived, fewer than t = {_p.Threshold}");
            if (!u3.Contains(Id)) throw new ProtocolException("this client is not among the survivors");

            var entries = _u2.Where(_held.ContainsKey).ToList();
            var m = Wire.Start(MessageType.Unmask, _p.RoundId, Id, 4 + entries.Count * (5 + Shamir.ShareBytes), out var o);
            BinaryPrimitives.WriteUInt32LittleEndian(m.AsSpan(o), (uint)entries.Count);
            o += 4;
            foreach (var v in entries)
            {
                var survived = u3.Contains(v);
                BinaryPrimitives.WriteUInt32LittleEndian(m.AsSpan(o), v);
                m[o + 4] = (byte)(survived ? ShareKind.SelfMaskSeed : ShareKind.MaskKey);
                Shamir.Encode(survived ? _held[v].Seed : _held[v].Key, m.AsSpan(o + 5));
                o += 5 + Shamir.ShareBytes;
            }
            _held.Clear();
            _state = State.Done;
            return m;
        }
        catch (ProtocolException) { Abort(); throw; }
    }

    private void Expect(State s)
    {
        if (_state == State.Aborted) throw new ProtocolException("this client aborted the round");
        if (_state != s) throw new ProtocolException($"out of order: the client is at {_state}, the call needs {s}");
    }

    private void ForgetShareKeys()
    {
        foreach (var k in _shareKeys.Values) CryptographicOperations.ZeroMemory(k);
        _shareKeys.Clear();
    }

    private void Abort()
    {
        ForgetShareKeys();
        _state = State.Aborted;
        _held.Clear();
        CryptographicOperations.ZeroMemory(_selfSeed);
    }

    /// <summary>Releases the key pairs.</summary>
    public void Dispose()
    {
        _cKey.Dispose();
        _sKey.Dispose();
        _held.Clear();
        ForgetShareKeys();
        CryptographicOperations.ZeroMemory(_selfSeed);
    }
}
