namespace OnDevice.Planning;

/// <summary>How weights are stored.</summary>
public enum WeightPrecision
{
    /// <summary>IEEE float32, 4 bytes per weight.</summary>
    Fp32,
    /// <summary>IEEE float16, 2 bytes per weight.</summary>
    Fp16,
    /// <summary>bfloat16, 2 bytes per weight.</summary>
    Bf16,
    /// <summary>int8 in blocks along the reduction axis, one fp16 scale per block.</summary>
    Int8,
    /// <summary>int4 (two per byte) in blocks along the reduction axis, one fp16 scale per block.</summary>
    Int4,
}

/// <summary>How the KV cache is stored.</summary>
public enum KvPrecision
{
    /// <summary>float16, 2 bytes per element.</summary>
    Fp16,
    /// <summary>int8 in blocks of <see cref="KvCacheFormat.BlockSize"/> elements along the head dimension, one fp16 scale per block.</summary>
    Int8,
    /// <summary>int4 in blocks along the head dimension, one fp16 scale per block.</summary>
    Int4,
}

/// <summary>Names, bit widths and parsing of precisions.</summary>
public static class Precisions
{
    /// <summary>Bytes of one block scale (fp16).</summary>
    public const int ScaleBytes = 2;

    /// <summary>Bits of one stored element (without block scales).</summary>
    public static int Bits(this WeightPrecision p) => p switch
    {
        WeightPrecision.Fp32 => 32,
        WeightPrecision.Fp16 or WeightPrecision.Bf16 => 16,
        WeightPrecision.Int8 => 8,
        WeightPrecision.Int4 => 4,
        _ => throw new ArgumentOutOfRangeException(nameof(p)),
    };

    /// <summary>True for block-quantized precisions (int8, int4).</summary>
    public static bool IsBlockQuantized(this WeightPrecision p) => p is WeightPrecision.Int8 or WeightPrecision.Int4;

    /// <summary>Bits of one stored KV element (without block scales).</summary>
    public static int Bits(this KvPrecision p) => p switch
    {
        KvPrecision.Fp16 => 16,
        KvPrecision.Int8 => 8,
        KvPrecision.Int4 => 4,
        _ => throw new ArgumentOutOfRangeException(nameof(p)),
    };

    /// <summary>The command-line name (fp32, fp16, bf16, int8, int4).</summary>
    public static string Name(this WeightPrecision p) => p.ToString().ToLowerInvariant();

    /// <summary>The command-line name (fp16, int8, int4).</summary>
    public static string Name(this KvPrecision p) => p.ToString().ToLowerInvariant();

    /// <summary>Parses fp32|fp16|bf16|int8|int4.</summary>
    public static WeightPrecision ParseWeights(string text)
    {
        foreach (var p in Enum.GetValues<WeightPrecision>())
            if (string.Equals(p.Name(), text, StringComparison.OrdinalIgnoreCase)) return p;
        throw new PlanningException($"unknown weight precision '{text}'; known: {string.Join(", ", Enum.GetValues<WeightPrecision>().Select(x => x.Name()))}");
    }

    /// <summary>Parses fp16|int8|int4.</summary>
    public static KvPrecision ParseKv(string text)
    {
        foreach (var p in Enum.GetValues<KvPrecision>())
            if (string.Equals(p.Name(), text, StringComparison.OrdinalIgnoreCase)) return p;
        throw new PlanningException($"unknown KV-cache precision '{text}'; known: {string.Join(", ", Enum.GetValues<KvPrecision>().Select(x => x.Name()))}");
    }
}

/// <summary>
/// How a model's weights are stored: the precision of the matrices, the block size of int8/int4 quantization
/// (blocks run along each row's reduction axis; each block carries one fp16 scale), and optionally a different
/// precision for the token embedding and the output head. One-dimensional tensors (norm weights, biases) stay
/// in fp32 when the matrices are fp32 and in 16 bits otherwise.
/// </summary>
public sealed record WeightFormat(WeightPrecision Precision, int BlockSize = 32, WeightPrecision? EmbeddingPrecision = null)
{
    /// <summary>Checks the block size.</summary>
    public WeightFormat Validate()
    {
        if (BlockSize < 1) throw new PlanningException($"block size must be at least 1, got {BlockSize}");
        return this;
    }

    /// <summary>Precision used for the token embedding and output head.</summary>
    public WeightPrecision Embeddings => EmbeddingPrecision ?? Precision;

    /// <summary>Bits per weight of a long row at <paramref name="p"/>, scales included (e.g. int4 block 32: 4 + 16/32 = 4.5).</summary>
    public double BitsPerWeight(WeightPrecision p) => p.IsBlockQuantized() ? p.Bits() + 8.0 * Precisions.ScaleBytes / BlockSize : p.Bits();

    /// <summary>Bytes of a matrix of <paramref name="rows"/> rows of <paramref name="cols"/> (the reduction axis) at <paramref name="p"/>.</summary>
    public long MatrixBytes(long rows, long cols, WeightPrecision p)
    {
        if (!p.IsBlockQuantized()) return checked(rows * cols * p.Bits() / 8);
        long blocksPerRow = (cols + BlockSize - 1) / BlockSize;
        long dataBytesPerRow = (cols * p.Bits() + 7) / 8;
        return checked(rows * (dataBytesPerRow + blocksPerRow * Precisions.ScaleBytes));
    }

    /// <summary>Bytes of a one-dimensional tensor (norm weight, bias) of <paramref name="n"/> elements.</summary>
    public long VectorBytes(long n) => checked(n * (Precision == WeightPrecision.Fp32 ? 4 : 2));

    /// <summary>"int4 block-32", "fp16", ...</summary>
    public string Describe()
    {
        string main = Precision.IsBlockQuantized() ? $"{Precision.Name()} block-{BlockSize}" : Precision.Name();
        return EmbeddingPrecision is { } e && e != Precision ? $"{main} (embeddings/head {e.Name()})" : main;
    }
}

/// <summary>
/// How the KV cache is stored: precision, block size of int8/int4 (blocks along the head dimension, one fp16
/// scale each) and, for paged attention, the page size in tokens (each sequence's tokens are rounded up to whole pages).
/// </summary>
public sealed record KvCacheFormat(KvPrecision Precision = KvPrecision.Fp16, int BlockSize = 32, int PageSizeTokens = 0)
{
    /// <summary>Checks block and page sizes.</summary>
    public KvCacheFormat Validate()
    {
        if (BlockSize < 1) throw new PlanningException($"KV-cache block size must be at least 1, got {BlockSize}");
        if (PageSizeTokens < 0) throw new PlanningException($"page size must be 0 (no paging) or a positive number of tokens, got {PageSizeTokens}");
        return this;
    }

    /// <summary>Bytes of one head's key (or value) vector of <paramref name="headDim"/> elements for one token.</summary>
    public long BytesPerHeadVector(long headDim)
    {
        if (Precision == KvPrecision.Fp16) return headDim * 2;
        long blocks = (headDim + BlockSize - 1) / BlockSize;
        return (headDim * Precision.Bits() + 7) / 8 + blocks * Precisions.ScaleBytes;
    }

    /// <summary>Tokens stored for a sequence of <paramref name="tokens"/>, rounded up to whole pages when paged.</summary>
    public long StoredTokens(long tokens) => PageSizeTokens > 0 ? (tokens + PageSizeTokens - 1) / PageSizeTokens * PageSizeTokens : tokens;

    /// <summary>"fp16", "int8 block-32", "int8 block-32, pages of 16 tokens".</summary>
    public string Describe()
    {
        string s = Precision == KvPrecision.Fp16 ? "fp16" : $"{Precision.Name()} block-{BlockSize}";
        return PageSizeTokens > 0 ? $"{s}, pages of {PageSizeTokens} tokens" : s;
    }
}
