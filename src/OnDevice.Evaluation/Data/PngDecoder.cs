using System.Buffers.Binary;
using System.IO.Compression;

namespace OnDevice.Evaluation.Data;

/// <summary>A decoded image: 8 bits per sample, rows top to bottom, samples interleaved.</summary>
/// <param name="Width">Pixels per row.</param>
/// <param name="Height">Rows.</param>
/// <param name="Channels">1 gray, 2 gray+alpha, 3 RGB, 4 RGBA.</param>
/// <param name="Pixels">Width·Height·Channels bytes.</param>
public sealed record Image(int Width, int Height, int Channels, byte[] Pixels)
{
    /// <summary>
    /// The image as 8-bit RGB (3 bytes a pixel). Gray is replicated; alpha is dropped, as OpenCV's
    /// <c>imread(IMREAD_COLOR)</c> does, so results match Python pipelines that read files that way.
    /// </summary>
    public byte[] ToRgb()
    {
        if (Channels == 3) return Pixels;
        var rgb = new byte[Width * Height * 3];
        int n = Width * Height;
        for (int i = 0; i < n; i++)
        {
            switch (Channels)
            {
                case 1 or 2:
                    byte g = Pixels[i * Channels];
                    rgb[i * 3] = rgb[i * 3 + 1] = rgb[i * 3 + 2] = g;
                    break;
                default:
                    rgb[i * 3] = Pixels[i * 4]; rgb[i * 3 + 1] = Pixels[i * 4 + 1]; rgb[i * 3 + 2] = Pixels[i * 4 + 2];
                    break;
            }
        }
        return rgb;
    }
}

/// <summary>
/// A PNG decoder (ISO/IEC 15948) on <see cref="ZLibStream"/>: every colour type (gray, RGB, palette, gray+alpha,
/// RGBA) at every bit depth, all five row filters, palette transparency (tRNS). 16-bit samples are reduced to their
/// high byte. Interlaced (Adam7) files are refused with a clear error. Every chunk's CRC is checked, and memory is
/// bounded: the decoded size is known from the header and limited by <see cref="MaxPixels"/> before anything is
/// inflated, and inflation stops at that size.
/// </summary>
public static class PngDecoder
{
    /// <summary>Largest image accepted, in pixels (width·height).</summary>
    public const long MaxPixels = 64L * 1024 * 1024;

    /// <summary>Largest PNG file accepted, in bytes.</summary>
    public const long MaxFileBytes = 256L * 1024 * 1024;

    private static ReadOnlySpan<byte> Signature => [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>Decodes the PNG file at <paramref name="path"/>.</summary>
    public static Image Decode(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists) throw new PngFormatException(path, "file not found");
        if (info.Length > MaxFileBytes) throw new PngFormatException(path, $"file is {info.Length} bytes, more than the {MaxFileBytes}-byte limit");
        return Decode(File.ReadAllBytes(path), path);
    }

    /// <summary>Decodes PNG bytes; <paramref name="name"/> appears in error messages.</summary>
    public static Image Decode(ReadOnlySpan<byte> png, string name = "<png>")
    {
        if (png.Length < 8 || !png[..8].SequenceEqual(Signature)) throw new PngFormatException(name, "not a PNG file (bad signature)");
        int pos = 8;
        Header? header = null;
        byte[]? palette = null;
        byte[]? paletteAlpha = null;
        using var idat = new MemoryStream();
        bool sawEnd = false;
        while (!sawEnd)
        {
            if (png.Length - pos < 12) throw new PngFormatException(name, $"truncated: chunk header expected at byte {pos}");
            uint length = BinaryPrimitives.ReadUInt32BigEndian(png[pos..]);
            if (length > int.MaxValue || length > png.Length - pos - 12)
                throw new PngFormatException(name, $"truncated: chunk at byte {pos} declares {length} bytes, {Math.Max(0, png.Length - pos - 12)} remain");
            var typeBytes = png.Slice(pos + 4, 4);
            string type = System.Text.Encoding.ASCII.GetString(typeBytes);
            var data = png.Slice(pos + 8, (int)length);
            uint crc = BinaryPrimitives.ReadUInt32BigEndian(png[(pos + 8 + (int)length)..]);
            uint actual = Crc32.Compute(png.Slice(pos + 4, 4 + (int)length));
            if (crc != actual) throw new PngFormatException(name, $"bad CRC in {type} chunk at byte {pos} (stored {crc:x8}, computed {actual:x8})");
            pos += 12 + (int)length;

            if (header is null && type != "IHDR") throw new PngFormatException(name, $"first chunk is {type}, expected IHDR");
            switch (type)
            {
                case "IHDR":
                    if (header is not null) throw new PngFormatException(name, "more than one IHDR chunk");
                    header = ParseHeader(data, name);
                    break;
                case "PLTE":
                    if (data.Length % 3 != 0 || data.Length == 0 || data.Length > 256 * 3) throw new PngFormatException(name, $"PLTE chunk has {data.Length} bytes (must be 3..768, a multiple of 3)");
                    palette = data.ToArray();
                    break;
                case "tRNS":
                    if (header!.ColorType == 3) paletteAlpha = data.ToArray();
                    break; // gray/RGB colour keys are ignored: alpha is dropped downstream anyway
                case "IDAT":
                    idat.Write(data);
                    break;
                case "IEND":
                    sawEnd = true;
                    break;
                default:
                    if (char.IsUpper(type[0])) throw new PngFormatException(name, $"unknown critical chunk '{type}'");
                    break;
            }
        }
        var h = header!;
        if (h.ColorType == 3 && palette is null) throw new PngFormatException(name, "palette image without a PLTE chunk");
        if (idat.Length == 0) throw new PngFormatException(name, "no IDAT chunk (no image data)");

        int bitsPerPixel = h.BitDepth * h.SamplesPerPixel;
        long rowBytes = ((long)h.Width * bitsPerPixel + 7) / 8;
        long rawBytes = (rowBytes + 1) * h.Height;
        // Grow the buffer as data arrives, so a tiny file declaring a huge image fails before allocating for it.
        var raw = new byte[Math.Min(rawBytes, 1 << 20)];
        idat.Position = 0;
        try
        {
            using var z = new ZLibStream(idat, CompressionMode.Decompress);
            int got = 0;
            while (got < rawBytes)
            {
                if (got == raw.Length) Array.Resize(ref raw, (int)Math.Min(rawBytes, 2L * raw.Length));
                int n = z.Read(raw, got, raw.Length - got);
                if (n == 0) throw new PngFormatException(name, $"truncated image data: {got} of {rawBytes} decoded bytes");
                got += n;
            }
        }
        catch (InvalidDataException e) { throw new PngFormatException(name, $"corrupt compressed image data: {e.Message}"); }

        Unfilter(raw, (int)rowBytes, h.Height, Math.Max(1, bitsPerPixel / 8), name);
        return Expand(h, raw, (int)rowBytes, palette, paletteAlpha, name);
    }

    private sealed record Header(int Width, int Height, int BitDepth, int ColorType)
    {
        public int SamplesPerPixel => ColorType switch { 0 => 1, 2 => 3, 3 => 1, 4 => 2, _ => 4 };
    }

    private static Header ParseHeader(ReadOnlySpan<byte> d, string name)
    {
        if (d.Length != 13) throw new PngFormatException(name, $"IHDR has {d.Length} bytes, expected 13");
        uint w = BinaryPrimitives.ReadUInt32BigEndian(d), hgt = BinaryPrimitives.ReadUInt32BigEndian(d[4..]);
        int depth = d[8], color = d[9];
        if (w == 0 || hgt == 0 || w > int.MaxValue || hgt > int.MaxValue) throw new PngFormatException(name, $"invalid dimensions {w}x{hgt}");
        if ((long)w * hgt > MaxPixels) throw new PngFormatException(name, $"image is {w}x{hgt} = {(long)w * hgt} pixels, more than the {MaxPixels}-pixel limit");
        bool ok = color switch
        {
            0 => depth is 1 or 2 or 4 or 8 or 16,
            3 => depth is 1 or 2 or 4 or 8,
            2 or 4 or 6 => depth is 8 or 16,
            _ => false,
        };
        if (!ok) throw new PngFormatException(name, $"invalid colour type {color} with bit depth {depth}");
        if (d[10] != 0) throw new PngFormatException(name, $"unknown compression method {d[10]}");
        if (d[11] != 0) throw new PngFormatException(name, $"unknown filter method {d[11]}");
        if (d[12] == 1) throw new PngFormatException(name, "interlaced (Adam7) PNG is not supported; re-save it without interlacing (e.g. convert IN -interlace none OUT)");
        if (d[12] != 0) throw new PngFormatException(name, $"unknown interlace method {d[12]}");
        return new Header((int)w, (int)hgt, depth, color);
    }

    /// <summary>Reverses the per-row filters in place (raw holds filter byte + row bytes per row).</summary>
    internal static void Unfilter(byte[] raw, int rowBytes, int height, int bpp, string name)
    {
        int stride = rowBytes + 1;
        for (int y = 0; y < height; y++)
        {
            int row = y * stride + 1, prev = row - stride;
            byte filter = raw[row - 1];
            switch (filter)
            {
                case 0: break;
                case 1:
                    for (int i = bpp; i < rowBytes; i++) raw[row + i] += raw[row + i - bpp];
                    break;
                case 2:
                    if (y > 0) for (int i = 0; i < rowBytes; i++) raw[row + i] += raw[prev + i];
                    break;
                case 3:
                    for (int i = 0; i < rowBytes; i++)
                    {
                        int left = i >= bpp ? raw[row + i - bpp] : 0, up = y > 0 ? raw[prev + i] : 0;
                        raw[row + i] += (byte)((left + up) >> 1);
                    }
                    break;
                case 4:
                    for (int i = 0; i < rowBytes; i++)
                    {
                        int a = i >= bpp ? raw[row + i - bpp] : 0, b = y > 0 ? raw[prev + i] : 0, c = i >= bpp && y > 0 ? raw[prev + i - bpp] : 0;
                        raw[row + i] += (byte)Paeth(a, b, c);
                    }
                    break;
                default:
                    throw new PngFormatException(name, $"row {y} has unknown filter type {filter}");
            }
        }
    }

    internal static int Paeth(int a, int b, int c)
    {
        int p = a + b - c, pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }

    private static Image Expand(Header h, byte[] raw, int rowBytes, byte[]? palette, byte[]? paletteAlpha, string name)
    {
        int stride = rowBytes + 1;
        int spp = h.SamplesPerPixel;
        if (h.ColorType == 3)
        {
            int colours = palette!.Length / 3;
            bool alpha = paletteAlpha is { Length: > 0 };
            int ch = alpha ? 4 : 3;
            var px = new byte[h.Width * h.Height * ch];
            for (int y = 0; y < h.Height; y++)
                for (int x = 0; x < h.Width; x++)
                {
                    int idx = Sample(raw, y * stride + 1, x, h.BitDepth);
                    if (idx >= colours) throw new PngFormatException(name, $"pixel ({x},{y}) uses palette index {idx}, the palette has {colours} colours");
                    int o = (y * h.Width + x) * ch;
                    px[o] = palette[idx * 3]; px[o + 1] = palette[idx * 3 + 1]; px[o + 2] = palette[idx * 3 + 2];
                    if (alpha) px[o + 3] = idx < paletteAlpha!.Length ? paletteAlpha[idx] : (byte)255;
                }
            return new Image(h.Width, h.Height, ch, px);
        }
        var pixels = new byte[h.Width * h.Height * spp];
        if (h.BitDepth == 8)
        {
            for (int y = 0; y < h.Height; y++) Buffer.BlockCopy(raw, y * stride + 1, pixels, y * h.Width * spp, h.Width * spp);
        }
        else if (h.BitDepth == 16)
        {
            for (int y = 0; y < h.Height; y++)
                for (int i = 0; i < h.Width * spp; i++) pixels[y * h.Width * spp + i] = raw[y * stride + 1 + 2 * i];
        }
        else
        {
            // Gray at 1, 2 or 4 bits: scale to 0..255 by replicating the bits.
            int max = (1 << h.BitDepth) - 1;
            for (int y = 0; y < h.Height; y++)
                for (int x = 0; x < h.Width; x++)
                    pixels[y * h.Width + x] = (byte)(Sample(raw, y * stride + 1, x, h.BitDepth) * 255 / max);
        }
        return new Image(h.Width, h.Height, spp, pixels);
    }

    private static int Sample(byte[] raw, int rowStart, int x, int depth)
    {
        if (depth == 8) return raw[rowStart + x];
        int bit = x * depth;
        int b = raw[rowStart + bit / 8];
        int shift = 8 - depth - bit % 8;
        return (b >> shift) & ((1 << depth) - 1);
    }
}

/// <summary>CRC-32 (ISO 3309, polynomial 0xEDB88320) as PNG chunks use it.</summary>
internal static class Crc32
{
    private static readonly uint[] Table = Build();

    private static uint[] Build()
    {
        var t = new uint[256];
        for (uint n = 0; n < 256; n++)
        {
            uint c = n;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[n] = c;
        }
        return t;
    }

    /// <summary>CRC of <paramref name="data"/>.</summary>
    public static uint Compute(ReadOnlySpan<byte> data)
    {
        uint c = 0xFFFFFFFFu;
        foreach (byte b in data) c = Table[(c ^ b) & 0xFF] ^ (c >> 8);
        return c ^ 0xFFFFFFFFu;
    }
}
