using OnDevice.Core;
using OnDevice.Runtime.Simd;

namespace OnDevice.Runtime.Kernels.LinearAlgebra;

/// <summary>MatMul (numpy semantics, broadcasting batch dimensions) and Gemm on float32, both on the packed GEMM; a
/// constant right-hand operand is packed once when the session is built.</summary>
internal static class MatMulKernels
{
    public static void Register(KernelRegistry r)
    {
        r.Add("MatMul", 1, TypeSets.Float, ctx => new MatMulKernel(ctx));
        r.Add("Gemm", 1, TypeSets.Float, ctx => new GemmKernel(ctx, default), supports: GemmKernel.Supports);
        r.Add("FusedGemm", 1, TypeSets.Float, ctx => new GemmKernel(ctx, FusedActivations.Parse(ctx.Node)), domain: "com.microsoft",
            supports: ctx => GemmKernel.Supports(ctx) ?? FusedActivations.Check(ctx.Node));
    }
}

/// <summary>Y = A·B with numpy matmul rules: 1-D operands are promoted (and the added dimension removed), leading
/// dimensions broadcast.</summary>
internal sealed unsafe class MatMulKernel : IKernel
{
    private readonly float[][]? _packedB; // per batch of a constant B
    private readonly int[]? _bShape;

    public MatMulKernel(KernelBuildContext ctx)
    {
        if (PackedWeights.FloatConstant(ctx, 1) is { } b && b.Dims.Length >= 1)
        {
            _bShape = PackedWeights.Dims(b);
            int k = _bShape.Length == 1 ? _bShape[0] : _bShape[^2];
            int n = _bShape.Length == 1 ? 1 : _bShape[^1];
            int batches = _bShape.Length <= 2 ? 1 : _bShape[..^2].Aggregate(1, (p, d) => p * d);
            var values = b.AsSpan<float>();
            _packedB = new float[batches][];
            for (int i = 0; i < batches; i++)
                _packedB[i] = PackedWeights.PackB(values.Slice(i * k * n, k * n), k, n, false, 1f);
        }
    }

    public void Execute(KernelContext ctx)
    {
        var a = ctx.Required(0);
        var b = ctx.Required(1);
        var aShape = a.Shape;
        var bShape = b.Shape;
        if (aShape.Length == 0 || bShape.Length == 0) throw new InvalidOperationException("MatMul operands must have rank >= 1");
        bool aVec = aShape.Length == 1, bVec = bShape.Length == 1;
        int m = aVec ? 1 : aShape[^2], k = aShape[^1];
        int kb = bVec ? bShape[0] : bShape[^2], n = bVec ? 1 : bShape[^1];
        if (k != kb) throw new InvalidOperationException($"MatMul: {TensorBuffer.Format(aShape)} · {TensorBuffer.Format(bShape)}: inner dimensions differ");
        var aBatch = aVec ? [] : aShape[..^2];
        var bBatch = bVec ? [] : bShape[..^2];
        var batchShape = BroadcastBatch(aBatch, bBatch);
        var aStrides = BatchStrides(aBatch, batchShape.Length);
        var bStrides = BatchStrides(bBatch, batchShape.Length);
        var outShape = new List<int>(batchShape);
        if (!aVec) outShape.Add(m);
        if (!bVec) outShape.Add(n);
        var y = ctx.Output(0, DType.Float32, [.. outShape]);
        if (y.Length == 0) return;

        int aBatches = aBatch.Aggregate(1, (p, d) => p * d), bBatches = bBatch.Aggregate(1, (p, d) => p * d);
        int batches = batchShape.Aggregate(1, (p, d) => p * d);
        // With one B for every batch and A's batches contiguous, fold A's batches into M: one large GEMM.
        int gemmM = m, gemmBatches = batches;
        bool fold = bBatches == 1 && aBatches == batches;
        if (fold)
        {
            gemmM = m * batches;
            gemmBatches = 1;
        }
        bool prepacked = _packedB is not null && bShape.AsSpan().SequenceEqual(_bShape);
        int threads = ctx.Threads;
        bool parallelBatches = gemmBatches >= 2 && threads > 1;
        int workers = parallelBatches ? Math.Min(threads, gemmBatches) : 1;
        int innerThreads = parallelBatches ? 1 : threads;
        long packA = PackedWeights.Lines(Gemm.PackedASize(gemmM, k));
        long packB = prepacked ? 0 : PackedWeights.Lines(Gemm.RowMajorScratchFloats(k, n, innerThreads));
        long perWorker = packA + packB;
        var scratch = ctx.Scratch(PackedWeights.ScratchBytes(perWorker * workers));

        fixed (float* pa = a.Span<float>())
        fixed (float* pb = b.Span<float>())
        fixed (float* py = y.Span<float>())
        fixed (byte* ps = scratch.Span)
        {
            nint na = (nint)pa, nb = (nint)pb, ny = (nint)py, ns = (nint)PackedWeights.Align(ps);
            void RunBatch(int batch, float* work)
            {
                int ai = fold ? 0 : BatchIndex(batchShape, aStrides, batch);
                int bi = fold ? 0 : BatchIndex(batchShape, bStrides, batch);
                float* aPtr = (float*)na + (nint)ai * m * k;
                float* packedA = work;
                Gemm.PackA(aPtr, gemmM, k, k, 1, 1f, packedA);
                float* c = (float*)ny + (nint)batch * gemmM * n;
                if (prepacked)
                {
                    fixed (float* bp = _packedB![bi])
                        Gemm.Multiply(new PrepackedB(bp, k), packedA, gemmM, n, k, c, n, false, GemmEpilogue.None, null, innerThreads, null);
                }
                else
                    Gemm.MultiplyRowMajorB((float*)nb + (nint)bi * k * n, n, packedA, gemmM, n, k, c, n, false, GemmEpilogue.None, null,
                        innerThreads, work + packA);
            }
            if (!parallelBatches)
            {
                for (int i = 0; i < gemmBatches; i++) RunBatch(i, (float*)ns);
            }
            else
            {
                ctx.ParallelFor(workers, (w0, w1) =>
                {
                    for (int w = w0; w < w1; w++)
                    {
                        float* work = (float*)ns + w * perWorker;
                        int b0 = (int)((long)gemmBatches * w / workers), b1 = (int)((long)gemmBatches * (w + 1) / workers);
                        for (int i = b0; i < b1; i++) RunBatch(i, work);
                    }
                });
            }
        }
    }

    /// <summary>The broadcast of two batch shapes (numpy rules).</summary>
    internal static int[] BroadcastBatch(int[] a, int[] b)
    {
        int rank = Math.Max(a.Length, b.Length);
        var r = new int[rank];
        for (int d = 0; d < rank; d++)
        {
            int da = d - (rank - a.Length) >= 0 ? a[d - (rank - a.Length)] : 1;
            int db = d - (rank - b.Length) >= 0 ? b[d - (rank - b.Length)] : 1;
            if (da != db && da != 1 && db != 1)
                throw new InvalidOperationException($"MatMul: batch dimensions {TensorBuffer.Format(a)} and {TensorBuffer.Format(b)} do not broadcast");
            r[d] = da == 1 ? db : da;
        }
        return r;
    }

    /// <summary>Per output batch dimension, the stride (in batches) of an operand whose batch shape is <paramref name="own"/>; 0 where broadcast.</summary>
    internal static int[] BatchStrides(int[] own, int rank)
    {
        var s = new int[rank];
        int acc = 1;
        for (int d = rank - 1; d >= 0; d--)
        {
            int k = d - (rank - own.Length);
            int v = k >= 0 ? own[k] : 1;
            s[d] = v == 1 ? 0 : acc;
            acc *= v;
        }
        return s;
    }

    /// <summary>Batch index into an operand for output batch <paramref name="batch"/>.</summary>
    internal static int BatchIndex(int[] shape, int[] strides, int batch)
    {
        int idx = 0;
        for (int d = shape.Length - 1; d >= 0; d--)
        {
            idx += batch % shape[d] * strides[d];
            batch /= shape[d];
        }
        return idx;
    }
}

/// <summary>Y = alpha·A'·B' + beta·C with A' = transA ? Aᵀ : A, B' likewise, C broadcast to [M, N]; optionally a fused activation.</summary>
internal sealed unsafe class GemmKernel : IKernel
{
    private readonly float _alpha, _beta;
    private readonly bool _transA, _transB;
    private readonly float[]? _packedB;
    private readonly int[]? _bShape;
    private readonly FusedActivation _activation;

    public static string? Supports(KernelBuildContext ctx)
    {
        if (ctx.InputShape(0) is { } s0 && s0.Rank != 2) return "Gemm needs a rank-2 A";
        if (ctx.InputShape(1) is { } s1 && s1.Rank != 2) return "Gemm needs a rank-2 B";
        return null;
    }

    public GemmKernel(KernelBuildContext ctx, FusedActivation activation)
    {
        var node = ctx.Node;
        _alpha = node.GetFloat("alpha", 1f);
        _beta = node.GetFloat("beta", 1f);
        _transA = node.GetInt("transA", 0) != 0;
        _transB = node.GetInt("transB", 0) != 0;
        _activation = activation;
        if (PackedWeights.FloatConstant(ctx, 1) is { Dims.Length: 2 } b)
        {
            _bShape = PackedWeights.Dims(b);
            int k = _transB ? _bShape[1] : _bShape[0], n = _transB ? _bShape[0] : _bShape[1];
            _packedB = PackedWeights.PackB(b.AsSpan<float>(), k, n, _transB, _alpha);
        }
    }

    public void Execute(KernelContext ctx)
    {
        var a = ctx.Required(0);
        var b = ctx.Required(1);
        var c = ctx.Input(2);
        if (a.Rank != 2 || b.Rank != 2) throw new InvalidOperationException("Gemm operands must have rank 2");
        int m = _transA ? a.Shape[1] : a.Shape[0], k = _transA ? a.Shape[0] : a.Shape[1];
        int kb = _transB ? b.Shape[1] : b.Shape[0], n = _transB ? b.Shape[0] : b.Shape[1];
        if (k != kb) throw new InvalidOperationException($"Gemm: inner dimensions differ ({TensorBuffer.Format(a.Shape)}, {TensorBuffer.Format(b.Shape)})");
        var y = ctx.Output(0, DType.Float32, m, n);
        if (y.Length == 0) return;

        bool prepacked = _packedB is not null && b.Shape.AsSpan().SequenceEqual(_bShape);
        // How C enters: not at all, as a bias vector along rows or columns, or as a full [M, N] addend.
        var biasKind = GemmBias.None;
        bool full = false;
        int biasLength = 0;
        if (c is not null && _beta != 0 && c.Length > 0)
        {
            var cs = c.Shape;
            if (cs.Length > 2) throw new InvalidOperationException($"Gemm: C has rank {cs.Length}");
            int cm = cs.Length == 2 ? cs[0] : 1, cn = cs.Length >= 1 ? cs[^1] : 1;
            if ((cm != 1 && cm != m) || (cn != 1 && cn != n))
                throw new InvalidOperationException($"Gemm: C {TensorBuffer.Format(cs)} does not broadcast to [{m},{n}]");
            if (cm == m && cn == n && m > 1 && n > 1) full = true;
            else if (cm == m && m > 1 && cn == 1) { biasKind = GemmBias.PerRow; biasLength = m; }
            else { biasKind = GemmBias.PerColumn; biasLength = n; }
        }
        int threads = ctx.Threads;
        long packA = PackedWeights.Lines(Gemm.PackedASize(m, k));
        long packB = prepacked ? 0 : PackedWeights.Lines(Gemm.RowMajorScratchFloats(k, n, threads));
        long biasFloats = PackedWeights.Lines(biasLength);
        var scratch = ctx.Scratch(PackedWeights.ScratchBytes(packA + packB + biasFloats));
        fixed (float* pa = a.Span<float>())
        fixed (float* pb = b.Span<float>())
        fixed (float* pc = c is null ? default : c.Span<float>())
        fixed (float* py = y.Span<float>())
        fixed (byte* ps = scratch.Span)
        {
            float* packedA = PackedWeights.Align(ps);
            float* bScratch = packedA + packA;
            float* bias = bScratch + packB;
            if (!prepacked && _transB && !_transA && m <= 8)
            {
                // Few rows and a run-time Bᵀ: dot products read B in place instead of packing it.
                DotRows.Multiply(pa, m, k, k, pb, n, k, py, n, false);
                int cl = c?.Length ?? 0;
                for (int i = 0; i < m; i++)
                    for (int j = 0; j < n; j++)
                    {
                        float v = _alpha * py[i * n + j];
                        if (full) v += _beta * pc[i * n + j];
                        else if (biasKind == GemmBias.PerRow) v += _beta * pc[cl == 1 ? 0 : i];
                        else if (biasKind == GemmBias.PerColumn) v += _beta * pc[cl == 1 ? 0 : j];
                        py[i * n + j] = _activation.Apply(v);
                    }
                return;
            }
            // alpha goes into whichever operand is packed here at run time when B was not prepacked with it.
            Gemm.PackA(pa, m, k, _transA ? 1 : k, _transA ? m : 1, prepacked ? 1f : _alpha, packedA);
            if (biasKind != GemmBias.None)
            {
                int cl = c!.Length;
                for (int i = 0; i < biasLength; i++) bias[i] = _beta * pc[cl == 1 ? 0 : i];
            }
            if (full)
            {
                for (int i = 0; i < m * n; i++) py[i] = _beta * pc[i];
            }
            var ep = new GemmEpilogue(biasKind, _activation);
            if (prepacked)
            {
                fixed (float* bp = _packedB)
                    Gemm.Multiply(new PrepackedB(bp, k), packedA, m, n, k, py, n, full, ep, bias, threads, null);
            }
            else if (!_transB)
                Gemm.MultiplyRowMajorB(pb, n, packedA, m, n, k, py, n, full, ep, bias, threads, bScratch);
            else
                Gemm.Multiply(new StridedB(pb, 1, k, n), packedA, m, n, k, py, n, full, ep, bias, threads, bScratch);
        }
    }
}
