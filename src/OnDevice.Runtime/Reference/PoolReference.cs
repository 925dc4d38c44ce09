namespace OnDevice.Runtime.Reference;

/// <summary>Scalar definitions of the pooling operators over any number of spatial dimensions (input [N, C, D1..Dn]).</summary>
public static class PoolReference
{
    /// <summary>The kind of pooling.</summary>
    public enum Kind
    {
        /// <summary>Maximum of the real (unpadded) elements.</summary>
        Max,
        /// <summary>Mean of the real elements.</summary>
        AverageExcludePad,
        /// <summary>Sum of the real elements divided by the window positions inside the padded input.</summary>
        AverageIncludePad,
        /// <summary>(Σ |x|^p)^(1/p) over the real elements.</summary>
        Lp,
    }

    /// <summary>
    /// Pools x with the given window; <paramref name="outDims"/> are the output spatial sizes. Window element i along an axis
    /// sits at o·stride − padBegin + i·dilation. For <see cref="Kind.Max"/> also returns the flat input index of each
    /// maximum (row-major, or column-major within the spatial plane when <paramref name="columnMajor"/>).
    /// </summary>
    public static (double[] Values, long[] Indices) Pool(ReadOnlySpan<double> x, int[] xShape, Kind kind, int[] kernel, int[] strides,
        int[] padBegin, int[] padEnd, int[] dilations, int[] outDims, double p = 2, bool columnMajor = false)
    {
        int r = xShape.Length - 2, planes = xShape[0] * xShape[1];
        var inDims = xShape[2..];
        int inSize = inDims.Aggregate(1, (a, d) => a * d), outSize = outDims.Aggregate(1, (a, d) => a * d);
        int kSize = kernel.Aggregate(1, (a, d) => a * d);
        var y = new double[planes * outSize];
        var idx = new long[planes * outSize];
        var o = new int[r];
        var k = new int[r];
        var pos = new int[r];
        for (int plane = 0; plane < planes; plane++)
            for (int op = 0; op < outSize; op++)
            {
                Unflatten(op, outDims, o);
                double acc = kind == Kind.Max ? double.NegativeInfinity : 0;
                long best = -1;
                int real = 0, padded = 0;
                for (int kp = 0; kp < kSize; kp++)
                {
                    Unflatten(kp, kernel, k);
                    bool inside = true, insidePadded = true;
                    for (int i = 0; i < r; i++)
                    {
                        pos[i] = o[i] * strides[i] - padBegin[i] + k[i] * dilations[i];
                        if (pos[i] < 0 || pos[i] >= inDims[i]) inside = false;
                        if (pos[i] < -padBegin[i] || pos[i] >= inDims[i] + padEnd[i]) insidePadded = false;
                    }
                    if (insidePadded) padded++;
                    if (!inside) continue;
                    real++;
                    int flat = 0;
                    for (int i = 0; i < r; i++) flat = flat * inDims[i] + pos[i];
                    double v = x[plane * inSize + flat];
                    switch (kind)
                    {
                        case Kind.Max:
                            if (v > acc || best < 0)
                            {
                                acc = v;
                                int stored = flat;
                                if (columnMajor)
                                {
                                    stored = 0;
                                    for (int i = r - 1; i >= 0; i--) stored = stored * inDims[i] + pos[i];
                                }
                                best = (long)plane * inSize + stored;
                            }
                            break;
                        case Kind.Lp:
                            acc += Math.Pow(Math.Abs(v), p);
                            break;
                        default:
                            acc += v;
                            break;
                    }
                }
                y[plane * outSize + op] = kind switch
                {
                    Kind.AverageExcludePad => acc / real,
                    Kind.AverageIncludePad => acc / padded,
                    Kind.Lp => Math.Pow(acc, 1 / p),
                    _ => acc,
                };
                idx[plane * outSize + op] = best;
            }
        return (y, idx);
    }

    private static void Unflatten(int index, int[] dims, int[] coords)
    {
        for (int i = dims.Length - 1; i >= 0; i--)
        {
            coords[i] = index % dims[i];
            index /= dims[i];
        }
    }
}
