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

    /// <summary>Calls of <see cref="Add"/> that brought at least one finite value (one per tensor seen: per sample, normally).</summary>
    public long Batches { get; private set; }

    /// <summary>Finite values per <see cref="Add"/> call on average (the tensor's size; 0 before any).</summary>
    public double ValuesPerBatch => Batches == 0 ? 0 : (double)Count / Batches;

    /// <summary>Bytes this summary holds (independent of how many values it saw).</summary>
    public long Bytes => 2L * _pos.Length * sizeof(long) + 64;

    /// <summary>Counts of non-negative values: bin i holds x in [i·w, (i+1)·w) (the last bin is closed).</summary>
    public ReadOnlySpan<long> Positive => _pos;

    /// <summary>Counts of negative values: bin i holds −x in (i·w, (i+1)·w].</summary>
    public ReadOnlySpan<long> Negative => _neg;

    /// <summary>
    /// A histogram from stored counts (a fixture of a real tensor's distribution): <paramref name="positive"/> and
    /// <paramref name="negative"/> as <see cref="Positive"/> and <see cref="Negative"/> hold them, bins of
    /// <paramref name="width"/>, the exact <paramref name="min"/>/<paramref name="max"/> and the number of
    /// <paramref name="batches"/> they came in.
    /// </summary>
    internal static ValueHistogram FromCounts(long[] positive, long[] negative, double width, float min, float max, long batches)
    {
        if (positive.Length != negative.Length) throw new ArgumentException("both sides need the same number of bins");
        var h = new ValueHistogram(positive.Length) { Width = width, Min = min, Max = max, Batches = batches };
        positive.CopyTo(h._pos, 0);
        negative.CopyTo(h._neg, 0);
        h.Count = positive.Sum() + negative.Sum();
        return h;
    }

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
        Batches++;
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
    /// The range minimizing the KL divergence between the clipped distribution and its quantized form (TensorRT's
    /// entropy calibration), searched on each side of zero on its own: one-sided distributions search [0, t] with 256
    /// levels; two-sided ones search the negative and the positive side separately with 128 levels each, so a short
    /// negative tail does not pull the positive threshold down (folding to |x| clipped skewed tensors like
    /// −0.94…4.35 to ±0.79). A threshold may clip at most <paramref name="maxClippedShare"/> of all values (default
    /// <see cref="DefaultMaxClippedShare"/>): KL weighs the clipped mass by its share only, not by how far it is
    /// clipped, so without that bound it cuts the sparse large activations that carry the signal. The search runs on
    /// at most <see cref="EntropySearchBins"/> bins per side (exact pair merges of the used part of the histogram).
    /// <see cref="ActivationCalibrator"/> adds two guards a histogram alone cannot know: values from a bounding op and
    /// values with few elements per sample keep their observed range.
    /// </summary>
    public ActivationRange Entropy(double maxClippedShare = DefaultMaxClippedShare)
    {
        if (!(maxClippedShare >= 0 && maxClippedShare < 1)) throw new ArgumentOutOfRangeException(nameof(maxClippedShare), $"the clipped share must be in [0, 1), got {maxClippedShare}");
        if (Count == 0) return new(0, 0);
        if (Width == 0) return MinMax();
        bool twoSided = Min < 0 && Max > 0;
        int levels = twoSided ? 128 : 256;
        double allowed = maxClippedShare * Count;
        double tPos = Max > 0 ? SideThreshold(_pos, levels, allowed) : 0;
        double tNeg = Min < 0 ? SideThreshold(_neg, levels, allowed) : 0;
        if (Max <= 0) return new(Math.Min((float)Math.Max(Min, -tNeg), Max), Max);
        if (Min >= 0) return new(Min, Math.Max((float)Math.Min(Max, tPos), Min));
        return new((float)Math.Max(Min, -tNeg), (float)Math.Min(Max, tPos));
    }

    /// <summary>The entropy threshold of one side's bins (|x| histogram), clipping at most <paramref name="allowed"/> values.</summary>
    private double SideThreshold(long[] side, int levels, double allowed)
    {
        int used = side.Length;
        while (used > 1 && side[used - 1] == 0) used--;
        int merge = (used + EntropySearchBins - 1) / EntropySearchBins;
        var hist = new double[(used + merge - 1) / merge];
        for (int i = 0; i < used; i++) hist[i / merge] += side[i];
        int kept = EntropyThresholdBins(hist, levels, allowed);
        return kept * merge * Width;
    }

    /// <summary>
    /// Default largest share of a tensor's values an entropy threshold may clip (0.1 %): the threshold never lies
    /// below the 99.9th percentile of the values. TensorRT has no bound; with 1 % the PP-OCRv4 recognizer lost every
    /// line (its gated feature maps, e.g. −0.94…4.35, were cut to 0.39: their signal is in the top 1 %).
    /// Measured on that model's degraded lines (bench/results/quality-s4.md): 1 % → 99.8 % CER, 0.3 % → 60.8 %,
    /// 0.1 % → 13.5 %, 0.01 % → 36.1 % (too little clipping: the ranges approach min-max's 36.6 %).
    /// </summary>
    public const double DefaultMaxClippedShare = 1e-3;

    /// <summary>Most bins the entropy search works on (TensorRT uses 2048).</summary>
    public const int EntropySearchBins = 2048;

    /// <summary>
    /// How many leading bins of <paramref name="hist"/> to keep (at least <paramref name="levels"/>) so that P —
    /// those bins with the clipped mass added to the last one — and Q — the same bins merged into
    /// <paramref name="levels"/> levels, each level's count spread over its non-empty bins — have the least KL(P‖Q).
    /// A kept last bin that is empty but receives clipped mass gets half a count in Q (less than any real bin), so a
    /// threshold in the gap before far outliers stays possible; ties keep the smallest threshold. Candidates clipping
    /// more than <paramref name="maxClipped"/> values (default 1 % of the histogram's mass) are skipped.
    /// </summary>
    internal static int EntropyThresholdBins(double[] hist, int levels, double? maxClipped = null)
    {
        int used = hist.Length;
        while (used > 0 && hist[used - 1] == 0) used--;
        if (used <= levels) return Math.Max(used, 1);
        // Prefix sums make each candidate O(levels): within a level every non-empty bin has the same q, so
        // Σ p·log(p/q) = Σ h·log h − Σ_levels log(q_l)·(in-level mass), with the last bin (which also holds the clipped
        // mass) handled on its own.
        var mass = new double[used + 1];
        var nonEmpty = new int[used + 1];
        var hLogH = new double[used + 1];
        for (int k = 0; k < used; k++)
        {
            mass[k + 1] = mass[k] + hist[k];
            nonEmpty[k + 1] = nonEmpty[k] + (hist[k] > 0 ? 1 : 0);
            hLogH[k + 1] = hLogH[k] + (hist[k] > 0 ? hist[k] * Math.Log(hist[k]) : 0);
        }
        double total = mass[used], best = double.PositiveInfinity, limit = maxClipped ?? 0.01 * total;
        int bestI = used;
        for (int i = levels; i <= used; i++)
        {
            double clipped = total - mass[i], last = hist[i - 1];
            if (clipped > limit) continue;
            double num = hLogH[i - 1], qTotal = mass[i], lastQ = 0;
            for (int l = 0; l < levels; l++)
            {
                int k0 = (int)(((long)l * i + levels - 1) / levels), k1 = (int)(((long)(l + 1) * i + levels - 1) / levels);
                int nz = nonEmpty[k1] - nonEmpty[k0];
                if (nz == 0) continue;
                double q = (mass[k1] - mass[k0]) / nz;
                double inLevel = mass[k1] - mass[k0];
                if (k1 == i) { inLevel -= last; lastQ = q; }
                num -= Math.Log(q) * inLevel;
            }
            double p = last + clipped;
            if (p > 0)
            {
                if (last > 0) num += p * Math.Log(p / lastQ);
                else
                {
                    num += p * Math.Log(p / 0.5);
                    qTotal += 0.5;
                }
            }
            double kl = num / total + Math.Log(qTotal / total);
            if (kl < best && (double.IsPositiveInfinity(best) || kl < best - 1e-12 * Math.Abs(best)))
            {
                best = kl;
                bestI = i;
            }
        }
        return bestI;
    }

    /// <summary>Direct twin of <see cref="EntropyThresholdBins"/> (O(bins) per candidate; the definition tests compare with).</summary>
    internal static int EntropyThresholdBinsReference(double[] hist, int levels, double? maxClipped = null)
    {
        int used = hist.Length;
        while (used > 0 && hist[used - 1] == 0) used--;
        if (used <= levels) return Math.Max(used, 1);
        double total = 0;
        for (int k = 0; k < used; k++) total += hist[k];
        double best = double.PositiveInfinity;
        int bestI = used;
        var levelSum = new double[levels];
        var levelBins = new int[levels];
        for (int i = levels; i <= used; i++)
        {
            double clipped = 0;
            for (int k = i; k < used; k++) clipped += hist[k];
            if (clipped > (maxClipped ?? 0.01 * total)) continue;
            Array.Clear(levelSum);
            Array.Clear(levelBins);
            for (int k = 0; k < i; k++)
            {
                if (hist[k] == 0) continue;
                int l = (int)((long)k * levels / i);
                levelSum[l] += hist[k];
                levelBins[l]++;
            }
            double qTotal = total - clipped, kl = 0;
            for (int k = 0; k < i; k++)
            {
                double p = hist[k] + (k == i - 1 ? clipped : 0);
                if (p == 0) continue;
                double q;
                if (hist[k] == 0)
                {
                    q = 0.5;
                    qTotal += q;
                }
                else
                {
                    int l = (int)((long)k * levels / i);
                    q = levelSum[l] / levelBins[l];
                }
                kl += p * Math.Log(p / q);
            }
            kl = kl / total + Math.Log(qTotal / total);
            if (kl < best && (double.IsPositiveInfinity(best) || kl < best - 1e-12 * Math.Abs(best)))
            {
                best = kl;
                bestI = i;
            }
        }
        return bestI;
    }
}
