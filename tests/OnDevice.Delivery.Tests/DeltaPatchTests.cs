using System.Buffers.Binary;
using System.Security.Cryptography;
using OnDevice.Delivery.Deltas;

namespace OnDevice.Delivery.Tests;

/// <summary>The patch format on synthetic files: round trips, tensor-aware pieces, bounded parsing, typed errors.</summary>
public class DeltaPatchTests
{
    internal static byte[] Random(int n, int seed)
    {
        var b = new byte[n];
        new Random(seed).NextBytes(b);
        return b;
    }

    /// <summary>A fake "model": structure bytes between tensors of float-like values; returns bytes and regions.</summary>
    internal static (byte[] File, List<DeltaRegion> Regions) FakeModel(int seed, int tensors, int tensorBytes, Func<int, int, byte[]?>? change = null)
    {
        var rng = new Random(seed);
        var ms = new MemoryStream();
        var regions = new List<DeltaRegion>();
        for (int i = 0; i < tensors; i++)
        {
            var header = System.Text.Encoding.UTF8.GetBytes($"<tensor name=layer{i}.weight dtype=f32 len={tensorBytes}>");
            ms.Write(header);
            var data = change?.Invoke(i, tensorBytes) ?? Floats(tensorBytes, seed * 1000 + i);
            regions.Add(new DeltaRegion($"layer{i}.weight", ms.Position, data.Length));
            ms.Write(data);
        }
        ms.Write("<end>"u8);
        _ = rng;
        return (ms.ToArray(), regions);
    }

    internal static byte[] Floats(int bytes, int seed)
    {
        var rng = new Random(seed);
        var f = new float[bytes / 4];
        for (int i = 0; i < f.Length; i++) f[i] = (float)(rng.NextDouble() * 2 - 1) * 0.05f;
        var b = new byte[bytes];
        System.Runtime.InteropServices.MemoryMarshal.AsBytes(f.AsSpan()).CopyTo(b);
        return b;
    }

    [Fact]
    public void Generic_diff_round_trips_edits_insertions_and_deletions()
    {
        var old = Random(600_000, 1);
        var target = new List<byte>(old[..100_000]);
        target.AddRange(Random(5_000, 2));          // inserted
        target.AddRange(old[150_000..400_000]);     // 50 KB deleted before this
        var changed = old[400_000..].ToArray();
        for (int i = 0; i < changed.Length; i += 997) changed[i] ^= 0x5A; // scattered edits
        target.AddRange(changed);
        var t = target.ToArray();
        var built = DeltaBuilder.Build(old, null, t, null);
        Assert.False(built.TensorAware);
        Assert.Equal(t, DeltaApplier.Apply(old, built.Patch));
        Assert.True(built.Patch.Length < t.Length / 10, $"patch {built.Patch.Length} of {t.Length}");
        Assert.True(built.WorthOffering());
    }

    [Fact]
    public void Unchanged_tensors_are_copied_and_a_changed_one_is_sent_as_a_difference()
    {
        var (old, oldRegions) = FakeModel(1, 12, 64_000);
        var head = Floats(64_000, 99);
        var (target, targetRegions) = FakeModel(1, 12, 64_000, (i, n) =>
        {
            if (i != 11) return null;
            var w = Floats(n, 1000 + i);
            var f = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(w.AsSpan());
            for (int k = 0; k < f.Length; k++) f[k] += f[k] * 1e-3f; // a small fine-tuning step
            return w;
        });
        var built = DeltaBuilder.Build(old, oldRegions, target, targetRegions);
        Assert.True(built.TensorAware);
        Assert.Equal(target, DeltaApplier.Apply(old, built.Patch));
        // Everything before the head is one copy; the head is one XOR/ADD piece; the tail is copied or tiny.
        var sent = built.Pieces.Where(p => p.PayloadLength > 0).ToList();
        Assert.Contains(sent, p => p.Key == "layer11.weight" && p.Kind is DeltaPieceKind.XorBrotli or DeltaPieceKind.AddBrotli);
        Assert.All(sent, p => Assert.True(p.Key == "layer11.weight" || p.PayloadLength < 64, $"{p.Key} {p.Kind} {p.PayloadLength}"));
        Assert.True(built.Patch.Length < 64_000, $"patch {built.Patch.Length}");
        _ = head;
    }

    [Fact]
    public void A_moved_tensor_is_found_by_content()
    {
        var (old, oldRegions) = FakeModel(3, 4, 20_000);
        // The new version renames every tensor; their bytes are unchanged.
        var renamed = oldRegions.Select(r => r with { Key = "v2." + r.Key }).ToList();
        var built = DeltaBuilder.Build(old, oldRegions, old, renamed);
        Assert.Equal(old, DeltaApplier.Apply(old, built.Patch));
        Assert.True(built.Patch.Length < 1000, $"patch {built.Patch.Length}");
    }

    [Fact]
    public void Empty_and_tiny_targets_round_trip()
    {
        var old = Random(1000, 4);
        foreach (var t in new[] { Array.Empty<byte>(), new byte[] { 7 }, old[..10], Random(70, 5) })
        {
            var built = DeltaBuilder.Build(old, null, t, null);
            Assert.Equal(t, DeltaApplier.Apply(old, built.Patch));
        }
        var fromEmpty = DeltaBuilder.Build(Array.Empty<byte>(), null, old, null);
        Assert.Equal(old, DeltaApplier.Apply(Array.Empty<byte>(), fromEmpty.Patch));
    }

    [Fact]
    public void Unrelated_bytes_are_not_worth_offering()
    {
        var old = Random(300_000, 6);
        var target = Random(300_000, 7);
        var built = DeltaBuilder.Build(old, null, target, null);
        Assert.Equal(target, DeltaApplier.Apply(old, built.Patch));
        Assert.False(built.WorthOffering());
    }

    [Fact]
    public void Large_tensors_are_split_into_bounded_pieces()
    {
        var (old, oldRegions) = FakeModel(8, 1, 3 << 20);
        var (target, targetRegions) = FakeModel(8, 1, 3 << 20, (_, n) => Floats(n, 12345));
        var built = DeltaBuilder.Build(old, oldRegions, target, targetRegions, new DeltaBuildOptions { ChunkBytes = 1 << 20 });
        Assert.True(built.Pieces.Count(p => p.Key == "layer0.weight") >= 3);
        Assert.All(built.Pieces, p => Assert.InRange(p.TargetLength, 1, 1 << 20));
        Assert.Equal(target, DeltaApplier.Apply(old, built.Patch));
    }

    // ------------------------------------------------------------ hostile patches

    private static (byte[] Old, byte[] Target, byte[] Patch) Sample()
    {
        var (old, oldRegions) = FakeModel(5, 6, 16_000);
        var (target, targetRegions) = FakeModel(5, 6, 16_000, (i, n) => i == 2 ? Floats(n, 77) : i == 4 ? XorSome(Floats(n, 5004)) : null);
        var built = DeltaBuilder.Build(old, oldRegions, target, targetRegions);
        return (old, target, built.Patch);
    }

    private static byte[] XorSome(byte[] b)
    {
        for (int i = 0; i < b.Length; i += 13) b[i] ^= 1;
        return b;
    }

    /// <summary>Rewrites a header field of piece <paramref name="piece"/> and fixes the header checksum (a hostile server, not corruption).</summary>
    private static byte[] WithPieceField(byte[] patch, int piece, int fieldOffset, long value)
    {
        var p = (byte[])patch.Clone();
        int at = DeltaHeader.FixedBytes + piece * DeltaHeader.PieceBytes + fieldOffset;
        if (fieldOffset < 2) p[at] = (byte)value;
        else BinaryPrimitives.WriteInt64LittleEndian(p.AsSpan(at), value);
        return Rechecksum(p);
    }

    private static byte[] Rechecksum(byte[] p)
    {
        int h = (int)BinaryPrimitives.ReadUInt32LittleEndian(p.AsSpan(8));
        SHA256.HashData(p.AsSpan(0, h - 32), p.AsSpan(h - 32));
        return p;
    }

    [Fact]
    public void Hostile_headers_give_typed_errors()
    {
        var (old, _, patch) = Sample();
        var header = DeltaHeader.Parse(patch.AsSpan(0, DeltaHeader.ReadHeaderLength(patch)));
        int copy = header.Pieces.ToList().FindIndex(p => p.Kind == DeltaPieceKind.Copy);
        int xor = header.Pieces.ToList().FindIndex(p => p.Kind is DeltaPieceKind.XorBrotli or DeltaPieceKind.AddBrotli or DeltaPieceKind.LiteralBrotli);
        Assert.True(copy >= 0 && xor >= 0);

        void Rejected(byte[] bad, string contains)
        {
            var e = Assert.ThrowsAny<DeltaPatchException>(() => DeltaApplier.Apply(old, bad));
            Assert.Contains(contains, e.Message);
        }

        var badMagic = (byte[])patch.Clone(); badMagic[0] = (byte)'X';
        Rejected(badMagic, "magic");
        var hugeHeader = (byte[])patch.Clone(); BinaryPrimitives.WriteUInt32LittleEndian(hugeHeader.AsSpan(8), int.MaxValue);
        Rejected(hugeHeader, "MaxHeaderBytes");
        var corrupt = (byte[])patch.Clone(); corrupt[DeltaHeader.FixedBytes + 5] ^= 1;
        Rejected(corrupt, "checksum");
        Rejected(patch[..(patch.Length - 1)], "ends inside");
        Rejected([.. patch, 0], "follows the last piece");
        Rejected(WithPieceField(patch, copy, 2 + 8, old.Length - 10), "outside"); // copy past the end of the old file
        Rejected(WithPieceField(patch, copy, 2 + 8, long.MaxValue - 1), "outside");
        Rejected(WithPieceField(patch, copy, 2, 0), "outside [1,");                  // zero-length piece
        Rejected(WithPieceField(patch, copy, 2, -5), "negative");
        Rejected(WithPieceField(patch, xor, 2 + 24, 1L << 40), "MaxPieceBytes");    // payload length
        Rejected(WithPieceField(patch, xor, 0, 77), "unknown kind");
        Rejected(WithPieceField(patch, xor, 1, 3), "shuffle width");
        Rejected(WithPieceField(patch, copy, 2 + 8, header.Pieces[copy].OldOffset + 1), "SHA-256"); // copies other old bytes: hash mismatch
        var wrongHash = (byte[])patch.Clone();
        wrongHash[DeltaHeader.FixedBytes + copy * DeltaHeader.PieceBytes + 34] ^= 0xFF;
        Assert.IsType<DeltaPieceHashException>(Record.Exception(() => DeltaApplier.Apply(old, Rechecksum(wrongHash))));
        var payloadFlip = (byte[])patch.Clone();
        payloadFlip[header.PayloadOffsetOf(xor) + header.Pieces[xor].PayloadLength / 2] ^= 0x40;
        Assert.IsAssignableFrom<DeltaPatchException>(Record.Exception(() => DeltaApplier.Apply(old, payloadFlip)));
        // The right patch for another old file.
        var other = (byte[])old.Clone(); other[^1] ^= 1;
        Assert.IsAssignableFrom<DeltaPatchException>(Record.Exception(() => DeltaApplier.Apply(other[..^1], patch)));
    }

    [Fact]
    public void Links_are_checked_against_the_installed_and_trusted_files()
    {
        var (old, target, patch) = Sample();
        var h = DeltaHeader.Parse(patch.AsSpan(0, DeltaHeader.ReadHeaderLength(patch)));
        string Sha(byte[] b) => Convert.ToHexStringLower(SHA256.HashData(b));
        DeltaApplier.CheckLinks(h, old.Length, Sha(old), target.Length, Sha(target));
        Assert.Throws<DeltaPatchException>(() => DeltaApplier.CheckLinks(h, old.Length, Sha(target), target.Length, Sha(target)));
        Assert.Throws<DeltaPatchException>(() => DeltaApplier.CheckLinks(h, old.Length, Sha(old), target.Length + 1, Sha(target)));
        Assert.Throws<DeltaPatchException>(() => DeltaApplier.CheckLinks(h, old.Length, Sha(old), target.Length, Sha(old)));
    }

    /// <summary>
    /// Random mutations of valid patches (bit flips, byte stores, truncation, insertion, and header fields rewritten
    /// with a valid checksum): applying gives a <see cref="DeltaPatchException"/> or exactly the target, nothing else.
    /// </summary>
    [Fact]
    public void Fuzzed_patches_give_a_typed_error_or_the_exact_target()
    {
        var cases = new List<(byte[] Old, byte[] Target, byte[] Patch)> { Sample() };
        var gOld = Random(40_000, 11);
        var gTarget = gOld[..20_000].Concat(Random(3_000, 12)).Concat(gOld[25_000..]).ToArray();
        cases.Add((gOld, gTarget, DeltaBuilder.Build(gOld, null, gTarget, null).Patch));
        var rng = new Random(2026);
        int typed = 0, exact = 0;
        for (int iter = 0; iter < 3000; iter++)
        {
            var (old, target, patch) = cases[iter % cases.Count];
            var m = (byte[])patch.Clone();
            int headerLength = DeltaHeader.ReadHeaderLength(patch);
            bool fixChecksum = false;
            switch (rng.Next(6))
            {
                case 0: m[rng.Next(m.Length)] ^= (byte)(1 << rng.Next(8)); break;
                case 1: for (int k = rng.Next(1, 8); k > 0; k--) m[rng.Next(m.Length)] = (byte)rng.Next(256); break;
                case 2: m = m[..rng.Next(m.Length)]; break;
                case 3: { int at = rng.Next(m.Length); m = [.. m[..at], .. Random(rng.Next(1, 40), iter), .. m[at..]]; break; }
                case 4: // a header field, checksum fixed: exercises structural validation
                    m[rng.Next(12, headerLength - 32)] = (byte)rng.Next(256);
                    fixChecksum = true;
                    break;
                default: // a 64-bit length or offset of a piece set to an extreme or nearby value, checksum fixed
                {
                    int count = (headerLength - DeltaHeader.FixedBytes - 32) / DeltaHeader.PieceBytes;
                    int at = DeltaHeader.FixedBytes + rng.Next(count) * DeltaHeader.PieceBytes + 2 + 8 * rng.Next(4);
                    long v = BinaryPrimitives.ReadInt64LittleEndian(m.AsSpan(at));
                    long[] choices = [0, 1, -1, long.MaxValue, long.MinValue, int.MaxValue, v + 1, v - 1, v * 2, old.Length, target.Length];
                    BinaryPrimitives.WriteInt64LittleEndian(m.AsSpan(at), choices[rng.Next(choices.Length)]);
                    fixChecksum = true;
                    break;
                }
            }
            if (fixChecksum) Rechecksum(m);
            try
            {
                var result = DeltaApplier.Apply(old, m);
                Assert.Equal(target, result);
                exact++;
            }
            catch (DeltaPatchException) { typed++; }
        }
        Assert.True(typed > 2000, $"typed errors {typed}, exact results {exact}");
    }
}
