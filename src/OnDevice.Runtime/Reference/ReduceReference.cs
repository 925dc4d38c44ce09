namespace OnDevice.Runtime.Reference;

/// <summary>The Reduce* operators.</summary>
public enum ReduceOp
{
    /// <summary>Σx.</summary>
    Sum,
    /// <summary>Σx / n.</summary>
    Mean,
    /// <summary>max x.</summary>
    Max,
    /// <summary>min x.</summary>
    Min,
    /// <summary>Πx.</summary>
    Prod,
    /// <summary>Σ|x|.</summary>
    L1,
    /// <summary>√Σx².</summary>
    L2,
    /// <summary>log Σx.</summary>
    LogSum,
    /// <summary>log Σexp x.</summary>
    LogSumExp,
    /// <summary>Σx².</summary>
    SumSquare,
}

/// <summary>Scalar definitions of the reductions, arg-reductions and softmax family, by explicit index arithmetic in double precision.</summary>
public static class ReduceReference
{
    /// <summary>The result of reducing an empty set (ONNX opset 18 rules): 0, 1, −∞, +∞ or NaN.</summary>
    public static double EmptyValue(ReduceOp op) => op switch
    {
        ReduceOp.Prod => 1,
        ReduceOp.Max or ReduceOp.LogSum or ReduceOp.LogSumExp => double.NegativeInfinity,
        ReduceOp.Min => double.PositiveInfinity,
        ReduceOp.Mean => double.NaN,
        _ => 0,
    };

    /// <summary>Folds <paramref name="values"/> as <paramref name="op"/> defines.</summary>
    public static double Fold(ReduceOp op, IReadOnlyList<double> values)
    {
        if (values.Count == 0) return EmptyValue(op);
        switch (op)
        {
            case ReduceOp.Max: return values.Any(double.IsNaN) ? double.NaN : values.Max();
            case ReduceOp.Min: return values.Any(double.IsNaN) ? double.NaN : values.Min();
            case ReduceOp.Prod: return values.Aggregate(1.0, (p, v) => p * v);
            case ReduceOp.LogSumExp:
                double m = values.Any(double.IsNaN) ? double.NaN : values.Max();
                return double.IsFinite(m) ? m + Math.Log(values.Sum(v => Math.Exp(v - m))) : m;
        }
        double s = 0;
        foreach (var v in values) s += op switch { ReduceOp.L1 => Math.Abs(v), ReduceOp.L2 or ReduceOp.SumSquare => v * v, _ => v };
        return op switch
        {
            ReduceOp.Mean => s / values.Count,
            ReduceOp.L2 => Math.Sqrt(s),
            ReduceOp.LogSum => Math.Log(s),
            _ => s,
        };
    }

    /// <summary>Reduces <paramref name="x"/> over the (normalized) <paramref name="axes"/>; returns the values and the output shape.</summary>
    public static (double[] Values, int[] Shape) Reduce(ReadOnlySpan<double> x, int[] shape, int[] axes, bool keepDims, ReduceOp op)
    {
        int rank = shape.Length;
        var reduce = new bool[rank];
        foreach (var a in axes) reduce[a] = true;
        var keptShape = Enumerable.Range(0, rank).Select(d => reduce[d] ? 1 : shape[d]).ToArray();
        int outCount = keptShape.Aggregate(1, (p, d) => p * d);
        var groups = new List<double>[outCount];
        for (int i = 0; i < outCount; i++) groups[i] = [];
        var idx = new int[rank];
        for (int i = 0; i < x.Length; i++)
        {
            int rem = i;
            for (int d = rank - 1; d >= 0; d--) { idx[d] = rem % shape[d]; rem /= shape[d]; }
            int o = 0;
            for (int d = 0; d < rank; d++) o = o * keptShape[d] + (reduce[d] ? 0 : idx[d]);
            groups[o].Add(x[i]);
        }
        var values = groups.Select(g => Fold(op, g)).ToArray();
        var outShape = keepDims ? keptShape : Enumerable.Range(0, rank).Where(d => !reduce[d]).Select(d => shape[d]).ToArray();
        return (values, outShape);
    }

    /// <summary>ArgMax (or ArgMin) along <paramref name="axis"/>: the first (or, with <paramref name="selectLast"/>, last) index of the extreme value.</summary>
    public static long[] ArgExtreme(ReadOnlySpan<double> x, int[] shape, int axis, bool max, bool selectLast)
    {
        int outer = shape.Take(axis).Aggregate(1, (p, d) => p * d);
        int n = shape[axis];
        int inner = shape.Skip(axis + 1).Aggregate(1, (p, d) => p * d);
        var r = new long[outer * inner];
        for (int o = 0; o < outer; o++)
            for (int i = 0; i < inner; i++)
            {
                int best = 0;
                for (int k = 1; k < n; k++)
                {
                    double v = x[(o * n + k) * inner + i], b = x[(o * n + best) * inner + i];
                    bool better = max ? (selectLast ? v >= b : v > b) : (selectLast ? v <= b : v < b);
                    if (better) best = k;
                }
                r[o * inner + i] = best;
            }
        return r;
    }

    /// <summary>Softmax, LogSoftmax or Hardmax over [outer, n, inner] (the axis is the middle one).</summary>
    public static double[] Softmax(ReadOnlySpan<double> x, int outer, int n, int inner, string kind)
    {
        var y = new double[x.Length];
        for (int o = 0; o < outer; o++)
            for (int i = 0; i < inner; i++)
            {
                int At(int k) => (o * n + k) * inner + i;
                double m = double.NegativeInfinity;
                int arg = 0;
                for (int k = 0; k < n; k++)
                    if (x[At(k)] > m) { m = x[At(k)]; arg = k; }
                double s = 0;
                for (int k = 0; k < n; k++) s += Math.Exp(x[At(k)] - m);
                for (int k = 0; k < n; k++)
                    y[At(k)] = kind switch
                    {
                        "Softmax" => Math.Exp(x[At(k)] - m) / s,
                        "LogSoftmax" => x[At(k)] - m - Math.Log(s),
                        _ => k == arg ? 1 : 0,
                    };
            }
        return y;
    }
}
