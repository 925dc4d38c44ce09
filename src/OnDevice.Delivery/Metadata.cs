using System.Security.Cryptography;
using System.Text.Json.Nodes;

namespace OnDevice.Delivery;

/// <summary>One signature of an envelope: key id and hex DER ECDSA signature over the canonical <c>signed</c> object.</summary>
public sealed record Signature(string KeyId, string Sig);

/// <summary>A metadata file as sent on the wire: <c>{"signed": {...}, "signatures": [...]}</c>.</summary>
public sealed class Envelope
{
    private Envelope(JsonObject signed, IReadOnlyList<Signature> signatures)
    {
        Signed = signed;
        Signatures = signatures;
        SignedBytes = CanonicalJson.Encode(signed);
    }

    /// <summary>The signed object.</summary>
    public JsonObject Signed { get; }

    /// <summary>The signatures.</summary>
    public IReadOnlyList<Signature> Signatures { get; }

    /// <summary>Canonical bytes of <see cref="Signed"/> (what the signatures cover).</summary>
    public byte[] SignedBytes { get; }

    /// <summary>Parses an envelope.</summary>
    /// <exception cref="MalformedMetadataException">Not an envelope.</exception>
    public static Envelope Parse(ReadOnlySpan<byte> bytes)
    {
        var root = CanonicalJson.Parse(bytes) as JsonObject ?? throw new MalformedMetadataException("metadata is not a JSON object");
        var signed = Json.Obj(root, "signed");
        var sigs = new List<Signature>();
        foreach (var n in Json.Arr(root, "signatures"))
        {
            var s = n as JsonObject ?? throw new MalformedMetadataException("signature is not an object");
            sigs.Add(new Signature(Json.Str(s, "keyid"), Json.Str(s, "sig")));
        }
        root.Remove("signed");
        return new Envelope(signed, sigs);
    }

    /// <summary>
    /// Signs the canonical form of <paramref name="signed"/> with each key and returns the envelope as ordinary JSON
    /// (canonical JSON keeps control characters raw, so it is the signing form, not the wire form).
    /// </summary>
    public static byte[] Create(JsonObject signed, IEnumerable<SigningKey> keys)
    {
        var payload = CanonicalJson.Encode(signed);
        var sigs = new JsonArray();
        foreach (var k in keys)
            sigs.Add(new JsonObject { ["keyid"] = k.KeyId, ["sig"] = Convert.ToHexStringLower(k.Sign(payload)) });
        return System.Text.Encoding.UTF8.GetBytes(new JsonObject { ["signatures"] = sigs, ["signed"] = signed.DeepClone() }.ToJsonString());
    }

    /// <summary>
    /// Checks that at least the threshold of <paramref name="role"/>'s keys in <paramref name="root"/> signed,
    /// each key counted once.
    /// </summary>
    /// <exception cref="SignatureThresholdException">Too few valid signatures.</exception>
    public void VerifyThreshold(RootMetadata root, string role)
    {
        var r = root.GetRole(role);
        var counted = new HashSet<string>(StringComparer.Ordinal);
        var problems = new List<string>();
        foreach (var s in Signatures)
        {
            if (!r.KeyIds.Contains(s.KeyId)) { problems.Add($"key {Short(s.KeyId)} is not a {role} key"); continue; }
            if (counted.Contains(s.KeyId)) { problems.Add($"key {Short(s.KeyId)} signed more than once (counted once)"); continue; }
            byte[] sig;
            try { sig = Convert.FromHexString(s.Sig); }
            catch (FormatException) { problems.Add($"signature of key {Short(s.KeyId)} is not hex"); continue; }
            if (!root.Keys.TryGetValue(s.KeyId, out var key) || !key.Verify(SignedBytes, sig))
            {
                problems.Add($"signature of key {Short(s.KeyId)} does not verify");
                continue;
            }
            counted.Add(s.KeyId);
        }
        if (Signatures.Count == 0) problems.Add("unsigned");
        if (counted.Count < r.Threshold) throw new SignatureThresholdException(role, counted.Count, r.Threshold, problems);
    }

    private static string Short(string keyId) => keyId.Length > 12 ? keyId[..12] : keyId;
}

/// <summary>Fields common to every role's signed metadata.</summary>
public abstract class SignedMetadata
{
    /// <summary>The TUF specification version written.</summary>
    public const string SpecVersionWritten = "1.0.31";

    /// <summary>Role type (<c>_type</c>).</summary>
    public abstract string Type { get; }

    /// <summary>Monotonic version.</summary>
    public long Version { get; init; } = 1;

    /// <summary>Expiry; clients reject metadata whose expiry is not after the update's reference time.</summary>
    public DateTimeOffset Expires { get; init; }

    /// <summary>The spec version read or written.</summary>
    public string SpecVersion { get; init; } = SpecVersionWritten;

    /// <summary>True when expired at <paramref name="referenceTime"/>.</summary>
    public bool IsExpired(DateTimeOffset referenceTime) => Expires <= referenceTime;

    /// <summary>The signed object.</summary>
    public JsonObject ToJson()
    {
        var o = new JsonObject
        {
            ["_type"] = Type,
            ["spec_version"] = SpecVersion,
            ["version"] = Version,
            ["expires"] = Json.FormatTime(Expires),
        };
        WriteBody(o);
        return o;
    }

    /// <summary>Signs and serializes (envelope bytes).</summary>
    public byte[] Sign(params IEnumerable<SigningKey> keys) => Envelope.Create(ToJson(), keys);

    /// <summary>Writes role-specific fields.</summary>
    protected abstract void WriteBody(JsonObject o);

    /// <summary>Reads the common header and checks the type.</summary>
    protected static (long Version, DateTimeOffset Expires, string Spec) ReadHeader(JsonObject o, string type)
    {
        var t = Json.Str(o, "_type");
        if (t != type) throw new MalformedMetadataException($"expected {type} metadata, got _type '{t}'");
        var spec = Json.Str(o, "spec_version");
        if (!spec.StartsWith("1.", StringComparison.Ordinal)) throw new MalformedMetadataException($"unsupported spec_version {spec}");
        var v = Json.Long(o, "version");
        if (v < 1) throw new MalformedMetadataException($"version must be at least 1, got {v}");
        return (v, Json.Time(o, "expires"), spec);
    }
}

/// <summary>Keys and threshold of one role.</summary>
public sealed record RoleKeys(IReadOnlyList<string> KeyIds, int Threshold);

/// <summary>Root metadata: the keys of every role and how many must sign.</summary>
public sealed class RootMetadata : SignedMetadata
{
    /// <inheritdoc/>
    public override string Type => Roles.Root;

    /// <summary>Whether snapshot and targets files are fetched by version (<c>N.snapshot.json</c>).</summary>
    public bool ConsistentSnapshot { get; init; } = true;

    /// <summary>Keys by key id.</summary>
    public IReadOnlyDictionary<string, PublicKey> Keys { get; init; } = new Dictionary<string, PublicKey>();

    /// <summary>Role name → key ids and threshold (all four roles present).</summary>
    public IReadOnlyDictionary<string, RoleKeys> RoleKeys { get; init; } = new Dictionary<string, RoleKeys>();

    /// <summary>The keys of a role.</summary>
    public RoleKeys GetRole(string role) =>
        RoleKeys.TryGetValue(role, out var r) ? r : throw new MalformedMetadataException($"root has no role '{role}'");

    /// <summary>Builds root metadata from role → (keys, threshold).</summary>
    public static RootMetadata Create(long version, DateTimeOffset expires, IReadOnlyDictionary<string, (IReadOnlyList<PublicKey> Keys, int Threshold)> roles)
    {
        var keys = new Dictionary<string, PublicKey>();
        var rk = new Dictionary<string, RoleKeys>();
        foreach (var (name, (ks, threshold)) in roles)
        {
            foreach (var k in ks) keys[k.KeyId] = k;
            rk[name] = new RoleKeys(ks.Select(k => k.KeyId).Distinct().ToList(), threshold);
        }
        var root = new RootMetadata { Version = version, Expires = expires, Keys = keys, RoleKeys = rk };
        root.Validate();
        return root;
    }

    /// <inheritdoc/>
    protected override void WriteBody(JsonObject o)
    {
        o["consistent_snapshot"] = ConsistentSnapshot;
        var keys = new JsonObject();
        foreach (var (id, k) in Keys) keys[id] = k.ToJson();
        o["keys"] = keys;
        var roles = new JsonObject();
        foreach (var (name, r) in RoleKeys) roles[name] = new JsonObject { ["keyids"] = Json.ToArray(r.KeyIds), ["threshold"] = r.Threshold };
        o["roles"] = roles;
    }

    /// <summary>Reads the signed object of root metadata.</summary>
    public static RootMetadata FromJson(JsonObject o)
    {
        var (v, exp, spec) = ReadHeader(o, Roles.Root);
        var keys = new Dictionary<string, PublicKey>();
        foreach (var (id, kn) in Json.Obj(o, "keys"))
        {
            var k = PublicKey.FromJson(kn);
            // A key id must be the hash of its key, so one key cannot be listed twice under two ids to be counted twice.
            if (k.KeyId != id) throw new MalformedMetadataException($"key id {id} does not match its key (expected {k.KeyId})");
            keys[id] = k;
        }
        var roles = new Dictionary<string, RoleKeys>();
        foreach (var (name, rn) in Json.Obj(o, "roles"))
        {
            var r = rn as JsonObject ?? throw new MalformedMetadataException($"role {name} is not an object");
            roles[name] = new RoleKeys(Json.StrList(r, "keyids"), checked((int)Json.Long(r, "threshold")));
        }
        var root = new RootMetadata { Version = v, Expires = exp, SpecVersion = spec, ConsistentSnapshot = Json.Bool(o, "consistent_snapshot"), Keys = keys, RoleKeys = roles };
        root.Validate();
        return root;
    }

    private void Validate()
    {
        foreach (var role in Roles.All)
        {
            var r = GetRole(role);
            if (r.Threshold < 1) throw new MalformedMetadataException($"role {role} threshold must be at least 1, got {r.Threshold}");
            if (r.KeyIds.Distinct().Count() != r.KeyIds.Count) throw new MalformedMetadataException($"role {role} lists a key id twice");
            if (r.KeyIds.Count < r.Threshold) throw new MalformedMetadataException($"role {role} has {r.KeyIds.Count} keys, fewer than its threshold {r.Threshold}");
            foreach (var id in r.KeyIds)
                if (!Keys.ContainsKey(id)) throw new MalformedMetadataException($"role {role} names unknown key {id}");
        }
    }
}

/// <summary>What a referring role says about a metadata file: its version, and optionally its length and SHA-256.</summary>
public sealed record MetaFile(long Version, long? Length = null, string? Sha256 = null)
{
    /// <summary>Describes <paramref name="bytes"/> of version <paramref name="version"/> with length and hash.</summary>
    public static MetaFile Of(long version, ReadOnlySpan<byte> bytes) => new(version, bytes.Length, Convert.ToHexStringLower(SHA256.HashData(bytes)));

    internal JsonObject ToJson()
    {
        var o = new JsonObject { ["version"] = Version };
        if (Length is { } l) o["length"] = l;
        if (Sha256 is { } h) o["hashes"] = new JsonObject { ["sha256"] = h };
        return o;
    }

    internal static MetaFile FromJson(JsonNode? n)
    {
        var o = n as JsonObject ?? throw new MalformedMetadataException("meta entry is not an object");
        var v = Json.Long(o, "version");
        if (v < 1) throw new MalformedMetadataException($"meta version must be at least 1, got {v}");
        var length = Json.OptLong(o, "length");
        if (length is < 0) throw new MalformedMetadataException("meta length is negative");
        string? sha = o["hashes"] is JsonObject h ? Json.Str(h, "sha256").ToLowerInvariant() : null;
        return new MetaFile(v, length, sha);
    }

    /// <summary>Checks <paramref name="bytes"/> against the length and hash, if given.</summary>
    /// <exception cref="MixAndMatchException">They differ.</exception>
    public void Check(string name, ReadOnlySpan<byte> bytes)
    {
        if (Length is { } l && l != bytes.Length) throw new MixAndMatchException($"{name} has {bytes.Length} bytes, its referrer says {l}");
        if (Sha256 is { } h)
        {
            var actual = Convert.ToHexStringLower(SHA256.HashData(bytes));
            if (actual != h) throw new MixAndMatchException($"{name} has SHA-256 {actual}, its referrer says {h}");
        }
    }
}

/// <summary>Timestamp metadata: which snapshot is current.</summary>
public sealed class TimestampMetadata : SignedMetadata
{
    /// <summary>The metadata file name of the snapshot in <c>meta</c>.</summary>
    public const string SnapshotFile = "snapshot.json";

    /// <inheritdoc/>
    public override string Type => Roles.Timestamp;

    /// <summary>The current snapshot.</summary>
    public required MetaFile Snapshot { get; init; }

    /// <inheritdoc/>
    protected override void WriteBody(JsonObject o) => o["meta"] = new JsonObject { [SnapshotFile] = Snapshot.ToJson() };

    /// <summary>Reads the signed object.</summary>
    public static TimestampMetadata FromJson(JsonObject o)
    {
        var (v, exp, spec) = ReadHeader(o, Roles.Timestamp);
        var meta = Json.Obj(o, "meta");
        if (meta.Count != 1 || meta[SnapshotFile] is null) throw new MalformedMetadataException("timestamp meta must list exactly snapshot.json");
        return new TimestampMetadata { Version = v, Expires = exp, SpecVersion = spec, Snapshot = MetaFile.FromJson(meta[SnapshotFile]) };
    }
}

/// <summary>Snapshot metadata: the version of every targets (release) metadata file.</summary>
public sealed class SnapshotMetadata : SignedMetadata
{
    /// <inheritdoc/>
    public override string Type => Roles.Snapshot;

    /// <summary>File name (e.g. <c>releases/recognizer/1.2.0.json</c>) → version, length, hash.</summary>
    public IReadOnlyDictionary<string, MetaFile> Meta { get; init; } = new Dictionary<string, MetaFile>();

    /// <inheritdoc/>
    protected override void WriteBody(JsonObject o)
    {
        var meta = new JsonObject();
        foreach (var (name, m) in Meta) meta[name] = m.ToJson();
        o["meta"] = meta;
    }

    /// <summary>Reads the signed object.</summary>
    public static SnapshotMetadata FromJson(JsonObject o)
    {
        var (v, exp, spec) = ReadHeader(o, Roles.Snapshot);
        var meta = new Dictionary<string, MetaFile>(StringComparer.Ordinal);
        foreach (var (name, n) in Json.Obj(o, "meta"))
        {
            TargetsNames.Validate(name);
            meta[name] = MetaFile.FromJson(n);
        }
        return new SnapshotMetadata { Version = v, Expires = exp, SpecVersion = spec, Meta = meta };
    }
}

/// <summary>One target file: length, SHA-256, and the model fields in <c>custom</c>.</summary>
public sealed record TargetFile(long Length, string Sha256, JsonObject? Custom)
{
    /// <summary>The model fields of <see cref="Custom"/>, or null when the target is not a model file.</summary>
    public ModelTarget? Model => Custom is null ? null : ModelTarget.FromJson(Custom);

    internal JsonObject ToJson()
    {
        var o = new JsonObject { ["length"] = Length, ["hashes"] = new JsonObject { ["sha256"] = Sha256 } };
        if (Custom is not null) o["custom"] = Custom.DeepClone();
        return o;
    }

    internal static TargetFile FromJson(JsonNode? n)
    {
        var o = n as JsonObject ?? throw new MalformedMetadataException("target is not an object");
        var length = Json.Long(o, "length");
        if (length < 0) throw new MalformedMetadataException("target length is negative");
        var sha = Json.Str(Json.Obj(o, "hashes"), "sha256").ToLowerInvariant();
        if (sha.Length != 64 || !sha.All(char.IsAsciiHexDigitLower)) throw new MalformedMetadataException($"target sha256 '{sha}' is not 64 hex digits");
        var custom = o["custom"] as JsonObject;
        var t = new TargetFile(length, sha, custom is null ? null : (JsonObject)custom.DeepClone());
        _ = t.Model; // validate custom fields now
        return t;
    }
}

/// <summary>Targets metadata (one release): path → target file. Signed by the targets role.</summary>
public sealed class TargetsMetadata : SignedMetadata
{
    /// <inheritdoc/>
    public override string Type => Roles.Targets;

    /// <summary>Target path (e.g. <c>recognizer/1.2.0/int8/model.onnx</c>) → file.</summary>
    public IReadOnlyDictionary<string, TargetFile> Targets { get; init; } = new Dictionary<string, TargetFile>();

    /// <inheritdoc/>
    protected override void WriteBody(JsonObject o)
    {
        var t = new JsonObject();
        foreach (var (path, f) in Targets) t[path] = f.ToJson();
        o["targets"] = t;
    }

    /// <summary>Reads the signed object.</summary>
    public static TargetsMetadata FromJson(JsonObject o)
    {
        var (v, exp, spec) = ReadHeader(o, Roles.Targets);
        var targets = new Dictionary<string, TargetFile>(StringComparer.Ordinal);
        foreach (var (path, n) in Json.Obj(o, "targets"))
        {
            TargetsNames.ValidatePath(path);
            targets[path] = TargetFile.FromJson(n);
        }
        return new TargetsMetadata { Version = v, Expires = exp, SpecVersion = spec, Targets = targets };
    }
}

/// <summary>Names of targets metadata files and target paths.</summary>
public static class TargetsNames
{
    /// <summary>Prefix of release metadata names in the snapshot.</summary>
    public const string ReleasePrefix = "releases/";

    /// <summary>The metadata name of release <paramref name="version"/> of <paramref name="model"/>.</summary>
    public static string Release(string model, string version) => $"{ReleasePrefix}{model}/{version}.json";

    /// <summary>The model a release metadata name belongs to, or null when the name is not a release.</summary>
    public static string? ModelOf(string name)
    {
        if (!name.StartsWith(ReleasePrefix, StringComparison.Ordinal)) return null;
        var rest = name[ReleasePrefix.Length..];
        int slash = rest.IndexOf('/');
        return slash > 0 ? rest[..slash] : null;
    }

    /// <summary>Checks a metadata file name (no traversal, plain characters).</summary>
    public static void Validate(string name)
    {
        if (!name.EndsWith(".json", StringComparison.Ordinal)) throw new MalformedMetadataException($"metadata name '{name}' must end in .json");
        ValidatePath(name);
    }

    /// <summary>Checks a target path or name: relative, no <c>..</c>, letters, digits and <c>._-+/</c> only.</summary>
    public static void ValidatePath(string path)
    {
        if (path.Length is 0 or > 512 || path.StartsWith('/') || path.Split('/').Any(s => s is "" or "." or ".."))
            throw new MalformedMetadataException($"path '{path}' is not a plain relative path");
        foreach (var c in path)
            if (!(char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-' or '+' or '/'))
                throw new MalformedMetadataException($"path '{path}' has character '{c}' (allowed: letters, digits, ._-+/)");
    }

    /// <summary>Checks a model name, version or variant name (one path segment).</summary>
    public static void ValidateSegment(string what, string s)
    {
        if (s.Length is 0 or > 100 || s is "." or ".." || !s.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-' or '+'))
            throw new MalformedMetadataException($"{what} '{s}' must be 1-100 letters, digits or ._-+");
    }
}

/// <summary>Parses metadata bytes into role objects (no trust decisions).</summary>
public static class MetadataReader
{
    /// <summary>Parses the envelope and the signed object of type <typeparamref name="T"/>.</summary>
    public static (Envelope Envelope, T Signed) Read<T>(ReadOnlySpan<byte> bytes) where T : SignedMetadata
    {
        var env = Envelope.Parse(bytes);
        SignedMetadata s = typeof(T) == typeof(RootMetadata) ? RootMetadata.FromJson(env.Signed)
            : typeof(T) == typeof(TimestampMetadata) ? TimestampMetadata.FromJson(env.Signed)
            : typeof(T) == typeof(SnapshotMetadata) ? SnapshotMetadata.FromJson(env.Signed)
            : typeof(T) == typeof(TargetsMetadata) ? TargetsMetadata.FromJson(env.Signed)
            : throw new ArgumentException($"unknown metadata type {typeof(T).Name}");
        return (env, (T)s);
    }
}
