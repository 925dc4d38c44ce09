using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace OnDevice.Runtime.Simd;

/// <summary>Instruction paths of the int8 GEMM, fastest first.</summary>
public enum Int8GemmPath
{
    /// <summary>Portable scalar loops (the reference twin).</summary>
    Scalar,
    /// <summary>AVX2: bytes widened to int16, <c>vpmaddwd</c> (no saturation).</summary>
    Avx2,
    /// <summary>AVX-512BW: the same widening scheme on 512-bit registers.</summary>
    Avx512BW,
    /// <summary>AVX-VNNI: <c>vpdpbusd</c> on 256-bit registers (u8 × s8 → s32 in one instruction).</summary>
    AvxVnni,
}

/// <summary>
/// The right-hand operand B[K, N] of the int8 GEMM, packed once (for constant weights, when a session is built):
/// values as signed bytes B' = b − offset (offset 128 for uint8 weights, else 0), in panels of
/// <see cref="Int8Gemm.NR"/> columns; within a panel, for each group of four k, NR columns × 4 bytes (the operand
/// layout of <c>vpdpbusd</c>). K is zero-padded to a multiple of 4, N to a multiple of NR. Keeps per-column sums of B'
/// and the effective zero points (zb − offset) for the zero-point corrections.
/// </summary>
public sealed unsafe class Int8PackedB
{
    /// <summary>Reduction length.</summary>
    public int K { get; }
    /// <summary>Columns.</summary>
    public int N { get; }
    /// <summary>K rounded up to a multiple of 4.</summary>
    public int KPadded { get; }
    /// <summary>Number of NR-column panels.</summary>
    public int Panels { get; }
    /// <summary>Packed bytes (pinned).</summary>
    internal readonly sbyte[] Data;
    /// <summary>Per column: Σ_k B'[k, j].</summary>
    internal readonly int[] ColumnSums;
    /// <summary>Per column: effective zero point zb − offset (B' domain); all zero when <see cref="HasZeroPoints"/> is false.</summary>
    internal readonly int[] ZeroPoints;
    /// <summary>True when some column's effective zero point is not 0.</summary>
    public bool HasZeroPoints { get; }

    /// <summary>Bytes held by the packed weights (data, sums, zero points).</summary>
    public long Bytes => Data.Length + ColumnSums.Length * 8L;

    /// <summary>
    /// Packs B where element (k, j) is <c>b[k·rowStride + j·colStride]</c>, uint8 or int8 (<paramref name="signed"/>);
    /// <paramref name="zeroPoints"/> has one value per column (or one for all; null = 0).
    /// </summary>
    public Int8PackedB(ReadOnlySpan<byte> b, bool signed, int k, int n, nint rowStride, nint colStride, ReadOnlySpan<int> zeroPoints)
    {
        if (k < 0 || n < 0) throw new ArgumentOutOfRangeException(nameof(k), "negative GEMM size");
        if (zeroPoints.Length is not (0 or 1) && zeroPoints.Length != n) throw new ArgumentException($"{zeroPoints.Length} zero points for {n} columns");
        K = k;
        N = n;
        KPadded = (k + 3) & ~3;
        Panels = (n + Int8Gemm.NR - 1) / Int8Gemm.NR;
        Data = GC.AllocateArray<sbyte>(Math.Max(1, Panels * Int8Gemm.NR * KPadded), pinned: true);
        ColumnSums = new int[Math.Max(1, Panels * Int8Gemm.NR)];
        ZeroPoints = new int[ColumnSums.Length];
        int offset = signed ? 0 : 128;
        bool any = false;
        for (int j = 0; j < n; j++)
        {
            int zb = zeroPoints.Length == 0 ? 0 : zeroPoints[zeroPoints.Length == 1 ? 0 : j];
            ZeroPoints[j] = zb - offset;
            any |= ZeroPoints[j] != 0;
            int panel = j / Int8Gemm.NR, col = j % Int8Gemm.NR, sum = 0;
            int baseIdx = panel * Int8Gemm.NR * KPadded + col * 4;
            for (int kk = 0; kk < k; kk++)
            {
                byte raw = b[(int)(kk * rowStride + j * colStride)];
                int v = signed ? (sbyte)raw : raw - 128;
                sum += v;
                Data[baseIdx + (kk >> 2) * Int8Gemm.NR * 4 + (kk & 3)] = (sbyte)v;
            }
            ColumnSums[j] = sum;
        }
        HasZeroPoints = any;
    }

    internal sbyte* Address => (sbyte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(Data));
}

/// <summary>
/// Integer GEMM C[M, N] (int32) = Σ_k (a[m, k] − za[m]) · (b[k, n] − zb[n]) for uint8/int8 operands, exact. A is
/// brought to unsigned bytes A' = a + 128·signed (rows padded with zeros to a multiple of 4) by
/// <see cref="PrepareA"/>, B is packed signed (<see cref="Int8PackedB"/>); the kernel computes S = Σ A'·B' and the
/// epilogue applies the zero-point algebra C = S − ZB·ΣA' − ZA·ΣB' + K·ZA·ZB with ZA = za + 128·signed and
/// ZB = zb − 128·unsigned (wrapping int32 arithmetic, exact whenever the true result fits). Paths: AVX-VNNI
/// <c>vpdpbusd</c>, AVX-512BW and AVX2 by widening to int16 and <c>vpmaddwd</c> (never <c>vpmaddubsw</c>, whose
/// int16 saturation would be wrong for 255·127·2), and scalar. Every path gives identical int32 results.
/// </summary>
public static unsafe class Int8Gemm
{
    /// <summary>Columns per packed panel.</summary>
    public const int NR = 16;

    /// <summary>Rows per register tile.</summary>
    public const int MR = 6;

    /// <summary>The fastest path this machine (and the JIT's enabled instruction sets) supports.</summary>
    public static Int8GemmPath Best { get; } =
        AvxVnni.IsSupported ? Int8GemmPath.AvxVnni :
        Avx512BW.IsSupported && Vector512.IsHardwareAccelerated ? Int8GemmPath.Avx512BW :
        Avx2.IsSupported ? Int8GemmPath.Avx2 : Int8GemmPath.Scalar;

    /// <summary>True when <paramref name="path"/> can run here.</summary>
    public static bool IsSupported(Int8GemmPath path) => path switch
    {
        Int8GemmPath.Scalar => true,
        Int8GemmPath.Avx2 => Avx2.IsSupported,
        Int8GemmPath.Avx512BW => Avx512BW.IsSupported && Vector512.IsHardwareAccelerated,
        Int8GemmPath.AvxVnni => AvxVnni.IsSupported,
        _ => false,
    };

    /// <summary>Bytes of A' for <paramref name="m"/> rows of <paramref name="kPadded"/>.</summary>
    public static long PreparedABytes(int m, int kPadded) => (long)m * kPadded;

    /// <summary>
    /// Converts rows of A (uint8, or int8 when <paramref name="signed"/>; element (i, k) at a[i·lda + k]) into A'
    /// (unsigned, padded to <paramref name="kPadded"/>) and writes the row sums of A' into <paramref name="rowSums"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PrepareA(byte* a, int m, int k, nint lda, bool signed, byte* dst, int kPadded, int* rowSums)
    {
        byte flip = signed ? (byte)0x80 : (byte)0;
        for (int i = 0; i < m; i++)
        {
            byte* src = a + i * lda;
            byte* d = dst + (nint)i * kPadded;
            int sum = 0, kk = 0;
            if (Vector256.IsHardwareAccelerated)
            {
                var vf = Vector256.Create(flip);
                var acc = Vector256<uint>.Zero;
                for (; kk + 32 <= k; kk += 32)
                {
                    var v = Vector256.Load(src + kk) ^ vf;
                    v.Store(d + kk);
                    var (lo, hi) = Vector256.Widen(v);
                    var (l0, l1) = Vector256.Widen(lo + hi);
                    acc += l0 + l1;
                }
                sum = (int)Vector256.Sum(acc);
            }
            for (; kk < k; kk++)
            {
                byte v = (byte)(src[kk] ^ flip);
                d[kk] = v;
                sum += v;
            }
            for (; kk < kPadded; kk++) d[kk] = 0;
            rowSums[i] = sum;
        }
    }

    /// <summary>
    /// C[i, j] = S[i, j] − ZB[j]·rowSums[i] − ZA[i]·ΣB'[j] + K·ZA[i]·ZB[j] for i &lt; m, j &lt; N, where S = A'·B'.
    /// <paramref name="za"/> (per row of A', already including the +128 of signed A) may be null for 0.
    /// </summary>
    public static void Multiply(Int8GemmPath path, byte* a, int m, int* rowSums, int* za, Int8PackedB b, int* c, nint ldc, int threads)
    {
        if (!IsSupported(path)) throw new NotSupportedException($"int8 GEMM path {path} is not supported on this machine");
        if (m <= 0 || b.N <= 0) return;
        int rowBlocks = (m + MR - 1) / MR;
        long work = (long)m * b.N * b.KPadded;
        int workers = (int)Math.Max(1, Math.Min(threads, work / (1 << 17)));
        var args = new Args { A = a, M = m, RowSums = rowSums, Za = za, C = c, Ldc = ldc, Path = path };
        if (workers <= 1)
        {
            Run(args, b, 0, rowBlocks, 0, b.Panels);
            return;
        }
        if (rowBlocks >= workers * 2 || rowBlocks >= b.Panels)
            Kernels.Parallel2.For(rowBlocks, workers, (r0, r1) => Run(args, b, r0, r1, 0, b.Panels));
        else
            Kernels.Parallel2.For(b.Panels, workers, (p0, p1) => Run(args, b, 0, rowBlocks, p0, p1));
    }

    private struct Args
    {
        public byte* A;
        public int M;
        public int* RowSums, Za, C;
        public nint Ldc;
        public Int8GemmPath Path;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Run(Args args, Int8PackedB b, int rb0, int rb1, int p0, int p1)
    {
        int kp = b.KPadded;
        int quads = kp / 4;
        bool widen = args.Path is Int8GemmPath.Avx2 or Int8GemmPath.Avx512BW;
        short[]? wide = widen ? GC.AllocateUninitializedArray<short>(MR * kp + 16, pinned: true) : null;
        int* tile = stackalloc int[MR * NR];
        sbyte* bp = b.Address;
        fixed (short* w16 = wide)
        {
            for (int rb = rb0; rb < rb1; rb++)
            {
                int i0 = rb * MR, rows = Math.Min(MR, args.M - i0);
                byte* a0 = args.A + (nint)i0 * kp;
                if (widen)
                {
                    for (int r = 0; r < MR; r++)
                    {
                        short* d = w16 + r * kp;
                        if (r < rows) { byte* s = a0 + (nint)r * kp; for (int q = 0; q < kp; q++) d[q] = s[q]; }
                        else new Span<short>(d, kp).Clear();
                    }
                }
                for (int p = p0; p < p1; p++)
                {
                    sbyte* panel = bp + (nint)p * NR * kp;
                    switch (args.Path)
                    {
                        case Int8GemmPath.AvxVnni:
                            if (rows == MR) TileVnni6(a0, kp, panel, quads, tile);
                            else for (int r = 0; r < rows; r++) TileVnni1(a0 + (nint)r * kp, panel, quads, tile + r * NR);
                            break;
                        case Int8GemmPath.Avx512BW: TileAvx512(w16, kp, panel, quads, tile); break;
                        case Int8GemmPath.Avx2: TileAvx2(w16, kp, panel, quads, tile); break;
                        default: TileScalar(a0, kp, rows, panel, quads, tile); break;
                    }
                    Store(args, b, tile, i0, rows, p);
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Store(Args args, Int8PackedB b, int* tile, int i0, int rows, int panel)
    {
        int j0 = panel * NR, cols = Math.Min(NR, b.N - j0);
        int k = b.K;
        bool zb = b.HasZeroPoints;
        if (cols == NR && Vector512.IsHardwareAccelerated && args.Path != Int8GemmPath.Scalar)
        {
            // A whole panel: sixteen columns per row at once (the same wrapping int32 arithmetic as below).
            var colSums = Vector512.LoadUnsafe(ref MemoryMarshal.GetArrayDataReference(b.ColumnSums), (nuint)j0);
            var zps = Vector512.LoadUnsafe(ref MemoryMarshal.GetArrayDataReference(b.ZeroPoints), (nuint)j0);
            for (int r = 0; r < rows; r++)
            {
                int i = i0 + r;
                int za = args.Za is null ? 0 : args.Za[i];
                var t = Vector512.Load(tile + r * NR);
                var c = t - zps * Vector512.Create(args.RowSums[i]) - Vector512.Create(za) * colSums + Vector512.Create(k * za) * zps;
                c.Store(args.C + i * args.Ldc + j0);
            }
            return;
        }
        for (int r = 0; r < rows; r++)
        {
            int i = i0 + r;
            int* crow = args.C + i * args.Ldc + j0;
            int* t = tile + r * NR;
            int za = args.Za is null ? 0 : args.Za[i];
            int ra = args.RowSums[i];
            unchecked
            {
                if (za == 0 && !zb)
                    for (int j = 0; j < cols; j++) crow[j] = t[j];
                else
                    for (int j = 0; j < cols; j++)
                    {
                        int zbj = b.ZeroPoints[j0 + j];
                        crow[j] = t[j] - zbj * ra - za * b.ColumnSums[j0 + j] + k * za * zbj;
                    }
            }
        }
    }

    /// <summary>Scalar tile: S for <paramref name="rows"/> rows × NR columns of one panel.</summary>
    internal static void TileScalar(byte* a, int kp, int rows, sbyte* panel, int quads, int* tile)
    {
        for (int r = 0; r < rows; r++)
        {
            byte* ar = a + (nint)r * kp;
            for (int j = 0; j < NR; j++)
            {
                int s = 0;
                for (int q = 0; q < quads; q++)
                {
                    sbyte* bq = panel + q * NR * 4 + j * 4;
                    byte* aq = ar + q * 4;
                    s += aq[0] * bq[0] + aq[1] * bq[1] + aq[2] * bq[2] + aq[3] * bq[3];
                }
                tile[r * NR + j] = s;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void TileVnni6(byte* a, int kp, sbyte* panel, int quads, int* tile)
    {
        Vector256<int> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector256<int> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        byte* a1 = a + kp, a2 = a1 + kp, a3 = a2 + kp, a4 = a3 + kp, a5 = a4 + kp;
        for (int q = 0; q < quads; q++)
        {
            var b0 = Vector256.Load(panel);
            var b1 = Vector256.Load(panel + 32);
            panel += NR * 4;
            int o = q * 4;
            var x = Vector256.Create(*(int*)(a + o)).AsByte();
            c00 = AvxVnni.MultiplyWideningAndAdd(c00, x, b0);
            c01 = AvxVnni.MultiplyWideningAndAdd(c01, x, b1);
            x = Vector256.Create(*(int*)(a1 + o)).AsByte();
            c10 = AvxVnni.MultiplyWideningAndAdd(c10, x, b0);
            c11 = AvxVnni.MultiplyWideningAndAdd(c11, x, b1);
            x = Vector256.Create(*(int*)(a2 + o)).AsByte();
            c20 = AvxVnni.MultiplyWideningAndAdd(c20, x, b0);
            c21 = AvxVnni.MultiplyWideningAndAdd(c21, x, b1);
            x = Vector256.Create(*(int*)(a3 + o)).AsByte();
            c30 = AvxVnni.MultiplyWideningAndAdd(c30, x, b0);
            c31 = AvxVnni.MultiplyWideningAndAdd(c31, x, b1);
            x = Vector256.Create(*(int*)(a4 + o)).AsByte();
            c40 = AvxVnni.MultiplyWideningAndAdd(c40, x, b0);
            c41 = AvxVnni.MultiplyWideningAndAdd(c41, x, b1);
            x = Vector256.Create(*(int*)(a5 + o)).AsByte();
            c50 = AvxVnni.MultiplyWideningAndAdd(c50, x, b0);
            c51 = AvxVnni.MultiplyWideningAndAdd(c51, x, b1);
        }
        c00.Store(tile); c01.Store(tile + 8);
        c10.Store(tile + 16); c11.Store(tile + 24);
        c20.Store(tile + 32); c21.Store(tile + 40);
        c30.Store(tile + 48); c31.Store(tile + 56);
        c40.Store(tile + 64); c41.Store(tile + 72);
        c50.Store(tile + 80); c51.Store(tile + 88);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void TileVnni1(byte* a, sbyte* panel, int quads, int* tile)
    {
        Vector256<int> c0 = default, c1 = default, d0 = default, d1 = default;
        int q = 0;
        for (; q + 2 <= quads; q += 2)
        {
            var x = Vector256.Create(*(int*)(a + q * 4)).AsByte();
            var y = Vector256.Create(*(int*)(a + q * 4 + 4)).AsByte();
            c0 = AvxVnni.MultiplyWideningAndAdd(c0, x, Vector256.Load(panel));
            c1 = AvxVnni.MultiplyWideningAndAdd(c1, x, Vector256.Load(panel + 32));
            d0 = AvxVnni.MultiplyWideningAndAdd(d0, y, Vector256.Load(panel + 64));
            d1 = AvxVnni.MultiplyWideningAndAdd(d1, y, Vector256.Load(panel + 96));
            panel += NR * 8;
        }
        if (q < quads)
        {
            var x = Vector256.Create(*(int*)(a + q * 4)).AsByte();
            c0 = AvxVnni.MultiplyWideningAndAdd(c0, x, Vector256.Load(panel));
            c1 = AvxVnni.MultiplyWideningAndAdd(c1, x, Vector256.Load(panel + 32));
        }
        (c0 + d0).Store(tile);
        (c1 + d1).Store(tile + 8);
    }

    /// <summary>AVX-512BW: each 64-byte k-quad group of the panel widened to two zmm of int16 (8 columns × 4 k each);
    /// vpmaddwd against the row's 4 widened A values broadcast leaves two partial sums per column.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TileAvx512(short* a, int kp, sbyte* panel, int quads, int* tile)
    {
        Vector512<int> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector512<int> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        short* a1 = a + kp, a2 = a1 + kp, a3 = a2 + kp, a4 = a3 + kp, a5 = a4 + kp;
        for (int q = 0; q < quads; q++)
        {
            var b0 = Avx512BW.ConvertToVector512Int16(Vector256.Load(panel));
            var b1 = Avx512BW.ConvertToVector512Int16(Vector256.Load(panel + 32));
            panel += NR * 4;
            int o = q * 4;
            var x = Vector512.Create(*(long*)(a + o)).AsInt16();
            c00 += Avx512BW.MultiplyAddAdjacent(b0, x);
            c01 += Avx512BW.MultiplyAddAdjacent(b1, x);
            x = Vector512.Create(*(long*)(a1 + o)).AsInt16();
            c10 += Avx512BW.MultiplyAddAdjacent(b0, x);
            c11 += Avx512BW.MultiplyAddAdjacent(b1, x);
            x = Vector512.Create(*(long*)(a2 + o)).AsInt16();
            c20 += Avx512BW.MultiplyAddAdjacent(b0, x);
            c21 += Avx512BW.MultiplyAddAdjacent(b1, x);
            x = Vector512.Create(*(long*)(a3 + o)).AsInt16();
            c30 += Avx512BW.MultiplyAddAdjacent(b0, x);
            c31 += Avx512BW.MultiplyAddAdjacent(b1, x);
            x = Vector512.Create(*(long*)(a4 + o)).AsInt16();
            c40 += Avx512BW.MultiplyAddAdjacent(b0, x);
            c41 += Avx512BW.MultiplyAddAdjacent(b1, x);
            x = Vector512.Create(*(long*)(a5 + o)).AsInt16();
            c50 += Avx512BW.MultiplyAddAdjacent(b0, x);
            c51 += Avx512BW.MultiplyAddAdjacent(b1, x);
        }
        PairSum512(c00, c01, tile);
        PairSum512(c10, c11, tile + 16);
        PairSum512(c20, c21, tile + 32);
        PairSum512(c30, c31, tile + 48);
        PairSum512(c40, c41, tile + 64);
        PairSum512(c50, c51, tile + 80);
    }

    private static void PairSum512(Vector512<int> lo, Vector512<int> hi, int* dst)
    {
        int* t = stackalloc int[32];
        lo.Store(t);
        hi.Store(t + 16);
        for (int j = 0; j < 16; j++) dst[j] = t[2 * j] + t[2 * j + 1];
    }

    /// <summary>AVX2: the panel's 16 columns in four ymm of int16 (4 columns × 4 k each), two tiles of 3 rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TileAvx2(short* a, int kp, sbyte* panel, int quads, int* tile)
    {
        for (int half = 0; half < 2; half++)
        {
            short* r0 = a + half * 3 * kp, r1 = r0 + kp, r2 = r1 + kp;
            Vector256<int> c00 = default, c01 = default, c02 = default, c03 = default;
            Vector256<int> c10 = default, c11 = default, c12 = default, c13 = default;
            Vector256<int> c20 = default, c21 = default, c22 = default, c23 = default;
            sbyte* p = panel;
            for (int q = 0; q < quads; q++)
            {
                var b0 = Avx2.ConvertToVector256Int16(Vector128.Load(p));
                var b1 = Avx2.ConvertToVector256Int16(Vector128.Load(p + 16));
                var b2 = Avx2.ConvertToVector256Int16(Vector128.Load(p + 32));
                var b3 = Avx2.ConvertToVector256Int16(Vector128.Load(p + 48));
                p += NR * 4;
                int o = q * 4;
                var x = Vector256.Create(*(long*)(r0 + o)).AsInt16();
                c00 += Avx2.MultiplyAddAdjacent(b0, x); c01 += Avx2.MultiplyAddAdjacent(b1, x);
                c02 += Avx2.MultiplyAddAdjacent(b2, x); c03 += Avx2.MultiplyAddAdjacent(b3, x);
                x = Vector256.Create(*(long*)(r1 + o)).AsInt16();
                c10 += Avx2.MultiplyAddAdjacent(b0, x); c11 += Avx2.MultiplyAddAdjacent(b1, x);
                c12 += Avx2.MultiplyAddAdjacent(b2, x); c13 += Avx2.MultiplyAddAdjacent(b3, x);
                x = Vector256.Create(*(long*)(r2 + o)).AsInt16();
                c20 += Avx2.MultiplyAddAdjacent(b0, x); c21 += Avx2.MultiplyAddAdjacent(b1, x);
                c22 += Avx2.MultiplyAddAdjacent(b2, x); c23 += Avx2.MultiplyAddAdjacent(b3, x);
            }
            int* t = tile + half * 3 * NR;
            PairSum256(c00, c01, c02, c03, t);
            PairSum256(c10, c11, c12, c13, t + NR);
            PairSum256(c20, c21, c22, c23, t + 2 * NR);
        }
    }

    private static void PairSum256(Vector256<int> v0, Vector256<int> v1, Vector256<int> v2, Vector256<int> v3, int* dst)
    {
        int* t = stackalloc int[32];
        v0.Store(t); v1.Store(t + 8); v2.Store(t + 16); v3.Store(t + 24);
        for (int j = 0; j < 16; j++) dst[j] = t[2 * j] + t[2 * j + 1];
    }
}
