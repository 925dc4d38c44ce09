namespace OnDevice.Compression.Quantization;

/// <summary>The observed range of an activation (a graph value) over a calibration set.</summary>
/// <param name="Min">Smallest value the calibrator chose to represent.</param>
/// <param name="Max">Largest value the calibrator chose to represent.</param>
public readonly record struct ActivationRange(float Min, float Max);

/// <summary>
/// A weight tensor seen as a matrix W[Rows, Columns]: rows are output channels, columns the reduction
/// (K for MatMul/Gemm, C/group·kH·kW for Conv, in im2col order). Row-major.
/// </summary>
/// <param name="Name">The weight's graph name (initializer or Constant output).</param>
/// <param name="Data">Rows·Columns floats, row-major.</param>
/// <param name="Rows">Output channels.</param>
/// <param name="Columns">Reduction length.</param>
public sealed record WeightMatrix(string Name, float[] Data, int Rows, int Columns);

/// <summary>
/// Turns a float weight matrix into integers on a grid (round-to-nearest, GPTQ, ...). Per-channel schemes use
/// axis 0 (rows); blocked schemes block along axis 1 (the reduction).
/// </summary>
public interface IWeightRounder
{
    /// <summary>Short name for reports ("rtn", "gptq").</summary>
    string Name { get; }

    /// <summary>Quantizes <paramref name="weight"/>; the result's <see cref="QuantizedWeight.Dims"/> are [Rows, Columns].</summary>
    QuantizedWeight Quantize(WeightMatrix weight, QuantScheme scheme);
}

/// <summary>
/// A rounder that also corrects the layer's bias (bias correction): after <see cref="IWeightRounder.Quantize"/>, the
/// quantizer adds <see cref="BiasCorrection"/> (one value per output channel) to the layer's bias.
/// </summary>
public interface IBiasCorrectingRounder : IWeightRounder
{
    /// <summary>The correction for the weight quantized last under <paramref name="weight"/>, or null for none.</summary>
    float[]? BiasCorrection(string weight);
}
