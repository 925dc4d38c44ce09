using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using OnDevice.Delivery;

namespace OnDevice.Cli.Verbs;

/// <summary><c>ondevice pack</c>: a release package (targets metadata per variant file plus the files).</summary>
public static class PackVerb
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var name = new Option<string>("--name") { Description = "Model name", Required = true };
        var version = new Option<string>("--version") { Description = "Release version (e.g. 1.2.0)", Required = true };
        var variants = new Option<string[]>("--variant")
        {
            Description = "NAME=FILE[:key=value...] (repeatable). Keys: precision, min_ram (e.g. 4G), os, os_min, os_max, runtime_min, runtime_max, " +
                          "api_min, api_max, cpu (a,b), accel (a,b), allow (model patterns a,b), deny, priority, budget.NAME (integer)",
            Required = true,
            AllowMultipleArgumentsPerToken = false,
        };
        var evidence = new Option<string?>("--evidence") { Description = "JSON evidence (e.g. the output of 'ondevice compare --json') stored with every variant" };
        var revision = new Option<long>("--revision") { Description = "Metadata version of this release (raise it to re-issue the same model version)", DefaultValueFactory = _ => 1 };
        var days = new Option<int>("--expires-days") { Description = "Days until the release metadata expires", DefaultValueFactory = _ => 365 };
        var output = new Option<string>("-o", "--output") { Description = "Package directory to create", Required = true };
        var json = new Option<bool>("--json") { Description = "Print a JSON summary" };
        var cmd = new Command("pack", "Make a release package: each variant file with its length, SHA-256 and device requirements")
        {
            name, version, variants, evidence, revision, days, output, json,
        };
        cmd.SetAction(r =>
        {
            var model = r.GetValue(name)!;
            var ver = r.GetValue(version)!;
            var outDir = r.GetValue(output)!;
            try
            {
                TargetsNames.ValidateSegment("--name", model);
                TargetsNames.ValidateSegment("--version", ver);
            }
            catch (MalformedMetadataException e) { throw new CliException(e.Message); }
            if (r.GetValue(revision) < 1) throw new CliException("--revision must be at least 1");
            if (r.GetValue(days) < 1) throw new CliException("--expires-days must be at least 1");
            if (File.Exists(Path.Combine(outDir, ReleasePackage.MetadataFile))) throw new CliException($"{outDir} already holds a package; choose a new -o");
            string? evidenceText = null;
            if (r.GetValue(evidence) is { } ev)
            {
                if (!File.Exists(ev)) throw new CliException($"evidence file not found: {ev}");
                evidenceText = File.ReadAllText(ev);
                try { using var doc = JsonDocument.Parse(evidenceText); evidenceText = JsonSerializer.Serialize(doc.RootElement); }
                catch (JsonException e) { throw new CliException($"{ev} is not JSON: {e.Message}"); }
            }

            var specs = (r.GetValue(variants) ?? []).Select(s => ParseVariant(s, model, ver, evidenceText)).ToList();
            if (specs.Count == 0) throw new CliException("give at least one --variant NAME=FILE");
            var dup = specs.GroupBy(s => s.Target.Variant).FirstOrDefault(g => g.Count() > 1);
            if (dup is not null) throw new CliException($"variant '{dup.Key}' is given twice");

            var targets = new Dictionary<string, TargetFile>();
            var sources = new Dictionary<string, string>();
            foreach (var (file, target) in specs)
            {
                var (sha, length) = ReleasePackage.HashFile(file);
                var path = $"{model}/{ver}/{target.Variant}/{SafeFileName(Path.GetFileName(file))}";
                targets[path] = new TargetFile(length, sha, target.ToJson());
                sources[path] = file;
            }
            var meta = new TargetsMetadata { Version = r.GetValue(revision), Expires = DateTimeOffset.UtcNow.AddDays(r.GetValue(days)), Targets = targets };
            var pkg = ReleasePackage.Create(outDir, meta, sources);
            var summary = new
            {
                package = Path.GetFullPath(outDir),
                model, version = ver, revision = meta.Version,
                variants = pkg.Targets.Targets.Select(t => new { path = t.Key, variant = t.Value.Model!.Variant, precision = t.Value.Model.Precision, length = t.Value.Length, sha256 = t.Value.Sha256 }).ToList(),
                signed = false,
            };
            if (r.GetValue(json)) Cli.WriteJson(summary);
            else
            {
                Console.WriteLine($"packed {model} {ver} into {summary.package} (unsigned; next: ondevice sign {outDir} --keys KEYS)");
                foreach (var v in summary.variants) Console.WriteLine($"  {v.variant,-16} {v.precision,-6} {Cli.Bytes(v.length),12}  sha256 {v.sha256[..16]}…");
            }
            return 0;
        });
        return cmd;
    }

    private static string SafeFileName(string name)
    {
        var s = new string(name.Select(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-' or '+' ? c : '_').ToArray());
        return s.Trim('.') is { Length: > 0 } t ? t : "model";
    }

    /// <summary>Parses <c>NAME=FILE[:key=value…]</c>.</summary>
    public static (string File, ModelTarget Target) ParseVariant(string spec, string model, string version, string? evidence)
    {
        int eq = spec.IndexOf('=');
        if (eq <= 0) throw new CliException($"--variant '{spec}' must look like NAME=FILE[:key=value...]");
        var variant = spec[..eq];
        var parts = spec[(eq + 1)..].Split(':');
        var file = parts[0];
        if (file.Length == 0) throw new CliException($"--variant {variant}: no file given");
        if (!File.Exists(file)) throw new CliException($"--variant {variant}: file not found: {file}");
        string precision = "fp32";
        long? minRam = null;
        string? os = null, osMin = null, osMax = null, rtMin = null, rtMax = null, apiMin = null, apiMax = null;
        List<string> cpu = [], accel = [], allow = [], deny = [];
        long priority = 0;
        var budget = new Dictionary<string, long>();
        static List<string> List(string v) => v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();
        foreach (var kv in parts.Skip(1))
        {
            int e = kv.IndexOf('=');
            if (e <= 0) throw new CliException($"--variant {variant}: '{kv}' must be key=value");
            var (k, v) = (kv[..e].Trim().ToLowerInvariant(), kv[(e + 1)..].Trim());
            switch (k)
            {
                case "precision": precision = v; break;
                case "min_ram": minRam = ReleasePackage.ParseBytes(v); break;
                case "os": os = v; break;
                case "os_min": osMin = v; break;
                case "os_max": osMax = v; break;
                case "runtime_min": rtMin = v; break;
                case "runtime_max": rtMax = v; break;
                case "api_min": apiMin = v; break;
                case "api_max": apiMax = v; break;
                case "cpu": cpu = List(v); break;
                case "accel": accel = List(v); break;
                case "allow": allow = List(v); break;
                case "deny": deny = List(v); break;
                case "priority":
                    if (!long.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out priority)) throw new CliException($"--variant {variant}: priority '{v}' is not an integer");
                    break;
                default:
                    if (k.StartsWith("budget.", StringComparison.Ordinal) && k.Length > 7)
                    {
                        if (!long.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out var b)) throw new CliException($"--variant {variant}: {k} '{v}' is not an integer");
                        budget[k[7..]] = b;
                        break;
                    }
                    throw new CliException($"--variant {variant}: unknown key '{k}'");
            }
        }
        var target = new ModelTarget
        {
            Model = model, Version = version, Variant = variant, Precision = precision, Priority = priority, Budget = budget, Evidence = evidence,
            Requirements = new DeviceRequirements
            {
                MinRamBytes = minRam, Os = os,
                OsVersion = osMin is null && osMax is null ? null : new VersionRange(osMin, osMax),
                RuntimeVersion = rtMin is null && rtMax is null ? null : new VersionRange(rtMin, rtMax),
                CpuFeatures = cpu, Accelerators = accel, DeviceModelsAllow = allow, DeviceModelsDeny = deny,
            },
            RuntimeApi = apiMin is null && apiMax is null ? null : new VersionRange(apiMin, apiMax),
        };
        try { TargetsNames.ValidateSegment("variant name", variant); }
        catch (MalformedMetadataException e) { throw new CliException(e.Message); }
        return (file, target);
    }
}
