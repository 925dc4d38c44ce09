using System.Security.Cryptography;
using System.Text;
using OnDevice.Server.Storage;

namespace OnDevice.Server;

/// <summary>API roles, each including the ones below it.</summary>
public enum ApiRole
{
    /// <summary>Read releases and the audit log.</summary>
    Reader = 1,
    /// <summary>Upload blobs and publish signed releases.</summary>
    Publisher = 2,
    /// <summary>Manage tokens and roots (and, later, rollouts).</summary>
    Operator = 3,
}

/// <summary>Bearer-token authorization for management endpoints; tokens are stored as SHA-256 hashes only.</summary>
public static class TokenAuth
{
    /// <summary>HttpContext item holding the caller's name.</summary>
    public const string ActorItem = "ondevice.actor";

    /// <summary>SHA-256 hex of a token.</summary>
    public static string Hash(string token) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(token)));

    /// <summary>A fresh random token (256 bits, URL-safe).</summary>
    public static string NewToken() => "odt_" + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    /// <summary>Parses a role name.</summary>
    public static ApiRole? ParseRole(string? s) => s?.ToLowerInvariant() switch
    {
        "reader" => ApiRole.Reader,
        "publisher" => ApiRole.Publisher,
        "operator" => ApiRole.Operator,
        _ => null,
    };

    /// <summary>Requires a token with at least <paramref name="role"/> on the endpoints of <paramref name="builder"/>.</summary>
    public static TBuilder RequireRole<TBuilder>(this TBuilder builder, ApiRole role) where TBuilder : IEndpointConventionBuilder =>
        builder.AddEndpointFilter(async (ctx, next) =>
        {
            var http = ctx.HttpContext;
            var header = http.Request.Headers.Authorization.ToString();
            if (!header.StartsWith("Bearer ", StringComparison.Ordinal))
                return TypedResults.Problem("a bearer token is required", statusCode: StatusCodes.Status401Unauthorized);
            var store = http.RequestServices.GetRequiredService<IDeliveryStore>();
            var row = await store.FindTokenAsync(Hash(header["Bearer ".Length..].Trim()), http.RequestAborted);
            if (row is null) return TypedResults.Problem("unknown token", statusCode: StatusCodes.Status401Unauthorized);
            if (ParseRole(row.Role) is not { } have || have < role)
                return TypedResults.Problem($"role {row.Role} may not do this (needs {role.ToString().ToLowerInvariant()})", statusCode: StatusCodes.Status403Forbidden);
            http.Items[ActorItem] = $"{row.Name} ({row.Role})";
            return await next(ctx);
        });

    /// <summary>The authorized caller's name.</summary>
    public static string Actor(this HttpContext http) => http.Items[ActorItem] as string ?? "anonymous";
}
