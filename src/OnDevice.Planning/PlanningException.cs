namespace OnDevice.Planning;

/// <summary>Bad input to the planner (an unknown name, a config missing a field, a nonsensical value); the message says which and why.</summary>
public class PlanningException(string message) : Exception(message);

/// <summary>A name (preset, device) that is not known; the message lists the known names.</summary>
public sealed class UnknownNameException(string kind, string name, IEnumerable<string> known)
    : PlanningException($"unknown {kind} '{name}'; known {kind}s: {string.Join(", ", known)}")
{
    /// <summary>What kind of name it was ("preset", "device").</summary>
    public string Kind { get; } = kind;

    /// <summary>The name that was asked for.</summary>
    public string Name { get; } = name;
}
