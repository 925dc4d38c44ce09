using OnDevice.Core;
using OnDevice.Runtime.Kernels;
using OnDevice.Runtime.Reference;
using Attr = OnDevice.Core.Attribute;

namespace OnDevice.Runtime.Tests;

/// <summary>Element-wise operators as nodes in a real session: broadcasting, integer and other dtypes, attribute
/// defaults, opset variants, threading and the errors bad input gets.</summary>
[Trait("Category", "Kernels")]
public class ElementwiseNodeTests
{
    private static long[] Dims(int[] shape) => shape.Select(d => (long)d).ToArray();

    private static Tensor F(float[] v, params long[] dims) => Tensor.FromArray<float>(v, dims);
    private static Tensor I32(int[] v, params long[] dims) => Tensor.FromArray<int>(v, dims);
    private static Tensor I64(long[] v, params long[] dims) => Tensor.FromArray<long>(v, dims);
    private static Tensor B(bool[] v, params long[] dims) => Tensor.FromArray<bool>(v, dims);

    private static Tensor Run1(string op, Tensor?[] inputs, long opset = 17, params Attr[] attrs)
    {
        var names = inputs.Select((t, i) => t is null ? "" : $"in{i}").ToArray();
        var node = new Node(op, names, ["y"]);
        foreach (var a in attrs) node.With(a);
        return NodeRunner.Run(node, inputs, opset)[0];
    }

    private static bool[] Bools(Tensor t) => t.AsSpan<bool>().ToArray();

    // ---- broadcasting ----

    public static TheoryData<string, int[], int[]> BroadcastCases()
    {
        var d = new TheoryData<string, int[], int[]>();
        int[][][] shapes =
        [
            [[2, 3, 4], [4]], [[2, 3, 4], [3, 1]], [[2, 1, 4], [1, 3, 1]], [[1], [5, 2]], [[3, 0, 2], [2]], [[], [7]], [[4, 1, 3], [4, 5, 1]],
        ];
        foreach (var op in new[] { "Sub", "Mul", "Div", "Max", "Min", "Pow" })
            foreach (var s in shapes) d.Add(op, s[0], s[1]);
        return d;
    }

    [Theory]
    [MemberData(nameof(BroadcastCases))]
    public void BinaryFloat_Broadcasts_LikeTheReference(string op, int[] aShape, int[] bShape)
    {
        int na = aShape.Aggregate(1, (p, q) => p * q), nb = bShape.Aggregate(1, (p, q) => p * q);
        var a = NodeRunner.Random(na, 11, op == "Pow" ? 0.1f : -3, 3);
        var b = NodeRunner.Random(nb, 12, -3, 3);
        Func<float, float, float> f = op switch
        {
            "Sub" => (p, q) => p - q,
            "Mul" => (p, q) => p * q,
            "Div" => (p, q) => p / q,
            "Max" => ElementwiseReference.Max,
            "Min" => ElementwiseReference.Min,
            _ => ElementwiseReference.Pow,
        };
        var y = Run1(op, [F(a, Dims(aShape)), F(b, Dims(bShape))]);
        var (values, shape) = ElementwiseReference.Broadcast(a, aShape, b, bShape, f);
        Assert.Equal(Dims(shape), y.Dims);
        NodeRunner.Close(values, y.ToFloatArray(), op == "Pow" ? 2e-6f : 0, 0);
    }

    [Fact]
    public void Binary_IncompatibleShapes_NameTheNode()
    {
        var e = Assert.ThrowsAny<Exception>(() => Run1("Add", [F(new float[6], 2, 3), F(new float[4], 4)]));
        Assert.Contains("broadcast", e.Message);
    }

    [Fact]
    public void LargeTensors_GiveTheSameResult_OnManyThreads()
    {
        int n = 5 * 40_001;
        var x = NodeRunner.Random(n, 1, -5, 5);
        var bias = NodeRunner.Random(5, 2);
        Tensor[] inputs = [F(x, n / 5, 5), F(bias, 5)];
        var node = new Node("Add", ["a", "b"], ["y"]);
        var one = NodeRunner.Run(node, inputs, threads: 1)[0].ToFloatArray();
        var four = NodeRunner.Run(new Node("Add", ["a", "b"], ["y"]), inputs, threads: 4)[0].ToFloatArray();
        NodeRunner.Close(one, four, 0, 0);
        var (expected, _) = ElementwiseReference.Broadcast(x, [n / 5, 5], bias, [5], (p, q) => p + q);
        NodeRunner.Close(expected, four, 0, 0);

        // Blocks of 5 with the second operand repeating per block: thread ranges start mid-block.
        var col = NodeRunner.Random(n / 5, 3);
        var perRow = NodeRunner.Run(new Node("Mul", ["a", "b"], ["y"]), [F(x, n / 5, 5), F(col, n / 5, 1)], threads: 4)[0].ToFloatArray();
        NodeRunner.Close(ElementwiseReference.Broadcast(x, [n / 5, 5], col, [n / 5, 1], (p, q) => p * q).Values, perRow, 0, 0);
        var s1 = NodeRunner.Run(new Node("Sigmoid", ["a"], ["y"]), [inputs[0]], threads: 1)[0].ToFloatArray();
        var s4 = NodeRunner.Run(new Node("Sigmoid", ["a"], ["y"]), [inputs[0]], threads: 4)[0].ToFloatArray();
        NodeRunner.Close(s1, s4, 0, 0);
        NodeRunner.Close(ElementwiseReference.Map(x, ElementwiseReference.Sigmoid), s4, 4e-7f, 1e-38f);
    }

    // ---- integer arithmetic ----

    [Fact]
    public void IntegerArithmetic_Wraps_AndDivisionTruncatesTowardZero()
    {
        long[] a = [7, -7, 7, -7, long.MaxValue, long.MinValue, 0, 9];
        long[] b = [2, 2, -2, -2, 1, -1, 5, 3];
        Assert.Equal(a.Zip(b, (p, q) => unchecked(p + q)), Run1("Add", [I64(a, 8), I64(b, 8)]).AsSpan<long>().ToArray());
        Assert.Equal(a.Zip(b, (p, q) => unchecked(p - q)), Run1("Sub", [I64(a, 8), I64(b, 8)]).AsSpan<long>().ToArray());
        Assert.Equal(a.Zip(b, (p, q) => unchecked(p * q)), Run1("Mul", [I64(a, 8), I64(b, 8)]).AsSpan<long>().ToArray());
        Assert.Equal(new long[] { 3, -3, -3, 3, long.MaxValue, long.MinValue, 0, 3 }, Run1("Div", [I64(a, 8), I64(b, 8)]).AsSpan<long>().ToArray());
        for (int i = 0; i < 5; i++) Assert.Equal(ElementwiseReference.DivInt(a[i], b[i]), Run1("Div", [I64(a, 8), I64(b, 8)]).AsSpan<long>()[i]);
    }

    [Fact]
    public void Int32_ShapeArithmetic_Broadcasts()
    {
        var y = Run1("Mul", [I32([1, 2, 3, 4, 5, 6], 2, 3), I32([10], 1)]);
        Assert.Equal([2L, 3], y.Dims);
        Assert.Equal(new[] { 10, 20, 30, 40, 50, 60 }, y.AsSpan<int>().ToArray());
        var d = Run1("Div", [I32([-9, 9, -1], 3), I32([4], [])]);
        Assert.Equal(new[] { -2, 2, 0 }, d.AsSpan<int>().ToArray());
    }

    [Fact]
    public void IntegerDivisionByZero_IsAnError_NamingTheNode()
    {
        var e = Assert.Throws<InvalidOperationException>(() => Run1("Div", [I64([1, 2], 2), I64([1, 0], 2)]));
        Assert.Contains("division by zero", e.Message);
    }

    [Fact]
    public void SmallIntegerAndFloat16_Arithmetic()
    {
        var u8 = Run1("Add", [Tensor.FromArray<byte>([250, 3], [2]), Tensor.FromArray<byte>([10, 4], [2])]);
        Assert.Equal(new byte[] { 4, 7 }, u8.AsSpan<byte>().ToArray());
        var h = Run1("Mul", [Tensor.FromArray<Half>([(Half)1.5f, (Half)(-2f)], [2]), Tensor.FromArray<Half>([(Half)2f], [1])]);
        Assert.Equal(new[] { (Half)3f, (Half)(-4f) }, h.AsSpan<Half>().ToArray());
        var d = Run1("Sub", [Tensor.FromArray<double>([1.5, 2], [2]), Tensor.FromArray<double>([0.25], [])]);
        Assert.Equal(new[] { 1.25, 1.75 }, d.AsSpan<double>().ToArray());
    }

    [Fact]
    public void Mod_FollowsTheDivisorSign_OrTheDividendWithFmod()
    {
        long[] a = [5, -5, 5, -5, 0];
        long[] b = [3, 3, -3, -3, 7];
        var py = Run1("Mod", [I64(a, 5), I64(b, 5)], 13).AsSpan<long>().ToArray();
        Assert.Equal(a.Zip(b, ElementwiseReference.Mod), py);
        Assert.Equal(new long[] { 2, 1, -1, -2, 0 }, py);
        var c = Run1("Mod", [I64(a, 5), I64(b, 5)], 13, Attr.Of("fmod", 1L)).AsSpan<long>().ToArray();
        Assert.Equal(new long[] { 2, -2, 2, -2, 0 }, c);
        var f = Run1("Mod", [F([5.5f, -5.5f, 1e9f], 3), F([2f], 1)], 13, Attr.Of("fmod", 1L)).ToFloatArray();
        Assert.Equal(new[] { 5.5f % 2f, -5.5f % 2f, 1e9f % 2f }, f);
        Assert.Equal(ElementwiseReference.Fmod(-5.5f, 2f), f[1]);
    }

    [Fact]
    public void Mod_OnFloatsWithoutFmod_IsUnsupported()
    {
        Assert.Throws<UnsupportedOperatorException>(() => Run1("Mod", [F([1f], 1), F([2f], 1)], 13));
    }

    [Fact]
    public void Pow_MixedTypes()
    {
        var f = Run1("Pow", [F([2f, -3f, 4f], 3), I64([3, 2, -1], 3)], 15);
        Assert.Equal(DType.Float32, f.DType);
        Assert.Equal(new[] { 8f, 9f, 0.25f }, f.ToFloatArray());
        var i = Run1("Pow", [I32([2, 3, -2, 5], 4), F([2f, 0.5f, 3f, -1f], 4)], 15);
        Assert.Equal(new[] { 4, 1, -8, 0 }, i.AsSpan<int>().ToArray());
        var l = Run1("Pow", [I64([3, -2, 1, -1, 10], 5), I64([4, 3, -5, -3, 18], 5)], 15);
        Assert.Equal(new[] { 81L, -8, 1, -1, 1_000_000_000_000_000_000 }, l.AsSpan<long>().ToArray());
        var sq = Run1("Pow", [F([3f, -2f, float.NaN, -0f], 2, 2), F([2f], 1, 1, 1)], 15);
        Assert.Equal([1L, 2, 2], sq.Dims);
        Assert.Equal(new[] { 9f, 4f, float.NaN, 0f }, sq.ToFloatArray());
        var d = Run1("Pow", [Tensor.FromArray<double>([2, 9], [2]), Tensor.FromArray<double>([0.5], [1])], 15);
        Assert.Equal(new[] { Math.Sqrt(2), 3 }, d.AsSpan<double>().ToArray());
    }

    [Fact]
    public void PRelu_SlopeBroadcastsPerChannel()
    {
        var x = NodeRunner.Random(2 * 3 * 4, 5, -2, 2);
        float[] slope = [0.1f, 0.2f, 0.3f];
        var y = Run1("PRelu", [F(x, 2, 3, 4), F(slope, 3, 1)], 16).ToFloatArray();
        var (expected, _) = ElementwiseReference.Broadcast(x, [2, 3, 4], slope, [3, 1], ElementwiseReference.PRelu);
        NodeRunner.Close(expected, y, 0, 0);
        var iy = Run1("PRelu", [I32([-4, 4], 2), I32([2], 1)], 16);
        Assert.Equal(new[] { -8, 4 }, iy.AsSpan<int>().ToArray());
    }

    // ---- variadic ----

    [Fact]
    public void Variadic_FoldWithBroadcasting()
    {
        float[] a = [1, 2, 3], b = [10, 20], c = [100];
        Tensor[] inputs = [F(a, 3), F(b, 2, 1), F(c, 1, 1)];
        var sum = Run1("Sum", inputs);
        Assert.Equal([2L, 3], sum.Dims);
        Assert.Equal(new float[] { 111, 112, 113, 121, 122, 123 }, sum.ToFloatArray());
        var mean = Run1("Mean", inputs).ToFloatArray();
        Assert.Equal(new[] { 111f / 3, 112f / 3, 113f / 3, 121f / 3, 122f / 3, 123f / 3 }, mean);
        var max = Run1("Max", [F([1, float.NaN, 5], 3), F([2], 1), F([0, 0, 7], 3)]).ToFloatArray();
        Assert.Equal(2f, max[0]);
        Assert.True(float.IsNaN(max[1]));
        Assert.Equal(7f, max[2]);
        var min = Run1("Min", [I64([5, -1, 3], 3), I64([2], 1)]);
        Assert.Equal(new long[] { 2, -1, 2 }, min.AsSpan<long>().ToArray());
        var single = Run1("Mean", [F([4, 5], 2)]);
        Assert.Equal(new float[] { 4, 5 }, single.ToFloatArray());
    }

    // ---- comparisons and logic ----

    [Fact]
    public void Comparisons_GiveBools_AndNaNComparesFalse()
    {
        Tensor a = F([1, 2, float.NaN, 4], 4), b = F([2], 1);
        Assert.Equal(new[] { false, true, false, false }, Bools(Run1("Equal", [a, b], 13)));
        Assert.Equal(new[] { true, false, false, false }, Bools(Run1("Less", [a, b], 13)));
        Assert.Equal(new[] { false, false, false, true }, Bools(Run1("Greater", [a, b], 13)));
        Assert.Equal(new[] { true, true, false, false }, Bools(Run1("LessOrEqual", [a, b], 13)));
        Assert.Equal(new[] { false, true, false, true }, Bools(Run1("GreaterOrEqual", [a, b], 13)));
        Assert.Equal(DType.Bool, Run1("Equal", [a, b], 13).DType);
        var nanEq = Run1("Equal", [F([float.NaN], 1), F([float.NaN], 1)], 13);
        Assert.False(Bools(nanEq)[0]);
        var ints = Run1("Less", [I64([1, 5, 9], 3, 1), I64([4, 6], 2)], 13);
        Assert.Equal([3L, 2], ints.Dims);
        Assert.Equal(new[] { true, true, false, true, false, false }, Bools(ints));
        var boolEq = Run1("Equal", [B([true, false], 2), B([true], 1)], 13);
        Assert.Equal(new[] { true, false }, Bools(boolEq));
    }

    [Fact]
    public void Logical_Broadcasts()
    {
        Tensor a = B([true, false, true, false], 2, 2), b = B([true, false], 2);
        Assert.Equal(new[] { true, false, true, false }, Bools(Run1("And", [a, b])));
        Assert.Equal(new[] { true, false, true, false }, Bools(Run1("Or", [a, B([false], 1)])));
        Assert.Equal(new[] { false, false, false, false }, Bools(Run1("Xor", [a, b])));
        Assert.Equal(new[] { false, true, false, true }, Bools(Run1("Not", [a])));
    }

    [Fact]
    public void Where_BroadcastsThreeWays_OnAnyType()
    {
        var cond = B([true, false], 2, 1);
        var y = Run1("Where", [cond, I64([1, 2, 3], 1, 3), I64([-1], [])]);
        Assert.Equal([2L, 3], y.Dims);
        Assert.Equal(new long[] { 1, 2, 3, -1, -1, -1 }, y.AsSpan<long>().ToArray());
        var h = Run1("Where", [B([false, true], 2), Tensor.FromArray<Half>([(Half)1, (Half)2], [2]), Tensor.FromArray<Half>([(Half)9], [1])]);
        Assert.Equal(new[] { (Half)9, (Half)2 }, h.AsSpan<Half>().ToArray());
        var b = Run1("Where", [B([true, false], 2), B([true, true], 2), B([false, false], 2)]);
        Assert.Equal(new[] { true, false }, Bools(b));
    }

    [Fact]
    public void IsNaN_IsInf_WithDetectAttributes()
    {
        var x = F([1, float.NaN, float.PositiveInfinity, float.NegativeInfinity], 4);
        Assert.Equal(new[] { false, true, false, false }, Bools(Run1("IsNaN", [x], 13)));
        Assert.Equal(new[] { false, false, true, true }, Bools(Run1("IsInf", [x], 13)));
        Assert.Equal(new[] { false, false, true, false }, Bools(Run1("IsInf", [x], 13, Attr.Of("detect_negative", 0L))));
        Assert.Equal(new[] { false, false, false, true }, Bools(Run1("IsInf", [x], 13, Attr.Of("detect_positive", 0L))));
        var d = Run1("IsNaN", [Tensor.FromArray<double>([double.NaN, 0], [2])], 13);
        Assert.Equal(new[] { true, false }, Bools(d));
    }

    // ---- cast ----

    private static Tensor Cast(Tensor x, DType to) => Run1("Cast", [x], 13, Attr.Of("to", (long)to));

    [Fact]
    public void Cast_FloatToInt_TruncatesTowardZeroAndSaturates()
    {
        var x = F([2.9f, -2.9f, 3e10f, -3e10f, float.NaN, 0.5f, 300.7f, -1.5f], 8);
        Assert.Equal(new[] { 2, -2, int.MaxValue, int.MinValue, 0, 0, 300, -1 }, Cast(x, DType.Int32).AsSpan<int>().ToArray());
        Assert.Equal(new long[] { 2, -2, 30_000_001_024, -30_000_001_024, 0, 0, 300, -1 }, Cast(x, DType.Int64).AsSpan<long>().ToArray());
        Assert.Equal(new byte[] { 2, 0, 255, 0, 0, 0, 255, 0 }, Cast(x, DType.UInt8).AsSpan<byte>().ToArray());
        Assert.Equal(new sbyte[] { 2, -2, 127, -128, 0, 0, 127, -1 }, Cast(x, DType.Int8).AsSpan<sbyte>().ToArray());
    }

    [Fact]
    public void Cast_IntegerNarrowingWraps_AndBoolIsNonzero()
    {
        var x = I64([300, -1, 65536 + 7, 0], 4);
        Assert.Equal(new byte[] { 44, 255, 7, 0 }, Cast(x, DType.UInt8).AsSpan<byte>().ToArray());
        Assert.Equal(new short[] { 300, -1, 7, 0 }, Cast(x, DType.Int16).AsSpan<short>().ToArray());
        Assert.Equal(new[] { true, true, true, false }, Bools(Cast(x, DType.Bool)));
        Assert.Equal(new[] { true, false, true }, Bools(Cast(F([float.NaN, -0f, 1e-40f], 3), DType.Bool)));
        Assert.Equal(new[] { 1f, 0f }, Cast(B([true, false], 2), DType.Float32).ToFloatArray());
        Assert.Equal(new long[] { 1, 0 }, Cast(B([true, false], 2), DType.Int64).AsSpan<long>().ToArray());
        Assert.Equal(new[] { 16777216f, -1f }, Cast(I64([16777217, -1], 2), DType.Float32).ToFloatArray());
    }

    [Fact]
    public void Cast_FloatingFormats_RoundToNearestEven()
    {
        var x = F([1f / 3, 65520f, 1e-8f, -2.5f, float.NaN, float.NegativeInfinity], 6);
        var h = Cast(x, DType.Float16).AsSpan<Half>().ToArray();
        Assert.Equal((Half)(1f / 3), h[0]);
        Assert.True(Half.IsPositiveInfinity(h[1]));
        Assert.Equal((Half)1e-8f, h[2]);
        Assert.True(Half.IsNaN(h[4]));
        var back = Cast(Tensor.FromArray<Half>(h, [6]), DType.Float32).ToFloatArray();
        Assert.Equal((float)(Half)(1f / 3), back[0]);
        Assert.Equal(-2.5f, back[3]);

        // bfloat16: round to nearest even, not truncation (ONNX Runtime's behaviour).
        float[] f = [0.48033667f, 0.49968487f, 1f + 1f / 256, 1f + 3f / 256, -0f, float.PositiveInfinity];
        var bf = Cast(F(f, 6), DType.BFloat16);
        Assert.Equal(DType.BFloat16, bf.DType);
        var bits = bf.AsSpan<ushort>().ToArray();
        Assert.Equal(new ushort[] { 0x3EF6, 0x3F00, 0x3F80, 0x3F82, 0x8000, 0x7F80 }, bits);
        var widened = Cast(bf, DType.Float32).ToFloatArray();
        Assert.Equal(bits.Select(BFloat16.ToSingle), widened);
        var d = Cast(Tensor.FromArray<double>([0.1, 1e300], [2]), DType.Float32).ToFloatArray();
        Assert.Equal(new[] { 0.1f, float.PositiveInfinity }, d);
    }

    [Fact]
    public void Cast_EveryPairOfTypes_RoundTripsSmallIntegers()
    {
        DType[] types = [DType.Float32, DType.Float64, DType.Float16, DType.BFloat16, DType.Int8, DType.UInt8, DType.Int16, DType.UInt16, DType.Int32, DType.UInt32, DType.Int64, DType.UInt64];
        var x = F([0, 1, 7, 100], 4);
        foreach (var from in types)
        {
            var src = Cast(x, from);
            Assert.Equal(from, src.DType);
            foreach (var to in types.Append(DType.Bool))
            {
                var y = Cast(src, to);
                Assert.Equal(to, y.DType);
                var expected = to == DType.Bool ? new double[] { 0, 1, 1, 1 } : [0, 1, 7, 100];
                Assert.Equal(expected, Enumerable.Range(0, 4).Select(i => y.GetDouble(i)));
            }
        }
    }

    [Fact]
    public void CastLike_TakesTheTypeOfItsSecondInput()
    {
        var y = Run1("CastLike", [F([1.7f, -1.7f], 2), I64([0], 1)], 15);
        Assert.Equal(DType.Int64, y.DType);
        Assert.Equal(new long[] { 1, -1 }, y.AsSpan<long>().ToArray());
    }

    [Fact]
    public void Cast_ToString_IsUnsupported()
    {
        Assert.Throws<UnsupportedOperatorException>(() => Cast(F([1f], 1), DType.String));
    }

    // ---- unary: attribute defaults, opsets, dtypes ----

    [Fact]
    public void ActivationAttributes_HaveOnnxDefaults()
    {
        var x = NodeRunner.Random(40, 9, -4, 4);
        var t = F(x, 40);
        NodeRunner.Close(ElementwiseReference.Map(x, v => ElementwiseReference.LeakyRelu(v, 0.01f)), Run1("LeakyRelu", [t]).ToFloatArray(), 0, 0);
        NodeRunner.Close(ElementwiseReference.Map(x, v => ElementwiseReference.HardSigmoid(v, 0.2f, 0.5f)), Run1("HardSigmoid", [t]).ToFloatArray(), 0, 0);
        NodeRunner.Close(ElementwiseReference.Map(x, v => ElementwiseReference.Elu(v, 1f)), Run1("Elu", [t]).ToFloatArray(), 4e-7f, 1e-38f);
        NodeRunner.Close(ElementwiseReference.Map(x, v => ElementwiseReference.Selu(v)), Run1("Selu", [t]).ToFloatArray(), 4e-7f, 1e-38f);
        NodeRunner.Close(ElementwiseReference.Map(x, v => ElementwiseReference.Celu(v, 1f)), Run1("Celu", [t]).ToFloatArray(), 4e-7f, 1e-38f);
        NodeRunner.Close(ElementwiseReference.Map(x, v => ElementwiseReference.LeakyRelu(v, 0.5f)), Run1("LeakyRelu", [t], 17, Attr.Of("alpha", 0.5f)).ToFloatArray(), 0, 0);
        NodeRunner.Close(ElementwiseReference.Map(x, v => ElementwiseReference.HardSigmoid(v, 0.1f, 0.6f)),
            Run1("HardSigmoid", [t], 17, Attr.Of("alpha", 0.1f), Attr.Of("beta", 0.6f)).ToFloatArray(), 0, 0);
        NodeRunner.Close(ElementwiseReference.Map(x, v => ElementwiseReference.Selu(v, 2f, 3f)),
            Run1("Selu", [t], 17, Attr.Of("alpha", 2f), Attr.Of("gamma", 3f)).ToFloatArray(), 4e-7f, 1e-38f);
    }

    [Fact]
    public void Gelu_Opset20_BothApproximations_AndNotBefore()
    {
        var x = NodeRunner.Random(33, 4, -6, 6);
        var t = F(x, 33);
        NodeRunner.Close(ElementwiseReference.Map(x, ElementwiseReference.Gelu), Run1("Gelu", [t], 20).ToFloatArray(), 4e-7f, 1.5e-6f);
        NodeRunner.Close(ElementwiseReference.Map(x, ElementwiseReference.GeluTanh), Run1("Gelu", [t], 20, Attr.Of("approximate", "tanh")).ToFloatArray(), 4e-7f, 5e-7f);
        Assert.Throws<UnsupportedOperatorException>(() => Run1("Gelu", [t], 17));
        Assert.Throws<UnsupportedOperatorException>(() => Run1("Gelu", [t], 20, Attr.Of("approximate", "fast")));
        Assert.Throws<UnsupportedOperatorException>(() => Run1("HardSwish", [t], 13));
    }

    [Fact]
    public void BonusActivations_DefaultsAndOpsets()
    {
        var x = NodeRunner.Random(40, 19, -3, 3);
        var t = F(x, 40);
        NodeRunner.Close(ElementwiseReference.Map(x, v => ElementwiseReference.ThresholdedRelu(v, 1f)), Run1("ThresholdedRelu", [t]).ToFloatArray(), 0, 0);
        NodeRunner.Close(ElementwiseReference.Map(x, v => ElementwiseReference.Shrink(v, 0.5f, 0f)), Run1("Shrink", [t]).ToFloatArray(), 0, 0);
        NodeRunner.Close(ElementwiseReference.Map(x, v => ElementwiseReference.Shrink(v, 1.5f, 0.5f)),
            Run1("Shrink", [t], 17, Attr.Of("lambd", 1.5f), Attr.Of("bias", 0.5f)).ToFloatArray(), 0, 0);
        NodeRunner.Close(ElementwiseReference.Map(x, ElementwiseReference.Mish), Run1("Mish", [t], 18).ToFloatArray(), 6e-7f, 0);
        Assert.Throws<UnsupportedOperatorException>(() => Run1("Mish", [t], 17));
    }

    [Fact]
    public void BitShift_BothDirections_WithBroadcasting()
    {
        var x = Tensor.FromArray<ulong>([1, 16, ulong.MaxValue], [3]);
        var l = Run1("BitShift", [x, Tensor.FromArray<ulong>([3], [1])], 11, Attr.Of("direction", "LEFT"));
        Assert.Equal(new ulong[] { 8, 128, ulong.MaxValue << 3 }, l.AsSpan<ulong>().ToArray());
        var r = Run1("BitShift", [x, Tensor.FromArray<ulong>([1, 2, 64], [3])], 11, Attr.Of("direction", "RIGHT"));
        Assert.Equal(new ulong[] { ElementwiseReference.BitShift(1, 1, false), ElementwiseReference.BitShift(16, 2, false), 0 }, r.AsSpan<ulong>().ToArray());
        var b = Run1("BitShift", [Tensor.FromArray<byte>([0x81], [1]), Tensor.FromArray<byte>([1], [1])], 11, Attr.Of("direction", "LEFT"));
        Assert.Equal(new byte[] { 0x02 }, b.AsSpan<byte>().ToArray());
        Assert.Throws<UnsupportedOperatorException>(() => Run1("BitShift", [x, x], 11, Attr.Of("direction", "UP")));
    }

    [Fact]
    public void Clip_AttributesBeforeOpset11_InputsAfter()
    {
        var t = F([-5, -1, 0, 1, 5, float.NaN], 6);
        Assert.Equal(new float[] { -5, -1, 0, 1, 5 }, Run1("Clip", [t], 6).ToFloatArray()[..5]);
        Assert.Equal(new float[] { -2, -1, 0, 1, 2 }, Run1("Clip", [t], 6, Attr.Of("min", -2f), Attr.Of("max", 2f)).ToFloatArray()[..5]);
        Assert.Equal(new float[] { -2, -1, 0, 1, 5 }, Run1("Clip", [t, F([-2f], [])], 13).ToFloatArray()[..5]);
        Assert.Equal(new float[] { -5, -1, 0, 0.5f, 0.5f }, Run1("Clip", [t, null, F([0.5f], [])], 13).ToFloatArray()[..5]);
        Assert.True(float.IsNaN(Run1("Clip", [t, F([-2f], []), F([2f], [])], 13).ToFloatArray()[5]));
        Assert.Equal(new float[] { 1, 1, 1, 1, 1 }, Run1("Clip", [t, F([3f], []), F([1f], [])], 13).ToFloatArray()[..5]);
        var i = Run1("Clip", [I64([-9, 0, 9, long.MaxValue], 4), I64([-3], []), I64([3], [])], 13);
        Assert.Equal(new long[] { -3, 0, 3, 3 }, i.AsSpan<long>().ToArray());
        var u = Run1("Clip", [Tensor.FromArray<byte>([0, 100, 255], [3]), Tensor.FromArray<byte>([10], [])], 13);
        Assert.Equal(new byte[] { 10, 100, 255 }, u.AsSpan<byte>().ToArray());
    }

    [Fact]
    public void IntegerUnary_AbsNegSignRelu()
    {
        var x = I32([-3, 0, 4, int.MinValue], 4);
        Assert.Equal(new[] { 3, 0, 4, int.MinValue }, Run1("Abs", [x], 13).AsSpan<int>().ToArray());
        Assert.Equal(new[] { 3, 0, -4, int.MinValue }, Run1("Neg", [x], 13).AsSpan<int>().ToArray());
        Assert.Equal(new[] { -1, 0, 1, -1 }, Run1("Sign", [x], 13).AsSpan<int>().ToArray());
        Assert.Equal(new[] { 0, 0, 4, 0 }, Run1("Relu", [x], 14).AsSpan<int>().ToArray());
        Assert.Equal(new long[] { 5, 0 }, Run1("Abs", [I64([-5, 0], 2)], 13).AsSpan<long>().ToArray());
        Assert.Equal(new[] { 2.5, 0 }, Run1("Neg", [Tensor.FromArray<double>([-2.5, -0.0], [2])], 13).AsSpan<double>().ToArray());
    }

    [Fact]
    public void Float16AndBFloat16_ComputeInFloat32()
    {
        var x = NodeRunner.Random(300, 3, -5, 5);
        var h = Run1("Sigmoid", [Tensor.FromArray<Half>(x.Select(v => (Half)v).ToArray(), [300])], 13);
        Assert.Equal(DType.Float16, h.DType);
        var hv = h.AsSpan<Half>().ToArray();
        for (int i = 0; i < x.Length; i++) Assert.Equal((Half)ElementwiseReference.Sigmoid((float)(Half)x[i]), hv[i]);
        var bits = x.Select(BFloat16.FromSingle).ToArray();
        var bt = Tensor.FromBytes(DType.BFloat16, [300], System.Runtime.InteropServices.MemoryMarshal.AsBytes(bits.AsSpan()).ToArray());
        var r = Run1("Relu", [bt], 14);
        Assert.Equal(DType.BFloat16, r.DType);
        Assert.Equal(bits.Select(b => BFloat16.FromSingle(ElementwiseReference.Relu(BFloat16.ToSingle(b)))), r.AsSpan<ushort>().ToArray());
    }

    [Fact]
    public void UnaryNodes_MatchTheirTwins()
    {
        var x = NodeRunner.Random(70, 21, -3, 3);
        var t = F(x, 7, 10);
        (string Op, Func<float, float> Twin, float Rtol, float Atol)[] ops =
        [
            ("Sigmoid", ElementwiseReference.Sigmoid, 4e-7f, 0), ("Tanh", ElementwiseReference.Tanh, 4e-7f, 0), ("Exp", ElementwiseReference.Exp, 4e-7f, 0),
            ("Log", ElementwiseReference.Log, 4e-7f, 0), ("Erf", ElementwiseReference.Erf, 4e-7f, 5e-7f), ("Sin", ElementwiseReference.Sin, 4e-7f, 1.2e-7f),
            ("Cos", ElementwiseReference.Cos, 4e-7f, 1.2e-7f), ("Sqrt", ElementwiseReference.Sqrt, 0, 0), ("Reciprocal", ElementwiseReference.Reciprocal, 0, 0),
            ("Abs", ElementwiseReference.Abs, 0, 0), ("Neg", ElementwiseReference.Neg, 0, 0), ("Floor", ElementwiseReference.Floor, 0, 0),
            ("Ceil", ElementwiseReference.Ceil, 0, 0), ("Round", ElementwiseReference.Round, 0, 0), ("Sign", ElementwiseReference.Sign, 0, 0),
            ("Softplus", ElementwiseReference.Softplus, 4e-7f, 0), ("Softsign", ElementwiseReference.Softsign, 2.4e-7f, 0),
            ("HardSwish", ElementwiseReference.HardSwish, 0, 0), ("Relu", ElementwiseReference.Relu, 0, 0),
            ("Tan", ElementwiseReference.Tan, 6e-7f, 0), ("Atan", ElementwiseReference.Atan, 4e-7f, 0), ("Sinh", ElementwiseReference.Sinh, 6e-7f, 0),
            ("Cosh", ElementwiseReference.Cosh, 6e-7f, 0), ("Asinh", ElementwiseReference.Asinh, 6e-7f, 0),
        ];
        foreach (var (op, twin, rtol, atol) in ops)
        {
            var y = Run1(op, [t], 17);
            Assert.Equal(t.Dims, y.Dims);
            NodeRunner.Close(ElementwiseReference.Map(x, twin), y.ToFloatArray(), rtol, atol);
        }
    }
}
