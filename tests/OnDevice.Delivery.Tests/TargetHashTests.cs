namespace OnDevice.Delivery.Tests;

/// <summary>Attack: a target whose bytes differ from the trusted SHA-256 (same length).</summary>
public class TargetHashTests
{
    [Fact]
    public async Task Corrupted_byte_is_rejected()
    {
        var data = (byte[])Fixture.ModelA.Clone();
        var file = new TargetFile(data.Length, RepositorySimulator.Sha(data), null);
        data[5000] ^= 1;
        var e = await Assert.ThrowsAsync<TargetHashException>(() => TargetVerifier.VerifyAsync("m/1/a", file, new MemoryStream(data)));
        Assert.Contains(file.Sha256, e.Message);
    }

    [Fact]
    public async Task Correct_bytes_verify_and_are_copied()
    {
        var file = new TargetFile(Fixture.ModelA.Length, RepositorySimulator.Sha(Fixture.ModelA), null);
        using var v = new TargetVerifier("m/1/a", file);
        var dest = new MemoryStream();
        await v.CopyAsync(new MemoryStream(Fixture.ModelA), dest);
        Assert.Equal(Fixture.ModelA, dest.ToArray());
    }

    [Fact]
    public async Task Resumed_download_verifies_across_the_two_parts()
    {
        var file = new TargetFile(Fixture.ModelA.Length, RepositorySimulator.Sha(Fixture.ModelA), null);
        using var v = new TargetVerifier("m/1/a", file);
        v.Append(Fixture.ModelA.AsSpan(0, 4000));
        await v.CopyAsync(new MemoryStream(Fixture.ModelA, 4000, Fixture.ModelA.Length - 4000), null);
        Assert.Equal(Fixture.ModelA.Length, v.Received);
    }
}
