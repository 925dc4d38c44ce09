using System.CommandLine;
using OnDevice.Delivery;

namespace OnDevice.Cli.Verbs;

/// <summary><c>ondevice verify PKG --root root.json</c>: check signatures, expiry and every file of a package.</summary>
public static class VerifyVerb
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var pkg = new Argument<string>("package") { Description = "Package directory" };
        var root = new Option<string>("--root") { Description = "Trusted root metadata (root.json)", Required = true };
        var json = new Option<bool>("--json") { Description = "Print one JSON object" };
        var cmd = new Command("verify", "Verify a release package against a trusted root: targets signatures and threshold, expiry, each file's length and SHA-256") { pkg, root, json };
        cmd.SetAction(r =>
        {
            var p = ReleasePackage.Open(r.GetValue(pkg)!);
            var rootPath = r.GetValue(root)!;
            if (!File.Exists(rootPath)) throw new CliException($"root metadata not found: {rootPath}");
            var now = DateTimeOffset.UtcNow;
            var problems = new List<string>();
            RootMetadata trusted;
            try
            {
                trusted = new TrustedMetadataSet(File.ReadAllBytes(rootPath), now).Root;
            }
            catch (TrustException e) { throw new CliException($"{rootPath}: {e.Message}"); }
            var role = trusted.GetRole(Roles.Targets);
            int validSigs = 0;
            try
            {
                p.Envelope.VerifyThreshold(trusted, Roles.Targets);
                validSigs = p.Envelope.Signatures.Select(s => s.KeyId).Distinct().Count(id => role.KeyIds.Contains(id));
            }
            catch (SignatureThresholdException e) { problems.Add(e.Message); validSigs = e.Valid; }
            if (trusted.IsExpired(now)) problems.Add($"root expired at {trusted.Expires:u}");
            if (p.Targets.IsExpired(now)) problems.Add($"release metadata expired at {p.Targets.Expires:u}");

            var files = new List<object>();
            var sw = System.Diagnostics.Stopwatch.StartNew();
            long bytes = 0;
            foreach (var (path, f) in p.Targets.Targets)
            {
                string? error = null;
                var blob = p.BlobPath(f);
                if (!File.Exists(blob)) error = $"file missing: {blob}";
                else
                {
                    try
                    {
                        using var s = File.OpenRead(blob);
                        TargetVerifier.VerifyAsync(path, f, s).GetAwaiter().GetResult();
                        bytes += f.Length;
                    }
                    catch (TargetMismatchException e) { error = e.Message; }
                }
                if (error is not null) problems.Add(error);
                files.Add(new { path, variant = f.Model!.Variant, precision = f.Model.Precision, length = f.Length, sha256 = f.Sha256, ok = error is null, error });
            }
            sw.Stop();
            bool ok = problems.Count == 0;
            if (r.GetValue(json))
                Cli.WriteJson(new
                {
                    ok, model = p.Release.Model, version = p.Release.Version, revision = p.Targets.Version, expires = p.Targets.Expires,
                    signatures = new { valid = validSigs, threshold = role.Threshold }, files, verifiedBytes = bytes,
                    hashSeconds = sw.Elapsed.TotalSeconds, problems,
                });
            else
            {
                Console.WriteLine($"{p.Release.Model} {p.Release.Version} (revision {p.Targets.Version}): {validSigs}/{role.Threshold} targets signatures, expires {p.Targets.Expires:u}");
                foreach (var pr in problems) Console.WriteLine($"  FAIL {pr}");
                if (ok) Console.WriteLine($"  OK: {p.Targets.Targets.Count} file(s), {Cli.Bytes(bytes)} verified");
            }
            return ok ? 0 : 1;
        });
        return cmd;
    }
}
