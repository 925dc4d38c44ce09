using OnDevice.Core;
using OnDevice.Evaluation.Data;
using OnDevice.Formats.Npy;

namespace OnDevice.Evaluation.Tasks;

/// <summary>
/// PaddleOCR's recognizer preprocessing (<c>resize_norm_img</c>): BGR channel order, height 48, width from the
/// aspect ratio (ceil(48·w/h)), bilinear resize, (x/255 − 0.5)/0.5, NCHW, right-padded with zeros to at least
/// <c>minWidth</c> (PaddleOCR's 320 for a single line).
/// </summary>
public static class CtcPreprocessing
{
    /// <summary>Input height of PP-OCR recognizers.</summary>
    public const int Height = 48;

    /// <summary>The tensor [1, 3, 48, W] for <paramref name="image"/>.</summary>
    public static Tensor Prepare(Image image, int minWidth = 320, int maxWidth = 2048)
    {
        int resizedW = (int)Math.Ceiling(Height * (double)image.Width / image.Height);
        resizedW = Math.Clamp(resizedW, 1, maxWidth);
        int width = Math.Max(minWidth, resizedW);
        var resized = ImageOps.ResizeBilinear(image.ToRgb(), image.Width, image.Height, 3, resizedW, Height);
        var data = new float[3 * Height * width]; // zeros: the padding
        for (int c = 0; c < 3; c++)
        {
            int src = 2 - c; // BGR
            for (int y = 0; y < Height; y++)
                for (int x = 0; x < resizedW; x++)
                    data[(c * Height + y) * width + x] = (resized[(y * resizedW + x) * 3 + src] / 255f - 0.5f) / 0.5f;
        }
        return Tensor.FromArray<float>(data, [1, 3, Height, width]);
    }
}

/// <summary>Image-classification preprocessing: resize to H×W, scale to [0, 1], (x − mean)/std, RGB or BGR, NCHW or NHWC.</summary>
public static class ClassificationPreprocessing
{
    /// <summary>The tensor [1, 3, H, W] (or [1, H, W, 3] when <paramref name="nhwc"/>).</summary>
    public static Tensor Prepare(Image image, int height, int width, float[] mean, float[] std, bool bgr, bool nhwc)
    {
        if (mean.Length != 3 || std.Length != 3) throw new EvaluationException($"--mean and --std need 3 values each (got {mean.Length} and {std.Length})");
        var resized = ImageOps.ResizeBilinear(image.ToRgb(), image.Width, image.Height, 3, width, height);
        var data = new float[3 * height * width];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                for (int c = 0; c < 3; c++)
                {
                    float v = (resized[(y * width + x) * 3 + (bgr ? 2 - c : c)] / 255f - mean[c]) / std[c];
                    data[nhwc ? (y * width + x) * 3 + c : (c * height + y) * width + x] = v;
                }
        return Tensor.FromArray<float>(data, nhwc ? [1, height, width, 3] : [1, 3, height, width]);
    }

    /// <summary>Layout and size from a declared image input [N, 3, H, W] or [N, H, W, 3]; unknown sizes stay 0.</summary>
    public static (bool Nhwc, int Height, int Width) Layout(Shape? shape)
    {
        if (shape is null || shape.Rank != 4) return (false, 0, 0);
        int D(int i) => shape[i].IsKnown ? (int)shape[i].Value : 0;
        bool nhwc = D(3) == 3 && D(1) != 3;
        return nhwc ? (true, D(1), D(2)) : (false, D(2), D(3));
    }
}

/// <summary>Turns an example's input file into model feeds: a .npy (single-input models), a folder of NAME.npy, or a PNG through a preprocessor.</summary>
public static class InputLoader
{
    /// <summary>Feeds for <paramref name="example"/>; <paramref name="png"/> handles PNG files (null: PNGs are refused).</summary>
    public static IReadOnlyDictionary<string, Tensor> Load(Example example, IReadOnlyList<ValueInfo> inputs, Func<Image, Tensor>? png)
    {
        var file = example.File ?? throw new DatasetException($"example '{example.Id}' has no input file (text inputs need the generation task)");
        if (Directory.Exists(file))
        {
            var feeds = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            foreach (var input in inputs)
            {
                var p = Path.Combine(file, input.Name + ".npy");
                if (!File.Exists(p)) throw new DatasetException($"example '{example.Id}': folder has no '{input.Name}.npy' for model input '{input.Name}'");
                feeds[input.Name] = NpyFile.Read(p);
            }
            return feeds;
        }
        if (inputs.Count != 1)
            throw new DatasetException($"example '{example.Id}' is one file, but the model has {inputs.Count} inputs; use a folder with NAME.npy per input");
        if (file.EndsWith(".npy", StringComparison.OrdinalIgnoreCase)) return new Dictionary<string, Tensor> { [inputs[0].Name] = NpyFile.Read(file) };
        if (file.EndsWith(".png", StringComparison.OrdinalIgnoreCase))
        {
            if (png is null) throw new DatasetException($"example '{example.Id}' is a PNG; say how to turn it into a tensor with --preprocess ctc|classification");
            return new Dictionary<string, Tensor> { [inputs[0].Name] = png(PngDecoder.Decode(file)) };
        }
        throw new DatasetException($"example '{example.Id}': unsupported input file type (expected .png, .npy or a folder of .npy)");
    }
}
