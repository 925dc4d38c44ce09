namespace OnDevice.Evaluation.Data;

/// <summary>Image resampling used by the preprocessors.</summary>
public static class ImageOps
{
    /// <summary>
    /// Bilinear resize of interleaved 8-bit pixels with half-pixel centres and edge clamping (OpenCV's
    /// <c>INTER_LINEAR</c> geometry), rounded back to 8 bits as OpenCV's uint8 path does.
    /// </summary>
    public static byte[] ResizeBilinear(byte[] src, int width, int height, int channels, int newWidth, int newHeight)
    {
        if (newWidth <= 0 || newHeight <= 0) throw new ArgumentOutOfRangeException(nameof(newWidth), $"target size {newWidth}x{newHeight} is empty");
        var dst = new byte[newWidth * newHeight * channels];
        double sx = (double)width / newWidth, sy = (double)height / newHeight;
        var x0 = new int[newWidth]; var x1 = new int[newWidth]; var fx = new double[newWidth];
        for (int x = 0; x < newWidth; x++)
        {
            double s = (x + 0.5) * sx - 0.5;
            if (s < 0) s = 0;
            int i = (int)s;
            if (i >= width - 1) { x0[x] = x1[x] = width - 1; fx[x] = 0; }
            else { x0[x] = i; x1[x] = i + 1; fx[x] = s - i; }
        }
        for (int y = 0; y < newHeight; y++)
        {
            double s = (y + 0.5) * sy - 0.5;
            if (s < 0) s = 0;
            int y0 = (int)s, y1 = y0 + 1;
            double fy = s - y0;
            if (y0 >= height - 1) { y0 = y1 = height - 1; fy = 0; }
            for (int x = 0; x < newWidth; x++)
                for (int c = 0; c < channels; c++)
                {
                    double top = src[(y0 * width + x0[x]) * channels + c] * (1 - fx[x]) + src[(y0 * width + x1[x]) * channels + c] * fx[x];
                    double bottom = src[(y1 * width + x0[x]) * channels + c] * (1 - fx[x]) + src[(y1 * width + x1[x]) * channels + c] * fx[x];
                    dst[(y * newWidth + x) * channels + c] = (byte)Math.Clamp(Math.Round(top * (1 - fy) + bottom * fy), 0, 255);
                }
        }
        return dst;
    }
}
