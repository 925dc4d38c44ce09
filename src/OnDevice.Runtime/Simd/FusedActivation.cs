using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace OnDevice.Runtime.Simd;

/// <summary>An activation a kernel can apply to its results before storing them (a fused epilogue).</summary>
public enum ActivationKind
{
    /// <summary>No activation.</summary>
    None = 0,
    /// <summary>max(x, 0).</summary>
    Relu,
    /// <summary>min(max(x, Alpha), Beta): Alpha is the lower bound, Beta the upper.</summary>
    Clip,
    /// <summary>max(0, min(1, Alpha·x + Beta)).</summary>
    HardSigmoid,
    /// <summary>x · max(0, min(1, Alpha·x + Beta)); ONNX HardSwish is Alpha = 1/6, Beta = 1/2.</summary>
    HardSwish,
    /// <summary>x when x ≥ 0, else Alpha·x.</summary>
    LeakyRelu,
}

/// <summary>An activation and its parameters, applied by kernels in their epilogue.</summary>
/// <param name="Kind">Which activation.</param>
/// <param name="Alpha">First parameter (Clip: min; HardSigmoid/HardSwish: slope; LeakyRelu: negative slope).</param>
/// <param name="Beta">Second parameter (Clip: max; HardSigmoid/HardSwish: offset).</param>
public readonly record struct FusedActivation(ActivationKind Kind, float Alpha = 0, float Beta = 0)
{
    /// <summary>No activation.</summary>
    public static FusedActivation None => default;

    /// <summary>Relu.</summary>
    public static FusedActivation Relu => new(ActivationKind.Relu);

    /// <summary>Clip to [min, max].</summary>
    public static FusedActivation Clip(float min, float max) => new(ActivationKind.Clip, min, max);

    /// <summary>HardSigmoid with ONNX defaults alpha 0.2, beta 0.5.</summary>
    public static FusedActivation HardSigmoid(float alpha = 0.2f, float beta = 0.5f) => new(ActivationKind.HardSigmoid, alpha, beta);

    /// <summary>ONNX HardSwish: x · HardSigmoid(x) with alpha 1/6, beta 1/2.</summary>
    public static FusedActivation HardSwish => new(ActivationKind.HardSwish, 1f / 6, 0.5f);

    /// <summary>x · HardSigmoid(x) with the given alpha and beta (e.g. a Conv → HardSigmoid → Mul chain).</summary>
    public static FusedActivation TimesHardSigmoid(float alpha, float beta) => new(ActivationKind.HardSwish, alpha, beta);

    /// <summary>LeakyRelu with the given negative slope (ONNX default 0.01).</summary>
    public static FusedActivation LeakyRelu(float alpha = 0.01f) => new(ActivationKind.LeakyRelu, alpha);

    /// <summary>Scalar form (used for tails; the definition lives in Reference.GemmReference.Activate).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Apply(float x) => Kind switch
    {
        ActivationKind.None => x,
        ActivationKind.Relu => x > 0 ? x : (float.IsNaN(x) ? x : 0),
        ActivationKind.Clip => Math.Min(Math.Max(x, Alpha), Beta),
        ActivationKind.HardSigmoid => Math.Max(0, Math.Min(1, Alpha * x + Beta)),
        ActivationKind.HardSwish => x * Math.Max(0, Math.Min(1, Alpha * x + Beta)),
        ActivationKind.LeakyRelu => x >= 0 ? x : Alpha * x,
        _ => x,
    };

    /// <summary>512-bit form.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Vector512<float> Apply(Vector512<float> x)
    {
        switch (Kind)
        {
            case ActivationKind.None: return x;
            case ActivationKind.Relu: return Vector512.ConditionalSelect(Vector512.LessThanOrEqual(x, Vector512<float>.Zero), Vector512<float>.Zero, x);
            case ActivationKind.Clip: return Vector512.Min(Vector512.Max(x, Vector512.Create(Alpha)), Vector512.Create(Beta));
            case ActivationKind.HardSigmoid:
                return Vector512.Max(Vector512<float>.Zero, Vector512.Min(Vector512<float>.One, x * Vector512.Create(Alpha) + Vector512.Create(Beta)));
            case ActivationKind.HardSwish:
                return x * Vector512.Max(Vector512<float>.Zero, Vector512.Min(Vector512<float>.One, x * Vector512.Create(Alpha) + Vector512.Create(Beta)));
            case ActivationKind.LeakyRelu: return Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(x, Vector512<float>.Zero), x, x * Vector512.Create(Alpha));
            default: return x;
        }
    }

    /// <summary>256-bit form.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Vector256<float> Apply(Vector256<float> x)
    {
        switch (Kind)
        {
            case ActivationKind.None: return x;
            case ActivationKind.Relu: return Vector256.ConditionalSelect(Vector256.LessThanOrEqual(x, Vector256<float>.Zero), Vector256<float>.Zero, x);
            case ActivationKind.Clip: return Vector256.Min(Vector256.Max(x, Vector256.Create(Alpha)), Vector256.Create(Beta));
            case ActivationKind.HardSigmoid:
                return Vector256.Max(Vector256<float>.Zero, Vector256.Min(Vector256<float>.One, x * Vector256.Create(Alpha) + Vector256.Create(Beta)));
            case ActivationKind.HardSwish:
                return x * Vector256.Max(Vector256<float>.Zero, Vector256.Min(Vector256<float>.One, x * Vector256.Create(Alpha) + Vector256.Create(Beta)));
            case ActivationKind.LeakyRelu: return Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(x, Vector256<float>.Zero), x, x * Vector256.Create(Alpha));
            default: return x;
        }
    }

    /// <summary>128-bit form.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Vector128<float> Apply(Vector128<float> x)
    {
        switch (Kind)
        {
            case ActivationKind.None: return x;
            case ActivationKind.Relu: return Vector128.ConditionalSelect(Vector128.LessThanOrEqual(x, Vector128<float>.Zero), Vector128<float>.Zero, x);
            case ActivationKind.Clip: return Vector128.Min(Vector128.Max(x, Vector128.Create(Alpha)), Vector128.Create(Beta));
            case ActivationKind.HardSigmoid:
                return Vector128.Max(Vector128<float>.Zero, Vector128.Min(Vector128<float>.One, x * Vector128.Create(Alpha) + Vector128.Create(Beta)));
            case ActivationKind.HardSwish:
                return x * Vector128.Max(Vector128<float>.Zero, Vector128.Min(Vector128<float>.One, x * Vector128.Create(Alpha) + Vector128.Create(Beta)));
            case ActivationKind.LeakyRelu: return Vector128.ConditionalSelect(Vector128.GreaterThanOrEqual(x, Vector128<float>.Zero), x, x * Vector128.Create(Alpha));
            default: return x;
        }
    }

    /// <summary>Applies the activation in place to a span (widest vectors first, scalar tail).</summary>
    public unsafe void Apply(Span<float> values)
    {
        if (Kind == ActivationKind.None) return;
        fixed (float* p = values)
        {
            int n = values.Length, i = 0;
            if (Vector512.IsHardwareAccelerated)
                for (; i + 16 <= n; i += 16) Apply(Vector512.Load(p + i)).Store(p + i);
            if (Vector256.IsHardwareAccelerated)
                for (; i + 8 <= n; i += 8) Apply(Vector256.Load(p + i)).Store(p + i);
            if (Vector128.IsHardwareAccelerated)
                for (; i + 4 <= n; i += 4) Apply(Vector128.Load(p + i)).Store(p + i);
            for (; i < n; i++) p[i] = Apply(p[i]);
        }
    }
}

/// <summary>Where a GEMM epilogue's bias comes from.</summary>
public enum GemmBias
{
    /// <summary>No bias.</summary>
    None = 0,
    /// <summary>One value per row of C (a convolution's per-output-channel bias).</summary>
    PerRow,
    /// <summary>One value per column of C (a fully connected layer's bias).</summary>
    PerColumn,
}

/// <summary>What a GEMM does to each result before storing it: add a bias, then apply an activation.</summary>
/// <param name="Bias">Bias layout (values are passed separately).</param>
/// <param name="Activation">Activation applied after the bias.</param>
public readonly record struct GemmEpilogue(GemmBias Bias = GemmBias.None, FusedActivation Activation = default)
{
    /// <summary>Store the plain product.</summary>
    public static GemmEpilogue None => default;

    /// <summary>True when the epilogue changes nothing.</summary>
    public bool IsIdentity => Bias == GemmBias.None && Activation.Kind == ActivationKind.None;
}
