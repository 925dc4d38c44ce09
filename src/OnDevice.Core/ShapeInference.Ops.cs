namespace OnDevice.Core;

public static partial class ShapeInference
{
    private delegate ValueFacts?[] Rule(Context c, Node n);

    private static readonly string[] Unary =
    [
        "Relu", "Sigmoid", "Tanh", "Abs", "Neg", "Exp", "Log", "Sqrt", "Reciprocal", "Erf", "HardSigmoid", "HardSwish",
        "LeakyRelu", "Elu", "Selu", "Celu", "Softplus", "Softsign", "Mish", "Gelu", "ThresholdedRelu", "Shrink",
        "Softmax", "LogSoftmax", "Hardmax", "Clip", "Floor", "Ceil", "Round", "Sign", "Sin", "Cos", "Tan", "Asin",
        "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh", "CumSum", "LRN", "InstanceNormalization",
        "MeanVarianceNormalization", "Trilu", "BitwiseNot", "Swish", "QuickGelu", "FastGelu",
    ];

    private static readonly string[] Comparisons = ["Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor"];

    private static readonly string[] Arithmetic = ["Add", "Sub", "Mul", "Div", "Pow", "Mod", "PRelu", "BitShift", "BitwiseAnd", "BitwiseOr", "BitwiseXor"];

    private static readonly string[] Variadic = ["Max", "Min", "Sum", "Mean"];

    private static readonly string[] Reductions = ["ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"];

    private static readonly Dictionary<string, Rule> Rules = BuildRules();

    // Contrib and runtime-internal operators that keep the shape rule of the op they extend.
    private static readonly Dictionary<(string, string), Rule> DomainRules = new()
    {
        [("com.ondevice", "FusedElementwise")] = (c, n) => [Like(c.In(n, 0))],
        [("com.ondevice", "FusedConv")] = (c, n) => Conv(c, n),
        [("com.microsoft", "FusedConv")] = (c, n) => Conv(c, n),
        [("com.ondevice", "BlockQuantConv")] = BlockQuantConv,
        [("com.microsoft", "FusedGemm")] = (c, n) => Gemm(c, n),
        [("com.microsoft", "FusedMatMul")] = (c, n) => MatMul(c, n),
        [("com.microsoft", "Gelu")] = (c, n) => [Like(c.In(n, 0))],
        [("com.microsoft", "FastGelu")] = (c, n) => [Like(c.In(n, 0))],
        [("com.microsoft", "MatMulNBits")] = (c, n) => [Facts(c.In(n, 0)?.DType, c.In(n, 0)?.Shape is { Rank: > 0 } s ? new Shape([.. s.Dims.Take(s.Rank - 1), Dim.Of(n.GetInt("N", -1))]) : null)],
        [("com.microsoft", "QLinearConv")] = (c, n) => [Conv(c, n, weightInput: 3)[0] is { } f ? Facts(c.In(n, 7)?.DType, f.Shape) : null],
        [("com.ondevice", "QLinearConv")] = (c, n) => [Conv(c, n, weightInput: 3)[0] is { } f ? Facts(n.GetInt("dequantize", 0) != 0 ? DType.Float32 : c.In(n, 7)?.DType, f.Shape) : null],
        [("com.ondevice", "QLinearLookup")] = (c, n) => [Facts(c.In(n, 1)?.DType, c.In(n, 0)?.Shape)],
        [("com.ondevice", "QLinearConvTranspose")] = (c, n) => [ConvTranspose(c, Shadow(n, "ConvTranspose", 0, 3))[0] is { } f ? Facts(c.In(n, 7)?.DType, f.Shape) : null],
        [("com.ondevice", "QLinearTableLookup")] = (c, n) => [Facts(c.In(n, 1)?.DType, c.In(n, 0)?.Shape)],
        [("com.ondevice", "QLinearTableAdd")] = (c, n) => [Facts(c.In(n, 5)?.DType, c.In(n, 0)?.Shape)],
        [("com.ondevice", "DequantizeGlobalAveragePool")] = (c, n) => [Facts(DType.Float32, c.In(n, 0)?.Shape is { Rank: >= 2 } s ? new Shape(s.Dims.Select((d, i) => i < 2 ? d : Dim.Of(1))) : null)],
        [("com.ondevice", "QLinearMatMul")] = (c, n) => [MatMulShape(c.In(n, 0)?.Shape, c.In(n, 3)?.Shape) is { } s ? Facts(n.GetInt("dequantize", 0) != 0 ? DType.Float32 : c.In(n, 7)?.DType, s) : null],
        [("com.microsoft", "QLinearSigmoid")] = (c, n) => [Like(c.In(n, 0))],
        [("com.microsoft", "QLinearLeakyRelu")] = (c, n) => [Like(c.In(n, 0))],
        [("com.microsoft", "QLinearAdd")] = (c, n) => [Facts(c.In(n, 0)?.DType, BroadcastAll([c.In(n, 0)?.Shape, c.In(n, 3)?.Shape]))],
        [("com.microsoft", "QLinearMul")] = (c, n) => [Facts(c.In(n, 0)?.DType, BroadcastAll([c.In(n, 0)?.Shape, c.In(n, 3)?.Shape]))],
    };

    /// <summary>Operator types whose shapes this inference computes.</summary>
    public static IReadOnlyCollection<string> KnownOps => Rules.Keys;

    private static Dictionary<string, Rule> BuildRules()
    {
        var r = new Dictionary<string, Rule>(StringComparer.Ordinal);
        foreach (var op in Unary) r[op] = (c, n) => [Like(c.In(n, 0))];
        foreach (var op in Comparisons) r[op] = (c, n) => [BinaryEval(c, n, DType.Bool)];
        foreach (var op in Arithmetic) r[op] = (c, n) => [BinaryEval(c, n, null)];
        foreach (var op in Variadic) r[op] = (c, n) => [Facts(c.In(n, 0)?.DType, BroadcastAll(n.Inputs.Select((_, i) => c.In(n, i)?.Shape)))];
        foreach (var op in Reductions) r[op] = Reduce;
        r["Identity"] = (c, n) => [c.In(n, 0)];
        r["Not"] = (c, n) => [Like(c.In(n, 0))];
        r["IsNaN"] = (c, n) => [Facts(DType.Bool, c.In(n, 0)?.Shape)];
        r["IsInf"] = r["IsNaN"];
        r["Cast"] = Cast;
        r["CastLike"] = (c, n) => [Facts(c.In(n, 1)?.DType, c.In(n, 0)?.Shape, c.In(n, 0)?.Ints)];
        r["Dropout"] = (c, n) => [c.In(n, 0), Facts(DType.Bool, c.In(n, 0)?.Shape)];
        r["BatchNormalization"] = (c, n) => [Like(c.In(n, 0)), c.In(n, 1), c.In(n, 2)];
        r["LayerNormalization"] = LayerNorm;
        r["Where"] = Where;
        r["Constant"] = (c, n) => [ConstantLifting.ConstantValue(n) is { } t ? Context.FromTensor(t) : null];
        r["Shape"] = ShapeOp;
        r["Size"] = (c, n) => [new ValueFacts { DType = DType.Int64, Shape = Shape.Scalar, Ints = c.In(n, 0)?.Shape?.ElementCount is { } e ? [Dim.Of(e)] : null }];
        r["ConstantOfShape"] = ConstantOfShape;
        r["Conv"] = Conv;
        r["ConvInteger"] = (c, n) => [Conv(c, n)[0] is { } f ? Facts(DType.Int32, f.Shape) : null];
        r["QLinearConv"] = (c, n) => [Conv(c, n, weightInput: 3)[0] is { } f ? Facts(c.In(n, 7)?.DType, f.Shape) : null];
        r["ConvTranspose"] = ConvTranspose;
        r["MaxPool"] = (c, n) => Pool(c, n, withIndices: true);
        r["AveragePool"] = (c, n) => Pool(c, n, withIndices: false);
        r["LpPool"] = r["AveragePool"];
        r["GlobalAveragePool"] = GlobalPool;
        r["GlobalMaxPool"] = GlobalPool;
        r["GlobalLpPool"] = GlobalPool;
        r["Gemm"] = Gemm;
        r["MatMul"] = MatMul;
        r["MatMulInteger"] = (c, n) => [MatMul(c, n)[0] is { } f ? Facts(DType.Int32, f.Shape) : null];
        r["QLinearMatMul"] = (c, n) => [MatMulShape(c.In(n, 0)?.Shape, c.In(n, 3)?.Shape) is { } s ? Facts(c.In(n, 7)?.DType, s) : null];
        r["Flatten"] = Flatten;
        r["Reshape"] = Reshape;
        r["Transpose"] = Transpose;
        r["Squeeze"] = Squeeze;
        r["Unsqueeze"] = Unsqueeze;
        r["Concat"] = Concat;
        r["Split"] = Split;
        r["Slice"] = Slice;
        r["Gather"] = Gather;
        r["GatherND"] = GatherND;
        r["GatherElements"] = (c, n) => [Facts(c.In(n, 0)?.DType, c.In(n, 1)?.Shape)];
        r["Pad"] = Pad;
        r["Resize"] = Resize;
        r["Upsample"] = Resize;
        r["ArgMax"] = ArgReduce;
        r["ArgMin"] = ArgReduce;
        r["Expand"] = Expand;
        r["Tile"] = Tile;
        r["Range"] = Range;
        r["TopK"] = TopK;
        r["Einsum"] = Einsum;
        r["If"] = If;
        r["LSTM"] = (c, n) => Recurrent(c, n, gates: 4, cellState: true);
        r["GRU"] = (c, n) => Recurrent(c, n, gates: 3, cellState: false);
        r["RNN"] = (c, n) => Recurrent(c, n, gates: 1, cellState: false);
        r["QuantizeLinear"] = (c, n) => [Facts(c.In(n, 2)?.DType is { } zp and not DType.Undefined ? zp : (DType)n.GetInt("output_dtype", (long)DType.UInt8), c.In(n, 0)?.Shape)];
        r["DequantizeLinear"] = (c, n) => [Facts(c.In(n, 1)?.DType ?? DType.Float32, c.In(n, 0)?.Shape)];
        r["DynamicQuantizeLinear"] = (c, n) => [Facts(DType.UInt8, c.In(n, 0)?.Shape), Facts(DType.Float32, Shape.Scalar), Facts(DType.UInt8, Shape.Scalar)];
        r["NonZero"] = (c, n) => [Facts(DType.Int64, c.In(n, 0)?.Shape is { } s ? new Shape([Dim.Of(s.Rank), Dim.Unknown]) : null)];
        r["DepthToSpace"] = (c, n) => [SpaceDepth(c, n, toDepth: false)];
        r["SpaceToDepth"] = (c, n) => [SpaceDepth(c, n, toDepth: true)];
        return r;
    }

    private sealed partial class Context
    {
        public ValueFacts?[] Apply(Node n)
        {
            if (n.IsDefaultDomain && Rules.TryGetValue(n.OpType, out var rule)) return rule(this, n);
            if (!n.IsDefaultDomain && DomainRules.TryGetValue((n.Domain, n.OpType), out rule)) return rule(this, n);
            return new ValueFacts?[n.Outputs.Count];
        }
    }

    private static ValueFacts? Like(ValueFacts? f) => f is null ? null : new ValueFacts { DType = f.DType, Shape = f.Shape };

    private static ValueFacts? Facts(DType? dtype, Shape? shape, Dim[]? ints = null) =>
        dtype is null && shape is null ? null : new ValueFacts { DType = dtype ?? DType.Undefined, Shape = shape, Ints = ints };

    private static long NormAxis(long axis, int rank)
    {
        long a = axis < 0 ? axis + rank : axis;
        if (a < 0 || a >= Math.Max(rank, 1)) throw new ArgumentException($"axis {axis} out of range for rank {rank}");
        return a;
    }

    /// <summary>Multidirectional (numpy) broadcast of two shapes.</summary>
    public static Shape? Broadcast(Shape? a, Shape? b)
    {
        if (a is null || b is null) return null;
        int rank = Math.Max(a.Rank, b.Rank);
        var dims = new Dim[rank];
        for (int i = 0; i < rank; i++)
        {
            var da = i < rank - a.Rank ? Dim.Of(1) : a[i - (rank - a.Rank)];
            var db = i < rank - b.Rank ? Dim.Of(1) : b[i - (rank - b.Rank)];
            if (da.IsKnown && da.Value == 1) dims[i] = db;
            else if (db.IsKnown && db.Value == 1) dims[i] = da;
            else if (da.IsKnown && db.IsKnown)
                dims[i] = da.Value == db.Value ? da : throw new ArgumentException($"cannot broadcast {a} with {b}");
            else if (da.IsKnown) dims[i] = da;
            else if (db.IsKnown) dims[i] = db;
            else dims[i] = da.Equals(db) ? da : Dim.Unknown;
        }
        return new Shape(dims);
    }

    private static Shape? BroadcastAll(IEnumerable<Shape?> shapes)
    {
        Shape? acc = Shape.Scalar;
        foreach (var s in shapes) acc = Broadcast(acc, s);
        return acc;
    }

    private static ValueFacts? BinaryEval(Context c, Node n, DType? outType)
    {
        var (a, b) = (c.In(n, 0), c.In(n, 1));
        var shape = Broadcast(a?.Shape, b?.Shape);
        var dtype = outType ?? a?.DType;
        Dim[]? ints = null;
        var (va, vb) = (c.IntsOf(n, 0), c.IntsOf(n, 1));
        if (va is not null && vb is not null && shape is { IsFullyKnown: true } && a!.Shape!.IsFullyKnown && b!.Shape!.IsFullyKnown
            && (dtype?.IsInteger() == true || dtype == DType.Bool))
        {
            Func<long, long, long>? op = n.OpType switch
            {
                "Add" => (x, y) => x + y,
                "Sub" => (x, y) => x - y,
                "Mul" => (x, y) => x * y,
                "Div" => (x, y) => y == 0 ? throw new DivideByZeroException() : x / y,
                "Mod" => (x, y) => y == 0 ? throw new DivideByZeroException() : x % y,
                "Equal" => (x, y) => x == y ? 1 : 0,
                "Less" => (x, y) => x < y ? 1 : 0,
                "Greater" => (x, y) => x > y ? 1 : 0,
                "LessOrEqual" => (x, y) => x <= y ? 1 : 0,
                "GreaterOrEqual" => (x, y) => x >= y ? 1 : 0,
                "And" => (x, y) => x != 0 && y != 0 ? 1 : 0,
                "Or" => (x, y) => x != 0 || y != 0 ? 1 : 0,
                _ => null,
            };
            if (op is not null)
                ints = EvalBroadcast(a.Shape.ToArray(), va, b.Shape.ToArray(), vb, shape.ToArray(), op).Select(Context.IntDim).ToArray();
        }
        else if (n.OpType is "Mul" or "Add" && a?.Ints is { Length: 1 } && b?.Ints is { Length: 1 } && a.Shape?.Rank <= 1 && b.Shape?.Rank <= 1)
        {
            // Symbolic times/plus known stays unknown; but x*1 and x+0 keep the symbol.
            var (x, y) = (a.Ints[0], b.Ints[0]);
            long neutral = n.OpType == "Mul" ? 1 : 0;
            if (Context.TryValue(y, out var yv) && yv == neutral) ints = [x];
            else if (Context.TryValue(x, out var xv) && xv == neutral) ints = [y];
        }
        return Facts(dtype, shape, ints);
    }

    private static long[] EvalBroadcast(long[] sa, long[] va, long[] sb, long[] vb, long[] so, Func<long, long, long> op)
    {
        long count = Tensor.CountElements(so);
        if (count > MaxTrackedElements) throw new ArgumentException("too large to evaluate");
        var r = new long[count];
        int rank = so.Length;
        var idx = new long[rank];
        for (long k = 0; k < count; k++)
        {
            long rem = k;
            for (int d = rank - 1; d >= 0; d--) { idx[d] = rem % so[d]; rem /= so[d]; }
            r[k] = op(va[Flat(sa, idx)], vb[Flat(sb, idx)]);
        }
        return r;

        static long Flat(long[] s, long[] idx)
        {
            long f = 0;
            int off = idx.Length - s.Length;
            for (int d = 0; d < s.Length; d++) f = f * s[d] + (s[d] == 1 ? 0 : idx[d + off]);
            return f;
        }
    }

    private static ValueFacts?[] Cast(Context c, Node n)
    {
        var x = c.In(n, 0);
        var to = (DType)n.GetInt("to", 0);
        var ints = to.IsInteger() || to == DType.Bool ? x?.Ints ?? (x?.Floats?.Select(v => Context.IntDim((long)v)).ToArray()) : null;
        var floats = to.IsFloatingPoint() ? x?.Floats ?? (c.IntsOf(n, 0)?.Select(v => (double)v).ToArray()) : null;
        return [new ValueFacts { DType = to, Shape = x?.Shape, Ints = ints, Floats = floats }];
    }

    private static ValueFacts?[] Where(Context c, Node n)
    {
        var shape = BroadcastAll([c.In(n, 0)?.Shape, c.In(n, 1)?.Shape, c.In(n, 2)?.Shape]);
        Dim[]? ints = null;
        var (cond, a, b) = (c.IntsOf(n, 0), c.In(n, 1), c.In(n, 2));
        if (cond is not null && a?.Ints is not null && b?.Ints is not null && shape is { IsFullyKnown: true }
            && cond.Length == a.Ints.Length && a.Ints.Length == b.Ints.Length && cond.Length == shape.ElementCount)
            ints = cond.Select((v, i) => v != 0 ? a.Ints[i] : b.Ints[i]).ToArray();
        return [Facts(c.In(n, 1)?.DType, shape, ints)];
    }

    private static ValueFacts?[] LayerNorm(Context c, Node n)
    {
        var x = c.In(n, 0);
        Shape? stat = null;
        if (x?.Shape is { } s)
        {
            long axis = NormAxis(n.GetInt("axis", -1), s.Rank);
            stat = new Shape(s.Dims.Select((d, i) => i < axis ? d : Dim.Of(1)));
        }
        return [Like(x), Facts(DType.Float32, stat), Facts(DType.Float32, stat)];
    }

    private static ValueFacts?[] ShapeOp(Context c, Node n)
    {
        var s = c.In(n, 0)?.Shape;
        if (s is null) return [Facts(DType.Int64, null)];
        long start = n.GetInt("start", 0), end = n.GetInt("end", s.Rank);
        start = Math.Clamp(start < 0 ? start + s.Rank : start, 0, s.Rank);
        end = Math.Clamp(end < 0 ? end + s.Rank : end, 0, s.Rank);
        var dims = s.Dims.Skip((int)start).Take((int)Math.Max(0, end - start)).ToArray();
        return [new ValueFacts { DType = DType.Int64, Shape = Shape.Of(dims.Length), Ints = dims }];
    }

    private static ValueFacts?[] ConstantOfShape(Context c, Node n)
    {
        var dtype = n.Attr("value") is { Kind: AttributeKind.Tensor } v ? v.AsTensor().DType : DType.Float32;
        var shapeIn = c.In(n, 0);
        Shape? shape = shapeIn?.Ints is { } dims ? new Shape(dims) : shapeIn?.Shape is { IsFullyKnown: true } ss && ss.Rank == 1 ? new Shape(Enumerable.Repeat(Dim.Unknown, (int)ss[0].Value)) : null;
        Dim[]? ints = null;
        if (shape?.ElementCount is { } count && count <= MaxTrackedElements && (dtype.IsInteger() || dtype == DType.Bool))
        {
            long fill = n.Attr("value") is { Kind: AttributeKind.Tensor } vt ? (long)vt.AsTensor().GetDouble(0) : 0;
            ints = Enumerable.Repeat(Context.IntDim(fill), (int)count).ToArray();
        }
        return [Facts(dtype, shape, ints)];
    }

    private static long[] SpatialAttr(Node n, string name, int spatial, long fallback) =>
        n.GetInts(name) is { Length: > 0 } v ? v : Enumerable.Repeat(fallback, spatial).ToArray();

    private static Dim[] SpatialOut(Node n, Shape x, long[] kernel, bool ceilMode)
    {
        int sp = x.Rank - 2;
        var strides = SpatialAttr(n, "strides", sp, 1);
        var dil = SpatialAttr(n, "dilations", sp, 1);
        var pads = n.GetInts("pads") ?? new long[2 * sp];
        var autoPad = n.GetString("auto_pad", "NOTSET");
        var r = new Dim[sp];
        for (int i = 0; i < sp; i++)
        {
            var d = x[i + 2];
            if (!d.IsKnown) { r[i] = Dim.Unknown; continue; }
            long input = d.Value, ek = dil[i] * (kernel[i] - 1) + 1;
            long o = autoPad switch
            {
                "SAME_UPPER" or "SAME_LOWER" => (input + strides[i] - 1) / strides[i],
                "VALID" => (input - ek) / strides[i] + 1,
                _ => ceilMode
                    ? (input + pads[i] + pads[i + sp] - ek + strides[i] - 1) / strides[i] + 1
                    : (input + pads[i] + pads[i + sp] - ek) / strides[i] + 1,
            };
            if (ceilMode && autoPad is "NOTSET" && (o - 1) * strides[i] >= input + pads[i]) o--;
            if (o < 0) throw new ArgumentException("negative output size");
            r[i] = Dim.Of(o);
        }
        return r;
    }

    private static ValueFacts?[] Conv(Context c, Node n) => Conv(c, n, weightInput: 1);

    private static ValueFacts?[] Conv(Context c, Node n, int weightInput)
    {
        var (x, w) = (c.In(n, 0), c.In(n, weightInput));
        if (x?.Shape is not { } xs || w?.Shape is not { } ws || ws.Rank < 3 || xs.Rank != ws.Rank) return [Facts(x?.DType, xs: null)];
        var kernel = n.GetInts("kernel_shape") ?? ws.Dims.Skip(2).Select(d => d.IsKnown ? d.Value : throw new ArgumentException("unknown kernel")).ToArray();
        return [Facts(x.DType, new Shape(new[] { xs[0], ws[0] }.Concat(SpatialOut(n, xs, kernel, false))))];
    }

    /// <summary>com.ondevice.BlockQuantConv: a Conv whose weight shape is the <c>weight_shape</c> attribute (the weight input is packed).</summary>
    private static ValueFacts?[] BlockQuantConv(Context c, Node n)
    {
        var x = c.In(n, 0);
        if (x?.Shape is not { } xs || n.GetInts("weight_shape") is not { Length: >= 3 } ws || xs.Rank != ws.Length) return [Facts(x?.DType, xs: null)];
        var kernel = n.GetInts("kernel_shape") ?? ws[2..];
        return [Facts(x.DType, new Shape(new[] { xs[0], Dim.Of(ws[0]) }.Concat(SpatialOut(n, xs, kernel, false))))];
    }

    private static ValueFacts? Facts(DType? dtype, Shape? xs) => Facts(dtype, xs, null);

    /// <summary>A stand-in node of type <paramref name="op"/> reading inputs <paramref name="inputs"/> of <paramref name="n"/>, with its attributes.</summary>
    private static Node Shadow(Node n, string op, params int[] inputs)
    {
        var s = new Node(op, inputs.Select(i => i < n.Inputs.Count ? n.Inputs[i] : "").ToList(), n.Outputs.ToList(), n.Name);
        foreach (var a in n.Attributes.Values) s.Attributes.Add(a.Name, a);
        return s;
    }

    private static ValueFacts?[] ConvTranspose(Context c, Node n)
    {
        var (x, w) = (c.In(n, 0), c.In(n, 1));
        if (x?.Shape is not { } xs || w?.Shape is not { } ws || ws.Rank < 3 || xs.Rank != ws.Rank) return [Facts(x?.DType, xs: null)];
        int sp = xs.Rank - 2;
        long group = n.GetInt("group", 1);
        var channels = ws[1].IsKnown ? Dim.Of(ws[1].Value * group) : Dim.Unknown;
        if (n.GetInts("output_shape") is { } os)
        {
            var fixedDims = os.Length == sp ? os : os.Skip(os.Length - sp).ToArray();
            return [Facts(x.DType, new Shape(new[] { xs[0], channels }.Concat(fixedDims.Select(Dim.Of))))];
        }
        var kernel = n.GetInts("kernel_shape") ?? ws.Dims.Skip(2).Select(d => d.Value).ToArray();
        var strides = SpatialAttr(n, "strides", sp, 1);
        var dil = SpatialAttr(n, "dilations", sp, 1);
        var outPad = SpatialAttr(n, "output_padding", sp, 0);
        var pads = n.GetInts("pads") ?? new long[2 * sp];
        var autoPad = n.GetString("auto_pad", "NOTSET");
        var dims = new Dim[sp];
        for (int i = 0; i < sp; i++)
        {
            if (!xs[i + 2].IsKnown) { dims[i] = Dim.Unknown; continue; }
            long input = xs[i + 2].Value;
            dims[i] = Dim.Of(autoPad is "SAME_UPPER" or "SAME_LOWER"
                ? input * strides[i]
                : strides[i] * (input - 1) + outPad[i] + (kernel[i] - 1) * dil[i] + 1 - pads[i] - pads[i + sp]);
        }
        return [Facts(x.DType, new Shape(new[] { xs[0], channels }.Concat(dims)))];
    }

    private static ValueFacts?[] Pool(Context c, Node n, bool withIndices)
    {
        var x = c.In(n, 0);
        if (x?.Shape is not { } xs || xs.Rank < 3) return [Facts(x?.DType, xs: null), Facts(DType.Int64, null)];
        var kernel = n.GetInts("kernel_shape") ?? throw new ArgumentException("pool without kernel_shape");
        var shape = new Shape(new[] { xs[0], xs[1] }.Concat(SpatialOut(n, xs, kernel, n.GetInt("ceil_mode", 0) != 0)));
        return withIndices ? [Facts(x.DType, shape), Facts(DType.Int64, shape)] : [Facts(x.DType, shape)];
    }

    private static ValueFacts?[] GlobalPool(Context c, Node n)
    {
        var x = c.In(n, 0);
        return [Facts(x?.DType, x?.Shape is { Rank: >= 2 } s ? new Shape(s.Dims.Select((d, i) => i < 2 ? d : Dim.Of(1))) : null)];
    }

    private static ValueFacts?[] Gemm(Context c, Node n)
    {
        var (a, b) = (c.In(n, 0), c.In(n, 1));
        if (a?.Shape is not { Rank: 2 } sa || b?.Shape is not { Rank: 2 } sb) return [Facts(a?.DType, xs: null)];
        var m = n.GetInt("transA", 0) != 0 ? sa[1] : sa[0];
        var nn = n.GetInt("transB", 0) != 0 ? sb[0] : sb[1];
        return [Facts(a.DType, new Shape([m, nn]))];
    }

    private static Shape? MatMulShape(Shape? a, Shape? b)
    {
        if (a is null || b is null || a.Rank == 0 || b.Rank == 0) return null;
        var pa = a.Rank == 1 ? new Shape([Dim.Of(1), a[0]]) : a;
        var pb = b.Rank == 1 ? new Shape([b[0], Dim.Of(1)]) : b;
        var batch = Broadcast(new Shape(pa.Dims.Take(pa.Rank - 2)), new Shape(pb.Dims.Take(pb.Rank - 2)))!;
        var dims = batch.Dims.ToList();
        if (a.Rank > 1) dims.Add(pa[pa.Rank - 2]);
        if (b.Rank > 1) dims.Add(pb[pb.Rank - 1]);
        return new Shape(dims);
    }

    private static ValueFacts?[] MatMul(Context c, Node n) => [Facts(c.In(n, 0)?.DType, MatMulShape(c.In(n, 0)?.Shape, c.In(n, 1)?.Shape))];

    private static Dim ProductDim(IEnumerable<Dim> dims)
    {
        long p = 1;
        foreach (var d in dims)
        {
            if (!d.IsKnown) return Dim.Unknown;
            p = checked(p * d.Value);
        }
        return Dim.Of(p);
    }

    private static ValueFacts?[] Flatten(Context c, Node n)
    {
        var x = c.In(n, 0);
        if (x?.Shape is not { } s) return [Facts(x?.DType, xs: null)];
        long axis = n.GetInt("axis", 1);
        if (axis < 0) axis += s.Rank;
        return [Facts(x.DType, new Shape([ProductDim(s.Dims.Take((int)axis)), ProductDim(s.Dims.Skip((int)axis))]))];
    }

    private static ValueFacts?[] Reshape(Context c, Node n)
    {
        var x = c.In(n, 0);
        var target = c.In(n, 1)?.Ints ?? (n.GetInts("shape")?.Select(Context.IntDim).ToArray());
        if (target is null) return [Facts(x?.DType, c.In(n, 1)?.Shape is { IsFullyKnown: true, Rank: 1 } ts ? new Shape(Enumerable.Repeat(Dim.Unknown, (int)ts[0].Value)) : null)];
        bool allowZero = n.GetInt("allowzero", 0) != 0;
        var dims = new Dim[target.Length];
        int inferAt = -1;
        for (int i = 0; i < target.Length; i++)
        {
            if (Context.TryValue(target[i], out var v))
            {
                if (v == -1) { inferAt = i; dims[i] = Dim.Unknown; }
                else if (v == 0 && !allowZero) dims[i] = x?.Shape is { } xs && i < xs.Rank ? xs[i] : Dim.Unknown;
                else dims[i] = Dim.Of(v);
            }
            else dims[i] = target[i];
        }
        if (inferAt >= 0 && x?.Shape?.ElementCount is { } total)
        {
            long known = 1;
            bool ok = true;
            for (int i = 0; i < dims.Length; i++)
                if (i != inferAt) { if (dims[i].IsKnown) known *= dims[i].Value; else ok = false; }
            if (ok && known > 0) dims[inferAt] = Dim.Of(total / known);
        }
        else if (inferAt >= 0 && x?.Shape is { } xs2)
        {
            // Symbolic: cancel target symbols against equal input symbols; the -1 is what is left of the input.
            var rest = xs2.Dims.ToList();
            long targetKnown = 1;
            bool ok = true;
            for (int i = 0; i < dims.Length && ok; i++)
            {
                if (i == inferAt) continue;
                if (dims[i].IsKnown) targetKnown *= dims[i].Value;
                else ok = dims[i].IsSymbolic && rest.Remove(dims[i]);
            }
            if (ok && rest.All(d => d.IsKnown) && targetKnown > 0) dims[inferAt] = Dim.Of(rest.Aggregate(1L, (p, d) => p * d.Value) / targetKnown);
            else if (ok && rest.Count == 1 && targetKnown == 1) dims[inferAt] = rest[0];
        }
        Dim[]? ints = x?.Ints is { } xi && dims.All(d => d.IsKnown) && ProductDim(dims) is { IsKnown: true } p && p.Value == xi.Length ? xi : null;
        return [Facts(x?.DType, new Shape(dims), ints)];
    }

    private static ValueFacts?[] Transpose(Context c, Node n)
    {
        var x = c.In(n, 0);
        if (x?.Shape is not { } s) return [Facts(x?.DType, xs: null)];
        var perm = n.GetInts("perm") ?? Enumerable.Range(0, s.Rank).Reverse().Select(i => (long)i).ToArray();
        return [Facts(x.DType, new Shape(perm.Select(p => s[(int)p])))];
    }

    private static long[]? AxesOf(Context c, Node n, int inputIndex) =>
        n.GetInts("axes") ?? (c.HasInput(n, inputIndex) ? c.IntsOf(n, inputIndex) : null);

    private static ValueFacts?[] Squeeze(Context c, Node n)
    {
        var x = c.In(n, 0);
        if (x?.Shape is not { } s) return [Facts(x?.DType, xs: null)];
        var axes = AxesOf(c, n, 1);
        if (axes is null && c.HasInput(n, 1)) return [Facts(x.DType, xs: null)];
        var drop = axes is null
            ? s.Dims.Select((d, i) => (d, i)).Where(t => t.d.IsKnown && t.d.Value == 1).Select(t => t.i).ToHashSet()
            : axes.Select(a => (int)NormAxis(a, s.Rank)).ToHashSet();
        if (axes is null && s.Dims.Any(d => !d.IsKnown)) return [Facts(x.DType, xs: null)];
        return [Facts(x.DType, new Shape(s.Dims.Where((_, i) => !drop.Contains(i))), x.Ints)];
    }

    private static ValueFacts?[] Unsqueeze(Context c, Node n)
    {
        var x = c.In(n, 0);
        var axes = AxesOf(c, n, 1);
        if (x?.Shape is not { } s || axes is null) return [Facts(x?.DType, xs: null)];
        int rank = s.Rank + axes.Length;
        var set = axes.Select(a => (int)NormAxis(a, rank)).ToHashSet();
        var dims = new Dim[rank];
        int k = 0;
        for (int i = 0; i < rank; i++) dims[i] = set.Contains(i) ? Dim.Of(1) : s[k++];
        return [Facts(x.DType, new Shape(dims), x.Ints)];
    }

    private static ValueFacts?[] Concat(Context c, Node n)
    {
        var ins = n.Inputs.Select((_, i) => c.In(n, i)).ToList();
        var first = ins.FirstOrDefault(f => f?.Shape is not null);
        if (first?.Shape is not { } fs || ins.Any(f => f?.Shape is null)) return [Facts(ins.FirstOrDefault()?.DType, xs: null)];
        long axis = NormAxis(n.GetInt("axis", 0), fs.Rank);
        var dims = fs.Dims.ToArray();
        dims[axis] = ProductDimSum(ins.Select(f => f!.Shape![(int)axis]));
        for (int d = 0; d < dims.Length; d++)
            if (d != axis && !dims[d].IsKnown)
                dims[d] = ins.Select(f => f!.Shape![d]).FirstOrDefault(x => x.IsKnown, dims[d]);
        Dim[]? ints = ins.All(f => f!.Ints is not null) && fs.Rank == 1 ? ins.SelectMany(f => f!.Ints!).ToArray() : null;
        double[]? floats = ins.All(f => f!.Floats is not null) && fs.Rank == 1 ? ins.SelectMany(f => f!.Floats!).ToArray() : null;
        return [new ValueFacts { DType = first.DType, Shape = new Shape(dims), Ints = ints, Floats = floats }];
    }

    private static Dim ProductDimSum(IEnumerable<Dim> dims)
    {
        long s = 0;
        foreach (var d in dims)
        {
            if (!d.IsKnown) return Dim.Unknown;
            s += d.Value;
        }
        return Dim.Of(s);
    }

    private static ValueFacts?[] Split(Context c, Node n)
    {
        var x = c.In(n, 0);
        int outs = n.Outputs.Count;
        var r = new ValueFacts?[outs];
        if (x?.Shape is not { } s) return r;
        long axis = NormAxis(n.GetInt("axis", 0), s.Rank);
        long[]? split = n.GetInts("split") ?? (c.HasInput(n, 1) ? c.IntsOf(n, 1) : null);
        if (split is null && s[(int)axis].IsKnown)
        {
            long total = s[(int)axis].Value;
            long chunk = (total + outs - 1) / outs;
            split = Enumerable.Range(0, outs).Select(i => Math.Max(0, Math.Min(chunk, total - i * chunk))).ToArray();
        }
        for (int i = 0; i < outs; i++)
        {
            var dims = s.Dims.ToArray();
            dims[axis] = split is not null && i < split.Length ? Dim.Of(split[i]) : Dim.Unknown;
            r[i] = Facts(x.DType, new Shape(dims));
        }
        return r;
    }

    private static ValueFacts?[] Slice(Context c, Node n)
    {
        var x = c.In(n, 0);
        if (x?.Shape is not { } s) return [Facts(x?.DType, xs: null)];
        long[]? starts, ends, axes, steps;
        if (n.Attr("starts") is not null)
        {
            starts = n.GetInts("starts");
            ends = n.GetInts("ends");
            axes = n.GetInts("axes");
            steps = null;
        }
        else
        {
            starts = c.IntsOf(n, 1);
            ends = c.IntsOf(n, 2);
            axes = c.HasInput(n, 3) ? c.IntsOf(n, 3) : null;
            steps = c.HasInput(n, 4) ? c.IntsOf(n, 4) : null;
            if ((c.HasInput(n, 3) && axes is null) || (c.HasInput(n, 4) && steps is null)) starts = null;
        }
        if (starts is null || ends is null)
        {
            // Axes not known: the rank is kept, sizes on sliced axes are unknown.
            if (axes is not null)
            {
                var partial = s.Dims.ToArray();
                foreach (var a in axes) partial[NormAxis(a, s.Rank)] = Dim.Unknown;
                return [Facts(x.DType, new Shape(partial))];
            }
            return [Facts(x.DType, new Shape(Enumerable.Repeat(Dim.Unknown, s.Rank)))];
        }
        axes ??= Enumerable.Range(0, starts.Length).Select(i => (long)i).ToArray();
        steps ??= Enumerable.Repeat(1L, starts.Length).ToArray();
        var dims = s.Dims.ToArray();
        var ranges = new (long Start, long Step, long Count)[s.Rank];
        for (int d = 0; d < s.Rank; d++) ranges[d] = (0, 1, dims[d].IsKnown ? dims[d].Value : -1);
        for (int i = 0; i < starts.Length; i++)
        {
            int a = (int)NormAxis(axes[i], s.Rank);
            if (!s[a].IsKnown) { dims[a] = Dim.Unknown; ranges[a] = (0, 1, -1); continue; }
            long size = s[a].Value, step = steps[i];
            if (step == 0) throw new ArgumentException("slice step 0");
            long st = starts[i], en = ends[i];
            if (st < 0) st += size;
            if (en < 0) en += size;
            long count;
            if (step > 0)
            {
                st = Math.Clamp(st, 0, size);
                en = Math.Clamp(en, 0, size);
                count = en > st ? (en - st + step - 1) / step : 0;
            }
            else
            {
                st = Math.Clamp(st, -1, size - 1);
                en = Math.Clamp(en, -1, size - 1);
                count = st > en ? (st - en + (-step) - 1) / (-step) : 0;
            }
            dims[a] = Dim.Of(count);
            ranges[a] = (st, step, count);
        }
        Dim[]? ints = null;
        if (x.Ints is not null && s.Rank == 1 && ranges[0].Count >= 0)
            ints = Enumerable.Range(0, (int)ranges[0].Count).Select(k => x.Ints[ranges[0].Start + k * ranges[0].Step]).ToArray();
        return [Facts(x.DType, new Shape(dims), ints)];
    }

    private static ValueFacts?[] Gather(Context c, Node n)
    {
        var (x, idx) = (c.In(n, 0), c.In(n, 1));
        if (x?.Shape is not { } s || idx?.Shape is not { } si) return [Facts(x?.DType, xs: null)];
        long axis = NormAxis(n.GetInt("axis", 0), s.Rank);
        var dims = s.Dims.Take((int)axis).Concat(si.Dims).Concat(s.Dims.Skip((int)axis + 1)).ToArray();
        Dim[]? ints = null;
        if (x.Ints is not null && s.Rank == 1 && c.IntsOf(n, 1) is { } iv)
            ints = iv.Select(i => x.Ints[i < 0 ? i + x.Ints.Length : i]).ToArray();
        return [Facts(x.DType, new Shape(dims), ints)];
    }

    private static ValueFacts?[] GatherND(Context c, Node n)
    {
        var (x, idx) = (c.In(n, 0), c.In(n, 1));
        if (x?.Shape is not { } s || idx?.Shape is not { Rank: > 0 } si || si.Dims[^1] is not { IsKnown: true } k) return [Facts(x?.DType, xs: null)];
        long b = n.GetInt("batch_dims", 0);
        if (b < 0 || b + k.Value > s.Rank) return [Facts(x.DType, xs: null)];
        return [Facts(x.DType, new Shape([.. si.Dims.Take(si.Rank - 1), .. s.Dims.Skip((int)(b + k.Value))]))];
    }

    private static ValueFacts?[] Pad(Context c, Node n)
    {
        var x = c.In(n, 0);
        if (x?.Shape is not { } s) return [Facts(x?.DType, xs: null)];
        var pads = n.GetInts("pads") ?? n.GetInts("paddings") ?? c.IntsOf(n, 1);
        if (pads is null) return [Facts(x.DType, new Shape(Enumerable.Repeat(Dim.Unknown, s.Rank)))];
        var axes = c.HasInput(n, 3) ? c.IntsOf(n, 3) : Enumerable.Range(0, s.Rank).Select(i => (long)i).ToArray();
        if (axes is null) return [Facts(x.DType, new Shape(Enumerable.Repeat(Dim.Unknown, s.Rank)))];
        var dims = s.Dims.ToArray();
        for (int i = 0; i < axes.Length; i++)
        {
            int a = (int)NormAxis(axes[i], s.Rank);
            dims[a] = dims[a].IsKnown ? Dim.Of(dims[a].Value + pads[i] + pads[i + axes.Length]) : Dim.Unknown;
        }
        return [Facts(x.DType, new Shape(dims))];
    }

    private static ValueFacts?[] Resize(Context c, Node n)
    {
        var x = c.In(n, 0);
        if (x?.Shape is not { } s) return [Facts(x?.DType, xs: null)];
        double[]? scales = n.GetFloatsOrNull("scales");
        long[]? sizes = null;
        if (scales is null)
        {
            if (n.OpType == "Upsample" || c.Opset < 11) scales = c.In(n, 1)?.Floats;
            else
            {
                var sc = c.In(n, 2);
                if (sc?.Floats is { Length: > 0 } f) scales = f;
                else if (c.HasInput(n, 3)) sizes = c.IntsOf(n, 3);
            }
        }
        var dims = new Dim[s.Rank];
        var axes = n.GetInts("axes")?.Select(a => (int)NormAxis(a, s.Rank)).ToArray() ?? Enumerable.Range(0, s.Rank).ToArray();
        for (int i = 0; i < s.Rank; i++) dims[i] = s[i];
        for (int k = 0; k < axes.Length; k++)
        {
            int a = axes[k];
            if (sizes is not null && k < sizes.Length) dims[a] = Dim.Of(sizes[k]);
            else if (scales is not null && k < scales.Length)
                dims[a] = s[a].IsKnown ? Dim.Of((long)Math.Floor(s[a].Value * scales[k])) : scales[k] == 1 ? s[a] : Dim.Unknown;
            else dims[a] = Dim.Unknown;
        }
        return [Facts(x.DType, new Shape(dims))];
    }

    private static ValueFacts?[] Reduce(Context c, Node n)
    {
        var x = c.In(n, 0);
        if (x?.Shape is not { } s) return [Facts(x?.DType, xs: null)];
        var axes = n.GetInts("axes") ?? (c.HasInput(n, 1) ? c.IntsOf(n, 1) : []);
        if (axes is null) return [Facts(x.DType, xs: null)];
        bool keep = n.GetInt("keepdims", 1) != 0;
        bool noop = n.GetInt("noop_with_empty_axes", 0) != 0;
        if (axes.Length == 0 && noop) return [Like(x)];
        var set = axes.Length == 0 ? Enumerable.Range(0, s.Rank).ToHashSet() : axes.Select(a => (int)NormAxis(a, s.Rank)).ToHashSet();
        var dims = new List<Dim>();
        for (int i = 0; i < s.Rank; i++)
            if (!set.Contains(i)) dims.Add(s[i]);
            else if (keep) dims.Add(Dim.Of(1));
        Dim[]? ints = null;
        if (n.OpType == "ReduceProd" && x.Ints is not null && s.Rank == 1 && set.Count == 1 && c.IntsOf(n, 0) is { } v)
            ints = [Context.IntDim(v.Aggregate(1L, (p, q) => p * q))];
        return [Facts(x.DType, new Shape(dims), ints)];
    }

    private static ValueFacts?[] ArgReduce(Context c, Node n)
    {
        var x = c.In(n, 0);
        if (x?.Shape is not { } s) return [Facts(DType.Int64, null)];
        int axis = (int)NormAxis(n.GetInt("axis", 0), s.Rank);
        bool keep = n.GetInt("keepdims", 1) != 0;
        var dims = s.Dims.Select((d, i) => i == axis ? Dim.Of(1) : d).Where((_, i) => keep || i != axis);
        return [Facts(DType.Int64, new Shape(dims))];
    }

    private static ValueFacts?[] Expand(Context c, Node n)
    {
        var x = c.In(n, 0);
        var target = c.In(n, 1)?.Ints;
        if (target is null) return [Facts(x?.DType, xs: null)];
        return [Facts(x?.DType, Broadcast(x?.Shape, new Shape(target.Select(d => Context.TryValue(d, out var v) && v >= 0 ? Dim.Of(v) : d.IsSymbolic && !d.Symbol!.StartsWith('#') ? d : Dim.Unknown))))];
    }

    private static ValueFacts?[] Tile(Context c, Node n)
    {
        var x = c.In(n, 0);
        var reps = c.IntsOf(n, 1);
        if (x?.Shape is not { } s || reps is null) return [Facts(x?.DType, x?.Shape is { } r ? new Shape(Enumerable.Repeat(Dim.Unknown, r.Rank)) : null)];
        return [Facts(x.DType, new Shape(s.Dims.Select((d, i) => d.IsKnown ? Dim.Of(d.Value * reps[i]) : reps[i] == 1 ? d : Dim.Unknown)))];
    }

    private static ValueFacts?[] Range(Context c, Node n)
    {
        var dtype = c.In(n, 0)?.DType;
        double? Scalar(int i) => c.In(n, i) is { } f ? f.Floats?.FirstOrDefault() ?? (c.IntsOf(n, i) is { Length: 1 } v ? v[0] : null) : null;
        var (start, limit, delta) = (Scalar(0), Scalar(1), Scalar(2));
        if (start is null || limit is null || delta is null || delta == 0) return [Facts(dtype, Shape.Of(1) is var _ ? new Shape([Dim.Unknown]) : null)];
        long count = Math.Max((long)Math.Ceiling((limit.Value - start.Value) / delta.Value), 0);
        Dim[]? ints = dtype?.IsInteger() == true && count <= MaxTrackedElements
            ? Enumerable.Range(0, (int)count).Select(i => Context.IntDim((long)(start.Value + i * delta.Value))).ToArray() : null;
        return [Facts(dtype, Shape.Of(count), ints)];
    }

    private static ValueFacts?[] TopK(Context c, Node n)
    {
        var x = c.In(n, 0);
        if (x?.Shape is not { } s) return [Facts(x?.DType, xs: null), Facts(DType.Int64, null)];
        int axis = (int)NormAxis(n.GetInt("axis", -1), s.Rank);
        var k = n.Attr("k") is { } ka ? ka.AsInt() : c.IntsOf(n, 1) is { Length: 1 } kv ? kv[0] : (long?)null;
        var dims = s.Dims.Select((d, i) => i == axis ? (k is { } kk ? Dim.Of(kk) : Dim.Unknown) : d).ToArray();
        return [Facts(x.DType, new Shape(dims)), Facts(DType.Int64, new Shape(dims))];
    }

    private static ValueFacts?[] Einsum(Context c, Node n)
    {
        var eq = n.GetString("equation", "").Replace(" ", "", StringComparison.Ordinal);
        var parts = eq.Split("->");
        var ins = parts[0].Split(',');
        var letters = new Dictionary<char, Dim>();
        for (int i = 0; i < ins.Length; i++)
        {
            if (c.In(n, i)?.Shape is not { } s || ins[i].Contains("...", StringComparison.Ordinal) || s.Rank != ins[i].Length) return [Facts(c.In(n, 0)?.DType, xs: null)];
            for (int k = 0; k < ins[i].Length; k++)
                if (!letters.TryGetValue(ins[i][k], out var d) || (!d.IsKnown && s[k].IsKnown) || (d.IsKnown && d.Value == 1)) letters[ins[i][k]] = s[k];
        }
        string output = parts.Length > 1 ? parts[1]
            : new string(letters.Keys.Where(ch => ins.Sum(t => t.Count(x => x == ch)) == 1).OrderBy(ch => ch).ToArray());
        return [Facts(c.In(n, 0)?.DType, new Shape(output.Select(ch => letters[ch])))];
    }

    private static ValueFacts?[] If(Context c, Node n)
    {
        var then = n.Attr("then_branch")?.AsGraph();
        var other = n.Attr("else_branch")?.AsGraph();
        if (then is null || other is null) return new ValueFacts?[n.Outputs.Count];
        var a = c.RunSubgraph(then);
        var b = c.RunSubgraph(other);
        var cond = c.IntsOf(n, 0);
        if (cond is { Length: 1 }) return cond[0] != 0 ? a : b;
        var r = new ValueFacts?[n.Outputs.Count];
        for (int i = 0; i < r.Length && i < a.Length && i < b.Length; i++)
        {
            var (sa, sb) = (a[i].Shape, b[i].Shape);
            Shape? s = sa is not null && sb is not null && sa.Rank == sb.Rank
                ? new Shape(sa.Dims.Select((d, k) => d.Equals(sb[k]) ? d : Dim.Unknown)) : null;
            r[i] = Facts(a[i].DType != DType.Undefined ? a[i].DType : b[i].DType, s);
        }
        return r;
    }

    private static ValueFacts?[] Recurrent(Context c, Node n, int gates, bool cellState)
    {
        var (x, w) = (c.In(n, 0), c.In(n, 1));
        long hidden = n.GetInt("hidden_size", 0);
        if (hidden == 0 && w?.Shape is { Rank: 3 } ws && ws[1].IsKnown) hidden = ws[1].Value / gates;
        var dirs = n.GetString("direction", "forward") == "bidirectional" ? 2 : 1;
        bool batchFirst = n.GetInt("layout", 0) != 0;
        if (x?.Shape is not { Rank: 3 } xs || hidden == 0) return new ValueFacts?[n.Outputs.Count];
        var (seq, batch) = batchFirst ? (xs[1], xs[0]) : (xs[0], xs[1]);
        var h = Dim.Of(hidden);
        var d = Dim.Of(dirs);
        var y = batchFirst ? new Shape([batch, seq, d, h]) : new Shape([seq, d, batch, h]);
        var yh = batchFirst ? new Shape([batch, d, h]) : new Shape([d, batch, h]);
        var r = new List<ValueFacts?> { Facts(x.DType, y), Facts(x.DType, yh) };
        if (cellState) r.Add(Facts(x.DType, yh));
        return [.. r];
    }

    private static ValueFacts? SpaceDepth(Context c, Node n, bool toDepth)
    {
        var x = c.In(n, 0);
        if (x?.Shape is not { Rank: 4 } s) return Facts(x?.DType, xs: null);
        long b = n.GetInt("blocksize", 1);
        Dim Mul(Dim d, long k) => d.IsKnown ? Dim.Of(d.Value * k) : Dim.Unknown;
        Dim Div(Dim d, long k) => d.IsKnown ? Dim.Of(d.Value / k) : Dim.Unknown;
        return toDepth
            ? Facts(x.DType, new Shape([s[0], Mul(s[1], b * b), Div(s[2], b), Div(s[3], b)]))
            : Facts(x.DType, new Shape([s[0], Div(s[1], b * b), Mul(s[2], b), Mul(s[3], b)]));
    }

    private static double[]? GetFloatsOrNull(this Node n, string name) =>
        n.Attr(name) is { Kind: AttributeKind.Floats } a ? a.AsFloats().Select(f => (double)f).ToArray() : null;
}
