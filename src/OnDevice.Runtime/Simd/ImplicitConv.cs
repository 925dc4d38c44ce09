namespace OnDevice.Runtime.Simd;

/// <summary>
/// Implicit-GEMM convolution for stride 1, in blocks of output rows. For a block, the input rows it reads are copied
/// with their zero padding into rows Wp = W + pads wide, and output position (oy, ox) of the block becomes virtual
/// column j = oy·Wp + ox. Then B[(c, ky, kx), j] = padded[c·Hb·Wp + ky·dh·Wp + kx·dw + j] for every j, so the GEMM reads
/// B in place through a row-offset table (<see cref="IndirectB"/>) with no im2col. Columns ox ≥ OW of each virtual row
/// are computed and dropped by <see cref="CompactBlock"/>. Blocks keep the padded rows in L2 and can run in parallel.
/// </summary>
public static unsafe class ImplicitConv
{
    /// <summary>Floats of padded input a block aims to stay within.</summary>
    public const int TargetBlockFloats = 1 << 17;

    /// <summary>Geometry of one image and group.</summary>
    /// <param name="Channels">Input channels of the group.</param>
    /// <param name="H">Input height.</param>
    /// <param name="W">Input width.</param>
    /// <param name="KH">Window height.</param>
    /// <param name="KW">Window width.</param>
    /// <param name="DH">Vertical dilation.</param>
    /// <param name="DW">Horizontal dilation.</param>
    /// <param name="PadTop">Zero rows above.</param>
    /// <param name="PadLeft">Zero columns to the left.</param>
    /// <param name="OH">Output height (stride 1).</param>
    /// <param name="OW">Output width (stride 1).</param>
    public readonly record struct Layout(int Channels, int H, int W, int KH, int KW, int DH, int DW, int PadTop, int PadLeft, int OH, int OW)
    {
        /// <summary>Padded width: the virtual output row length.</summary>
        public int Wp => OW + (KW - 1) * DW;

        /// <summary>Output rows per block.</summary>
        public int BlockRows => Math.Clamp(TargetBlockFloats / Math.Max(1, Channels * Wp) - (KH - 1) * DH, 1, Math.Max(1, OH));

        /// <summary>Padded input rows per block.</summary>
        public int Hb => BlockRows + (KH - 1) * DH;

        /// <summary>Number of row blocks.</summary>
        public int Blocks => (OH + BlockRows - 1) / BlockRows;

        /// <summary>Most virtual output columns of a block.</summary>
        public int BlockColumns => BlockRows * Wp;

        /// <summary>Rows of B (channels × window).</summary>
        public int K => Channels * KH * KW;

        /// <summary>Floats of a block's padded input, including the tail the GEMM may read past the last column.</summary>
        public long PaddedFloats => (long)Channels * Hb * Wp + (KW - 1) * DW + 2 * Gemm.NR + 16;
    }

    /// <summary>Copies the input rows block <paramref name="block"/> reads (channels × H × W at <paramref name="x"/>) into the
    /// padded layout, zeros around and after them.</summary>
    public static void PadBlock(float* x, in Layout l, int block, float* dst)
    {
        int hb = l.Hb, wp = l.Wp, oy0 = block * l.BlockRows;
        for (int c = 0; c < l.Channels; c++)
        {
            float* plane = dst + (nint)c * hb * wp;
            for (int r = 0; r < hb; r++)
            {
                float* row = plane + (nint)r * wp;
                int iy = oy0 + r - l.PadTop;
                if ((uint)iy >= (uint)l.H)
                {
                    new Span<float>(row, wp).Clear();
                    continue;
                }
                int lo = Math.Min(l.PadLeft, wp), copy = Math.Clamp(wp - l.PadLeft, 0, l.W);
                new Span<float>(row, lo).Clear();
                Gemm.Copy(x + ((nint)c * l.H + iy) * l.W, row + lo, copy);
                new Span<float>(row + lo + copy, wp - lo - copy).Clear();
            }
        }
        long body = (long)l.Channels * hb * wp;
        new Span<float>(dst + body, (int)(l.PaddedFloats - body)).Clear();
    }

    /// <summary>Row offsets of B: k = (c, ky, kx) → c·Hb·Wp + ky·dh·Wp + kx·dw.</summary>
    public static void Offsets(in Layout l, int* offsets)
    {
        int hb = l.Hb, wp = l.Wp, k = 0;
        for (int c = 0; c < l.Channels; c++)
            for (int ky = 0; ky < l.KH; ky++)
                for (int kx = 0; kx < l.KW; kx++)
                    offsets[k++] = checked(c * hb * wp + ky * l.DH * wp + kx * l.DW);
    }

    /// <summary>Output rows of block <paramref name="block"/>.</summary>
    public static int RowsOf(in Layout l, int block) => Math.Min(l.BlockRows, l.OH - block * l.BlockRows);

    /// <summary>Keeps the first OW of every Wp virtual columns: src [rows, blockRows·Wp] → the block's rows of dst [rows, OH·OW].</summary>
    public static void CompactBlock(float* src, int rows, in Layout l, int block, float* dst)
    {
        int wp = l.Wp, n = RowsOf(l, block), oy0 = block * l.BlockRows;
        int cols = n * wp;
        for (int r = 0; r < rows; r++)
            for (int oy = 0; oy < n; oy++)
                Gemm.Copy(src + (nint)r * cols + (nint)oy * wp, dst + ((nint)r * l.OH + oy0 + oy) * l.OW, l.OW);
    }
}
