using OnDevice.Compression.Quantization;
using OnDevice.Core;

namespace OnDevice.Compression.Tests;

public class WeightSitesTests
{
    [Fact]
    public void FindsEveryLayer_WithItsChannelAxis_IncludingConstantNodeWeights()
    {
        var m = TestModels.Small();
        var (sites, skipped) = WeightSites.Find(m.Graph);
        Assert.Empty(skipped);
        var byLayer = sites.ToDictionary(s => s.Layer);
        Assert.Equal(["conv1", "dwconv", "deconv", "gemm1", "matmul", "gemm2"], sites.Select(s => s.Layer));
        Assert.Equal((8, 36, 0), (byLayer["conv1"].Rows, byLayer["conv1"].Columns, byLayer["conv1"].ChannelAxis));
        Assert.True(byLayer["dwconv"].Depthwise);
        Assert.Equal((4, 32, 1), (byLayer["deconv"].Rows, byLayer["deconv"].Columns, byLayer["deconv"].ChannelAxis));
        Assert.Equal((64, 512, 1), (byLayer["gemm1"].Rows, byLayer["gemm1"].Columns, byLayer["gemm1"].ChannelAxis));
        Assert.Equal((32, 64, 1), (byLayer["matmul"].Rows, byLayer["matmul"].Columns, byLayer["matmul"].ChannelAxis));
        Assert.Equal((16, 32, 0), (byLayer["gemm2"].Rows, byLayer["gemm2"].Columns, byLayer["gemm2"].ChannelAxis));
        // The matrix view of MatMul B [K, N] is its transpose: row n holds column n of B.
        var b = m.Graph.Initializers["w5"].ToFloatArray();
        var mat = byLayer["matmul"].Matrix();
        Assert.Equal(b[3 * 32 + 5], mat[5 * 64 + 3]);
    }

    [Fact]
    public void UnsupportedOps_AndExcludedLayers_AreListedWithTheReason()
    {
        var m = TestModels.Small();
        m.Graph.AddInitializer(Tensor.FromArray<float>(new float[2048], [1, 512, 4], "lstm_w"));
        m.Graph.Nodes.Add(new Node("LSTM", ["f3", "lstm_w"], ["h"], "lstm"));
        m.Graph.AddInitializer(Tensor.FromArray<float>(new float[2 * 64 * 8], [2, 64, 8], "batched"));
        m.Graph.Nodes.Add(new Node("MatMul", ["r2", "batched"], ["bm"], "batched_matmul"));
        var (sites, skipped) = WeightSites.Find(m.Graph, ["gemm*"]);
        Assert.DoesNotContain(sites, s => s.Layer.StartsWith("gemm", StringComparison.Ordinal));
        Assert.Contains(skipped, s => s.Layer == "lstm" && s.Reason.Contains("LSTM is not a layer"));
        Assert.Contains(skipped, s => s.Layer == "gemm1" && s.Reason.Contains("--exclude"));
        Assert.Contains(skipped, s => s.Layer == "batched_matmul" && s.Reason.Contains("rank 3"));
    }

    [Fact]
    public void Permute_RoundTrips()
    {
        var data = Enumerable.Range(0, 24).ToArray();
        long[] dims = [2, 3, 4];
        int[] perm = [2, 0, 1];
        var p = Layout.Permute(data, dims, perm);
        Assert.Equal(data, Layout.Permute(p, [4, 2, 3], Layout.Inverse(perm)));
        // p[i, j, k] = data[j, k, i]
        Assert.Equal(4, p[1]);
        Assert.Equal(8, p[2]);
        Assert.Equal(1, p[6]);
    }
}
