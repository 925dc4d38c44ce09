using System.Numerics;
using System.Runtime.InteropServices;
using OnDevice.Core;
using OnDevice.Runtime.Reference;
using OnDevice.Runtime.Simd;

namespace OnDevice.Runtime.Kernels.Tensors;

/// <summary>
/// Resize (opsets 10–19) and Upsample (7–9): nearest (every rounding mode, any element type), linear and cubic
/// (float32/float64, any number of axes) under every coordinate transformation, from scales or sizes, with
/// keep_aspect_ratio_policy and axes (opset 18). Scales, output sizes and input coordinates are computed in float32
/// in ONNX Runtime's order, so nearest-neighbour ties pick the same pixels as ORT; "length_resized" (align_corners,
/// pytorch_half_pixel, tf_crop_and_resize) is the requested size, or scale × input length when scales are given, as
/// the ONNX reference and its conformance tests define it (ORT uses the truncated output length there, so the two
/// differ when scale × length is not a whole number).
/// </summary>
internal static class ResizeKernels
{
    public static void Register(KernelRegistry r)
    {
        r.Add("Upsample", 7, TypeSets.All, ctx => new ResizeKernel(ctx, upsample: true), until: 9, supports: ctx => Support(ctx, upsample: true));
        r.Add("Resize", 10, TypeSets.All, ctx => new ResizeKernel(ctx, upsample: false), supports: ctx => Support(ctx, upsample: false));
    }

    private static readonly DType[] Interpolated = [DType.Float32, DType.Float64];

    private static string? Support(KernelBuildContext ctx, bool upsample)
    {
        var n = ctx.Node;
        var mode = n.GetString("mode", "nearest");
        if (mode is not ("nearest" or "linear" or "cubic" or "bilinear")) return $"{n.OpType} mode '{mode}' is not defined";
        if (mode == "cubic" && (upsample || ctx.Opset < 11)) return $"cubic mode needs Resize opset 11";
        if (mode == "bilinear" && !upsample) return "mode 'bilinear' is Upsample's; Resize uses 'linear'";
        if (mode != "nearest" && ctx.InputType(0) is { } t && !Interpolated.Contains(t))
            return $"{mode} interpolation of {t.Name()} is not supported (float32, float64)";
        if (!upsample && ctx.Opset >= 11)
        {
            var coords = n.GetString("coordinate_transformation_mode", "half_pixel");
            if (ParseCoordinates(coords) is null || (coords == "half_pixel_symmetric" && ctx.Opset < 19))
                return $"coordinate_transformation_mode '{coords}' is not defined at opset {ctx.Opset}";
            if (mode == "nearest" && ParseNearest(n.GetString("nearest_mode", "round_prefer_floor")) is null)
                return $"nearest_mode '{n.GetString("nearest_mode", "")}' is not defined";
            if (ctx.Opset >= 18 && n.GetInt("antialias", 0) != 0) return "antialias=1 is not supported";
            var policy = n.GetString("keep_aspect_ratio_policy", "stretch");
            if (policy is not ("stretch" or "not_larger" or "not_smaller")) return $"keep_aspect_ratio_policy '{policy}' is not defined";
        }
        if (upsample && ctx.Opset < 9 && n.GetFloatsOrNull("scales") is null) return "Upsample-7 needs the scales attribute";
        return null;
    }

    private static float[]? GetFloatsOrNull(this Node n, string name) => n.Attr(name) is { Kind: AttributeKind.Floats } a ? a.AsFloats() : null;

    private static ResizeCoordinates? ParseCoordinates(string s) => s switch
    {
        "half_pixel" => ResizeCoordinates.HalfPixel,
        "half_pixel_symmetric" => ResizeCoordinates.HalfPixelSymmetric,
        "pytorch_half_pixel" => ResizeCoordinates.PytorchHalfPixel,
        "align_corners" => ResizeCoordinates.AlignCorners,
        "asymmetric" => ResizeCoordinates.Asymmetric,
        "tf_half_pixel_for_nn" => ResizeCoordinates.TfHalfPixelForNn,
        "tf_crop_and_resize" => ResizeCoordinates.TfCropAndResize,
        _ => null,
    };

    private static ResizeNearest? ParseNearest(string s) => s switch
    {
        "round_prefer_floor" => ResizeNearest.RoundPreferFloor,
        "round_prefer_ceil" => ResizeNearest.RoundPreferCeil,
        "floor" => ResizeNearest.Floor,
        "ceil" => ResizeNearest.Ceil,
        _ => null,
    };

    /// <summary>The input index nearest mode reads for input coordinate <paramref name="x"/>, clamped to the axis.</summary>
    public static int NearestIndex(double x, ResizeNearest mode, double scale, int length)
    {
        double fl = Math.Floor(x);
        double k;
        if (mode == ResizeNearest.Simple) k = scale < 1 ? Math.Ceiling(x) : Math.Truncate(x);
        else if (x == fl) k = fl;
        else k = mode switch
        {
            ResizeNearest.RoundPreferFloor => x - fl <= 0.5 ? fl : fl + 1,
            ResizeNearest.RoundPreferCeil => x - fl < 0.5 ? fl : fl + 1,
            ResizeNearest.Floor => fl,
            _ => fl + 1,
        };
        return (int)Math.Clamp(k, 0, length - 1);
    }

    private sealed class ResizeKernel : IKernel
    {
        private readonly ResizeMode _mode;
        private readonly ResizeCoordinates _coords;
        private readonly ResizeNearest _nearest;
        private readonly double _cubicA;
        private readonly bool _exclude;
        private readonly double _extrapolation;
        private readonly int _policy; // 0 stretch, 1 not_larger, 2 not_smaller
        private readonly long[]? _axes;
        private readonly float[]? _scalesAttr;
        private readonly int _roiInput = -1, _scalesInput = -1, _sizesInput = -1;

        public ResizeKernel(KernelBuildContext ctx, bool upsample)
        {
            var n = ctx.Node;
            var mode = n.GetString("mode", "nearest");
            _mode = mode switch { "linear" or "bilinear" => ResizeMode.Linear, "cubic" => ResizeMode.Cubic, _ => ResizeMode.Nearest };
            if (upsample || ctx.Opset < 11)
            {
                _coords = ResizeCoordinates.Asymmetric;
                _nearest = ResizeNearest.Simple;
                if (upsample && ctx.Opset < 9) _scalesAttr = n.GetFloatsOrNull("scales");
                else _scalesInput = 1;
            }
            else
            {
                _coords = ParseCoordinates(n.GetString("coordinate_transformation_mode", "half_pixel"))!.Value;
                _nearest = ParseNearest(n.GetString("nearest_mode", "round_prefer_floor"))!.Value;
                _cubicA = n.GetFloat("cubic_coeff_a", -0.75f);
                _exclude = n.GetInt("exclude_outside", 0) != 0;
                _extrapolation = n.GetFloat("extrapolation_value", 0f);
                if (ctx.Opset >= 18)
                {
                    _policy = n.GetString("keep_aspect_ratio_policy", "stretch") switch { "not_larger" => 1, "not_smaller" => 2, _ => 0 };
                    _axes = n.GetInts("axes");
                }
                (_roiInput, _scalesInput, _sizesInput) = (1, 2, 3);
            }
        }

        public void Execute(KernelContext ctx)
        {
            var x = ctx.Required(0);
            var spec = Plan(ctx, x);
            var y = ctx.Output(0, x.DType, spec.OutputShape);
            if (y.Length == 0) return;
            if (x.Length == 0) throw new InvalidOperationException($"Resize: cannot resize empty {TensorBuffer.Format(x.Shape)} to {TensorBuffer.Format(spec.OutputShape)}");
            if (_mode == ResizeMode.Nearest) Nearest(ctx, x, y, spec);
            else if (x.DType == DType.Float32) Interpolate<float>(ctx, x, y, spec);
            else if (x.DType == DType.Float64) Interpolate<double>(ctx, x, y, spec);
            else throw new InvalidOperationException($"Resize: {_mode} interpolation of {x.DType.Name()} is not supported");
        }

        private ResizeSpec Plan(KernelContext ctx, TensorBuffer x)
        {
            int rank = x.Rank;
            if (rank == 0) throw new InvalidOperationException("Resize: the input must have at least one dimension");
            var axes = _axes is null ? Enumerable.Range(0, rank).ToArray() : TensorUtil.Axes(_axes, rank);
            var scales = Enumerable.Repeat(1f, rank).ToArray();
            var outShape = (int[])x.Shape.Clone();
            var lengths = x.Shape.Select(d => (float)d).ToArray();
            float[]? sc = _scalesAttr ?? (_scalesInput >= 0 && ctx.Input(_scalesInput) is { Length: > 0 } s ? Floats(s) : null);
            long[]? sz = _sizesInput >= 0 && ctx.Input(_sizesInput) is { Length: > 0 } z ? TensorUtil.Ints(z) : null;
            if (sc is not null && sz is not null) throw new InvalidOperationException("Resize: both scales and sizes are given");
            // Scales, output sizes and lengths in float32 arithmetic, as ONNX Runtime computes them.
            if (sz is not null)
            {
                if (sz.Length != axes.Length) throw new InvalidOperationException($"Resize: {sz.Length} sizes for {axes.Length} axes");
                var ratio = new float[axes.Length];
                for (int k = 0; k < axes.Length; k++)
                {
                    int a = axes[k];
                    outShape[a] = TensorUtil.Dim(sz[k], "Resize size");
                    ratio[k] = x.Shape[a] == 0 ? 1f : (float)outShape[a] / x.Shape[a];
                }
                if (_policy != 0)
                {
                    float common = _policy == 1 ? ratio.Min() : ratio.Max();
                    foreach (var a in axes)
                    {
                        scales[a] = common;
                        lengths[a] = common * x.Shape[a];
                        outShape[a] = TensorUtil.Dim((long)MathF.Round(common * x.Shape[a], MidpointRounding.AwayFromZero), "Resize size");
                    }
                }
                else
                {
                    for (int k = 0; k < axes.Length; k++)
                    {
                        scales[axes[k]] = ratio[k];
                        lengths[axes[k]] = outShape[axes[k]];
                    }
                }
            }
            else if (sc is not null)
            {
                if (sc.Length != axes.Length) throw new InvalidOperationException($"Resize: {sc.Length} scales for {axes.Length} axes");
                for (int k = 0; k < axes.Length; k++)
                {
                    int a = axes[k];
                    if (!(sc[k] > 0)) throw new InvalidOperationException($"Resize: scale {sc[k]} is not positive");
                    scales[a] = sc[k];
                    lengths[a] = sc[k] * x.Shape[a];
                    outShape[a] = TensorUtil.Dim((long)lengths[a], "Resize output dimension");
                }
            }
            else throw new InvalidOperationException("Resize: neither scales nor sizes is given");

            var roiStart = new float[rank];
            var roiEnd = Enumerable.Repeat(1f, rank).ToArray();
            if (_coords == ResizeCoordinates.TfCropAndResize && _roiInput >= 0 && ctx.Input(_roiInput) is { Length: > 0 } roiBuf)
            {
                var roi = RoiValues(roiBuf);
                if (roi.Length != 2 * axes.Length) throw new InvalidOperationException($"Resize: roi has {roi.Length} values for {axes.Length} axes");
                for (int k = 0; k < axes.Length; k++)
                {
                    roiStart[axes[k]] = roi[k];
                    roiEnd[axes[k]] = roi[k + axes.Length];
                }
            }
            return new ResizeSpec(_mode, _coords, _nearest, _cubicA, _exclude, _extrapolation, scales, outShape, lengths, roiStart, roiEnd);
        }

        private static float[] Floats(TensorBuffer b) => b.DType == DType.Float32
            ? b.Span<float>().ToArray()
            : throw new InvalidOperationException($"Resize: scales must be float32, got {b.DType.Name()}");

        private static float[] RoiValues(TensorBuffer b) => b.DType switch
        {
            DType.Float32 => b.Span<float>().ToArray(),
            DType.Float64 => b.Span<double>().ToArray().Select(v => (float)v).ToArray(),
            DType.Float16 => b.Span<Half>().ToArray().Select(v => (float)v).ToArray(),
            _ => throw new InvalidOperationException($"Resize: roi must be a float tensor, got {b.DType.Name()}"),
        };

        private static bool Identity(ResizeSpec spec, int axis) => spec.Scales[axis] == 1 && spec.Coordinates != ResizeCoordinates.TfCropAndResize;

        private static float Coordinate(ResizeSpec spec, int axis, int o, int inLength) =>
            ResizeReference.OriginalCoordinate(spec.Coordinates, o, spec.Scales[axis], spec.ResizedLengths[axis], spec.OutputShape[axis], inLength, spec.RoiStart[axis], spec.RoiEnd[axis]);

        private static bool Outside(ResizeSpec spec, float xo, int inLength) =>
            spec.Coordinates == ResizeCoordinates.TfCropAndResize && (xo < 0 || xo > inLength - 1);

        // ---- nearest: pure data movement, any element type ----

        private static void Nearest(KernelContext ctx, TensorBuffer x, TensorBuffer y, ResizeSpec spec)
        {
            int rank = x.Rank;
            var strides = TensorUtil.Strides(x.Shape);
            var maps = new int[rank][]; // per axis, per output index: input element offset, or -1 to extrapolate
            for (int d = 0; d < rank; d++)
            {
                int outLen = spec.OutputShape[d], inLen = x.Shape[d];
                var m = maps[d] = new int[outLen];
                for (int o = 0; o < outLen; o++)
                {
                    if (Identity(spec, d)) { m[o] = o * strides[d]; continue; }
                    float xo = Coordinate(spec, d, o, inLen);
                    m[o] = Outside(spec, xo, inLen) ? -1 : NearestIndex(xo, spec.Nearest, spec.Scales[d], inLen) * strides[d];
                }
            }
            int esz = TensorUtil.ElementBytes(x.DType);
            var fill = ElementOf(spec.Extrapolation, x.DType, esz);
            switch (esz)
            {
                case 1: NearestRows<byte>(ctx, x, y, maps, fill); break;
                case 2: NearestRows<ushort>(ctx, x, y, maps, fill); break;
                case 4: NearestRows<uint>(ctx, x, y, maps, fill); break;
                case 8: NearestRows<ulong>(ctx, x, y, maps, fill); break;
                default: throw new InvalidOperationException($"Resize of {esz}-byte elements is not supported");
            }
        }

        private static void NearestRows<T>(KernelContext ctx, TensorBuffer x, TensorBuffer y, int[][] maps, byte[] fillBytes) where T : unmanaged
        {
            int rank = maps.Length;
            int rowLen = maps[rank - 1].Length;
            int rows = y.Length / rowLen;
            var shape = y.Shape;
            T fill = MemoryMarshal.Cast<byte, T>(fillBytes)[0];
            ctx.ParallelFor(rows, (r0, r1) =>
            {
                var src = x.Span<T>();
                var dst = y.Span<T>();
                var last = maps[rank - 1];
                long prevOff = long.MinValue;
                for (int row = r0; row < r1; row++)
                {
                    int rem = row;
                    long off = 0;
                    bool outside = false;
                    for (int d = rank - 2; d >= 0; d--)
                    {
                        int m = maps[d][rem % shape[d]];
                        rem /= shape[d];
                        if (m < 0) outside = true;
                        off += m;
                    }
                    if (outside) off = -1;
                    var o = dst.Slice(row * rowLen, rowLen);
                    if (off == prevOff) { dst.Slice((row - 1) * rowLen, rowLen).CopyTo(o); continue; } // upsampled rows repeat
                    prevOff = off;
                    if (outside) { o.Fill(fill); continue; }
                    var s = src[(int)off..];
                    for (int j = 0; j < o.Length; j++) o[j] = last[j] < 0 ? fill : s[last[j]];
                }
            }, minChunk: Math.Max(1, 8192 / Math.Max(1, rowLen)));
        }

        private static byte[] ElementOf(double v, DType t, int esz)
        {
            var b = new byte[esz];
            switch (t)
            {
                case DType.Float32: BitConverter.TryWriteBytes(b, (float)v); break;
                case DType.Float64: BitConverter.TryWriteBytes(b, v); break;
                case DType.Float16: BitConverter.TryWriteBytes(b, (Half)v); break;
                case DType.BFloat16: BitConverter.TryWriteBytes(b, BFloat16.FromSingle((float)v)); break;
                case DType.Int8: b[0] = (byte)(sbyte)v; break;
                case DType.UInt8: case DType.Bool: b[0] = (byte)v; break;
                case DType.Int16: BitConverter.TryWriteBytes(b, (short)v); break;
                case DType.UInt16: BitConverter.TryWriteBytes(b, (ushort)v); break;
                case DType.Int32: BitConverter.TryWriteBytes(b, (int)v); break;
                case DType.UInt32: BitConverter.TryWriteBytes(b, (uint)v); break;
                case DType.Int64: BitConverter.TryWriteBytes(b, (long)v); break;
                case DType.UInt64: BitConverter.TryWriteBytes(b, (ulong)v); break;
            }
            return b;
        }

        // ---- linear / cubic: weighted taps per axis ----

        /// <summary>Per-axis taps: for output index o, taps [o*Count, (o+1)*Count) of input offsets and weights.</summary>
        private sealed record Taps(int Count, int[] Offsets, double[] Weights, bool[] Outside);

        private static Taps AxisTaps(ResizeSpec spec, int axis, int inLen, int stride)
        {
            int outLen = spec.OutputShape[axis];
            if (Identity(spec, axis))
                return new Taps(1, Enumerable.Range(0, outLen).Select(o => o * stride).ToArray(), Enumerable.Repeat(1.0, outLen).ToArray(), new bool[outLen]);
            int count = spec.Mode == ResizeMode.Linear ? 2 : 4;
            var offsets = new int[outLen * count];
            var weights = new double[outLen * count];
            var outside = new bool[outLen];
            for (int o = 0; o < outLen; o++)
            {
                float xo = Coordinate(spec, axis, o, inLen);
                if (Outside(spec, xo, inLen)) { outside[o] = true; continue; }
                double fl = Math.Floor(xo);
                double t = xo - fl;
                int first = (int)fl - (count == 2 ? 0 : 1);
                double[] w = count == 2 ? [1 - t, t] : ResizeReference.CubicCoefficients(t, spec.CubicA);
                if (spec.ExcludeOutside)
                {
                    double sum = 0;
                    for (int k = 0; k < count; k++)
                    {
                        int i = first + k;
                        if (i < 0 || i >= inLen) w[k] = 0;
                        sum += w[k];
                    }
                    for (int k = 0; k < count; k++) w[k] /= sum;
                }
                for (int k = 0; k < count; k++)
                {
                    offsets[o * count + k] = Math.Clamp(first + k, 0, inLen - 1) * stride;
                    weights[o * count + k] = w[k];
                }
            }
            return new Taps(count, offsets, weights, outside);
        }

        /// <summary>
        /// float32 resampling of the last two axes (the others copied): each output row blends its input rows into a
        /// temporary row (SIMD multiply-add), then each output column blends its taps from that row.
        /// </summary>
        private static void Planes(KernelContext ctx, TensorBuffer x, TensorBuffer y, Taps[] taps, float fill)
        {
            int rank = x.Rank;
            int inW = x.Shape[rank - 1], outW = y.Shape[rank - 1];
            int inH = rank >= 2 ? x.Shape[rank - 2] : 1, outH = rank >= 2 ? y.Shape[rank - 2] : 1;
            var rowTaps = rank >= 2 ? taps[rank - 2] : new Taps(1, [0], [1.0], [false]);
            var colTaps = taps[rank - 1];
            int ty = rowTaps.Count, tx = colTaps.Count;
            var wy = rowTaps.Weights.Select(w => (float)w).ToArray();
            var wx = colTaps.Weights.Select(w => (float)w).ToArray();
            int planes = y.Length / (outH * outW);
            ctx.ParallelFor(planes * outH, (r0, r1) =>
            {
                var src = x.Span<float>();
                var dst = y.Span<float>();
                var tmp = new float[inW];
                for (int r = r0; r < r1; r++)
                {
                    int p = r / outH, oy = r % outH;
                    var o = dst.Slice(r * outW, outW);
                    if (rowTaps.Outside[oy]) { o.Fill(fill); continue; }
                    var plane = src.Slice(p * inH * inW, inH * inW);
                    Array.Clear(tmp);
                    for (int k = 0; k < ty; k++)
                    {
                        float w = wy[oy * ty + k];
                        if (w != 0) ReductionDriver.MultiplyAdd(plane.Slice(rowTaps.Offsets[oy * ty + k], inW), w, tmp);
                    }
                    for (int j = 0; j < outW; j++)
                    {
                        if (colTaps.Outside[j]) { o[j] = fill; continue; }
                        float acc = 0;
                        for (int k = 0; k < tx; k++) acc += wx[j * tx + k] * tmp[colTaps.Offsets[j * tx + k]];
                        o[j] = acc;
                    }
                }
            }, minChunk: Math.Max(1, 4096 / Math.Max(1, outW)));
        }

        private static void Interpolate<T>(KernelContext ctx, TensorBuffer x, TensorBuffer y, ResizeSpec spec) where T : unmanaged, INumberBase<T>
        {
            int rank = x.Rank;
            var strides = TensorUtil.Strides(x.Shape);
            var taps = new Taps[rank];
            for (int d = 0; d < rank; d++) taps[d] = AxisTaps(spec, d, x.Shape[d], strides[d]);
            var shape = y.Shape;
            int rowLen = shape[rank - 1];
            int rows = y.Length / rowLen;
            T fill = T.CreateTruncating(spec.Extrapolation);
            // Outer axes that resample (more than one tap) take part in the tap product; the others contribute an offset.
            var interp = Enumerable.Range(0, rank - 1).Where(d => taps[d].Count > 1).ToArray();
            if (typeof(T) == typeof(float) && interp.All(d => d == rank - 2) && Enumerable.Range(0, rank - 1).All(d => !taps[d].Outside.Any(o => o) || d == rank - 2))
            {
                Planes(ctx, x, y, taps, (float)spec.Extrapolation);
                return;
            }
            ctx.ParallelFor(rows, (r0, r1) =>
            {
                var src = x.Span<T>();
                var dst = y.Span<T>();
                var coord = new int[rank];
                var last = taps[rank - 1];
                int lc = last.Count;
                var combo = new int[interp.Length];
                for (int row = r0; row < r1; row++)
                {
                    int rem = row;
                    long baseOff = 0;
                    bool outside = false;
                    for (int d = rank - 2; d >= 0; d--)
                    {
                        coord[d] = rem % shape[d];
                        rem /= shape[d];
                        if (taps[d].Outside[coord[d]]) outside = true;
                        else if (taps[d].Count == 1) baseOff += taps[d].Offsets[coord[d]];
                    }
                    var o = dst.Slice(row * rowLen, rowLen);
                    if (outside) { o.Fill(fill); continue; }
                    for (int j = 0; j < rowLen; j++)
                    {
                        if (last.Outside[j]) { o[j] = fill; continue; }
                        double acc = 0;
                        Array.Clear(combo);
                        while (true)
                        {
                            long off = baseOff;
                            double w = 1;
                            for (int k = 0; k < interp.Length; k++)
                            {
                                var t = taps[interp[k]];
                                int ti = coord[interp[k]] * t.Count + combo[k];
                                off += t.Offsets[ti];
                                w *= t.Weights[ti];
                            }
                            double line = 0;
                            for (int k = 0; k < lc; k++)
                                line += last.Weights[j * lc + k] * double.CreateTruncating(src[(int)(off + last.Offsets[j * lc + k])]);
                            acc += w * line;
                            int c = interp.Length - 1;
                            while (c >= 0 && ++combo[c] == taps[interp[c]].Count) combo[c--] = 0;
                            if (c < 0) break;
                        }
                        o[j] = T.CreateTruncating(acc);
                    }
                }
            }, minChunk: Math.Max(1, 4096 / Math.Max(1, rowLen)));
        }
    }
}
