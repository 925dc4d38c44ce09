using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace OnDevice.Runtime.Simd;

/// <summary>
/// The weights of a pointwise (1×1) integer convolution as the left operand of <see cref="Int8Pointwise"/>: rows of
/// A' = w + 128·signed (unsigned bytes, K zero-padded to a multiple of 4), with per-row sums of A' and the effective
/// zero points ZA = zw + 128·signed. Prepared once when the session is built.
/// </summary>
public sealed unsafe class Int8PointwiseWeights
{
    /// <summary>Output channels (rows).</summary>
    public int M { get; }
    /// <summary>Input channels (reduction length).</summary>
    public int K { get; }
    /// <summary>K rounded up to a multiple of 4.</summary>
    public int KPadded { get; }
    internal readonly byte[] Data;
    internal readonly int[] RowSums;
    internal readonly int[] Za;

    /// <summary>Prepares <paramref name="w"/> [M, K] (row-major, uint8 or int8 when <paramref name="signed"/>) with one
    /// zero point per row or one for all (empty = 0).</summary>
    public Int8PointwiseWeights(ReadOnlySpan<byte> w, bool signed, int m, int k, ReadOnlySpan<int> zeroPoints)
    {
        if (m <= 0 || k <= 0 || w.Length < (long)m * k) throw new ArgumentException($"pointwise weights [{m}, {k}] need {(long)m * k} bytes, got {w.Length}");
        if (zeroPoints.Length is not (0 or 1) && zeroPoints.Length != m) throw new ArgumentException($"{zeroPoints.Length} zero points for {m} rows");
        M = m;
        K = k;
        KPadded = (k + 3) & ~3;
        Data = GC.AllocateArray<byte>(m * KPadded + 64, pinned: true);
        RowSums = new int[m];
        Za = new int[m];
        byte flip = signed ? (byte)0x80 : (byte)0;
        for (int i = 0; i < m; i++)
        {
            int sum = 0;
            for (int kk = 0; kk < k; kk++)
            {
                byte v = (byte)(w[i * k + kk] ^ flip);
                Data[i * KPadded + kk] = v;
                sum += v;
            }
            RowSums[i] = sum;
            int zw = zeroPoints.Length == 0 ? 0 : zeroPoints[zeroPoints.Length == 1 ? 0 : i];
            Za[i] = zw + (signed ? 128 : 0);
        }
    }

    /// <summary>Bytes held.</summary>
    public long Bytes => Data.Length + RowSums.Length * 8L;

    internal byte* Address => (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(Data));
}

/// <summary>
/// Pointwise (1×1, stride 1, no padding) QLinearConv as one int8 GEMM on the NCHW layout: Y[M, P] = W[M, K]·X[K, P]
/// with P the positions of an image. No im2col and no channels-last copy: blocks of 16 positions of X are packed into
/// the <c>vpdpbusd</c> panel layout of <see cref="Int8PackedB"/> (X' = x − 128·unsigned as signed bytes, with
/// per-position sums), the weights are the broadcast operand (<see cref="Int8PointwiseWeights"/>), and requantization
/// (bias, per-channel multiplier, zero point, clamp) runs in the epilogue on 16 positions at a time, writing each output
/// channel's row directly. Paths: AVX-VNNI and the scalar twin (identical results).
/// </summary>
public static unsafe class Int8Pointwise
{
    /// <summary>Positions per packed panel.</summary>
    public const int Panel = Int8Gemm.NR;

    /// <summary>Panels packed together (one block of positions shares the weights' trip through L1).</summary>
    public const int PanelsPerBlock = 4;

    /// <summary>True when <paramref name="path"/> can run this kernel here (AVX-VNNI or scalar).</summary>
    public static bool IsSupported(Int8GemmPath path) =>
        path == Int8GemmPath.Scalar || (path == Int8GemmPath.AvxVnni && AvxVnni.IsSupported && Avx512F.IsSupported);

    /// <summary>Scratch bytes one worker needs for <paramref name="kPadded"/>.</summary>
    public static int ScratchBytes(int kPadded) => kPadded * Panel * PanelsPerBlock + PanelsPerBlock * Panel * 4 + Int8Gemm.MR * Panel * 4 + 256;

    /// <summary>
    /// Packs <paramref name="cols"/> (≤ 16) positions of X (row k at <paramref name="x"/> + k·<paramref name="stride"/>)
    /// into one panel (kPadded/4 groups of 16 positions × 4 k, signed bytes) and writes the 16 column sums (0 for
    /// missing columns). <paramref name="vector"/> false forces the scalar twin.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackPanel(byte* x, nint stride, int k, int kPadded, int cols, bool signedX, sbyte* panel, int* colSums, bool vector = true)
    {
        byte flip = signedX ? (byte)0 : (byte)0x80;
        if (vector && cols == Panel && AvxVnni.IsSupported)
        {
            var vf = Vector128.Create(flip);
            var ones = Vector256.Create((byte)1);
            Vector256<int> s0 = default, s1 = default;
            int kk = 0;
            for (; kk + 4 <= k; kk += 4)
            {
                byte* r = x + kk * stride;
                var r0 = Vector128.Load(r) ^ vf;
                var r1 = Vector128.Load(r + stride) ^ vf;
                var r2 = Vector128.Load(r + 2 * stride) ^ vf;
                var r3 = Vector128.Load(r + 3 * stride) ^ vf;
                StoreQuad(r0, r1, r2, r3, panel + kk * Panel, ones, ref s0, ref s1);
            }
            if (kk < k)
            {
                byte* r = x + kk * stride;
                var z = Vector128<byte>.Zero;
                var r0 = Vector128.Load(r) ^ vf;
                var r1 = kk + 1 < k ? Vector128.Load(r + stride) ^ vf : z;
                var r2 = kk + 2 < k ? Vector128.Load(r + 2 * stride) ^ vf : z;
                StoreQuad(r0, r1, r2, z, panel + kk * Panel, ones, ref s0, ref s1);
            }
            s0.Store(colSums);
            s1.Store(colSums + 8);
            return;
        }
        for (int j = 0; j < Panel; j++) colSums[j] = 0;
        for (int kk = 0; kk < kPadded; kk++)
        {
            sbyte* d = panel + (kk >> 2) * Panel * 4 + (kk & 3);
            for (int j = 0; j < Panel; j++)
            {
                sbyte v = kk < k && j < cols ? (sbyte)(x[kk * stride + j] ^ flip) : (sbyte)0;
                d[j * 4] = v;
                colSums[j] += v;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreQuad(Vector128<byte> r0, Vector128<byte> r1, Vector128<byte> r2, Vector128<byte> r3, sbyte* dst, Vector256<byte> ones, ref Vector256<int> s0, ref Vector256<int> s1)
    {
        var t0 = Sse2.UnpackLow(r0, r1).AsInt16();
        var t1 = Sse2.UnpackHigh(r0, r1).AsInt16();
        var t2 = Sse2.UnpackLow(r2, r3).AsInt16();
        var t3 = Sse2.UnpackHigh(r2, r3).AsInt16();
        var lo = Vector256.Create(Sse2.UnpackLow(t0, t2), Sse2.UnpackHigh(t0, t2)).AsSByte();
        var hi = Vector256.Create(Sse2.UnpackLow(t1, t3), Sse2.UnpackHigh(t1, t3)).AsSByte();
        lo.Store(dst);
        hi.Store(dst + 32);
        s0 = AvxVnni.MultiplyWideningAndAdd(s0, ones, lo);
        s1 = AvxVnni.MultiplyWideningAndAdd(s1, ones, hi);
    }

    /// <summary>Requantization parameters of one call.</summary>
    public struct Requant
    {
        /// <summary>Per output channel: int32 bias (already in x_scale·w_scale units).</summary>
        public int* Bias;
        /// <summary>Per output channel: x_scale·w_scale / y_scale.</summary>
        public float* Multipliers;
        /// <summary>Output zero point and clamp range (an 8-bit range, narrowed for fused Relu).</summary>
        public int Zy, Min, Max;
        /// <summary>Optional per-channel (or shared when <see cref="LookupRows"/> is 1) 256-entry tables applied last.</summary>
        public byte* Lookup;
        /// <summary>Rows of <see cref="Lookup"/>: 0 (none), 1 or M.</summary>
        public int LookupRows;
        /// <summary>
        /// Float output instead of bytes when set: per output channel x_scale·w_scale, and <see cref="OutBias"/> the float
        /// bias; y[m, p] = fma(float(S + int32 bias), OutScales[m], OutBias[m]), y and its strides counted in floats.
        /// </summary>
        public float* OutScales;
        /// <summary>Per output channel float bias (float output only).</summary>
        public float* OutBias;
    }

    /// <summary>
    /// One image: y[m, p] for positions of panels [<paramref name="panel0"/>, <paramref name="panel1"/>), from x [K, positions]
    /// (uint8, or int8 when <paramref name="signedX"/>; zero point <paramref name="zx"/>). y is [M, positions] bytes.
    /// <paramref name="scratch"/> holds <see cref="ScratchBytes"/> bytes.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run(Int8GemmPath path, Int8PointwiseWeights w, byte* x, int positions, bool signedX, int zx, in Requant q, byte* y,
        int panel0, int panel1, byte* scratch) =>
        Run(path, w, x, positions, positions, signedX, zx, q, y, positions, panel0, panel1, scratch);

    /// <summary>
    /// As <see cref="Run(Int8GemmPath, Int8PointwiseWeights, byte*, int, bool, int, in Requant, byte*, int, int, byte*)"/>
    /// with separate row strides: row k of X at x + k·<paramref name="xStride"/>, output channel m at y + m·<paramref name="yStride"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run(Int8GemmPath path, Int8PointwiseWeights w, byte* x, nint xStride, int positions, bool signedX, int zx, in Requant q,
        byte* y, nint yStride, int panel0, int panel1, byte* scratch)
    {
        if (!IsSupported(path)) throw new NotSupportedException($"pointwise int8 path {path} is not supported on this machine");
        if (q.OutScales != null && q.LookupRows > 0) throw new ArgumentException("a lookup table needs byte output");
        int m = w.M, k = w.K, kp = w.KPadded, quads = kp / 4;
        int es = q.OutScales != null ? sizeof(float) : 1; // bytes per output element
        bool vector = path != Int8GemmPath.Scalar;
        sbyte* panels = (sbyte*)(((nint)scratch + 63) & ~(nint)63);
        int* colSums = (int*)(panels + (nint)kp * Panel * PanelsPerBlock);
        int* tile = colSums + PanelsPerBlock * Panel;
        int zb = zx - (signedX ? 0 : 128);
        byte* a = w.Address;
        // Per row: the terms of C = S − ZB·ΣA' − ZA·ΣX' + K·ZA·ZB + bias that do not depend on the position.
        int* rowConst = stackalloc int[Math.Min(m, 4096)];
        int[]? rowConstHeap = m > 4096 ? new int[m] : null;
        fixed (int* rch = rowConstHeap)
        {
            int* rc = rch is null ? rowConst : rch;
            unchecked
            {
                for (int i = 0; i < m; i++) rc[i] = q.Bias[i] - zb * w.RowSums[i] + k * w.Za[i] * zb;
            }
            for (int b0 = panel0; b0 < panel1; b0 += PanelsPerBlock)
            {
                int nPanels = Math.Min(PanelsPerBlock, panel1 - b0);
                for (int pi = 0; pi < nPanels; pi++)
                {
                    int c0 = (b0 + pi) * Panel, cols = Math.Min(Panel, positions - c0);
                    PackPanel(x + c0, xStride, k, kp, cols, signedX, panels + (nint)pi * kp * Panel, colSums + pi * Panel, vector);
                }
                int blockStart = b0 * Panel, blockCols = Math.Min(nPanels * Panel, positions - blockStart);
                for (int r0 = 0; r0 < m; r0 += Int8Gemm.MR)
                {
                    int rows = Math.Min(Int8Gemm.MR, m - r0);
                    byte* ar = a + (nint)r0 * kp;
                    for (int pi = 0; pi < nPanels; pi++)
                    {
                        sbyte* panel = panels + (nint)pi * kp * Panel;
                        if (!vector) Int8Gemm.TileScalar(ar, kp, rows, panel, quads, tile);
                        else if (rows == Int8Gemm.MR) Int8Gemm.TileVnni6(ar, kp, panel, quads, tile);
                        else for (int r = 0; r < rows; r++) Int8Gemm.TileVnni1(ar + (nint)r * kp, panel, quads, tile + r * Panel);
                        int c0 = (b0 + pi) * Panel, cols = Math.Min(Panel, positions - c0);
                        Epilogue(tile, rows, r0, colSums + pi * Panel, w.Za, rc, q, y + (nint)c0 * es, yStride, cols, vector);
                    }
                    if (q.LookupRows > 0)
                        for (int r = 0; r < rows; r++)
                        {
                            byte* row = y + (r0 + r) * yStride + blockStart;
                            ByteLookup.Apply(row, row, blockCols, q.Lookup + (q.LookupRows == 1 ? 0 : (r0 + r) * 256));
                        }
                }
            }
        }
    }

    /// <summary>Requantizes a tile of S (rows × 16) into rows of y (row r at y + (r0 + r)·stride), <paramref name="cols"/> columns.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Epilogue(int* tile, int rows, int r0, int* colSums, int[] za, int* rowConst, in Requant q, byte* y, nint stride, int cols, bool vector)
    {
        if (q.OutScales != null)
        {
            EpilogueFloat(tile, rows, r0, colSums, za, rowConst, q.OutScales, q.OutBias, (float*)y, stride, cols, vector);
            return;
        }
        if (vector && Avx512F.IsSupported)
        {
            var cs = Vector512.Load(colSums);
            var vz = Vector512.Create((float)q.Zy);
            var vmin = Vector512.Create((float)q.Min);
            var vmax = Vector512.Create((float)q.Max);
            byte* tmp = stackalloc byte[16];
            for (int r = 0; r < rows; r++)
            {
                int i = r0 + r;
                var acc = Vector512.Load(tile + r * Panel) - Vector512.Create(za[i]) * cs + Vector512.Create(rowConst[i]);
                var f = Vector512.Round(Vector512.ConvertToSingle(acc) * Vector512.Create(q.Multipliers[i])) + vz;
                var b = Avx512F.ConvertToVector128Byte(Vector512.ConvertToInt32(Vector512.Min(Vector512.Max(f, vmin), vmax)));
                byte* dst = y + i * stride;
                if (cols == Panel) b.Store(dst);
                else
                {
                    b.Store(tmp);
                    for (int j = 0; j < cols; j++) dst[j] = tmp[j];
                }
            }
            return;
        }
        for (int r = 0; r < rows; r++)
        {
            int i = r0 + r;
            byte* dst = y + i * stride;
            for (int j = 0; j < cols; j++)
            {
                int acc = unchecked(tile[r * Panel + j] - za[i] * colSums[j] + rowConst[i]);
                dst[j] = (byte)Kernels.Quantization.Requantize.OneFloat(acc, q.Multipliers[i], q.Zy, q.Min, q.Max);
            }
        }
    }

    /// <summary>Float output: y[r0 + r, j] = fma(float(S corrected), scale, bias) for a tile (vector path and scalar twin, identical).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void EpilogueFloat(int* tile, int rows, int r0, int* colSums, int[] za, int* rowConst, float* scales, float* bias, float* y, nint stride, int cols, bool vector)
    {
        if (vector && Avx512F.IsSupported)
        {
            var cs = Vector512.Load(colSums);
            float* tmp = stackalloc float[16];
            for (int r = 0; r < rows; r++)
            {
                int i = r0 + r;
                var acc = Vector512.Load(tile + r * Panel) - Vector512.Create(za[i]) * cs + Vector512.Create(rowConst[i]);
                var f = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(acc), Vector512.Create(scales[i]), Vector512.Create(bias[i]));
                float* dst = y + i * stride;
                if (cols == Panel) f.Store(dst);
                else
                {
                    f.Store(tmp);
                    for (int j = 0; j < cols; j++) dst[j] = tmp[j];
                }
            }
            return;
        }
        for (int r = 0; r < rows; r++)
        {
            int i = r0 + r;
            float* dst = y + i * stride;
            for (int j = 0; j < cols; j++)
            {
                int acc = unchecked(tile[r * Panel + j] - za[i] * colSums[j] + rowConst[i]);
                dst[j] = MathF.FusedMultiplyAdd(acc, scales[i], bias[i]);
            }
        }
    }
}
