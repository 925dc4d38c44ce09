using OnDevice.Compression.Quantization;

namespace OnDevice.Compression.Gptq;

/// <summary>
/// The quantization grid GPTQ shares with round-to-nearest, and a minimal round-to-nearest rounder over it (the
/// baseline GPTQ is compared with). A group's scale and zero point come from its range widened to include 0:
/// symmetric grids put 0 at zero point 0 (signed) or the midpoint (unsigned) and scale max|x| onto the positive
/// side; asymmetric grids map [min, max] onto [QMin, QMax]. fp16 scales are rounded before values are.
/// q = clamp(round_half_even(w / scale) + zeroPoint).
/// </summary>
internal sealed class RtnReference : IWeightRounder
{
    public static RtnReference Instance { get; } = new();

    public string Name => "rtn";

    /// <summary>Scale and zero point for a group whose values lie in [<paramref name="min"/>, <paramref name="max"/>].</summary>
    public static (float Scale, int ZeroPoint) ScaleAndZeroPoint(float min, float max, QuantScheme scheme)
    {
        min = Math.Min(min, 0);
        max = Math.Max(max, 0);
        float scale;
        int zp;
        if (scheme.Symmetric)
        {
            zp = scheme.Signed ? 0 : (scheme.QMax + 1) / 2;
            scale = Math.Max(-min, max) / (scheme.QMax - zp);
        }
        else
        {
            scale = (max - min) / (scheme.QMax - scheme.QMin);
            zp = scale > 0 ? (int)Math.Clamp(Math.Round(scheme.QMin - min / scale), scheme.QMin, scheme.QMax) : (scheme.Signed ? 0 : (scheme.QMax + 1) / 2);
        }
        if (!(scale > 0) || !float.IsFinite(scale)) scale = 1f;
        if (scheme.Fp16Scales)
        {
            var h = (float)(Half)scale;
            scale = h > 0 && float.IsFinite(h) ? h : (float)Half.Epsilon;
        }
        return (scale, zp);
    }

    /// <summary>The grid point of <paramref name="v"/>.</summary>
    public static int Round(float v, float scale, int zp, QuantScheme scheme) =>
        (int)Math.Clamp(Math.Round(v / scale, MidpointRounding.ToEven) + zp, scheme.QMin, scheme.QMax);

    /// <summary>Checks that <paramref name="scheme"/> fits a [Rows, Columns] weight matrix.</summary>
    public static void CheckScheme(WeightMatrix weight, QuantScheme scheme)
    {
        if (weight.Rows < 1 || weight.Columns < 1 || weight.Data.Length != (long)weight.Rows * weight.Columns)
            throw new ArgumentException($"weight '{weight.Name}' has {weight.Data.Length} values, not {weight.Rows}x{weight.Columns}");
        if (scheme.Bits is not (4 or 8)) throw new ArgumentException($"{scheme.Bits}-bit quantization is not supported (4 and 8 are)");
        if (scheme.Granularity == Granularity.PerChannel && scheme.Axis != 0)
            throw new ArgumentException("per-channel schemes on a weight matrix use axis 0 (rows)");
        if (scheme.Granularity == Granularity.Blocked && (scheme.Axis != 1 || scheme.BlockSize < 1))
            throw new ArgumentException("blocked schemes on a weight matrix block along axis 1 (the reduction) with a positive block size");
        foreach (var v in weight.Data)
            if (!float.IsFinite(v)) throw new ArgumentException($"weight '{weight.Name}' holds a non-finite value ({v})");
    }

    /// <summary>Scale groups of a [rows, cols] matrix under <paramref name="scheme"/>.</summary>
    public static int GroupCount(int rows, int cols, QuantScheme scheme) => scheme.Granularity switch
    {
        Granularity.PerTensor => 1,
        Granularity.PerChannel => rows,
        _ => rows * ((cols + scheme.BlockSize - 1) / scheme.BlockSize),
    };

    /// <summary>The group of element [row, col].</summary>
    public static int GroupOf(int row, int col, int cols, QuantScheme scheme) => scheme.Granularity switch
    {
        Granularity.PerTensor => 0,
        Granularity.PerChannel => row,
        _ => row * ((cols + scheme.BlockSize - 1) / scheme.BlockSize) + col / scheme.BlockSize,
    };

    /// <summary>Scales and zero points of every group, from the values of <paramref name="w"/>.</summary>
    public static (float[] Scales, int[] ZeroPoints) Grid(float[] w, int rows, int cols, QuantScheme scheme)
    {
        int groups = GroupCount(rows, cols, scheme);
        var lo = new float[groups];
        var hi = new float[groups];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
            {
                int g = GroupOf(r, c, cols, scheme);
                float v = w[r * cols + c];
                lo[g] = Math.Min(lo[g], v);
                hi[g] = Math.Max(hi[g], v);
            }
        var scales = new float[groups];
        var zps = new int[groups];
        for (int g = 0; g < groups; g++) (scales[g], zps[g]) = ScaleAndZeroPoint(lo[g], hi[g], scheme);
        return (scales, zps);
    }

    public QuantizedWeight Quantize(WeightMatrix weight, QuantScheme scheme)
    {
        CheckScheme(weight, scheme);
        int rows = weight.Rows, cols = weight.Columns;
        var (scales, zps) = Grid(weight.Data, rows, cols, scheme);
        var values = new int[weight.Data.Length];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
            {
                int g = GroupOf(r, c, cols, scheme);
                values[r * cols + c] = Round(weight.Data[r * cols + c], scales[g], zps[g], scheme);
            }
        return new QuantizedWeight(values, scales, zps, [rows, cols], scheme);
    }
}
