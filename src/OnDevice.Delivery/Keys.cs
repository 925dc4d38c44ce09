using System.Security.Cryptography;
using System.Text.Json.Nodes;

namespace OnDevice.Delivery;

/// <summary>A TUF public key: ECDSA over NIST P-256 with SHA-256 (<c>ecdsa-sha2-nistp256</c>), PEM-encoded.</summary>
public sealed class PublicKey
{
    /// <summary>The key type written to metadata.</summary>
    public const string KeyType = "ecdsa";
    /// <summary>The signature scheme written to metadata.</summary>
    public const string Scheme = "ecdsa-sha2-nistp256";

    private readonly ECDsa _ecdsa;

    private PublicKey(string pem, ECDsa ecdsa)
    {
        Pem = pem;
        _ecdsa = ecdsa;
        KeyId = Convert.ToHexStringLower(SHA256.HashData(CanonicalJson.Encode(ToJson())));
    }

    /// <summary>SubjectPublicKeyInfo PEM.</summary>
    public string Pem { get; }

    /// <summary>The key id: SHA-256 of the canonical JSON of the key object (hex).</summary>
    public string KeyId { get; }

    /// <summary>Parses a key from its PEM.</summary>
    /// <exception cref="MalformedMetadataException">Not a P-256 public key.</exception>
    public static PublicKey FromPem(string pem)
    {
        var ecdsa = ECDsa.Create();
        try
        {
            ecdsa.ImportFromPem(pem);
        }
        catch (Exception e) when (e is ArgumentException or CryptographicException)
        {
            ecdsa.Dispose();
            throw new MalformedMetadataException($"not an ECDSA public key PEM: {e.Message}");
        }
        if (ecdsa.KeySize != 256 || ecdsa.ExportParameters(false).Curve.Oid.Value != ECCurve.NamedCurves.nistP256.Oid.Value)
        {
            ecdsa.Dispose();
            throw new MalformedMetadataException("only NIST P-256 keys are accepted");
        }
        return new PublicKey(ecdsa.ExportSubjectPublicKeyInfoPem(), ecdsa);
    }

    /// <summary>Reads a key object of root metadata.</summary>
    public static PublicKey FromJson(JsonNode? node)
    {
        var o = node as JsonObject ?? throw new MalformedMetadataException("key is not an object");
        if (Json.Str(o, "keytype") != KeyType || Json.Str(o, "scheme") != Scheme)
            throw new MalformedMetadataException($"unsupported key type/scheme {o["keytype"]}/{o["scheme"]} (only {KeyType}/{Scheme})");
        var keyval = o["keyval"] as JsonObject ?? throw new MalformedMetadataException("key has no keyval");
        return FromPem(Json.Str(keyval, "public"));
    }

    /// <summary>The key object written to root metadata.</summary>
    public JsonObject ToJson() => new()
    {
        ["keytype"] = KeyType,
        ["scheme"] = Scheme,
        ["keyval"] = new JsonObject { ["public"] = Pem },
    };

    /// <summary>True when <paramref name="signature"/> (DER) signs <paramref name="data"/>.</summary>
    public bool Verify(ReadOnlySpan<byte> data, ReadOnlySpan<byte> signature)
    {
        try
        {
            return _ecdsa.VerifyData(data, signature, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence);
        }
        catch (CryptographicException)
        {
            return false;
        }
    }
}

/// <summary>An ECDSA P-256 private key that signs metadata.</summary>
public sealed class SigningKey : IDisposable
{
    private readonly ECDsa _ecdsa;

    private SigningKey(ECDsa ecdsa)
    {
        _ecdsa = ecdsa;
        Public = PublicKey.FromPem(ecdsa.ExportSubjectPublicKeyInfoPem());
    }

    /// <summary>The public half.</summary>
    public PublicKey Public { get; }

    /// <summary>The key id of the public half.</summary>
    public string KeyId => Public.KeyId;

    /// <summary>A fresh random key.</summary>
    public static SigningKey Generate() => new(ECDsa.Create(ECCurve.NamedCurves.nistP256));

    /// <summary>Reads a PKCS#8 PEM private key.</summary>
    /// <exception cref="MalformedMetadataException">Not a P-256 private key.</exception>
    public static SigningKey FromPem(string pem)
    {
        var ecdsa = ECDsa.Create();
        try
        {
            ecdsa.ImportFromPem(pem);
            _ = ecdsa.ExportParameters(true);
        }
        catch (Exception e) when (e is ArgumentException or CryptographicException)
        {
            ecdsa.Dispose();
            throw new MalformedMetadataException($"not an ECDSA private key PEM: {e.Message}");
        }
        if (ecdsa.KeySize != 256)
        {
            ecdsa.Dispose();
            throw new MalformedMetadataException("only NIST P-256 keys are accepted");
        }
        return new SigningKey(ecdsa);
    }

    /// <summary>PKCS#8 PEM of the private key.</summary>
    public string ExportPem() => _ecdsa.ExportPkcs8PrivateKeyPem();

    /// <summary>DER ECDSA signature of SHA-256(<paramref name="data"/>).</summary>
    public byte[] Sign(ReadOnlySpan<byte> data) => _ecdsa.SignData(data, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence);

    /// <inheritdoc/>
    public void Dispose() => _ecdsa.Dispose();
}
