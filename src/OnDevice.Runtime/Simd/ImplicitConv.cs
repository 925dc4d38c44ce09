namespace OnDevice.Runtime.Simd;

/// <summary>
/// Implicit-GEMM convolution for stride 1: the image is copied once with its zero padding (rows Wp = W + pads wide),
/// and output position (oy, ox) becomes virtual column j = oy·Wp + ox. Then B[(c, ky, kx), j] =
/// padded[c·Hp·Wp + ky·dh·Wp + kx·dw + j] for every j, so the GEMM reads B in place through a row-offset table
/// (<see cref="IndirectB"/>) with no im2col. Columns ox ≥ OW of each virtual row are computed and dropped by
/// <see cref="Compact"/>.
/// </summary>
public static unsafe class ImplicitConv
{
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
        /// <summary>Padded height: every row an output reads.</summary>
        public int Hp => OH + (KH - 1) * DH;

        /// <summary>Padded width: the virtual output row length.</summary>
        public int Wp => OW + (KW - 1) * DW;

        /// <summary>Virtual output columns (OH·Wp).</summary>
        public int VirtualColumns => OH * Wp;

        /// <summary>Rows of B (channels × window).</summary>
        public int K => Channels * KH * KW;

        /// <summary>Floats of the padded image, including the tail the GEMM may read past the last column.</summary>
        public long PaddedFloats => (long)Channels * Hp * Wp + (KW - 1) * DW + 2 * Gemm.NR + 16;
    }

    /// <summary>Copies the image (channels × H × W at <paramref name="x"/>) into the padded layout, zeros around it and after it.</summary>
    public static void Pad(float* x, in Layout l, float* dst)
    {
        int hp = l.Hp, wp = l.Wp;
        for (int c = 0; c < l.Channels; c++)
        {
            float* plane = dst + (nint)c * hp * wp;
            for (int r = 0; r < hp; r++)
            {
                float* row = plane + (nint)r * wp;
                int iy = r - l.PadTop;
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
        long body = (long)l.Channels * hp * wp;
        new Span<float>(dst + body, (int)(l.PaddedFloats - body)).Clear();
    }

    /// <summary>Row offsets of B: k = (c, ky, kx) → c·Hp·Wp + ky·dh·Wp + kx·dw.</summary>
    public static void Offsets(in Layout l, int* offsets)
    {
        int hp = l.Hp, wp = l.Wp, k = 0;
        for (int c = 0; c < l.Channels; c++)
            for (int ky = 0; ky < l.KH; ky++)
                for (int kx = 0; kx < l.KW; kx++)
                    offsets[k++] = checked(c * hp * wp + ky * l.DH * wp + kx * l.DW);
    }

    /// <summary>Keeps the first OW of every Wp virtual columns: src [rows, OH·Wp] → dst [rows, OH·OW].</summary>
    public static void Compact(float* src, int rows, in Layout l, float* dst)
    {
        int wp = l.Wp;
        for (int r = 0; r < rows; r++)
            for (int oy = 0; oy < l.OH; oy++)
                Gemm.Copy(src + ((nint)r * l.OH + oy) * wp, dst + ((nint)r * l.OH + oy) * l.OW, l.OW);
    }
}
