using OnDevice.Compression.Calibration;
using OnDevice.Core;

namespace OnDevice.Compression.Quantization;

/// <summary>How quantized layers are written as ONNX.</summary>
public enum QuantFormat
{
    /// <summary>DequantizeLinear on weights (per-axis, opset-21 blocked); Q/DQ pairs on activations when ranges are given.</summary>
    Qdq,
    /// <summary>QLinearConv/QLinearMatMul with activation ranges; MatMulInteger + DynamicQuantizeLinear without.</summary>
    QOperator,
    /// <summary>com.microsoft MatMulNBits for MatMul/Gemm weights (Conv weights as DequantizeLinear).</summary>
    MatMulNBits,
}

/// <summary>The precision one layer gets (chosen by the user's scheme, or per layer by a size budget).</summary>
public abstract record LayerPlan
{
    /// <summary>Short label for reports ("int8 channel sym fp32-scales", "fp16", "pal4").</summary>
    public abstract string Label { get; }
}

/// <summary>Keep the weight in float32.</summary>
public sealed record FloatPlan : LayerPlan
{
    /// <inheritdoc/>
    public override string Label => "fp32";
}

/// <summary>Store the weight as float16 with a Cast back to float32.</summary>
public sealed record Fp16Plan : LayerPlan
{
    /// <inheritdoc/>
    public override string Label => "fp16";
}

/// <summary>Quantize the weight on <paramref name="Scheme"/> (matrix view: axis 0 per-channel, axis 1 blocked).</summary>
public sealed record IntPlan(QuantScheme Scheme) : LayerPlan
{
    /// <inheritdoc/>
    public override string Label => Describe(Scheme);

    /// <summary>A short description of a scheme.</summary>
    public static string Describe(QuantScheme s) =>
        $"{s.DType.Name()} {(s.Granularity switch { Granularity.PerTensor => "tensor", Granularity.PerChannel => "channel", _ => $"block{s.BlockSize}" })} {(s.Symmetric ? "sym" : "asym")}{(s.Fp16Scales ? " fp16-scales" : "")}";
}

/// <summary>Palettize the weight: <paramref name="Bits"/>-bit indices into k-means centroids, one codebook per <paramref name="GroupSize"/> output channels (0 = per tensor).</summary>
public sealed record PalettePlan(int Bits, int GroupSize = 0) : LayerPlan
{
    /// <inheritdoc/>
    public override string Label => GroupSize > 0 ? $"pal{Bits} g{GroupSize}" : $"pal{Bits}";
}

/// <summary>Options of <see cref="Quantizer"/>.</summary>
public sealed record QuantizeOptions
{
    /// <summary>The weight grid for every layer (depthwise convolutions per-tensor are upgraded to per-channel).</summary>
    public QuantScheme Scheme { get; init; } = new(8, true, true, Granularity.PerChannel);

    /// <summary>Output form.</summary>
    public QuantFormat Format { get; init; } = QuantFormat.Qdq;

    /// <summary>Glob patterns (node or weight names) of layers to leave in float.</summary>
    public IReadOnlyList<string> Exclude { get; init; } = [];

    /// <summary>
    /// Makes the weight rounder (RTN when null). The GPTQ rounder needs the float model and calibration data,
    /// so it is built here: the CLI wires <c>--method gptq</c> through this.
    /// </summary>
    public Func<Model, CalibrationSet?, IWeightRounder>? RounderFactory { get; init; }

    /// <summary>Activation ranges by value name (static quantization); null = weight-only or dynamic.</summary>
    public IReadOnlyDictionary<string, ActivationRange>? ActivationRanges { get; init; }

    /// <summary>Activation element type for static quantization: uint8 or int8.</summary>
    public DType ActivationType { get; init; } = DType.UInt8;

    /// <summary>Calibration samples: layer output errors in the report are measured on them (optional).</summary>
    public CalibrationSet? Calibration { get; init; }

    /// <summary>The plan for every layer not in <see cref="PerLayer"/> (null = <see cref="IntPlan"/> of <see cref="Scheme"/>).</summary>
    public LayerPlan? Plan { get; init; }

    /// <summary>With <see cref="Calibration"/>: also measure each layer alone (one model run per layer and sample) for the sensitivity rank.</summary>
    public bool MeasureSensitivity { get; init; } = true;

    /// <summary>Per-layer plans (layer label → plan) overriding <see cref="Scheme"/>, e.g. from a size budget.</summary>
    public IReadOnlyDictionary<string, LayerPlan>? PerLayer { get; init; }

    /// <summary>Activations (value names) a static QDQ model leaves float: no Q/DQ pair is put on them.</summary>
    public IReadOnlySet<string>? FloatActivations { get; init; }

    /// <summary>
    /// Keep this many of the most sensitive quantization sites at higher precision (needs <see cref="Calibration"/>):
    /// each activation of a static QDQ model and each weight below 8 bits is ranked by the model-output error with only
    /// it quantized; the top ones stay float (activations) or become int8 per-channel (weights). 0 = off.
    /// </summary>
    public int KeepSensitive { get; init; }

    /// <summary>
    /// With <see cref="KeepSensitive"/>: only weights with at most this many elements are candidates (0 = any size), so
    /// the layers raised to int8 are small ones (stem, depthwise, squeeze-excitation) and the model stays near int4 size;
    /// likewise only activations whose reading layers have at most this many weights may stay float, so the layers
    /// forced to run in float are cheap ones.
    /// </summary>
    public long KeepSensitiveMaxParameters { get; init; }

    /// <summary>
    /// Where a static QDQ model rounds a quantized layer's output: on the op's output (<see cref="QdqPlacement.Ops"/>,
    /// the default) or after the element-wise chain that follows it (<see cref="QdqPlacement.Activations"/>).
    /// </summary>
    public QdqPlacement Placement { get; init; } = QdqPlacement.Ops;

    /// <summary>
    /// Before finding weights, fold BatchNormalization and constant per-channel Mul/Add/Sub/Div that directly follow a
    /// Conv into its weight and bias (<see cref="ConvFolding"/>). Null (the default) folds when
    /// <see cref="Placement"/> is <see cref="QdqPlacement.Activations"/> or <see cref="Equalize"/> is on, and not
    /// otherwise: ONNX Runtime 1.30 stops fusing DQ→Conv→Q into QLinearConv for folded convs of the ops placement
    /// (PP-OCRv4 rec: 5 of 38 fused instead of 37, twice its time), so that placement's files stay as they were.
    /// </summary>
    public bool? FoldConvAffine { get; init; }

    /// <summary>Whether <see cref="FoldConvAffine"/> (or its default) folds.</summary>
    public bool Folds => FoldConvAffine ?? (Placement == QdqPlacement.Activations || Equalize);

    /// <summary>
    /// Cross-layer equalization of Conv → [Relu] → depthwise Conv pairs before quantizing (<see cref="CrossLayerEqualization"/>;
    /// needs <see cref="Calibration"/>, whose first samples give the per-channel ranges).
    /// </summary>
    public bool Equalize { get; init; }

    /// <summary>Progress of long stages (sensitivity measurement).</summary>
    public IProgress<StageProgress>? Progress { get; init; }

    /// <summary>Checks the combination before any work.</summary>
    public void Validate()
    {
        if (KeepSensitive < 0) throw new CompressionException($"--keep-sensitive must be 0 or more, not {KeepSensitive}");
        if (KeepSensitiveMaxParameters < 0) throw new CompressionException($"--keep-sensitive-max-params must be 0 or more, not {KeepSensitiveMaxParameters}");
        if (KeepSensitive > 0 && Calibration is null)
            throw new CompressionException("--keep-sensitive needs --calibration DIR (sensitivity is measured on calibration samples)");
        if (Equalize && Calibration is null)
            throw new CompressionException("--equalize needs --calibration DIR (per-channel ranges are measured on calibration samples)");
        var s = Scheme;
        if (s.Bits is not (4 or 8)) throw new CompressionException($"weights must be 4 or 8 bits, not {s.Bits}");
        if (s.Granularity == Granularity.Blocked && s.BlockSize is not (16 or 32 or 64 or 128))
            throw new CompressionException($"block size must be 16, 32, 64 or 128, not {s.BlockSize}");
        if (ActivationType is not (DType.UInt8 or DType.Int8))
            throw new CompressionException($"activations must be int8 or uint8, not {ActivationType.Name()}");
        if (Format == QuantFormat.QOperator && (s.Bits != 8 || s.Granularity == Granularity.Blocked))
            throw new CompressionException("--format qoperator needs 8-bit weights per tensor or per channel (QLinearConv, QLinearMatMul and MatMulInteger have no 4-bit or blocked form)");
        if (Format == QuantFormat.MatMulNBits && s.Granularity != Granularity.Blocked)
            throw new CompressionException("--format matmulnbits needs blocked weights (--granularity block:N): MatMulNBits stores one scale per block");
    }
}
