using OnDevice.Core;
using OnDevice.Runtime.Kernels.LinearAlgebra;
using Norm = OnDevice.Runtime.Simd.Normalization;

namespace OnDevice.Runtime.Kernels.Nn;

/// <summary>BatchNormalization (inference), InstanceNormalization, LayerNormalization and LRN.</summary>
internal static class NormalizationKernels
{
    private static readonly DType[] FloatTypes = [DType.Float32, DType.Float64];

    public static void Register(KernelRegistry r)
    {
        r.Add("BatchNormalization", 1, FloatTypes, ctx => new BatchNormKernel(ctx), supports: BatchNormKernel.Supports);
        r.Add("InstanceNormalization", 1, FloatTypes, ctx => new InstanceNormKernel(ctx));
        r.Add("LayerNormalization", 17, FloatTypes, ctx => new LayerNormKernel(ctx));
        r.Add("MeanVarianceNormalization", 9, FloatTypes, ctx => new MvnKernel(ctx));
        r.Add("LRN", 1, TypeSets.Float, ctx => new LrnKernel(ctx), supports: ctx => ctx.Node.GetInt("size", 0) < 1 ? "LRN needs a positive size" : null);
    }

    /// <summary>Values of a float32 or float64 tensor as doubles (for small per-channel parameter tensors).</summary>
    public static double[] Doubles(TensorBuffer t) => t.DType == DType.Float64 ? t.Span<double>().ToArray() : t.Span<float>().ToArray().Select(v => (double)v).ToArray();

    /// <summary>Expands <paramref name="t"/> by numpy broadcasting to exactly <paramref name="shape"/>, as doubles.</summary>
    public static double[] BroadcastTo(TensorBuffer t, int[] shape)
    {
        var v = Doubles(t);
        int n = TensorBuffer.CheckedLength(shape);
        if (v.Length == n) return v;
        var s = t.Shape;
        if (s.Length > shape.Length) throw new InvalidOperationException($"{TensorBuffer.Format(s)} does not broadcast to {TensorBuffer.Format(shape)}");
        var r = new double[n];
        for (int i = 0; i < n; i++)
        {
            int rem = i, src = 0, stride = 1;
            for (int d = shape.Length - 1; d >= 0; d--)
            {
                int c = rem % shape[d];
                rem /= shape[d];
                int k = d - (shape.Length - s.Length);
                if (k < 0) continue;
                if (s[k] != 1 && s[k] != shape[d]) throw new InvalidOperationException($"{TensorBuffer.Format(s)} does not broadcast to {TensorBuffer.Format(shape)}");
                if (s[k] != 1) src += c * stride;
                stride *= s[k];
            }
            r[i] = v[src];
        }
        return r;
    }
}

/// <summary>Inference BatchNormalization: y = a[c]·x + b[c] with a = scale/√(var + ε), b = bias − mean·a.</summary>
internal sealed unsafe class BatchNormKernel(KernelBuildContext build) : IKernel
{
    private readonly float _epsilon = build.Node.GetFloat("epsilon", 1e-5f);

    public static string? Supports(KernelBuildContext ctx)
    {
        var n = ctx.Node;
        if (n.GetInt("training_mode", 0) != 0) return "training_mode is not supported (inference only)";
        if (n.Outputs.Skip(1).Any(o => o.Length > 0)) return "training outputs (running or saved mean and variance) are not supported (inference only)";
        if (ctx.Opset < 9 && n.GetInt("spatial", 1) == 0) return "spatial=0 (per-activation statistics) is not supported";
        return null;
    }

    public void Execute(KernelContext ctx)
    {
        var x = ctx.Required(0);
        var scale = NormalizationKernels.Doubles(ctx.Required(1));
        var bias = NormalizationKernels.Doubles(ctx.Required(2));
        var mean = NormalizationKernels.Doubles(ctx.Required(3));
        var variance = NormalizationKernels.Doubles(ctx.Required(4));
        int c = x.Rank > 1 ? x.Shape[1] : 1;
        if (scale.Length != c || bias.Length != c || mean.Length != c || variance.Length != c)
            throw new InvalidOperationException($"BatchNormalization: parameters must have {c} values");
        var y = ctx.Output(0, x.DType, x.Shape);
        if (y.Length == 0) return;
        int size = x.Shape.Skip(2).Aggregate(1, (p, d) => p * d), planes = x.Length / Math.Max(1, size);
        var a = new double[c];
        var b = new double[c];
        for (int i = 0; i < c; i++)
        {
            a[i] = scale[i] / Math.Sqrt(variance[i] + _epsilon);
            b[i] = bias[i] - mean[i] * a[i];
        }
        if (x.DType == DType.Float32)
        {
            fixed (float* px = x.Span<float>())
            fixed (float* py = y.Span<float>())
            {
                nint nx = (nint)px, ny = (nint)py;
                PackedWeights.ForWorkers(ctx, planes, PackedWeights.ChunkFor(size), (_, begin, end) =>
                {
                    for (int p = begin; p < end; p++)
                        Norm.Affine((float*)nx + (nint)p * size, (float*)ny + (nint)p * size, size, (float)a[p % c], (float)b[p % c]);
                });
            }
        }
        else
        {
            var xs = x.Span<double>();
            var ys = y.Span<double>();
            for (int p = 0; p < planes; p++)
                for (int s = 0; s < size; s++) ys[p * size + s] = xs[p * size + s] * a[p % c] + b[p % c];
        }
    }
}

/// <summary>InstanceNormalization: per (n, c) mean and variance over the spatial positions, then scale and bias per channel.</summary>
internal sealed unsafe class InstanceNormKernel(KernelBuildContext build) : IKernel
{
    private readonly float _epsilon = build.Node.GetFloat("epsilon", 1e-5f);

    public void Execute(KernelContext ctx)
    {
        var x = ctx.Required(0);
        if (x.Rank < 3) throw new InvalidOperationException("InstanceNormalization: input must have rank >= 3");
        var scale = NormalizationKernels.Doubles(ctx.Required(1));
        var bias = NormalizationKernels.Doubles(ctx.Required(2));
        int c = x.Shape[1];
        if (scale.Length != c || bias.Length != c) throw new InvalidOperationException($"InstanceNormalization: scale and B must have {c} values");
        var y = ctx.Output(0, x.DType, x.Shape);
        if (y.Length == 0) return;
        int size = x.Shape.Skip(2).Aggregate(1, (p, d) => p * d), planes = x.Shape[0] * c;
        float eps = _epsilon;
        if (x.DType == DType.Float32)
        {
            fixed (float* px = x.Span<float>())
            fixed (float* py = y.Span<float>())
            {
                nint nx = (nint)px, ny = (nint)py;
                PackedWeights.ForWorkers(ctx, planes, PackedWeights.ChunkFor(3L * size), (_, begin, end) =>
                {
                    for (int p = begin; p < end; p++)
                    {
                        float* src = (float*)nx + (nint)p * size;
                        var (mean, variance) = Norm.MeanVariance(src, size);
                        float a = (float)(scale[p % c] / Math.Sqrt(variance + eps));
                        Norm.Affine(src, (float*)ny + (nint)p * size, size, a, (float)(bias[p % c] - mean * a));
                    }
                });
            }
        }
        else
        {
            var xs = x.Span<double>();
            var ys = y.Span<double>();
            for (int p = 0; p < planes; p++)
            {
                var v = xs.Slice(p * size, size);
                double mean = 0, variance = 0;
                foreach (var e in v) mean += e;
                mean /= size;
                foreach (var e in v) variance += (e - mean) * (e - mean);
                variance /= size;
                double a = scale[p % c] / Math.Sqrt(variance + eps);
                for (int s = 0; s < size; s++) ys[p * size + s] = (v[s] - mean) * a + bias[p % c];
            }
        }
    }
}

/// <summary>LayerNormalization over the dimensions from <c>axis</c> on; optional Mean and InvStdDev outputs (float32).</summary>
internal sealed unsafe class LayerNormKernel(KernelBuildContext build) : IKernel
{
    private readonly long _axis = build.Node.GetInt("axis", -1);
    private readonly float _epsilon = build.Node.GetFloat("epsilon", 1e-5f);

    public void Execute(KernelContext ctx)
    {
        var x = ctx.Required(0);
        int rank = x.Rank;
        int axis = (int)(_axis < 0 ? _axis + rank : _axis);
        if (axis < 0 || axis >= rank) throw new InvalidOperationException($"LayerNormalization: axis {_axis} is out of range for rank {rank}");
        var normShape = x.Shape[axis..];
        int size = TensorBuffer.CheckedLength(normShape), rows = TensorBuffer.CheckedLength(x.Shape.AsSpan(0, axis));
        var scale = NormalizationKernels.BroadcastTo(ctx.Required(1), normShape);
        var bias = ctx.Input(2) is { } bt ? NormalizationKernels.BroadcastTo(bt, normShape) : null;
        var y = ctx.Output(0, x.DType, x.Shape);
        var statShape = x.Shape.Select((d, i) => i < axis ? d : 1).ToArray();
        var meanOut = ctx.IsOutputUsed(1) ? ctx.Output(1, DType.Float32, statShape) : null;
        var invOut = ctx.IsOutputUsed(2) ? ctx.Output(2, DType.Float32, statShape) : null;
        if (x.Length == 0) return;
        float eps = _epsilon;
        if (x.DType == DType.Float32)
        {
            var fs = scale.Select(v => (float)v).ToArray();
            var fb = bias?.Select(v => (float)v).ToArray();
            fixed (float* px = x.Span<float>())
            fixed (float* py = y.Span<float>())
            fixed (float* ps = fs)
            fixed (float* pb = fb)
            fixed (float* pm = meanOut is null ? default : meanOut.Span<float>())
            fixed (float* pi = invOut is null ? default : invOut.Span<float>())
            {
                nint nx = (nint)px, ny = (nint)py, ns = (nint)ps, nb = (nint)pb, nm = (nint)pm, ni = (nint)pi;
                PackedWeights.ForWorkers(ctx, rows, PackedWeights.ChunkFor(3L * size), (_, begin, end) =>
                {
                    for (int r = begin; r < end; r++)
                    {
                        float* src = (float*)nx + (nint)r * size;
                        var (mean, variance) = Norm.MeanVariance(src, size);
                        float inv = 1f / MathF.Sqrt(variance + eps);
                        Norm.ScaleShift(src, (float*)ny + (nint)r * size, size, mean, inv, (float*)ns, (float*)nb);
                        if (nm != 0) ((float*)nm)[r] = mean;
                        if (ni != 0) ((float*)ni)[r] = inv;
                    }
                });
            }
        }
        else
        {
            var xs = x.Span<double>();
            var ys = y.Span<double>();
            for (int r = 0; r < rows; r++)
            {
                var v = xs.Slice(r * size, size);
                double mean = 0, variance = 0;
                foreach (var e in v) mean += e;
                mean /= size;
                foreach (var e in v) variance += (e - mean) * (e - mean);
                variance /= size;
                double inv = 1 / Math.Sqrt(variance + eps);
                for (int s = 0; s < size; s++) ys[r * size + s] = (v[s] - mean) * inv * scale[s] + (bias is null ? 0 : bias[s]);
                if (meanOut is not null) meanOut.Span<float>()[r] = (float)mean;
                if (invOut is not null) invOut.Span<float>()[r] = (float)inv;
            }
        }
    }
}

/// <summary>LRN across channels (float32): y = x / (bias + α/size·Σ x²)^β over a window of channels.</summary>
internal sealed class LrnKernel(KernelBuildContext build) : IKernel
{
    private readonly int _size = checked((int)build.Node.GetInt("size", 1));
    private readonly float _alpha = build.Node.GetFloat("alpha", 1e-4f);
    private readonly float _beta = build.Node.GetFloat("beta", 0.75f);
    private readonly float _bias = build.Node.GetFloat("bias", 1f);

    public void Execute(KernelContext ctx)
    {
        var x = ctx.Required(0);
        if (x.Rank < 2) throw new InvalidOperationException("LRN: input must have rank >= 2");
        var y = ctx.Output(0, DType.Float32, x.Shape);
        int n = x.Shape[0], c = x.Shape[1], plane = x.Shape.Skip(2).Aggregate(1, (p, d) => p * d);
        int before = (_size - 1) / 2, after = _size - 1 - before;
        var xs = x.Span<float>();
        var ys = y.Span<float>();
        var sum = new float[plane];
        float k = _alpha / _size;
        for (int i = 0; i < n; i++)
            for (int ch = 0; ch < c; ch++)
            {
                Array.Clear(sum);
                for (int q = Math.Max(0, ch - before); q <= Math.Min(c - 1, ch + after); q++)
                {
                    var src = xs.Slice((i * c + q) * plane, plane);
                    for (int s = 0; s < plane; s++) sum[s] += src[s] * src[s];
                }
                int at = (i * c + ch) * plane;
                for (int s = 0; s < plane; s++) ys[at + s] = xs[at + s] / MathF.Pow(_bias + k * sum[s], _beta);
            }
    }
}

/// <summary>MeanVarianceNormalization: (x − mean) / (√var + 1e-9) with statistics over <c>axes</c> (default [0, 2, 3]),
/// as the operator's ONNX function body defines it.</summary>
internal sealed class MvnKernel(KernelBuildContext build) : IKernel
{
    private readonly long[] _axes = build.Node.GetInts("axes") ?? [0, 2, 3];

    public void Execute(KernelContext ctx)
    {
        var x = ctx.Required(0);
        int rank = x.Rank;
        var reduced = new bool[rank];
        foreach (var a in _axes)
        {
            int ax = (int)(a < 0 ? a + rank : a);
            if (ax < 0 || ax >= rank) throw new InvalidOperationException($"MeanVarianceNormalization: axis {a} is out of range for rank {rank}");
            reduced[ax] = true;
        }
        var y = ctx.Output(0, x.DType, x.Shape);
        var v = NormalizationKernels.Doubles(x);
        // Key of an element: its index with the reduced axes dropped.
        var keyOf = new int[v.Length];
        int keys = 1;
        for (int d = 0; d < rank; d++) if (!reduced[d]) keys *= x.Shape[d];
        for (int i = 0; i < v.Length; i++)
        {
            int rem = i, key = 0, stride = 1;
            for (int d = rank - 1; d >= 0; d--)
            {
                int c = rem % x.Shape[d];
                rem /= x.Shape[d];
                if (reduced[d]) continue;
                key += c * stride;
                stride *= x.Shape[d];
            }
            keyOf[i] = key;
        }
        var sum = new double[keys];
        var sumSq = new double[keys];
        var count = new int[keys];
        for (int i = 0; i < v.Length; i++)
        {
            sum[keyOf[i]] += v[i];
            sumSq[keyOf[i]] += v[i] * v[i];
            count[keyOf[i]]++;
        }
        for (int i = 0; i < v.Length; i++)
        {
            int k = keyOf[i];
            double mean = sum[k] / count[k];
            double std = Math.Sqrt(Math.Max(0, sumSq[k] / count[k] - mean * mean));
            double r = (v[i] - mean) / (std + 1e-9);
            if (x.DType == DType.Float32) y.Span<float>()[i] = (float)r;
            else y.Span<double>()[i] = r;
        }
    }
}
