using System.Globalization;
using OnDevice.Core;
using OnDevice.Formats.Npy;
using OnDevice.Runtime;

namespace OnDevice.Cli;

/// <summary>Builds model inputs from the command line: <c>NAME=FILE.npy</c>, <c>NAME=NUMBER</c> (a scalar), or <c>--shape NAME=1x3x48x320</c> (deterministic random data).</summary>
public static class ModelInputs
{
    /// <summary>Inputs for <paramref name="session"/> from <c>--input</c> and <c>--shape</c> specifications; inputs not named get a shape from the model (symbolic dims = 1).</summary>
    public static Dictionary<string, Tensor> Build(InferenceSession session, IEnumerable<string> inputSpecs, IEnumerable<string> shapeSpecs, bool requireAll)
    {
        var declared = session.Inputs.ToDictionary(i => i.Name, StringComparer.Ordinal);
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var spec in inputSpecs)
        {
            var (name, value) = Split(spec, "--input");
            if (!declared.TryGetValue(name, out var decl)) throw new CliException($"--input names '{name}', but the model's inputs are: {Describe(session)}");
            var dtype = decl.TensorType?.ElementType ?? DType.Float32;
            if (double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var number) && !File.Exists(value))
                result[name] = Scalar(dtype, number, decl.TensorType?.Shape?.Rank ?? 0);
            else
            {
                if (!File.Exists(value)) throw new CliException($"--input {name}: file not found: {value}");
                result[name] = NpyFile.Read(value);
            }
        }
        var shapes = shapeSpecs.Select(s => Split(s, "--shape")).ToDictionary(p => p.Name, p => ParseDims(p.Value, p.Name), StringComparer.Ordinal);
        foreach (var name in shapes.Keys)
            if (!declared.ContainsKey(name)) throw new CliException($"--shape names '{name}', but the model's inputs are: {Describe(session)}");
        int seed = 1;
        foreach (var input in session.Inputs)
        {
            if (result.ContainsKey(input.Name)) continue;
            var tt = input.TensorType ?? throw new CliException($"input '{input.Name}' has no tensor type; give it with --input");
            long[] dims;
            if (shapes.TryGetValue(input.Name, out var given)) dims = given;
            else if (requireAll) throw new CliException($"input '{input.Name}' was not given; inputs: {Describe(session)}");
            else if (tt.Shape is null) throw new CliException($"input '{input.Name}' has no declared shape; give it with --shape {input.Name}=D0xD1x...");
            else dims = tt.Shape.Dims.Select(d => d.IsKnown ? d.Value : 1).ToArray();
            result[input.Name] = RandomTensor(tt.ElementType, dims, seed++);
        }
        return result;
    }

    /// <summary>Describes the model's inputs for messages.</summary>
    public static string Describe(InferenceSession s) => string.Join(", ", s.Inputs.Select(i => $"{i.Name} {i.Type?.ToString() ?? "?"}"));

    private static (string Name, string Value) Split(string spec, string option)
    {
        int eq = spec.IndexOf('=');
        if (eq <= 0) throw new CliException($"{option} '{spec}' is not of the form NAME=VALUE");
        return (spec[..eq], spec[(eq + 1)..]);
    }

    private static long[] ParseDims(string text, string name)
    {
        var parts = text.Split(['x', 'X', ','], StringSplitOptions.TrimEntries);
        var dims = new long[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!long.TryParse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture, out dims[i]))
                throw new CliException($"--shape {name}={text}: '{parts[i]}' is not a non-negative integer");
        return dims;
    }

    private static Tensor Scalar(DType dtype, double v, int rank)
    {
        long[] dims = Enumerable.Repeat(1L, rank).ToArray();
        return dtype switch
        {
            DType.Float32 => Tensor.FromArray<float>([(float)v], dims),
            DType.Float64 => Tensor.FromArray<double>([v], dims),
            DType.Int64 => Tensor.FromArray<long>([(long)v], dims),
            DType.Int32 => Tensor.FromArray<int>([(int)v], dims),
            DType.Bool => Tensor.FromArray<bool>([v != 0], dims),
            _ => throw new CliException($"cannot make a {dtype.Name()} scalar from the command line; use a .npy file"),
        };
    }

    /// <summary>Deterministic random data: floats uniform in [-1, 1), integers in [0, 10), bools alternating.</summary>
    public static Tensor RandomTensor(DType dtype, long[] dims, int seed)
    {
        var t = Tensor.Zeros(dtype, dims);
        var rng = new Random(seed);
        switch (dtype)
        {
            case DType.Float32: foreach (ref var x in t.AsMutableSpan<float>()) x = (float)(rng.NextDouble() * 2 - 1); break;
            case DType.Float64: foreach (ref var x in t.AsMutableSpan<double>()) x = rng.NextDouble() * 2 - 1; break;
            case DType.Float16: foreach (ref var x in t.AsMutableSpan<Half>()) x = (Half)(rng.NextDouble() * 2 - 1); break;
            case DType.Int64: foreach (ref var x in t.AsMutableSpan<long>()) x = rng.Next(10); break;
            case DType.Int32: foreach (ref var x in t.AsMutableSpan<int>()) x = rng.Next(10); break;
            case DType.Bool: { var s = t.MutableBytes; for (int i = 0; i < s.Length; i++) s[i] = (byte)(i & 1); break; }
            default: rng.NextBytes(t.MutableBytes); break;
        }
        return t;
    }
}
