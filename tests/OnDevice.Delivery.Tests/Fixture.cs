namespace OnDevice.Delivery.Tests;

internal static class Fixture
{
    public static readonly byte[] ModelA = RepositorySimulator.RandomBytes(10_000, 1);
    public static readonly byte[] ModelB = RepositorySimulator.RandomBytes(12_345, 2);

    /// <summary>A repository with one release of model "m" and a client that has done one successful update.</summary>
    public static async Task<(RepositorySimulator Repo, MemoryTrustStore Store, TrustedMetadataSet Set)> UpdatedClient()
    {
        var repo = new RepositorySimulator();
        repo.AddRelease("m", "1.0", ("int8", ModelA, 0));
        var store = new MemoryTrustStore();
        var set = await repo.Client(store).RefreshAsync();
        await repo.Client(store).LoadReleasesAsync(set, "m");
        return (repo, store, set);
    }

    public static async Task<TrustedMetadataSet> Update(RepositorySimulator repo, ITrustStore store, string model = "m")
    {
        var client = repo.Client(store);
        var set = await client.RefreshAsync();
        await client.LoadReleasesAsync(set, model);
        return set;
    }
}
