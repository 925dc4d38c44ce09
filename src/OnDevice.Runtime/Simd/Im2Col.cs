using System.Runtime.CompilerServices;

namespace OnDevice.Runtime.Simd;

/// <summary>
/// The convolution operand B[K, N] of one image and one group, produced on the fly from the input (im2col): row
/// k = (c, kd, kh, kw) of the window, column j = (od, oh, ow) of the output; padding reads as zero. Blocks are packed
/// straight into GEMM panels, so the full K×N matrix never exists. Up to three spatial dimensions (1-D and 2-D pass
/// leading sizes of 1).
/// </summary>
public readonly unsafe struct Im2ColB : IGemmB
{
    private readonly float* _x;
    private readonly int _c, _d, _h, _w;
    private readonly int _kd, _kh, _kw;
    private readonly int _sd, _sh, _sw;
    private readonly int _pd, _ph, _pw;
    private readonly int _dd, _dh, _dw;
    private readonly int _od, _oh, _ow;

    /// <summary>Describes the image at <paramref name="x"/> (channels × d × h × w floats) and the window.</summary>
    /// <param name="x">First input channel of the group.</param>
    /// <param name="channels">Input channels of the group.</param>
    /// <param name="inDims">Input spatial sizes (d, h, w).</param>
    /// <param name="kernel">Window sizes (d, h, w).</param>
    /// <param name="strides">Strides (d, h, w).</param>
    /// <param name="padsBegin">Leading pads (d, h, w).</param>
    /// <param name="dilations">Dilations (d, h, w).</param>
    /// <param name="outDims">Output spatial sizes (d, h, w).</param>
    public Im2ColB(float* x, int channels, ReadOnlySpan<int> inDims, ReadOnlySpan<int> kernel, ReadOnlySpan<int> strides,
        ReadOnlySpan<int> padsBegin, ReadOnlySpan<int> dilations, ReadOnlySpan<int> outDims)
    {
        _x = x;
        _c = channels;
        (_d, _h, _w) = (inDims[0], inDims[1], inDims[2]);
        (_kd, _kh, _kw) = (kernel[0], kernel[1], kernel[2]);
        (_sd, _sh, _sw) = (strides[0], strides[1], strides[2]);
        (_pd, _ph, _pw) = (padsBegin[0], padsBegin[1], padsBegin[2]);
        (_dd, _dh, _dw) = (dilations[0], dilations[1], dilations[2]);
        (_od, _oh, _ow) = (outDims[0], outDims[1], outDims[2]);
    }

    /// <summary>Rows of B: channels × window size.</summary>
    public int K => _c * _kd * _kh * _kw;

    /// <summary>Columns of B: output positions.</summary>
    public int N => _od * _oh * _ow;

    /// <inheritdoc/>
    public bool UsesScratch => true;

    /// <inheritdoc/>
    public int* Offsets => null;

    /// <inheritdoc/>
    public float* Block(int k0, int kc, int j0, int nc, float* scratch, out nint panelStride)
    {
        int nr = Gemm.NR;
        panelStride = (nint)kc * nr;
        int window = _kd * _kh * _kw, plane = _kh * _kw;
        int tail = nc % nr;
        for (int kk = 0; kk < kc; kk++)
        {
            int k = k0 + kk;
            int c = k / window, rem = k - c * window;
            int kz = rem / plane;
            rem -= kz * plane;
            int ky = rem / _kw, kx = rem - ky * _kw;
            float* rowDst = scratch + (nint)kk * nr;
            // Walk the output positions j0 .. j0+nc in segments that stay within one output row and one panel.
            int j = j0;
            int oz = j / (_oh * _ow), oy = j / _ow % _oh, ox = j % _ow;
            int zOff = kz * _dd - _pd, yOff = ky * _dh - _ph, xOff = kx * _dw - _pw;
            float* chan = _x + (nint)c * _d * _h * _w;
            for (int jj = 0; jj < nc;)
            {
                int col = jj % nr;
                int len = Math.Min(Math.Min(nr - col, _ow - ox), nc - jj);
                float* dst = rowDst + jj / nr * panelStride + col;
                int iz = oz * _sd + zOff, iy = oy * _sh + yOff;
                if ((uint)iz >= (uint)_d || (uint)iy >= (uint)_h)
                    Zero(dst, len);
                else
                    Gather(chan + ((nint)iz * _h + iy) * _w, _w, ox * _sw + xOff, _sw, dst, len);
                jj += len;
                ox += len;
                if (ox == _ow)
                {
                    ox = 0;
                    if (++oy == _oh)
                    {
                        oy = 0;
                        oz++;
                    }
                }
            }
            if (tail != 0) Zero(rowDst + nc / nr * panelStride + tail, nr - tail);
        }
        return scratch;
    }

    /// <summary>dst[t] = row[ix0 + t·stride] for t in [0, len), zero where the index leaves [0, width).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Gather(float* row, int width, int ix0, int stride, float* dst, int len)
    {
        int lo = ix0 >= 0 ? 0 : Math.Min(len, (-ix0 + stride - 1) / stride);
        int hi = width - ix0 <= 0 ? 0 : Math.Min(len, (width - ix0 + stride - 1) / stride);
        if (hi < lo) hi = lo;
        for (int t = 0; t < lo; t++) dst[t] = 0;
        if (stride == 1) Gemm.Copy(row + ix0 + lo, dst + lo, hi - lo);
        else if (stride == 2) Strided.Deinterleave2(row + ix0 + 2 * lo, dst + lo, hi - lo);
        else
        {
            float* src = row + ix0;
            for (int t = lo; t < hi; t++) dst[t] = src[(nint)t * stride];
        }
        for (int t = hi; t < len; t++) dst[t] = 0;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Zero(float* dst, int len) => new Span<float>(dst, len).Clear();
}
