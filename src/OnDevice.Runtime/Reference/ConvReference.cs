using OnDevice.Runtime.Simd;

namespace OnDevice.Runtime.Reference;

/// <summary>Scalar definitions of convolution and transposed convolution over any number of spatial dimensions.</summary>
public static class ConvReference
{
    /// <summary>
    /// ONNX Conv: x [N, C, D1..Dn], w [M, C/group, K1..Kn], optional bias [M]; explicit begin/end pads. Returns y [N, M, O1..On]
    /// with O = floor((D + padBegin + padEnd − ((K − 1)·dilation + 1)) / stride) + 1, then the activation.
    /// </summary>
    public static (float[] Values, int[] Shape) Conv(ReadOnlySpan<float> x, int[] xShape, ReadOnlySpan<float> w, int[] wShape,
        ReadOnlySpan<float> bias, int[] strides, int[] padBegin, int[] padEnd, int[] dilations, int group, FusedActivation activation = default)
    {
        int r = xShape.Length - 2;
        int n = xShape[0], c = xShape[1], m = wShape[0], cg = wShape[1], mg = m / group;
        if (cg * group != c) throw new ArgumentException("channels do not match the weight and group");
        var inDims = xShape[2..];
        var k = wShape[2..];
        var outDims = new int[r];
        for (int i = 0; i < r; i++)
            outDims[i] = (inDims[i] + padBegin[i] + padEnd[i] - ((k[i] - 1) * dilations[i] + 1)) / strides[i] + 1;
        int inSize = inDims.Aggregate(1, (p, d) => p * d), outSize = outDims.Aggregate(1, (p, d) => p * d);
        int kSize = k.Aggregate(1, (p, d) => p * d);
        var y = new float[n * m * outSize];
        var o = new int[r];
        var kk = new int[r];
        for (int b = 0; b < n; b++)
            for (int oc = 0; oc < m; oc++)
            {
                int g = oc / mg;
                for (int op = 0; op < outSize; op++)
                {
                    Unflatten(op, outDims, o);
                    double s = bias.Length > 0 ? bias[oc] : 0;
                    for (int ic = 0; ic < cg; ic++)
                        for (int kp = 0; kp < kSize; kp++)
                        {
                            Unflatten(kp, k, kk);
                            int ip = 0;
                            bool inside = true;
                            for (int i = 0; i < r; i++)
                            {
                                int pos = o[i] * strides[i] - padBegin[i] + kk[i] * dilations[i];
                                if (pos < 0 || pos >= inDims[i]) { inside = false; break; }
                                ip = ip * inDims[i] + pos;
                            }
                            if (!inside) continue;
                            s += (double)x[(b * c + g * cg + ic) * inSize + ip] * w[(oc * cg + ic) * kSize + kp];
                        }
                    y[(b * m + oc) * outSize + op] = GemmReference.Activate((float)s, activation);
                }
            }
        return (y, [n, m, .. outDims]);
    }

    /// <summary>
    /// ONNX ConvTranspose: x [N, C, D1..Dn], w [C, M/group, K1..Kn], optional bias [M]; explicit pads and output sizes
    /// <paramref name="outDims"/>. Every input element scatters x·w into y at o = i·stride − padBegin + k·dilation.
    /// </summary>
    public static (float[] Values, int[] Shape) ConvTranspose(ReadOnlySpan<float> x, int[] xShape, ReadOnlySpan<float> w, int[] wShape,
        ReadOnlySpan<float> bias, int[] strides, int[] padBegin, int[] dilations, int group, int[] outDims)
    {
        int r = xShape.Length - 2;
        int n = xShape[0], c = xShape[1], cg = c / group, mg = wShape[1], m = mg * group;
        var inDims = xShape[2..];
        var k = wShape[2..];
        int inSize = inDims.Aggregate(1, (p, d) => p * d), outSize = outDims.Aggregate(1, (p, d) => p * d);
        int kSize = k.Aggregate(1, (p, d) => p * d);
        var acc = new double[n * m * outSize];
        var ii = new int[r];
        var kk = new int[r];
        for (int b = 0; b < n; b++)
            for (int ic = 0; ic < c; ic++)
            {
                int g = ic / cg;
                for (int ip = 0; ip < inSize; ip++)
                {
                    Unflatten(ip, inDims, ii);
                    double xv = x[(b * c + ic) * inSize + ip];
                    for (int om = 0; om < mg; om++)
                        for (int kp = 0; kp < kSize; kp++)
                        {
                            Unflatten(kp, k, kk);
                            int op = 0;
                            bool inside = true;
                            for (int i = 0; i < r; i++)
                            {
                                int pos = ii[i] * strides[i] - padBegin[i] + kk[i] * dilations[i];
                                if (pos < 0 || pos >= outDims[i]) { inside = false; break; }
                                op = op * outDims[i] + pos;
                            }
                            if (!inside) continue;
                            acc[(b * m + g * mg + om) * outSize + op] += xv * w[(ic * mg + om) * kSize + kp];
                        }
                }
            }
        var y = new float[acc.Length];
        for (int i = 0; i < y.Length; i++) y[i] = (float)(acc[i] + (bias.Length > 0 ? bias[i / outSize % m] : 0));
        return (y, [n, m, .. outDims]);
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
