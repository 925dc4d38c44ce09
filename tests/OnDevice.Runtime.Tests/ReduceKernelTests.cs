using OnDevice.Core;
using OnDevice.Runtime.Kernels.Reduce;
using OnDevice.Runtime.Reference;
using OnDevice.Runtime.Simd;
using Attribute = OnDevice.Core.Attribute;

namespace OnDevice.Runtime.Tests;

/// <summary>The SIMD reductions and softmax rows agree with their scalar definitions on every length from 0 to past
/// three 512-bit vectors; CI reruns these with AVX-512, AVX2 and all hardware intrinsics disabled.</summary>
[Trait("Category", "Kernels")]
public class ReductionDriverTests
{
    public static TheoryData<int> Lengths()
    {
        var d = new TheoryData<int>();
        for (int n = 0; n <= 3 * 16 + 3; n++) d.Add(n);
        return d;
    }

    private static float[] Data(int n, int seed)
    {
        var x = NodeRunner.Random(n, seed, -3, 3);
        if (n > 5) x[5] = -0f;
        return x;
    }

    private static double[] D(float[] x) => x.Select(v => (double)v).ToArray();

    private static void Near(double expected, float actual, double rtol = 1e-5, double atol = 1e-5)
    {
        if (double.IsNaN(expected)) { Assert.True(float.IsNaN(actual), $"expected NaN, got {actual}"); return; }
        if (double.IsInfinity(expected)) { Assert.Equal(expected, actual); return; }
        Assert.True(Math.Abs(actual - expected) <= atol + rtol * Math.Abs(expected), $"{actual} vs expected {expected}");
    }

    [Theory]
    [MemberData(nameof(Lengths))]
    public void EveryReduceRow_MatchesTheReference(int n)
    {
        var x = Data(n, n);
        foreach (var op in Enum.GetValues<ReduceOp>())
        {
            var row = op is ReduceOp.Prod ? x.Select(v => 1 + v / 10).ToArray() : op is ReduceOp.LogSum ? x.Select(MathF.Abs).ToArray() : x;
            Near(ReduceReference.Fold(op, D(row)), ReduceKernels.Row(op, row));
        }
    }

    [Theory]
    [MemberData(nameof(Lengths))]
    public void MaxAndMin_PropagateNaN_AndAreExact(int n)
    {
        var x = Data(n, 100 + n);
        Assert.Equal((float)ReduceReference.Fold(ReduceOp.Max, D(x)), ReductionDriver.Max(x));
        Assert.Equal((float)ReduceReference.Fold(ReduceOp.Min, D(x)), ReductionDriver.Aggregate<ReductionOps.MinOp>(x));
        if (n == 0) return;
        x[n / 2] = float.NaN;
        Assert.True(float.IsNaN(ReductionDriver.Max(x)));
        Assert.True(float.IsNaN(ReductionDriver.Aggregate<ReductionOps.MinOp>(x)));
    }

    [Theory]
    [MemberData(nameof(Lengths))]
    public void ExpShiftSum_And_RowOps_MatchScalar(int n)
    {
        var x = Data(n, 200 + n);
        var y = new float[n];
        float s = ReductionDriver.ExpShiftSum(x, 0.5f, y);
        double expected = 0;
        for (int i = 0; i < n; i++)
        {
            double e = Math.Exp(x[i] - 0.5);
            Near(e, y[i], 1e-6, 0);
            expected += e;
        }
        Near(expected, s, 1e-6, 1e-6);
        var z = new float[n];
        ReductionDriver.Divide(x, 3f, z);
        for (int i = 0; i < n; i++) Assert.Equal(x[i] / 3f, z[i]);
        ReductionDriver.Subtract(x, 0.25f, z);
        for (int i = 0; i < n; i++) Assert.Equal(x[i] - 0.25f, z[i]);
        var acc = Data(n, 300 + n);
        var expectedAcc = acc.Select((a, i) => a + 1.5f * x[i]).ToArray();
        ReductionDriver.MultiplyAdd(x, 1.5f, acc);
        Assert.Equal(expectedAcc, acc);
    }

    [Theory]
    [MemberData(nameof(Lengths))]
    public void SoftmaxRows_MatchTheReference(int n)
    {
        if (n == 0) return;
        var x = Data(n, 400 + n);
        foreach (var kind in new[] { SoftmaxKernels.Kind.Softmax, SoftmaxKernels.Kind.LogSoftmax, SoftmaxKernels.Kind.Hardmax })
        {
            var y = new float[n];
            SoftmaxKernels.Row(kind, x, y);
            var expected = ReduceReference.Softmax(D(x), 1, n, 1, kind.ToString());
            for (int i = 0; i < n; i++) Near(expected[i], y[i], 1e-5, 1e-6);
            // the column form ([1, n, 3]: softmax down each of three columns)
            var cols = Enumerable.Range(0, 3 * n).Select(i => x[i / 3] + i % 3).ToArray();
            var yc = new float[3 * n];
            SoftmaxKernels.Float32(kind, cols, yc, 0, 1, n, 3);
            var ec = ReduceReference.Softmax(D(cols), 1, n, 3, kind.ToString());
            for (int i = 0; i < 3 * n; i++) Near(ec[i], yc[i], 1e-5, 1e-6);
        }
    }
}

/// <summary>Node-level tests of reductions, arg-reductions, softmax, TopK, CumSum and Einsum against the scalar references.</summary>
[Trait("Category", "Kernels")]
public class ReduceKernelTests
{
    private static readonly Dictionary<ReduceOp, string> Names = new()
    {
        [ReduceOp.Sum] = "ReduceSum", [ReduceOp.Mean] = "ReduceMean", [ReduceOp.Max] = "ReduceMax", [ReduceOp.Min] = "ReduceMin",
        [ReduceOp.Prod] = "ReduceProd", [ReduceOp.L1] = "ReduceL1", [ReduceOp.L2] = "ReduceL2", [ReduceOp.LogSum] = "ReduceLogSum",
        [ReduceOp.LogSumExp] = "ReduceLogSumExp", [ReduceOp.SumSquare] = "ReduceSumSquare",
    };

    private static long[] L(int[] v) => v.Select(x => (long)x).ToArray();

    public static TheoryData<int[], int[]?> ShapesAndAxes() => new()
    {
        { [2, 3, 4], null },
        { [2, 3, 4], [0] },
        { [2, 3, 4], [1] },
        { [2, 3, 4], [-1] },
        { [2, 3, 4], [0, 2] },
        { [2, 3, 4], [1, 2] },
        { [3, 1, 5, 2], [0, 2] },
        { [3, 1, 5, 2], [1, 3] },
        { [2, 37], [1] },
        { [37, 19], [0] },
        { [5], [0] },
        { [2, 0, 3], [1] },
        { [2, 0, 3], [0] },
    };

    /// <summary>Data each op is defined on everywhere (LogSum needs positive sums; Prod stays near 1).</summary>
    private static float[] DataFor(ReduceOp op, int n, int seed)
    {
        var x = NodeRunner.Random(n, seed, -2, 2);
        return op switch
        {
            ReduceOp.LogSum => x.Select(v => MathF.Abs(v) + 0.1f).ToArray(),
            ReduceOp.Prod => x.Select(v => 1 + v / 8).ToArray(),
            _ => x,
        };
    }

    [Theory]
    [MemberData(nameof(ShapesAndAxes))]
    public void Float32_AllOps_BothAxesForms_KeepDimsOrNot(int[] shape, int[]? axes)
    {
        foreach (var op in Enum.GetValues<ReduceOp>())
            foreach (bool keep in new[] { true, false })
                foreach (int opset in new[] { 13, 18 })
                {
                    var x = DataFor(op, NaiveTensorOps.Count(shape), shape.Sum() + (int)op);
                    var norm = axes?.Select(a => a < 0 ? a + shape.Length : a).ToArray() ?? Enumerable.Range(0, shape.Length).ToArray();
                    var (expected, outShape) = ReduceReference.Reduce(x.Select(v => (double)v).ToArray(), shape, norm, keep, op);
                    bool axesInput = opset >= 18 || op == ReduceOp.Sum;
                    var n = new Node(Names[op], axesInput && axes is not null ? ["x", "a"] : ["x"], ["y"]).With(Attribute.Of("keepdims", keep ? 1L : 0L));
                    if (!axesInput && axes is not null) n.With(Attribute.Of("axes", L(axes)));
                    var inputs = new List<Tensor?> { Tensor.FromArray<float>(x, L(shape)) };
                    if (axesInput && axes is not null) inputs.Add(Tensor.FromArray<long>(L(axes), [axes.Length]));
                    foreach (int threads in new[] { 1, 4 })
                    {
                        var y = NodeRunner.Run(n, inputs, opset, threads)[0];
                        Assert.Equal(L(outShape), y.Dims);
                        NodeRunner.Close(expected.Select(v => (float)v).ToArray(), y.ToFloatArray(), 1e-5f, 1e-5f);
                    }
                }
    }

    [Theory]
    [InlineData(DType.Float64)]
    [InlineData(DType.Int32)]
    [InlineData(DType.Int64)]
    public void OtherTypes_MatchTheReference(DType dtype)
    {
        int[] shape = [3, 4, 5];
        foreach (var op in Enum.GetValues<ReduceOp>())
        {
            bool isInt = dtype != DType.Float64;
            if (isInt && op is ReduceOp.LogSum or ReduceOp.LogSumExp) continue;
            var raw = Enumerable.Range(0, 60).Select(i => (double)((i * 7 % 11) - 5)).ToArray();
            if (op == ReduceOp.Prod) raw = raw.Select(v => v % 3 == 0 ? 1 : Math.Sign(v) * 2.0).ToArray();
            if (op == ReduceOp.LogSum) raw = raw.Select(v => Math.Abs(v) + 1).ToArray();
            foreach (var axes in new[] { new[] { 1 }, new[] { 0, 2 }, new[] { 2 } })
            {
                var (expected, outShape) = ReduceReference.Reduce(raw, shape, axes, true, op);
                if (isInt) expected = expected.Select(v => op == ReduceOp.Mean || op == ReduceOp.L2 ? Math.Truncate(v) : v).ToArray();
                Tensor x = dtype switch
                {
                    DType.Float64 => Tensor.FromArray<double>(raw, L(shape)),
                    DType.Int32 => Tensor.FromArray<int>(raw.Select(v => (int)v).ToArray(), L(shape)),
                    _ => Tensor.FromArray<long>(raw.Select(v => (long)v).ToArray(), L(shape)),
                };
                var n = new Node(Names[op], ["x", "a"], ["y"]);
                var y = NodeRunner.Run(n, [x, Tensor.FromArray<long>(L(axes), [axes.Length])], 18)[0];
                Assert.Equal(dtype, y.DType);
                Assert.Equal(L(outShape), y.Dims);
                for (int i = 0; i < expected.Length; i++)
                    Assert.True(Math.Abs(y.GetDouble(i) - expected[i]) <= 1e-9 + 1e-9 * Math.Abs(expected[i]), $"{op} {string.Join(",", axes)} [{i}]: {y.GetDouble(i)} vs {expected[i]}");
            }
        }
    }

    [Fact]
    public void EmptyAxes_ReduceAll_OrNoop()
    {
        var x = NodeRunner.Random(6, 1);
        var all = NodeRunner.Run(new Node("ReduceSum", ["x", "a"], ["y"]).With(Attribute.Of("keepdims", 0L)), [Tensor.FromArray<float>(x, [2, 3]), Tensor.FromArray<long>([], [0])], 13)[0];
        Assert.Empty(all.Dims);
        NodeRunner.Close([x.Sum()], all.ToFloatArray(), 1e-6f);
        // noop: nothing is reduced, each element is folded alone (SumSquare squares, L2 takes |x|, Sum copies)
        var noop = NodeRunner.Run(new Node("ReduceSumSquare", ["x", "a"], ["y"]).With(Attribute.Of("noop_with_empty_axes", 1L)), [Tensor.FromArray<float>(x, [2, 3]), Tensor.FromArray<long>([], [0])], 18)[0];
        Assert.Equal(new long[] { 2, 3 }, noop.Dims);
        Assert.Equal(x.Select(v => v * v), noop.ToFloatArray());
        var l2 = NodeRunner.Run(new Node("ReduceL2", ["x", "a"], ["y"]).With(Attribute.Of("noop_with_empty_axes", 1L)), [Tensor.FromArray<float>(x, [2, 3]), Tensor.FromArray<long>([], [0])], 18)[0];
        Assert.Equal(x.Select(MathF.Abs), l2.ToFloatArray());
        var sum = NodeRunner.Run(new Node("ReduceSum", ["x", "a"], ["y"]).With(Attribute.Of("noop_with_empty_axes", 1L)), [Tensor.FromArray<float>(x, [2, 3]), Tensor.FromArray<long>([], [0])], 13)[0];
        Assert.Equal(x, sum.ToFloatArray());
        var absent = NodeRunner.Run(new Node("ReduceMax", ["x"], ["y"]), [Tensor.FromArray<float>(x, [2, 3])], 18)[0];
        Assert.Equal(new long[] { 1, 1 }, absent.Dims);
        Assert.Equal(x.Max(), absent.ToFloatArray()[0]);
    }

    [Theory]
    [InlineData("ArgMax", 0, 1, 0)]
    [InlineData("ArgMax", 1, 0, 1)]
    [InlineData("ArgMin", -1, 1, 0)]
    [InlineData("ArgMin", 2, 0, 1)]
    [InlineData("ArgMax", -2, 1, 1)]
    public void ArgMaxMin_TiesAndSelectLast(string op, int axis, int keep, int last)
    {
        int[] shape = [3, 4, 5];
        var raw = Enumerable.Range(0, 60).Select(i => (double)(i * 7 % 5)).ToArray(); // many ties
        int a = axis < 0 ? axis + 3 : axis;
        var expected = ReduceReference.ArgExtreme(raw, shape, a, op == "ArgMax", last == 1);
        var outShape = shape.Select((d, i) => i == a ? 1 : d).Where((_, i) => keep == 1 || i != a).ToArray();
        var n = new Node(op, ["x"], ["y"]).With(Attribute.Of("axis", (long)axis)).With(Attribute.Of("keepdims", (long)keep)).With(Attribute.Of("select_last_index", (long)last));
        foreach (var x in new[] { Tensor.FromArray<float>(raw.Select(v => (float)v).ToArray(), L(shape)), Tensor.FromArray<long>(raw.Select(v => (long)v).ToArray(), L(shape)) })
        {
            var y = NodeRunner.Run(n, [x], 13)[0];
            Assert.Equal(DType.Int64, y.DType);
            Assert.Equal(L(outShape), y.Dims);
            Assert.Equal(expected, y.ToInt64Array());
        }
    }

    [Theory]
    [InlineData("Softmax", 13, -1)]
    [InlineData("Softmax", 13, 1)]
    [InlineData("Softmax", 13, 0)]
    [InlineData("Softmax", 11, 1)]
    [InlineData("Softmax", 11, -1)]
    [InlineData("LogSoftmax", 13, 2)]
    [InlineData("LogSoftmax", 11, 0)]
    [InlineData("LogSoftmax", 11, 2)]
    [InlineData("Hardmax", 13, 1)]
    [InlineData("Hardmax", 11, 1)]
    public void SoftmaxFamily_BeforeAnd_AfterOpset13(string kind, int opset, int axis)
    {
        int[] shape = [2, 3, 4, 5];
        var x = NodeRunner.Random(120, axis + 7, -4, 4);
        int a = axis < 0 ? axis + 4 : axis;
        int outer = shape.Take(a).Aggregate(1, (p, d) => p * d);
        int n = opset < 13 ? shape.Skip(a).Aggregate(1, (p, d) => p * d) : shape[a];
        int inner = opset < 13 ? 1 : shape.Skip(a + 1).Aggregate(1, (p, d) => p * d);
        var expected = ReduceReference.Softmax(x.Select(v => (double)v).ToArray(), outer, n, inner, kind);
        var node = new Node(kind, ["x"], ["y"]).With(Attribute.Of("axis", (long)axis));
        foreach (int threads in new[] { 1, 3 })
        {
            var y = NodeRunner.Run(node, [Tensor.FromArray<float>(x, L(shape))], opset, threads)[0];
            NodeRunner.Close(expected.Select(v => (float)v).ToArray(), y.ToFloatArray(), 1e-5f, 1e-6f);
        }
        var yd = NodeRunner.Run(node, [Tensor.FromArray<double>(x.Select(v => (double)v).ToArray(), L(shape))], opset)[0];
        for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], yd.GetDouble(i), 12);
    }

    [Fact]
    public void Softmax_DefaultAxis_DependsOnOpset_AndLargeValuesAreStable()
    {
        var x = new float[] { 1000, 1001, 1002, 1003, -1000, 0 };
        var y13 = NodeRunner.Run(new Node("Softmax", ["x"], ["y"]), [Tensor.FromArray<float>(x, [2, 3])], 13)[0];
        var e13 = ReduceReference.Softmax(x.Select(v => (double)v).ToArray(), 2, 3, 1, "Softmax");
        NodeRunner.Close(e13.Select(v => (float)v).ToArray(), y13.ToFloatArray(), 1e-5f, 1e-7f);
        var y11 = NodeRunner.Run(new Node("LogSoftmax", ["x"], ["y"]), [Tensor.FromArray<float>(x, [1, 2, 3])], 11)[0];
        var e11 = ReduceReference.Softmax(x.Select(v => (double)v).ToArray(), 1, 6, 1, "LogSoftmax");
        NodeRunner.Close(e11.Select(v => (float)v).ToArray(), y11.ToFloatArray(), 1e-5f, 1e-4f);
    }

    [Theory]
    [InlineData(-1, 3, 1)]
    [InlineData(1, 2, 0)]
    [InlineData(0, 3, 1)]
    [InlineData(2, 5, 1)]
    [InlineData(2, 0, 1)]
    [InlineData(2, 1, 0)]
    public void TopK_LargestAndSmallest_TiesByIndex(int axis, int k, int largest)
    {
        int[] shape = [3, 4, 5];
        var raw = Enumerable.Range(0, 60).Select(i => (double)(i * 7 % 6)).ToArray();
        int a = axis < 0 ? axis + 3 : axis;
        var (values, indices) = TensorReference.TopK(raw, shape, a, k, largest == 1);
        var outShape = shape.Select((d, i) => i == a ? k : d).ToArray();
        var n = new Node("TopK", ["x", "k"], ["v", "i"]).With(Attribute.Of("axis", (long)axis)).With(Attribute.Of("largest", (long)largest));
        foreach (var x in new[] { Tensor.FromArray<float>(raw.Select(v => (float)v).ToArray(), L(shape)), Tensor.FromArray<long>(raw.Select(v => (long)v).ToArray(), L(shape)) })
        {
            var r = NodeRunner.Run(n, [x, Tensor.FromArray<long>([k], [1])], 11);
            Assert.Equal(L(outShape), r[0].Dims);
            Assert.Equal(values, Enumerable.Range(0, values.Length).Select(i => r[0].GetDouble(i)));
            Assert.Equal(indices, r[1].ToInt64Array());
        }
        if (k > 0)
        {
            var old = new Node("TopK", ["x"], ["v", "i"]).With(Attribute.Of("axis", (long)axis)).With(Attribute.Of("k", (long)k));
            var (lv, li) = TensorReference.TopK(raw, shape, a, k, true);
            var r1 = NodeRunner.Run(old, [Tensor.FromArray<float>(raw.Select(v => (float)v).ToArray(), L(shape))], 1);
            Assert.Equal(li, r1[1].ToInt64Array());
            Assert.Equal(lv.Select(v => (float)v), r1[0].ToFloatArray());
        }
    }

    [Fact]
    public void TopK_RanksNaNFirst_AndRejectsOversizedK()
    {
        var x = new float[] { 3, float.NaN, 5, 1 };
        var r = NodeRunner.Run(new Node("TopK", ["x", "k"], ["v", "i"]), [Tensor.FromArray<float>(x, [4]), Tensor.FromArray<long>([2], [1])], 11);
        Assert.Equal(new long[] { 1, 2 }, r[1].ToInt64Array());
        Assert.ThrowsAny<Exception>(() => NodeRunner.Run(new Node("TopK", ["x", "k"], ["v", "i"]), [Tensor.FromArray<float>(x, [4]), Tensor.FromArray<long>([5], [1])], 11));
    }

    [Theory]
    [InlineData(0, 0, 0)]
    [InlineData(1, 1, 0)]
    [InlineData(-1, 0, 1)]
    [InlineData(2, 1, 1)]
    public void CumSum_ExclusiveReverse(int axis, int exclusive, int reverse)
    {
        int[] shape = [2, 3, 4];
        var raw = Enumerable.Range(0, 24).Select(i => (long)(i * 5 % 7 - 3)).ToArray();
        int a = axis < 0 ? axis + 3 : axis;
        var expected = TensorReference.CumSum<long>(raw, shape, a, exclusive == 1, reverse == 1);
        var n = new Node("CumSum", ["x", "axis"], ["y"]).With(Attribute.Of("exclusive", (long)exclusive)).With(Attribute.Of("reverse", (long)reverse));
        var y = NodeRunner.Run(n, [Tensor.FromArray<long>(raw, L(shape)), Tensor.Scalar(axis)], 14)[0];
        Assert.Equal(expected, y.ToInt64Array());
        var yf = NodeRunner.Run(n, [Tensor.FromArray<float>(raw.Select(v => (float)v).ToArray(), L(shape)), Tensor.Scalar((long)axis)], 14)[0];
        Assert.Equal(expected.Select(v => (float)v), yf.ToFloatArray());
    }

    [Theory]
    [InlineData("ij,jk->ik", new[] { 3, 4 }, new[] { 4, 5 })]
    [InlineData("bij,bjk->bik", new[] { 2, 3, 4 }, new[] { 2, 4, 5 })]
    [InlineData("ij->ji", new[] { 3, 4 }, null)]
    [InlineData("ij->i", new[] { 3, 4 }, null)]
    [InlineData("ij->", new[] { 3, 4 }, null)]
    [InlineData("i,j->ij", new[] { 3 }, new[] { 4 })]
    [InlineData("i,i->", new[] { 5 }, new[] { 5 })]
    [InlineData("i,i", new[] { 5 }, new[] { 5 })]
    [InlineData("ij,jk", new[] { 3, 4 }, new[] { 4, 2 })]
    [InlineData("ii->i", new[] { 4, 4 }, null)]
    [InlineData("ii", new[] { 4, 4 }, null)]
    [InlineData("bii->bi", new[] { 2, 3, 3 }, null)]
    [InlineData("...ij,...jk->...ik", new[] { 2, 1, 3, 4 }, new[] { 3, 4, 2 })]
    [InlineData("bhqd,bhkd->bhqk", new[] { 1, 2, 3, 4 }, new[] { 1, 2, 5, 4 })]
    [InlineData("ijk,kj->ik", new[] { 2, 3, 4 }, new[] { 4, 3 })]
    [InlineData("iJ,Jk->ki", new[] { 2, 3 }, new[] { 3, 2 })]
    [InlineData("abc,cd->", new[] { 2, 3, 4 }, new[] { 4, 2 })]
    public void Einsum_MatchesTheReference(string equation, int[] a, int[]? b)
    {
        var operands = new List<(double[] Values, int[] Shape)> { (NodeRunner.Random(NaiveTensorOps.Count(a), 1).Select(v => (double)v).ToArray(), a) };
        if (b is not null) operands.Add((NodeRunner.Random(NaiveTensorOps.Count(b), 2).Select(v => (double)v).ToArray(), b));
        var (expected, shape) = EinsumReference.Evaluate(equation, operands);
        var n = new Node("Einsum", b is null ? ["a"] : ["a", "b"], ["y"]).With(Attribute.Of("equation", equation));
        var y = NodeRunner.Run(n, operands.Select(o => (Tensor?)Tensor.FromArray<float>(o.Values.Select(v => (float)v).ToArray(), L(o.Shape))).ToList(), 12)[0];
        Assert.Equal(L(shape), y.Dims);
        NodeRunner.Close(expected.Select(v => (float)v).ToArray(), y.ToFloatArray(), 1e-5f, 1e-5f);
        var yi = NodeRunner.Run(n, operands.Select(o => (Tensor?)Tensor.FromArray<long>(o.Values.Select(v => (long)Math.Round(v * 10)).ToArray(), L(o.Shape))).ToList(), 12)[0];
        var (ei, _) = EinsumReference.Evaluate(equation, operands.Select(o => (o.Values.Select(v => Math.Round(v * 10)).ToArray(), o.Shape)).ToList());
        Assert.Equal(ei.Select(v => (long)v), yi.ToInt64Array());
    }

    [Fact]
    public void Einsum_ThreeOperands()
    {
        int[] a = [2, 3], b = [3, 4], c = [4, 5];
        var ops = new[] { a, b, c }.Select((s, i) => (NodeRunner.Random(NaiveTensorOps.Count(s), 10 + i).Select(v => (double)v).ToArray(), s)).ToList();
        var (expected, shape) = EinsumReference.Evaluate("ij,jk,kl->il", ops);
        var n = new Node("Einsum", ["a", "b", "c"], ["y"]).With(Attribute.Of("equation", "ij,jk,kl->il"));
        var y = NodeRunner.Run(n, ops.Select(o => (Tensor?)Tensor.FromArray<float>(o.Item1.Select(v => (float)v).ToArray(), L(o.s))).ToList(), 12)[0];
        Assert.Equal(L(shape), y.Dims);
        NodeRunner.Close(expected.Select(v => (float)v).ToArray(), y.ToFloatArray(), 1e-5f, 1e-5f);
    }
}
