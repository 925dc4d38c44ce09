namespace OnDevice.Runtime.Reference;

/// <summary>Scalar definitions (in double) of the normalization operators.</summary>
public static class NormalizationReference
{
    /// <summary>Inference BatchNormalization on x [N, C, ...]: scale·(x − mean)/√(var + ε) + bias, per channel.</summary>
    public static double[] BatchNorm(ReadOnlySpan<double> x, int[] shape, ReadOnlySpan<double> scale, ReadOnlySpan<double> bias,
        ReadOnlySpan<double> mean, ReadOnlySpan<double> variance, double epsilon)
    {
        int n = shape[0], c = shape.Length > 1 ? shape[1] : 1, size = shape.Skip(2).Aggregate(1, (p, d) => p * d);
        var y = new double[x.Length];
        for (int i = 0; i < n; i++)
            for (int ch = 0; ch < c; ch++)
                for (int s = 0; s < size; s++)
                {
                    int at = (i * c + ch) * size + s;
                    y[at] = scale[ch] * (x[at] - mean[ch]) / Math.Sqrt(variance[ch] + epsilon) + bias[ch];
                }
        return y;
    }

    /// <summary>InstanceNormalization on x [N, C, ...]: statistics per (n, c) over the spatial positions.</summary>
    public static double[] InstanceNorm(ReadOnlySpan<double> x, int[] shape, ReadOnlySpan<double> scale, ReadOnlySpan<double> bias, double epsilon)
    {
        int n = shape[0], c = shape[1], size = shape.Skip(2).Aggregate(1, (p, d) => p * d);
        var y = new double[x.Length];
        for (int plane = 0; plane < n * c; plane++)
        {
            var v = x.Slice(plane * size, size);
            double mean = 0, var = 0;
            foreach (var e in v) mean += e;
            mean /= size;
            foreach (var e in v) var += (e - mean) * (e - mean);
            var /= size;
            int ch = plane % c;
            for (int s = 0; s < size; s++)
                y[plane * size + s] = scale[ch] * (v[s] - mean) / Math.Sqrt(var + epsilon) + bias[ch];
        }
        return y;
    }

    /// <summary>
    /// LayerNormalization over the trailing dimensions from <paramref name="axis"/>: scale and bias have the normalized
    /// size (bias may be empty). Also returns the per-row mean and 1/√(var + ε).
    /// </summary>
    public static (double[] Y, double[] Mean, double[] InvStd) LayerNorm(ReadOnlySpan<double> x, int[] shape, int axis,
        ReadOnlySpan<double> scale, ReadOnlySpan<double> bias, double epsilon)
    {
        if (axis < 0) axis += shape.Length;
        int rows = shape.Take(axis).Aggregate(1, (p, d) => p * d), size = shape.Skip(axis).Aggregate(1, (p, d) => p * d);
        var y = new double[x.Length];
        var means = new double[rows];
        var inv = new double[rows];
        for (int r = 0; r < rows; r++)
        {
            var v = x.Slice(r * size, size);
            double mean = 0, var = 0;
            foreach (var e in v) mean += e;
            mean /= size;
            foreach (var e in v) var += (e - mean) * (e - mean);
            var /= size;
            double invStd = 1 / Math.Sqrt(var + epsilon);
            means[r] = mean;
            inv[r] = invStd;
            for (int s = 0; s < size; s++)
                y[r * size + s] = (v[s] - mean) * invStd * scale[s] + (bias.Length > 0 ? bias[s] : 0);
        }
        return (y, means, inv);
    }

    /// <summary>LRN across channels: x / (bias + α/size · Σ x²)^β with the window [c − ⌊(size−1)/2⌋, c + ⌈(size−1)/2⌉].</summary>
    public static double[] Lrn(ReadOnlySpan<double> x, int[] shape, int size, double alpha, double beta, double bias)
    {
        int n = shape[0], c = shape[1], plane = shape.Skip(2).Aggregate(1, (p, d) => p * d);
        int before = (size - 1) / 2, after = size - 1 - before;
        var y = new double[x.Length];
        for (int i = 0; i < n; i++)
            for (int ch = 0; ch < c; ch++)
                for (int s = 0; s < plane; s++)
                {
                    double sum = 0;
                    for (int k = Math.Max(0, ch - before); k <= Math.Min(c - 1, ch + after); k++)
                    {
                        double v = x[(i * c + k) * plane + s];
                        sum += v * v;
                    }
                    int at = (i * c + ch) * plane + s;
                    y[at] = x[at] / Math.Pow(bias + alpha / size * sum, beta);
                }
        return y;
    }
}
