namespace OnDevice.Delivery.Tests;

public class RolloutTests
{
    [Fact]
    public void Parses_stages_and_finds_the_one_in_force()
    {
        var s = RolloutSchedule.Parse("1%@0h, 10%@24h, 50%@72h, 100%@168h");
        Assert.Equal([100, 1000, 5000, 10000], s.Stages.Select(x => x.BasisPoints));
        Assert.Equal(100, s.StageAt(TimeSpan.FromHours(23.9))!.BasisPoints);
        Assert.Equal(1000, s.StageAt(TimeSpan.FromHours(24))!.BasisPoints);
        Assert.Equal(10000, s.StageAt(TimeSpan.FromDays(30))!.BasisPoints);
        Assert.Null(s.StageAt(TimeSpan.FromHours(-1)));
        Assert.Equal(7, RolloutSchedule.ApplePhased.Stages.Count);
        Assert.Equal("0.5%@0h, 100%@48h", RolloutSchedule.Parse("0.5%@0h,100%@2d").ToString());
    }

    [Theory]
    [InlineData("")]
    [InlineData("10%@1h")]
    [InlineData("10%@0h, 5%@1h")]
    [InlineData("10%@0h, 20%@0h")]
    [InlineData("0%@0h")]
    [InlineData("101%@0h")]
    [InlineData("10@0h")]
    [InlineData("10%@3w")]
    [InlineData("0.001%@0h")]
    public void Rejects_malformed_schedules(string text) => Assert.Throws<FormatException>(() => RolloutSchedule.Parse(text));

    [Fact]
    public void Cohorts_are_sticky_nested_and_close_to_the_stated_fraction()
    {
        var ids = Enumerable.Range(0, 20_000).Select(i => $"install-{i}").ToList();
        Assert.All(ids.Take(100), id => Assert.Equal(Cohort.Bucket(id, "rec"), Cohort.Bucket(id, "rec")));
        var at1 = ids.Where(id => Cohort.Includes(id, "rec", 100)).ToHashSet();
        var at10 = ids.Where(id => Cohort.Includes(id, "rec", 1000)).ToHashSet();
        Assert.True(at1.IsSubsetOf(at10));
        Assert.InRange(at1.Count, 140, 260);     // 1% of 20,000 = 200
        Assert.InRange(at10.Count, 1800, 2200);  // 10% = 2,000
        // Another model draws an independent cohort.
        var other = ids.Where(id => Cohort.Includes(id, "det", 1000)).ToHashSet();
        Assert.InRange(other.Intersect(at10).Count(), 120, 300); // ~10% of 2,000
    }
}
