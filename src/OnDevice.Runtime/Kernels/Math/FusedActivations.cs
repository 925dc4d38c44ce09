using OnDevice.Core;
using OnDevice.Runtime.Simd;

namespace OnDevice.Runtime.Kernels.LinearAlgebra;

/// <summary>Reads the activation of a fused node (ONNX Runtime's com.microsoft FusedConv / FusedGemm conventions):
/// <c>activation</c> names it; parameters come from <c>activation_params</c> (FusedConv) or
/// <c>activation_alpha</c>/<c>activation_beta</c> (FusedGemm).</summary>
internal static class FusedActivations
{
    /// <summary>Null when the node's activation can be fused into our epilogues, else why not.</summary>
    public static string? Check(Node node)
    {
        try
        {
            Parse(node);
            return null;
        }
        catch (NotSupportedException e)
        {
            return e.Message;
        }
    }

    /// <summary>The node's activation; throws <see cref="NotSupportedException"/> for one the epilogue cannot apply.</summary>
    public static FusedActivation Parse(Node node)
    {
        var name = node.GetString("activation", "");
        var p = node.Attr("activation_params")?.AsFloats() ?? [];
        float Param(int i, string attr, float fallback) =>
            i < p.Length ? p[i] : node.Attr(attr) is { } a ? a.AsFloat() : fallback;
        return name switch
        {
            "" => FusedActivation.None,
            "Relu" => FusedActivation.Relu,
            "Clip" => FusedActivation.Clip(Param(0, "activation_alpha", float.MinValue), Param(1, "activation_beta", float.MaxValue)),
            "LeakyRelu" => FusedActivation.LeakyRelu(Param(0, "activation_alpha", 0.01f)),
            "HardSigmoid" => FusedActivation.HardSigmoid(Param(0, "activation_alpha", 0.2f), Param(1, "activation_beta", 0.5f)),
            "HardSwish" => FusedActivation.TimesHardSigmoid(Param(0, "activation_alpha", 1f / 6), Param(1, "activation_beta", 0.5f)),
            _ => throw new NotSupportedException($"fused activation '{name}' is not supported (Relu, Clip, LeakyRelu, HardSigmoid, HardSwish are)"),
        };
    }
}
