namespace OnDevice.Compression.Gptq;

/// <summary>
/// The second-order statistics of one layer's input over a calibration set: per weight group (Conv groups; 1
/// otherwise) XᵀX = Σ x·xᵀ over every input row x (a MatMul/Gemm row, or an im2col patch of a Conv), the row sum Σ x
/// and the row count n. GPTQ's Hessian of the layer's squared output error is H = 2/n · XᵀX.
/// </summary>
public sealed class LayerHessian
{
    private readonly double[][] _xtx;
    private readonly double[][] _sum;
    private readonly long[] _rows;

    /// <summary>Empty statistics for a weight of <paramref name="columns"/> reduction columns in <paramref name="groups"/> groups.</summary>
    public LayerHessian(string weight, int columns, int groups = 1, string layer = "", string opType = "", string input = "")
    {
        if (columns < 1) throw new ArgumentOutOfRangeException(nameof(columns), "a layer needs at least one reduction column");
        if (groups < 1) throw new ArgumentOutOfRangeException(nameof(groups), "a layer needs at least one group");
        Weight = weight;
        Columns = columns;
        Groups = groups;
        Layer = layer.Length > 0 ? layer : weight;
        OpType = opType;
        Input = input;
        _xtx = new double[groups][];
        _sum = new double[groups][];
        _rows = new long[groups];
        for (int g = 0; g < groups; g++)
        {
            _xtx[g] = new double[(long)columns * columns];
            _sum[g] = new double[columns];
        }
    }

    /// <summary>The weight's value name (what <see cref="GptqRounder"/> looks it up by).</summary>
    public string Weight { get; }

    /// <summary>The layer (node name) the weight belongs to.</summary>
    public string Layer { get; }

    /// <summary>Conv, Gemm or MatMul.</summary>
    public string OpType { get; }

    /// <summary>The activation the statistics were collected from.</summary>
    public string Input { get; }

    /// <summary>Reduction columns per group.</summary>
    public int Columns { get; }

    /// <summary>Weight groups (Conv groups): rows of group g are [g·Rows/Groups, (g+1)·Rows/Groups).</summary>
    public int Groups { get; }

    /// <summary>Input rows seen by group 0 (every group sees the same number).</summary>
    public long Samples => _rows[0];

    /// <summary>Bytes the statistics hold.</summary>
    public long Bytes => Groups * ((long)Columns * Columns + Columns) * sizeof(double);

    /// <summary>XᵀX of group <paramref name="group"/>, row-major Columns×Columns (do not modify).</summary>
    public ReadOnlySpan<double> XtX(int group) => _xtx[group];

    /// <summary>Σ x of group <paramref name="group"/>.</summary>
    public ReadOnlySpan<double> RowSum(int group) => _sum[group];

    /// <summary>Input rows seen by group <paramref name="group"/>.</summary>
    public long RowsOf(int group) => _rows[group];

    /// <summary>The Hessian H = 2/n · XᵀX of group <paramref name="group"/> (a copy).</summary>
    public double[] Hessian(int group)
    {
        var h = (double[])_xtx[group].Clone();
        double f = _rows[group] > 0 ? 2.0 / _rows[group] : 0;
        for (int i = 0; i < h.Length; i++) h[i] *= f;
        return h;
    }

    /// <summary>Statistics of one group from explicit input rows <paramref name="x"/>[rows, columns] (row-major).</summary>
    public static LayerHessian FromInputs(string weight, float[] x, int rows, int columns)
    {
        if (x.Length != (long)rows * columns) throw new ArgumentException($"{x.Length} values are not {rows}x{columns} input rows", nameof(x));
        var h = new LayerHessian(weight, columns);
        h.Add(0, x, rows);
        return h;
    }

    /// <summary>Adds input rows <paramref name="x"/>[rows, Columns] to group <paramref name="group"/>.</summary>
    public void Add(int group, ReadOnlySpan<float> x, int rows)
    {
        if (x.Length < (long)rows * Columns) throw new ArgumentException($"{x.Length} values are fewer than {rows} rows of {Columns}", nameof(x));
        var tmp = Columns > 24 ? new float[(long)Columns * Columns] : [];
        unsafe
        {
            fixed (float* p = x) AddRows(group, p, rows, tmp, 1);
        }
    }

    internal unsafe void AddRows(int group, float* x, int rows, float[] tmp, int threads)
    {
        Linalg.AccumulateXtX(x, rows, Columns, _xtx[group], tmp, threads);
        var s = _sum[group];
        for (int t = 0; t < rows; t++)
        {
            float* r = x + (long)t * Columns;
            for (int i = 0; i < Columns; i++) s[i] += r[i];
        }
        _rows[group] += rows;
    }
}
