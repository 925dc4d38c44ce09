using System.Buffers.Binary;
using System.IO.Compression;
using OnDevice.Federated.Training;

namespace OnDevice.Federated.Data;

/// <summary>
/// Fashion-MNIST (Xiao et al. 2017) from Debian's <c>dataset-fashion-mnist</c> package: gzip-compressed IDX files
/// in /usr/share/datasets/fashion-mnist (or a folder given by the caller). Pixels are scaled to [0, 1].
/// </summary>
public static class FashionMnist
{
    /// <summary>Where Debian installs the files.</summary>
    public const string DebianFolder = "/usr/share/datasets/fashion-mnist";

    /// <summary>The ten class names.</summary>
    public static readonly string[] ClassNames = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    /// <summary>True when the four files are present in <paramref name="folder"/>.</summary>
    public static bool IsAvailable(string folder = DebianFolder) =>
        new[] { "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz" }.All(f => File.Exists(Path.Combine(folder, f)));

    /// <summary>Loads the 60,000 training or 10,000 test examples (784 features each).</summary>
    public static Dataset Load(bool train, string folder = DebianFolder)
    {
        var prefix = train ? "train" : "t10k";
        var images = ReadIdx(Path.Combine(folder, $"{prefix}-images-idx3-ubyte.gz"), 0x00000803, out var dims);
        var labels = ReadIdx(Path.Combine(folder, $"{prefix}-labels-idx1-ubyte.gz"), 0x00000801, out var ldims);
        if (dims.Length != 3 || ldims.Length != 1 || dims[0] != ldims[0]) throw new FederatedException($"{folder}: image and label files do not match");
        int n = dims[0], d = dims[1] * dims[2];
        var f = new float[(long)n * d];
        for (long i = 0; i < f.Length; i++) f[i] = images[i] / 255f;
        var l = new int[n];
        for (int i = 0; i < n; i++) l[i] = labels[i];
        return new Dataset(f, l, d, 10);
    }

    /// <summary>Reads a gzip IDX file of unsigned bytes, checking the magic number and sizes.</summary>
    public static byte[] ReadIdx(string path, int expectedMagic, out int[] dims)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Fashion-MNIST file not found (install the Debian package dataset-fashion-mnist): {path}", path);
        using var gz = new GZipStream(File.OpenRead(path), CompressionMode.Decompress);
        Span<byte> head = stackalloc byte[4];
        gz.ReadExactly(head);
        var magic = BinaryPrimitives.ReadInt32BigEndian(head);
        if (magic != expectedMagic) throw new FederatedException($"{path}: IDX magic 0x{magic:X8}, expected 0x{expectedMagic:X8}");
        int rank = magic & 0xFF;
        dims = new int[rank];
        long total = 1;
        for (int i = 0; i < rank; i++)
        {
            gz.ReadExactly(head);
            dims[i] = BinaryPrimitives.ReadInt32BigEndian(head);
            if (dims[i] <= 0) throw new FederatedException($"{path}: bad dimension {dims[i]}");
            total *= dims[i];
        }
        if (total > 100_000_000) throw new FederatedException($"{path}: implausibly large ({total} values)");
        var data = new byte[total];
        gz.ReadExactly(data);
        return data;
    }

    /// <summary>
    /// Non-IID split by user: each of <paramref name="users"/> users picks <paramref name="minClasses"/>..<paramref name="maxClasses"/>
    /// classes, and the examples of each class are dealt out evenly among the users that picked it.
    /// </summary>
    public static List<int[]> SplitNonIid(Dataset data, int users, int minClasses, int maxClasses, int seed)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (users < 1 || minClasses < 1 || maxClasses < minClasses || maxClasses > data.Classes) throw new FederatedException("bad split: need users ≥ 1 and 1 ≤ min ≤ max ≤ classes");
        var rng = new Random(seed);
        var picks = new List<int[]>();
        var holders = Enumerable.Range(0, data.Classes).Select(_ => new List<int>()).ToArray();
        for (int u = 0; u < users; u++)
        {
            int k = rng.Next(minClasses, maxClasses + 1);
            // balance: prefer the classes with the fewest holders so far
            var cls = Enumerable.Range(0, data.Classes).OrderBy(c => holders[c].Count).ThenBy(_ => rng.Next()).Take(k).ToArray();
            foreach (var c in cls) holders[c].Add(u);
            picks.Add(cls);
        }
        var parts = Enumerable.Range(0, users).Select(_ => new List<int>()).ToArray();
        for (int c = 0; c < data.Classes; c++)
        {
            var idx = Enumerable.Range(0, data.Count).Where(i => data.Labels[i] == c).OrderBy(_ => rng.Next()).ToArray();
            if (holders[c].Count == 0) continue;
            for (int j = 0; j < idx.Length; j++) parts[holders[c][j % holders[c].Count]].Add(idx[j]);
        }
        return parts.Select(p => p.ToArray()).ToList();
    }
}
