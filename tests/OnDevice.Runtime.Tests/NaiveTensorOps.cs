namespace OnDevice.Runtime.Tests;

/// <summary>Naive index-arithmetic definitions of the data-movement operators, for checking the kernels.</summary>
public static class NaiveTensorOps
{
    public static int Count(int[] shape) => shape.Aggregate(1, (p, d) => p * d);

    public static int[] Unravel(int i, int[] shape)
    {
        var idx = new int[shape.Length];
        for (int d = shape.Length - 1; d >= 0; d--) { idx[d] = i % shape[d]; i /= shape[d]; }
        return idx;
    }

    public static int Ravel(int[] idx, int[] shape)
    {
        int off = 0;
        for (int d = 0; d < shape.Length; d++) off = off * shape[d] + idx[d];
        return off;
    }

    public static T[] Transpose<T>(T[] x, int[] shape, int[] perm)
    {
        var outShape = perm.Select(p => shape[p]).ToArray();
        var y = new T[x.Length];
        for (int i = 0; i < y.Length; i++)
        {
            var o = Unravel(i, outShape);
            var src = new int[shape.Length];
            for (int d = 0; d < perm.Length; d++) src[perm[d]] = o[d];
            y[i] = x[Ravel(src, shape)];
        }
        return y;
    }

    /// <summary>numpy-style slicing: for each axis, the list of indices taken.</summary>
    public static (T[] Values, int[] Shape) Take<T>(T[] x, int[] shape, int[][] taken)
    {
        var outShape = taken.Select(t => t.Length).ToArray();
        var y = new T[Count(outShape)];
        for (int i = 0; i < y.Length; i++)
        {
            var o = Unravel(i, outShape);
            y[i] = x[Ravel(o.Select((v, d) => taken[d][v]).ToArray(), shape)];
        }
        return (y, outShape);
    }

    /// <summary>The indices a Slice takes along one axis, by walking from start toward end.</summary>
    public static int[] SliceIndices(int dim, long start, long end, long step)
    {
        if (start < 0) start += dim;
        if (end < 0) end += dim;
        var r = new List<int>();
        if (step > 0)
        {
            start = Math.Clamp(start, 0, dim);
            end = Math.Clamp(end, 0, dim);
            for (long i = start; i < end; i += step) r.Add((int)i);
        }
        else if (dim > 0)
        {
            start = Math.Clamp(start, 0, dim - 1);
            end = Math.Clamp(end, -1, dim - 1);
            for (long i = start; i > end; i += step) r.Add((int)i);
        }
        return [.. r];
    }

    public static (T[] Values, int[] Shape) Pad<T>(T[] x, int[] shape, long[] begin, long[] end, string mode, T value)
    {
        var outShape = shape.Select((d, i) => (int)(d + begin[i] + end[i])).ToArray();
        var y = new T[Count(outShape)];
        for (int i = 0; i < y.Length; i++)
        {
            var o = Unravel(i, outShape);
            var src = new int[shape.Length];
            bool constant = false;
            for (int d = 0; d < shape.Length; d++)
            {
                long k = o[d] - begin[d];
                int n = shape[d];
                if (k >= 0 && k < n) { src[d] = (int)k; continue; }
                switch (mode)
                {
                    case "constant": constant = true; break;
                    case "edge": src[d] = (int)Math.Clamp(k, 0, n - 1); break;
                    case "wrap": src[d] = (int)(((k % n) + n) % n); break;
                    default:
                        // reflect: bounce off the ends until inside
                        while (k < 0 || k >= n) k = k < 0 ? -k : 2 * (n - 1) - k;
                        src[d] = (int)k;
                        break;
                }
            }
            y[i] = constant ? value : x[Ravel(src, shape)];
        }
        return (y, outShape);
    }

    public static (T[] Values, int[] Shape) Expand<T>(T[] x, int[] shape, int[] target)
    {
        int rank = Math.Max(shape.Length, target.Length);
        var a = Enumerable.Repeat(1, rank - shape.Length).Concat(shape).ToArray();
        var b = Enumerable.Repeat(1, rank - target.Length).Concat(target).ToArray();
        var outShape = a.Select((d, i) => d == 1 ? b[i] : d).ToArray();
        var y = new T[Count(outShape)];
        for (int i = 0; i < y.Length; i++)
        {
            var o = Unravel(i, outShape);
            y[i] = x[Ravel(o.Select((v, d) => a[d] == 1 ? 0 : v).ToArray(), a)];
        }
        return (y, outShape);
    }

    public static (T[] Values, int[] Shape) Tile<T>(T[] x, int[] shape, int[] reps)
    {
        var outShape = shape.Select((d, i) => d * reps[i]).ToArray();
        var y = new T[Count(outShape)];
        for (int i = 0; i < y.Length; i++)
        {
            var o = Unravel(i, outShape);
            y[i] = x[Ravel(o.Select((v, d) => v % shape[d]).ToArray(), shape)];
        }
        return (y, outShape);
    }

    public static (T[] Values, int[] Shape) Gather<T>(T[] x, int[] shape, long[] indices, int[] indexShape, int axis)
    {
        var outShape = shape.Take(axis).Concat(indexShape).Concat(shape.Skip(axis + 1)).ToArray();
        var y = new T[Count(outShape)];
        for (int i = 0; i < y.Length; i++)
        {
            var o = Unravel(i, outShape);
            var ii = o.Skip(axis).Take(indexShape.Length).ToArray();
            long k = indices[Ravel(ii, indexShape)];
            if (k < 0) k += shape[axis];
            var src = o.Take(axis).Append((int)k).Concat(o.Skip(axis + indexShape.Length)).ToArray();
            y[i] = x[Ravel(src, shape)];
        }
        return (y, outShape);
    }

    /// <summary>DepthToSpace by the ONNX formula (DCR or CRD).</summary>
    public static T[] DepthToSpace<T>(T[] x, int[] shape, int b, bool crd)
    {
        int n = shape[0], c = shape[1], h = shape[2], w = shape[3], oc = c / (b * b);
        var y = new T[x.Length];
        for (int ni = 0; ni < n; ni++)
            for (int co = 0; co < oc; co++)
                for (int yi = 0; yi < h * b; yi++)
                    for (int xi = 0; xi < w * b; xi++)
                    {
                        int by = yi % b, bx = xi % b;
                        int ci = crd ? co * b * b + by * b + bx : (by * b + bx) * oc + co;
                        y[((ni * oc + co) * h * b + yi) * w * b + xi] = x[((ni * c + ci) * h + yi / b) * w + xi / b];
                    }
        return y;
    }
}
