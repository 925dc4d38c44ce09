using System.Text.Json.Nodes;

namespace OnDevice.Delivery;

/// <summary>
/// What a device sends to <c>POST /v1/assign/{model}</c> to learn which version its rollout assigns it:
/// a stable install id (its sticky cohort), the channel, the installed version and its description.
/// </summary>
public sealed record AssignmentRequest
{
    /// <summary>Install id: 8–128 printable ASCII characters, stable for the install.</summary>
    public required string InstallId { get; init; }
    /// <summary>Channel (null: the server's default, <c>stable</c>).</summary>
    public string? Channel { get; init; }
    /// <summary>The version in use, if any.</summary>
    public string? InstalledVersion { get; init; }
    /// <summary>This device (its <see cref="DeviceDescription.DeviceClass"/> or RAM gives the device class).</summary>
    public DeviceDescription Device { get; init; } = new();

    /// <summary>JSON form (snake_case).</summary>
    public JsonObject ToJson()
    {
        var o = new JsonObject { ["install_id"] = InstallId };
        if (Channel is not null) o["channel"] = Channel;
        if (InstalledVersion is not null) o["installed_version"] = InstalledVersion;
        o["device"] = Device.ToJson();
        return o;
    }

    /// <summary>Reads the JSON form.</summary>
    /// <exception cref="MalformedMetadataException">Missing install id or mistyped fields.</exception>
    public static AssignmentRequest FromJson(JsonObject o) => new()
    {
        InstallId = Json.OptStr(o, "install_id") ?? throw new MalformedMetadataException("install_id is required"),
        Channel = Json.OptStr(o, "channel"),
        InstalledVersion = Json.OptStr(o, "installed_version"),
        Device = o["device"] is null ? new DeviceDescription() : DeviceDescription.FromJson(Json.Obj(o, "device")),
    };
}
