namespace OnDevice.Delivery.Tests;

/// <summary>Attack: the server keeps serving an expired timestamp (freeze), hiding new releases.</summary>
public class FreezeTimestampTests
{
    [Fact]
    public async Task Expired_timestamp_is_rejected()
    {
        var (repo, store, _) = await Fixture.UpdatedClient();
        repo.Time.Now += TimeSpan.FromDays(2);
        var e = await Assert.ThrowsAsync<ExpiredMetadataException>(() => Fixture.Update(repo, store));
        Assert.Equal(Roles.Timestamp, e.Role);
    }

    [Fact]
    public async Task Expiry_is_checked_against_the_time_fixed_at_the_start_of_the_update()
    {
        var repo = new RepositorySimulator();
        repo.AddRelease("m", "1.0", ("int8", Fixture.ModelA, 0));
        // A clock that jumps three days forward after it has been read once: the update must still use the first reading.
        var clock = new SteppingTime(repo.Time.Now, TimeSpan.FromDays(3));
        var client = new TrustUpdater(repo, new MemoryTrustStore(), repo.TrustedRoot, null, clock);
        var set = await client.RefreshAsync();
        await client.LoadReleasesAsync(set, "m");
        Assert.Equal(repo.Time.Now, set.ReferenceTime);
        Assert.True(clock.Reads >= 1);
    }

    private sealed class SteppingTime(DateTimeOffset start, TimeSpan step) : TimeProvider
    {
        private DateTimeOffset _now = start;
        public int Reads { get; private set; }
        public override DateTimeOffset GetUtcNow()
        {
            Reads++;
            var t = _now;
            _now += step;
            return t;
        }
    }
}
