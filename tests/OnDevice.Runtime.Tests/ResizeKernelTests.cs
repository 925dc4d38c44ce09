using OnDevice.Core;
using OnDevice.Runtime.Reference;
using Attribute = OnDevice.Core.Attribute;

namespace OnDevice.Runtime.Tests;

/// <summary>Resize and Upsample against the scalar reference (which follows the ONNX reference implementation) and hand-computed cases.</summary>
public class ResizeKernelTests
{
    private static readonly string[] CoordinateModes = ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nn", "half_pixel_symmetric"];

    private static ResizeCoordinates Coords(string s) => s switch
    {
        "half_pixel" => ResizeCoordinates.HalfPixel,
        "half_pixel_symmetric" => ResizeCoordinates.HalfPixelSymmetric,
        "pytorch_half_pixel" => ResizeCoordinates.PytorchHalfPixel,
        "align_corners" => ResizeCoordinates.AlignCorners,
        "asymmetric" => ResizeCoordinates.Asymmetric,
        "tf_half_pixel_for_nn" => ResizeCoordinates.TfHalfPixelForNn,
        _ => ResizeCoordinates.TfCropAndResize,
    };

    private static ResizeNearest Nearest(string s) => s switch
    {
        "round_prefer_ceil" => ResizeNearest.RoundPreferCeil,
        "floor" => ResizeNearest.Floor,
        "ceil" => ResizeNearest.Ceil,
        _ => ResizeNearest.RoundPreferFloor,
    };

    private static ResizeMode Mode(string s) => s switch { "linear" => ResizeMode.Linear, "cubic" => ResizeMode.Cubic, _ => ResizeMode.Nearest };

    /// <summary>Runs Resize-19 with scales (float) or sizes and compares with the reference.</summary>
    private static void Check(int[] shape, string mode, string coords, string nearest, float[]? scales, long[]? sizes,
        float cubicA = -0.75f, bool exclude = false, float[]? roi = null, float extrapolation = 0, int threads = 1)
    {
        int rank = shape.Length;
        var x = NodeRunner.Random(NaiveTensorOps.Count(shape), 17, -2, 2);
        var n = new Node("Resize", ["x", roi is null ? "" : "roi", scales is null ? "" : "scales", sizes is null ? "" : "sizes"], ["y"])
            .With(Attribute.Of("mode", mode)).With(Attribute.Of("coordinate_transformation_mode", coords)).With(Attribute.Of("nearest_mode", nearest))
            .With(Attribute.Of("cubic_coeff_a", cubicA)).With(Attribute.Of("exclude_outside", exclude ? 1L : 0L)).With(Attribute.Of("extrapolation_value", extrapolation));
        var y = NodeRunner.Run(n, [Tensor.FromArray<float>(x, shape.Select(d => (long)d).ToArray()),
            roi is null ? null : Tensor.FromArray<float>(roi, [roi.Length]),
            scales is null ? null : Tensor.FromArray<float>(scales, [rank]),
            sizes is null ? null : Tensor.FromArray<long>(sizes, [rank])], 19, threads)[0];

        var sc = scales ?? sizes!.Select((s, i) => (float)s / shape[i]).ToArray();
        var lengths = sizes?.Select(s => (float)s).ToArray() ?? shape.Select((d, i) => sc[i] * d).ToArray();
        var outShape = sizes?.Select(s => (int)s).ToArray() ?? lengths.Select(l => (int)l).ToArray();
        var spec = new ResizeSpec(Mode(mode), Coords(coords), Nearest(nearest), cubicA, exclude, extrapolation, sc, outShape, lengths,
            roi is null ? new float[rank] : roi.Take(rank).ToArray(),
            roi is null ? Enumerable.Repeat(1f, rank).ToArray() : roi.Skip(rank).ToArray());
        var expected = ResizeReference.Resize(x.Select(v => (double)v).ToArray(), shape, spec);
        Assert.Equal(outShape.Select(d => (long)d), y.Dims);
        NodeRunner.Close(expected.Select(v => (float)v).ToArray(), y.ToFloatArray(), 1e-5f, 1e-5f);
    }

    public static TheoryData<string, string, string> Combinations()
    {
        var d = new TheoryData<string, string, string>();
        foreach (var c in CoordinateModes)
        {
            foreach (var nm in new[] { "round_prefer_floor", "round_prefer_ceil", "floor", "ceil" }) d.Add("nearest", c, nm);
            d.Add("linear", c, "");
            d.Add("cubic", c, "");
        }
        return d;
    }

    [Theory]
    [MemberData(nameof(Combinations))]
    public void Resize_MatchesReference_ForScalesUpAndDown_AndSizes(string mode, string coords, string nearest)
    {
        if (nearest.Length == 0) nearest = "round_prefer_floor";
        Check([1, 2, 5, 7], mode, coords, nearest, [1, 1, 2.5f, 0.6f], null);
        Check([1, 2, 5, 7], mode, coords, nearest, [1, 1, 0.5f, 3f], null);
        Check([1, 2, 4, 4], mode, coords, nearest, [1, 1, 2, 2], null, threads: 3);
        Check([1, 1, 5, 7], mode, coords, nearest, null, [1, 1, 3, 11]);
        Check([1, 1, 5, 7], mode, coords, nearest, null, [1, 1, 1, 1]);
        Check([2, 6, 3], mode, coords, nearest, [0.5f, 1.5f, 2f], null); // every axis resampled
        Check([9], mode, coords, nearest, [0.75f], null);
    }

    [Theory]
    [InlineData(-0.5f, true)]
    [InlineData(-0.75f, false)]
    [InlineData(-0.5f, false)]
    public void Cubic_CoefficientAndExcludeOutside(float a, bool exclude)
    {
        Check([1, 1, 4, 4], "cubic", "half_pixel", "round_prefer_floor", [1, 1, 0.8f, 1.7f], null, a, exclude);
        Check([1, 1, 4, 4], "cubic", "asymmetric", "round_prefer_floor", [1, 1, 2, 2], null, a, exclude);
    }

    [Theory]
    [InlineData("nearest")]
    [InlineData("linear")]
    [InlineData("cubic")]
    public void TfCropAndResize_SamplesTheRoi_AndExtrapolates(string mode)
    {
        Check([1, 1, 4, 4], mode, "tf_crop_and_resize", "round_prefer_floor", null, [1, 1, 3, 3], roi: [0, 0, 0.4f, 0.6f, 1, 1, 1.2f, 1.7f], extrapolation: 10);
        Check([1, 1, 4, 5], mode, "tf_crop_and_resize", "round_prefer_floor", [1, 1, 0.8f, 1.5f], null, roi: [0, 0, -0.2f, 0.1f, 1, 1, 0.9f, 1.3f], extrapolation: -3);
    }

    [Fact]
    public void LinearHalfPixel_Upsample2x_IsTheKnownBilinearResult()
    {
        // [[1,2],[3,4]] ×2 with half_pixel: coordinates -0.25, 0.25, 0.75, 1.25 → clamped interpolation
        var n = new Node("Resize", ["x", "", "s"], ["y"]).With(Attribute.Of("mode", "linear"));
        var y = NodeRunner.Run(n, [Tensor.FromArray<float>([1, 2, 3, 4], [1, 1, 2, 2]), null, Tensor.FromArray<float>([1, 1, 2, 2], [4])], 13)[0];
        float[] expected =
        [
            1.00f, 1.25f, 1.75f, 2.00f,
            1.50f, 1.75f, 2.25f, 2.50f,
            2.50f, 2.75f, 3.25f, 3.50f,
            3.00f, 3.25f, 3.75f, 4.00f,
        ];
        Assert.Equal(new long[] { 1, 1, 4, 4 }, y.Dims);
        NodeRunner.Close(expected, y.ToFloatArray(), 0, 1e-6f);
    }

    [Fact]
    public void HalfPixelSymmetric_Opset19_MatchesTheOnnxExample()
    {
        var n = new Node("Resize", ["x", "", "s"], ["y"]).With(Attribute.Of("mode", "linear")).With(Attribute.Of("coordinate_transformation_mode", "half_pixel_symmetric"));
        var y = NodeRunner.Run(n, [Tensor.FromArray<float>([1, 2, 3, 4], [1, 1, 2, 2]), null, Tensor.FromArray<float>([1, 1, 2.3f, 2.94f], [4])], 19)[0];
        float[] expected =
        [
            1.0f, 1.15986395f, 1.5f, 1.84013605f, 2.0f,
            1.56521738f, 1.72508133f, 2.06521738f, 2.40535343f, 2.56521738f,
            2.43478262f, 2.59464657f, 2.93478262f, 3.27491867f, 3.43478262f,
            3.0f, 3.15986395f, 3.5f, 3.84013605f, 4.0f,
        ];
        Assert.Equal(new long[] { 1, 1, 4, 5 }, y.Dims);
        NodeRunner.Close(expected, y.ToFloatArray(), 1e-6f, 1e-6f);
    }

    [Fact]
    public void NearestTies_FollowFloat32Arithmetic_AsOnnxRuntime()
    {
        // 7×9 → 1×1 with half_pixel/floor: 0.5 / (1/7f) − 0.5 is 2.9999998 in float32 (3 exactly in real numbers);
        // ONNX Runtime 1.30 picks row 2, column 4, and so do we.
        var x = Enumerable.Range(0, 63).Select(i => (float)i).ToArray();
        var n = new Node("Resize", ["x", "", "", "sizes"], ["y"]).With(Attribute.Of("mode", "nearest"))
            .With(Attribute.Of("coordinate_transformation_mode", "half_pixel")).With(Attribute.Of("nearest_mode", "floor"));
        var y = NodeRunner.Run(n, [Tensor.FromArray<float>(x, [1, 1, 7, 9]), null, null, Tensor.FromArray<long>([1, 1, 1, 1], [4])], 13)[0];
        Assert.Equal(2 * 9 + 4, y.ToFloatArray()[0]);
        // asymmetric/floor with scale 0.6: 3 / 0.6f rounds to exactly 5 in float32 (4.9999998 in double), so output
        // column 3 reads input column 5, as in ORT.
        var a = new Node("Resize", ["x", "", "s"], ["y"]).With(Attribute.Of("mode", "nearest"))
            .With(Attribute.Of("coordinate_transformation_mode", "asymmetric")).With(Attribute.Of("nearest_mode", "floor"));
        var z = NodeRunner.Run(a, [Tensor.FromArray<float>(x, [1, 1, 7, 9]), null, Tensor.FromArray<float>([1, 1, 1, 0.6f], [4])], 13)[0];
        Assert.Equal(new long[] { 1, 1, 7, 5 }, z.Dims);
        Assert.Equal(new float[] { 0, 1, 3, 5, 6 }, z.ToFloatArray().Take(5));
    }

    [Fact]
    public void Nearest_MovesAnyElementType()
    {
        var x = Enumerable.Range(0, 6).Select(i => (long)i * 11 - 7).ToArray();
        var n = new Node("Resize", ["x", "", "s"], ["y"]).With(Attribute.Of("mode", "nearest")).With(Attribute.Of("coordinate_transformation_mode", "asymmetric"));
        var y = NodeRunner.Run(n, [Tensor.FromArray<long>(x, [1, 2, 3]), null, Tensor.FromArray<float>([1, 2, 2], [3])], 13)[0];
        Assert.Equal(new long[] { 1, 4, 6 }, y.Dims);
        var v = y.ToInt64Array();
        for (int r = 0; r < 4; r++)
            for (int c = 0; c < 6; c++)
                Assert.Equal(x[r / 2 * 3 + c / 2], v[r * 6 + c]);
        var b = NodeRunner.Run(n, [Tensor.FromArray<byte>([1, 2, 3, 4, 5, 6], [1, 2, 3]), null, Tensor.FromArray<float>([1, 2, 2], [3])], 13)[0];
        Assert.Equal(v.Select(q => (byte)((q + 7) / 11 + 1)), b.AsSpan<byte>().ToArray());
    }

    [Theory]
    [InlineData("not_larger", new long[] { 7, 8 }, new long[] { 7, 7 })]
    [InlineData("not_smaller", new long[] { 7, 8 }, new long[] { 8, 8 })]
    [InlineData("stretch", new long[] { 7, 8 }, new long[] { 7, 8 })]
    public void KeepAspectRatio_WithAxes_Opset18(string policy, long[] sizes, long[] expectedHw)
    {
        var x = NodeRunner.Random(2 * 4 * 4, 3);
        var n = new Node("Resize", ["x", "", "", "sizes"], ["y"]).With(Attribute.Of("mode", "linear"))
            .With(Attribute.Of("keep_aspect_ratio_policy", policy)).With(Attribute.Of("axes", new long[] { 2, -1 }));
        var y = NodeRunner.Run(n, [Tensor.FromArray<float>(x, [1, 2, 4, 4]), null, null, Tensor.FromArray<long>(sizes, [2])], 18)[0];
        Assert.Equal(new long[] { 1, 2, expectedHw[0], expectedHw[1] }, y.Dims);
        float s = policy switch { "not_larger" => 7f / 4, "not_smaller" => 8f / 4, _ => float.NaN };
        float[] sc = float.IsNaN(s) ? [1, 1, 7f / 4, 8f / 4] : [1, 1, s, s];
        var spec = new ResizeSpec(ResizeMode.Linear, ResizeCoordinates.HalfPixel, ResizeNearest.RoundPreferFloor, -0.75, false, 0, sc,
            [1, 2, (int)expectedHw[0], (int)expectedHw[1]], float.IsNaN(s) ? [1, 2, 7, 8] : [1, 2, s * 4, s * 4], new float[4], [1, 1, 1, 1]);
        NodeRunner.Close(ResizeReference.Resize(x.Select(v => (double)v).ToArray(), [1, 2, 4, 4], spec).Select(v => (float)v).ToArray(), y.ToFloatArray(), 1e-5f, 1e-6f);
    }

    [Fact]
    public void Upsample_And_Resize10_UseAsymmetricFloor()
    {
        var x = Tensor.FromArray<float>([1, 2, 3, 4], [1, 1, 2, 2]);
        var up7 = new Node("Upsample", ["x"], ["y"]).With(Attribute.Of("mode", "nearest")).With(Attribute.Of("scales", new float[] { 1, 1, 2, 3 }));
        var a = NodeRunner.Run(up7, [x], 7)[0];
        var up9 = NodeRunner.Run(new Node("Upsample", ["x", "s"], ["y"]), [x, Tensor.FromArray<float>([1, 1, 2, 3], [4])], 9)[0];
        var r10 = NodeRunner.Run(new Node("Resize", ["x", "s"], ["y"]), [x, Tensor.FromArray<float>([1, 1, 2, 3], [4])], 10)[0];
        float[] expected = [1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 3, 3, 3, 4, 4, 4];
        Assert.Equal(expected, a.ToFloatArray());
        Assert.Equal(expected, up9.ToFloatArray());
        Assert.Equal(expected, r10.ToFloatArray());
        // linear Upsample: asymmetric coordinates, x_orig = x / 2
        var lin = NodeRunner.Run(new Node("Upsample", ["x", "s"], ["y"]).With(Attribute.Of("mode", "linear")), [Tensor.FromArray<float>([1, 3], [1, 2]), Tensor.FromArray<float>([1, 2], [2])], 9)[0];
        Assert.Equal(new float[] { 1, 2, 3, 3 }, lin.ToFloatArray());
    }

    [Fact]
    public void Unsupported_Configurations_AreRejectedAtSessionCreation()
    {
        var x = Tensor.FromArray<float>([1, 2, 3, 4], [1, 1, 2, 2]);
        var s = Tensor.FromArray<float>([1, 1, 2, 2], [4]);
        Assert.Throws<Kernels.UnsupportedOperatorException>(() =>
            NodeRunner.Run(new Node("Resize", ["x", "", "s"], ["y"]).With(Attribute.Of("mode", "linear")).With(Attribute.Of("antialias", 1L)), [x, null, s], 18));
        Assert.Throws<Kernels.UnsupportedOperatorException>(() =>
            NodeRunner.Run(new Node("Resize", ["x", "", "s"], ["y"]).With(Attribute.Of("coordinate_transformation_mode", "half_pixel_symmetric")), [x, null, s], 18));
        Assert.Throws<Kernels.UnsupportedOperatorException>(() =>
            NodeRunner.Run(new Node("Resize", ["x", "", "s"], ["y"]).With(Attribute.Of("mode", "linear")), [Tensor.FromArray<int>([1, 2, 3, 4], [1, 1, 2, 2]), null, s], 13));
    }
}
