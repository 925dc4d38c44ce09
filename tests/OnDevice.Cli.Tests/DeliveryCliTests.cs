using System.Text.Json;
using OnDevice.TestSupport;

namespace OnDevice.Cli.Tests;

/// <summary>The delivery verbs as a publisher uses them: keys init, pack, sign, verify.</summary>
public class DeliveryCliTests
{
    private static void Ok(CliRunner.Result r) => Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}: {r.Stderr}{r.Stdout}");

    private static string Model(TempDir dir, string name, int size, int seed)
    {
        var b = new byte[size];
        new Random(seed).NextBytes(b);
        File.WriteAllBytes(dir.File(name), b);
        return dir.File(name);
    }

    [Fact]
    public void Keys_init_writes_owner_only_private_keys_and_a_root_and_refuses_to_overwrite()
    {
        using var dir = new TempDir();
        var keys = dir.File("keys");
        Ok(CliRunner.Run("keys", "init", keys, "--root-keys", "3", "--root-threshold", "2"));
        Assert.True(File.Exists(Path.Combine(keys, "root.json")));
        var privates = Directory.GetFiles(Path.Combine(keys, "private")).Concat(Directory.GetFiles(Path.Combine(keys, "online"))).ToList();
        Assert.Equal(6, privates.Count); // 3 root, 1 targets, snapshot, timestamp
        if (!OperatingSystem.IsWindows())
            foreach (var f in privates) Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(f));
        using var root = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(keys, "root.json")));
        Assert.Equal(2, root.RootElement.GetProperty("signed").GetProperty("roles").GetProperty("root").GetProperty("threshold").GetInt32());
        Assert.Equal(3, root.RootElement.GetProperty("signatures").GetArrayLength());

        var again = CliRunner.Run("keys", "init", keys);
        Assert.Equal(1, again.ExitCode);
        Assert.Contains("refusing to overwrite", again.Stderr);
        Assert.Equal(1, CliRunner.Run("keys", "init", dir.File("k2"), "--root-keys", "1", "--root-threshold", "2").ExitCode);
    }

    [Fact]
    public void Pack_sign_verify_round_trip_and_tampering_is_caught()
    {
        using var dir = new TempDir();
        var keys = dir.File("keys");
        Ok(CliRunner.Run("keys", "init", keys, "--targets-keys", "2", "--targets-threshold", "2"));
        var a = Model(dir, "a.onnx", 200_000, 1);
        var b = Model(dir, "b.onnx", 100_000, 2);
        File.WriteAllText(dir.File("compare.json"), "{\"maxAbsDiff\": 0.0012, \"top1Agreement\": 0.998}");
        var pkg = dir.File("pkg");
        Ok(CliRunner.Run("pack", "--name", "recognizer", "--version", "1.2.0",
            "--variant", $"int8={a}:precision=int8:min_ram=2G:cpu=neon,dotprod:api_min=1:budget.peak_bytes=12345",
            "--variant", $"fp16={b}:precision=fp16:min_ram=6G:deny=Pixel 3*",
            "--evidence", dir.File("compare.json"), "-o", pkg));

        var unsigned = CliRunner.Run("verify", pkg, "--root", Path.Combine(keys, "root.json"), "--json");
        Assert.Equal(1, unsigned.ExitCode);
        using (var j = JsonDocument.Parse(unsigned.Stdout))
        {
            Assert.False(j.RootElement.GetProperty("ok").GetBoolean());
            Assert.Equal(0, j.RootElement.GetProperty("signatures").GetProperty("valid").GetInt32());
        }

        Ok(CliRunner.Run("sign", pkg, "--keys", keys));
        var verified = CliRunner.Run("verify", pkg, "--root", Path.Combine(keys, "root.json"), "--json");
        Ok(verified);
        using (var j = JsonDocument.Parse(verified.Stdout))
        {
            var r = j.RootElement;
            Assert.True(r.GetProperty("ok").GetBoolean());
            Assert.Equal(2, r.GetProperty("signatures").GetProperty("valid").GetInt32());
            Assert.Equal(2, r.GetProperty("signatures").GetProperty("threshold").GetInt32());
            Assert.Equal(300_000, r.GetProperty("verifiedBytes").GetInt64());
        }
        var release = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(pkg, "release.json"))).RootElement.GetProperty("signed").GetProperty("targets");
        var custom = release.GetProperty("recognizer/1.2.0/int8/a.onnx").GetProperty("custom");
        Assert.Equal(2L << 30, custom.GetProperty("requirements").GetProperty("min_ram_bytes").GetInt64());
        Assert.Equal(12345, custom.GetProperty("budget").GetProperty("peak_bytes").GetInt64());
        Assert.Contains("top1Agreement", custom.GetProperty("evidence").GetString());

        // Another root's keys do not count.
        var other = dir.File("other");
        Ok(CliRunner.Run("keys", "init", other));
        Assert.Equal(1, CliRunner.Run("verify", pkg, "--root", Path.Combine(other, "root.json")).ExitCode);

        // One flipped byte in a blob.
        var blob = Directory.GetFiles(Path.Combine(pkg, "blobs")).First();
        var bytes = File.ReadAllBytes(blob);
        bytes[1234] ^= 0xFF;
        File.WriteAllBytes(blob, bytes);
        var tampered = CliRunner.Run("verify", pkg, "--root", Path.Combine(keys, "root.json"));
        Assert.Equal(1, tampered.ExitCode);
        Assert.Contains("SHA-256", tampered.Stdout);
    }

    [Fact]
    public void Sign_refuses_keys_below_the_threshold_and_pack_rejects_bad_variants()
    {
        using var dir = new TempDir();
        var keys = dir.File("keys");
        Ok(CliRunner.Run("keys", "init", keys, "--targets-keys", "2", "--targets-threshold", "2"));
        File.Delete(Directory.GetFiles(Path.Combine(keys, "private"), "targets-2.pem").Single());
        var a = Model(dir, "a.onnx", 1000, 3);
        Ok(CliRunner.Run("pack", "--name", "m", "--version", "1", "--variant", $"v={a}", "-o", dir.File("pkg")));
        var sign = CliRunner.Run("sign", dir.File("pkg"), "--keys", keys);
        Assert.Equal(1, sign.ExitCode);
        Assert.Contains("requires 2 signatures", sign.Stderr);

        var bad = CliRunner.Run("pack", "--name", "m", "--version", "1", "--variant", $"v={a}:colour=red", "-o", dir.File("p2"));
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("unknown key 'colour'", bad.Stderr);
        var missing = CliRunner.Run("pack", "--name", "m", "--version", "1", "--variant", $"v={dir.File("nope.onnx")}", "-o", dir.File("p3"));
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("file not found", missing.Stderr);
        var badName = CliRunner.Run("pack", "--name", "../evil", "--version", "1", "--variant", $"v={a}", "-o", dir.File("p4"));
        Assert.Equal(1, badName.ExitCode);
    }
}
