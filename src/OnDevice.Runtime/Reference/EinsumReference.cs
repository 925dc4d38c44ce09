namespace OnDevice.Runtime.Reference;

/// <summary>A parsed Einsum equation: a label per dimension of each operand and of the output, and every label's size.
/// Letters are labelled by their character code; the dimensions covered by "..." get labels from
/// <see cref="EllipsisLabel"/> up, aligned from the right as numpy broadcasting aligns them.</summary>
public sealed class EinsumEquation
{
    /// <summary>The label of the first ellipsis dimension.</summary>
    public const int EllipsisLabel = 1000;

    private EinsumEquation(int[][] inputs, int[] output, Dictionary<int, int> sizes)
    {
        Inputs = inputs;
        Output = output;
        Sizes = sizes;
    }

    /// <summary>Labels of each operand's dimensions.</summary>
    public int[][] Inputs { get; }

    /// <summary>Labels of the output's dimensions.</summary>
    public int[] Output { get; }

    /// <summary>Size of every label (dimensions of size 1 broadcast against larger ones).</summary>
    public IReadOnlyDictionary<int, int> Sizes { get; }

    /// <summary>Parses <paramref name="equation"/> for operands of the given shapes; throws <see cref="InvalidOperationException"/> when they do not fit.</summary>
    public static EinsumEquation Parse(string equation, IReadOnlyList<int[]> shapes)
    {
        var eq = new string(equation.Where(c => !char.IsWhiteSpace(c)).ToArray());
        var sides = eq.Split("->");
        if (sides.Length > 2) throw new InvalidOperationException($"Einsum: '{equation}' has more than one '->'");
        var terms = sides[0].Split(',');
        if (terms.Length != shapes.Count) throw new InvalidOperationException($"Einsum: '{equation}' names {terms.Length} operands but {shapes.Count} are given");
        var parsed = terms.Select(Term).ToArray();
        int ell = 0;
        for (int i = 0; i < parsed.Length; i++)
        {
            var (letters, hasEllipsis, at) = parsed[i];
            int e = shapes[i].Length - letters.Count;
            if (e < 0 || (!hasEllipsis && e != 0))
                throw new InvalidOperationException($"Einsum: term '{terms[i]}' does not match an operand of rank {shapes[i].Length}");
            ell = Math.Max(ell, e);
        }
        var inputs = new int[parsed.Length][];
        for (int i = 0; i < parsed.Length; i++)
        {
            var (letters, hasEllipsis, at) = parsed[i];
            int e = shapes[i].Length - letters.Count;
            var labels = new List<int>(letters);
            if (hasEllipsis) labels.InsertRange(at, Enumerable.Range(EllipsisLabel + ell - e, e));
            inputs[i] = [.. labels];
        }
        int[] output;
        if (sides.Length == 2)
        {
            var (letters, hasEllipsis, at) = Term(sides[1]);
            var labels = new List<int>(letters);
            if (hasEllipsis) labels.InsertRange(at, Enumerable.Range(EllipsisLabel, ell)); // without "...", ellipsis dimensions are summed
            output = [.. labels];
            if (output.Distinct().Count() != output.Length) throw new InvalidOperationException($"Einsum: output of '{equation}' repeats a label");
            foreach (var l in output)
                if (l < EllipsisLabel && !inputs.Any(x => x.Contains(l))) throw new InvalidOperationException($"Einsum: output label '{(char)l}' is in no operand");
        }
        else
        {
            var counts = inputs.SelectMany(l => l).Where(l => l < EllipsisLabel).GroupBy(l => l).Where(g => g.Count() == 1).Select(g => g.Key).Order();
            output = [.. Enumerable.Range(EllipsisLabel, ell), .. counts];
        }
        var sizes = new Dictionary<int, int>();
        for (int i = 0; i < inputs.Length; i++)
            for (int d = 0; d < inputs[i].Length; d++)
            {
                int l = inputs[i][d], s = shapes[i][d];
                if (!sizes.TryGetValue(l, out int cur) || cur == 1) sizes[l] = s;
                else if (s != 1 && s != cur) throw new InvalidOperationException($"Einsum: label {Name(l)} has sizes {cur} and {s}");
            }
        foreach (var l in output) sizes.TryAdd(l, 1);
        return new EinsumEquation(inputs, output, sizes);
    }

    private static (List<int> Letters, bool Ellipsis, int At) Term(string t)
    {
        var letters = new List<int>();
        bool ellipsis = false;
        int at = 0;
        for (int i = 0; i < t.Length; i++)
        {
            if (t[i] == '.')
            {
                if (ellipsis || i + 2 >= t.Length || t[i + 1] != '.' || t[i + 2] != '.') throw new InvalidOperationException($"Einsum: bad ellipsis in term '{t}'");
                ellipsis = true;
                at = letters.Count;
                i += 2;
            }
            else if (char.IsAsciiLetter(t[i])) letters.Add(t[i]);
            else throw new InvalidOperationException($"Einsum: unexpected character '{t[i]}' in term '{t}'");
        }
        return (letters, ellipsis, at);
    }

    /// <summary>A label as text: its letter, or "...k" for ellipsis dimensions.</summary>
    public static string Name(int label) => label >= EllipsisLabel ? $"...{label - EllipsisLabel}" : ((char)label).ToString();
}

/// <summary>Scalar definition of Einsum: one loop over every combination of label values, products of the operands'
/// elements summed into the output (repeated labels take diagonals, size-1 dimensions broadcast).</summary>
public static class EinsumReference
{
    /// <summary>Evaluates <paramref name="equation"/> on the operands (values in row-major order); returns the output and its shape.</summary>
    public static (double[] Values, int[] Shape) Evaluate(string equation, IReadOnlyList<(double[] Values, int[] Shape)> operands)
    {
        var eq = EinsumEquation.Parse(equation, operands.Select(o => o.Shape).ToList());
        var all = eq.Output.Concat(eq.Inputs.SelectMany(l => l).Except(eq.Output).Distinct()).ToArray();
        var size = all.Select(l => eq.Sizes[l]).ToArray();
        var outShape = eq.Output.Select(l => eq.Sizes[l]).ToArray();
        int outCount = outShape.Aggregate(1, (p, d) => p * d);
        var result = new double[outCount];
        long total = size.Aggregate(1L, (p, d) => p * d);
        var value = new Dictionary<int, int>();
        for (long i = 0; i < total; i++)
        {
            long rem = i;
            for (int k = all.Length - 1; k >= 0; k--) { value[all[k]] = (int)(rem % size[k]); rem /= size[k]; }
            double p = 1;
            for (int o = 0; o < operands.Count; o++)
            {
                var (vals, shape) = operands[o];
                int off = 0;
                for (int d = 0; d < shape.Length; d++) off = off * shape[d] + (shape[d] == 1 ? 0 : value[eq.Inputs[o][d]]);
                p *= vals[off];
            }
            int oi = 0;
            for (int d = 0; d < eq.Output.Length; d++) oi = oi * outShape[d] + value[eq.Output[d]];
            result[oi] += p;
        }
        return (result, outShape);
    }
}
