namespace OnDevice.Runtime.Reference;

/// <summary>
/// Scalar definitions (in double) of the ONNX recurrent operators LSTM, GRU and RNN for layout 0 (X [seq, batch, input];
/// Y [seq, dirs, batch, hidden]; states [dirs, batch, hidden]). Directions run independently; a batch entry with
/// sequence length L runs L steps (forward: t = 0..L−1, reverse: t = L−1..0), its later Y rows are zero and its final
/// state is the state after its last step.
/// </summary>
public static class RecurrentReference
{
    /// <summary>An activation by ONNX name with its parameters.</summary>
    /// <param name="Name">Activation name (case-insensitive), e.g. Sigmoid, Tanh, Relu, LeakyRelu, HardSigmoid.</param>
    /// <param name="Alpha">First parameter where the function has one.</param>
    /// <param name="Beta">Second parameter where the function has one.</param>
    public readonly record struct Activation(string Name, double Alpha = 0, double Beta = 0)
    {
        /// <summary>Applies the function.</summary>
        public double Apply(double x) => Name.ToLowerInvariant() switch
        {
            "sigmoid" => 1 / (1 + Math.Exp(-x)),
            "tanh" => Math.Tanh(x),
            "relu" => Math.Max(0, x),
            "affine" => Alpha * x + Beta,
            "leakyrelu" => x >= 0 ? x : Alpha * x,
            "thresholdedrelu" => x > Alpha ? x : 0,
            "scaledtanh" => Alpha * Math.Tanh(Beta * x),
            "hardsigmoid" => Math.Max(0, Math.Min(1, Alpha * x + Beta)),
            "elu" => x >= 0 ? x : Alpha * (Math.Exp(x) - 1),
            "softsign" => x / (1 + Math.Abs(x)),
            "softplus" => Math.Log(1 + Math.Exp(x)),
            _ => throw new ArgumentException($"unknown activation {Name}"),
        };
    }

    /// <summary>Common inputs of a recurrent operator (layout 0).</summary>
    public sealed class Inputs
    {
        /// <summary>X [seq, batch, input].</summary>
        public required double[] X { get; init; }
        /// <summary>Sequence length.</summary>
        public required int Seq { get; init; }
        /// <summary>Batch size.</summary>
        public required int Batch { get; init; }
        /// <summary>Input size.</summary>
        public required int Input { get; init; }
        /// <summary>Hidden size.</summary>
        public required int Hidden { get; init; }
        /// <summary>W [dirs, gates·hidden, input].</summary>
        public required double[] W { get; init; }
        /// <summary>R [dirs, gates·hidden, hidden].</summary>
        public required double[] R { get; init; }
        /// <summary>B [dirs, 2·gates·hidden] or null.</summary>
        public double[]? B { get; init; }
        /// <summary>Sequence lengths [batch] or null.</summary>
        public int[]? SequenceLens { get; init; }
        /// <summary>Initial hidden state [dirs, batch, hidden] or null.</summary>
        public double[]? InitialH { get; init; }
        /// <summary>Initial cell state [dirs, batch, hidden] (LSTM) or null.</summary>
        public double[]? InitialC { get; init; }
        /// <summary>Peepholes [dirs, 3·hidden] (LSTM) or null.</summary>
        public double[]? P { get; init; }
        /// <summary>"forward", "reverse" or "bidirectional".</summary>
        public string Direction { get; init; } = "forward";
        /// <summary>Activations for all directions, in order (LSTM: f, g, h per direction; GRU: f, g; RNN: f).</summary>
        public required Activation[] Activations { get; init; }
        /// <summary>Cell clip threshold (applied to gate pre-activations) or null.</summary>
        public double? Clip { get; init; }

        /// <summary>Number of directions.</summary>
        public int Dirs => Direction == "bidirectional" ? 2 : 1;
    }

    /// <summary>Outputs: Y [seq, dirs, batch, hidden], Y_h and Y_c [dirs, batch, hidden].</summary>
    public sealed record Outputs(double[] Y, double[] H, double[] C);

    private delegate void Cell(int dir, int b, double[] x, double[] h, double[] c);

    private static Outputs Run(Inputs p, int gates, Func<Inputs, int, Cell> cellFor)
    {
        int dirs = p.Dirs, seq = p.Seq, batch = p.Batch, hid = p.Hidden;
        var y = new double[seq * dirs * batch * hid];
        var yh = new double[dirs * batch * hid];
        var yc = new double[dirs * batch * hid];
        for (int d = 0; d < dirs; d++)
        {
            bool reverse = p.Direction == "reverse" || d == 1;
            var cell = cellFor(p, d);
            for (int b = 0; b < batch; b++)
            {
                var h = new double[hid];
                var c = new double[hid];
                for (int j = 0; j < hid; j++)
                {
                    h[j] = p.InitialH?[(d * batch + b) * hid + j] ?? 0;
                    c[j] = p.InitialC?[(d * batch + b) * hid + j] ?? 0;
                }
                int len = p.SequenceLens?[b] ?? seq;
                for (int s = 0; s < len; s++)
                {
                    int t = reverse ? len - 1 - s : s;
                    var x = new double[p.Input];
                    for (int i = 0; i < p.Input; i++) x[i] = p.X[(t * batch + b) * p.Input + i];
                    cell(d, b, x, h, c);
                    for (int j = 0; j < hid; j++) y[((t * dirs + d) * batch + b) * hid + j] = h[j];
                }
                for (int j = 0; j < hid; j++)
                {
                    yh[(d * batch + b) * hid + j] = h[j];
                    yc[(d * batch + b) * hid + j] = c[j];
                }
            }
        }
        return new Outputs(y, yh, yc);
    }

    /// <summary>Σ_k M[row, k]·v[k] for row of a [rows, v.Length] matrix at direction offset <paramref name="offset"/>.</summary>
    private static double Dot(double[] m, int offset, int row, double[] v)
    {
        double s = 0;
        for (int k = 0; k < v.Length; k++) s += m[offset + row * v.Length + k] * v[k];
        return s;
    }

    private static double Clip(Inputs p, double v) => p.Clip is { } c ? Math.Max(-c, Math.Min(c, v)) : v;

    /// <summary>
    /// LSTM (gates i, o, f, c): i = f(Wi·x + Ri·h + Pi⊙c + b), f = f(… + Pf⊙c), c̃ = g(Wc·x + Rc·h + b),
    /// C = f⊙c + i⊙c̃, o = f(… + Po⊙C), H = o⊙h(C). With <paramref name="inputForget"/>, f = 1 − i.
    /// </summary>
    public static Outputs Lstm(Inputs p, bool inputForget = false) => Run(p, 4, (q, d) =>
    {
        int hid = q.Hidden, wOff = d * 4 * hid * q.Input, rOff = d * 4 * hid * hid, bOff = d * 8 * hid, pOff = d * 3 * hid;
        var fAct = q.Activations[d * 3];
        var gAct = q.Activations[d * 3 + 1];
        var hAct = q.Activations[d * 3 + 2];
        return (dir, b, x, h, c) =>
        {
            var hPrev = (double[])h.Clone();
            for (int j = 0; j < hid; j++)
            {
                double Pre(int gate) => Dot(q.W, wOff, gate * hid + j, x) + Dot(q.R, rOff, gate * hid + j, hPrev)
                    + (q.B is null ? 0 : q.B[bOff + gate * hid + j] + q.B[bOff + 4 * hid + gate * hid + j]);
                double peepI = q.P is null ? 0 : q.P[pOff + j], peepO = q.P is null ? 0 : q.P[pOff + hid + j], peepF = q.P is null ? 0 : q.P[pOff + 2 * hid + j];
                double it = fAct.Apply(Clip(q, Pre(0) + peepI * c[j]));
                double ft = inputForget ? 1 - it : fAct.Apply(Clip(q, Pre(2) + peepF * c[j]));
                double ct = gAct.Apply(Clip(q, Pre(3)));
                double cNew = ft * c[j] + it * ct;
                double ot = fAct.Apply(Clip(q, Pre(1) + peepO * cNew));
                c[j] = cNew;
                h[j] = ot * hAct.Apply(cNew);
            }
        };
    });

    /// <summary>
    /// GRU (gates z, r, h): z = f(Wz·x + Rz·h + b), r = f(Wr·x + Rr·h + b), h̃ = g(Wh·x + Rh·(r⊙h) + Rbh + Wbh) or, with
    /// <paramref name="linearBeforeReset"/>, g(Wh·x + r⊙(Rh·h + Rbh) + Wbh); H = (1 − z)⊙h̃ + z⊙h.
    /// </summary>
    public static Outputs Gru(Inputs p, bool linearBeforeReset = false) => Run(p, 3, (q, d) =>
    {
        int hid = q.Hidden, wOff = d * 3 * hid * q.Input, rOff = d * 3 * hid * hid, bOff = d * 6 * hid;
        var fAct = q.Activations[d * 2];
        var gAct = q.Activations[d * 2 + 1];
        return (dir, b, x, h, c) =>
        {
            var hPrev = (double[])h.Clone();
            double Wb(int gate, int j) => q.B is null ? 0 : q.B[bOff + gate * hid + j];
            double Rb(int gate, int j) => q.B is null ? 0 : q.B[bOff + 3 * hid + gate * hid + j];
            var z = new double[hid];
            var r = new double[hid];
            for (int j = 0; j < hid; j++)
            {
                z[j] = fAct.Apply(Clip(q, Dot(q.W, wOff, j, x) + Dot(q.R, rOff, j, hPrev) + Wb(0, j) + Rb(0, j)));
                r[j] = fAct.Apply(Clip(q, Dot(q.W, wOff, hid + j, x) + Dot(q.R, rOff, hid + j, hPrev) + Wb(1, j) + Rb(1, j)));
            }
            var rh = new double[hid];
            for (int j = 0; j < hid; j++) rh[j] = r[j] * hPrev[j];
            for (int j = 0; j < hid; j++)
            {
                double pre = linearBeforeReset
                    ? Dot(q.W, wOff, 2 * hid + j, x) + r[j] * (Dot(q.R, rOff, 2 * hid + j, hPrev) + Rb(2, j)) + Wb(2, j)
                    : Dot(q.W, wOff, 2 * hid + j, x) + Dot(q.R, rOff, 2 * hid + j, rh) + Rb(2, j) + Wb(2, j);
                double ht = gAct.Apply(Clip(q, pre));
                h[j] = (1 - z[j]) * ht + z[j] * hPrev[j];
            }
        };
    });

    /// <summary>RNN: H = f(W·x + R·h + Wb + Rb).</summary>
    public static Outputs Rnn(Inputs p) => Run(p, 1, (q, d) =>
    {
        int hid = q.Hidden, wOff = d * hid * q.Input, rOff = d * hid * hid, bOff = d * 2 * hid;
        var fAct = q.Activations[d];
        return (dir, b, x, h, c) =>
        {
            var hPrev = (double[])h.Clone();
            for (int j = 0; j < hid; j++)
                h[j] = fAct.Apply(Clip(q, Dot(q.W, wOff, j, x) + Dot(q.R, rOff, j, hPrev) + (q.B is null ? 0 : q.B[bOff + j] + q.B[bOff + hid + j])));
        };
    });
}
