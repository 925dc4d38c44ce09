using OnDevice.Compression.Quantization;

namespace OnDevice.Compression.Calibration;

/// <summary>
/// A bounded-memory summary of every value one activation took over a calibration set: exact min/max/count and two
/// one-sided histograms of |x| (negative and non-negative values) sharing one bin width. When a value falls beyond the
/// covered range, the width doubles and adjacent bin pairs merge — an exact operation, so the histogram never
/// redistributes counts approximately and its size never depends on how many values were seen.
/// </summary>
public sealed class ValueHistogram
{
    private readonly long[] _pos;
    private readonly long[] _neg;

    /// <summary>A histogram with <paramref name="bins"/> bins per sign (even, at least 16).</summary>
    public ValueHistogram(int bins = 4096)
    {
        if (bins < 16 || bins % 2 != 0) throw new ArgumentOutOfRangeException(nameof(bins), $"bins must be even and at least 16, got {bins}");
        _pos = new long[bins];
        _neg = new long[bins];
    }

    /// <summary>Bins per sign.</summary>
    public int Bins => _pos.Length;

    /// <summary>Width of one bin (0 while every value seen was zero).</summary>
    public double Width { get; private set; }

    /// <summary>Smallest value seen (+∞ before any).</summary>
    public float Min { get; private set; } = float.PositiveInfinity;

    /// <summary>Largest value seen (−∞ before any).</summary>
    public float Max { get; private set; } = float.NegativeInfinity;

    /// <summary>Finite values counted.</summary>
    public long Count { get; private set; }

    /// <summary>NaN or infinite values seen (not counted in the histogram).</summary>
    public long NonFinite { get; private set; }

    /// <summary>Bytes this summary holds (independent of how many values it saw).</summary>
    public long Bytes => 2L * _pos.Length * sizeof(long) + 64;

    /// <summary>Counts of non-negative values: bin i holds x in [i·w, (i+1)·w) (the last bin is closed).</summary>
    public ReadOnlySpan<long> Positive => _pos;

    /// <summary>Counts of negative values: bin i holds −x in (i·w, (i+1)·w].</summary>
    public ReadOnlySpan<long> Negative => _neg;

    /// <summary>Adds every element of <paramref name="values"/>.</summary>
    public void Add(ReadOnlySpan<float> values)
    {
        float lo = float.PositiveInfinity, hi = float.NegativeInfinity;
        long bad = 0;
        foreach (var v in values)
        {
            if (!float.IsFinite(v)) { bad++; continue; }
            if (v < lo) lo = v;
            if (v > hi) hi = v;
        }
        NonFinite += bad;
        if (values.Length - bad == 0) return;
        if (lo < Min) Min = lo;
        if (hi > Max) Max = hi;
        double amax = Math.Max(-(double)lo, hi);
        if (amax > 0)
        {
            if (Width == 0) Width = amax / _pos.Length;
            while (amax > Width * _pos.Length) Grow();
        }
        Count += values.Length - bad;
        if (Width == 0)
        {
            _pos[0] += values.Length - bad; // every value so far is zero
            return;
        }
        double inv = 1.0 / Width;
        int last = _pos.Length - 1;
        foreach (var v in values)
        {
            if (!float.IsFinite(v)) continue;
            if (v >= 0)
            {
                int i = (int)(v * inv);
                _pos[i > last ? last : i]++;
            }
            else
            {
                // Negative bins are closed at the top of |x|: −x exactly on an edge k·w goes to bin k−1.
                double a = -(double)v * inv;
                int i = (int)Math.Ceiling(a) - 1;
                _neg[i > last ? last : i < 0 ? 0 : i]++;
            }
        }
    }

    private void Grow()
    {
        int n = _pos.Length;
        for (int i = 0; i < n / 2; i++)
        {
            _pos[i] = _pos[2 * i] + _pos[2 * i + 1];
            _neg[i] = _neg[2 * i] + _neg[2 * i + 1];
        }
        Array.Clear(_pos, n / 2, n / 2);
        Array.Clear(_neg, n / 2, n / 2);
        Width *= 2;
    }

    /// <summary>The exact observed range (0..0 before any value).</summary>
    public ActivationRange MinMax() => Count == 0 ? new(0, 0) : new(Min, Max);

    /// <summary>
    /// The value below which a fraction <paramref name="q"/> (0..1) of the values lie, linearly interpolated inside
    /// its bin and clamped to the observed range.
    /// </summary>
    public float Quantile(double q)
    {
        if (Count == 0) return 0;
        if (!(q >= 0 && q <= 1)) throw new ArgumentOutOfRangeException(nameof(q), "quantile must be in [0, 1]");
        double target = q * Count, seen = 0;
        // Walk from the most negative bin to the most positive one.
        for (int i = _neg.Length - 1; i >= 0; i--)
        {
            long c = _neg[i];
            if (c > 0 && seen + c >= target)
            {
                double lowEdge = -(i + 1) * Width; // values in (−(i+1)w, −iw]
                double v = lowEdge + (target - seen) / c * Width;
                return Clamp(v);
            }
            seen += c;
        }
        for (int i = 0; i < _pos.Length; i++)
        {
            long c = _pos[i];
            if (c > 0 && seen + c >= target)
            {
                double v = (i + (target - seen) / c) * Width;
                return Clamp(v);
            }
            seen += c;
        }
        return Max;
    }

    private float Clamp(double v) => (float)Math.Clamp(v, Min, Max);

    /// <summary>
    /// Range that keeps <paramref name="percentile"/> % of the values, cutting (100 − p)/2 % from each tail
    /// (one-sided distributions keep their observed lower end).
    /// </summary>
    public ActivationRange Percentile(double percentile)
    {
        if (Count == 0) return new(0, 0);
        double cut = (100 - percentile) / 200;
        float lo = Min >= 0 ? Min : Quantile(cut);
        float hi = Max <= 0 ? Max : Quantile(1 - cut);
        return new(Math.Min(lo, hi), Math.Max(lo, hi));
    }

    /// <summary>
    /// The range minimizing the KL divergence between the clipped distribution of |x| and its quantized form
    /// (TensorRT's entropy calibration). One-sided distributions search [0, t] with 256 levels; two-sided ones fold
    /// to |x| with 128 levels per side and return [−t, t] clipped to the observed range. The search runs on at most
    /// <see cref="EntropySearchBins"/> bins (exact pair merges of the used part of the histogram).
    /// </summary>
    public ActivationRange Entropy()
    {
        if (Count == 0) return new(0, 0);
        if (Width == 0) return MinMax();
        bool twoSided = Min < 0 && Max > 0;
        int used = _pos.Length;
        while (used > 1 && _pos[used - 1] + _neg[used - 1] == 0) used--;
        int merge = (used + EntropySearchBins - 1) / EntropySearchBins;
        var abs = new double[(used + merge - 1) / merge];
        for (int i = 0; i < used; i++) abs[i / merge] += _pos[i] + _neg[i];
        int levels = twoSided ? 128 : 256;
        int kept = EntropyThresholdBins(abs, levels);
        double t = kept * merge * Width;
        if (Max <= 0) return new((float)Math.Max(Min, -t), Max);
        if (Min >= 0) return new(Min, (float)Math.Min(Max, t));
        return new((float)Math.Max(Min, -t), (float)Math.Min(Max, t));
    }

    /// <summary>Most bins the entropy search works on (TensorRT uses 2048).</summary>
    public const int EntropySearchBins = 2048;

    /// <summary>
    /// How many leading bins of <paramref name="hist"/> to keep (at least <paramref name="levels"/>) so that P —
    /// those bins with the clipped mass added to the last one — and Q — the same bins merged into
    /// <paramref name="levels"/> levels, each level's count spread over its non-empty bins — have the least KL(P‖Q).
    /// A kept last bin that is empty but receives clipped mass gets half a count in Q (less than any real bin), so a
    /// threshold in the gap before far outliers stays possible; ties keep the smallest threshold.
    /// </summary>
    internal static int EntropyThresholdBins(double[] hist, int levels)
    {
        int used = hist.Length;
        while (used > 0 && hist[used - 1] == 0) used--;
        if (used <= levels) return Math.Max(used, 1);
        var suffix = new double[used + 1];
        for (int i = used - 1; i >= 0; i--) suffix[i] = suffix[i + 1] + hist[i];
        var levelSum = new double[levels];
        var levelBins = new int[levels];
        double best = double.PositiveInfinity;
        int bestI = used;
        for (int i = levels; i <= used; i++)
        {
            int nl = Math.Min(levels, i);
            Array.Clear(levelSum, 0, nl);
            Array.Clear(levelBins, 0, nl);
            for (int k = 0; k < i; k++)
            {
                if (hist[k] == 0) continue;
                int l = (int)((long)k * nl / i);
                levelSum[l] += hist[k];
                levelBins[l]++;
            }
            // P sums to the total count; Q to the in-range count (plus half a count for an empty last bin).
            double total = suffix[0], qTotal = total - suffix[i], kl = 0;
            for (int k = 0; k < i; k++)
            {
                double p = hist[k] + (k == i - 1 ? suffix[i] : 0);
                if (p == 0) continue;
                double q;
                if (hist[k] == 0)
                {
                    q = 0.5;
                    qTotal += q;
                }
                else
                {
                    int l = (int)((long)k * nl / i);
                    q = levelSum[l] / levelBins[l];
                }
                kl += p * Math.Log(p / q);
            }
            kl = kl / total + Math.Log(qTotal / total); // normalize P by its sum, Q by its own
            if (kl < best)
            {
                best = kl;
                bestI = i;
            }
        }
        return bestI;
    }
}
