using System.Runtime.InteropServices;
using OnDevice.Compression.Calibration;
using OnDevice.Compression.Quantization;
using OnDevice.Core;
using OnDevice.Formats;
using OnDevice.Formats.Onnx;
using OnDevice.Formats.Safetensors;

namespace OnDevice.DeltaSamples;

/// <summary>
/// Pairs of model versions for delta tests and the delta bench (this file is compiled into both): a recognizer
/// re-quantized with different settings, a fine-tuned head, and the same head change in safetensors form.
/// </summary>
public static class DeltaVariants
{
    /// <summary>The last MatMul/Gemm (the classifier head) of a graph and the name of its constant weight.</summary>
    public static (Node Node, string Weight) Head(Graph g)
    {
        var constants = new HashSet<string>(g.Nodes.Where(n => n.OpType == "Constant").SelectMany(n => n.Outputs), StringComparer.Ordinal);
        foreach (var n in Enumerable.Reverse(g.Nodes))
        {
            if (n.OpType is not ("MatMul" or "Gemm") || n.Inputs.Count < 2) continue;
            var w = n.Inputs[1];
            if (g.Initializers.ContainsKey(w) || constants.Contains(w)) return (n, w);
        }
        throw new InvalidOperationException("no MatMul/Gemm with a constant weight");
    }

    /// <summary>Int8 per-channel asymmetric RTN (the CLI default) of <paramref name="fp32"/> with the given changes, written to <paramref name="output"/>.</summary>
    public static string Quantize(string fp32, string output, Func<Model, QuantizeOptions, QuantizeOptions>? adjust = null)
    {
        var m = OnnxReader.Read(fp32, new OnnxReadOptions { MemoryMap = false });
        var options = new QuantizeOptions { Scheme = new QuantScheme(8, true, false, Granularity.PerChannel), MeasureSensitivity = false };
        if (adjust is not null) options = adjust(m, options);
        Quantizer.Quantize(m, options).Save(output);
        return output;
    }

    /// <summary>Re-quantized recognizer: v1 = int8 per-channel everywhere; v2 = the same, but the head stays float (a later release).</summary>
    public static (string V1, string V2) RequantizedHeadExcluded(string fp32, string dir)
    {
        var v1 = Quantize(fp32, Path.Combine(dir, "rq-v1.onnx"));
        var v2 = Quantize(fp32, Path.Combine(dir, "rq-v2.onnx"), (m, o) => o with { Exclude = [Head(m.Graph).Node.Name] });
        return (v1, v2);
    }

    /// <summary>Re-quantized recognizer: v1 = int8 per-channel asymmetric; v2 = int8 per-channel symmetric (every weight changes).</summary>
    public static (string V1, string V2) RequantizedSymmetric(string fp32, string dir)
    {
        var v1 = Quantize(fp32, Path.Combine(dir, "asym.onnx"));
        var v2 = Quantize(fp32, Path.Combine(dir, "sym.onnx"), (_, o) => o with { Scheme = o.Scheme with { Symmetric = true } });
        return (v1, v2);
    }

    /// <summary>Statically quantized recognizer re-calibrated: v1 with min-max activation ranges, v2 with percentile ranges (same weights).</summary>
    public static (string V1, string V2) RecalibratedStatic(string fp32, string calibrationDir, string dir)
    {
        string One(CalibrationMethod method, string name) => Quantize(fp32, Path.Combine(dir, name), (m, o) =>
        {
            var set = CalibrationSet.Load(calibrationDir, m.Graph);
            var ranges = ActivationCalibrator.Calibrate(m, set, new ActivationCalibrationOptions { Method = method, Threads = 2 }).Ranges;
            return o with { ActivationRanges = ranges, ActivationType = DType.Int8 };
        });
        return (One(CalibrationMethod.MinMax, "static-minmax.onnx"), One(CalibrationMethod.Percentile, "static-percentile.onnx"));
    }

    /// <summary>
    /// Fine-tuned head: v1 is the file as published; v2 is the same file with only the head's weight changed in
    /// place (each value moved by about 1 % of the weights' spread), as an exporter would write the fine-tuned model.
    /// </summary>
    public static (string V1, string V2) FineTunedHead(string fp32, string dir, int seed = 1)
    {
        var bytes = File.ReadAllBytes(fp32);
        var m = OnnxReader.Read(fp32, new OnnxReadOptions { MemoryMap = false });
        var (_, weight) = Head(m.Graph);
        var key = KeyOf(m.Graph, weight);
        var extent = TensorLayout.LocateOnnx(bytes).Single(e => e.Key == key);
        Perturb(MemoryMarshal.Cast<byte, float>(bytes.AsSpan((int)extent.Offset, (int)extent.Length)), seed);
        var v1 = Path.Combine(dir, "head-v1.onnx");
        var v2 = Path.Combine(dir, "head-v2.onnx");
        File.Copy(fp32, v1, overwrite: true);
        File.WriteAllBytes(v2, bytes);
        return (v1, v2);
    }

    /// <summary>The same fine-tuned head in safetensors form: every float weight of the model, v2 with the head changed.</summary>
    public static (string V1, string V2) SafetensorsHead(string fp32, string dir, int seed = 1)
    {
        var m = OnnxReader.Read(fp32, new OnnxReadOptions { MemoryMap = false, LiftConstants = true });
        var (_, weight) = Head(m.Graph);
        var tensors = m.Graph.Initializers.Values.Where(t => t.DType == DType.Float32 && t.ByteLength > 0).ToList();
        var v1 = Path.Combine(dir, "st-v1.safetensors");
        var v2 = Path.Combine(dir, "st-v2.safetensors");
        File.WriteAllBytes(v1, SafetensorsFile.ToBytes(tensors));
        Perturb(MemoryMarshal.Cast<byte, float>(m.Graph.Initializers[weight].MutableBytes), seed);
        File.WriteAllBytes(v2, SafetensorsFile.ToBytes(tensors));
        return (v1, v2);
    }

    /// <summary>The <see cref="TensorLayout"/> key of a constant: its initializer, or the value attribute of the Constant node making it.</summary>
    public static string KeyOf(Graph g, string value)
    {
        if (g.Initializers.ContainsKey(value)) return "init:" + value;
        var c = g.Nodes.Single(n => n.OpType == "Constant" && n.Outputs.Contains(value));
        return "node:" + (c.Name.Length > 0 ? c.Name : "->" + c.Outputs[0]) + "/value:";
    }

    private static void Perturb(Span<float> w, int seed)
    {
        var rng = new Random(seed);
        double mean = 0, sq = 0;
        foreach (var v in w) { mean += v; sq += (double)v * v; }
        mean /= w.Length;
        double std = Math.Sqrt(Math.Max(0, sq / w.Length - mean * mean));
        for (int i = 0; i < w.Length; i++)
        {
            double g = Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
            w[i] += (float)(0.01 * std * g);
        }
    }
}
