namespace OnDevice.Delivery.Tests;

public class VariantSelectorTests
{
    private static TargetsMetadata Release(string version, params ModelTarget[] variants) => new()
    {
        Version = 1,
        Expires = DateTimeOffset.UtcNow.AddDays(1),
        Targets = variants.ToDictionary(v => $"{v.Model}/{v.Version}/{v.Variant}/model.onnx", v => new TargetFile(100, new string('0', 64), v.ToJson())),
    };

    private static ModelTarget V(string version, string variant, string precision, long minRam = 0, string[]? cpu = null, string[]? deny = null, string? api = null) => new()
    {
        Model = "rec", Version = version, Variant = variant, Precision = precision,
        Requirements = new DeviceRequirements { MinRamBytes = minRam, CpuFeatures = cpu ?? [], DeviceModelsDeny = deny ?? [] },
        RuntimeApi = api is null ? null : new VersionRange(api, null),
    };

    private const long GiB = 1L << 30;

    [Fact]
    public void Bigger_device_gets_the_bigger_variant_smaller_device_the_smaller()
    {
        var rels = new[] { Release("2.0", V("2.0", "int4-large", "int4", 8 * GiB), V("2.0", "int8-small", "int8", 2 * GiB)) };
        Assert.Equal("int4-large", VariantSelector.Select(rels, "rec", new DeviceDescription { RamBytes = 12 * GiB })!.Target.Variant);
        Assert.Equal("int8-small", VariantSelector.Select(rels, "rec", new DeviceDescription { RamBytes = 4 * GiB })!.Target.Variant);
        Assert.Null(VariantSelector.Select(rels, "rec", new DeviceDescription { RamBytes = 1 * GiB }));
    }

    [Fact]
    public void Newest_version_with_a_runnable_variant_wins()
    {
        var rels = new[] { Release("1.9", V("1.9", "fp16", "fp16")), Release("1.10", V("1.10", "int8", "int8", cpu: ["dotprod"])) };
        Assert.Equal("1.9", VariantSelector.Select(rels, "rec", new DeviceDescription { RamBytes = GiB })!.Target.Version);
        Assert.Equal("1.10", VariantSelector.Select(rels, "rec", new DeviceDescription { RamBytes = GiB, CpuFeatures = ["neon", "DotProd"] })!.Target.Version);
    }

    [Fact]
    public void Deny_list_and_runtime_api_window_exclude()
    {
        var t = V("1.0", "a", "int8", deny: ["Pixel 3*"], api: "3");
        Assert.NotEmpty(t.Unmet(new DeviceDescription { DeviceModel = "Pixel 3a", RuntimeApiVersion = "4" }));
        Assert.NotEmpty(t.Unmet(new DeviceDescription { DeviceModel = "Pixel 8", RuntimeApiVersion = "2" }));
        Assert.Empty(t.Unmet(new DeviceDescription { DeviceModel = "Pixel 8", RuntimeApiVersion = "3.1" }));
    }

    [Fact]
    public void Versions_compare_numerically()
    {
        Assert.True(ModelVersion.Compare("1.10", "1.9") > 0);
        Assert.Equal(0, ModelVersion.Compare("2.0", "2.0.0"));
        Assert.True(ModelVersion.Compare("2.0.1", "2.0") > 0);
    }
}
