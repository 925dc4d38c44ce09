using System.CommandLine;
using OnDevice.Core;
using OnDevice.Delivery;

namespace OnDevice.Cli.Verbs;

/// <summary><c>ondevice keys init DIR</c>: role keys, thresholds, and the initial trusted root.</summary>
public static class KeysVerb
{
    /// <summary>Builds the command with its <c>init</c> subcommand.</summary>
    public static Command Create()
    {
        var dir = new Argument<string>("dir") { Description = "Directory to create (private/ offline keys, online/ server keys, root.json)" };
        var rootKeys = new Option<int>("--root-keys") { Description = "Number of root keys", DefaultValueFactory = _ => 1 };
        var rootThreshold = new Option<int>("--root-threshold") { Description = "Root signatures required", DefaultValueFactory = _ => 1 };
        var targetsKeys = new Option<int>("--targets-keys") { Description = "Number of targets (release signing) keys", DefaultValueFactory = _ => 1 };
        var targetsThreshold = new Option<int>("--targets-threshold") { Description = "Targets signatures required", DefaultValueFactory = _ => 1 };
        var days = new Option<int>("--expires-days") { Description = "Days until the root expires", DefaultValueFactory = _ => 365 };
        var json = new Option<bool>("--json") { Description = "Print a JSON summary" };
        var init = new Command("init", "Create root, targets, snapshot and timestamp keys and the signed root metadata DIR/root.json")
        {
            dir, rootKeys, rootThreshold, targetsKeys, targetsThreshold, days, json,
        };
        init.SetAction(r =>
        {
            var d = r.GetValue(dir)!;
            int rk = r.GetValue(rootKeys), rt = r.GetValue(rootThreshold), tk = r.GetValue(targetsKeys), tt = r.GetValue(targetsThreshold);
            if (rk < 1 || tk < 1) throw new CliException("--root-keys and --targets-keys must be at least 1");
            if (rt < 1 || rt > rk) throw new CliException($"--root-threshold must be between 1 and --root-keys ({rk}), got {rt}");
            if (tt < 1 || tt > tk) throw new CliException($"--targets-threshold must be between 1 and --targets-keys ({tk}), got {tt}");
            if (r.GetValue(days) < 1) throw new CliException("--expires-days must be at least 1");
            if (File.Exists(Path.Combine(d, "root.json"))) throw new CliException($"{d} already holds keys (root.json exists); refusing to overwrite");

            var priv = Path.Combine(d, "private");
            var online = Path.Combine(d, "online");
            foreach (var sub in new[] { priv, online })
            {
                Directory.CreateDirectory(sub);
                if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(sub, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            }
            var keys = new Dictionary<string, List<SigningKey>>
            {
                [Roles.Root] = Enumerable.Range(0, rk).Select(_ => SigningKey.Generate()).ToList(),
                [Roles.Targets] = Enumerable.Range(0, tk).Select(_ => SigningKey.Generate()).ToList(),
                [Roles.Snapshot] = [SigningKey.Generate()],
                [Roles.Timestamp] = [SigningKey.Generate()],
            };
            var thresholds = new Dictionary<string, int> { [Roles.Root] = rt, [Roles.Targets] = tt, [Roles.Snapshot] = 1, [Roles.Timestamp] = 1 };
            foreach (var (role, list) in keys)
                for (int i = 0; i < list.Count; i++)
                {
                    var folder = role is Roles.Snapshot or Roles.Timestamp ? online : priv;
                    ReleasePackage.WritePrivate(Path.Combine(folder, $"{role}-{i + 1}.pem"), list[i].ExportPem());
                }
            var root = RootMetadata.Create(1, DateTimeOffset.UtcNow.AddDays(r.GetValue(days)),
                Roles.All.ToDictionary(role => role, role => ((IReadOnlyList<PublicKey>)keys[role].Select(k => k.Public).ToList(), thresholds[role])));
            AtomicFile.WriteAllBytes(Path.Combine(d, "root.json"), root.Sign(keys[Roles.Root]));
            var summary = new
            {
                directory = Path.GetFullPath(d),
                root = Path.GetFullPath(Path.Combine(d, "root.json")),
                roles = Roles.All.Select(role => new { role, keys = keys[role].Count, threshold = thresholds[role], keyIds = keys[role].Select(k => k.KeyId).ToList() }).ToList(),
                expires = root.Expires,
            };
            if (r.GetValue(json)) Cli.WriteJson(summary);
            else
            {
                Console.WriteLine($"keys written to {summary.directory}");
                foreach (var role in summary.roles) Console.WriteLine($"  {role.role,-9} {role.keys} key(s), threshold {role.threshold}");
                Console.WriteLine($"  root.json (version 1, expires {root.Expires:u}): ship it with the app as the trusted root");
                Console.WriteLine($"  private/ holds offline keys (root, targets); online/ holds the server's snapshot and timestamp keys");
            }
            return 0;
        });
        return new Command("keys", "Manage signing keys for model delivery") { init };
    }

    /// <summary>Loads every <c>ROLE-N.pem</c> of a role from a keys directory (private/ or online/).</summary>
    public static List<SigningKey> Load(string dir, string role)
    {
        var files = new[] { "private", "online", "." }.Select(s => Path.Combine(dir, s)).Where(Directory.Exists)
            .SelectMany(s => Directory.GetFiles(s, $"{role}-*.pem")).Order(StringComparer.Ordinal).ToList();
        if (files.Count == 0) throw new CliException($"no {role} keys in {dir} (expected {role}-N.pem under private/ or online/; create them with 'ondevice keys init')");
        try
        {
            return files.Select(f => SigningKey.FromPem(File.ReadAllText(f))).ToList();
        }
        catch (TrustException e)
        {
            throw new CliException($"{dir}: {e.Message}");
        }
    }
}
