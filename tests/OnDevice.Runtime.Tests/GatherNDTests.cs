using OnDevice.Core;
using OnDevice.Runtime.Kernels.Tensors;
using Attribute = OnDevice.Core.Attribute;

namespace OnDevice.Runtime.Tests;

/// <summary>GatherND against naive index arithmetic, its fast path against its scalar twin, and Cast from 4-bit.</summary>
public class GatherNDTests
{
    private static long[] L(int[] v) => v.Select(x => (long)x).ToArray();

    /// <summary>Naive GatherND over int64 data: walks every output coordinate and resolves it independently.</summary>
    private static long[] Naive(long[] data, int[] ds, long[] idx, int[] ishape, int b, out int[] outShape)
    {
        int q = ishape.Length, k = ishape[^1];
        outShape = [.. ishape.Take(q - 1), .. ds.Skip(b + k)];
        int n = NaiveTensorOps.Count(outShape);
        var r = new long[n];
        var dataStrides = new int[ds.Length];
        for (int d = ds.Length - 1, s = 1; d >= 0; s *= ds[d], d--) dataStrides[d] = s;
        var c = new int[outShape.Length];
        for (int o = 0; o < n; o++)
        {
            int rem = o;
            for (int d = outShape.Length - 1; d >= 0; d--) { c[d] = rem % outShape[d]; rem /= outShape[d]; }
            // indices row: coordinates c[0..q-1)
            int row = 0;
            for (int d = 0; d < q - 1; d++) row = row * ishape[d] + c[d];
            long off = 0;
            for (int d = 0; d < b; d++) off += (long)c[d] * dataStrides[d];
            for (int j = 0; j < k; j++)
            {
                long v = idx[row * k + j];
                if (v < 0) v += ds[b + j];
                off += v * dataStrides[b + j];
            }
            for (int d = q - 1; d < outShape.Length; d++) off += (long)c[d] * dataStrides[b + k + d - (q - 1)];
            r[o] = data[off];
        }
        return r;
    }

    public static TheoryData<int[], int[], long[], int> Cases => new()
    {
        // ONNX examples
        { [2, 2], [2, 2], [0, 0, 1, 1], 0 },
        { [2, 2], [2, 1], [1, 0], 0 },
        { [2, 2, 2], [2, 2], [0, 1, 1, 0], 0 },
        { [2, 2, 2], [2, 1, 2], [0, 1, 1, 0], 0 },
        { [2, 2, 2], [2, 1], [1, 0], 1 },
        // negative indices, slices, batch_dims 2, palettized form ([groups, K] codebook, [groups, n, 1] indices)
        { [3, 4, 5], [2, 2], [-1, -4, 0, 3], 0 },
        { [3, 4, 5], [3, 2, 1], [-1, 0, 2, 3, 1, -2], 1 },
        { [2, 3, 4, 2], [2, 3, 1, 2], [0, 1, 3, -1, 1, 0, 2, 1, -4, 0, 3, 1], 2 },
        { [4, 16], [4, 6, 1], [0, 15, 3, 7, 7, 1, 2, 2, 14, 0, 9, 5, 15, 15, 1, 0, 4, 8, 3, 3, 11, 12, 6, 10], 1 },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesNaiveIndexArithmetic(int[] ds, int[] ishape, long[] idx, int batchDims)
    {
        var data = TensorKernelTests.Iota(NaiveTensorOps.Count(ds));
        var expected = Naive(data, ds, idx, ishape, batchDims, out var outShape);
        var n = new Node("GatherND", ["x", "i"], ["y"]).With(Attribute.Of("batch_dims", (long)batchDims));
        foreach (var opset in batchDims == 0 ? new long[] { 11, 12, 13 } : [12, 13])
        {
            var y = NodeRunner.Run(n, [Tensor.FromArray<long>(data, L(ds)), Tensor.FromArray<long>(idx, L(ishape))], opset)[0];
            Assert.Equal(L(outShape), y.Dims);
            Assert.Equal(expected, y.ToInt64Array());
            // int32 indices and float data take the same path
            var yf = NodeRunner.Run(n, [Tensor.FromArray<float>(data.Select(v => (float)v).ToArray(), L(ds)), Tensor.FromArray<int>(idx.Select(v => (int)v).ToArray(), L(ishape))], opset)[0];
            Assert.Equal(expected.Select(v => (float)v).ToArray(), yf.ToFloatArray());
        }
    }

    [Theory]
    [InlineData(2L)]
    [InlineData(-3L)]
    public void OutOfRangeIndexIsAClearError(long bad)
    {
        var n = new Node("GatherND", ["x", "i"], ["y"]);
        var e = Assert.Throws<InvalidOperationException>(() => NodeRunner.Run(n, [TensorKernelTests.I64(TensorKernelTests.Iota(4), 2, 2), TensorKernelTests.I64([0, bad], 1, 2)], 13));
        Assert.Contains($"index {bad} is out of range for data axis 1 of size 2", e.Message);
    }

    [Fact]
    public void RejectsMismatchedBatchAxesAndTooLongIndexRows()
    {
        var n = new Node("GatherND", ["x", "i"], ["y"]).With(Attribute.Of("batch_dims", 1L));
        Assert.Throws<InvalidOperationException>(() => NodeRunner.Run(n, [TensorKernelTests.I64(TensorKernelTests.Iota(6), 2, 3), TensorKernelTests.I64([0, 1, 2], 3, 1)], 13));
        var n0 = new Node("GatherND", ["x", "i"], ["y"]);
        Assert.Throws<InvalidOperationException>(() => NodeRunner.Run(n0, [TensorKernelTests.I64(TensorKernelTests.Iota(6), 2, 3), TensorKernelTests.I64([0, 1, 2], 1, 3)], 13));
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(1, 2)]
    [InlineData(1, 4)]
    [InlineData(1, 8)]
    [InlineData(3, 4)]
    [InlineData(5, 2)]
    public void FastPathAgreesWithScalarTwin(int slice, int esz)
    {
        var rnd = new Random(slice * 31 + esz);
        int rows = 37, srcElems = 50 * slice;
        var src = new byte[srcElems * esz];
        rnd.NextBytes(src);
        var offsets = Enumerable.Range(0, rows).Select(_ => rnd.Next(50) * slice).ToArray();
        var fast = new byte[rows * slice * esz];
        var scalar = new byte[fast.Length];
        GatherNDKernels.Gather(src, fast, offsets, slice, esz);
        GatherNDKernels.GatherBytes(src, scalar, offsets, slice, esz);
        Assert.Equal(scalar, fast);
    }

    [Theory]
    [InlineData(DType.UInt4, DType.Int64)]
    [InlineData(DType.UInt4, DType.Float32)]
    [InlineData(DType.Int4, DType.Int32)]
    [InlineData(DType.Int4, DType.Float32)]
    public void CastFromFourBitUnpacksEveryNibble(DType from, DType to)
    {
        int n = 515; // odd, and more than one 256-element tile
        var values = Enumerable.Range(0, n).Select(i => from == DType.Int4 ? (i * 5 % 16) - 8 : i * 5 % 16).ToArray();
        var x = Tensor.FromBytes(from, [n], Int4.Pack(values));
        var node = new Node("Cast", ["x"], ["y"]).With(Attribute.Of("to", (long)to));
        var y = NodeRunner.Run(node, [x], 21)[0];
        Assert.Equal(to, y.DType);
        Assert.Equal(values.Select(v => (double)v).ToArray(), y.ToFloatArray().Select(v => (double)v).ToArray());
    }

    [Fact]
    public void PalettizedWeightReconstructionFoldsAtLoad()
    {
        // codebook [2 groups, 16] + uint4 indices [2, 6, 1] -> Cast -> GatherND(batch_dims 1) -> Reshape -> MatMul.
        var cb = NodeRunner.Random(32, 7);
        var idx = Enumerable.Range(0, 12).Select(i => i * 7 % 16).ToArray();
        var g = new Graph { Name = "pal" };
        g.AddInitializer(Tensor.FromArray<float>(cb, [2, 16], "cb"));
        g.AddInitializer(Tensor.FromBytes(DType.UInt4, [2, 6, 1], Int4.Pack(idx), "q"));
        g.AddInitializer(Tensor.FromArray<long>([4, 3], [2], "shape"));
        g.Inputs.Add(ValueInfo.Tensor("a", DType.Float32, null));
        g.Nodes.Add(new Node("Cast", ["q"], ["q64"]).With(Attribute.Of("to", (long)DType.Int64)));
        g.Nodes.Add(new Node("GatherND", ["cb", "q64"], ["flat"]).With(Attribute.Of("batch_dims", 1L)));
        g.Nodes.Add(new Node("Reshape", ["flat", "shape"], ["w"]));
        g.Nodes.Add(new Node("MatMul", ["a", "w"], ["y"]));
        g.Outputs.Add(new ValueInfo("y"));
        var m = new Model(g);
        m.OpsetImports.Add(new OpsetImport("", 21));
        var s = new InferenceSession(m, new SessionOptions { Threads = 1 });
        Assert.DoesNotContain(s.OptimizedGraph.Nodes, n => n.OpType is "GatherND" or "Cast" or "Reshape");
        var a = NodeRunner.Random(8, 3);
        var y = s.Run(new Dictionary<string, Tensor> { ["a"] = Tensor.FromArray<float>(a, [2, 4]) })["y"].ToFloatArray();
        var w = Enumerable.Range(0, 12).Select(i => cb[(i / 6) * 16 + idx[i]]).ToArray(); // row-major [4,3]
        var expected = new float[6];
        for (int r = 0; r < 2; r++) for (int j = 0; j < 3; j++) for (int k = 0; k < 4; k++) expected[r * 3 + j] += a[r * 4 + k] * w[k * 3 + j];
        NodeRunner.Close(expected, y);
    }
}
