namespace OnDevice.Delivery.Tests;

/// <summary>Attack: a target shorter or longer than declared.</summary>
public class TargetLengthTests
{
    private static readonly TargetFile File = new(Fixture.ModelA.Length, RepositorySimulator.Sha(Fixture.ModelA), null);

    [Fact]
    public async Task Truncated_target_is_rejected()
    {
        var e = await Assert.ThrowsAsync<TargetLengthException>(() => TargetVerifier.VerifyAsync("a", File, new MemoryStream(Fixture.ModelA[..9000])));
        Assert.False(e.TooLong);
    }

    [Fact]
    public async Task Target_with_extra_bytes_is_rejected()
    {
        var longer = Fixture.ModelA.Concat(new byte[] { 1, 2, 3 }).ToArray();
        var e = await Assert.ThrowsAsync<TargetLengthException>(() => TargetVerifier.VerifyAsync("a", File, new MemoryStream(longer)));
        Assert.True(e.TooLong);
    }
}
