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

    [Fact]
    public void Seconds_and_minutes_schedule_simulations_and_round_trip()
    {
        var s = RolloutSchedule.Parse("1%@0s, 10%@20s, 100%@40s");
        Assert.Equal([TimeSpan.Zero, TimeSpan.FromSeconds(20), TimeSpan.FromSeconds(40)], s.Stages.Select(x => x.After));
        Assert.Equal(100, s.StageAt(TimeSpan.FromSeconds(19.9))!.BasisPoints);
        Assert.Equal(1000, s.StageAt(TimeSpan.FromSeconds(20))!.BasisPoints);
        Assert.Equal("1%@0h, 10%@20s, 100%@40s", s.ToString());
        Assert.Equal(s.Stages, RolloutSchedule.Parse(s.ToString()).Stages);
        var m = RolloutSchedule.Parse("5%@0m, 50%@15m, 100%@90m");
        Assert.Equal(TimeSpan.FromMinutes(90), m.Stages[2].After);
        Assert.Equal(m.Stages, RolloutSchedule.Parse(m.ToString()).Stages);
        Assert.Equal(RolloutSchedule.ApplePhased.Stages, RolloutSchedule.Parse(RolloutSchedule.ApplePhased.ToString()).Stages);
    }

    [Fact]
    public void Device_class_is_named_or_derived_from_ram()
    {
        const long GiB = 1L << 30;
        Assert.Equal("ram<4GB", DeviceClasses.Of(new DeviceDescription { RamBytes = 3 * GiB }));
        Assert.Equal("ram<4GB", DeviceClasses.Of(new DeviceDescription()));
        Assert.Equal("ram4-8GB", DeviceClasses.Of(new DeviceDescription { RamBytes = 4 * GiB }));
        Assert.Equal("ram4-8GB", DeviceClasses.Of(new DeviceDescription { RamBytes = 8 * GiB - 1 }));
        Assert.Equal("ram>=8GB", DeviceClasses.Of(new DeviceDescription { RamBytes = 8 * GiB }));
        Assert.Equal("old-phones", DeviceClasses.Of(new DeviceDescription { RamBytes = 12 * GiB, DeviceClass = "old-phones" }));

        var d = new DeviceDescription { RamBytes = 6 * GiB, DeviceClass = "pixel-6" };
        var back = DeviceDescription.FromJson(d.ToJson());
        Assert.Equal("pixel-6", back.DeviceClass);
        Assert.Equal("pixel-6", d.ToJson()["device_class"]!.GetValue<string>());
        Assert.False(new DeviceDescription { RamBytes = 1 }.ToJson().ContainsKey("device_class"));
        Assert.Null(DeviceDescription.FromJson(new DeviceDescription().ToJson()).DeviceClass);
        Assert.Throws<MalformedMetadataException>(() => DeviceDescription.FromJson(new System.Text.Json.Nodes.JsonObject { ["device_class"] = "has space" }));
        Assert.Throws<MalformedMetadataException>(() => DeviceDescription.FromJson(new System.Text.Json.Nodes.JsonObject { ["device_class"] = "" }));
        Assert.Throws<MalformedMetadataException>(() => DeviceDescription.FromJson(new System.Text.Json.Nodes.JsonObject { ["device_class"] = 3 }));
    }

    [Fact]
    public void Assignment_request_round_trips_and_needs_an_install_id()
    {
        var q = new AssignmentRequest { InstallId = "install-0001", Channel = "beta", InstalledVersion = "1.2", Device = new DeviceDescription { RamBytes = 5L << 30, DeviceClass = "mid" } };
        var back = AssignmentRequest.FromJson(System.Text.Json.Nodes.JsonNode.Parse(q.ToJson().ToJsonString())!.AsObject());
        Assert.Equal((q.InstallId, q.Channel, q.InstalledVersion, "mid", 5L << 30), (back.InstallId, back.Channel, back.InstalledVersion, back.Device.DeviceClass, back.Device.RamBytes));
        var minimal = AssignmentRequest.FromJson(new System.Text.Json.Nodes.JsonObject { ["install_id"] = "install-0002" });
        Assert.Equal((null, null, 0L), (minimal.Channel, minimal.InstalledVersion, minimal.Device.RamBytes));
        Assert.Throws<MalformedMetadataException>(() => AssignmentRequest.FromJson(new System.Text.Json.Nodes.JsonObject { ["channel"] = "stable" }));
        Assert.Throws<MalformedMetadataException>(() => AssignmentRequest.FromJson(new System.Text.Json.Nodes.JsonObject { ["install_id"] = "install-0003", ["device"] = "big" }));
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
    [InlineData("10%@0x")]
    [InlineData("10%@0s, 20%@0m")]
    [InlineData("10%@0s, 20%@Infinitys")]
    [InlineData("10%@-1s")]
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
