namespace OnDevice.Runtime.Tests.Quantization;

/// <summary>The ONNX node tests (libonnx-testdata) of the quantization operators, each by name: every one must run and pass
/// (the suite-wide runner only counts them; here a test that became unsupported fails too).</summary>
[Trait("Category", "Conformance")]
public class QuantizedConformanceTests
{
    public static TheoryData<string> Tests => new()
    {
        "test_quantizelinear", "test_quantizelinear_axis", "test_dequantizelinear", "test_dequantizelinear_axis",
        "test_dynamicquantizelinear", "test_dynamicquantizelinear_max_adjusted", "test_dynamicquantizelinear_min_adjusted",
        "test_dynamicquantizelinear_expanded", "test_dynamicquantizelinear_max_adjusted_expanded", "test_dynamicquantizelinear_min_adjusted_expanded",
        "test_matmulinteger", "test_qlinearmatmul_2D", "test_qlinearmatmul_3D",
        "test_basic_convinteger", "test_convinteger_with_padding", "test_convinteger_without_padding", "test_qlinearconv",
    };

    [Theory]
    [MemberData(nameof(Tests))]
    public void NodeTest_Passes(string name)
    {
        var dir = Path.Combine(OnnxConformanceTests.DataDir, name);
        if (!Directory.Exists(dir))
        {
            Assert.False(Environment.GetEnvironmentVariable("CI") == "true", $"{dir} is missing: install libonnx-testdata (scripts/setup.sh does)");
            return;
        }
        var outcome = OnnxConformanceTests.RunOne(dir);
        Assert.True(outcome.Status == "passed", $"{name}: {outcome.Status}: {outcome.Detail}");
    }
}
