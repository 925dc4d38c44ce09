namespace OnDevice.Evaluation.Tasks;

/// <summary>Options a task may use; each task checks the ones it needs and ignores the rest.</summary>
public sealed record TaskOptions
{
    /// <summary>CTC: the character list (PaddleOCR <c>ppocr_keys_v1.txt</c> style, one character a line).</summary>
    public string? Dictionary { get; init; }

    /// <summary>Which model output to score (default: the first).</summary>
    public string? Output { get; init; }

    /// <summary>Classification: input height and width (default: from the model's input shape).</summary>
    public (int Height, int Width)? Size { get; init; }

    /// <summary>Classification: per-channel mean subtracted after scaling to [0, 1] (in the model's channel order).</summary>
    public float[] Mean { get; init; } = [0.485f, 0.456f, 0.406f];

    /// <summary>Classification: per-channel standard deviation divided after the mean.</summary>
    public float[] Std { get; init; } = [0.229f, 0.224f, 0.225f];

    /// <summary>Classification: channel order the model expects, "rgb" or "bgr".</summary>
    public string ChannelOrder { get; init; } = "rgb";

    /// <summary>CTC: images narrower than this (after scaling to height 48) are padded to it, as PaddleOCR does.</summary>
    public int MinWidth { get; init; } = 320;

    /// <summary>CTC: widest input accepted (wider lines are squeezed).</summary>
    public int MaxWidth { get; init; } = 2048;

    /// <summary>Agreement: the reference model (default in compare: model A).</summary>
    public string? Reference { get; init; }

    /// <summary>Agreement and regression: how PNG inputs are turned into tensors: "ctc" or "classification".</summary>
    public string? Preprocess { get; init; }

    /// <summary>Threads per model run.</summary>
    public int Threads { get; init; } = 1;
}
