using System.Buffers.Binary;
using System.Numerics;
using System.Security.Cryptography;
using OnDevice.Federated.SecureAggregation;

namespace OnDevice.Federated.Tests;

public class SecureAggregationTests
{
    private static readonly HashSet<uint> None = [];

    [Theory]
    [InlineData(0.0, 0)]
    [InlineData(0.1, 0)]
    [InlineData(0.1, 1)]
    [InlineData(0.1, 2)]
    [InlineData(0.1, 3)]
    [InlineData(0.3, 0)]
    [InlineData(0.3, 1)]
    [InlineData(0.3, 2)]
    [InlineData(0.3, 3)]
    public void Sum_is_exact_with_dropouts_at_each_phase(double fraction, int phase)
    {
        const int n = 20;
        using var h = new SecAggHarness(n, 11, 64, 24, seed: phase * 7 + (int)(fraction * 10));
        var dropped = SecAggHarness.Pick(n, (int)Math.Round(fraction * n), seed: phase + 100);
        var drops = Enumerable.Range(0, 4).Select(p => p == phase ? dropped : None).ToArray();
        h.Run(drops);
        Assert.Equal(SecAggPhase.Completed, h.Server.Phase);
        // clients that dropped before their masked input was sent are not in the sum; later dropouts are
        var inSum = phase <= 2 ? h.Clients.Keys.Except(dropped) : h.Clients.Keys;
        Assert.Equal(inSum.Order(), h.Server.Survivors);
        Assert.Equal(h.ExpectedSum(inSum), h.Server.Result);
    }

    [Fact]
    public void Sum_is_exact_with_dropouts_spread_over_every_phase()
    {
        const int n = 30;
        using var h = new SecAggHarness(n, 16, 100, 32);
        var order = SecAggHarness.Pick(n, 9, seed: 5).ToArray(); // 30% in total, some at each phase
        h.Run([order[0], order[1]], [order[2], order[3]], [order[4], order[5]], [order[6], order[7], order[8]]);
        Assert.Equal(SecAggPhase.Completed, h.Server.Phase);
        var inSum = h.Clients.Keys.Except(order[..6]).ToArray();
        Assert.Equal(h.ExpectedSum(inSum), h.Server.Result);
    }

    [Fact]
    public void Sum_is_exact_with_64_bit_words()
    {
        using var h = new SecAggHarness(5, 3, 33, 64);
        h.Run([], [], [2u]);
        Assert.Equal(h.ExpectedSum([1, 3, 4, 5]), h.Server.Result);
    }

    private static double ChiSquareTopByte(ulong[] v, int bits)
    {
        var counts = new long[256];
        foreach (var x in v) counts[(int)(x >> (bits - 8))]++;
        double e = v.Length / 256.0;
        return counts.Sum(c => (c - e) * (c - e) / e);
    }

    [Fact]
    public void A_single_masked_vector_is_indistinguishable_from_uniform()
    {
        // One client's input is all zeros (the worst case); its masked vector must look uniform on Z_2^16.
        const int length = 50_000, bits = 16;
        using var h = new SecAggHarness(4, 3, length, bits);
        h.Inputs[1] = new ulong[length];
        byte[]? captured = null;
        h.ToServer = (phase, id, m) => { if (phase == 2 && id == 1) captured = m; return m; };
        h.Run();
        Assert.NotNull(captured);
        var y = new ulong[length];
        int offset = 23 + 4 + 4 * (int)BinaryPrimitives.ReadUInt32LittleEndian(captured.AsSpan(23));
        for (int i = 0; i < length; i++) y[i] = BinaryPrimitives.ReadUInt16LittleEndian(captured.AsSpan(offset + 2 * i));
        // χ² with 255 degrees of freedom: mean 255, sd 22.6; 400 is beyond p = 1e-9. The same test rejects the raw input
        // and a vector with only a slight bias, so it can fail.
        Assert.True(ChiSquareTopByte(y, bits) < 400, $"χ² = {ChiSquareTopByte(y, bits)}");
        var biased = y.Select((x, i) => i % 10 == 0 ? x & 0x7FFF : x).ToArray();
        Assert.True(ChiSquareTopByte(biased, bits) > 400);
        Assert.True(ChiSquareTopByte(h.Inputs[1], bits) > 400);
        // mean and low bits too: each bit is set half the time within 5 sd
        for (int b = 0; b < bits; b++)
        {
            var ones = y.Count(x => ((x >> b) & 1) == 1);
            Assert.True(Math.Abs(ones - length / 2.0) < 5 * Math.Sqrt(length / 4.0), $"bit {b}: {ones}");
        }
        Assert.Equal(h.ExpectedSum(h.Clients.Keys), h.Server.Result);
    }

    [Fact]
    public void Server_refuses_a_mask_key_share_of_a_survivor_and_the_round_still_completes()
    {
        using var h = new SecAggHarness(6, 4, 16, 32);
        // A (malicious) client 2 relabels its self-mask share of survivor 3 as a mask-key share, which would let the
        // server strip client 3's pairwise masks as well as its self mask.
        int refusals = 0;
        h.ToServer = (phase, id, m) =>
        {
            if (phase != 3 || id != 2) return m;
            var bad = (byte[])m.Clone();
            int count = (int)BinaryPrimitives.ReadUInt32LittleEndian(bad.AsSpan(23));
            for (int i = 0, o = 27; i < count; i++, o += 5 + Shamir.ShareBytes)
                if (BinaryPrimitives.ReadUInt32LittleEndian(bad.AsSpan(o)) == 3) bad[o + 4] = (byte)ShareKind.MaskKey;
            try { h.Server.Receive(bad); }
            catch (ProtocolException e) { Assert.Contains("refusing a mask-key share of client 3", e.Message); refusals++; }
            return null; // client 2 then goes silent
        };
        h.Run();
        Assert.Equal(1, refusals);
        Assert.Equal(SecAggPhase.Completed, h.Server.Phase);
        Assert.Equal(h.ExpectedSum(h.Clients.Keys), h.Server.Result);
    }

    [Fact]
    public void Server_never_rebuilds_both_secrets_of_one_client()
    {
        using var h = new SecAggHarness(6, 4, 16, 32);
        h.Run([], [], [5u]); // 5 dropped before sending its masked input: only its mask key may be rebuilt
        Assert.Equal(SecAggPhase.Completed, h.Server.Phase);
        var e1 = Assert.Throws<ProtocolException>(() => h.Server.Reveal(5, ShareKind.SelfMaskSeed));
        Assert.Contains("refusing to rebuild the self-mask seed of client 5", e1.Message);
        var e2 = Assert.Throws<ProtocolException>(() => h.Server.Reveal(1, ShareKind.MaskKey));
        Assert.Contains("refusing to rebuild the mask key of client 1", e2.Message);
        // honest clients never send both kinds either: each survivor's Unmask message has exactly one share per client
        Assert.Equal(h.ExpectedSum([1, 2, 3, 4, 6]), h.Server.Result);
    }

    [Fact]
    public void Malformed_oversized_and_wrong_length_messages_are_rejected_without_affecting_the_round()
    {
        const int n = 8;
        using var h = new SecAggHarness(n, 5, 40, 32);
        var rejectedBefore = new List<string>();
        h.ToServer = (phase, id, m) =>
        {
            // garbage, truncated, wrong round, wrong type and oversized copies are all rejected and change nothing
            foreach (var bad in new[]
            {
                new byte[] { 1, 2, 3 },
                m[..(m.Length - 1)],
                m.Concat(new byte[1]).ToArray(),
                WithRound(m),
                WithType(m, 9),
                new byte[h.Server.MaxMessageBytes + 1],
            })
                Assert.Throws<ProtocolException>(() => h.Server.Receive(bad));
            if (phase == 2 && id == 4)
            {
                // client 4 sends an update of the wrong length: rejected, so it counts as dropped
                var wrong = m[..(m.Length - 4)];
                Assert.Throws<ProtocolException>(() => h.Server.Receive(wrong));
                return null;
            }
            if (phase == 1 && id == 6)
            {
                h.Server.Receive(m);
                Assert.Throws<ProtocolException>(() => h.Server.Receive(m)); // a replay is refused
                return null;
            }
            return m;
        };
        h.Run();
        Assert.Equal(SecAggPhase.Completed, h.Server.Phase);
        Assert.Equal(h.ExpectedSum(h.Clients.Keys.Where(i => i != 4)), h.Server.Result);
        Assert.True(h.Server.Rejected.Count >= 4 * 6 * 7);
    }

    private static byte[] WithRound(byte[] m)
    {
        var c = (byte[])m.Clone();
        c[5] ^= 0xFF;
        return c;
    }

    private static byte[] WithType(byte[] m, byte type)
    {
        var c = (byte[])m.Clone();
        c[2] = type;
        return c;
    }

    [Fact]
    public void A_client_whose_shares_do_not_verify_is_dropped_and_the_round_completes()
    {
        using var h = new SecAggHarness(8, 5, 30, 32);
        // corrupt the ciphertext from client 3 in the bundle delivered to client 7
        h.ToClient = (phase, id, m) =>
        {
            if (phase != 2 || id != 7) return m;
            var c = (byte[])m.Clone();
            int count = (int)BinaryPrimitives.ReadUInt32LittleEndian(c.AsSpan(23));
            for (int i = 0, o = 27; i < count; i++, o += 4 + 168)
                if (BinaryPrimitives.ReadUInt32LittleEndian(c.AsSpan(o)) == 3) c[o + 4 + 50] ^= 1;
            return c;
        };
        h.Run();
        Assert.Equal(SecAggPhase.Completed, h.Server.Phase);
        Assert.DoesNotContain(3u, h.Server.Survivors);
        Assert.Equal(h.ExpectedSum(h.Clients.Keys.Where(i => i != 3)), h.Server.Result);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void A_round_that_cannot_reach_t_ends_cleanly_with_no_aggregate(int phase)
    {
        const int n = 10;
        using var h = new SecAggHarness(n, 6, 20, 32);
        var dropped = SecAggHarness.Pick(n, 5, seed: 3);
        h.Run(Enumerable.Range(0, 4).Select(p => p == phase ? dropped : None).ToArray());
        Assert.Equal(SecAggPhase.Failed, h.Server.Phase);
        Assert.Contains("fewer than t = 6", h.Server.FailureReason);
        var e = Assert.Throws<FederatedException>(() => h.Server.Result);
        Assert.Contains("no aggregate", e.Message);
        Assert.Throws<ProtocolException>(() => h.Server.Receive(h.Clients[1].AdvertiseKeys()));
    }

    [Fact]
    public void Client_aborts_on_a_key_list_below_threshold_or_without_its_keys()
    {
        var p = new SecAggParameters(SecAggParameters.NewRoundId(), 3, 4, 8, 16);
        var server = new SecAggServer(p);
        using var a = new SecAggClient(p, 1);
        using var b = new SecAggClient(p, 2);
        using var c = new SecAggClient(p, 3);
        server.Receive(a.AdvertiseKeys());
        server.Receive(b.AdvertiseKeys());
        server.Receive(c.AdvertiseKeys());
        server.CloseRound();
        var list = server.MessageFor(1)!;
        using var outsider = new SecAggClient(p, 4);
        outsider.AdvertiseKeys();
        Assert.Throws<ProtocolException>(() => outsider.ShareKeys(list));
        // a truncated list makes the client abort; it then refuses to continue
        Assert.Throws<ProtocolException>(() => a.ShareKeys(list[..^10]));
        Assert.Throws<ProtocolException>(() => a.ShareKeys(list));
        Assert.NotNull(b.ShareKeys(list));
    }

    [Fact]
    public void Parameters_reject_bad_values_before_any_work()
    {
        var id = SecAggParameters.NewRoundId();
        Assert.Throws<FederatedException>(() => new SecAggParameters(id, 5, 10, 10, 32)); // t must exceed n/2
        Assert.Throws<FederatedException>(() => new SecAggParameters(id, 11, 10, 10, 32));
        Assert.Throws<FederatedException>(() => new SecAggParameters(new byte[3], 6, 10, 10, 32));
        Assert.Throws<FederatedException>(() => new SecAggParameters(id, 6, 10, 0, 32));
        Assert.Throws<FederatedException>(() => new SecAggParameters(id, 6, 10, 10, 4));
        var p = new SecAggParameters(id, 2, 3, 4, 8);
        using var c = new SecAggClient(p, 1);
        Assert.Throws<FederatedException>(() => new SecAggClient(p, 0));
    }

    [Fact]
    public void Shamir_any_t_shares_rebuild_and_t_minus_1_do_not()
    {
        var secret = RandomNumberGenerator.GetBytes(32);
        uint[] xs = [3, 7, 9, 12, 20, 21, 40];
        var ys = Shamir.Split(secret, 4, xs);
        var rng = new Random(1);
        for (int trial = 0; trial < 10; trial++)
        {
            var pick = Enumerable.Range(0, xs.Length).OrderBy(_ => rng.Next()).Take(4).ToArray();
            var s = Shamir.Combine(pick.Select(i => xs[i]).ToArray(), pick.Select(i => ys[i]).ToArray());
            Assert.Equal(secret, Shamir.ToSecret32(s));
        }
        var three = Shamir.Combine(xs[..3], ys[..3]);
        Assert.NotEqual(new BigInteger(secret, true, true), three);
        Span<byte> enc = stackalloc byte[Shamir.ShareBytes];
        Shamir.Encode(ys[0], enc);
        Assert.Equal(ys[0], Shamir.Decode(enc));
    }

    [Fact]
    public void Mask_generator_equals_block_by_block_aes_ctr_reference()
    {
        var seed = RandomNumberGenerator.GetBytes(32);
        foreach (var bits in new[] { 16, 32, 48, 64 })
        {
            const int length = 20_011; // several chunks, odd tail
            var fast = MaskGenerator.Generate(seed, length, bits);
            // scalar twin: encrypt counter blocks one at a time and read words in order
            using var aes = Aes.Create();
            aes.Key = seed;
            int wb = bits <= 32 ? 4 : 8;
            ulong mask = bits == 64 ? ulong.MaxValue : (1UL << bits) - 1;
            var stream = new List<byte>();
            for (long blk = 0; stream.Count < length * wb; blk++)
            {
                var ctr = new byte[16];
                BinaryPrimitives.WriteInt64BigEndian(ctr.AsSpan(8), blk);
                stream.AddRange(aes.EncryptEcb(ctr, PaddingMode.None));
            }
            var s = stream.ToArray();
            for (int i = 0; i < length; i++)
            {
                ulong w = wb == 4 ? BinaryPrimitives.ReadUInt32LittleEndian(s.AsSpan(i * 4)) : BinaryPrimitives.ReadUInt64LittleEndian(s.AsSpan(i * 8));
                Assert.Equal(w & mask, fast[i]);
            }
        }
    }
}
