namespace OnDevice.Federated.Training;

/// <summary>
/// A small classifier head on frozen features: linear (softmax regression) when <see cref="Hidden"/> is 0, otherwise
/// one ReLU hidden layer. All parameters live in one flat vector (what federated averaging moves around). Each layer's
/// per-example gradient is an outer product δ ⊗ [a; 1], so its norm is exactly ‖δ‖·‖[a; 1]‖: DP-SGD clips per example
/// without materialising per-example gradients.
/// </summary>
public sealed class Head
{
    /// <summary>A zero-initialised (linear) or randomly initialised (MLP) head.</summary>
    public Head(int inputs, int classes, int hidden = 0, int seed = 0)
    {
        if (inputs < 1 || classes < 2 || hidden < 0) throw new FederatedException($"a head needs ≥ 1 input, ≥ 2 classes and ≥ 0 hidden units (got {inputs}, {classes}, {hidden})");
        Inputs = inputs;
        Classes = classes;
        Hidden = hidden;
        Parameters = new float[hidden == 0 ? classes * (inputs + 1) : hidden * (inputs + 1) + classes * (hidden + 1)];
        if (hidden > 0)
        {
            var rng = new Random(seed);
            double s1 = Math.Sqrt(2.0 / inputs), s2 = Math.Sqrt(1.0 / hidden);
            for (int i = 0; i < hidden * (inputs + 1); i++) Parameters[i] = (float)(s1 * Gauss(rng));
            for (int i = hidden * (inputs + 1); i < Parameters.Length; i++) Parameters[i] = (float)(s2 * Gauss(rng));
            for (int j = 0; j < hidden; j++) Parameters[j * (inputs + 1) + inputs] = 0;
        }
    }

    private static double Gauss(Random r) => Math.Sqrt(-2 * Math.Log(1 - r.NextDouble())) * Math.Cos(2 * Math.PI * r.NextDouble());

    /// <summary>Feature dimension.</summary>
    public int Inputs { get; }

    /// <summary>Number of classes.</summary>
    public int Classes { get; }

    /// <summary>Hidden units (0 = linear).</summary>
    public int Hidden { get; }

    /// <summary>All weights and biases, row-major, bias last in each row.</summary>
    public float[] Parameters { get; }

    /// <summary>A copy with the same parameters.</summary>
    public Head Clone()
    {
        var h = new Head(Inputs, Classes, Hidden);
        Parameters.CopyTo(h.Parameters, 0);
        return h;
    }

    private static float Dot(ReadOnlySpan<float> w, ReadOnlySpan<float> x) => VectorMath.Dot(w, x);

    /// <summary>Class scores for one example (<paramref name="hidden"/> receives the ReLU activations of an MLP).</summary>
    public void Logits(ReadOnlySpan<float> x, Span<float> logits, Span<float> hidden)
    {
        var p = Parameters.AsSpan();
        if (Hidden == 0)
        {
            for (int c = 0; c < Classes; c++)
            {
                var row = p.Slice(c * (Inputs + 1), Inputs + 1);
                logits[c] = Dot(row[..Inputs], x) + row[Inputs];
            }
            return;
        }
        for (int j = 0; j < Hidden; j++)
        {
            var row = p.Slice(j * (Inputs + 1), Inputs + 1);
            hidden[j] = Math.Max(0, Dot(row[..Inputs], x) + row[Inputs]);
        }
        var p2 = p[(Hidden * (Inputs + 1))..];
        for (int c = 0; c < Classes; c++)
        {
            var row = p2.Slice(c * (Hidden + 1), Hidden + 1);
            logits[c] = Dot(row[..Hidden], hidden) + row[Hidden];
        }
    }

    /// <summary>The predicted class.</summary>
    public int Predict(ReadOnlySpan<float> x)
    {
        Span<float> logits = stackalloc float[Classes];
        var hidden = Hidden > 0 ? new float[Hidden] : [];
        Logits(x, logits, hidden);
        int best = 0;
        for (int c = 1; c < Classes; c++) if (logits[c] > logits[best]) best = c;
        return best;
    }

    /// <summary>Fraction of <paramref name="data"/> classified correctly.</summary>
    public double Accuracy(Dataset data)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (data.Count == 0) return double.NaN;
        int ok = 0;
        for (int i = 0; i < data.Count; i++) if (Predict(data.Features(i)) == data.Labels[i]) ok++;
        return (double)ok / data.Count;
    }

    /// <summary>
    /// Adds <c>scale · min(1, clip/‖g‖) · g</c> for example (x, y) to <paramref name="gradSum"/>, where g is the gradient of
    /// the cross-entropy loss; returns ‖g‖ (exact, from the outer-product structure) and the loss. clip ≤ 0 means no clipping.
    /// </summary>
    public (double Norm, double Loss) AccumulateGradient(ReadOnlySpan<float> x, int y, Span<float> gradSum, double clip, float scale, GradientScratch s)
    {
        ArgumentNullException.ThrowIfNull(s);
        Logits(x, s.Logits, s.HiddenAct);
        float max = float.MinValue;
        for (int c = 0; c < Classes; c++) max = Math.Max(max, s.Logits[c]);
        double z = 0;
        for (int c = 0; c < Classes; c++) { s.Delta[c] = MathF.Exp(s.Logits[c] - max); z += s.Delta[c]; }
        double loss = Math.Log(z) - (s.Logits[y] - max);
        double d2 = 0;
        for (int c = 0; c < Classes; c++) { s.Delta[c] = (float)(s.Delta[c] / z) - (c == y ? 1 : 0); d2 += s.Delta[c] * (double)s.Delta[c]; }
        double x2 = Dot(x, x) + 1.0;
        var p = Parameters.AsSpan();
        double norm2;
        if (Hidden == 0)
        {
            norm2 = d2 * x2;
        }
        else
        {
            var p2 = p[(Hidden * (Inputs + 1))..];
            double h2 = Dot(s.HiddenAct, s.HiddenAct) + 1.0;
            double dh2 = 0;
            for (int j = 0; j < Hidden; j++)
            {
                float g = 0;
                if (s.HiddenAct[j] > 0) for (int c = 0; c < Classes; c++) g += p2[c * (Hidden + 1) + j] * s.Delta[c];
                s.DeltaHidden[j] = g;
                dh2 += g * (double)g;
            }
            norm2 = d2 * h2 + dh2 * x2;
        }
        double norm = Math.Sqrt(norm2);
        float f = scale * (float)(clip > 0 && norm > clip ? clip / norm : 1.0);
        if (Hidden == 0)
        {
            for (int c = 0; c < Classes; c++) AddOuter(gradSum.Slice(c * (Inputs + 1), Inputs + 1), x, f * s.Delta[c]);
        }
        else
        {
            for (int j = 0; j < Hidden; j++)
                if (s.DeltaHidden[j] != 0) AddOuter(gradSum.Slice(j * (Inputs + 1), Inputs + 1), x, f * s.DeltaHidden[j]);
            var g2 = gradSum[(Hidden * (Inputs + 1))..];
            for (int c = 0; c < Classes; c++) AddOuter(g2.Slice(c * (Hidden + 1), Hidden + 1), s.HiddenAct, f * s.Delta[c]);
        }
        return (norm, loss);
    }

    private static void AddOuter(Span<float> row, ReadOnlySpan<float> a, float coef)
    {
        VectorMath.Axpy(a, coef, row[..a.Length]);
        row[a.Length] += coef;
    }

    /// <summary>Scratch buffers for <see cref="AccumulateGradient"/> (one per thread).</summary>
    public GradientScratch NewScratch() => new(Classes, Hidden);
}

/// <summary>Per-thread work buffers of a <see cref="Head"/>.</summary>
public sealed class GradientScratch(int classes, int hidden)
{
    internal float[] Logits { get; } = new float[classes];
    internal float[] Delta { get; } = new float[classes];
    internal float[] HiddenAct { get; } = new float[hidden];
    internal float[] DeltaHidden { get; } = new float[hidden];
}
