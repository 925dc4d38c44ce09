using System.Numerics;
using System.Runtime.InteropServices;
using OnDevice.Core;
using OnDevice.Formats.Onnx;

namespace OnDevice.Bench.LoadMemory;

/// <summary>Builds the benchmark model: a chain of MatMul nodes over square float32 weights of pseudo-random data.</summary>
internal static class BenchModel
{
    /// <summary>Side of the square weights used for models of 64 MiB and more (4096 x 4096 x 4 bytes = 64 MiB).</summary>
    private const int FullSide = 4096;

    /// <summary>Writes a model of about <paramref name="sizeMb"/> MiB of weights; returns the byte sum of all weights.</summary>
    public static (int Weights, int Side, ulong ByteSum) Write(string path, int sizeMb, bool external)
    {
        long target = (long)sizeMb << 20;
        int side = FullSide;
        int count;
        if (target >= (long)FullSide * FullSide * 4)
            count = (int)Math.Max(1, (target + (FullSide * FullSide * 2L)) / (FullSide * FullSide * 4L));
        else
        {
            side = Math.Max(64, (int)Math.Sqrt(target / 4.0) / 64 * 64);
            count = 1;
        }

        var g = new Graph { Name = "load_memory_bench" };
        g.Inputs.Add(new ValueInfo("h0", new TensorTypeInfo(DType.Float32, Shape.Of(1, side))));
        ulong sum = 0;
        for (int i = 0; i < count; i++)
        {
            var w = Tensor.Zeros(DType.Float32, [side, side], $"w{i}");
            Fill(w.AsMutableSpan<float>(), (ulong)i + 1);
            sum += ByteSum.Of(w.Bytes);
            g.AddInitializer(w);
            g.AddNode(new Node("MatMul", [$"h{i}", $"w{i}"], [$"h{i + 1}"], $"matmul{i}"));
        }
        g.Outputs.Add(new ValueInfo($"h{count}", new TensorTypeInfo(DType.Float32, Shape.Of(1, side))));
        var model = new Model(g) { IrVersion = 8, ProducerName = "OnDevice.Bench.LoadMemory" };
        model.OpsetImports.Add(new OpsetImport("", 17));

        var options = external ? new OnnxWriteOptions { ExternalData = ExternalDataMode.Always } : new OnnxWriteOptions { ExternalData = ExternalDataMode.Never };
        OnnxWriter.Write(model, path, options);
        return (count, side, sum);
    }

    /// <summary>Deterministic values in [-1, 1) from xorshift64* seeded by <paramref name="seed"/>.</summary>
    public static void Fill(Span<float> values, ulong seed)
    {
        ulong x = 0x9E3779B97F4A7C15UL * seed | 1;
        for (int i = 0; i < values.Length; i++)
        {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            ulong r = x * 0x2545F4914F6CDD1DUL;
            values[i] = (r >> 40) * (1f / (1 << 23)) - 1f;
        }
    }
}

/// <summary>A vectorized sum of bytes; reading every byte is what pulls a mapped page into memory.</summary>
internal static class ByteSum
{
    public static ulong Of(ReadOnlySpan<byte> bytes)
    {
        ulong total = 0;
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var vectors = MemoryMarshal.Cast<byte, Vector<byte>>(bytes);
            // A ushort lane gains at most 2 * 255 per vector, so 128 vectors fit before it can overflow.
            for (int v = 0; v < vectors.Length;)
            {
                var acc = Vector<ushort>.Zero;
                int end = Math.Min(vectors.Length, v + 128);
                for (; v < end; v++)
                {
                    Vector.Widen(vectors[v], out var lo, out var hi);
                    acc += lo + hi;
                }
                Vector.Widen(acc, out var a, out var b);
                total += Vector.Sum(a) + (ulong)Vector.Sum(b);
            }
            i = vectors.Length * Vector<byte>.Count;
        }
        for (; i < bytes.Length; i++) total += bytes[i];
        return total;
    }
}
