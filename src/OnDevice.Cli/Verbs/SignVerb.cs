using System.CommandLine;
using OnDevice.Core;
using OnDevice.Delivery;

namespace OnDevice.Cli.Verbs;

/// <summary><c>ondevice sign PKG --keys DIR</c>: sign a release package with the targets keys.</summary>
public static class SignVerb
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var pkg = new Argument<string>("package") { Description = "Package directory made by 'ondevice pack'" };
        var keys = new Option<string>("--keys") { Description = "Keys directory made by 'ondevice keys init'", Required = true };
        var json = new Option<bool>("--json") { Description = "Print a JSON summary" };
        var cmd = new Command("sign", "Sign a release package with the targets keys (every key found, to meet the threshold)") { pkg, keys, json };
        cmd.SetAction(r =>
        {
            var p = ReleasePackage.Open(r.GetValue(pkg)!);
            var keyDir = r.GetValue(keys)!;
            var signers = KeysVerb.Load(keyDir, Roles.Targets);
            var rootFile = Path.Combine(keyDir, "root.json");
            int? threshold = null;
            if (File.Exists(rootFile))
            {
                try
                {
                    var root = MetadataReader.Read<RootMetadata>(File.ReadAllBytes(rootFile)).Signed;
                    var role = root.GetRole(Roles.Targets);
                    var unknown = signers.Where(k => !role.KeyIds.Contains(k.KeyId)).ToList();
                    if (unknown.Count > 0) throw new CliException($"key {unknown[0].KeyId[..12]} in {keyDir} is not a targets key of {rootFile}");
                    threshold = role.Threshold;
                    if (signers.Count < role.Threshold) throw new CliException($"{keyDir} has {signers.Count} targets key(s), the root requires {role.Threshold} signatures");
                }
                catch (TrustException e) { throw new CliException($"{rootFile}: {e.Message}"); }
            }
            var signed = p.Targets.Sign(signers);
            AtomicFile.WriteAllBytes(Path.Combine(p.Directory, ReleasePackage.MetadataFile), signed);
            foreach (var k in signers) k.Dispose();
            if (r.GetValue(json)) Cli.WriteJson(new { package = Path.GetFullPath(p.Directory), model = p.Release.Model, version = p.Release.Version, signatures = signers.Count, threshold });
            else Console.WriteLine($"signed {p.Release.Model} {p.Release.Version} with {signers.Count} targets key(s){(threshold is { } t ? $" (threshold {t})" : "")}");
            return 0;
        });
        return cmd;
    }
}
