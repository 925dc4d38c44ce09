using OnDevice.Compression.Quantization;
using OnDevice.Core;

namespace OnDevice.Compression.Palettization;

/// <summary>A palettized weight matrix: one index per element into a codebook per group of output channels.</summary>
/// <param name="Indices">Row-major [Rows, Columns] indices.</param>
/// <param name="Codebooks">Groups × 2^Bits centroids.</param>
/// <param name="Rows">Output channels.</param>
/// <param name="Columns">Reduction length.</param>
/// <param name="Bits">Index bits.</param>
/// <param name="GroupSize">Output channels per codebook (0 = one codebook for the tensor).</param>
public sealed record Palette(int[] Indices, float[] Codebooks, int Rows, int Columns, int Bits, int GroupSize)
{
    /// <summary>Centroids per codebook.</summary>
    public int K => 1 << Bits;

    /// <summary>The matrix the indices stand for.</summary>
    public float[] Reconstruct()
    {
        var r = new float[Indices.Length];
        for (int row = 0; row < Rows; row++)
        {
            int g = GroupSize > 0 ? row / GroupSize : 0;
            for (int c = 0; c < Columns; c++) r[(long)row * Columns + c] = Codebooks[g * K + Indices[(long)row * Columns + c]];
        }
        return r;
    }
}

/// <summary>
/// K-means weight clustering (palettization): 2^bits centroids per tensor or per group of output channels,
/// k-means++ initialization from a fixed seed, Lloyd iterations on sorted values (1-D, so each iteration is a
/// scan). Written as standard ONNX: uint4/uint8 indices, Cast, then Gather (per tensor) or GatherND with
/// batch_dims=1 (grouped) from float32 codebooks.
/// </summary>
public static class Palettizer
{
    /// <summary>Lloyd iterations at most.</summary>
    public const int MaxIterations = 40;

    /// <summary>Seed of the k-means++ initialization (fixed: the same weights always give the same palette).</summary>
    public const int Seed = 20240611;

    /// <summary>Clusters one site's weight; returns the palette and a note when the grouping had to change.</summary>
    public static (Palette Palette, string? Note) Cluster(WeightSite site, PalettePlan plan)
    {
        if (plan.Bits is < 1 or > 8) throw new CompressionException($"palettization needs 1 to 8 bits, not {plan.Bits}");
        if (plan.GroupSize < 0) throw new CompressionException($"group size must be 0 (per tensor) or positive, not {plan.GroupSize}");
        int g = plan.GroupSize;
        string? note = null;
        if (g > 0 && site.Rows % g != 0)
        {
            note = $"{site.Rows} output channels are not a multiple of group size {g}: one codebook for the tensor";
            g = 0;
        }
        if (g >= site.Rows) g = 0;
        return (Cluster(site.Matrix(), site.Rows, site.Columns, plan.Bits, g), note);
    }

    /// <summary>Clusters a [rows, columns] matrix with one codebook per <paramref name="groupSize"/> rows (0 = one).</summary>
    public static Palette Cluster(float[] matrix, int rows, int columns, int bits, int groupSize)
    {
        int k = 1 << bits;
        int groups = groupSize > 0 ? rows / groupSize : 1;
        int per = groupSize > 0 ? groupSize * columns : matrix.Length;
        var indices = new int[matrix.Length];
        var books = new float[groups * k];
        for (int gi = 0; gi < groups; gi++)
        {
            var seg = new ArraySegment<float>(matrix, gi * per, per);
            var (centroids, assign) = KMeans1D(seg.ToArray(), k, Seed + gi);
            Array.Copy(centroids, 0, books, gi * k, k);
            Array.Copy(assign, 0, indices, gi * per, per);
        }
        return new Palette(indices, books, rows, columns, bits, groupSize);
    }

    /// <summary>1-D k-means: <paramref name="k"/> sorted centroids (unused ones repeat the last) and each value's centroid.</summary>
    public static (float[] Centroids, int[] Assign) KMeans1D(float[] values, int k, int seed)
    {
        int n = values.Length;
        var order = Enumerable.Range(0, n).ToArray();
        var sorted = (float[])values.Clone();
        Array.Sort(sorted, order);
        var prefix = new double[n + 1];
        for (int i = 0; i < n; i++) prefix[i + 1] = prefix[i] + sorted[i];
        var distinct = new List<float>();
        for (int i = 0; i < n; i++) if (i == 0 || sorted[i] != sorted[i - 1]) distinct.Add(sorted[i]);

        float[] c;
        if (distinct.Count <= k) c = [.. distinct];
        else
        {
            // k-means++ on a deterministic subsample (at most 65,536 points) for the seeds.
            var rng = new Random(seed);
            int step = Math.Max(1, n / 65536);
            var pts = new List<float>();
            for (int i = 0; i < n; i += step) pts.Add(sorted[i]);
            var d2 = new double[pts.Count];
            var chosen = new List<float> { pts[rng.Next(pts.Count)] };
            for (int i = 0; i < pts.Count; i++) d2[i] = Sq(pts[i] - chosen[0]);
            while (chosen.Count < k)
            {
                double total = d2.Sum();
                if (total <= 0) break;
                double r = rng.NextDouble() * total;
                int pick = 0;
                for (double acc = 0; pick < pts.Count - 1; pick++) { acc += d2[pick]; if (acc >= r) break; }
                chosen.Add(pts[pick]);
                for (int i = 0; i < pts.Count; i++) d2[i] = Math.Min(d2[i], Sq(pts[i] - pts[pick]));
            }
            c = chosen.Distinct().Order().ToArray();
            // Lloyd: boundaries are midpoints of sorted centroids; each cluster is a contiguous run of sorted values.
            var bounds = new int[c.Length + 1];
            for (int it = 0; it < MaxIterations; it++)
            {
                Bounds(sorted, c, bounds);
                bool moved = false;
                var next = new List<float>(c.Length);
                for (int j = 0; j < c.Length; j++)
                {
                    int a = bounds[j], b = bounds[j + 1];
                    if (b <= a) continue; // empty cluster: dropped
                    float m = (float)((prefix[b] - prefix[a]) / (b - a));
                    if (m != c[j]) moved = true;
                    next.Add(m);
                }
                moved |= next.Count != c.Length;
                c = [.. next.Distinct().Order()];
                if (!moved) break;
            }
        }
        var full = new float[k];
        for (int j = 0; j < k; j++) full[j] = c[Math.Min(j, c.Length - 1)];
        var assign = new int[n];
        var bnd = new int[c.Length + 1];
        Bounds(sorted, c, bnd);
        for (int j = 0; j < c.Length; j++)
            for (int i = bnd[j]; i < bnd[j + 1]; i++) assign[order[i]] = j;
        return (full, assign);
    }

    private static double Sq(double x) => x * x;

    private static void Bounds(float[] sorted, float[] c, int[] bounds)
    {
        bounds[0] = 0;
        bounds[c.Length] = sorted.Length;
        for (int j = 1; j < c.Length; j++)
        {
            float mid = (c[j - 1] + c[j]) / 2;
            int lo = bounds[j - 1], hi = sorted.Length;
            while (lo < hi) { int m = (lo + hi) >> 1; if (sorted[m] < mid) lo = m + 1; else hi = m; }
            bounds[j] = lo;
        }
    }

    /// <summary>Replaces the site's weight initializer by the palette decoder; returns the opset it needs.</summary>
    internal static long Emit(GraphEdit edit, WeightSite site, Palette p)
    {
        string w = site.WeightName;
        edit.RemoveInitializer(w);
        var dt = p.Bits <= 4 ? DType.UInt4 : DType.UInt8;
        long opset = p.Bits <= 4 ? 21 : 1;
        if (p.GroupSize == 0)
        {
            var idx = Layout.Permute(p.Indices, site.PermutedDims, Layout.Inverse(site.Perm));
            string qn = edit.AddQuantized(w + "_indices", idx, site.Tensor.Dims, dt);
            string cb = edit.AddFloats(w + "_codebook", p.Codebooks, [p.K]);
            string i32 = edit.Fresh(w + "_indices_i32");
            edit.Prefix.Add(edit.Node("Cast", [qn], [i32], w + "_Cast").With(Core.Attribute.Of("to", (long)DType.Int32)));
            edit.Prefix.Add(edit.Node("Gather", [cb, i32], [w], w + "_Gather").With(Core.Attribute.Of("axis", 0L)));
            return opset;
        }
        int groups = p.Rows / p.GroupSize;
        string qg = edit.AddQuantized(w + "_indices", p.Indices, [groups, (long)p.GroupSize * p.Columns, 1], dt);
        string cbg = edit.AddFloats(w + "_codebook", p.Codebooks, [groups, p.K]);
        string i64 = edit.Fresh(w + "_indices_i64"), flat = edit.Fresh(w + "_grouped");
        edit.Prefix.Add(edit.Node("Cast", [qg], [i64], w + "_Cast").With(Core.Attribute.Of("to", (long)DType.Int64)));
        edit.Prefix.Add(edit.Node("GatherND", [cbg, i64], [flat], w + "_GatherND").With(Core.Attribute.Of("batch_dims", 1L)));
        bool transpose = !site.IdentityPerm;
        string shaped = transpose ? edit.Fresh(w + "_shaped") : w;
        edit.Prefix.Add(edit.Node("Reshape", [flat, edit.AddInts(w + "_shape", site.PermutedDims)], [shaped], w + "_Reshape"));
        if (transpose)
            edit.Prefix.Add(edit.Node("Transpose", [shaped], [w], w + "_Transpose").With(Core.Attribute.Of("perm", Layout.Inverse(site.Perm).Select(i => (long)i).ToArray())));
        return Math.Max(opset, 12);
    }
}
