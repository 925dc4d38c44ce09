using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using OnDevice.Core;

namespace OnDevice.Runtime;

/// <summary>
/// A tensor as kernels see it: element type, int dimensions and little-endian bytes. The bytes may belong to
/// the run's arena, to a model constant (possibly memory-mapped) or to a caller's input; kernels never keep a
/// buffer beyond the call that received it.
/// </summary>
public sealed class TensorBuffer
{
    /// <summary>Wraps <paramref name="memory"/> (not copied).</summary>
    public TensorBuffer(DType dtype, int[] shape, Memory<byte> memory)
    {
        DType = dtype;
        Shape = shape;
        Length = CheckedLength(shape);
        long need = dtype.ByteCount(Length);
        if (memory.Length < need) throw new ArgumentException($"{dtype.Name()}[{string.Join(",", shape)}] needs {need} bytes, buffer has {memory.Length}");
        Memory = memory[..(int)need];
    }

    /// <summary>Element type.</summary>
    public DType DType { get; }

    /// <summary>Dimensions (do not modify).</summary>
    public int[] Shape { get; }

    /// <summary>Number of dimensions.</summary>
    public int Rank => Shape.Length;

    /// <summary>Number of elements.</summary>
    public int Length { get; }

    /// <summary>The bytes.</summary>
    public Memory<byte> Memory { get; }

    /// <summary>Typed view of the elements.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Span<T> Span<T>() where T : unmanaged => MemoryMarshal.Cast<byte, T>(Memory.Span);

    /// <summary>A freshly allocated, zeroed buffer.</summary>
    public static TensorBuffer Allocate(DType dtype, params int[] shape) =>
        new(dtype, shape, new byte[dtype.ByteCount(CheckedLength(shape))]);

    /// <summary>A buffer holding a copy of <paramref name="values"/>.</summary>
    public static TensorBuffer From<T>(ReadOnlySpan<T> values, params int[] shape) where T : unmanaged
    {
        var b = Allocate(Tensor.DTypeOf<T>(), shape);
        if (values.Length != b.Length) throw new ArgumentException($"{values.Length} values for {b.Length} elements");
        values.CopyTo(b.Span<T>());
        return b;
    }

    /// <summary>Wraps an IR tensor's bytes without copying (dimensions must fit in int).</summary>
    public static TensorBuffer Wrap(Tensor t)
    {
        if (t.DType == DType.String) throw new NotSupportedException($"string tensor '{t.Name}' is not supported by the runtime");
        var shape = new int[t.Dims.Length];
        for (int i = 0; i < shape.Length; i++)
            shape[i] = t.Dims[i] <= int.MaxValue ? (int)t.Dims[i] : throw new NotSupportedException($"tensor '{t.Name}' dimension {t.Dims[i]} exceeds int range");
        return new TensorBuffer(t.DType, shape, MemoryMarshal.AsMemory(t.Memory));
    }

    /// <summary>An IR tensor holding a copy of these bytes.</summary>
    public Tensor ToTensor(string name = "") =>
        Tensor.FromBytes(DType, Shape.Select(d => (long)d).ToArray(), Memory.ToArray(), name);

    /// <summary>Element count of <paramref name="shape"/>, checked.</summary>
    public static int CheckedLength(ReadOnlySpan<int> shape)
    {
        long n = 1;
        foreach (var d in shape)
        {
            if (d < 0) throw new ArgumentException($"negative dimension {d}");
            n *= d;
            if (n > int.MaxValue) throw new ArgumentException($"tensor of shape [{string.Join(",", shape.ToArray())}] has more than 2^31 elements");
        }
        return (int)n;
    }

    /// <summary>Shape as text, e.g. <c>[1,3,48,320]</c>.</summary>
    public static string Format(ReadOnlySpan<int> shape) => $"[{string.Join(",", shape.ToArray())}]";

    /// <inheritdoc/>
    public override string ToString() => $"{DType.Name()}{Format(Shape)}";
}
