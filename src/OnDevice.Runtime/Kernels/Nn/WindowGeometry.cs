using OnDevice.Core;

namespace OnDevice.Runtime.Kernels.Nn;

/// <summary>
/// The sliding-window attributes shared by Conv and the pools (kernel_shape, strides, dilations, pads, auto_pad,
/// ceil_mode) and the output size and padding they imply for a given input.
/// </summary>
internal sealed class WindowGeometry
{
    public int[]? KernelShape { get; private init; }
    public int[]? Strides { get; private init; }
    public int[]? Dilations { get; private init; }
    public int[]? Pads { get; private init; }
    public string AutoPad { get; private init; } = "NOTSET";
    public bool CeilMode { get; private init; }

    public static WindowGeometry Read(Node node) => new()
    {
        KernelShape = Ints(node, "kernel_shape"),
        Strides = Ints(node, "strides"),
        Dilations = Ints(node, "dilations"),
        Pads = Ints(node, "pads"),
        AutoPad = node.GetString("auto_pad", "NOTSET") is { Length: > 0 } s ? s : "NOTSET",
        CeilMode = node.GetInt("ceil_mode", 0) != 0,
    };

    private static int[]? Ints(Node node, string name) => node.GetInts(name)?.Select(v => checked((int)v)).ToArray();

    /// <summary>Null when the attributes are usable for <paramref name="spatialRank"/> spatial dimensions (when known), else why not.</summary>
    public string? Check(int? spatialRank)
    {
        if (AutoPad is not ("NOTSET" or "SAME_UPPER" or "SAME_LOWER" or "VALID")) return $"auto_pad '{AutoPad}' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID";
        if (spatialRank is int r)
        {
            if (KernelShape is { } k && k.Length != r) return $"kernel_shape has {k.Length} values for {r} spatial dimensions";
            if (Strides is { } s && s.Length != r) return $"strides has {s.Length} values for {r} spatial dimensions";
            if (Dilations is { } d && d.Length != r) return $"dilations has {d.Length} values for {r} spatial dimensions";
            if (Pads is { } p && p.Length != 2 * r) return $"pads has {p.Length} values for {r} spatial dimensions";
        }
        if (Strides?.Any(v => v < 1) == true) return "strides must be positive";
        if (Dilations?.Any(v => v < 1) == true) return "dilations must be positive";
        if (Pads?.Any(v => v < 0) == true) return "negative pads are not supported";
        return null;
    }

    /// <summary>Output spatial sizes and begin/end pads for input spatial sizes <paramref name="input"/> and window <paramref name="kernel"/>.</summary>
    public Window Resolve(ReadOnlySpan<int> input, ReadOnlySpan<int> kernel)
    {
        int r = input.Length;
        var w = new Window(r);
        for (int i = 0; i < r; i++)
        {
            int k = kernel[i], s = Strides?[i] ?? 1, d = Dilations?[i] ?? 1, n = input[i];
            int eff = (k - 1) * d + 1;
            w.Kernel[i] = k;
            w.Strides[i] = s;
            w.Dilations[i] = d;
            int outSize, pb, pe;
            switch (AutoPad)
            {
                case "SAME_UPPER":
                case "SAME_LOWER":
                {
                    outSize = (n + s - 1) / s;
                    int total = Math.Max(0, (outSize - 1) * s + eff - n);
                    pb = AutoPad == "SAME_UPPER" ? total / 2 : total - total / 2;
                    pe = total - pb;
                    break;
                }
                case "VALID":
                    pb = pe = 0;
                    outSize = CeilMode ? CeilDiv(n - eff + 1, s) : FloorDiv(n - eff, s) + 1;
                    break;
                default:
                    pb = Pads?[i] ?? 0;
                    pe = Pads?[i + r] ?? 0;
                    int span = n + pb + pe - eff;
                    if (CeilMode)
                    {
                        outSize = CeilDiv(span, s) + 1;
                        // A window may not start in the end padding (PyTorch's rule, adopted by ONNX).
                        if (outSize > 0 && (outSize - 1) * s >= n + pb) outSize--;
                    }
                    else outSize = FloorDiv(span, s) + 1;
                    break;
            }
            if (outSize < 0) outSize = 0;
            w.Output[i] = outSize;
            w.PadBegin[i] = pb;
            w.PadEnd[i] = pe;
        }
        return w;
    }

    private static int FloorDiv(int a, int b) => a >= 0 ? a / b : -((-a + b - 1) / b);

    private static int CeilDiv(int a, int b) => a >= 0 ? (a + b - 1) / b : -(-a / b);
}

/// <summary>A resolved sliding window over <c>Rank</c> spatial dimensions.</summary>
internal sealed class Window(int rank)
{
    public int Rank { get; } = rank;
    public int[] Kernel { get; } = new int[rank];
    public int[] Strides { get; } = new int[rank];
    public int[] Dilations { get; } = new int[rank];
    public int[] PadBegin { get; } = new int[rank];
    public int[] PadEnd { get; } = new int[rank];
    public int[] Output { get; } = new int[rank];

    /// <summary>The window padded to three spatial dimensions (leading dimensions of size 1), for 1-D/2-D/3-D kernels.</summary>
    public Window To3D()
    {
        if (Rank == 3) return this;
        var w = new Window(3);
        int lead = 3 - Rank;
        for (int i = 0; i < 3; i++)
        {
            int j = i - lead;
            w.Kernel[i] = j >= 0 ? Kernel[j] : 1;
            w.Strides[i] = j >= 0 ? Strides[j] : 1;
            w.Dilations[i] = j >= 0 ? Dilations[j] : 1;
            w.PadBegin[i] = j >= 0 ? PadBegin[j] : 0;
            w.PadEnd[i] = j >= 0 ? PadEnd[j] : 0;
            w.Output[i] = j >= 0 ? Output[j] : 1;
        }
        return w;
    }
}
