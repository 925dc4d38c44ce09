using OnDevice.Runtime.Simd;

namespace OnDevice.Runtime.Tests;

/// <summary>
/// <see cref="DepthwiseConv.Channel"/> (64-wide blocks row by row, leftover vectors four rows at a time) against a
/// scalar twin with the same arithmetic: bias and the even taps in one fused multiply-add chain, the odd taps in
/// another, then their sum — so with AVX-512 the results must be bit-identical, whatever the row/vector blocking.
/// </summary>
[Trait("Category", "Kernels")]
public class DepthwiseChannelTests
{
    [Theory]
    [InlineData(12, 80, 5, 5, 1, 1, 2, 2)]   // PP-OCRv4 rec 240/480-channel 5×5 layers: one 64 block + one leftover vector
    [InlineData(6, 80, 5, 5, 2, 1, 2, 2)]    // stride (2, 1)
    [InlineData(24, 160, 3, 3, 1, 1, 1, 1)]  // two 64 blocks + two leftover vectors
    [InlineData(13, 37, 3, 3, 1, 1, 1, 1)]   // leftovers only, partial last vector, one row after the groups of four
    [InlineData(9, 150, 5, 5, 1, 1, 2, 2)]
    [InlineData(3, 5, 3, 3, 1, 2, 1, 1)]     // narrower than one vector, stride 2 columns
    [InlineData(5, 64, 3, 3, 1, 1, 1, 1)]    // whole blocks only
    [InlineData(7, 70, 3, 2, 2, 3, 0, 1)]
    public unsafe void Channel_MatchesScalarTwinBitForBit(int h, int w, int kh, int kw, int sh, int sw, int ph, int pw)
    {
        int oh = (h + 2 * ph - kh) / sh + 1, ow = (w + 2 * pw - kw) / sw + 1;
        var s = new DepthwiseConv.Shape(h, w, kh, kw, sh, sw, ph, pw, 1, 1, oh, ow);
        var rnd = new Random(h * 1000 + w);
        var x = Enumerable.Range(0, h * w).Select(_ => (float)(rnd.NextDouble() * 2 - 1)).ToArray();
        var k = Enumerable.Range(0, kh * kw).Select(_ => (float)(rnd.NextDouble() * 2 - 1)).ToArray();
        const float bias = 0.375f;
        var y = new float[oh * ow];
        var scratch = new float[s.PlaneFloats + 64];
        fixed (float* px = x)
        fixed (float* pk = k)
        fixed (float* py = y)
        fixed (float* ps = scratch)
            DepthwiseConv.Channel(s, px, pk, bias, default, py, ps);

        var expected = new float[oh * ow];
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++)
            {
                float a = bias, e = 0;
                for (int t = 0; t < kh * kw; t++)
                {
                    int iy = oy * sh - ph + t / kw, ix = ox * sw - pw + t % kw;
                    float v = (uint)iy < (uint)h && (uint)ix < (uint)w ? x[iy * w + ix] : 0f;
                    if (t % 2 == 0) a = MathF.FusedMultiplyAdd(k[t], v, a);
                    else e = MathF.FusedMultiplyAdd(k[t], v, e);
                }
                expected[oy * ow + ox] = a + e;
            }
        if (System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated)
            Assert.Equal(expected, y);
        else
        {
            // Without AVX-512 (the test.sh reruns) the 256/128-bit and scalar rows use MultiplyAddEstimate or a single
            // unfused chain, so only closeness to the twin holds there.
            for (int i = 0; i < y.Length; i++)
                Assert.True(MathF.Abs(expected[i] - y[i]) <= 1e-5f * (1 + MathF.Abs(expected[i])), $"[{i}] {y[i]} vs twin {expected[i]}");
        }
    }

    [Theory]
    [InlineData(12, 80, 5, 5, 1, 1, 2, 2, true)]
    [InlineData(6, 80, 5, 5, 2, 1, 2, 2, false)]
    [InlineData(12, 160, 3, 3, 1, 2, 1, 1, true)]   // stride 2 columns: even-byte gathers, then the vector conversion
    [InlineData(5, 641, 3, 3, 2, 2, 1, 1, false)]   // odd width, many 16-byte gather steps and a scalar tail
    [InlineData(3, 9001, 3, 3, 2, 2, 1, 1, true)]   // phase rows over 4096 bytes: the scalar conversion loop
    [InlineData(7, 70, 3, 2, 2, 3, 0, 1, false)]
    public unsafe void ChannelFromBytes_EqualsChannelOnTheConvertedValues(int h, int w, int kh, int kw, int sh, int sw, int ph, int pw, bool signedX)
    {
        int oh = (h + 2 * ph - kh) / sh + 1, ow = (w + 2 * pw - kw) / sw + 1;
        var s = new DepthwiseConv.Shape(h, w, kh, kw, sh, sw, ph, pw, 1, 1, oh, ow);
        var rnd = new Random(h + w);
        var xb = new byte[h * w];
        rnd.NextBytes(xb);
        int zx = signedX ? -7 : 131;
        var xf = xb.Select(b => (float)((signedX ? (sbyte)b : b) - zx)).ToArray();
        var k = Enumerable.Range(0, kh * kw).Select(_ => (float)rnd.Next(-127, 128)).ToArray();
        var a = new float[oh * ow];
        var b = new float[oh * ow];
        var scratch = new float[s.PlaneFloats + 64];
        fixed (byte* pxb = xb)
        fixed (float* pxf = xf)
        fixed (float* pk = k)
        fixed (float* pa = a)
        fixed (float* pb = b)
        fixed (float* ps = scratch)
        {
            DepthwiseConv.Channel(s, pxf, pk, 0f, default, pa, ps);
            DepthwiseConv.ChannelFromBytes(s, pxb, signedX, zx, pk, 0f, default, pb, ps);
        }
        Assert.Equal(a, b);
        Assert.True(a.Distinct().Count() > 10);
    }
}
