using System.Buffers.Binary;
using OnDevice.Evaluation.Data;
using OnDevice.TestSupport;

namespace OnDevice.Evaluation.Tests;

public class PngDecoderTests
{
    /// <summary>(name, ImageMagick options that select the PNG form, expected channels, tolerance).</summary>
    public static TheoryData<string, string[], int, int> Forms() => new()
    {
        { "rgb8", ["PNG24:"], 3, 0 },
        { "rgba8", ["-alpha", "set", "-channel", "A", "-fx", "(i+j)/(w+h)", "+channel", "PNG32:"], 4, 0 },
        { "gray8", ["-colorspace", "Gray", "-define", "png:color-type=0", "-define", "png:bit-depth=8", "PNG:"], 1, 0 },
        { "grayalpha8", ["-colorspace", "Gray", "-alpha", "set", "-channel", "A", "-fx", "i/w", "+channel", "-define", "png:color-type=4", "-define", "png:bit-depth=8", "PNG:"], 2, 0 },
        { "palette", ["-colors", "13", "PNG8:"], 3, 0 },
        { "gray16", ["-colorspace", "Gray", "-depth", "16", "-define", "png:color-type=0", "-define", "png:bit-depth=16", "PNG:"], 1, 1 },
        { "rgb16", ["-depth", "16", "PNG48:"], 3, 1 },
        { "gray1", ["-monochrome", "-define", "png:color-type=0", "-define", "png:bit-depth=1", "PNG:"], 1, 0 },
        { "gray4", ["-colorspace", "Gray", "-depth", "4", "-define", "png:color-type=0", "-define", "png:bit-depth=4", "PNG:"], 1, 0 },
        { "filter-none", ["-quality", "90", "PNG24:"], 3, 0 },
        { "filter-sub", ["-quality", "91", "PNG24:"], 3, 0 },
        { "filter-up", ["-quality", "92", "PNG24:"], 3, 0 },
        { "filter-average", ["-quality", "93", "PNG24:"], 3, 0 },
        { "filter-paeth", ["-quality", "94", "PNG24:"], 3, 0 },
        { "filter-adaptive-gray", ["-colorspace", "Gray", "-quality", "95", "-define", "png:color-type=0", "-define", "png:bit-depth=8", "PNG:"], 1, 0 },
    };

    [Theory]
    [MemberData(nameof(Forms))]
    public void Decode_MatchesImageMagicksPixels(string name, string[] form, int channels, int tolerance)
    {
        if (!Magick.Require()) return;
        using var dir = new TempDir();
        var file = dir.File(name + ".png");
        // A 37x23 seeded plasma: odd width exercises partial bytes at low bit depths and filter edges.
        string[] source = ["-seed", "7", "-size", "37x23", "plasma:red-blue"];
        var target = form[^1] + file;
        Magick.Run([.. source, .. form[..^1], target]);
        var img = PngDecoder.Decode(file);
        Assert.Equal((37, 23, channels), (img.Width, img.Height, img.Channels));

        var expected = Magick.Run(file, "-depth", "8", "rgba:-");
        Assert.Equal(37 * 23 * 4, expected.Length);
        for (int i = 0; i < 37 * 23; i++)
        {
            byte[] ours = channels switch
            {
                1 => [img.Pixels[i], img.Pixels[i], img.Pixels[i], 255],
                2 => [img.Pixels[2 * i], img.Pixels[2 * i], img.Pixels[2 * i], img.Pixels[2 * i + 1]],
                3 => [img.Pixels[3 * i], img.Pixels[3 * i + 1], img.Pixels[3 * i + 2], 255],
                _ => img.Pixels.AsSpan(4 * i, 4).ToArray(),
            };
            for (int c = 0; c < 4; c++)
                Assert.True(Math.Abs(ours[c] - expected[4 * i + c]) <= tolerance, $"{name}: pixel {i % 37},{i / 37} channel {c}: ours {ours[c]}, ImageMagick {expected[4 * i + c]}");
        }
    }

    [Fact]
    public void PaletteWithTransparency_GivesRgba()
    {
        if (!Magick.Require()) return;
        using var dir = new TempDir();
        var file = dir.File("p.png");
        Magick.Run("-size", "16x8", "xc:none", "-fill", "red", "-draw", "rectangle 2,2 9,5", "PNG8:" + file);
        var img = PngDecoder.Decode(file);
        Assert.Equal(4, img.Channels);
        Assert.Equal(0, img.Pixels[3]); // corner is transparent
        int o = (3 * 16 + 4) * 4;
        Assert.Equal(new byte[] { 255, 0, 0, 255 }, img.Pixels[o..(o + 4)]);
        Assert.Equal(new byte[] { 255, 0, 0 }, img.ToRgb()[((3 * 16 + 4) * 3)..((3 * 16 + 4) * 3 + 3)]);
    }

    [Fact]
    public void Interlaced_IsRefusedClearly()
    {
        if (!Magick.Require()) return;
        using var dir = new TempDir();
        var file = dir.File("i.png");
        Magick.Run("-size", "20x10", "gradient:", "-interlace", "PNG", "PNG24:" + file);
        var e = Assert.Throws<PngFormatException>(() => PngDecoder.Decode(file));
        Assert.Contains("interlaced", e.Message);
        Assert.Contains(file, e.Message);
    }

    [Fact]
    public void Paeth_PicksTheNearestNeighbour()
    {
        Assert.Equal(20, PngDecoder.Paeth(10, 20, 10)); // p = 20: closest to b
        Assert.Equal(10, PngDecoder.Paeth(10, 20, 20)); // p = 10: closest to a
        Assert.Equal(7, PngDecoder.Paeth(5, 9, 7)); // p = 7: pa = pb = 2, pc = 0 → c
        Assert.Equal(30, PngDecoder.Paeth(40, 30, 60)); // p = 10: pa = 30, pb = 20, pc = 50 → b
    }

    // ---- bad input ----

    private static byte[] Valid()
    {
        var w = new TestPngWriter(5, 4, colorType: 2);
        for (int i = 0; i < w.Pixels.Length; i++) w.Pixels[i] = (byte)(i * 7);
        return w.Encode(filter: 4);
    }

    [Fact]
    public void TestWriter_RoundTrips_EveryFilter()
    {
        for (int f = 0; f <= 4; f++)
        {
            var w = new TestPngWriter(9, 6, colorType: 6);
            var rng = new Random(f);
            rng.NextBytes(w.Pixels);
            var img = PngDecoder.Decode(w.Encode(filter: f));
            Assert.Equal(w.Pixels, img.Pixels);
        }
    }

    [Fact]
    public void Truncated_AtEveryLength_IsATypedError()
    {
        var png = Valid();
        for (int n = 0; n < png.Length; n++)
        {
            var e = Assert.Throws<PngFormatException>(() => PngDecoder.Decode(png.AsSpan(0, n), "t.png"));
            Assert.StartsWith("t.png: ", e.Message);
        }
    }

    [Fact]
    public void BadCrc_IsReported()
    {
        var png = Valid();
        png[^20] ^= 0x40; // inside the IDAT data
        var e = Assert.Throws<PngFormatException>(() => PngDecoder.Decode(png, "c.png"));
        Assert.Contains("bad CRC", e.Message);
    }

    [Fact]
    public void HugeDimensions_FailBeforeAllocating()
    {
        var w = new TestPngWriter(1, 1, colorType: 0);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<PngFormatException>(() => PngDecoder.Decode(w.Encode(0, width: 100_000, height: 100_000), "h.png"));
        Assert.Contains("pixel limit", e.Message);
        // Under the pixel limit but with almost no data: fails as truncated, without allocating the declared size.
        var e2 = Assert.Throws<PngFormatException>(() => PngDecoder.Decode(w.Encode(0, width: 8000, height: 8000), "h2.png"));
        Assert.Contains("truncated image data", e2.Message);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 8 << 20, "decoder allocated the declared size of a tiny file");
    }

    [Fact]
    public void BadFilterByte_BadPaletteIndex_BadDepth_AreReported()
    {
        var w = new TestPngWriter(3, 2, colorType: 0);
        Assert.Contains("unknown filter type 9", Assert.Throws<PngFormatException>(() => PngDecoder.Decode(w.Encode(9))).Message);
        var p = new TestPngWriter(3, 2, colorType: 3) { Palette = [0, 0, 0, 255, 255, 255] };
        p.Pixels[4] = 5;
        Assert.Contains("palette index 5", Assert.Throws<PngFormatException>(() => PngDecoder.Decode(p.Encode(0))).Message);
        Assert.Contains("bit depth 3", Assert.Throws<PngFormatException>(() => PngDecoder.Decode(w.Encode(0, bitDepth: 3))).Message);
        Assert.Contains("bad signature", Assert.Throws<PngFormatException>(() => PngDecoder.Decode("GIF89a..."u8.ToArray())).Message);
    }

    [Fact]
    public void Fuzz_MutatedFiles_OnlyEverThrowPngFormatException()
    {
        var seedPng = Valid();
        var rng = new Random(1234);
        int decoded = 0, refused = 0;
        for (int iter = 0; iter < 3000; iter++)
        {
            var png = (byte[])seedPng.Clone();
            int flips = 1 + rng.Next(4);
            for (int k = 0; k < flips; k++) png[8 + rng.Next(png.Length - 8)] = (byte)rng.Next(256);
            if (iter % 2 == 0) TestPngWriter.FixCrcs(png); // so mutations reach the header, zlib and filter code
            try { PngDecoder.Decode(png, "fuzz"); decoded++; }
            catch (PngFormatException) { refused++; }
        }
        Assert.True(refused > 0 && decoded + refused == 3000);
    }
}

/// <summary>A minimal PNG encoder for tests: one IDAT, a chosen filter for every row, optional header overrides.</summary>
internal sealed class TestPngWriter(int width, int height, int colorType)
{
    public byte[] Pixels { get; } = new byte[width * height * (colorType switch { 0 or 3 => 1, 4 => 2, 2 => 3, _ => 4 })];

    public byte[]? Palette { get; init; }

    public byte[] Encode(int filter, int? width = null, int? height = null, int bitDepth = 8)
    {
        int bpp = Pixels.Length / (width_ * height_);
        int rowBytes = width_ * bpp;
        using var raw = new MemoryStream();
        var prev = new byte[rowBytes];
        for (int y = 0; y < height_; y++)
        {
            var row = Pixels.AsSpan(y * rowBytes, rowBytes);
            raw.WriteByte((byte)filter);
            for (int i = 0; i < rowBytes; i++)
            {
                int a = i >= bpp ? row[i - bpp] : 0, b = prev[i], c = i >= bpp ? prev[i - bpp] : 0;
                int pred = filter switch { 1 => a, 2 => b, 3 => (a + b) >> 1, 4 => Data.PngDecoder.Paeth(a, b, c), _ => 0 };
                raw.WriteByte((byte)(row[i] - pred));
            }
            row.CopyTo(prev);
        }
        using var z = new MemoryStream();
        using (var zs = new System.IO.Compression.ZLibStream(z, System.IO.Compression.CompressionLevel.Optimal, true)) raw.WriteTo(zs);
        using var png = new MemoryStream();
        png.Write([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]);
        var ihdr = new byte[13];
        BinaryPrimitives.WriteUInt32BigEndian(ihdr, (uint)(width ?? width_));
        BinaryPrimitives.WriteUInt32BigEndian(ihdr.AsSpan(4), (uint)(height ?? height_));
        ihdr[8] = (byte)bitDepth; ihdr[9] = (byte)colorType;
        Chunk(png, "IHDR", ihdr);
        if (Palette is not null) Chunk(png, "PLTE", Palette);
        Chunk(png, "IDAT", z.ToArray());
        Chunk(png, "IEND", []);
        return png.ToArray();
    }

    private readonly int width_ = width, height_ = height;

    private static void Chunk(Stream s, string type, byte[] data)
    {
        var buf = new byte[12 + data.Length];
        BinaryPrimitives.WriteUInt32BigEndian(buf, (uint)data.Length);
        System.Text.Encoding.ASCII.GetBytes(type).CopyTo(buf, 4);
        data.CopyTo(buf, 8);
        BinaryPrimitives.WriteUInt32BigEndian(buf.AsSpan(8 + data.Length), Data.Crc32.Compute(buf.AsSpan(4, 4 + data.Length)));
        s.Write(buf);
    }

    /// <summary>Rewrites every chunk's CRC (where the chunk structure is still walkable).</summary>
    public static void FixCrcs(byte[] png)
    {
        int pos = 8;
        while (pos + 12 <= png.Length)
        {
            uint len = BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(pos));
            if (len > png.Length - pos - 12) return;
            BinaryPrimitives.WriteUInt32BigEndian(png.AsSpan(pos + 8 + (int)len), Data.Crc32.Compute(png.AsSpan(pos + 4, 4 + (int)len)));
            pos += 12 + (int)len;
        }
    }
}
