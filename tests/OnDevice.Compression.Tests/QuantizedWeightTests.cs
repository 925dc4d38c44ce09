using OnDevice.Compression.Quantization;

namespace OnDevice.Compression.Tests;

public class QuantizedWeightTests
{
    [Fact]
    public void Groups_FollowTheScaleShapeOfEachGranularity()
    {
        var perChannel = new QuantizedWeight(new int[12], new float[3], new int[3], [3, 4], new QuantScheme(8, true, true, Granularity.PerChannel, Axis: 0));
        Assert.Equal([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2], Enumerable.Range(0, 12).Select(i => perChannel.GroupOf(i)));
        Assert.Equal(new long[] { 3 }, perChannel.ScaleDims);
        // [K=4, N=3] blocked along K (axis 0) with block 2: scale shape [2, 3].
        var blocked = new QuantizedWeight(new int[12], new float[6], new int[6], [4, 3], new QuantScheme(4, true, true, Granularity.Blocked, Axis: 0, BlockSize: 2));
        Assert.Equal(new long[] { 2, 3 }, blocked.ScaleDims);
        Assert.Equal([0, 1, 2, 0, 1, 2, 3, 4, 5, 3, 4, 5], Enumerable.Range(0, 12).Select(i => blocked.GroupOf(i)));
        Assert.Equal(-8, blocked.Scheme.QMin);
        Assert.Equal(15, new QuantScheme(4, false, false, Granularity.PerTensor).QMax);
    }

    [Fact]
    public void Dequantize_IsQMinusZeroPointTimesScale()
    {
        var q = new QuantizedWeight([10, 20, 130, 140], [0.5f, 2f], [10, 128], [2, 2], new QuantScheme(8, false, false, Granularity.PerChannel, Axis: 0));
        Assert.Equal(new[] { 0f, 5f, 4f, 24f }, q.Dequantize());
    }
}
