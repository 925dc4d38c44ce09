#:project ../../src/OnDevice.Formats/OnDevice.Formats.csproj
#:property PublishAot=false
// Writes a perturbed copy of an ONNX model for `ondevice compare` experiments: every float weight with two or more
// dimensions is rounded to N-bit symmetric per-output-channel (axis 0) levels and stored back as float32
// ("fake quantization": the numerical effect of weight-only quantization, in a graph every runtime runs).
//   dotnet run bench/eval/fake-quant.cs -- IN.onnx OUT.onnx BITS
using OnDevice.Core;
using OnDevice.Formats.Onnx;

if (args.Length != 3 || !int.TryParse(args[2], out int bits) || bits is < 2 or > 16)
{
    Console.Error.WriteLine("usage: fake-quant IN.onnx OUT.onnx BITS (2..16)");
    return 2;
}
var model = OnnxReader.Read(args[0]);
ConstantLifting.Lift(model.Graph); // PaddleOCR stores weights as Constant nodes
int qmax = (1 << (bits - 1)) - 1, changed = 0;
foreach (var name in model.Graph.Initializers.Keys.ToList())
{
    var t = model.Graph.Initializers[name];
    if (t.DType != DType.Float32 || t.Dims.Length < 2) continue;
    var w = t.ToFloatArray();
    int rows = (int)t.Dims[0], cols = w.Length / rows;
    for (int r = 0; r < rows; r++)
    {
        var row = w.AsSpan(r * cols, cols);
        float max = 0;
        foreach (var v in row) max = Math.Max(max, Math.Abs(v));
        if (max == 0) continue;
        float scale = max / qmax;
        for (int i = 0; i < row.Length; i++) row[i] = Math.Clamp(MathF.Round(row[i] / scale), -qmax, qmax) * scale;
    }
    model.Graph.Initializers[name] = Tensor.FromArray<float>(w, t.Dims, name);
    changed++;
}
OnnxWriter.Write(model, args[1]);
Console.WriteLine($"{changed} weight tensors rounded to {bits}-bit per-channel levels -> {args[1]}");
return 0;
