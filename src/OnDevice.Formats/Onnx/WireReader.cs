using System.Buffers.Binary;

namespace OnDevice.Formats.Onnx;

/// <summary>Protocol buffer wire types.</summary>
internal enum WireType
{
    Varint = 0,
    Fixed64 = 1,
    LengthDelimited = 2,
    StartGroup = 3,
    EndGroup = 4,
    Fixed32 = 5,
}

/// <summary>
/// A forward-only protobuf wire-format reader over a span. It knows the absolute offset of its span in the
/// whole input so that length-delimited payloads (tensor bytes) can be sliced without copying. Every fault
/// throws <see cref="InvalidDataException"/> with the absolute byte offset.
/// </summary>
internal ref struct WireReader
{
    private readonly ReadOnlySpan<byte> _buf;
    private int _pos;

    public WireReader(ReadOnlySpan<byte> buffer, int baseOffset)
    {
        _buf = buffer;
        BaseOffset = baseOffset;
    }

    /// <summary>Absolute offset of this reader's first byte in the whole input.</summary>
    public int BaseOffset { get; }

    public readonly bool End => _pos >= _buf.Length;

    /// <summary>Absolute offset of the next byte.</summary>
    public readonly int Offset => BaseOffset + _pos;

    public (int Field, WireType Type) ReadTag()
    {
        int at = Offset;
        ulong tag = ReadVarint();
        int wt = (int)(tag & 7);
        ulong field = tag >> 3;
        if (field == 0 || field > 536_870_911) throw Fault($"invalid field number {field}", at);
        if (wt > 5) throw Fault($"invalid wire type {wt} for field {field}", at);
        return ((int)field, (WireType)wt);
    }

    public ulong ReadVarint()
    {
        ulong result = 0;
        for (int shift = 0; shift < 70; shift += 7)
        {
            if (_pos >= _buf.Length) throw Fault("truncated varint", Offset);
            byte b = _buf[_pos++];
            if (shift == 63 && b > 1) throw Fault("varint overflows 64 bits", Offset - 1);
            result |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80) return result;
        }
        throw Fault("varint longer than 10 bytes", Offset);
    }

    public long ReadInt64() => (long)ReadVarint();

    public int ReadInt32()
    {
        long v = (long)ReadVarint();
        if (v is < int.MinValue or > int.MaxValue) throw Fault($"value {v} does not fit an int32 field", Offset);
        return (int)v;
    }

    public uint ReadFixed32()
    {
        Need(4);
        uint v = BinaryPrimitives.ReadUInt32LittleEndian(_buf[_pos..]);
        _pos += 4;
        return v;
    }

    public ulong ReadFixed64()
    {
        Need(8);
        ulong v = BinaryPrimitives.ReadUInt64LittleEndian(_buf[_pos..]);
        _pos += 8;
        return v;
    }

    public float ReadFloat() => BitConverter.UInt32BitsToSingle(ReadFixed32());

    public double ReadDouble() => BitConverter.UInt64BitsToDouble(ReadFixed64());

    /// <summary>Reads a length-delimited payload; <paramref name="absoluteOffset"/> is where it starts in the whole input.</summary>
    public ReadOnlySpan<byte> ReadBytes(out int absoluteOffset)
    {
        int at = Offset;
        ulong len = ReadVarint();
        if (len > (ulong)(_buf.Length - _pos))
            throw Fault($"length {len} runs past the end of the enclosing message ({_buf.Length - _pos} bytes left)", at);
        absoluteOffset = Offset;
        var s = _buf.Slice(_pos, (int)len);
        _pos += (int)len;
        return s;
    }

    public WireReader ReadMessage()
    {
        var s = ReadBytes(out int off);
        return new WireReader(s, off);
    }

    public void Skip(WireType type, int field, int depth = 0)
    {
        switch (type)
        {
            case WireType.Varint: ReadVarint(); break;
            case WireType.Fixed64: Need(8); _pos += 8; break;
            case WireType.Fixed32: Need(4); _pos += 4; break;
            case WireType.LengthDelimited: ReadBytes(out _); break;
            case WireType.StartGroup:
                if (depth > 32) throw Fault("groups nested too deeply", Offset);
                while (true)
                {
                    if (End) throw Fault($"unterminated group for field {field}", Offset);
                    var (f, t) = ReadTag();
                    if (t == WireType.EndGroup)
                    {
                        if (f != field) throw Fault($"group for field {field} ended by field {f}", Offset);
                        return;
                    }
                    Skip(t, f, depth + 1);
                }
            case WireType.EndGroup: throw Fault($"unexpected end-group for field {field}", Offset);
        }
    }

    private readonly void Need(int n)
    {
        if (_buf.Length - _pos < n) throw Fault($"truncated: {n} bytes needed, {_buf.Length - _pos} left", Offset);
    }

    public static InvalidDataException Fault(string message, int offset) => new($"{message} (at byte {offset})");
}
