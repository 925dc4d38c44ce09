using OnDevice.Core;
using Attribute = OnDevice.Core.Attribute;

namespace OnDevice.Runtime.Tests;

/// <summary>Node-level tests of the data-movement kernels against naive index arithmetic.</summary>
public class TensorKernelTests
{
    internal static long[] L(params int[] v) => v.Select(x => (long)x).ToArray();
    internal static Tensor I64(long[] v, params int[] dims) => Tensor.FromArray<long>(v, L(dims));
    internal static Tensor F32(float[] v, params int[] dims) => Tensor.FromArray<float>(v, L(dims));
    internal static Tensor Ints(params long[] v) => Tensor.FromArray<long>(v, [v.Length]);

    /// <summary>Distinct int64 values 0, 7, 14, ... shifted, so every misplaced element shows.</summary>
    internal static long[] Iota(int n) => Enumerable.Range(0, n).Select(i => (long)i * 7 - 5).ToArray();

    private static void Same(long[] expected, int[] shape, Tensor actual)
    {
        Assert.Equal(L(shape), actual.Dims);
        Assert.Equal(expected, actual.ToInt64Array());
    }

    private static Tensor Run1(Node n, IReadOnlyList<Tensor?> inputs, long opset = 17, int threads = 1) => NodeRunner.Run(n, inputs, opset, threads)[0];

    // ---- Reshape, Flatten, Squeeze, Unsqueeze ----

    [Theory]
    [InlineData(new[] { 2, 3, 4 }, new long[] { 4, -1 }, new[] { 4, 6 }, 0)]
    [InlineData(new[] { 2, 3, 4 }, new long[] { 0, -1 }, new[] { 2, 12 }, 0)]
    [InlineData(new[] { 2, 3, 4 }, new long[] { 0, 0, 2, 2 }, new[] { 2, 3, 2, 2 }, 0)]
    [InlineData(new[] { 2, 3, 4 }, new long[] { -1 }, new[] { 24 }, 0)]
    [InlineData(new[] { 0, 4 }, new long[] { 4, 0 }, new[] { 4, 0 }, 1)]
    [InlineData(new[] { 0, 4 }, new long[] { 0, 2, 2 }, new[] { 0, 2, 2 }, 0)]
    [InlineData(new[] { 1 }, new long[0], new int[0], 0)]
    public void Reshape_ResolvesZeroAndMinusOne(int[] shape, long[] target, int[] expected, int allowZero)
    {
        var x = Iota(NaiveTensorOps.Count(shape));
        var n = new Node("Reshape", ["x", "s"], ["y"]).With(Attribute.Of("allowzero", (long)allowZero));
        Same(x, expected, Run1(n, [I64(x, shape), Ints(target)], opset: 14));
    }

    [Fact]
    public void Reshape_RejectsImpossibleShapes()
    {
        var n = new Node("Reshape", ["x", "s"], ["y"]);
        Assert.ThrowsAny<Exception>(() => Run1(n, [I64(Iota(6), 2, 3), Ints(4, -1)]));
        Assert.ThrowsAny<Exception>(() => Run1(n, [I64(Iota(6), 2, 3), Ints(-1, -1)]));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(-1)]
    [InlineData(-3)]
    public void Flatten_SplitsAtAxis(int axis)
    {
        int[] shape = [2, 3, 4];
        var x = Iota(24);
        int a = axis < 0 ? axis + 3 : axis;
        int rows = shape.Take(a).Aggregate(1, (p, d) => p * d);
        var n = new Node("Flatten", ["x"], ["y"]).With(Attribute.Of("axis", (long)axis));
        Same(x, [rows, 24 / rows], Run1(n, [I64(x, shape)]));
    }

    [Fact]
    public void Squeeze_And_Unsqueeze_AcceptAttributeOrInputAxes()
    {
        var x = Iota(6);
        Same(x, [3, 2], Run1(new Node("Squeeze", ["x"], ["y"]), [I64(x, 1, 3, 1, 2)], opset: 13));
        Same(x, [3, 1, 2], Run1(new Node("Squeeze", ["x", "a"], ["y"]), [I64(x, 1, 3, 1, 2), Ints(0)], opset: 13));
        Same(x, [1, 3, 2], Run1(new Node("Squeeze", ["x"], ["y"]).With(Attribute.Of("axes", new long[] { -2 })), [I64(x, 1, 3, 1, 2)], opset: 11));
        Assert.ThrowsAny<Exception>(() => Run1(new Node("Squeeze", ["x", "a"], ["y"]), [I64(x, 1, 3, 1, 2), Ints(1)], opset: 13));
        Same(x, [1, 3, 1, 2, 1], Run1(new Node("Unsqueeze", ["x", "a"], ["y"]), [I64(x, 3, 2), Ints(0, -1, 2)], opset: 13));
        Same(x, [3, 1, 2], Run1(new Node("Unsqueeze", ["x"], ["y"]).With(Attribute.Of("axes", new long[] { 1 })), [I64(x, 3, 2)], opset: 11));
        Same([42], [1], Run1(new Node("Unsqueeze", ["x", "a"], ["y"]), [I64([42]), Ints(0)], opset: 13));
        Assert.ThrowsAny<Exception>(() => Run1(new Node("Unsqueeze", ["x", "a"], ["y"]), [I64(x, 3, 2), Ints(1, 1)], opset: 13));
    }

    // ---- Transpose, DepthToSpace, SpaceToDepth ----

    public static TheoryData<int[], int[]> Permutations()
    {
        var d = new TheoryData<int[], int[]>
        {
            { [5, 7], [1, 0] },
            { [33, 17], [1, 0] },
            { [3, 4, 5], [0, 2, 1] },
            { [3, 4, 5], [2, 0, 1] },
            { [3, 4, 5], [1, 0, 2] },
            { [2, 1, 3, 1, 4], [4, 3, 2, 1, 0] },
            { [2, 3, 4, 5], [0, 2, 3, 1] },
            { [2, 3, 4, 5], [0, 3, 1, 2] },
            { [2, 3, 4, 5], [3, 2, 1, 0] },
            { [2, 3, 4, 5, 2], [4, 0, 3, 1, 2] },
            { [1, 1, 6], [2, 1, 0] },
            { [0, 3], [1, 0] },
            { [7], [0] },
            { [], [] },
        };
        return d;
    }

    [Theory]
    [MemberData(nameof(Permutations))]
    public void Transpose_MatchesNaive_ForEveryElementSize(int[] shape, int[] perm)
    {
        var x = Iota(NaiveTensorOps.Count(shape));
        var expected = NaiveTensorOps.Transpose(x, shape, perm);
        var outShape = perm.Select(p => shape[p]).ToArray();
        var n = new Node("Transpose", ["x"], ["y"]).With(Attribute.Of("perm", L(perm)));
        foreach (int threads in new[] { 1, 3 })
        {
            Same(expected, outShape, Run1(n, [I64(x, shape)], threads: threads));
            var f = Run1(n, [F32(x.Select(v => (float)v).ToArray(), shape)], threads: threads);
            Assert.Equal(expected.Select(v => (float)v), f.ToFloatArray());
            var h = Run1(n, [Tensor.FromArray<Half>(x.Select(v => (Half)v).ToArray(), L(shape))], threads: threads);
            Assert.Equal(expected.Select(v => (double)(Half)v), Enumerable.Range(0, expected.Length).Select(i => h.GetDouble(i)));
            var b = Run1(n, [Tensor.FromArray<byte>(x.Select(v => (byte)v).ToArray(), L(shape))], threads: threads);
            Assert.Equal(expected.Select(v => (byte)v), b.AsSpan<byte>().ToArray());
        }
    }

    [Fact]
    public void Transpose_DefaultReversesAxes_AndLargeTilesMatch()
    {
        int[] shape = [37, 53, 3];
        var x = Iota(NaiveTensorOps.Count(shape));
        Same(NaiveTensorOps.Transpose(x, shape, [2, 1, 0]), [3, 53, 37], Run1(new Node("Transpose", ["x"], ["y"]), [I64(x, shape)]));
        var rng = new Random(5);
        for (int t = 0; t < 20; t++)
        {
            int rank = rng.Next(2, 6);
            var s = Enumerable.Range(0, rank).Select(_ => rng.Next(1, 6)).ToArray();
            var perm = Enumerable.Range(0, rank).OrderBy(_ => rng.Next()).ToArray();
            var v = Iota(NaiveTensorOps.Count(s));
            Same(NaiveTensorOps.Transpose(v, s, perm), perm.Select(p => s[p]).ToArray(),
                Run1(new Node("Transpose", ["x"], ["y"]).With(Attribute.Of("perm", L(perm))), [I64(v, s)], threads: 2));
        }
    }

    [Theory]
    [InlineData("DCR", 2)]
    [InlineData("CRD", 2)]
    [InlineData("DCR", 3)]
    [InlineData("CRD", 1)]
    public void DepthToSpace_MatchesFormula_AndSpaceToDepthInvertsDcr(string mode, int b)
    {
        int[] shape = [2, 2 * b * b, 3, 4];
        var x = Iota(NaiveTensorOps.Count(shape));
        var d2s = new Node("DepthToSpace", ["x"], ["y"]).With(Attribute.Of("blocksize", (long)b)).With(Attribute.Of("mode", mode));
        var y = Run1(d2s, [I64(x, shape)], opset: 13);
        Same(NaiveTensorOps.DepthToSpace(x, shape, b, mode == "CRD"), [2, 2, 3 * b, 4 * b], y);
        if (mode == "DCR")
        {
            var s2d = new Node("SpaceToDepth", ["x"], ["y"]).With(Attribute.Of("blocksize", (long)b));
            Same(x, shape, Run1(s2d, [y], opset: 13));
        }
    }

    // ---- Concat, Split ----

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(-1)]
    [InlineData(-3)]
    public void Concat_JoinsAlongAxis_IncludingEmptyParts(int axis)
    {
        int a = axis < 0 ? axis + 3 : axis;
        int[][] shapes = [[2, 3, 4], [2, 3, 4], [2, 3, 4]];
        shapes[1][a] = 0;
        shapes[2][a] = 5;
        var parts = shapes.Select((s, i) => Iota(NaiveTensorOps.Count(s)).Select(v => v + 1000 * i).ToArray()).ToArray();
        var outShape = (int[])shapes[0].Clone();
        outShape[a] = shapes.Sum(s => s[a]);
        // expected: walk the output and pick from the part that covers the axis coordinate
        var expected = new long[NaiveTensorOps.Count(outShape)];
        for (int i = 0; i < expected.Length; i++)
        {
            var o = NaiveTensorOps.Unravel(i, outShape);
            int k = o[a], p = 0;
            while (k >= shapes[p][a]) { k -= shapes[p][a]; p++; }
            o[a] = k;
            expected[i] = parts[p][NaiveTensorOps.Ravel(o, shapes[p])];
        }
        var n = new Node("Concat", ["a", "b", "c"], ["y"]).With(Attribute.Of("axis", (long)axis));
        Same(expected, outShape, Run1(n, [I64(parts[0], shapes[0]), I64(parts[1], shapes[1]), I64(parts[2], shapes[2])]));
    }

    [Fact]
    public void Split_BySizes_Equally_AndByNumOutputs()
    {
        var x = Iota(2 * 7);
        var three = new Node("Split", ["x", "s"], ["a", "b", "c"]).With(Attribute.Of("axis", -1L));
        var r = NodeRunner.Run(three, [I64(x, 2, 7), Ints(2, 0, 5)], 13);
        Same([x[0], x[1], x[7], x[8]], [2, 2], r[0]);
        Same([], [2, 0], r[1]);
        Same(x.Skip(2).Take(5).Concat(x.Skip(9)).ToArray(), [2, 5], r[2]);

        var equal = new Node("Split", ["x"], ["a", "b"]);
        var e = NodeRunner.Run(equal, [I64(x, 2, 7)], 13);
        Same(x.Take(7).ToArray(), [1, 7], e[0]);
        Same(x.Skip(7).ToArray(), [1, 7], e[1]);

        var uneven = new Node("Split", ["x"], ["a", "b", "c"]).With(Attribute.Of("axis", 1L)).With(Attribute.Of("num_outputs", 3L));
        var u = NodeRunner.Run(uneven, [I64(x, 2, 7)], 18);
        Assert.Equal(new long[] { 2, 3 }, u[0].Dims);
        Assert.Equal(new long[] { 2, 3 }, u[1].Dims);
        Assert.Equal(new long[] { 2, 1 }, u[2].Dims);
        Same([x[6], x[13]], [2, 1], u[2]);

        var attr = new Node("Split", ["x"], ["a", "b"]).With(Attribute.Of("axis", 1L)).With(Attribute.Of("split", new long[] { 3, 4 }));
        var t = NodeRunner.Run(attr, [I64(x, 2, 7)], 11);
        Same([x[0], x[1], x[2], x[7], x[8], x[9]], [2, 3], t[0]);
        Assert.ThrowsAny<Exception>(() => NodeRunner.Run(new Node("Split", ["x"], ["a", "b", "c"]), [I64(x, 2, 7)], 13));
    }

    // ---- Slice ----

    public static TheoryData<int[], long[], long[], long[]?, long[]?> Slices() => new()
    {
        { [20, 10, 5], [0, 0, 3], [20, 10, 4], null, null },
        { [20, 10, 5], [1, 2], [1000, 1000], [0, 1], [1, 3] },
        { [20, 10, 5], [-1, 8], [-1000, 0], [0, 1], [-1, -3] },
        { [20, 10, 5], [5], [-100], [-2], [-2] },
        { [20, 10, 5], [-3], [long.MaxValue], [2], null },
        { [20, 10, 5], [long.MinValue], [3], [1], [1] },
        { [4, 6], [10, 0], [20, 6], null, null },
        { [4, 6], [0, 5], [4, -7], [0, 1], [1, -2] },
        { [4, 6], [-10], [-20], [0], [-1] },
        { [3, 0, 2], [0], [1], [1], null },
        { [6], [4], [0], [0], [-1] },
    };

    [Theory]
    [MemberData(nameof(Slices))]
    public void Slice_MatchesNaive(int[] shape, long[] starts, long[] ends, long[]? axes, long[]? steps)
    {
        var x = Iota(NaiveTensorOps.Count(shape));
        var taken = shape.Select(d => Enumerable.Range(0, d).ToArray()).ToArray();
        for (int i = 0; i < starts.Length; i++)
        {
            int a = axes is null ? i : (int)(axes[i] < 0 ? axes[i] + shape.Length : axes[i]);
            taken[a] = NaiveTensorOps.SliceIndices(shape[a], starts[i], ends[i], steps?[i] ?? 1);
        }
        var (expected, outShape) = NaiveTensorOps.Take(x, shape, taken);
        var n = new Node("Slice", ["x", "s", "e", axes is null && steps is null ? "" : "a", steps is null ? "" : "t"], ["y"]);
        var axesIn = axes ?? (steps is null ? null : Enumerable.Range(0, starts.Length).Select(i => (long)i).ToArray());
        Same(expected, outShape, Run1(n, [I64(x, shape), Ints(starts), Ints(ends), axesIn is null ? null : Ints(axesIn), steps is null ? null : Ints(steps)], opset: 13));
        if (steps is null)
        {
            var old = new Node("Slice", ["x"], ["y"]).With(Attribute.Of("starts", starts)).With(Attribute.Of("ends", ends));
            if (axes is not null) old.With(Attribute.Of("axes", axes));
            Same(expected, outShape, Run1(old, [I64(x, shape)], opset: 9));
        }
    }

    // ---- Gather, GatherElements ----

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(-1)]
    public void Gather_MatchesNaive_WithNegativeAndInt32Indices(int axis)
    {
        int[] shape = [3, 4, 5];
        int a = axis < 0 ? axis + 3 : axis;
        var x = Iota(60);
        long[] idx = [0, -1, 2, 1, 1, -2];
        int[] idxShape = [2, 3];
        var (expected, outShape) = NaiveTensorOps.Gather(x, shape, idx, idxShape, a);
        var n = new Node("Gather", ["x", "i"], ["y"]).With(Attribute.Of("axis", (long)axis));
        Same(expected, outShape, Run1(n, [I64(x, shape), I64(idx, idxShape)]));
        Same(expected, outShape, Run1(n, [I64(x, shape), Tensor.FromArray<int>(idx.Select(v => (int)v).ToArray(), L(idxShape))]));
        var f = Run1(n, [F32(x.Select(v => (float)v).ToArray(), shape), I64(idx, idxShape)]);
        Assert.Equal(expected.Select(v => (float)v), f.ToFloatArray());
        // scalar index drops the axis; empty indices give an empty axis
        var (s, sShape) = NaiveTensorOps.Gather(x, shape, [-1], [], a);
        Same(s, sShape, Run1(n, [I64(x, shape), Tensor.Scalar(-1L)]));
        var (e, eShape) = NaiveTensorOps.Gather(x, shape, [], [0], a);
        Same(e, eShape, Run1(n, [I64(x, shape), I64([], 0)]));
        Assert.ThrowsAny<Exception>(() => Run1(n, [I64(x, shape), Ints(5)]));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(-1)]
    public void GatherElements_MatchesNaive(int axis)
    {
        int[] shape = [3, 4];
        var x = Iota(12);
        long[] idx = [0, -1, 2, 1, 1, -2, 0, 0];
        int[] idxShape = axis == 0 ? [2, 4] : [3, 2];
        idx = idx.Take(NaiveTensorOps.Count(idxShape)).Select(v => axis == 0 ? Math.Clamp(v, -3, 2) : v).ToArray();
        int a = axis < 0 ? axis + 2 : axis;
        var expected = new long[idx.Length];
        for (int i = 0; i < idx.Length; i++)
        {
            var o = NaiveTensorOps.Unravel(i, idxShape);
            long k = idx[i] < 0 ? idx[i] + shape[a] : idx[i];
            o[a] = (int)k;
            expected[i] = x[NaiveTensorOps.Ravel(o, shape)];
        }
        var n = new Node("GatherElements", ["x", "i"], ["y"]).With(Attribute.Of("axis", (long)axis));
        Same(expected, idxShape, Run1(n, [I64(x, shape), I64(idx, idxShape)]));
    }

    // ---- Expand, Tile, Pad ----

    [Theory]
    [InlineData(new[] { 3, 1 }, new[] { 2, 1, 6 })]
    [InlineData(new[] { 3, 1 }, new[] { 3, 4 })]
    [InlineData(new[] { 1 }, new int[0])]
    [InlineData(new int[0], new[] { 2, 3 })]
    [InlineData(new[] { 2, 3 }, new[] { 1, 1 })]
    [InlineData(new[] { 1, 3 }, new[] { 0, 1 })]
    public void Expand_BroadcastsToShape(int[] shape, int[] target)
    {
        var x = Iota(NaiveTensorOps.Count(shape));
        var (expected, outShape) = NaiveTensorOps.Expand(x, shape, target);
        Same(expected, outShape, Run1(new Node("Expand", ["x", "s"], ["y"]), [I64(x, shape), Ints(L(target))]));
    }

    [Theory]
    [InlineData(new[] { 2, 3 }, new[] { 2, 2 })]
    [InlineData(new[] { 2, 3, 1 }, new[] { 1, 3, 4 })]
    [InlineData(new[] { 4 }, new[] { 3 })]
    [InlineData(new[] { 2, 3 }, new[] { 0, 2 })]
    public void Tile_RepeatsEachAxis(int[] shape, int[] reps)
    {
        var x = Iota(NaiveTensorOps.Count(shape));
        var (expected, outShape) = NaiveTensorOps.Tile(x, shape, reps);
        Same(expected, outShape, Run1(new Node("Tile", ["x", "r"], ["y"]), [I64(x, shape), Ints(L(reps))]));
    }

    [Theory]
    [InlineData("constant", new long[] { 1, 2, 0, 3 })]
    [InlineData("constant", new long[] { -1, 1, 2, -2 })]
    [InlineData("edge", new long[] { 2, 3, 1, 4 })]
    [InlineData("reflect", new long[] { 2, 3, 2, 3 })]
    [InlineData("reflect", new long[] { 1, 0, 0, 2 })]
    [InlineData("wrap", new long[] { 2, 5, 1, 4 })]
    [InlineData("wrap", new long[] { -1, 2, 1, -2 })]
    public void Pad_EveryMode_MatchesNaive(string mode, long[] pads)
    {
        int[] shape = [3, 4];
        var x = Iota(12);
        long[] begin = [pads[0], pads[1]], end = [pads[2], pads[3]];
        var (expected, outShape) = NaiveTensorOps.Pad(x, shape, begin, end, mode, 99L);
        var n = new Node("Pad", ["x", "p", mode == "constant" ? "c" : ""], ["y"]).With(Attribute.Of("mode", mode));
        Same(expected, outShape, Run1(n, [I64(x, shape), Ints(pads), mode == "constant" ? Tensor.Scalar(99L) : null], opset: 19));
    }

    [Fact]
    public void Pad_AxesInput_AttributeForm_AndDefaultZero()
    {
        int[] shape = [2, 3, 2];
        var x = Iota(12);
        // opset 18 axes input: pad only the last axis
        var (e1, s1) = NaiveTensorOps.Pad(x, shape, [0, 0, 1], [0, 0, 2], "constant", 0L);
        var n = new Node("Pad", ["x", "p", "", "a"], ["y"]);
        Same(e1, s1, Run1(n, [I64(x, shape), Ints(1, 2), null, Ints(-1)], opset: 18));
        // opset 2 attributes on float data
        var xf = x.Select(v => (float)v).ToArray();
        var (e2, s2) = NaiveTensorOps.Pad(xf, shape, [1, 0, 0], [0, 1, 1], "constant", 2.5f);
        var old = new Node("Pad", ["x"], ["y"]).With(Attribute.Of("pads", new long[] { 1, 0, 0, 0, 1, 1 })).With(Attribute.Of("value", 2.5f));
        var y = Run1(old, [F32(xf, shape)], opset: 2);
        Assert.Equal(L(s2), y.Dims);
        Assert.Equal(e2, y.ToFloatArray());
        var (e3, s3) = NaiveTensorOps.Pad(xf, shape, [0, 1, 1], [0, 1, 1], "reflect", 0f);
        var refl = new Node("Pad", ["x"], ["y"]).With(Attribute.Of("pads", new long[] { 0, 1, 1, 0, 1, 1 })).With(Attribute.Of("mode", "reflect"));
        Assert.Equal(e3, Run1(refl, [F32(xf, shape)], opset: 10).ToFloatArray());
        Assert.Equal(L(s3), Run1(refl, [F32(xf, shape)], opset: 10).Dims);
    }

    // ---- Shape, Size, constants, Range, Identity, Dropout ----

    [Theory]
    [InlineData(null, null, new long[] { 2, 3, 4, 5 })]
    [InlineData(1L, null, new long[] { 3, 4, 5 })]
    [InlineData(-1L, null, new long[] { 5 })]
    [InlineData(1L, -1L, new long[] { 3, 4 })]
    [InlineData(-10L, 10L, new long[] { 2, 3, 4, 5 })]
    [InlineData(3L, 1L, new long[0])]
    public void Shape_WithStartAndEnd(long? start, long? end, long[] expected)
    {
        var n = new Node("Shape", ["x"], ["y"]);
        if (start is { } s) n.With(Attribute.Of("start", s));
        if (end is { } e) n.With(Attribute.Of("end", e));
        var y = Run1(n, [F32(new float[120], 2, 3, 4, 5)], opset: 15);
        Assert.Equal(DType.Int64, y.DType);
        Assert.Equal(expected, y.ToInt64Array());
    }

    [Fact]
    public void Size_ConstantOfShape_Constant_Identity()
    {
        var size = Run1(new Node("Size", ["x"], ["y"]), [F32(new float[6], 2, 3)]);
        Assert.Empty(size.Dims);
        Assert.Equal(6L, size.ToInt64Array()[0]);

        var zeros = Run1(new Node("ConstantOfShape", ["s"], ["y"]), [Ints(2, 3)]);
        Assert.Equal(DType.Float32, zeros.DType);
        Assert.Equal(new float[6], zeros.ToFloatArray());
        var sevens = Run1(new Node("ConstantOfShape", ["s"], ["y"]).With(Attribute.Of("value", Tensor.FromArray<long>([7L], [1]))), [Ints(3)]);
        Assert.Equal(new long[] { 7, 7, 7 }, sevens.ToInt64Array());
        var scalar = Run1(new Node("ConstantOfShape", ["s"], ["y"]).With(Attribute.Of("value", Tensor.FromArray<int>([-2], [1]))), [I64([], 0)]);
        Assert.Empty(scalar.Dims);
        Assert.Equal(-2, scalar.AsSpan<int>()[0]);

        // Constant nodes are lifted to initializers by the session; the value must come out unchanged.
        var c = new Node("Constant", [], ["y"]).With(Attribute.Of("value_ints", new long[] { 4, 5 }));
        var ct = NodeRunner.Run(c, [], 13)[0];
        Assert.Equal(new long[] { 4, 5 }, ct.ToInt64Array());

        var x = Iota(5);
        Same(x, [5], Run1(new Node("Identity", ["x"], ["y"]), [I64(x, 5)]));
    }

    [Fact]
    public void NonTensorGraphValues_AreRejectedAtSessionCreation()
    {
        var g = new Graph { Name = "seq" };
        g.Inputs.Add(new ValueInfo("s", new SequenceTypeInfo(new TensorTypeInfo(DType.Float32, null))));
        g.Nodes.Add(new Node("Identity", ["s"], ["y"]));
        g.Outputs.Add(new ValueInfo("y", new SequenceTypeInfo(new TensorTypeInfo(DType.Float32, null))));
        var m = new Model(g);
        m.OpsetImports.Add(new OpsetImport("", 16));
        var e = Assert.Throws<NotSupportedException>(() => new InferenceSession(m));
        Assert.Contains("'s'", e.Message);
    }

    [Theory]
    [InlineData(1f, 5f, 2f, new float[] { 1, 3 })]
    [InlineData(10f, 4f, -3f, new float[] { 10, 7 })]
    [InlineData(0f, 0f, 1f, new float[0])]
    [InlineData(5f, 1f, 1f, new float[0])]
    [InlineData(0f, 1f, 0.25f, new float[] { 0, 0.25f, 0.5f, 0.75f })]
    public void Range_Float(float start, float limit, float delta, float[] expected)
    {
        var y = Run1(new Node("Range", ["a", "b", "c"], ["y"]), [Tensor.Scalar(start), Tensor.Scalar(limit), Tensor.Scalar(delta)], opset: 11);
        Assert.Equal(expected, y.ToFloatArray());
        Assert.Equal(new long[] { expected.Length }, y.Dims);
    }

    [Fact]
    public void Range_Int64_And_Int32()
    {
        var y = Run1(new Node("Range", ["a", "b", "c"], ["y"]), [Tensor.Scalar(10L), Tensor.Scalar(-3L), Tensor.Scalar(-4L)], opset: 11);
        Assert.Equal(new long[] { 10, 6, 2, -2 }, y.ToInt64Array());
        var z = Run1(new Node("Range", ["a", "b", "c"], ["y"]), [Tensor.Scalar(0), Tensor.Scalar(7), Tensor.Scalar(3)], opset: 11);
        Assert.Equal(new[] { 0, 3, 6 }, z.AsSpan<int>().ToArray());
        Assert.ThrowsAny<Exception>(() => Run1(new Node("Range", ["a", "b", "c"], ["y"]), [Tensor.Scalar(0L), Tensor.Scalar(7L), Tensor.Scalar(0L)], opset: 11));
    }

    [Fact]
    public void Dropout_InInference_IsIdentity_WithMaskOfOnes()
    {
        var x = NodeRunner.Random(12, 3);
        var n = new Node("Dropout", ["x", "r"], ["y", "m"]);
        var r = NodeRunner.Run(n, [F32(x, 3, 4), Tensor.Scalar(0.5f)], 13);
        Assert.Equal(x, r[0].ToFloatArray());
        Assert.Equal(DType.Bool, r[1].DType);
        Assert.All(r[1].AsSpan<byte>().ToArray(), b => Assert.Equal(1, b));
        var old = NodeRunner.Run(new Node("Dropout", ["x"], ["y", "m"]), [F32(x, 3, 4)], 7);
        Assert.Equal(DType.Float32, old[1].DType);
        Assert.All(old[1].ToFloatArray(), v => Assert.Equal(1f, v));
        // training mode given at run time draws random masks: rejected when the session is built
        Assert.Throws<Kernels.UnsupportedOperatorException>(() =>
            NodeRunner.Run(new Node("Dropout", ["x", "r", "t"], ["y"]), [F32(x, 3, 4), Tensor.Scalar(0.5f), Tensor.Scalar(true)], 13));
    }
}
