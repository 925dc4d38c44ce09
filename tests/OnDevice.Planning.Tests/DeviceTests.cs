using System.Text.Json;
using OnDevice.TestSupport;

namespace OnDevice.Planning.Tests;

public class DeviceTests
{
    [Fact]
    public void BuiltIn_HasTheRequiredDevices()
    {
        var names = DeviceCatalog.BuiltIn.Select(d => d.Name).ToList();
        Assert.Equal(["iphone-13", "iphone-15-pro", "iphone-16-pro", "apple-watch-series-9", "pixel-8", "galaxy-s24", "raspberry-pi-5-8gb", "jetson-orin-nano-8gb"], names);
    }

    [Fact]
    public void EveryNumber_CarriesASourceOrIsMarkedAsAnEstimate()
    {
        foreach (var d in DeviceCatalog.BuiltIn)
        {
            Assert.NotNull(d.RamBytes);
            Assert.NotNull(d.AppBudgetBytes);
            Assert.NotNull(d.MemoryBandwidthBytesPerSecond);
            Assert.True(d.AppBudgetBytes!.Value <= d.RamBytes!.Value, d.Name);
            foreach (var (path, f) in d.Figures())
            {
                Assert.True(f.Value > 0, $"{d.Name} {path}");
                Assert.True(string.IsNullOrWhiteSpace(f.Source) != string.IsNullOrWhiteSpace(f.Estimate), $"{d.Name} {path}: exactly one of source or estimate");
                // A source is a URL or a named document, long enough to find again.
                if (f.Source is { } s) Assert.True(s.Contains("https://", StringComparison.Ordinal) || s.Length > 30, $"{d.Name} {path}: source '{s}'");
            }
            foreach (var c in d.NpuConstraints)
                Assert.True(string.IsNullOrWhiteSpace(c.Source) != string.IsNullOrWhiteSpace(c.Estimate), $"{d.Name} constraint");
        }
    }

    [Fact]
    public void ARawFigure_WithoutProvenance_IsRejected()
    {
        var good = DeviceCatalog.BuiltIn[0];
        var neither = good with { RamBytes = new Figure { Value = 1e9 } };
        Assert.Contains("ramBytes must carry exactly one of 'source'", Assert.Throws<PlanningException>(() => neither.Validate()).Message);
        var both = good with { RamBytes = new Figure { Value = 1e9, Source = "x", Estimate = "y" } };
        Assert.Throws<PlanningException>(() => both.Validate());
        var negative = good with { MemoryBandwidthBytesPerSecond = new Figure { Value = -1, Estimate = "guess" } };
        Assert.Contains("memoryBandwidthBytesPerSecond must be a positive number", Assert.Throws<PlanningException>(() => negative.Validate()).Message);
        var over = good with { AppBudgetBytes = new Figure { Value = 1e12, Estimate = "guess" } };
        Assert.Contains("is larger than ramBytes", Assert.Throws<PlanningException>(() => over.Validate()).Message);
        var missing = good with { AppBudgetBytes = null };
        Assert.Contains("missing field 'appBudgetBytes'", Assert.Throws<PlanningException>(() => missing.Validate()).Message);
        var unit = good with { Compute = new() { ["tpu"] = new ComputeUnit() } };
        Assert.Contains("unknown compute unit 'tpu'", Assert.Throws<PlanningException>(() => unit.Validate()).Message);
    }

    [Fact]
    public void UserProfiles_AreSavedAtomically_ReadBack_AndListedWithTheBuiltIns()
    {
        using var dir = new TempDir();
        var profile = new DeviceProfile
        {
            Name = "my-board",
            DisplayName = "My board",
            Kind = "board",
            Soc = "test",
            RamBytes = new Figure { Value = 2e9, Source = "datasheet rev 3" },
            AppBudgetBytes = new Figure { Value = 1.5e9, Estimate = "RAM minus the OS" },
            MemoryBandwidthBytesPerSecond = new Figure { Value = 8e9, Source = "datasheet rev 3" },
        };
        var path = DeviceCatalog.Save(profile, dir.Path);
        Assert.Equal(Path.Combine(dir.Path, "my-board.json"), path);
        Assert.Empty(Directory.GetFiles(dir.Path, "*.tmp"));
        var catalog = DeviceCatalog.Load(dir.Path);
        var back = catalog.Get("MY-BOARD");
        Assert.Equal(path, back.Origin);
        Assert.Equal(1.5e9, back.AppBudgetBytes!.Value);
        Assert.Equal(DeviceCatalog.BuiltIn.Count + 1, catalog.All.Count);

        File.WriteAllText(Path.Combine(dir.Path, "broken.json"), "{\"name\": \"broken\", \"ramBytes\": {\"value\": 1}}");
        var e = Assert.Throws<PlanningException>(() => DeviceCatalog.Load(dir.Path));
        Assert.Contains("broken.json", e.Message);
        Assert.Contains("must carry exactly one of 'source'", e.Message);
    }

    [Fact]
    public void UnknownDevice_ListsTheKnownNames()
    {
        using var dir = new TempDir();
        var e = Assert.Throws<UnknownNameException>(() => DeviceCatalog.Load(dir.Path).Get("iphone-99"));
        Assert.Equal("unknown device 'iphone-99'; known devices: iphone-13, iphone-15-pro, iphone-16-pro, apple-watch-series-9, pixel-8, galaxy-s24, raspberry-pi-5-8gb, jetson-orin-nano-8gb", e.Message);
    }

    [Fact]
    public void Calibration_MeasuresBandwidth_AndStatesWhichGemmIsMissing()
    {
        var p = Calibrator.Run(new CalibrationOptions { Name = "calibration-test", Quick = true });
        Assert.True(p.MemoryBandwidthBytesPerSecond!.Value > 1e9, "read bandwidth above 1 GB/s");
        Assert.StartsWith("measured by", p.MemoryBandwidthBytesPerSecond.Source);
        Assert.True(p.RamBytes!.Value > 1e9);
        Assert.True(p.AppBudgetBytes!.Value <= p.RamBytes.Value);
        bool hasFp32Gemm = Runtime.Kernels.KernelRegistry.Default.Claims("", "MatMul", 17);
        bool hasInt8Gemm = Runtime.Kernels.KernelRegistry.Default.Claims("", "MatMulInteger", 17);
        Assert.Equal(hasFp32Gemm, p.Throughput("cpu", "fp32") is not null);
        Assert.Equal(hasInt8Gemm, p.Throughput("cpu", "int8") is not null);
        Assert.Equal(!hasFp32Gemm, p.Missing.Any(m => m.StartsWith("fp32 GEMM throughput: not measured", StringComparison.Ordinal) && m.Contains("MatMul")));
        Assert.Equal(!hasInt8Gemm, p.Missing.Any(m => m.StartsWith("int8 GEMM throughput: not measured", StringComparison.Ordinal) && m.Contains("MatMulInteger")));
        // The saved profile round-trips as a user profile.
        using var dir = new TempDir();
        DeviceCatalog.Save(p, dir.Path);
        var back = DeviceCatalog.Load(dir.Path).Get("calibration-test");
        Assert.Equal(p.MemoryBandwidthBytesPerSecond.Value, back.MemoryBandwidthBytesPerSecond!.Value);
        Assert.Equal(p.Missing, back.Missing);
        Assert.Contains("\"missing\"", File.ReadAllText(Path.Combine(dir.Path, "calibration-test.json")));
    }

    [Fact]
    public void ReadBandwidth_IsPlausible()
    {
        double one = Calibrator.ReadBandwidth(32L << 20, 1, 3);
        Assert.InRange(one, 1e9, 1e12);
    }

    [Fact]
    public void DevicesJson_IsTheDataFileInTheRepository()
    {
        var file = Path.Combine(RepoPaths.Root, "src", "OnDevice.Planning", "Devices", "devices.json");
        using var doc = JsonDocument.Parse(File.ReadAllText(file));
        Assert.Equal(DeviceCatalog.BuiltIn.Count, doc.RootElement.GetProperty("devices").GetArrayLength());
    }
}
