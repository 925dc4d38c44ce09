using System.Buffers.Binary;
using System.Numerics;
using System.Security.Cryptography;

namespace OnDevice.Federated.SecureAggregation;

/// <summary>Where a secure-aggregation round stands on the server.</summary>
public enum SecAggPhase
{
    /// <summary>Collecting public keys (round 0).</summary>
    AdvertiseKeys,

    /// <summary>Collecting encrypted shares (round 1).</summary>
    ShareKeys,

    /// <summary>Collecting masked inputs (round 2).</summary>
    MaskedInput,

    /// <summary>Collecting unmasking shares (round 3).</summary>
    Unmasking,

    /// <summary>The sum is available.</summary>
    Completed,

    /// <summary>Too few clients, or shares that did not reconstruct: nothing is released.</summary>
    Failed,
}

/// <summary>
/// The server of the Bonawitz et al. 2017 protocol as a state machine: <see cref="Receive"/> takes client messages
/// (a bad one throws <see cref="ProtocolException"/> and leaves the round untouched), <see cref="CloseRound"/> ends a
/// phase at its deadline (fewer than t clients → <see cref="SecAggPhase.Failed"/>, no partial aggregate), and
/// <see cref="MessageFor"/> gives each surviving client its next message. The server learns only Σ x_u over U3.
/// </summary>
public sealed class SecAggServer
{
    private readonly SecAggParameters _p;
    private readonly Dictionary<uint, (byte[] C, byte[] S)> _keys = [];
    private readonly Dictionary<uint, byte[]> _commitments = [];
    private readonly Dictionary<uint, Dictionary<uint, byte[]>> _ciphertexts = []; // from → (to → ct)
    private readonly Dictionary<uint, ulong[]> _masked = [];
    private readonly HashSet<uint> _flagged = [];
    private readonly Dictionary<uint, Dictionary<uint, BigInteger>> _unmaskShares = []; // about → (holder → share)
    private readonly HashSet<uint> _unmaskSenders = [];
    private readonly Dictionary<uint, ShareKind> _revealed = [];
    private uint[] _u1 = [], _u2 = [], _u3 = [];
    private byte[]? _keyList, _survivors;
    private ulong[]? _result;

    /// <summary>A server for one round.</summary>
    public SecAggServer(SecAggParameters parameters)
    {
        _p = parameters ?? throw new ArgumentNullException(nameof(parameters));
    }

    /// <summary>The current phase.</summary>
    public SecAggPhase Phase { get; private set; } = SecAggPhase.AdvertiseKeys;

    /// <summary>Why the round failed, when it did.</summary>
    public string? FailureReason { get; private set; }

    /// <summary>U1: clients that advertised keys.</summary>
    public IReadOnlyList<uint> AdvertisedClients => _u1;

    /// <summary>U2: clients that shared keys.</summary>
    public IReadOnlyList<uint> SharingClients => _u2;

    /// <summary>U3: clients whose masked inputs are in the sum.</summary>
    public IReadOnlyList<uint> Survivors => _u3;

    /// <summary>Bytes received from clients, per sender.</summary>
    public Dictionary<uint, long> BytesReceived { get; } = [];

    /// <summary>Messages rejected so far, with the reason.</summary>
    public List<string> Rejected { get; } = [];

    /// <summary>Σ_{u ∈ U3} x_u mod 2^k once <see cref="Phase"/> is <see cref="SecAggPhase.Completed"/>; otherwise throws.</summary>
    public ulong[] Result => Phase == SecAggPhase.Completed && _result is not null
        ? _result
        : throw new FederatedException(Phase == SecAggPhase.Failed ? $"the round failed ({FailureReason}); no aggregate is released" : $"the round is still at {Phase}");

    /// <summary>The largest message the server accepts in the current phase.</summary>
    public int MaxMessageBytes => Phase switch
    {
        SecAggPhase.AdvertiseKeys => Wire.HeaderBytes + 2 * Wire.PublicKeyBytes,
        SecAggPhase.ShareKeys => Wire.HeaderBytes + 32 + 4 + (_u1.Length - 1) * (4 + Wire.ShareCipherBytes),
        SecAggPhase.MaskedInput => Wire.HeaderBytes + 4 + 4 * _u2.Length + _p.VectorLength * _p.WordBytes,
        SecAggPhase.Unmasking => Wire.HeaderBytes + 4 + _u2.Length * (5 + Shamir.ShareBytes),
        _ => 0,
    };

    /// <summary>Accepts one client message for the current phase; a bad message throws <see cref="ProtocolException"/> and changes nothing.</summary>
    public void Receive(byte[] message)
    {
        try
        {
            uint from;
            switch (Phase)
            {
                case SecAggPhase.AdvertiseKeys: from = ReceiveKeys(message); break;
                case SecAggPhase.ShareKeys: from = ReceiveShares(message); break;
                case SecAggPhase.MaskedInput: from = ReceiveMasked(message); break;
                case SecAggPhase.Unmasking: from = ReceiveUnmask(message); break;
                default: throw new ProtocolException($"the round is {Phase}; no more messages are accepted");
            }
            BytesReceived[from] = BytesReceived.GetValueOrDefault(from) + message.Length;
        }
        catch (ProtocolException e)
        {
            Rejected.Add(e.Message);
            throw;
        }
    }

    private uint ReceiveKeys(byte[] m)
    {
        var from = Wire.ReadHeader(m, MessageType.AdvertiseKeys, _p.RoundId, MaxMessageBytes);
        var r = new WireReader(m, Wire.HeaderBytes);
        var c = r.Bytes(Wire.PublicKeyBytes).ToArray();
        var s = r.Bytes(Wire.PublicKeyBytes).ToArray();
        r.End();
        if (from == 0) throw new ProtocolException("client id 0 is reserved");
        if (_keys.ContainsKey(from)) throw new ProtocolException($"client {from} already advertised keys");
        if (_keys.Count >= _p.MaxClients) throw new ProtocolException($"the round is full ({_p.MaxClients} clients)");
        using (Wire.ImportPublic(c)) { }
        using (Wire.ImportPublic(s)) { }
        _keys[from] = (c, s);
        return from;
    }

    private uint ReceiveShares(byte[] m)
    {
        var from = Wire.ReadHeader(m, MessageType.ShareKeys, _p.RoundId, MaxMessageBytes);
        if (Array.IndexOf(_u1, from) < 0) throw new ProtocolException($"client {from} did not advertise keys");
        if (_ciphertexts.ContainsKey(from)) throw new ProtocolException($"client {from} already shared keys");
        var r = new WireReader(m, Wire.HeaderBytes);
        var commitment = r.Bytes(32).ToArray();
        int n = r.Count(_u1.Length);
        if (n != _u1.Length - 1) throw new ProtocolException($"client {from} sent {n} encrypted shares, expected {_u1.Length - 1}");
        var cts = new Dictionary<uint, byte[]>(n);
        for (int i = 0; i < n; i++)
        {
            var to = r.U32();
            var ct = r.Bytes(Wire.ShareCipherBytes).ToArray();
            if (to == from || Array.IndexOf(_u1, to) < 0 || !cts.TryAdd(to, ct)) throw new ProtocolException($"client {from} addressed a share to an unknown or repeated client {to}");
        }
        r.End();
        _ciphertexts[from] = cts;
        _commitments[from] = commitment;
        return from;
    }

    private uint ReceiveMasked(byte[] m)
    {
        var from = Wire.ReadHeader(m, MessageType.MaskedInput, _p.RoundId, MaxMessageBytes);
        if (Array.IndexOf(_u2, from) < 0) throw new ProtocolException($"client {from} is not in U2");
        if (_masked.ContainsKey(from)) throw new ProtocolException($"client {from} already sent its masked input");
        var r = new WireReader(m, Wire.HeaderBytes);
        int nf = r.Count(_u2.Length);
        var failed = new List<uint>(nf);
        for (int i = 0; i < nf; i++)
        {
            var f = r.U32();
            if (f == from || Array.IndexOf(_u2, f) < 0 || failed.Contains(f)) throw new ProtocolException($"client {from} reported an invalid share sender {f}");
            failed.Add(f);
        }
        var wb = _p.WordBytes;
        if (r.Remaining != _p.VectorLength * wb) throw new ProtocolException($"client {from} sent {r.Remaining} bytes of masked input, expected {_p.VectorLength * wb} ({_p.VectorLength} entries)");
        var raw = r.Bytes(r.Remaining);
        var y = new ulong[_p.VectorLength];
        for (int i = 0; i < y.Length; i++)
        {
            y[i] = Wire.ReadWord(raw.Slice(i * wb, wb), wb);
            if (y[i] > _p.Mask) throw new ProtocolException($"client {from} sent an entry outside Z_2^{_p.Bits}");
        }
        _masked[from] = y;
        foreach (var f in failed) _flagged.Add(f);
        return from;
    }

    private uint ReceiveUnmask(byte[] m)
    {
        var from = Wire.ReadHeader(m, MessageType.Unmask, _p.RoundId, MaxMessageBytes);
        if (Array.IndexOf(_u3, from) < 0) throw new ProtocolException($"client {from} is not a survivor");
        if (_unmaskSenders.Contains(from)) throw new ProtocolException($"client {from} already sent its unmasking shares");
        var r = new WireReader(m, Wire.HeaderBytes);
        int n = r.Count(_u2.Length);
        var shares = new List<(uint About, BigInteger Share)>(n);
        var seen = new HashSet<uint>();
        for (int i = 0; i < n; i++)
        {
            var about = r.U32();
            var kind = (ShareKind)r.U8();
            var share = Shamir.Decode(r.Bytes(Shamir.ShareBytes));
            if (Array.IndexOf(_u2, about) < 0 || !seen.Add(about)) throw new ProtocolException($"client {from} sent a share about an unknown or repeated client {about}");
            var survived = Array.IndexOf(_u3, about) >= 0;
            // The guard of the protocol: a survivor's mask key and a dropped client's self-mask seed are never collected.
            if (kind == ShareKind.SelfMaskSeed && !survived) throw new ProtocolException($"refusing a self-mask share of client {about}, which is not in the sum (its pairwise masks are being removed)");
            if (kind == ShareKind.MaskKey && survived) throw new ProtocolException($"refusing a mask-key share of client {about}, whose masked input is in the sum");
            if (kind is not (ShareKind.SelfMaskSeed or ShareKind.MaskKey)) throw new ProtocolException($"unknown share kind {(byte)kind}");
            shares.Add((about, share));
        }
        r.End();
        foreach (var (about, share) in shares)
        {
            if (!_unmaskShares.TryGetValue(about, out var d)) _unmaskShares[about] = d = [];
            d[from] = share;
        }
        _unmaskSenders.Add(from);
        return from;
    }

    /// <summary>Ends the current phase (its deadline passed or everyone answered): moves on, or fails with no aggregate.</summary>
    public void CloseRound()
    {
        switch (Phase)
        {
            case SecAggPhase.AdvertiseKeys:
                _u1 = [.. _keys.Keys.Order()];
                if (!Enough(_u1.Length, "advertised keys")) return;
                _keyList = Wire.Start(MessageType.KeyList, _p.RoundId, 0, 4 + _u1.Length * (4 + 2 * Wire.PublicKeyBytes), out var o);
                BinaryPrimitives.WriteUInt32LittleEndian(_keyList.AsSpan(o), (uint)_u1.Length);
                o += 4;
                foreach (var id in _u1)
                {
                    BinaryPrimitives.WriteUInt32LittleEndian(_keyList.AsSpan(o), id);
                    _keys[id].C.CopyTo(_keyList, o + 4);
                    _keys[id].S.CopyTo(_keyList, o + 4 + Wire.PublicKeyBytes);
                    o += 4 + 2 * Wire.PublicKeyBytes;
                }
                Phase = SecAggPhase.ShareKeys;
                break;
            case SecAggPhase.ShareKeys:
                _u2 = [.. _ciphertexts.Keys.Order()];
                if (!Enough(_u2.Length, "shared keys")) return;
                Phase = SecAggPhase.MaskedInput;
                break;
            case SecAggPhase.MaskedInput:
                _u3 = [.. _masked.Keys.Where(u => !_flagged.Contains(u)).Order()];
                if (!Enough(_u3.Length, "sent valid masked inputs")) return;
                _survivors = Wire.Start(MessageType.Survivors, _p.RoundId, 0, 4 + 4 * _u3.Length, out var so);
                BinaryPrimitives.WriteUInt32LittleEndian(_survivors.AsSpan(so), (uint)_u3.Length);
                for (int i = 0; i < _u3.Length; i++) BinaryPrimitives.WriteUInt32LittleEndian(_survivors.AsSpan(so + 4 + 4 * i), _u3[i]);
                Phase = SecAggPhase.Unmasking;
                break;
            case SecAggPhase.Unmasking:
                if (!Enough(_unmaskSenders.Count, "sent unmasking shares")) return;
                try { _result = Unmask(); Phase = SecAggPhase.Completed; }
                catch (ProtocolException e) { Fail(e.Message); }
                break;
            default:
                throw new FederatedException($"the round is already {Phase}");
        }
    }

    private bool Enough(int count, string what)
    {
        if (count >= _p.Threshold) return true;
        Fail($"only {count} clients {what}, fewer than t = {_p.Threshold}");
        return false;
    }

    private void Fail(string reason)
    {
        FailureReason = reason;
        Phase = SecAggPhase.Failed;
        _masked.Clear();
        _unmaskShares.Clear();
        _result = null;
    }

    /// <summary>The server's next message to client <paramref name="id"/>, or null if the client is out of the round.</summary>
    public byte[]? MessageFor(uint id)
    {
        switch (Phase)
        {
            case SecAggPhase.ShareKeys:
                return Array.IndexOf(_u1, id) >= 0 ? _keyList : null;
            case SecAggPhase.MaskedInput:
                {
                    if (Array.IndexOf(_u2, id) < 0) return null;
                    var m = Wire.Start(MessageType.SharesForClient, _p.RoundId, 0, 4 + (_u2.Length - 1) * (4 + Wire.ShareCipherBytes), out var o);
                    BinaryPrimitives.WriteUInt32LittleEndian(m.AsSpan(o), (uint)(_u2.Length - 1));
                    o += 4;
                    foreach (var from in _u2)
                    {
                        if (from == id) continue;
                        BinaryPrimitives.WriteUInt32LittleEndian(m.AsSpan(o), from);
                        _ciphertexts[from][id].CopyTo(m, o + 4);
                        o += 4 + Wire.ShareCipherBytes;
                    }
                    return m;
                }
            case SecAggPhase.Unmasking:
                return Array.IndexOf(_u3, id) >= 0 ? _survivors : null;
            default:
                return null;
        }
    }

    /// <summary>
    /// Rebuilds one client's secret from t shares. Refuses (throws) if the other secret of the same client was already
    /// rebuilt, or if the kind does not match the client's membership of U3: the server can never hold both b_u and s_u^SK.
    /// </summary>
    internal byte[] Reveal(uint about, ShareKind kind)
    {
        var survived = Array.IndexOf(_u3, about) >= 0;
        if (kind == ShareKind.SelfMaskSeed && !survived) throw new ProtocolException($"refusing to rebuild the self-mask seed of client {about}: it is not in the sum");
        if (kind == ShareKind.MaskKey && survived) throw new ProtocolException($"refusing to rebuild the mask key of client {about}: its masked input is in the sum");
        if (_revealed.TryGetValue(about, out var prior) && prior != kind) throw new ProtocolException($"refusing to rebuild both secrets of client {about}");
        if (!_unmaskShares.TryGetValue(about, out var shares) || shares.Count < _p.Threshold)
            throw new ProtocolException($"only {shares?.Count ?? 0} shares for client {about}, fewer than t = {_p.Threshold}");
        var holders = shares.Keys.Order().Take(_p.Threshold).ToArray();
        var lambda = LagrangeFor(holders);
        var secret = Shamir.ToSecret32(Shamir.Combine(lambda, holders.Select(h => shares[h]).ToArray()));
        _revealed[about] = kind;
        return secret;
    }

    private readonly Dictionary<string, BigInteger[]> _lagrange = [];

    private BigInteger[] LagrangeFor(uint[] holders)
    {
        var key = string.Join(',', holders);
        if (!_lagrange.TryGetValue(key, out var l)) _lagrange[key] = l = Shamir.LagrangeAtZero(holders);
        return l;
    }

    private ulong[] Unmask()
    {
        var sum = new ulong[_p.VectorLength];
        var mask = _p.Mask;
        foreach (var u in _u3)
        {
            var y = _masked[u];
            for (int i = 0; i < sum.Length; i++) sum[i] = (sum[i] + y[i]) & mask;
        }
        foreach (var u in _u3)
        {
            var b = Reveal(u, ShareKind.SelfMaskSeed);
            if (!CryptographicOperations.FixedTimeEquals(Wire.SeedCommitment(_p.RoundId, u, b), _commitments[u]))
                throw new ProtocolException($"the self-mask seed rebuilt for client {u} does not match its commitment (bad shares)");
            MaskGenerator.Apply(b, sum, _p.Bits, -1);
        }
        var dropped = _u2.Except(_u3).ToArray();
        var survivorKeys = dropped.Length == 0 ? [] : _u3.ToDictionary(v => v, v => Wire.ImportPublic(_keys[v].S));
        try
        {
            foreach (var u in dropped) RemovePairwiseMasks(u, sum, survivorKeys);
        }
        finally
        {
            foreach (var k in survivorKeys.Values) k.Dispose();
        }
        return sum;
    }

    private void RemovePairwiseMasks(uint u, ulong[] sum, Dictionary<uint, ECDiffieHellman> survivorKeys)
    {
        {
            var d = Reveal(u, ShareKind.MaskKey);
            using var key = ECDiffieHellman.Create();
            try
            {
                var pub = _keys[u].S;
                key.ImportParameters(new ECParameters
                {
                    Curve = ECCurve.NamedCurves.nistP256,
                    D = d,
                    Q = new ECPoint { X = pub.AsSpan(1, 32).ToArray(), Y = pub.AsSpan(33, 32).ToArray() },
                });
            }
            catch (CryptographicException)
            {
                throw new ProtocolException($"the mask key rebuilt for client {u} does not match its public key (bad shares)");
            }
            finally { CryptographicOperations.ZeroMemory(d); }
            foreach (var v in _u3)
            {
                var seed = Wire.Agree(key, survivorKeys[v], _p.RoundId, "pairwise-mask");
                // y_v carries +PRG(s_uv) when v > u and −PRG(s_uv) when v < u; take it back out.
                MaskGenerator.Apply(seed, sum, _p.Bits, v > u ? -1 : +1);
            }
        }
    }
}
