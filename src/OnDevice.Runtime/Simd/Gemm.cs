using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using OnDevice.Runtime.Kernels;

namespace OnDevice.Runtime.Simd;

/// <summary>
/// Supplies packed blocks of the right-hand GEMM operand B[K, N]: rows [k0, k0+kc) by columns [j0, j0+nc) as
/// panels of <see cref="Gemm.NR"/> columns, each panel kc rows of NR values (zero-padded past column N).
/// </summary>
public unsafe interface IGemmB
{
    /// <summary>Pointer to the first panel of the block; <paramref name="panelStride"/> is the distance between panels in
    /// floats. May pack into <paramref name="scratch"/> (room for <see cref="Gemm.BlockFloats"/> floats).</summary>
    float* Block(int k0, int kc, int j0, int nc, float* scratch, out nint panelStride);

    /// <summary>True when <see cref="Block"/> writes into scratch (false for prepacked operands).</summary>
    bool UsesScratch { get; }

    /// <summary>Null for packed panels (row k of a panel at k·NR); otherwise row k of the panel at p lies at p + Offsets[k].</summary>
    int* Offsets { get; }
}

/// <summary>B packed once for all of K (see <see cref="Gemm.PackB"/>): blocks are views, nothing is copied.</summary>
public readonly unsafe struct PrepackedB(float* packed, int k) : IGemmB
{
    /// <summary>Start of the packed panels.</summary>
    public float* Packed { get; } = packed;

    /// <summary>Rows of B (the packed panel height).</summary>
    public int K { get; } = k;

    /// <inheritdoc/>
    public float* Block(int k0, int kc, int j0, int nc, float* scratch, out nint panelStride)
    {
        panelStride = (nint)K * Gemm.NR;
        return Packed + j0 / Gemm.NR * panelStride + (nint)k0 * Gemm.NR;
    }

    /// <inheritdoc/>
    public bool UsesScratch => false;

    /// <inheritdoc/>
    public int* Offsets => null;
}

/// <summary>B read from memory with arbitrary strides (row-major: RowStride = N, ColStride = 1; transposed: RowStride = 1,
/// ColStride = K) and packed block by block.</summary>
public readonly unsafe struct StridedB(float* data, nint rowStride, nint colStride, int n) : IGemmB
{
    /// <summary>Element [0, 0].</summary>
    public float* Data { get; } = data;

    /// <summary>Distance between B[k, j] and B[k+1, j] in floats.</summary>
    public nint RowStride { get; } = rowStride;

    /// <summary>Distance between B[k, j] and B[k, j+1] in floats.</summary>
    public nint ColStride { get; } = colStride;

    /// <summary>Columns of B (panels are zero-padded past it).</summary>
    public int N { get; } = n;

    /// <inheritdoc/>
    public float* Block(int k0, int kc, int j0, int nc, float* scratch, out nint panelStride)
    {
        panelStride = (nint)kc * Gemm.NR;
        Gemm.PackBRange(Data, RowStride, ColStride, N, k0, kc, j0, nc, 1f, scratch, panelStride);
        return scratch;
    }

    /// <inheritdoc/>
    public bool UsesScratch => true;

    /// <inheritdoc/>
    public int* Offsets => null;
}

/// <summary>
/// B given like <see cref="IndirectB"/> (row k at Data + Offsets[k]) but packed block by block into panels before the
/// micro-kernels read it: sequential, aligned reads however scattered the rows are. Reading NR − 1 floats past the last
/// column of every row must stay inside the buffer.
/// </summary>
public readonly unsafe struct PackedIndirectB(float* data, int* offsets) : IGemmB
{
    /// <inheritdoc/>
    public float* Block(int k0, int kc, int j0, int nc, float* scratch, out nint panelStride)
    {
        int nr = Gemm.NR, panels = (nc + nr - 1) / nr;
        panelStride = (nint)kc * nr;
        for (int kk = 0; kk < kc; kk++)
        {
            float* src = data + offsets[k0 + kk] + j0;
            float* dst = scratch + (nint)kk * nr;
            for (int p = 0; p < panels; p++) Gemm.Copy(src + (nint)p * nr, dst + p * panelStride, nr);
        }
        return scratch;
    }

    /// <inheritdoc/>
    public bool UsesScratch => true;

    /// <inheritdoc/>
    public int* Offsets => null;
}

/// <summary>
/// B read in place through a row-offset table: B[k, j] = Data[Offsets[k] + j] (an implicit-GEMM convolution over a
/// zero-padded image, where row k = (c, kh, kw) is the image shifted by that tap). Reading NR − 1 floats past the last
/// column of every row must stay inside the buffer; those columns are computed and discarded.
/// </summary>
public readonly unsafe struct IndirectB(float* data, int* offsets) : IGemmB
{
    /// <inheritdoc/>
    public float* Block(int k0, int kc, int j0, int nc, float* scratch, out nint panelStride)
    {
        panelStride = Gemm.NR;
        return data + j0;
    }

    /// <inheritdoc/>
    public bool UsesScratch => false;

    /// <inheritdoc/>
    public int* Offsets => offsets;
}

/// <summary>
/// Single-precision matrix multiplication C[M, N] (+)= A[M, K]·B[K, N] with an optional fused epilogue (bias per row or
/// column, then an activation). A is packed in panels of <see cref="MR"/> rows (<see cref="PackA"/>), B arrives in
/// panels of <see cref="NR"/> columns from an <see cref="IGemmB"/>; the work is blocked over K (L1), M (L2) and N and
/// split across threads by columns or rows. The micro-kernel is the widest accelerated one: Vector512 12×32,
/// Vector256 6×16, Vector128 6×8, or scalar 4×4. The definition is <c>Reference.GemmReference</c>.
/// </summary>
public static unsafe class Gemm
{
    /// <summary>Rows of A per packed panel (micro-kernel height) on this machine.</summary>
    public static readonly int MR =
        Vector512.IsHardwareAccelerated ? GemmMicroKernels.MR512 :
        Vector256.IsHardwareAccelerated ? GemmMicroKernels.MR256 :
        Vector128.IsHardwareAccelerated ? GemmMicroKernels.MR128 : GemmMicroKernels.MRScalar;

    /// <summary>Columns of B per packed panel (micro-kernel width) on this machine.</summary>
    public static readonly int NR =
        Vector512.IsHardwareAccelerated ? GemmMicroKernels.NR512 :
        Vector256.IsHardwareAccelerated ? GemmMicroKernels.NR256 :
        Vector128.IsHardwareAccelerated ? GemmMicroKernels.NR128 : GemmMicroKernels.NRScalar;

    /// <summary>Largest K block (B micro-panel KC×NR stays in L1).</summary>
    public const int KC = 256;

    /// <summary>Rows of A per M block (the A block MC×KC stays in L2).</summary>
    public static readonly int MC = MR * 16;

    /// <summary>Columns per N block (the packed B block KC×NC stays in L2).</summary>
    public static readonly int NC = NR * 16;

    /// <summary>Floats one thread needs to pack one B block.</summary>
    public static int BlockFloats => KC * NC;

    /// <summary>Below this many multiply-adds a GEMM runs on one thread (≈5 µs of work; waking an idle pool thread
    /// costs tens of microseconds on the project's VMs). Tests lower it so small shapes exercise the threaded paths.</summary>
    internal static long ParallelThresholdMacs = 1 << 20;

    /// <summary>Floats of a packed A of <paramref name="m"/>×<paramref name="k"/>.</summary>
    public static int PackedASize(int m, int k) => checked(RoundUp(m, MR) * k);

    /// <summary>Floats of a packed B of <paramref name="k"/>×<paramref name="n"/>.</summary>
    public static int PackedBSize(int k, int n) => checked(RoundUp(n, NR) * k);

    /// <summary>Floats of scratch <see cref="Multiply{TB}"/> needs for B blocks with this many threads (0 for prepacked B).</summary>
    public static int ScratchFloats(int k, int n, int threads) =>
        checked(Math.Max(1, threads) * Math.Min(KC, Math.Max(k, 1)) * Math.Min(NC, RoundUp(Math.Max(n, 1), NR)));

    /// <summary><paramref name="x"/> rounded up to a multiple of <paramref name="m"/>.</summary>
    public static int RoundUp(int x, int m) => (x + m - 1) / m * m;

    /// <summary>
    /// Packs A[M, K] (element [i, k] at <paramref name="a"/> + i·rowStride + k·colStride, times <paramref name="scale"/>)
    /// into panels of MR rows: panel p holds, for each k, MR values (rows past M are zero).
    /// </summary>
    public static void PackA(float* a, int m, int k, nint rowStride, nint colStride, float scale, float* dst)
    {
        int mr = MR;
        for (int p = 0; p < m; p += mr)
        {
            float* panel = dst + (nint)p * k;
            int rows = Math.Min(mr, m - p);
            for (int r = 0; r < rows; r++)
            {
                float* src = a + (p + r) * rowStride;
                float* d = panel + r;
                if (scale == 1f)
                    for (int kk = 0; kk < k; kk++) d[(nint)kk * mr] = src[kk * colStride];
                else
                    for (int kk = 0; kk < k; kk++) d[(nint)kk * mr] = scale * src[kk * colStride];
            }
            for (int r = rows; r < mr; r++)
                for (int kk = 0; kk < k; kk++) panel[(nint)kk * mr + r] = 0;
        }
    }

    /// <summary>Packs all of B[K, N] (element [k, j] at <paramref name="b"/> + k·rowStride + j·colStride, times
    /// <paramref name="scale"/>) into panels of NR columns, each K rows long (for <see cref="PrepackedB"/>).</summary>
    public static void PackB(float* b, int k, int n, nint rowStride, nint colStride, float scale, float* dst) =>
        PackBRange(b, rowStride, colStride, n, 0, k, 0, n, scale, dst, (nint)k * NR);

    /// <summary>Packs rows [k0, k0+kc) × columns [j0, j0+nc) of B into panels <paramref name="panelStride"/> floats apart.</summary>
    public static void PackBRange(float* b, nint rowStride, nint colStride, int n, int k0, int kc, int j0, int nc, float scale, float* dst, nint panelStride)
    {
        int nr = NR;
        if (colStride == 1 && scale == 1f)
        {
            // Row by row: each source row is read sequentially and dealt out to the panels.
            int full = Math.Min(nc, n - j0) / nr;
            for (int kk = 0; kk < kc; kk++)
            {
                float* src = b + (k0 + kk) * rowStride + j0;
                float* d = dst + (nint)kk * nr;
                for (int p = 0; p < full; p++) Copy(src + p * nr, d + p * panelStride, nr);
                if (full * nr < nc)
                {
                    int cols = Math.Max(0, Math.Min(nc, n - j0) - full * nr);
                    float* tail = d + full * panelStride;
                    Copy(src + full * nr, tail, cols);
                    for (int j = cols; j < nr; j++) tail[j] = 0;
                    for (int p = full + 1; p * nr < nc; p++) new Span<float>(d + p * panelStride, nr).Clear();
                }
            }
            return;
        }
        for (int jr = 0; jr < nc; jr += nr)
        {
            float* panel = dst + jr / nr * panelStride;
            int cols = Math.Min(nr, Math.Min(nc - jr, n - j0 - jr));
            for (int kk = 0; kk < kc; kk++)
            {
                float* src = b + (k0 + kk) * rowStride + (j0 + jr) * colStride;
                float* d = panel + (nint)kk * nr;
                if (colStride == 1 && scale == 1f && cols == nr)
                    Copy(src, d, nr);
                else
                {
                    int j = 0;
                    for (; j < cols; j++) d[j] = scale * src[j * colStride];
                    for (; j < nr; j++) d[j] = 0;
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Copy(float* src, float* dst, int count)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; i + 16 <= count; i += 16) Vector512.Load(src + i).Store(dst + i);
        if (Vector256.IsHardwareAccelerated)
            for (; i + 8 <= count; i += 8) Vector256.Load(src + i).Store(dst + i);
        if (Vector128.IsHardwareAccelerated)
            for (; i + 4 <= count; i += 4) Vector128.Load(src + i).Store(dst + i);
        for (; i < count; i++) dst[i] = src[i];
    }

    /// <summary>
    /// C[M, N] = A·B (or C += A·B when <paramref name="accumulate"/>), then the epilogue: bias (<paramref name="bias"/> has M
    /// values for <see cref="GemmBias.PerRow"/>, N for <see cref="GemmBias.PerColumn"/>) and activation.
    /// <paramref name="packedA"/> comes from <see cref="PackA"/>; <paramref name="scratch"/> holds
    /// <see cref="ScratchFloats"/>(K, N, threads) floats when B packs into scratch.
    /// </summary>
    public static void Multiply<TB>(TB b, float* packedA, int m, int n, int k, float* c, nint ldc, bool accumulate,
        GemmEpilogue epilogue, float* bias, int threads, float* scratch) where TB : struct, IGemmB
    {
        if (m <= 0 || n <= 0) return;
        if (epilogue.Bias != GemmBias.None && bias == null) throw new ArgumentException("the epilogue needs bias values");
        if (k <= 0)
        {
            EmptyK(m, n, c, ldc, accumulate, epilogue, bias);
            return;
        }
        int mPanels = (m + MR - 1) / MR, nPanels = (n + NR - 1) / NR;
        if (threads <= 1 || (long)m * n * k < ParallelThresholdMacs || mPanels * nPanels < 2)
        {
            Range(b, packedA, 0, m, 0, n, k, c, ldc, accumulate, epilogue, bias, scratch);
            return;
        }
        bool splitN = nPanels >= 2 * threads || nPanels >= mPanels;
        int parts = Math.Min(threads, splitN ? nPanels : mPanels);
        int perThread = b.UsesScratch ? ScratchFloats(k, n, 1) : 0;
        nint pa = (nint)packedA, pc = (nint)c, pbias = (nint)bias, ps = (nint)scratch;
        Parallel2.For(parts, parts, (first, last) =>
        {
            for (int t = first; t < last; t++)
            {
                int total = splitN ? nPanels : mPanels;
                int p0 = (int)((long)total * t / parts), p1 = (int)((long)total * (t + 1) / parts);
                float* s = (float*)ps + (nint)t * perThread;
                if (splitN)
                    Range(b, (float*)pa, 0, m, p0 * NR, Math.Min(n, p1 * NR), k, (float*)pc, ldc, accumulate, epilogue, (float*)pbias, s);
                else
                    Range(b, (float*)pa, p0 * MR, Math.Min(m, p1 * MR), 0, n, k, (float*)pc, ldc, accumulate, epilogue, (float*)pbias, s);
            }
        });
    }

    /// <summary>Floats of scratch <see cref="MultiplyRowMajorB"/> needs.</summary>
    public static long RowMajorScratchFloats(int k, int n, int threads) => (ScratchFloats(k, n, threads) + 15L) / 16 * 16 + (k + 15L) / 16 * 16;

    /// <summary>Most rows of A for which <see cref="MultiplyRowMajorB"/> reads B in place rather than packing it.</summary>
    public const int InPlaceRowsLimit = 4;

    /// <summary>
    /// C = A·B (+ epilogue) for a row-major B[K, N] with row stride <paramref name="ldb"/>. With at most
    /// <see cref="InPlaceRowsLimit"/> rows, full NR-wide panels are read in place through <see cref="IndirectB"/> and the
    /// last partial panel is packed; otherwise B is packed block by block. <paramref name="scratch"/> holds
    /// <see cref="RowMajorScratchFloats"/> floats.
    /// </summary>
    public static void MultiplyRowMajorB(float* b, nint ldb, float* packedA, int m, int n, int k, float* c, nint ldc, bool accumulate,
        GemmEpilogue epilogue, float* bias, int threads, float* scratch)
    {
        int* offsets = (int*)(scratch + (ScratchFloats(k, n, threads) + 15) / 16 * 16);
        // Reading B in place means one stream per row of B, which caches and TLBs handle badly once rows are reused by
        // several row panels (and rows 4 KiB apart share cache sets); packing is the robust choice except for a few rows.
        if (m > InPlaceRowsLimit)
        {
            Multiply(new StridedB(b, ldb, 1, n), packedA, m, n, k, c, ldc, accumulate, epilogue, bias, threads, scratch);
            return;
        }
        int full = n / NR * NR;
        if (full > 0 && k > 0)
        {
            for (int i = 0; i < k; i++) offsets[i] = checked((int)(i * ldb));
            Multiply(new IndirectB(b, offsets), packedA, m, full, k, c, ldc, accumulate, epilogue, bias, threads, null);
        }
        if (full < n || k <= 0)
        {
            int start = k > 0 ? full : 0;
            float* colBias = epilogue.Bias == GemmBias.PerColumn ? bias + start : bias;
            Multiply(new StridedB(b + start, ldb, 1, n - start), packedA, m, n - start, k, c + start, ldc, accumulate, epilogue, colBias, 1, scratch);
        }
    }

    /// <summary>One thread's share: rows [m0, m1) (m0 a multiple of MR) by columns [n0, n1) (n0 a multiple of NR).</summary>
    private static void Range<TB>(TB b, float* packedA, int m0, int m1, int n0, int n1, int k, float* c, nint ldc, bool accumulate,
        GemmEpilogue epilogue, float* bias, float* scratch) where TB : struct, IGemmB
    {
        int mr = MR, nrMax = NR, mcMax = MC, ncMax = NC;
        int kBlocks = (k + KC - 1) / KC;
        int kcStep = (k + kBlocks - 1) / kBlocks;
        bool rowBias = epilogue.Bias == GemmBias.PerRow, colBias = epilogue.Bias == GemmBias.PerColumn;
        var act = epilogue.Activation;
        for (int jc = n0; jc < n1; jc += ncMax)
        {
            int nc = Math.Min(ncMax, n1 - jc);
            for (int pc = 0; pc < k; pc += kcStep)
            {
                int kc = Math.Min(kcStep, k - pc);
                float* bBlock = b.Block(pc, kc, jc, nc, scratch, out nint panelStride);
                int flags = (accumulate || pc > 0 ? GemmMicroKernels.LoadC : 0) | (pc + kc == k ? GemmMicroKernels.Epilogue : 0);
                for (int ic = m0; ic < m1; ic += mcMax)
                {
                    int mc = Math.Min(mcMax, m1 - ic);
                    for (int jr = 0; jr < nc; jr += nrMax)
                    {
                        int nr = Math.Min(nrMax, nc - jr);
                        float* bp = bBlock + jr / nrMax * panelStride;
                        float* biasCol = colBias ? bias + jc + jr : null;
                        for (int ir = 0; ir < mc; ir += mr)
                        {
                            int rows = Math.Min(mr, mc - ir);
                            float* ap = packedA + (nint)(ic + ir) * k + (nint)pc * mr;
                            float* ct = c + (ic + ir) * ldc + jc + jr;
                            float* biasRow = rowBias ? bias + ic + ir : null;
                            if (b.Offsets == null)
                            {
                                if (nr == nrMax) Tile<PackedRows>(rows, ap, bp, null, kc, ct, ldc, flags, biasRow, biasCol, act);
                                else EdgeTile<PackedRows>(rows, nr, ap, bp, null, kc, ct, ldc, flags, biasRow, biasCol, act);
                            }
                            else
                            {
                                int* offs = b.Offsets + pc;
                                if (nr == nrMax) Tile<IndirectRows>(rows, ap, bp, offs, kc, ct, ldc, flags, biasRow, biasCol, act);
                                else EdgeTile<IndirectRows>(rows, nr, ap, bp, offs, kc, ct, ldc, flags, biasRow, biasCol, act);
                            }
                        }
                    }
                }
            }
        }
    }

    /// <summary>A tile narrower than NR: computed into a local NR-wide tile, then copied out.</summary>
    private static void EdgeTile<TB>(int rows, int cols, float* ap, float* bp, int* offsets, int kc, float* c, nint ldc, int flags, float* biasRow, float* biasCol, FusedActivation act)
        where TB : struct, IBRows
    {
        int nr = NR;
        float* tile = stackalloc float[GemmMicroKernels.MR512 * GemmMicroKernels.NR512];
        float* colBias = stackalloc float[GemmMicroKernels.NR512];
        if ((flags & GemmMicroKernels.LoadC) != 0)
            for (int r = 0; r < rows; r++)
                for (int j = 0; j < cols; j++) tile[r * nr + j] = c[r * ldc + j];
        if (biasCol != null)
        {
            for (int j = 0; j < nr; j++) colBias[j] = j < cols ? biasCol[j] : 0;
            biasCol = colBias;
        }
        Tile<TB>(rows, ap, bp, offsets, kc, tile, nr, flags, biasRow, biasCol, act);
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < cols; j++) c[r * ldc + j] = tile[r * nr + j];
    }

    /// <summary>Runs the micro-kernel for <paramref name="rows"/> rows (1..MR) of a full-width tile.</summary>
    internal static void Tile<TB>(int rows, float* a, float* b, int* offsets, nint kc, float* c, nint ldc, int flags, float* biasRow, float* biasCol, FusedActivation act)
        where TB : struct, IBRows
    {
        if (Vector512.IsHardwareAccelerated)
        {
            switch (rows)
            {
                case 12: GemmMicroKernels.Kernel512<R12, TB>(a, b, offsets, kc, c, ldc, flags, biasRow, biasCol, act); break;
                case 11: GemmMicroKernels.Kernel512<R11, TB>(a, b, offsets, kc, c, ldc, flags, biasRow, biasCol, act); break;
                case 10: GemmMicroKernels.Kernel512<R10, TB>(a, b, offsets, kc, c, ldc, flags, biasRow, biasCol, act); break;
                case 9: GemmMicroKernels.Kernel512<R9, TB>(a, b, offsets, kc, c, ldc, flags, biasRow, biasCol, act); break;
                case 8: GemmMicroKernels.Kernel512<R8, TB>(a, b, offsets, kc, c, ldc, flags, biasRow, biasCol, act); break;
                case 7: GemmMicroKernels.Kernel512<R7, TB>(a, b, offsets, kc, c, ldc, flags, biasRow, biasCol, act); break;
                case 6: GemmMicroKernels.Kernel512<R6, TB>(a, b, offsets, kc, c, ldc, flags, biasRow, biasCol, act); break;
                case 5: GemmMicroKernels.Kernel512<R5, TB>(a, b, offsets, kc, c, ldc, flags, biasRow, biasCol, act); break;
                case 4: GemmMicroKernels.Kernel512<R4, TB>(a, b, offsets, kc, c, ldc, flags, biasRow, biasCol, act); break;
                case 3: GemmMicroKernels.Kernel512<R3, TB>(a, b, offsets, kc, c, ldc, flags, biasRow, biasCol, act); break;
                case 2: GemmMicroKernels.Kernel512<R2, TB>(a, b, offsets, kc, c, ldc, flags, biasRow, biasCol, act); break;
                default: GemmMicroKernels.Kernel512<R1, TB>(a, b, offsets, kc, c, ldc, flags, biasRow, biasCol, act); break;
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            switch (rows)
            {
                case 6: GemmMicroKernels.Kernel256<R6, TB>(a, b, offsets, kc, c, ldc, flags, biasRow, biasCol, act); break;
                case 5: GemmMicroKernels.Kernel256<R5, TB>(a, b, offsets, kc, c, ldc, flags, biasRow, biasCol, act); break;
                case 4: GemmMicroKernels.Kernel256<R4, TB>(a, b, offsets, kc, c, ldc, flags, biasRow, biasCol, act); break;
                case 3: GemmMicroKernels.Kernel256<R3, TB>(a, b, offsets, kc, c, ldc, flags, biasRow, biasCol, act); break;
                case 2: GemmMicroKernels.Kernel256<R2, TB>(a, b, offsets, kc, c, ldc, flags, biasRow, biasCol, act); break;
                default: GemmMicroKernels.Kernel256<R1, TB>(a, b, offsets, kc, c, ldc, flags, biasRow, biasCol, act); break;
            }
        }
        else if (Vector128.IsHardwareAccelerated)
        {
            switch (rows)
            {
                case 6: GemmMicroKernels.Kernel128<R6, TB>(a, b, offsets, kc, c, ldc, flags, biasRow, biasCol, act); break;
                case 5: GemmMicroKernels.Kernel128<R5, TB>(a, b, offsets, kc, c, ldc, flags, biasRow, biasCol, act); break;
                case 4: GemmMicroKernels.Kernel128<R4, TB>(a, b, offsets, kc, c, ldc, flags, biasRow, biasCol, act); break;
                case 3: GemmMicroKernels.Kernel128<R3, TB>(a, b, offsets, kc, c, ldc, flags, biasRow, biasCol, act); break;
                case 2: GemmMicroKernels.Kernel128<R2, TB>(a, b, offsets, kc, c, ldc, flags, biasRow, biasCol, act); break;
                default: GemmMicroKernels.Kernel128<R1, TB>(a, b, offsets, kc, c, ldc, flags, biasRow, biasCol, act); break;
            }
        }
        else GemmMicroKernels.KernelScalar<TB>(rows, a, b, offsets, kc, c, ldc, flags, biasRow, biasCol, act);
    }

    private static void EmptyK(int m, int n, float* c, nint ldc, bool accumulate, GemmEpilogue epilogue, float* bias)
    {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                float x = accumulate ? c[i * ldc + j] : 0f;
                if (epilogue.Bias == GemmBias.PerRow) x += bias[i];
                else if (epilogue.Bias == GemmBias.PerColumn) x += bias[j];
                c[i * ldc + j] = epilogue.Activation.Apply(x);
            }
    }
}
