namespace OnDevice.Delivery;

/// <summary>
/// Device classes: the unit in which rollouts are halted and telemetry is compared. A device may name its class
/// (<see cref="DeviceDescription.DeviceClass"/>); otherwise it is derived from RAM: <c>ram&lt;4GB</c>,
/// <c>ram4-8GB</c> or <c>ram&gt;=8GB</c>.
/// </summary>
public static class DeviceClasses
{
    /// <summary>Devices with less than 4 GiB of RAM (or that did not report their RAM).</summary>
    public const string Below4GB = "ram<4GB";
    /// <summary>Devices with 4 GiB up to (not including) 8 GiB.</summary>
    public const string From4To8GB = "ram4-8GB";
    /// <summary>Devices with 8 GiB or more.</summary>
    public const string AtLeast8GB = "ram>=8GB";
    /// <summary>Longest device class name accepted.</summary>
    public const int MaxLength = 64;

    private const long GiB = 1L << 30;

    /// <summary>The device's class: the one it names, else one derived from its RAM.</summary>
    public static string Of(DeviceDescription device)
    {
        ArgumentNullException.ThrowIfNull(device);
        if (!string.IsNullOrWhiteSpace(device.DeviceClass)) return device.DeviceClass;
        return device.RamBytes >= 8 * GiB ? AtLeast8GB : device.RamBytes >= 4 * GiB ? From4To8GB : Below4GB;
    }

    /// <summary>Checks a device class name: 1–64 printable ASCII characters without spaces or commas (null passes).</summary>
    /// <exception cref="MalformedMetadataException">The name is empty, too long or has other characters.</exception>
    public static string? Validate(string? name)
    {
        if (name is null) return null;
        if (name.Length is 0 or > MaxLength || name.Any(c => c <= ' ' || c > '~' || c == ','))
            throw new MalformedMetadataException($"device_class '{name}' must be 1-{MaxLength} printable ASCII characters without spaces or commas");
        return name;
    }
}
