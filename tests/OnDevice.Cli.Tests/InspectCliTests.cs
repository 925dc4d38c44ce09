using System.Text.Json;
using OnDevice.TestSupport;

namespace OnDevice.Cli.Tests;

public class InspectCliTests
{
    [Fact]
    public void PaddleOcrRec_Json_ReportsExactParametersAndOpset9()
    {
        var r = CliRunner.Run("inspect", SampleModels.Path("paddleocr-rec"), "--json");
        Assert.Equal(0, r.ExitCode);
        using var doc = JsonDocument.Parse(r.Stdout);
        var root = doc.RootElement;
        Assert.Equal(2_690_109, root.GetProperty("parameters").GetInt64());
        Assert.Equal(9, root.GetProperty("opsets").GetProperty("").GetInt64());
        Assert.Single(root.GetProperty("opsets").EnumerateObject());
        Assert.True(root.GetProperty("weightBytes").GetInt64() > 10_000_000);
        Assert.Equal(38, root.GetProperty("ops").GetProperty("Conv").GetInt32());
        var input = Assert.Single(root.GetProperty("inputs").EnumerateArray());
        Assert.Equal("x", input.GetProperty("name").GetString());
        Assert.Equal("float32", input.GetProperty("dtype").GetString());
        Assert.Equal(4, input.GetProperty("shape").GetArrayLength());
        Assert.Equal(48, input.GetProperty("shape")[2].GetInt64());
        Assert.Equal(JsonValueKind.String, input.GetProperty("shape")[0].ValueKind); // symbolic batch
        Assert.Equal(6625, root.GetProperty("outputs")[0].GetProperty("shape")[2].GetInt64());
    }

    [Fact]
    public void PaddleOcrDet_WithFixedShape_CountsTheKnownMacs()
    {
        // 2.30 G MACs at 1×3×640×640 is the figure ONNX tooling reports for PP-OCRv4 det.
        var r = CliRunner.Run("inspect", "paddleocr-det", "--shape", "x=1,3,640,640", "--json");
        Assert.Equal(0, r.ExitCode);
        using var doc = JsonDocument.Parse(r.Stdout);
        long macs = doc.RootElement.GetProperty("macs").GetInt64();
        Assert.InRange(macs, 2_295_000_000, 2_305_000_000);
        Assert.Equal(0, doc.RootElement.GetProperty("macsUnknownNodes").GetInt32());
        Assert.Equal(11, doc.RootElement.GetProperty("opsets").GetProperty("").GetInt64());
    }

    [Fact]
    public void Nodes_ListsEveryNode_IncludingSubgraphs()
    {
        var r = CliRunner.Run("inspect", "silero-vad", "--nodes", "--json");
        Assert.Equal(0, r.ExitCode);
        using var doc = JsonDocument.Parse(r.Stdout);
        var nodes = doc.RootElement.GetProperty("nodes");
        Assert.Equal(doc.RootElement.GetProperty("nodeCount").GetInt32(), nodes.GetArrayLength());
        Assert.Contains(nodes.EnumerateArray(), n => n.GetProperty("graph").GetString() != "" && n.GetProperty("op").GetString() == "LSTM");
        Assert.True(doc.RootElement.GetProperty("subgraphs").GetInt32() >= 2);
    }

    [Fact]
    public void HumanOutput_ShowsTheKeyFacts()
    {
        var r = CliRunner.Run("inspect", "paddleocr-cls");
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("Parameters", r.Stdout);
        Assert.Contains("ai.onnx 9", r.Stdout);
        Assert.Contains("Conv", r.Stdout);
    }

    [Fact]
    public void CorruptModel_GivesOneClearLine_AndNonZeroExit()
    {
        using var dir = new TempDir();
        var bad = dir.File("bad.onnx");
        File.WriteAllBytes(bad, File.ReadAllBytes(SampleModels.Path("paddleocr-cls"))[..5000]);
        var r = CliRunner.Run("inspect", bad);
        Assert.Equal(1, r.ExitCode);
        var line = Assert.Single(r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("ondevice: error: ", line);
        Assert.Contains(bad, line);
        Assert.DoesNotContain("   at ", r.Stderr);
        Assert.Equal("", r.Stdout);
    }

    [Theory]
    [InlineData("no-such-model.onnx", "file not found")]
    [InlineData("--shape", "x=1,a")]
    public void BadArguments_AreReportedWithoutStackTraces(string arg, string expected)
    {
        var r = arg == "--shape" ? CliRunner.Run("inspect", "paddleocr-cls", "--shape", expected) : CliRunner.Run("inspect", arg);
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains(arg == "--shape" ? "is not a non-negative integer" : expected, r.Stderr);
        Assert.DoesNotContain("   at ", r.Stderr);
    }

    [Fact]
    public void UnknownInputInShape_IsReported()
    {
        var r = CliRunner.Run("inspect", "paddleocr-cls", "--shape", "image=1,3,48,192");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("the model's inputs are: x", r.Stderr);
    }
}
