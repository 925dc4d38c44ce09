namespace OnDevice.Runtime.Reference;

/// <summary>Interpolation of <c>Resize</c>.</summary>
public enum ResizeMode
{
    /// <summary>Nearest neighbour.</summary>
    Nearest,
    /// <summary>Linear (bilinear, trilinear, ...).</summary>
    Linear,
    /// <summary>Cubic convolution with coefficient A.</summary>
    Cubic,
}

/// <summary>How an output coordinate maps back to an input coordinate (ONNX <c>coordinate_transformation_mode</c>).</summary>
public enum ResizeCoordinates
{
    /// <summary>(x + 0.5) / scale - 0.5.</summary>
    HalfPixel,
    /// <summary>half_pixel, shifted so the implicit region's centre maps to the output's centre (opset 19).</summary>
    HalfPixelSymmetric,
    /// <summary>half_pixel, but 0 when the output length is 1.</summary>
    PytorchHalfPixel,
    /// <summary>x * (in - 1) / (out - 1).</summary>
    AlignCorners,
    /// <summary>x / scale.</summary>
    Asymmetric,
    /// <summary>(x + 0.5) / scale (deprecated in opset 13).</summary>
    TfHalfPixelForNn,
    /// <summary>Samples the region of interest; outside the input, the extrapolation value.</summary>
    TfCropAndResize,
}

/// <summary>How nearest mode rounds an input coordinate.</summary>
public enum ResizeNearest
{
    /// <summary>Round half down.</summary>
    RoundPreferFloor,
    /// <summary>Round half up.</summary>
    RoundPreferCeil,
    /// <summary>Floor.</summary>
    Floor,
    /// <summary>Ceiling.</summary>
    Ceil,
    /// <summary>Resize-10 and Upsample: truncate, or ceiling when downsampling.</summary>
    Simple,
}

/// <summary>Everything that defines one resize, per axis of the full rank.</summary>
/// <param name="Mode">Interpolation.</param>
/// <param name="Coordinates">Coordinate transformation.</param>
/// <param name="Nearest">Rounding for nearest mode.</param>
/// <param name="CubicA">Cubic coefficient A.</param>
/// <param name="ExcludeOutside">Zero the weights of taps outside the input and renormalize.</param>
/// <param name="Extrapolation">Value outside the input for tf_crop_and_resize.</param>
/// <param name="Scales">Scale per axis (given, or requested size / input length in float32 as ONNX Runtime computes it).</param>
/// <param name="OutputShape">Output length per axis.</param>
/// <param name="ResizedLengths">The "length_resized" of the coordinate formulas per axis: the requested size, or scale × input length when scales were given (as the ONNX reference defines it).</param>
/// <param name="RoiStart">Region of interest start per axis (tf_crop_and_resize).</param>
/// <param name="RoiEnd">Region of interest end per axis.</param>
public sealed record ResizeSpec(ResizeMode Mode, ResizeCoordinates Coordinates, ResizeNearest Nearest, double CubicA, bool ExcludeOutside,
    double Extrapolation, float[] Scales, int[] OutputShape, float[] ResizedLengths, float[] RoiStart, float[] RoiEnd);

/// <summary>
/// Scalar definition of <c>Resize</c> following the ONNX reference implementation literally: for every output
/// element, 1-D interpolations along the last axis, then the one before, and so on, each picking its taps among
/// the nearest indices of an edge-padded line. An axis whose scale is 1 is copied unchanged (as ONNX Runtime does)
/// unless the mode is tf_crop_and_resize.
/// </summary>
public static class ResizeReference
{
    /// <summary>
    /// The input coordinate of output index <paramref name="x"/> along one axis. Computed in float32 arithmetic in
    /// the order ONNX Runtime uses, so nearest-neighbour ties (and the data they pick) come out the same.
    /// <paramref name="lengthResized"/> is the requested size, or scale × input length when scales are given;
    /// <paramref name="outLength"/> the integer output length.
    /// </summary>
    public static float OriginalCoordinate(ResizeCoordinates mode, int x, float scale, float lengthResized, int outLength, int lengthOriginal, float roiStart, float roiEnd)
    {
        float xr = x, lo = lengthOriginal;
        switch (mode)
        {
            case ResizeCoordinates.HalfPixel: return (xr + 0.5f) / scale - 0.5f;
            case ResizeCoordinates.HalfPixelSymmetric:
                float adjustment = outLength / (scale * lo);
                float offset = lo / 2 * (1 - adjustment);
                return (float)(offset + (xr + 0.5) / scale - 0.5);
            case ResizeCoordinates.PytorchHalfPixel: return lengthResized > 1 ? (xr + 0.5f) / scale - 0.5f : 0f;
            case ResizeCoordinates.AlignCorners: return lengthResized == 1 ? 0f : xr * (lo - 1) / (lengthResized - 1);
            case ResizeCoordinates.Asymmetric: return xr / scale;
            case ResizeCoordinates.TfHalfPixelForNn: return (xr + 0.5f) / scale;
            case ResizeCoordinates.TfCropAndResize:
                return lengthResized > 1
                    ? roiStart * (lo - 1) + xr * (roiEnd - roiStart) * (lo - 1) / (lengthResized - 1)
                    : (float)(0.5 * (roiStart + roiEnd) * (lo - 1));
            default: throw new ArgumentOutOfRangeException(nameof(mode));
        }
    }

    /// <summary>Cubic convolution weights of the four taps floor(x)-1 .. floor(x)+2 for fractional part <paramref name="t"/>.</summary>
    public static double[] CubicCoefficients(double t, double a) =>
    [
        ((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a,
        ((a + 2) * t - (a + 3)) * t * t + 1,
        ((a + 2) * (1 - t) - (a + 3)) * (1 - t) * (1 - t) + 1,
        ((a * ((1 - t) + 1) - 5 * a) * ((1 - t) + 1) + 8 * a) * ((1 - t) + 1) - 4 * a,
    ];

    /// <summary>Resizes <paramref name="x"/> (shape <paramref name="shape"/>) as <paramref name="spec"/> says.</summary>
    public static double[] Resize(ReadOnlySpan<double> x, int[] shape, ResizeSpec spec)
    {
        int rank = shape.Length;
        var outShape = spec.OutputShape;
        long n = 1;
        foreach (var d in outShape) n *= d;
        var result = new double[n];
        var coord = new int[rank];
        var data = x.ToArray();
        for (long i = 0; i < n; i++)
        {
            long rem = i;
            for (int d = rank - 1; d >= 0; d--) { coord[d] = (int)(rem % outShape[d]); rem /= outShape[d]; }
            result[i] = InterpolateNd(data, 0, shape, 0, coord, spec);
        }
        return result;
    }

    // Interpolates the sub-tensor starting at element `offset`, spanning axes [axis, rank), at output coordinate coord[axis..].
    private static double InterpolateNd(double[] data, int offset, int[] shape, int axis, int[] coord, ResizeSpec spec)
    {
        int rank = shape.Length;
        int inner = 1;
        for (int d = axis + 1; d < rank; d++) inner *= shape[d];
        var line = new double[shape[axis]];
        for (int i = 0; i < line.Length; i++)
            line[i] = axis == rank - 1 ? data[offset + i] : InterpolateNd(data, offset + i * inner, shape, axis + 1, coord, spec);
        return Interpolate1d(line, axis, coord[axis], spec);
    }

    private static double Interpolate1d(double[] line, int axis, int x, ResizeSpec spec)
    {
        int len = line.Length;
        if (spec.Scales[axis] == 1 && spec.Coordinates != ResizeCoordinates.TfCropAndResize) return line[x];
        double xo = OriginalCoordinate(spec.Coordinates, x, spec.Scales[axis], spec.ResizedLengths[axis], spec.OutputShape[axis], len, spec.RoiStart[axis], spec.RoiEnd[axis]);
        if (spec.Coordinates == ResizeCoordinates.TfCropAndResize && (xo < 0 || xo > len - 1)) return spec.Extrapolation;
        if (spec.Mode == ResizeMode.Nearest && spec.Nearest == ResizeNearest.Simple)
        {
            int k = spec.Scales[axis] < 1 ? (int)Math.Ceiling(xo) : (int)xo;
            return line[Math.Clamp(k, 0, len - 1)];
        }
        double fl = Math.Floor(xo);
        double ratio = xo == fl ? 1 : xo - fl;
        double[] coeffs = spec.Mode switch
        {
            ResizeMode.Nearest => ratio == 1 ? [0, 1] : spec.Nearest switch
            {
                ResizeNearest.RoundPreferFloor => ratio <= 0.5 ? [1, 0] : [0, 1],
                ResizeNearest.RoundPreferCeil => ratio < 0.5 ? [1, 0] : [0, 1],
                ResizeNearest.Floor => [1, 0],
                _ => [0, 1],
            },
            ResizeMode.Linear => [1 - ratio, ratio],
            _ => CubicCoefficients(ratio, spec.CubicA),
        };
        int taps = coeffs.Length;
        // The `taps` indices of the edge-padded line nearest to xo, ties to the lower index, in ascending order.
        int pad = (taps + 1) / 2;
        double xp = xo + pad;
        var idx = Enumerable.Range(0, len + 2 * pad).OrderBy(i => Math.Abs(xp - i)).ThenBy(i => i).Take(taps).Order().ToArray();
        if (spec.ExcludeOutside)
        {
            double sum = 0;
            for (int k = 0; k < taps; k++)
            {
                int orig = idx[k] - pad;
                if (orig < 0 || orig >= len) coeffs[k] = 0;
                sum += coeffs[k];
            }
            for (int k = 0; k < taps; k++) coeffs[k] /= sum;
        }
        double r = 0;
        for (int k = 0; k < taps; k++) r += coeffs[k] * line[Math.Clamp(idx[k] - pad, 0, len - 1)];
        return r;
    }
}
