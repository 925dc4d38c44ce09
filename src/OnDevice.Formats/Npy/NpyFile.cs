using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using OnDevice.Core;

namespace OnDevice.Formats.Npy;

/// <summary>
/// Reads and writes single arrays in NumPy's <c>.npy</c> format (versions 1.0, 2.0 and 3.0). A file is the magic
/// <c>\x93NUMPY</c>, a version, a little-endian header length, a Python dict literal
/// <c>{'descr': '&lt;f4', 'fortran_order': False, 'shape': (2, 3), }</c> padded with spaces and a newline, then the
/// raw elements in C order. Only simple numeric dtypes are supported; structured, string, object, complex and
/// datetime arrays are refused. Every fault in the input is a <see cref="ModelFormatException"/> naming the file.
/// </summary>
public static class NpyFile
{
    /// <summary>Longest header (the dict literal and its padding) accepted on read or produced on write, in bytes.</summary>
    public const int MaxHeaderBytes = 1 << 20;

    /// <summary>numpy aligns the start of the data to this many bytes.</summary>
    private const int ArrayAlignBytes = 64;

    /// <summary>numpy leaves this many characters for the growable axis so a file can be appended to in place.</summary>
    private const int GrowthAxisMaxDigits = 21;

    /// <summary>Magic (6 bytes) plus the major and minor version bytes.</summary>
    private const int MagicAndVersionBytes = 8;

    private static ReadOnlySpan<byte> Magic => [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    private static readonly UTF8Encoding StrictUtf8 = new(false, true);

    private const string SupportedDescrs = "<f2 <f4 <f8 |i1 |u1 <i2 <u2 <i4 <u4 <i8 <u8 |b1";

    /// <summary>
    /// Reads the array in <paramref name="path"/>. The file is memory-mapped and the tensor's bytes are a slice of
    /// the mapping (not copied), except for big-endian files, whose elements are byte-swapped into an owned array.
    /// The tensor is named after the file (its name without extension).
    /// </summary>
    public static Tensor Read(string path)
    {
        var full = Path.GetFullPath(path);
        MappedFile mapped;
        try
        {
            if (!File.Exists(full))
                throw new ModelFormatException(path, Directory.Exists(full) ? "is a directory, not a .npy file" : "file not found");
            mapped = MappedFile.Open(full);
        }
        catch (IOException e) { throw new ModelFormatException(path, $"cannot read: {e.Message}", e); }
        catch (UnauthorizedAccessException e) { throw new ModelFormatException(path, $"cannot read: {e.Message}", e); }

        int prefixLength = (int)Math.Min(mapped.Length, MagicAndVersionBytes + 4 + MaxHeaderBytes);
        var h = ParseHeader(mapped.Span(0, prefixLength), mapped.Length, path);
        Memory<byte> data = h.SwapBytes
            ? Swapped(mapped.Span(h.DataOffset, h.DataBytes), h.DType)
            : mapped.Slice(h.DataOffset, h.DataBytes);
        GC.KeepAlive(mapped);
        return Tensor.FromBytes(h.DType, h.Dims, data, Path.GetFileNameWithoutExtension(full));
    }

    /// <summary>
    /// Reads an array from <paramref name="bytes"/> (a whole <c>.npy</c> file). The tensor aliases
    /// <paramref name="bytes"/> (no copy) unless the file is big-endian. <paramref name="nameForErrors"/> names the
    /// input in exception messages. The tensor's name is empty.
    /// </summary>
    public static Tensor Read(ReadOnlyMemory<byte> bytes, string? nameForErrors = null)
    {
        var h = ParseHeader(bytes.Span, bytes.Length, nameForErrors);
        var slice = bytes.Slice((int)h.DataOffset, h.DataBytes);
        Memory<byte> data = h.SwapBytes ? Swapped(slice.Span, h.DType) : MemoryMarshal.AsMemory(slice);
        return Tensor.FromBytes(h.DType, h.Dims, data);
    }

    /// <summary>
    /// Atomically writes <paramref name="t"/> to <paramref name="path"/> exactly as <c>numpy.save</c> would
    /// (format 1.0, or 2.0 when the header does not fit in 65535 bytes).
    /// </summary>
    /// <exception cref="ArgumentException">The dtype has no numpy equivalent (bfloat16, int4, uint4, string).</exception>
    public static void Write(string path, Tensor t)
    {
        var header = BuildHeader(t);
        AtomicFile.Write(path, fs =>
        {
            fs.Write(header);
            fs.Write(t.Bytes);
        });
    }

    /// <summary>The complete <c>.npy</c> file for <paramref name="t"/>, as <see cref="Write"/> would write it.</summary>
    /// <exception cref="ArgumentException">The dtype has no numpy equivalent (bfloat16, int4, uint4, string).</exception>
    public static byte[] ToBytes(Tensor t)
    {
        var header = BuildHeader(t);
        var r = new byte[checked(header.Length + (int)t.ByteLength)];
        header.CopyTo(r, 0);
        t.Bytes.CopyTo(r.AsSpan(header.Length));
        return r;
    }

    // ---------------------------------------------------------------- writing

    private static byte[] BuildHeader(Tensor t)
    {
        ArgumentNullException.ThrowIfNull(t);
        string descr = t.DType switch
        {
            DType.Float16 => "<f2",
            DType.Float32 => "<f4",
            DType.Float64 => "<f8",
            DType.Int8 => "|i1",
            DType.UInt8 => "|u1",
            DType.Int16 => "<i2",
            DType.UInt16 => "<u2",
            DType.Int32 => "<i4",
            DType.UInt32 => "<u4",
            DType.Int64 => "<i8",
            DType.UInt64 => "<u8",
            DType.Bool => "|b1",
            DType.BFloat16 => throw new ArgumentException(
                $"tensor '{t.Name}' is bfloat16, which numpy has no dtype for; convert it to float32 or save it as safetensors", nameof(t)),
            DType.Int4 or DType.UInt4 => throw new ArgumentException(
                $"tensor '{t.Name}' is {t.DType.Name()} (packed two per byte), which numpy has no dtype for; unpack it to int8/uint8 first", nameof(t)),
            DType.String => throw new ArgumentException(
                $"tensor '{t.Name}' is a string tensor; .npy string arrays are not supported", nameof(t)),
            _ => throw new ArgumentException($"tensor '{t.Name}' has unsupported dtype {t.DType.Name()}", nameof(t)),
        };

        var dict = new StringBuilder();
        dict.Append("{'descr': '").Append(descr).Append("', 'fortran_order': False, 'shape': (");
        for (int i = 0; i < t.Dims.Length; i++)
        {
            if (i > 0) dict.Append(", ");
            dict.Append(t.Dims[i].ToString(CultureInfo.InvariantCulture));
        }
        if (t.Dims.Length == 1) dict.Append(',');
        dict.Append("), }");
        // Like numpy: room for the first axis to grow to the widest possible length without rewriting the file.
        if (t.Dims.Length > 0)
            dict.Append(' ', Math.Max(0, GrowthAxisMaxDigits - t.Dims[0].ToString(CultureInfo.InvariantCulture).Length));

        // The dict is pure ASCII, so it fits versions 1.0 and 2.0 (latin-1); 3.0 (UTF-8) is never needed.
        var text = Encoding.ASCII.GetBytes(dict.ToString());
        foreach (var (major, lengthBytes) in new[] { (1, 2), (2, 4) })
        {
            int prefix = MagicAndVersionBytes + lengthBytes;
            int withNewline = text.Length + 1;
            int pad = ArrayAlignBytes - (prefix + withNewline) % ArrayAlignBytes; // 1..64, as numpy computes it
            int headerLength = withNewline + pad;
            if (headerLength > MaxHeaderBytes)
                throw new ArgumentException($"tensor '{t.Name}' has {t.Dims.Length} dimensions; its .npy header would exceed {MaxHeaderBytes} bytes", nameof(t));
            if (lengthBytes == 2 && headerLength > ushort.MaxValue) continue;

            var r = new byte[prefix + headerLength];
            Magic.CopyTo(r);
            r[6] = (byte)major;
            r[7] = 0;
            if (lengthBytes == 2) BinaryPrimitives.WriteUInt16LittleEndian(r.AsSpan(8), (ushort)headerLength);
            else BinaryPrimitives.WriteUInt32LittleEndian(r.AsSpan(8), (uint)headerLength);
            text.CopyTo(r, prefix);
            r.AsSpan(prefix + text.Length, pad).Fill((byte)' ');
            r[^1] = (byte)'\n';
            return r;
        }
        throw new InvalidOperationException("unreachable: a version 2.0 header always fits");
    }

    // ---------------------------------------------------------------- reading

    private readonly record struct Header(DType DType, long[] Dims, bool SwapBytes, long DataOffset, int DataBytes);

    /// <summary>Parses the preamble and header dict in <paramref name="prefix"/> (the file's first bytes) and checks the data length.</summary>
    private static Header ParseHeader(ReadOnlySpan<byte> prefix, long fileLength, string? path)
    {
        int magicSeen = (int)Math.Min(fileLength, Magic.Length);
        if (!prefix[..magicSeen].SequenceEqual(Magic[..magicSeen]))
            throw new ModelFormatException(path, "not a .npy file: the magic \\x93NUMPY is missing");
        if (fileLength < MagicAndVersionBytes)
            throw new ModelFormatException(path, $"file is {fileLength} bytes, too short for the .npy magic and version");
        int major = prefix[6], minor = prefix[7];
        if (major is not (1 or 2 or 3) || minor != 0)
            throw new ModelFormatException(path, $"unsupported .npy format version {major}.{minor} (supported: 1.0, 2.0, 3.0)");
        int lengthBytes = major == 1 ? 2 : 4;
        int dataStartOfHeader = MagicAndVersionBytes + lengthBytes;
        if (fileLength < dataStartOfHeader)
            throw new ModelFormatException(path, $"file is {fileLength} bytes; the version {major}.0 header length field is truncated");
        long headerLength = major == 1
            ? BinaryPrimitives.ReadUInt16LittleEndian(prefix[MagicAndVersionBytes..])
            : BinaryPrimitives.ReadUInt32LittleEndian(prefix[MagicAndVersionBytes..]);
        if (headerLength > MaxHeaderBytes)
            throw new ModelFormatException(path, $"header length {headerLength} exceeds the {MaxHeaderBytes}-byte limit (MaxHeaderBytes)");
        if (dataStartOfHeader + headerLength > fileLength)
            throw new ModelFormatException(path, $"header of {headerLength} bytes runs past the end of the file ({fileLength} bytes): truncated");

        var raw = prefix.Slice(dataStartOfHeader, (int)headerLength);
        string text;
        if (major == 3)
        {
            try { text = StrictUtf8.GetString(raw); }
            catch (DecoderFallbackException e) { throw new ModelFormatException(path, "version 3.0 header is not valid UTF-8", e); }
        }
        else text = Encoding.Latin1.GetString(raw);

        var (descr, fortran, dims) = new HeaderParser(text, path).ParseDict();
        var (dtype, swap) = ParseDescr(descr, path);

        long elements;
        long expected;
        try
        {
            elements = Tensor.CountElements(dims);
            expected = dtype.ByteCount(elements);
        }
        catch (OverflowException) { throw new ModelFormatException(path, $"shape {Shape.Of(dims)} has a size (elements or bytes) that overflows 64 bits"); }

        // Fortran and C order lay out the same bytes when at most one axis is longer than 1.
        if (fortran && dims.Count(d => d > 1) > 1)
            throw new ModelFormatException(path, $"Fortran order not supported (shape {Shape.Of(dims)}); save the array with numpy.ascontiguousarray first");

        long dataOffset = dataStartOfHeader + headerLength;
        long have = fileLength - dataOffset;
        if (have != expected)
            throw new ModelFormatException(path, have < expected
                ? $"data is truncated: {dtype.Name()}{Shape.Of(dims)} needs {expected} bytes, the file has {have}"
                : $"data length does not match the shape: {dtype.Name()}{Shape.Of(dims)} needs {expected} bytes, the file has {have} ({have - expected} extra)");
        if (expected > Array.MaxLength)
            throw new ModelFormatException(path, $"array of {expected} bytes exceeds the 2 GiB limit of one tensor");
        return new Header(dtype, dims, swap, dataOffset, (int)expected);
    }

    private static (DType DType, bool Swap) ParseDescr(string descr, string? path)
    {
        char order = '=';
        string code = descr;
        if (descr.Length > 0 && descr[0] is '<' or '>' or '|' or '=')
        {
            order = descr[0];
            code = descr[1..];
        }
        DType? t = code switch
        {
            "f2" => DType.Float16,
            "f4" => DType.Float32,
            "f8" => DType.Float64,
            "i1" => DType.Int8,
            "u1" => DType.UInt8,
            "i2" => DType.Int16,
            "u2" => DType.UInt16,
            "i4" => DType.Int32,
            "u4" => DType.UInt32,
            "i8" => DType.Int64,
            "u8" => DType.UInt64,
            "b1" => DType.Bool,
            _ => null,
        };
        if (t is null)
        {
            string kind = code.Length > 0 ? code[..1] : "";
            string hint = kind switch
            {
                "O" => " (object arrays hold pickled Python objects and are never loaded)",
                "U" or "S" or "a" => " (string arrays are not supported)",
                "c" => " (complex numbers are not supported)",
                "M" or "m" => " (datetime arrays are not supported)",
                "V" => " (void/structured arrays are not supported)",
                _ => "",
            };
            throw new ModelFormatException(path, $"unsupported dtype descr '{descr}'{hint}; supported: {SupportedDescrs}");
        }
        // '=' is native order; this library (like every platform .NET runs on here) is little-endian.
        bool swap = order == '>' && t.Value.BitsPerElement() > 8;
        return (t.Value, swap);
    }

    private static byte[] Swapped(ReadOnlySpan<byte> source, DType dtype)
    {
        var r = source.ToArray();
        int size = dtype.BitsPerElement() / 8;
        for (int i = 0; i < r.Length; i += size) r.AsSpan(i, size).Reverse();
        return r;
    }

    /// <summary>
    /// A strict parser for the header's Python dict literal: exactly the keys 'descr' (a string), 'fortran_order'
    /// (True/False) and 'shape' (a tuple of non-negative integers), each once, in any order.
    /// </summary>
    private sealed class HeaderParser(string text, string? path)
    {
        private int _pos;

        public (string Descr, bool Fortran, long[] Dims) ParseDict()
        {
            string? descr = null;
            bool? fortran = null;
            long[]? dims = null;
            SkipSpace();
            if (Peek() != '{') throw Fault("the header is not a Python dict literal (it does not start with '{')");
            _pos++;
            SkipSpace();
            bool expectEntry = true;
            while (Peek() != '}')
            {
                if (!expectEntry) throw Fault($"expected ',' or '}}' at offset {_pos}, found {Describe(Peek())}");
                if (Peek() is not ('\'' or '"')) throw Fault($"expected a quoted key at offset {_pos}, found {Describe(Peek())}");
                string key = ReadString();
                SkipSpace();
                if (Peek() != ':') throw Fault($"expected ':' after key '{key}' at offset {_pos}, found {Describe(Peek())}");
                _pos++;
                SkipSpace();
                switch (key)
                {
                    case "descr":
                        if (descr is not null) throw Fault("key 'descr' appears twice");
                        if (Peek() == '[') throw Fault("'descr' is a list of fields (a structured dtype); only simple numeric dtypes are supported");
                        if (Peek() is not ('\'' or '"')) throw Fault($"'descr' must be a string, found {Describe(Peek())}");
                        descr = ReadString();
                        break;
                    case "fortran_order":
                        if (fortran is not null) throw Fault("key 'fortran_order' appears twice");
                        fortran = ReadBool();
                        break;
                    case "shape":
                        if (dims is not null) throw Fault("key 'shape' appears twice");
                        dims = ReadShape();
                        break;
                    default:
                        throw Fault($"unexpected key '{key}' (a .npy header holds exactly 'descr', 'fortran_order' and 'shape')");
                }
                SkipSpace();
                expectEntry = false;
                if (Peek() == ',')
                {
                    _pos++;
                    SkipSpace();
                    expectEntry = true;
                }
            }
            _pos++;
            SkipSpace();
            if (_pos != text.Length) throw Fault($"unexpected {Describe(Peek())} after the header dict at offset {_pos}");
            if (descr is null) throw Fault("the header has no 'descr'");
            if (fortran is null) throw Fault("the header has no 'fortran_order'");
            if (dims is null) throw Fault("the header has no 'shape'");
            return (descr, fortran.Value, dims);
        }

        private string ReadString()
        {
            char quote = text[_pos++];
            int start = _pos;
            while (true)
            {
                if (_pos >= text.Length) throw Fault("unterminated string in the header");
                char c = text[_pos];
                if (c == quote) break;
                if (c == '\\') throw Fault($"escape sequences are not supported in header strings (offset {_pos})");
                if (c is '\n' or '\r') throw Fault($"line break inside a string in the header (offset {_pos})");
                _pos++;
            }
            var s = text[start.._pos];
            _pos++;
            return s;
        }

        private bool ReadBool()
        {
            if (Matches("True")) return true;
            if (Matches("False")) return false;
            throw Fault($"'fortran_order' must be True or False, found {Describe(Peek())} at offset {_pos}");
        }

        private bool Matches(string word)
        {
            if (string.CompareOrdinal(text, _pos, word, 0, word.Length) != 0) return false;
            int end = _pos + word.Length;
            if (end < text.Length && (char.IsAsciiLetterOrDigit(text[end]) || text[end] == '_')) return false;
            _pos = end;
            return true;
        }

        private long[] ReadShape()
        {
            if (Peek() == '[') throw Fault("'shape' must be a tuple, found a list");
            if (Peek() != '(') throw Fault($"'shape' must be a tuple of integers, found {Describe(Peek())} at offset {_pos}");
            _pos++;
            SkipSpace();
            var dims = new List<long>();
            bool trailingComma = false;
            while (Peek() != ')')
            {
                if (dims.Count > 0 && !trailingComma) throw Fault($"expected ',' or ')' in 'shape' at offset {_pos}, found {Describe(Peek())}");
                dims.Add(ReadDimension());
                SkipSpace();
                trailingComma = false;
                if (Peek() == ',')
                {
                    _pos++;
                    SkipSpace();
                    trailingComma = true;
                }
            }
            _pos++;
            if (dims.Count == 1 && !trailingComma) throw Fault($"'shape' ({dims[0]}) is an integer in parentheses, not a tuple; a 1-d shape is written ({dims[0]},)");
            return [.. dims];
        }

        private long ReadDimension()
        {
            if (Peek() == '-') throw Fault($"'shape' has a negative dimension at offset {_pos}");
            if (!char.IsAsciiDigit(Peek())) throw Fault($"expected a dimension in 'shape' at offset {_pos}, found {Describe(Peek())}");
            int start = _pos;
            long v = 0;
            while (char.IsAsciiDigit(Peek()))
            {
                int d = text[_pos] - '0';
                if (v > (long.MaxValue - d) / 10) throw Fault($"a dimension in 'shape' overflows 64 bits (offset {start})");
                v = v * 10 + d;
                _pos++;
            }
            if (_pos - start > 1 && text[start] == '0') throw Fault($"dimension '{text[start.._pos]}' has a leading zero (offset {start})");
            return v;
        }

        private void SkipSpace()
        {
            while (_pos < text.Length && text[_pos] is ' ' or '\t' or '\n' or '\r') _pos++;
        }

        private char Peek() => _pos < text.Length ? text[_pos] : '\0';

        private string Describe(char c) => _pos >= text.Length ? "the end of the header"
            : c >= ' ' && c < 0x7F ? $"'{c}'" : $"character U+{(int)c:X4}";

        private ModelFormatException Fault(string message) => new(path, $"malformed header: {message}");
    }
}
