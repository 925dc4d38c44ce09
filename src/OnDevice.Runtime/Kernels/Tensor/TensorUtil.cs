using System.Runtime.InteropServices;
using OnDevice.Core;

namespace OnDevice.Runtime.Kernels.Tensors;

/// <summary>Shape arithmetic and input decoding shared by the data-movement and reduction kernels.</summary>
internal static class TensorUtil
{
    /// <summary>Bytes per element of a fixed-size type (4-bit types are rejected by the type lists).</summary>
    public static int ElementBytes(DType t) => t.BitsPerElement() / 8;

    /// <summary>Normalizes an axis in [-rank, rank-1] to [0, rank-1].</summary>
    public static int Axis(long axis, int rank, string what = "axis")
    {
        long a = axis < 0 ? axis + rank : axis;
        if (a < 0 || a >= rank) throw new InvalidOperationException($"{what} {axis} is out of range for rank {rank}");
        return (int)a;
    }

    /// <summary>Normalizes an axis in [-rank, rank] to [0, rank] (Flatten, Shape).</summary>
    public static int AxisInclusive(long axis, int rank, string what = "axis")
    {
        long a = axis < 0 ? axis + rank : axis;
        if (a < 0 || a > rank) throw new InvalidOperationException($"{what} {axis} is out of range for rank {rank}");
        return (int)a;
    }

    /// <summary>Normalizes a list of axes, rejecting duplicates.</summary>
    public static int[] Axes(ReadOnlySpan<long> axes, int rank, string what = "axes")
    {
        var r = new int[axes.Length];
        for (int i = 0; i < r.Length; i++)
        {
            r[i] = Axis(axes[i], rank, what);
            for (int k = 0; k < i; k++)
                if (r[k] == r[i]) throw new InvalidOperationException($"{what} contains axis {r[i]} twice");
        }
        return r;
    }

    /// <summary>The elements of an int32 or int64 tensor.</summary>
    public static long[] Ints(TensorBuffer b)
    {
        return b.DType switch
        {
            DType.Int64 => b.Span<long>().ToArray(),
            DType.Int32 => ToLong(b.Span<int>()),
            _ => throw new InvalidOperationException($"expected an int32 or int64 tensor, got {b.DType.Name()}"),
        };

        static long[] ToLong(ReadOnlySpan<int> s)
        {
            var r = new long[s.Length];
            for (int i = 0; i < r.Length; i++) r[i] = s[i];
            return r;
        }
    }

    /// <summary>The single element of an int32 or int64 tensor.</summary>
    public static long Scalar(TensorBuffer b, string what)
    {
        if (b.Length != 1) throw new InvalidOperationException($"{what} must have one element, has {b.Length}");
        return b.DType switch
        {
            DType.Int64 => b.Span<long>()[0],
            DType.Int32 => b.Span<int>()[0],
            _ => throw new InvalidOperationException($"{what} must be int32 or int64, is {b.DType.Name()}"),
        };
    }

    /// <summary>A dimension read from a tensor, checked to fit an int.</summary>
    public static int Dim(long v, string what = "dimension")
    {
        if (v < 0 || v > int.MaxValue) throw new InvalidOperationException($"{what} {v} is out of range");
        return (int)v;
    }

    /// <summary>Row-major element strides of <paramref name="shape"/>.</summary>
    public static int[] Strides(ReadOnlySpan<int> shape)
    {
        var s = new int[shape.Length];
        int acc = 1;
        for (int d = shape.Length - 1; d >= 0; d--)
        {
            s[d] = acc;
            acc *= shape[d];
        }
        return s;
    }

    /// <summary>Product of <paramref name="shape"/>[from..to).</summary>
    public static int Product(ReadOnlySpan<int> shape, int from, int to)
    {
        long p = 1;
        for (int i = from; i < to; i++) p *= shape[i];
        return p <= int.MaxValue ? (int)p : throw new InvalidOperationException($"{TensorBuffer.Format(shape)} has more than 2^31 elements");
    }

    /// <summary>Copies the bytes of <paramref name="x"/> into a new output <paramref name="slot"/> of the given shape.</summary>
    public static void CopyTo(KernelContext ctx, int slot, TensorBuffer x, int[] shape)
    {
        var y = ctx.Output(slot, x.DType, shape);
        x.Memory.Span.CopyTo(y.Memory.Span);
    }

    /// <summary>Typed view of raw bytes.</summary>
    public static Span<T> As<T>(Span<byte> bytes) where T : unmanaged => MemoryMarshal.Cast<byte, T>(bytes);

    /// <summary>Typed read-only view of raw bytes.</summary>
    public static ReadOnlySpan<T> As<T>(ReadOnlySpan<byte> bytes) where T : unmanaged => MemoryMarshal.Cast<byte, T>(bytes);
}
