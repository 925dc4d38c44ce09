namespace OnDevice.Core;

/// <summary>Element type of a tensor. Numeric values equal the ONNX <c>TensorProto.DataType</c> codes.</summary>
public enum DType
{
    /// <summary>No type set.</summary>
    Undefined = 0,
    /// <summary>IEEE 754 binary32.</summary>
    Float32 = 1,
    /// <summary>Unsigned 8-bit integer.</summary>
    UInt8 = 2,
    /// <summary>Signed 8-bit integer.</summary>
    Int8 = 3,
    /// <summary>Unsigned 16-bit integer.</summary>
    UInt16 = 4,
    /// <summary>Signed 16-bit integer.</summary>
    Int16 = 5,
    /// <summary>Signed 32-bit integer.</summary>
    Int32 = 6,
    /// <summary>Signed 64-bit integer.</summary>
    Int64 = 7,
    /// <summary>Variable-length byte string.</summary>
    String = 8,
    /// <summary>Boolean stored as one byte (0 or 1).</summary>
    Bool = 9,
    /// <summary>IEEE 754 binary16.</summary>
    Float16 = 10,
    /// <summary>IEEE 754 binary64.</summary>
    Float64 = 11,
    /// <summary>Unsigned 32-bit integer.</summary>
    UInt32 = 12,
    /// <summary>Unsigned 64-bit integer.</summary>
    UInt64 = 13,
    /// <summary>Brain floating point: the upper 16 bits of a binary32.</summary>
    BFloat16 = 16,
    /// <summary>Unsigned 4-bit integer, two per byte, first element in the low nibble.</summary>
    UInt4 = 21,
    /// <summary>Signed 4-bit integer, two per byte, first element in the low nibble.</summary>
    Int4 = 22,
}

/// <summary>Facts about each <see cref="DType"/>: size, signedness, names.</summary>
public static class DTypes
{
    /// <summary>All supported element types, in a stable order.</summary>
    public static IReadOnlyList<DType> All { get; } =
    [
        DType.Float32, DType.Float16, DType.BFloat16, DType.Float64, DType.Int4, DType.UInt4,
        DType.Int8, DType.UInt8, DType.Int16, DType.UInt16, DType.Int32, DType.UInt32,
        DType.Int64, DType.UInt64, DType.Bool, DType.String,
    ];

    /// <summary>True when the value is one of the supported element types.</summary>
    public static bool IsDefined(DType t) => t switch
    {
        DType.Float32 or DType.Float16 or DType.BFloat16 or DType.Float64 or DType.Int4 or DType.UInt4
            or DType.Int8 or DType.UInt8 or DType.Int16 or DType.UInt16 or DType.Int32 or DType.UInt32
            or DType.Int64 or DType.UInt64 or DType.Bool or DType.String => true,
        _ => false,
    };

    /// <summary>Storage bits per element (4 for the packed 4-bit types; 0 for strings).</summary>
    public static int BitsPerElement(this DType t) => t switch
    {
        DType.Int4 or DType.UInt4 => 4,
        DType.Int8 or DType.UInt8 or DType.Bool => 8,
        DType.Float16 or DType.BFloat16 or DType.Int16 or DType.UInt16 => 16,
        DType.Float32 or DType.Int32 or DType.UInt32 => 32,
        DType.Float64 or DType.Int64 or DType.UInt64 => 64,
        DType.String => 0,
        _ => throw new ArgumentOutOfRangeException(nameof(t), t, "unsupported element type"),
    };

    /// <summary>Bytes needed to store <paramref name="elements"/> elements (4-bit types round up to whole bytes).</summary>
    public static long ByteCount(this DType t, long elements)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(elements);
        int bits = t.BitsPerElement();
        if (bits == 0) throw new ArgumentException("string tensors have no fixed byte size", nameof(t));
        return bits == 4 ? (elements + 1) / 2 : checked(elements * (bits / 8));
    }

    /// <summary>True for float32/16, bfloat16 and float64.</summary>
    public static bool IsFloatingPoint(this DType t) =>
        t is DType.Float32 or DType.Float16 or DType.BFloat16 or DType.Float64;

    /// <summary>True for the signed and unsigned integer types (not bool).</summary>
    public static bool IsInteger(this DType t) =>
        t is DType.Int4 or DType.UInt4 or DType.Int8 or DType.UInt8 or DType.Int16 or DType.UInt16
            or DType.Int32 or DType.UInt32 or DType.Int64 or DType.UInt64;

    /// <summary>True for signed integers and floating-point types.</summary>
    public static bool IsSigned(this DType t) =>
        t.IsFloatingPoint() || t is DType.Int4 or DType.Int8 or DType.Int16 or DType.Int32 or DType.Int64;

    /// <summary>Short lower-case name, e.g. <c>float32</c>, <c>int4</c>.</summary>
    public static string Name(this DType t) => t switch
    {
        DType.Float32 => "float32",
        DType.Float16 => "float16",
        DType.BFloat16 => "bfloat16",
        DType.Float64 => "float64",
        DType.Int4 => "int4",
        DType.UInt4 => "uint4",
        DType.Int8 => "int8",
        DType.UInt8 => "uint8",
        DType.Int16 => "int16",
        DType.UInt16 => "uint16",
        DType.Int32 => "int32",
        DType.UInt32 => "uint32",
        DType.Int64 => "int64",
        DType.UInt64 => "uint64",
        DType.Bool => "bool",
        DType.String => "string",
        _ => $"dtype({(int)t})",
    };

    /// <summary>Parses a name produced by <see cref="Name"/> (also accepts <c>float</c>, <c>double</c>, <c>half</c>).</summary>
    public static bool TryParse(string name, out DType type)
    {
        type = name.ToLowerInvariant() switch
        {
            "float" => DType.Float32,
            "double" => DType.Float64,
            "half" or "fp16" => DType.Float16,
            "bf16" => DType.BFloat16,
            "fp32" => DType.Float32,
            var n => All.FirstOrDefault(d => d.Name() == n),
        };
        return type != DType.Undefined;
    }
}
