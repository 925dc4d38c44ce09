using System.Text.Json;

namespace OnDevice.Planning;

/// <summary>
/// Device profiles: the built-in ones (embedded data file <c>Devices/devices.json</c>) and the user's, one JSON file per
/// device in <see cref="DefaultUserDirectory"/> (where <c>ondevice devices calibrate</c> saves). A user profile with
/// the name of a built-in one replaces it.
/// </summary>
public sealed class DeviceCatalog
{
    private DeviceCatalog(IReadOnlyList<DeviceProfile> all, string? userDirectory)
    {
        All = all;
        UserDirectory = userDirectory;
    }

    /// <summary>Every profile, built-in first, in file order.</summary>
    public IReadOnlyList<DeviceProfile> All { get; }

    /// <summary>Where user profiles are read from (null: none).</summary>
    public string? UserDirectory { get; }

    /// <summary>
    /// The user's profile directory: <c>$ONDEVICE_CONFIG/devices</c>, default <c>~/.config/ondevice/devices</c>.
    /// </summary>
    public static string DefaultUserDirectory =>
        Path.Combine(Environment.GetEnvironmentVariable("ONDEVICE_CONFIG") is { Length: > 0 } c
            ? c
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".config", "ondevice"), "devices");

    /// <summary>The built-in profiles only.</summary>
    public static IReadOnlyList<DeviceProfile> BuiltIn => BuiltInLazy.Value;

    private static readonly Lazy<IReadOnlyList<DeviceProfile>> BuiltInLazy = new(LoadBuiltIn);

    /// <summary>Built-in profiles plus those in <paramref name="userDirectory"/> (default <see cref="DefaultUserDirectory"/>).</summary>
    public static DeviceCatalog Load(string? userDirectory = null)
    {
        userDirectory ??= DefaultUserDirectory;
        var byName = new Dictionary<string, DeviceProfile>(StringComparer.OrdinalIgnoreCase);
        var order = new List<string>();
        foreach (var d in BuiltIn) { byName[d.Name] = d; order.Add(d.Name); }
        if (Directory.Exists(userDirectory))
            foreach (var file in Directory.EnumerateFiles(userDirectory, "*.json").Order(StringComparer.Ordinal))
            {
                var d = ReadFile(file);
                if (!byName.ContainsKey(d.Name)) order.Add(d.Name);
                byName[d.Name] = d;
            }
        return new DeviceCatalog(order.Select(n => byName[n]).ToList(), userDirectory);
    }

    /// <summary>The profile named <paramref name="name"/> (case-insensitive); <see cref="UnknownNameException"/> lists the known names.</summary>
    public DeviceProfile Get(string name) =>
        All.FirstOrDefault(d => string.Equals(d.Name, name, StringComparison.OrdinalIgnoreCase))
        ?? throw new UnknownNameException("device", name, All.Select(d => d.Name));

    /// <summary>Reads and validates one profile file.</summary>
    public static DeviceProfile ReadFile(string path)
    {
        DeviceProfile? d;
        try { d = JsonSerializer.Deserialize<DeviceProfile>(File.ReadAllText(path), DeviceProfile.JsonOptions); }
        catch (JsonException e) { throw new PlanningException($"device profile {path}: not a valid profile: {e.Message}"); }
        if (d is null) throw new PlanningException($"device profile {path}: empty");
        return (d with { Origin = path }).Validate();
    }

    /// <summary>Writes <paramref name="profile"/> as <c>NAME.json</c> into <paramref name="directory"/> atomically; returns the path.</summary>
    public static string Save(DeviceProfile profile, string directory)
    {
        profile.Validate();
        var path = Path.Combine(directory, profile.Name + ".json");
        var bytes = JsonSerializer.SerializeToUtf8Bytes(profile, DeviceProfile.JsonOptions);
        Core.AtomicFile.WriteAllBytes(path, bytes);
        return path;
    }

    private static IReadOnlyList<DeviceProfile> LoadBuiltIn()
    {
        using var stream = typeof(DeviceCatalog).Assembly.GetManifestResourceStream("OnDevice.Planning.Devices.devices.json")
            ?? throw new InvalidOperationException("embedded devices.json is missing");
        using var doc = JsonDocument.Parse(stream, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip });
        var list = new List<DeviceProfile>();
        foreach (var e in doc.RootElement.GetProperty("devices").EnumerateArray())
        {
            var d = e.Deserialize<DeviceProfile>(DeviceProfile.JsonOptions) ?? throw new InvalidOperationException("null device in devices.json");
            list.Add((d with { Origin = "built-in" }).Validate());
        }
        var dup = list.GroupBy(d => d.Name, StringComparer.OrdinalIgnoreCase).FirstOrDefault(g => g.Count() > 1);
        if (dup is not null) throw new InvalidOperationException($"devices.json: device '{dup.Key}' appears twice");
        return list;
    }
}
