namespace OnDevice.Compression.Quantization;

/// <summary>
/// Round-to-nearest weight quantization: one scale (and zero point) per group from the group's range, then
/// q = clamp(round_half_even(w / scale) + zeroPoint). The baseline every other rounder is compared with.
/// </summary>
public sealed class RtnRounder : IWeightRounder
{
    /// <summary>The shared instance.</summary>
    public static RtnRounder Instance { get; } = new();

    /// <inheritdoc/>
    public string Name => "rtn";

    /// <inheritdoc/>
    public QuantizedWeight Quantize(WeightMatrix weight, QuantScheme scheme)
    {
        if (weight.Data.Length != (long)weight.Rows * weight.Columns)
            throw new ArgumentException($"weight '{weight.Name}' has {weight.Data.Length} values, not {weight.Rows}x{weight.Columns}");
        if (scheme.Granularity == Granularity.PerChannel && scheme.Axis != 0)
            throw new ArgumentException("per-channel schemes on a weight matrix use axis 0 (rows)");
        if (scheme.Granularity == Granularity.Blocked && (scheme.Axis != 1 || scheme.BlockSize < 1))
            throw new ArgumentException("blocked schemes on a weight matrix block along axis 1 (the reduction) with a positive block size");
        var q = new QuantizedWeight(new int[weight.Data.Length], [], [], [weight.Rows, weight.Columns], scheme);
        int groups = checked((int)q.ScaleDims.Aggregate(1L, (a, b) => a * b));
        var lo = new float[groups];
        var hi = new float[groups];
        for (long i = 0; i < weight.Data.Length; i++)
        {
            int g = GroupOf(weight, scheme, i);
            float v = weight.Data[i];
            if (!float.IsFinite(v)) throw new CompressionException($"weight '{weight.Name}' holds a non-finite value ({v}) at element {i}");
            lo[g] = Math.Min(lo[g], v);
            hi[g] = Math.Max(hi[g], v);
        }
        var scales = new float[groups];
        var zps = new int[groups];
        for (int g = 0; g < groups; g++) (scales[g], zps[g]) = ScaleAndZeroPoint(lo[g], hi[g], scheme);
        for (long i = 0; i < weight.Data.Length; i++)
        {
            int g = GroupOf(weight, scheme, i);
            q.Values[i] = Round(weight.Data[i], scales[g], zps[g], scheme);
        }
        return q with { Scales = scales, ZeroPoints = zps };
    }

    /// <summary>
    /// Scale and zero point for a group whose values lie in [<paramref name="min"/>, <paramref name="max"/>] (the range
    /// always includes 0). Symmetric grids put 0 at zero point 0 (signed) or the midpoint (unsigned); fp16 scales are
    /// rounded to float16 before use so the stored scale is the one the values were rounded with.
    /// </summary>
    public static (float Scale, int ZeroPoint) ScaleAndZeroPoint(float min, float max, QuantScheme scheme)
    {
        min = Math.Min(min, 0);
        max = Math.Max(max, 0);
        float scale;
        int zp;
        if (scheme.Symmetric)
        {
            zp = scheme.Signed ? 0 : (scheme.QMax + 1) / 2;
            float amax = Math.Max(-min, max);
            scale = amax / (scheme.QMax - zp);
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

    /// <summary>round_half_even(v / scale) + zp, clamped to the grid (the ONNX QuantizeLinear rule).</summary>
    public static int Round(float v, float scale, int zp, QuantScheme scheme) =>
        (int)Math.Clamp(Math.Round(v / scale, MidpointRounding.ToEven) + zp, scheme.QMin, scheme.QMax);

    private static int GroupOf(WeightMatrix w, QuantScheme s, long flat) => s.Granularity switch
    {
        Granularity.PerTensor => 0,
        Granularity.PerChannel => (int)(flat / w.Columns),
        _ => (int)(flat / w.Columns * ((w.Columns + s.BlockSize - 1) / s.BlockSize) + flat % w.Columns / s.BlockSize),
    };
}
