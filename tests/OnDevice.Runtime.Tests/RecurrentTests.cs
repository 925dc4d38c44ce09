using OnDevice.Core;
using OnDevice.Runtime.Reference;
using Act = OnDevice.Runtime.Reference.RecurrentReference.Activation;
using Attr = OnDevice.Core.Attribute;

namespace OnDevice.Runtime.Tests;

/// <summary>LSTM, GRU and RNN kernels against <see cref="RecurrentReference"/>.</summary>
[Trait("Category", "Kernels")]
public class RecurrentTests
{
    public sealed record Case(string Name, string Cell, string Direction, int Seq, int Batch, int Input, int Hidden, bool Bias, bool Lens,
        bool Initial, bool Peepholes = false, float? Clip = null, bool InputForget = false, bool LinearBeforeReset = false, int Layout = 0,
        string[]? Activations = null, float[]? Alphas = null, float[]? Betas = null)
    {
        public override string ToString() => Name;
    }

    public static TheoryData<Case> Cases() => new()
    {
        new Case("lstm forward", "LSTM", "forward", 5, 3, 4, 6, true, false, true),
        new Case("lstm reverse lens", "LSTM", "reverse", 6, 4, 3, 5, true, true, true),
        new Case("lstm bidirectional peepholes clip", "LSTM", "bidirectional", 4, 2, 5, 7, true, true, true, Peepholes: true, Clip: 0.7f),
        new Case("lstm input_forget layout 1", "LSTM", "bidirectional", 3, 3, 4, 5, true, true, true, InputForget: true, Layout: 1),
        new Case("lstm silero-like 128", "LSTM", "forward", 2, 1, 128, 128, true, false, true),
        new Case("lstm activations", "LSTM", "forward", 3, 2, 3, 4, true, false, false,
            Activations: ["HardSigmoid", "LeakyRelu", "ScaledTanh"], Alphas: [0.3f, 0.05f, 1.5f], Betas: [0.4f, 0.8f]),
        new Case("gru forward", "GRU", "forward", 5, 3, 4, 6, true, false, true),
        new Case("gru linear_before_reset bidi lens", "GRU", "bidirectional", 6, 3, 3, 5, true, true, true, LinearBeforeReset: true),
        new Case("gru reverse no bias layout 1 clip", "GRU", "reverse", 4, 2, 5, 4, false, true, false, Clip: 0.5f, Layout: 1),
        new Case("gru activations", "GRU", "forward", 3, 2, 3, 4, true, false, true, Activations: ["Softsign", "Elu"], Alphas: [0.7f]),
        new Case("lstm batch 10 (packed run-time weights)", "LSTM", "bidirectional", 3, 10, 6, 5, true, true, true, Peepholes: true),
        new Case("gru batch 9 (packed run-time weights)", "GRU", "forward", 2, 9, 4, 7, true, true, true),
        new Case("gru lbr batch 9 (packed run-time weights)", "GRU", "reverse", 2, 9, 4, 7, true, false, true, LinearBeforeReset: true),
        new Case("rnn forward", "RNN", "forward", 5, 3, 4, 6, true, false, true),
        new Case("rnn bidi lens relu", "RNN", "bidirectional", 4, 3, 3, 5, true, true, true, Activations: ["Relu", "Softplus"]),
    };

    private static Tensor T(float[] v, params int[] shape) => Tensor.FromArray<float>(v, shape.Select(d => (long)d).ToArray());

    private static double[] D(float[] v) => v.Select(x => (double)x).ToArray();

    /// <summary>[a, b, rest] → [b, a, rest] (layout 0 ↔ 1 for X and states; Y via two swaps).</summary>
    private static float[] Swap01(float[] v, int a, int b, int rest)
    {
        var r = new float[v.Length];
        for (int i = 0; i < a; i++)
            for (int j = 0; j < b; j++)
                Array.Copy(v, (i * b + j) * rest, r, (j * a + i) * rest, rest);
        return r;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Recurrent_MatchesReference(Case k)
    {
        int gates = k.Cell switch { "LSTM" => 4, "GRU" => 3, _ => 1 };
        int dirs = k.Direction == "bidirectional" ? 2 : 1, gh = gates * k.Hidden;
        var x = NodeRunner.Random(k.Seq * k.Batch * k.Input, 1);
        var w = NodeRunner.Random(dirs * gh * k.Input, 2, -0.5f, 0.5f);
        var r = NodeRunner.Random(dirs * gh * k.Hidden, 3, -0.5f, 0.5f);
        var b = k.Bias ? NodeRunner.Random(dirs * 2 * gh, 4) : null;
        var lens = k.Lens ? Enumerable.Range(0, k.Batch).Select(i => Math.Max(1, k.Seq - i)).ToArray() : null;
        var h0 = k.Initial ? NodeRunner.Random(dirs * k.Batch * k.Hidden, 5) : null;
        var c0 = k.Initial && k.Cell == "LSTM" ? NodeRunner.Random(dirs * k.Batch * k.Hidden, 6) : null;
        var p = k.Peepholes ? NodeRunner.Random(dirs * 3 * k.Hidden, 7) : null;

        string[] defaults = k.Cell switch { "LSTM" => ["Sigmoid", "Tanh", "Tanh"], "GRU" => ["Sigmoid", "Tanh"], _ => ["Tanh"] };
        var names = k.Activations ?? defaults;
        if (names.Length == defaults.Length && dirs == 2) names = [.. names, .. names];
        var acts = new Act[names.Length];
        int ai = 0, bi = 0;
        for (int i = 0; i < names.Length; i++)
        {
            var (alpha, beta, usesA, usesB) = names[i] switch
            {
                "HardSigmoid" => (0.2, 0.5, true, true),
                "LeakyRelu" => (0.01, 0.0, true, false),
                "ScaledTanh" => (1.0, 1.0, true, true),
                "Elu" => (1.0, 0.0, true, false),
                _ => (0.0, 0.0, false, false),
            };
            if (usesA && k.Alphas is { } al && ai < al.Length) alpha = al[ai++];
            if (usesB && k.Betas is { } be && bi < be.Length) beta = be[bi++];
            acts[i] = new Act(names[i], alpha, beta);
        }
        var inputs = new RecurrentReference.Inputs
        {
            X = D(x), Seq = k.Seq, Batch = k.Batch, Input = k.Input, Hidden = k.Hidden, W = D(w), R = D(r), B = b is null ? null : D(b),
            SequenceLens = lens, InitialH = h0 is null ? null : D(h0), InitialC = c0 is null ? null : D(c0), P = p is null ? null : D(p),
            Direction = k.Direction, Activations = acts, Clip = k.Clip,
        };
        var expected = k.Cell switch
        {
            "LSTM" => RecurrentReference.Lstm(inputs, k.InputForget),
            "GRU" => RecurrentReference.Gru(inputs, k.LinearBeforeReset),
            _ => RecurrentReference.Rnn(inputs),
        };

        int seq = k.Seq, batch = k.Batch, hid = k.Hidden;
        bool l1 = k.Layout == 1;
        var xIn = l1 ? Swap01(x, seq, batch, k.Input) : x;
        var h0In = h0 is not null && l1 ? Swap01(h0, dirs, batch, hid) : h0;
        var c0In = c0 is not null && l1 ? Swap01(c0, dirs, batch, hid) : c0;
        var inNames = new List<string> { "x", "w", "r", b is null ? "" : "b", lens is null ? "" : "lens", h0 is null ? "" : "h0" };
        var feeds = new List<Tensor?>
        {
            l1 ? T(xIn, batch, seq, k.Input) : T(xIn, seq, batch, k.Input), T(w, dirs, gh, k.Input), T(r, dirs, gh, hid),
            b is null ? null : T(b, dirs, 2 * gh), lens is null ? null : Tensor.FromArray<int>(lens, [batch]),
            h0In is null ? null : l1 ? T(h0In, batch, dirs, hid) : T(h0In, dirs, batch, hid),
        };
        if (k.Cell == "LSTM")
        {
            inNames.Add(c0In is null ? "" : "c0");
            feeds.Add(c0In is null ? null : l1 ? T(c0In, batch, dirs, hid) : T(c0In, dirs, batch, hid));
            inNames.Add(p is null ? "" : "p");
            feeds.Add(p is null ? null : T(p, dirs, 3 * hid));
        }
        var outNames = k.Cell == "LSTM" ? new[] { "y", "yh", "yc" } : ["y", "yh"];
        var node = new Node(k.Cell, inNames, outNames)
            .With(Attr.Of("hidden_size", (long)hid)).With(Attr.Of("direction", k.Direction)).With(Attr.Of("layout", (long)k.Layout));
        if (k.Clip is { } clip) node.With(Attr.Of("clip", clip));
        if (k.InputForget) node.With(Attr.Of("input_forget", 1L));
        if (k.LinearBeforeReset) node.With(Attr.Of("linear_before_reset", 1L));
        if (k.Activations is not null) node.With(Attr.Of("activations", k.Activations));
        if (k.Alphas is not null) node.With(Attr.Of("activation_alpha", k.Alphas));
        if (k.Betas is not null) node.With(Attr.Of("activation_beta", k.Betas));

        foreach (bool constant in new[] { false, true })
            foreach (int threads in new[] { 1, 2 })
            {
                var init = constant ? new Dictionary<string, Tensor> { ["w"] = feeds[1]!, ["r"] = feeds[2]! } : null;
                var outs = NodeRunner.Run(node, feeds, opset: 14, threads: threads, initializers: init);
                var ey = expected.Y.Select(v => (float)v).ToArray();
                var eh = expected.H.Select(v => (float)v).ToArray();
                if (l1)
                {
                    // [seq, dirs, batch, hid] → [batch, seq, dirs, hid]
                    var t = Swap01(ey, seq, dirs * batch, hid); // [dirs*batch, seq, hid] viewed as [dirs, batch, seq, hid]
                    t = Swap01(t, dirs, batch * seq, hid);      // [batch*seq, dirs, hid] = [batch, seq, dirs, hid]
                    ey = t;
                    eh = Swap01(eh, dirs, batch, hid);
                }
                NodeRunner.Close(ey, outs[0].ToFloatArray(), 1e-4f, 1e-5f);
                NodeRunner.Close(eh, outs[1].ToFloatArray(), 1e-4f, 1e-5f);
                if (k.Cell == "LSTM")
                {
                    var ec = expected.C.Select(v => (float)v).ToArray();
                    if (l1) ec = Swap01(ec, dirs, batch, hid);
                    NodeRunner.Close(ec, outs[2].ToFloatArray(), 1e-4f, 1e-5f);
                }
            }
    }
}
