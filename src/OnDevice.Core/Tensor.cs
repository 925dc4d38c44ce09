using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace OnDevice.Core;

/// <summary>
/// A dense tensor with known dimensions. Numeric data lives in little-endian bytes that are either owned
/// (a managed array) or a slice of a memory-mapped file; 4-bit types pack two elements per byte, first
/// element in the low nibble. String tensors hold one byte string per element.
/// </summary>
public sealed class Tensor
{
    private Memory<byte> _data;
    private readonly byte[][]? _strings;

    private Tensor(string name, DType dtype, long[] dims, Memory<byte> data, byte[][]? strings)
    {
        Name = name;
        DType = dtype;
        Dims = dims;
        _data = data;
        _strings = strings;
    }

    /// <summary>Tensor name (an initializer's value name); may be empty.</summary>
    public string Name { get; set; }

    /// <summary>Free-form documentation carried through from the model file.</summary>
    public string DocString { get; set; } = "";

    /// <summary>Element type.</summary>
    public DType DType { get; }

    /// <summary>Dimension sizes (empty for a scalar).</summary>
    public long[] Dims { get; }

    /// <summary>Dimensions as a <see cref="Shape"/>.</summary>
    public Shape Shape => Shape.Of(Dims);

    /// <summary>Number of elements (1 for a scalar).</summary>
    public long ElementCount => CountElements(Dims);

    /// <summary>Bytes of numeric storage (0 for string tensors).</summary>
    public long ByteLength => DType == DType.String ? 0 : _data.Length;

    /// <summary>True when the bytes are a slice of a memory-mapped file rather than a managed array.</summary>
    public bool IsMemoryMapped => MappedFile.IsMapped(_data);

    /// <summary>The raw little-endian bytes (numeric types only).</summary>
    public ReadOnlySpan<byte> Bytes => _data.Span;

    /// <summary>The raw bytes as memory (numeric types only), without copying.</summary>
    public ReadOnlyMemory<byte> Memory => _data;

    /// <summary>Writable bytes; for a mapped tensor writes go to private copy-on-write pages, never to the file.</summary>
    public Span<byte> MutableBytes => _data.Span;

    /// <summary>The elements of a string tensor as raw byte strings.</summary>
    public IReadOnlyList<byte[]> Strings => _strings ?? throw new InvalidOperationException($"tensor '{Name}' is {DType.Name()}, not string");

    /// <summary>Product of dimensions, checked for overflow and negative sizes.</summary>
    public static long CountElements(ReadOnlySpan<long> dims)
    {
        long n = 1;
        foreach (var d in dims)
        {
            if (d < 0) throw new ArgumentException($"negative dimension {d}");
            n = checked(n * d);
        }
        return n;
    }

    /// <summary>Wraps existing bytes (not copied). The byte length must match dtype and dims exactly.</summary>
    public static Tensor FromBytes(DType dtype, long[] dims, Memory<byte> bytes, string name = "")
    {
        if (!DTypes.IsDefined(dtype) || dtype == DType.String)
            throw new ArgumentException($"FromBytes needs a numeric dtype, got {dtype.Name()}", nameof(dtype));
        long expected = dtype.ByteCount(CountElements(dims));
        if (bytes.Length != expected)
            throw new ArgumentException($"tensor '{name}' {dtype.Name()}{Shape.Of(dims)} needs {expected} bytes, got {bytes.Length}");
        return new Tensor(name, dtype, (long[])dims.Clone(), bytes, null);
    }

    /// <summary>A zero-filled tensor with owned storage.</summary>
    public static Tensor Zeros(DType dtype, long[] dims, string name = "")
    {
        long n = dtype.ByteCount(CountElements(dims));
        if (n > Array.MaxLength) throw new ArgumentException($"tensor of {n} bytes exceeds the {Array.MaxLength}-byte limit of one buffer");
        return FromBytes(dtype, dims, new byte[n], name);
    }

    /// <summary>A tensor holding a copy of <paramref name="values"/>.</summary>
    public static Tensor FromArray<T>(ReadOnlySpan<T> values, long[] dims, string name = "") where T : unmanaged
    {
        var dtype = DTypeOf<T>();
        var t = Zeros(dtype, dims, name);
        if (values.Length != t.ElementCount)
            throw new ArgumentException($"{values.Length} values for shape {Shape.Of(dims)} ({t.ElementCount} elements)");
        MemoryMarshal.AsBytes(values).CopyTo(t.MutableBytes);
        return t;
    }

    /// <summary>A scalar tensor.</summary>
    public static Tensor Scalar<T>(T value, string name = "") where T : unmanaged => FromArray<T>([value], [], name);

    /// <summary>A string tensor; each element is a UTF-8 encoded string.</summary>
    public static Tensor FromStrings(IEnumerable<string> values, long[] dims, string name = "") =>
        FromByteStrings(values.Select(Encoding.UTF8.GetBytes).ToArray(), dims, name);

    /// <summary>A string tensor of raw byte strings.</summary>
    public static Tensor FromByteStrings(byte[][] values, long[] dims, string name = "")
    {
        if (values.Length != CountElements(dims))
            throw new ArgumentException($"{values.Length} strings for shape {Shape.Of(dims)}");
        return new Tensor(name, DType.String, (long[])dims.Clone(), Memory<byte>.Empty, values);
    }

    /// <summary>The element type that stores <typeparamref name="T"/>.</summary>
    public static DType DTypeOf<T>() where T : unmanaged
    {
        if (typeof(T) == typeof(float)) return DType.Float32;
        if (typeof(T) == typeof(double)) return DType.Float64;
        if (typeof(T) == typeof(Half)) return DType.Float16;
        if (typeof(T) == typeof(sbyte)) return DType.Int8;
        if (typeof(T) == typeof(byte)) return DType.UInt8;
        if (typeof(T) == typeof(short)) return DType.Int16;
        if (typeof(T) == typeof(ushort)) return DType.UInt16;
        if (typeof(T) == typeof(int)) return DType.Int32;
        if (typeof(T) == typeof(uint)) return DType.UInt32;
        if (typeof(T) == typeof(long)) return DType.Int64;
        if (typeof(T) == typeof(ulong)) return DType.UInt64;
        if (typeof(T) == typeof(bool)) return DType.Bool;
        throw new NotSupportedException($"no element type for {typeof(T).Name}");
    }

    /// <summary>Reinterprets the bytes as elements of <typeparamref name="T"/> (whose size must match the dtype).</summary>
    public ReadOnlySpan<T> AsSpan<T>() where T : unmanaged => AsMutableSpan<T>();

    /// <summary>Writable typed view of the bytes.</summary>
    public Span<T> AsMutableSpan<T>() where T : unmanaged
    {
        if (DType == DType.String || DType.BitsPerElement() != Unsafe.SizeOf<T>() * 8)
            throw new InvalidOperationException($"tensor '{Name}' is {DType.Name()}; cannot view it as {typeof(T).Name}");
        return MemoryMarshal.Cast<byte, T>(_data.Span);
    }

    /// <summary>Element <paramref name="i"/> (flat, C order) as a double, for any numeric dtype.</summary>
    public double GetDouble(long i)
    {
        var b = _data.Span;
        return DType switch
        {
            DType.Float32 => MemoryMarshal.Cast<byte, float>(b)[(int)i],
            DType.Float64 => MemoryMarshal.Cast<byte, double>(b)[(int)i],
            DType.Float16 => (double)MemoryMarshal.Cast<byte, Half>(b)[(int)i],
            DType.BFloat16 => BFloat16.ToSingle(MemoryMarshal.Cast<byte, ushort>(b)[(int)i]),
            DType.Int8 => (sbyte)b[(int)i],
            DType.UInt8 or DType.Bool => b[(int)i],
            DType.Int16 => MemoryMarshal.Cast<byte, short>(b)[(int)i],
            DType.UInt16 => MemoryMarshal.Cast<byte, ushort>(b)[(int)i],
            DType.Int32 => MemoryMarshal.Cast<byte, int>(b)[(int)i],
            DType.UInt32 => MemoryMarshal.Cast<byte, uint>(b)[(int)i],
            DType.Int64 => MemoryMarshal.Cast<byte, long>(b)[(int)i],
            DType.UInt64 => MemoryMarshal.Cast<byte, ulong>(b)[(int)i],
            DType.Int4 => Int4.GetSigned(b, i),
            DType.UInt4 => Int4.GetUnsigned(b, i),
            _ => throw new InvalidOperationException($"tensor '{Name}' is {DType.Name()}, not numeric"),
        };
    }

    /// <summary>All elements converted to float32.</summary>
    public float[] ToFloatArray()
    {
        if (DType == DType.Float32) return AsSpan<float>().ToArray();
        var r = new float[ElementCount];
        for (long i = 0; i < r.Length; i++) r[i] = (float)GetDouble(i);
        return r;
    }

    /// <summary>All elements converted to int64 (integers and bool; floats truncate toward zero).</summary>
    public long[] ToInt64Array()
    {
        if (DType == DType.Int64) return AsSpan<long>().ToArray();
        var r = new long[ElementCount];
        for (long i = 0; i < r.Length; i++)
            r[i] = DType == DType.UInt64 ? (long)MemoryMarshal.Cast<byte, ulong>(_data.Span)[(int)i] : (long)GetDouble(i);
        return r;
    }

    /// <summary>A tensor with owned copies of the bytes (detaches from any mapped file).</summary>
    public Tensor Clone(string? name = null)
    {
        var t = DType == DType.String
            ? new Tensor(name ?? Name, DType, (long[])Dims.Clone(), Memory<byte>.Empty, _strings!.Select(s => (byte[])s.Clone()).ToArray())
            : new Tensor(name ?? Name, DType, (long[])Dims.Clone(), _data.ToArray(), null);
        t.DocString = DocString;
        return t;
    }

    /// <summary>True when dtype, dims and every byte (or string) are equal; names are not compared.</summary>
    public bool ContentEquals(Tensor other)
    {
        if (DType != other.DType || !Dims.AsSpan().SequenceEqual(other.Dims)) return false;
        if (DType != DType.String) return Bytes.SequenceEqual(other.Bytes);
        for (int i = 0; i < _strings!.Length; i++)
            if (!_strings[i].AsSpan().SequenceEqual(other._strings![i])) return false;
        return true;
    }

    /// <inheritdoc/>
    public override string ToString() => $"{(Name.Length > 0 ? Name + ": " : "")}{DType.Name()}{Shape}";
}

/// <summary>Packing and unpacking of 4-bit integers, two per byte, first element in the low nibble.</summary>
public static class Int4
{
    /// <summary>Signed value (-8..7) of element <paramref name="i"/>.</summary>
    public static int GetSigned(ReadOnlySpan<byte> packed, long i)
    {
        int u = GetUnsigned(packed, i);
        return u >= 8 ? u - 16 : u;
    }

    /// <summary>Unsigned value (0..15) of element <paramref name="i"/>.</summary>
    public static int GetUnsigned(ReadOnlySpan<byte> packed, long i)
    {
        byte b = packed[(int)(i >> 1)];
        return (i & 1) == 0 ? b & 0xF : b >> 4;
    }

    /// <summary>Stores the low 4 bits of <paramref name="value"/> as element <paramref name="i"/>.</summary>
    public static void Set(Span<byte> packed, long i, int value)
    {
        ref byte b = ref packed[(int)(i >> 1)];
        int v = value & 0xF;
        b = (i & 1) == 0 ? (byte)((b & 0xF0) | v) : (byte)((b & 0x0F) | (v << 4));
    }

    /// <summary>Packs values (each taken modulo 16) into ceil(n/2) bytes.</summary>
    public static byte[] Pack(ReadOnlySpan<int> values)
    {
        var r = new byte[(values.Length + 1) / 2];
        for (int i = 0; i < values.Length; i++) Set(r, i, values[i]);
        return r;
    }
}

/// <summary>Conversions between float32 and bfloat16 bit patterns.</summary>
public static class BFloat16
{
    /// <summary>Widens a bfloat16 bit pattern to float32 (exact).</summary>
    public static float ToSingle(ushort bits) => BitConverter.Int32BitsToSingle(bits << 16);

    /// <summary>Rounds a float32 to the nearest bfloat16 (ties to even; NaN stays NaN).</summary>
    public static ushort FromSingle(float value)
    {
        uint u = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value)) return (ushort)((u >> 16) | 0x40);
        uint rounding = 0x7FFF + ((u >> 16) & 1);
        return (ushort)((u + rounding) >> 16);
    }
}
