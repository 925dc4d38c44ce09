using System.Globalization;

namespace OnDevice.Delivery.Telemetry;

/// <summary>
/// The fixed, log-spaced latency buckets shared by every client and server (scheme <see cref="Scheme"/>).
/// Edges are e_i = 0.1 ms × 10^(i/48) for i = 0…278 (48 per decade, each bucket 4.91% wider than the one below:
/// 0.1, 0.1049, 0.1101, … 1, … 10, … 100, … 1000, … 61 897 ms). Bucket 0 holds [0, 0.1 ms), bucket i (1…278) holds
/// [e_(i-1), e_i), bucket 279 holds everything from 61.9 s up. Decade edges (1, 10, 100, 1000 ms) are exact.
/// A quantile interpolated inside its bucket is within one bucket width (≤ 4.91% relative) of the exact sample
/// quantile; below 0.1 ms the error is at most 0.1 ms, and above 61.9 s only the lower bound is known.
/// </summary>
public static class LatencyBuckets
{
    /// <summary>Name of this bucket scheme, carried by every batch so a change of scheme can never be mixed up.</summary>
    public const string Scheme = "log10x48-0.1ms";

    /// <summary>Lowest finite edge, in milliseconds.</summary>
    public const double FirstEdgeMs = 0.1;

    /// <summary>Edges per factor of ten.</summary>
    public const int EdgesPerDecade = 48;

    /// <summary>Number of finite edges.</summary>
    public const int EdgeCount = 279;

    /// <summary>Number of buckets (one below the first edge, one above the last).</summary>
    public const int Count = EdgeCount + 1;

    private static readonly double[] Edges = BuildEdges();

    private static double[] BuildEdges()
    {
        var e = new double[EdgeCount];
        // Rounded to 12 significant digits so the table is identical on every platform and decades are exact.
        for (int i = 0; i < EdgeCount; i++)
            e[i] = double.Parse((FirstEdgeMs * Math.Pow(10, (double)i / EdgesPerDecade)).ToString("G12", CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
        return e;
    }

    /// <summary>Inclusive lower edge of a bucket in milliseconds (0 for bucket 0).</summary>
    public static double LowerMs(int bucket)
    {
        CheckBucket(bucket);
        return bucket == 0 ? 0 : Edges[bucket - 1];
    }

    /// <summary>Exclusive upper edge of a bucket in milliseconds (+∞ for the last bucket).</summary>
    public static double UpperMs(int bucket)
    {
        CheckBucket(bucket);
        return bucket == Count - 1 ? double.PositiveInfinity : Edges[bucket];
    }

    /// <summary>The bucket holding a latency.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Negative, NaN or infinite latency.</exception>
    public static int Of(double milliseconds)
    {
        if (!double.IsFinite(milliseconds) || milliseconds < 0)
            throw new ArgumentOutOfRangeException(nameof(milliseconds), milliseconds, "a latency must be a finite, non-negative number of milliseconds");
        // Number of edges <= ms.
        int lo = 0, hi = EdgeCount;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (Edges[mid] <= milliseconds) lo = mid + 1; else hi = mid;
        }
        return lo;
    }

    /// <summary>The bucket holding a latency.</summary>
    public static int Of(TimeSpan latency) => Of(latency.TotalMilliseconds);

    /// <summary>
    /// The q-quantile (0 &lt; q &lt; 1) of a histogram: the bucket where the cumulative count reaches q·n, interpolated
    /// geometrically inside it (linearly in bucket 0; the lower edge in the last bucket). NaN for an empty histogram.
    /// </summary>
    public static double Quantile(ReadOnlySpan<long> counts, double q)
    {
        if (counts.Length != Count) throw new ArgumentException($"a histogram has {Count} buckets, got {counts.Length}", nameof(counts));
        if (!(q > 0 && q < 1)) throw new ArgumentOutOfRangeException(nameof(q), q, "the quantile must lie strictly between 0 and 1");
        double n = 0;
        foreach (var c in counts) n += c;
        if (n == 0) return double.NaN;
        double rank = q * n, below = 0;
        for (int b = 0; b < Count; b++)
        {
            if (counts[b] == 0) continue;
            if (below + counts[b] >= rank)
            {
                double f = Math.Clamp((rank - below) / counts[b], 0, 1);
                if (b == 0) return UpperMs(0) * f;
                if (b == Count - 1) return LowerMs(b);
                double lo = LowerMs(b), hi = UpperMs(b);
                return lo * Math.Pow(hi / lo, f);
            }
            below += counts[b];
        }
        return LowerMs(Count - 1);
    }

    /// <summary>Samples in buckets lying entirely at or above <paramref name="ms"/> (a count that is surely above it).</summary>
    public static long CountSurelyAbove(ReadOnlySpan<long> counts, double ms)
    {
        long s = 0;
        for (int b = 0; b < Count; b++) if (LowerMs(b) >= ms) s += counts[b];
        return s;
    }

    /// <summary>Samples in buckets reaching above <paramref name="ms"/> (a count that may be above it).</summary>
    public static long CountPossiblyAbove(ReadOnlySpan<long> counts, double ms)
    {
        long s = 0;
        for (int b = 0; b < Count; b++) if (UpperMs(b) > ms) s += counts[b];
        return s;
    }

    private static void CheckBucket(int bucket)
    {
        if ((uint)bucket >= Count) throw new ArgumentOutOfRangeException(nameof(bucket), bucket, $"latency buckets are numbered 0-{Count - 1}");
    }
}
