namespace OnDevice.Delivery;

/// <summary>Base of every rejection by the trust state machine or the target verifier.</summary>
public abstract class TrustException(string message) : Exception(message);

/// <summary>Metadata that is not valid JSON, or lacks a required field, or has the wrong type.</summary>
public sealed class MalformedMetadataException(string message) : TrustException(message);

/// <summary>Metadata larger than its named size limit (read stopped at the limit).</summary>
public sealed class MetadataTooLargeException(string role, long limit)
    : TrustException($"{role} metadata is larger than {limit} bytes (limit {SizeLimits.NameOf(role)})")
{
    /// <summary>The role whose metadata was too large.</summary>
    public string Role { get; } = role;
    /// <summary>The limit in bytes.</summary>
    public long Limit { get; } = limit;
}

/// <summary>Fewer distinct valid signatures than the role's threshold: unsigned, badly signed, or a key counted twice.</summary>
public sealed class SignatureThresholdException(string role, int valid, int threshold, IReadOnlyList<string> problems)
    : TrustException($"{role} metadata has {valid} valid signature(s) from distinct authorized keys, threshold is {threshold}" +
                     (problems.Count > 0 ? $" ({string.Join("; ", problems)})" : ""))
{
    /// <summary>The role being verified.</summary>
    public string Role { get; } = role;
    /// <summary>Distinct authorized keys whose signature verified.</summary>
    public int Valid { get; } = valid;
    /// <summary>Required count.</summary>
    public int Threshold { get; } = threshold;
    /// <summary>What was wrong with the signatures that did not count.</summary>
    public IReadOnlyList<string> Problems { get; } = problems;
}

/// <summary>Metadata whose expiry is at or before the reference time fixed at the start of the update (freeze attack).</summary>
public sealed class ExpiredMetadataException(string role, DateTimeOffset expires, DateTimeOffset referenceTime)
    : TrustException($"{role} metadata expired at {expires:u} (update started {referenceTime:u})")
{
    /// <summary>The role.</summary>
    public string Role { get; } = role;
    /// <summary>Its expiry.</summary>
    public DateTimeOffset Expires { get; } = expires;
}

/// <summary>A version lower than already trusted (rollback), or a root that does not follow the trusted one.</summary>
public sealed class RollbackException(string role, long trusted, long offered)
    : TrustException($"{role} version {offered} is lower than the trusted version {trusted} (rollback)")
{
    /// <summary>The role.</summary>
    public string Role { get; } = role;
    /// <summary>The trusted version.</summary>
    public long TrustedVersion { get; } = trusted;
    /// <summary>The offered version.</summary>
    public long OfferedVersion { get; } = offered;
}

/// <summary>A root whose version is not exactly the trusted version plus one.</summary>
public sealed class RootVersionException(long expected, long offered)
    : TrustException($"root version {offered} offered where version {expected} was expected");

/// <summary>Metadata that does not match what the referring role says (mix-and-match): version, length or hash.</summary>
public sealed class MixAndMatchException(string message) : TrustException(message);

/// <summary>A targets file that the trusted snapshot does not list, or a call out of order.</summary>
public sealed class TrustStateException(string message) : TrustException(message);

/// <summary>A target whose bytes differ from its trusted description.</summary>
public abstract class TargetMismatchException(string message) : TrustException(message);

/// <summary>A target longer or shorter than declared; reading stops right after the declared length.</summary>
public sealed class TargetLengthException(string path, long declared, long seen, bool tooLong)
    : TargetMismatchException(tooLong
        ? $"target {path} is longer than its declared {declared} bytes (stopped reading)"
        : $"target {path} has {seen} bytes, declared {declared}")
{
    /// <summary>True when more bytes than declared arrived.</summary>
    public bool TooLong { get; } = tooLong;
}

/// <summary>A target whose SHA-256 differs from the trusted one.</summary>
public sealed class TargetHashException(string path, string expected, string actual)
    : TargetMismatchException($"target {path} has SHA-256 {actual}, expected {expected}");
