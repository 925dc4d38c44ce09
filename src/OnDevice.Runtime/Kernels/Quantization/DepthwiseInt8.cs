using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using OnDevice.Runtime.Simd;

namespace OnDevice.Runtime.Kernels.Quantization;

/// <summary>
/// Integer depthwise 2-D convolution of one channel: the exact sums Σ (x − zx)(w − zw) of every output, written as
/// floats (exact: |sum| ≤ 256·255·255 &lt; 2^24) so they feed the same requantizing epilogue as the float kernel.
/// <para>
/// Layout: each row of the window is cut into quads of 4 taps (kx = 4q .. 4q+3, missing taps weigh 0). For a band of
/// output rows, every padded input row r (unsigned bytes, the zero point outside the image) is expanded once into
/// E[r][q][ox] = the 4 bytes x[r][ox·sw + (4q + b)·dw], b = 0..3 (one <c>vpermb</c> per 16 outputs). An output row is then
/// Σ over (ky, q) of dot4(E[oy·sh + ky·dh][q][ox..], w[ky][q]): plain vector loads, one <c>vpdpbusd</c> (AVX-VNNI)
/// per 8 outputs and quad, or on AVX-512BW / AVX2 the quad bytes split into even and odd int16 lanes and two
/// <c>vpmaddwd</c> (no saturation: |u8·s8 + u8·s8| ≤ 65280). When sw divides 4·dw (strides 1, 2, 4) quad q is quad 0
/// shifted by 4q·dw/sw outputs, so only quad 0 is expanded. The unsigned bytes make the zero point a constant per
/// channel: Σ (xu − zxu)·w = Σ xu·w − zxu·Σ w, padding included. Weights must satisfy −128 ≤ w − zw ≤ 127
/// (<see cref="Prepare"/> returns null otherwise). The scalar path is the twin every vector path is tested against.
/// </para>
/// </summary>
public static unsafe class DepthwiseInt8
{
    /// <summary>Most window taps (the exactness bound of the float result).</summary>
    public const int MaxTaps = 256;

    private const int Tile = 8; // accumulators per register tile

    /// <summary>Weights of one depthwise convolution prepared for <see cref="Channel"/>.</summary>
    public sealed class Weights
    {
        internal Weights(int channels, int kh, int kw, int[] quads, int[] even, int[] odd, int[] sums)
        {
            Channels = channels;
            KH = kh;
            KW = kw;
            Quads = (kw + 3) / 4;
            QuadWeights = quads;
            EvenWeights = even;
            OddWeights = odd;
            Sums = sums;
        }

        /// <summary>Output channels.</summary>
        public int Channels { get; }

        /// <summary>Window height.</summary>
        public int KH { get; }

        /// <summary>Window width.</summary>
        public int KW { get; }

        /// <summary>Quads per window row: ⌈KW / 4⌉.</summary>
        public int Quads { get; }

        /// <summary>Per channel and (ky, q): the 4 signed weight bytes as one int32 (for <c>vpdpbusd</c>).</summary>
        internal int[] QuadWeights { get; }

        /// <summary>Per channel and (ky, q): int16 pair (w[4q], w[4q+2]) as one int32.</summary>
        internal int[] EvenWeights { get; }

        /// <summary>Per channel and (ky, q): int16 pair (w[4q+1], w[4q+3]) as one int32.</summary>
        internal int[] OddWeights { get; }

        /// <summary>Per channel: Σ (w − zw) over the window.</summary>
        internal int[] Sums { get; }

        /// <summary>Bytes held.</summary>
        public long Bytes => 4L * (QuadWeights.Length + EvenWeights.Length + OddWeights.Length + Sums.Length);
    }

    /// <summary>The fastest path this machine supports (the same ladder as <see cref="Int8Gemm.Best"/>).</summary>
    public static Int8GemmPath Best => Int8Gemm.Best;

    /// <summary>
    /// Prepares weights [channels, 1, kh, kw] (uint8, or int8 when <paramref name="signedW"/>) with zero points
    /// <paramref name="zw"/> (empty: 0; one value: shared; else one per channel). Null when some w − zw does not fit
    /// a signed byte or the window has more than <see cref="MaxTaps"/> taps (then the caller keeps its other path).
    /// </summary>
    public static Weights? Prepare(ReadOnlySpan<byte> w, bool signedW, ReadOnlySpan<int> zw, int channels, int kh, int kw)
    {
        if (channels <= 0 || kh <= 0 || kw <= 0 || (long)kh * kw > MaxTaps || w.Length != channels * kh * kw) return null;
        if (zw.Length is not (0 or 1) && zw.Length != channels) return null;
        int quads = (kw + 3) / 4, per = kh * quads;
        var q4 = new int[channels * per];
        var even = new int[channels * per];
        var odd = new int[channels * per];
        var sums = new int[channels];
        Span<int> v = stackalloc int[4];
        for (int c = 0; c < channels; c++)
        {
            int z = zw.Length == 0 ? 0 : zw.Length == 1 ? zw[0] : zw[c];
            int sum = 0;
            for (int ky = 0; ky < kh; ky++)
                for (int q = 0; q < quads; q++)
                {
                    for (int b = 0; b < 4; b++)
                    {
                        int kx = 4 * q + b;
                        int val = 0;
                        if (kx < kw)
                        {
                            byte raw = w[(c * kh + ky) * kw + kx];
                            val = (signedW ? (sbyte)raw : raw) - z;
                            if (val is < -128 or > 127) return null;
                        }
                        v[b] = val;
                        sum += val;
                    }
                    int i = c * per + ky * quads + q;
                    q4[i] = (byte)v[0] | (byte)v[1] << 8 | (byte)v[2] << 16 | (byte)v[3] << 24;
                    even[i] = (ushort)v[0] | (ushort)v[2] << 16;
                    odd[i] = (ushort)v[1] | (ushort)v[3] << 16;
                }
            sums[c] = sum;
        }
        return new Weights(channels, kh, kw, q4, even, odd, sums);
    }

    /// <summary>Geometry-dependent tables of one depthwise layer (computed once per layer, shared by its channels).</summary>
    public sealed class Plan
    {
        /// <summary>Plans <paramref name="s"/>; vector paths expand with <c>vpermb</c> when AVX-512 VBMI is there and the window reach fits 64 bytes.</summary>
        public Plan(in DepthwiseConv.Shape s) : this(s, allowVbmi: true)
        {
        }

        /// <summary>As the public constructor; <paramref name="allowVbmi"/> false plans the AVX2 shuffle expansion even where
        /// VBMI exists (tests run both).</summary>
        internal Plan(in DepthwiseConv.Shape s, bool allowVbmi)
        {
            if (s.KH <= 0 || s.KW <= 0 || s.SH <= 0 || s.SW <= 0 || s.DH <= 0 || s.DW <= 0 || (long)s.KH * s.KW > MaxTaps)
                throw new ArgumentException($"depthwise geometry {s} is not supported");
            Shape = s;
            Quads = (s.KW + 3) / 4;
            PaddedOutputs = Math.Max(16, (s.OW + 15) / 16 * 16);
            // Quad q reads columns ox·sw + 4q·dw + b·dw: when sw divides 4·dw that is quad 0 at output ox + q·shift, so only
            // quad 0 is expanded (over a longer row) and the other quads read it shifted.
            Shared = 4 * s.DW % s.SW == 0;
            int shift = Shared ? 4 * s.DW / s.SW : 0;
            ExpandedQuads = Shared ? 1 : Quads;
            ExpandedOutputs = (PaddedOutputs + (Quads - 1) * shift + 15) / 16 * 16;
            int reach = (ExpandedOutputs - 1) * s.SW + (4 * ExpandedQuads - 1) * s.DW + 1;
            int vectorReach = Math.Max((ExpandedOutputs - 16) * s.SW + 64, (ExpandedOutputs - 4) * s.SW + 4 * (ExpandedQuads - 1) * s.DW + 16);
            RowBytes = (Math.Max(Math.Max(reach, s.PadLeft + s.W), vectorReach) + 63) / 64 * 64;
            ExpandedRowBytes = ExpandedQuads * ExpandedOutputs * 4;
            Reach = (s.KH - 1) * s.DH + 1;
            long budget = 48 * 1024 / ExpandedRowBytes; // expanded input rows per band
            BandRows = (int)Math.Clamp((budget - Reach) / s.SH + 1, 1, Math.Max(1, s.OH));
            long inRows = (long)(BandRows - 1) * s.SH + Reach;
            ScratchBytes = checked((int)(inRows * ExpandedRowBytes + RowBytes + 64));
            Offsets = new int[s.KH * Quads];
            for (int ky = 0; ky < s.KH; ky++)
                for (int q = 0; q < Quads; q++)
                    Offsets[ky * Quads + q] = ky * s.DH * ExpandedRowBytes + (Shared ? q * shift * 4 : q * ExpandedOutputs * 4);
            Vbmi = allowVbmi && Avx512Vbmi.IsSupported && Vector512.IsHardwareAccelerated && 15 * s.SW + (4 * ExpandedQuads - 1) * s.DW <= 63;
            // Without VBMI: vpshufb per 128-bit lane (4 outputs from 16 bytes at the lane's first column), when those fit.
            Shuffle = !Vbmi && Avx2.IsSupported && 3 * s.SW + 3 * s.DW <= 15;
            ShuffleControl = new byte[32];
            for (int i = 0; i < 8; i++)
                for (int b = 0; b < 4; b++) ShuffleControl[4 * i + b] = (byte)Math.Min(15, i % 4 * s.SW + b * s.DW);
            Control = new byte[64 * ExpandedQuads];
            for (int q = 0; q < ExpandedQuads; q++)
                for (int i = 0; i < 16; i++)
                    for (int b = 0; b < 4; b++)
                    {
                        int kx = 4 * q + b;
                        Control[q * 64 + 4 * i + b] = (byte)(kx < s.KW ? Math.Min(63, i * s.SW + kx * s.DW) : 0);
                    }
        }

        /// <summary>The geometry.</summary>
        public DepthwiseConv.Shape Shape { get; }

        /// <summary>Quads per window row.</summary>
        public int Quads { get; }

        /// <summary>Outputs per row rounded up to whole 16-output expansion blocks.</summary>
        public int PaddedOutputs { get; }

        /// <summary>True when only quad 0 is expanded and the others read it shifted (sw divides 4·dw).</summary>
        public bool Shared { get; }

        /// <summary>Quads expanded per input row (1 when <see cref="Shared"/>).</summary>
        public int ExpandedQuads { get; }

        /// <summary>Outputs per expanded quad row (covers the shifted reads).</summary>
        public int ExpandedOutputs { get; }

        /// <summary>Bytes of one padded input row (every byte an expansion block may read).</summary>
        public int RowBytes { get; }

        /// <summary>Bytes of one expanded input row (all quads).</summary>
        public int ExpandedRowBytes { get; }

        /// <summary>Input rows one output row reads.</summary>
        public int Reach { get; }

        /// <summary>Output rows per band (the band's expanded rows stay within about 48 KiB).</summary>
        public int BandRows { get; }

        /// <summary>Scratch bytes <see cref="Channel"/> needs (plus 64 for alignment).</summary>
        public int ScratchBytes { get; }

        internal int[] Offsets { get; }

        internal byte[] Control { get; }

        internal bool Vbmi { get; }

        internal bool Shuffle { get; }

        internal byte[] ShuffleControl { get; }

        /// <summary>True when rows are expanded with vector permutes (VBMI or AVX2); otherwise a scalar loop does it,
        /// which costs more than the float kernel would, so callers keep the float kernel then.</summary>
        public bool VectorExpansion => Vbmi || Shuffle;
    }

    /// <summary>
    /// y[oy·OW + ox] = Σ (x − zx)(w[channel] − zw) over the window of one channel (x: H×W bytes, int8 when
    /// <paramref name="signedX"/>; outside the image x = zx), as exact floats, with the given path.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Channel(Int8GemmPath path, Plan plan, byte* x, bool signedX, int zx, Weights w, int channel, float* y, byte* scratch)
    {
        var s = plan.Shape;
        if (s.OH <= 0 || s.OW <= 0) return;
        if (s.KH != w.KH || s.KW != w.KW) throw new ArgumentException($"depthwise geometry {s.KH}x{s.KW} differs from the prepared weights {w.KH}x{w.KW}");
        if ((uint)channel >= (uint)w.Channels) throw new ArgumentOutOfRangeException(nameof(channel));
        if (!Int8Gemm.IsSupported(path)) throw new PlatformNotSupportedException($"{path} is not supported on this machine");
        int quads = plan.Quads, owp = plan.ExpandedOutputs, rowLen = plan.RowBytes, eRow = plan.ExpandedRowBytes;
        int band = plan.BandRows, reach = plan.Reach, per = s.KH * quads;
        byte* prow = (byte*)(((nint)scratch + 63) & ~(nint)63);
        byte* e = prow + rowLen;
        int zxu = signedX ? zx + 128 : zx;
        int corr = zxu * w.Sums[channel];
        byte pad = (byte)zxu;
        bool vbmi = path != Int8GemmPath.Scalar && plan.Vbmi;
        fixed (int* wq0 = w.QuadWeights, we0 = w.EvenWeights, wo0 = w.OddWeights, offs = plan.Offsets)
        fixed (byte* ctrl = plan.Control, shuf = plan.ShuffleControl)
        {
            int* wq = wq0 + channel * per, we = we0 + channel * per, wo = wo0 + channel * per;
            for (int oy0 = 0; oy0 < s.OH; oy0 += band)
            {
                int nb = Math.Min(band, s.OH - oy0);
                int inRows = (nb - 1) * s.SH + reach;
                for (int rr = 0; rr < inRows; rr++)
                {
                    int iy = oy0 * s.SH + rr - s.PadTop;
                    PadRow(s, (uint)iy < (uint)s.H ? x + (nint)iy * s.W : null, signedX, pad, prow, rowLen);
                    Expand(s, prow, plan.ExpandedQuads, owp, ctrl, vbmi, path != Int8GemmPath.Scalar && plan.Shuffle ? shuf : null, e + (nint)rr * eRow);
                }
                Sums(path, s, e, eRow, offs, per, wq, we, wo, corr, nb, y + (nint)oy0 * s.OW);
            }
        }
    }

    /// <summary>The padded row of unsigned bytes: pad everywhere, the input row (sign bit flipped if signed) at PadLeft.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PadRow(in DepthwiseConv.Shape s, byte* src, bool signedX, byte pad, byte* dst, int len)
    {
        // len is a multiple of 64: the whole row as pad first, then the image row over it.
        if (Vector256.IsHardwareAccelerated)
        {
            var pv = Vector256.Create(pad);
            for (int i = 0; i < len; i += 32) pv.Store(dst + i);
        }
        else new Span<byte>(dst, len).Fill(pad);
        if (src == null) return;
        int left = Math.Min(s.PadLeft, len), count = Math.Min(s.W, len - left);
        if (!signedX) Buffer.MemoryCopy(src, dst + left, count, count);
        else
        {
            int i = 0;
            if (Vector256.IsHardwareAccelerated)
            {
                var flip = Vector256.Create((byte)0x80);
                for (; i + 32 <= count; i += 32) (Vector256.Load(src + i) ^ flip).Store(dst + left + i);
            }
            for (; i < count; i++) dst[left + i] = (byte)(src[i] ^ 0x80);
        }
    }

    /// <summary>E[q][ox] = 4 bytes of the padded row at ox·sw + (4q + b)·dw (taps past KW: column ox·sw, weight 0).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Expand(in DepthwiseConv.Shape s, byte* prow, int quads, int owp, byte* ctrl, bool vbmi, byte* shuffle, byte* dst)
    {
        if (shuffle != null)
        {
            // Lane 0: outputs ox..ox+3 from the 16 bytes at their first column; lane 1: ox+4..ox+7 likewise.
            var c = Vector256.Load(shuffle);
            nint half = 4 * s.SW;
            for (int q = 0; q < quads; q++)
            {
                byte* d = dst + (nint)q * owp * 4;
                byte* src = prow + (nint)4 * q * s.DW;
                for (int ox = 0; ox < owp; ox += 8)
                {
                    byte* a = src + (nint)ox * s.SW;
                    var v = Vector256.Create(Vector128.Load(a), Vector128.Load(a + half));
                    Avx2.Shuffle(v, c).Store(d + (nint)ox * 4); // taps past KW pick some byte of the row; they weigh 0
                }
            }
            return;
        }
        if (vbmi)
        {
            for (int q = 0; q < quads; q++)
            {
                var c = Vector512.Load(ctrl + q * 64);
                byte* d = dst + (nint)q * owp * 4;
                for (int ox = 0; ox < owp; ox += 16)
                    Avx512Vbmi.PermuteVar64x8(Vector512.Load(prow + (nint)ox * s.SW), c).Store(d + (nint)ox * 4);
            }
            return;
        }
        for (int q = 0; q < quads; q++)
        {
            byte* d = dst + (nint)q * owp * 4;
            for (int ox = 0; ox < owp; ox++)
                for (int b = 0; b < 4; b++)
                {
                    int kx = 4 * q + b;
                    d[ox * 4 + b] = kx < s.KW ? prow[ox * s.SW + kx * s.DW] : prow[ox * s.SW];
                }
        }
    }

    /// <summary>The output rows [0, nb) of a band from its expanded rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Sums(Int8GemmPath path, in DepthwiseConv.Shape s, byte* e, int eRow, int* offs, int per, int* wq, int* we, int* wo,
        int corr, int nb, float* y)
    {
        nint eStep = (nint)s.SH * eRow;
        if (path == Int8GemmPath.Scalar)
        {
            for (int r = 0; r < nb; r++)
                for (int ox = 0; ox < s.OW; ox++)
                {
                    byte* p = e + r * eStep + ox * 4;
                    int acc = 0;
                    for (int t = 0; t < per; t++)
                    {
                        byte* a = p + offs[t];
                        int wv = wq[t];
                        acc += a[0] * (sbyte)wv + a[1] * (sbyte)(wv >> 8) + a[2] * (sbyte)(wv >> 16) + a[3] * (sbyte)(wv >> 24);
                    }
                    y[(nint)r * s.OW + ox] = acc - corr;
                }
            return;
        }
        int lanes = path == Int8GemmPath.Avx512BW ? 16 : 8;
        int vecs = (s.OW + lanes - 1) / lanes, blocks = vecs / Tile;
        if (blocks > 0)
        {
            // Whole runs of 8 vectors along each row.
            if (path == Int8GemmPath.AvxVnni) RowsVnni(e, eStep, nb, blocks, y, s.OW, offs, per, wq, corr);
            else if (path == Int8GemmPath.Avx512BW) Rows512(e, eStep, nb, blocks, y, s.OW, offs, per, we, wo, corr);
            else Rows256(e, eStep, nb, blocks, y, s.OW, offs, per, we, wo, corr);
        }
        if (vecs == blocks * Tile) return;
        // The rows' leftover vectors, eight at a time across rows.
        nint* src = stackalloc nint[Tile];
        nint* dst = stackalloc nint[Tile];
        int* cnt = stackalloc int[Tile];
        int n = 0;
        for (int r = 0; r < nb; r++)
            for (int v = blocks * Tile; v < vecs; v++)
            {
                int ox = v * lanes;
                src[n] = (nint)(e + r * eStep + ox * 4);
                dst[n] = (nint)(y + (nint)r * s.OW + ox);
                cnt[n] = Math.Min(lanes, s.OW - ox);
                if (++n == Tile)
                {
                    RunTile(path, src, dst, cnt, Tile, offs, per, wq, we, wo, corr);
                    n = 0;
                }
            }
        if (n > 0) RunTile(path, src, dst, cnt, n, offs, per, wq, we, wo, corr);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RowsVnni(byte* e, nint eStep, int rows, int blocks, float* y, int ow, int* offs, int per, int* wq, int corr)
    {
        var c = Vector256.Create(corr);
        for (int r = 0; r < rows; r++)
            for (int b = 0; b < blocks; b++)
            {
                byte* p = e + r * eStep + b * 256;
                Vector256<int> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
                for (int t = 0; t < per; t++)
                {
                    byte* q = p + offs[t];
                    var wv = Vector256.Create(wq[t]).AsSByte();
                    a0 = AvxVnni.MultiplyWideningAndAdd(a0, Vector256.Load(q), wv);
                    a1 = AvxVnni.MultiplyWideningAndAdd(a1, Vector256.Load(q + 32), wv);
                    a2 = AvxVnni.MultiplyWideningAndAdd(a2, Vector256.Load(q + 64), wv);
                    a3 = AvxVnni.MultiplyWideningAndAdd(a3, Vector256.Load(q + 96), wv);
                    a4 = AvxVnni.MultiplyWideningAndAdd(a4, Vector256.Load(q + 128), wv);
                    a5 = AvxVnni.MultiplyWideningAndAdd(a5, Vector256.Load(q + 160), wv);
                    a6 = AvxVnni.MultiplyWideningAndAdd(a6, Vector256.Load(q + 192), wv);
                    a7 = AvxVnni.MultiplyWideningAndAdd(a7, Vector256.Load(q + 224), wv);
                }
                int ox = b * 64;
                float* d = y + (nint)r * ow + ox;
                if (ox + 64 <= ow)
                {
                    Vector256.ConvertToSingle(a0 - c).Store(d);
                    Vector256.ConvertToSingle(a1 - c).Store(d + 8);
                    Vector256.ConvertToSingle(a2 - c).Store(d + 16);
                    Vector256.ConvertToSingle(a3 - c).Store(d + 24);
                    Vector256.ConvertToSingle(a4 - c).Store(d + 32);
                    Vector256.ConvertToSingle(a5 - c).Store(d + 40);
                    Vector256.ConvertToSingle(a6 - c).Store(d + 48);
                    Vector256.ConvertToSingle(a7 - c).Store(d + 56);
                    continue;
                }
                int left = ow - ox;
                Store(a0 - c, d, Math.Clamp(left, 0, 8));
                Store(a1 - c, d + 8, Math.Clamp(left - 8, 0, 8));
                Store(a2 - c, d + 16, Math.Clamp(left - 16, 0, 8));
                Store(a3 - c, d + 24, Math.Clamp(left - 24, 0, 8));
                Store(a4 - c, d + 32, Math.Clamp(left - 32, 0, 8));
                Store(a5 - c, d + 40, Math.Clamp(left - 40, 0, 8));
                Store(a6 - c, d + 48, Math.Clamp(left - 48, 0, 8));
                Store(a7 - c, d + 56, Math.Clamp(left - 56, 0, 8));
            }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Rows256(byte* e, nint eStep, int rows, int blocks, float* y, int ow, int* offs, int per, int* we, int* wo, int corr)
    {
        var c = Vector256.Create(corr);
        var m = Vector256.Create((short)0xFF);
        for (int r = 0; r < rows; r++)
            for (int b = 0; b < blocks; b++)
            {
                byte* p = e + r * eStep + b * 256;
                Vector256<int> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
                for (int t = 0; t < per; t++)
                {
                    byte* q = p + offs[t];
                    var ev = Vector256.Create(we[t]).AsInt16();
                    var od = Vector256.Create(wo[t]).AsInt16();
                    a0 = Dot4(a0, Vector256.Load(q), ev, od, m);
                    a1 = Dot4(a1, Vector256.Load(q + 32), ev, od, m);
                    a2 = Dot4(a2, Vector256.Load(q + 64), ev, od, m);
                    a3 = Dot4(a3, Vector256.Load(q + 96), ev, od, m);
                    a4 = Dot4(a4, Vector256.Load(q + 128), ev, od, m);
                    a5 = Dot4(a5, Vector256.Load(q + 160), ev, od, m);
                    a6 = Dot4(a6, Vector256.Load(q + 192), ev, od, m);
                    a7 = Dot4(a7, Vector256.Load(q + 224), ev, od, m);
                }
                int ox = b * 64, left = ow - ox;
                float* d = y + (nint)r * ow + ox;
                Store(a0 - c, d, Math.Clamp(left, 0, 8));
                Store(a1 - c, d + 8, Math.Clamp(left - 8, 0, 8));
                Store(a2 - c, d + 16, Math.Clamp(left - 16, 0, 8));
                Store(a3 - c, d + 24, Math.Clamp(left - 24, 0, 8));
                Store(a4 - c, d + 32, Math.Clamp(left - 32, 0, 8));
                Store(a5 - c, d + 40, Math.Clamp(left - 40, 0, 8));
                Store(a6 - c, d + 48, Math.Clamp(left - 48, 0, 8));
                Store(a7 - c, d + 56, Math.Clamp(left - 56, 0, 8));
            }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Rows512(byte* e, nint eStep, int rows, int blocks, float* y, int ow, int* offs, int per, int* we, int* wo, int corr)
    {
        var c = Vector512.Create(corr);
        var m = Vector512.Create((short)0xFF);
        for (int r = 0; r < rows; r++)
            for (int b = 0; b < blocks; b++)
            {
                byte* p = e + r * eStep + b * 512;
                Vector512<int> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
                for (int t = 0; t < per; t++)
                {
                    byte* q = p + offs[t];
                    var ev = Vector512.Create(we[t]).AsInt16();
                    var od = Vector512.Create(wo[t]).AsInt16();
                    a0 = Dot4(a0, Vector512.Load(q), ev, od, m);
                    a1 = Dot4(a1, Vector512.Load(q + 64), ev, od, m);
                    a2 = Dot4(a2, Vector512.Load(q + 128), ev, od, m);
                    a3 = Dot4(a3, Vector512.Load(q + 192), ev, od, m);
                    a4 = Dot4(a4, Vector512.Load(q + 256), ev, od, m);
                    a5 = Dot4(a5, Vector512.Load(q + 320), ev, od, m);
                    a6 = Dot4(a6, Vector512.Load(q + 384), ev, od, m);
                    a7 = Dot4(a7, Vector512.Load(q + 448), ev, od, m);
                }
                int ox = b * 128, left = ow - ox;
                float* d = y + (nint)r * ow + ox;
                Store(a0 - c, d, Math.Clamp(left, 0, 16));
                Store(a1 - c, d + 16, Math.Clamp(left - 16, 0, 16));
                Store(a2 - c, d + 32, Math.Clamp(left - 32, 0, 16));
                Store(a3 - c, d + 48, Math.Clamp(left - 48, 0, 16));
                Store(a4 - c, d + 64, Math.Clamp(left - 64, 0, 16));
                Store(a5 - c, d + 80, Math.Clamp(left - 80, 0, 16));
                Store(a6 - c, d + 96, Math.Clamp(left - 96, 0, 16));
                Store(a7 - c, d + 112, Math.Clamp(left - 112, 0, 16));
            }
    }

    private static void RunTile(Int8GemmPath path, nint* src, nint* dst, int* cnt, int n, int* offs, int per, int* wq, int* we, int* wo, int corr)
    {
        // Unused slots repeat the first vector (computed, not stored).
        for (int j = n; j < Tile; j++) { src[j] = src[0]; cnt[j] = 0; }
        switch (path)
        {
            case Int8GemmPath.AvxVnni: TileVnni(src, dst, cnt, offs, per, wq, corr); break;
            case Int8GemmPath.Avx512BW: Tile512(src, dst, cnt, offs, per, we, wo, corr); break;
            default: Tile256(src, dst, cnt, offs, per, we, wo, corr); break;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TileVnni(nint* src, nint* dst, int* cnt, int* offs, int per, int* wq, int corr)
    {
        byte* p0 = (byte*)src[0], p1 = (byte*)src[1], p2 = (byte*)src[2], p3 = (byte*)src[3];
        byte* p4 = (byte*)src[4], p5 = (byte*)src[5], p6 = (byte*)src[6], p7 = (byte*)src[7];
        Vector256<int> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
        for (int t = 0; t < per; t++)
        {
            nint o = offs[t];
            var wv = Vector256.Create(wq[t]).AsSByte();
            a0 = AvxVnni.MultiplyWideningAndAdd(a0, Vector256.Load(p0 + o), wv);
            a1 = AvxVnni.MultiplyWideningAndAdd(a1, Vector256.Load(p1 + o), wv);
            a2 = AvxVnni.MultiplyWideningAndAdd(a2, Vector256.Load(p2 + o), wv);
            a3 = AvxVnni.MultiplyWideningAndAdd(a3, Vector256.Load(p3 + o), wv);
            a4 = AvxVnni.MultiplyWideningAndAdd(a4, Vector256.Load(p4 + o), wv);
            a5 = AvxVnni.MultiplyWideningAndAdd(a5, Vector256.Load(p5 + o), wv);
            a6 = AvxVnni.MultiplyWideningAndAdd(a6, Vector256.Load(p6 + o), wv);
            a7 = AvxVnni.MultiplyWideningAndAdd(a7, Vector256.Load(p7 + o), wv);
        }
        var c = Vector256.Create(corr);
        Store(a0 - c, (float*)dst[0], cnt[0]);
        Store(a1 - c, (float*)dst[1], cnt[1]);
        Store(a2 - c, (float*)dst[2], cnt[2]);
        Store(a3 - c, (float*)dst[3], cnt[3]);
        Store(a4 - c, (float*)dst[4], cnt[4]);
        Store(a5 - c, (float*)dst[5], cnt[5]);
        Store(a6 - c, (float*)dst[6], cnt[6]);
        Store(a7 - c, (float*)dst[7], cnt[7]);
    }

    /// <summary>dot4 of unsigned quads and signed weights via two vpmaddwd on the even and odd bytes (no saturation).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Dot4(Vector256<int> acc, Vector256<byte> a, Vector256<short> we, Vector256<short> wo, Vector256<short> mask)
    {
        var ev = a.AsInt16() & mask;
        var od = Avx2.ShiftRightLogical(a.AsInt16(), 8);
        return acc + Avx2.MultiplyAddAdjacent(ev, we) + Avx2.MultiplyAddAdjacent(od, wo);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Dot4(Vector512<int> acc, Vector512<byte> a, Vector512<short> we, Vector512<short> wo, Vector512<short> mask)
    {
        var ev = a.AsInt16() & mask;
        var od = Avx512BW.ShiftRightLogical(a.AsInt16(), 8);
        return acc + Avx512BW.MultiplyAddAdjacent(ev, we) + Avx512BW.MultiplyAddAdjacent(od, wo);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile256(nint* src, nint* dst, int* cnt, int* offs, int per, int* we, int* wo, int corr)
    {
        byte* p0 = (byte*)src[0], p1 = (byte*)src[1], p2 = (byte*)src[2], p3 = (byte*)src[3];
        byte* p4 = (byte*)src[4], p5 = (byte*)src[5], p6 = (byte*)src[6], p7 = (byte*)src[7];
        Vector256<int> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
        var m = Vector256.Create((short)0xFF);
        for (int t = 0; t < per; t++)
        {
            nint o = offs[t];
            var e = Vector256.Create(we[t]).AsInt16();
            var d = Vector256.Create(wo[t]).AsInt16();
            a0 = Dot4(a0, Vector256.Load(p0 + o), e, d, m);
            a1 = Dot4(a1, Vector256.Load(p1 + o), e, d, m);
            a2 = Dot4(a2, Vector256.Load(p2 + o), e, d, m);
            a3 = Dot4(a3, Vector256.Load(p3 + o), e, d, m);
            a4 = Dot4(a4, Vector256.Load(p4 + o), e, d, m);
            a5 = Dot4(a5, Vector256.Load(p5 + o), e, d, m);
            a6 = Dot4(a6, Vector256.Load(p6 + o), e, d, m);
            a7 = Dot4(a7, Vector256.Load(p7 + o), e, d, m);
        }
        var c = Vector256.Create(corr);
        Store(a0 - c, (float*)dst[0], cnt[0]);
        Store(a1 - c, (float*)dst[1], cnt[1]);
        Store(a2 - c, (float*)dst[2], cnt[2]);
        Store(a3 - c, (float*)dst[3], cnt[3]);
        Store(a4 - c, (float*)dst[4], cnt[4]);
        Store(a5 - c, (float*)dst[5], cnt[5]);
        Store(a6 - c, (float*)dst[6], cnt[6]);
        Store(a7 - c, (float*)dst[7], cnt[7]);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile512(nint* src, nint* dst, int* cnt, int* offs, int per, int* we, int* wo, int corr)
    {
        byte* p0 = (byte*)src[0], p1 = (byte*)src[1], p2 = (byte*)src[2], p3 = (byte*)src[3];
        byte* p4 = (byte*)src[4], p5 = (byte*)src[5], p6 = (byte*)src[6], p7 = (byte*)src[7];
        Vector512<int> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
        var m = Vector512.Create((short)0xFF);
        for (int t = 0; t < per; t++)
        {
            nint o = offs[t];
            var e = Vector512.Create(we[t]).AsInt16();
            var d = Vector512.Create(wo[t]).AsInt16();
            a0 = Dot4(a0, Vector512.Load(p0 + o), e, d, m);
            a1 = Dot4(a1, Vector512.Load(p1 + o), e, d, m);
            a2 = Dot4(a2, Vector512.Load(p2 + o), e, d, m);
            a3 = Dot4(a3, Vector512.Load(p3 + o), e, d, m);
            a4 = Dot4(a4, Vector512.Load(p4 + o), e, d, m);
            a5 = Dot4(a5, Vector512.Load(p5 + o), e, d, m);
            a6 = Dot4(a6, Vector512.Load(p6 + o), e, d, m);
            a7 = Dot4(a7, Vector512.Load(p7 + o), e, d, m);
        }
        var c = Vector512.Create(corr);
        Store(a0 - c, (float*)dst[0], cnt[0]);
        Store(a1 - c, (float*)dst[1], cnt[1]);
        Store(a2 - c, (float*)dst[2], cnt[2]);
        Store(a3 - c, (float*)dst[3], cnt[3]);
        Store(a4 - c, (float*)dst[4], cnt[4]);
        Store(a5 - c, (float*)dst[5], cnt[5]);
        Store(a6 - c, (float*)dst[6], cnt[6]);
        Store(a7 - c, (float*)dst[7], cnt[7]);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(Vector256<int> v, float* dst, int count)
    {
        var f = Vector256.ConvertToSingle(v);
        if (count == 8) f.Store(dst);
        else if (count > 0)
            for (int i = 0; i < count; i++) dst[i] = f.GetElement(i);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(Vector512<int> v, float* dst, int count)
    {
        var f = Vector512.ConvertToSingle(v);
        if (count == 16) f.Store(dst);
        else if (count > 0)
            for (int i = 0; i < count; i++) dst[i] = f.GetElement(i);
    }
}
