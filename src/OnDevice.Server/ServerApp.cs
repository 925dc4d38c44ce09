using Microsoft.AspNetCore.Diagnostics;
using OnDevice.Delivery;
using Microsoft.Extensions.DependencyInjection.Extensions;
using OnDevice.Server.Api;
using OnDevice.Server.Dashboard;
using OnDevice.Server.Rollouts;
using OnDevice.Server.Storage;

namespace OnDevice.Server;

/// <summary>Builds and runs the delivery server.</summary>
public static class ServerApp
{
    /// <summary>Opens the store named by <c>--db</c> (default: SQLite in the store directory).</summary>
    public static IDeliveryStore OpenStore(ServerOptions options)
    {
        var db = options.Db ?? "sqlite:" + Path.Combine(options.Store, "delivery.db");
        if (db.StartsWith("sqlite:", StringComparison.Ordinal)) return new SqliteDeliveryStore(db["sqlite:".Length..]);
        if (db.StartsWith("postgres:", StringComparison.Ordinal)) return new PostgresDeliveryStore(db["postgres:".Length..]);
        throw new ArgumentException($"--db must be sqlite:PATH or postgres:CONNECTION-STRING, got '{db}'");
    }

    /// <summary>Loads the single online key of a role from KEYS/online/ROLE-1.pem.</summary>
    public static SigningKey LoadOnlineKey(string keysDir, string role)
    {
        var files = Directory.Exists(Path.Combine(keysDir, "online")) ? Directory.GetFiles(Path.Combine(keysDir, "online"), $"{role}-*.pem") : [];
        if (files.Length != 1) throw new ArgumentException($"expected exactly one {role} key in {Path.Combine(keysDir, "online")} (from 'ondevice keys init'), found {files.Length}");
        return SigningKey.FromPem(File.ReadAllText(files[0]));
    }

    /// <summary>Builds the application: services, store initialization, endpoints.</summary>
    public static async Task<WebApplication> BuildAsync(ServerOptions options, string[]? args = null)
    {
        var seedRoot = Path.Combine(options.Keys, "root.json");
        if (!File.Exists(seedRoot)) throw new ArgumentException($"no root.json in {options.Keys} (create keys with 'ondevice keys init')");
        var store = OpenStore(options);
        var blobs = new BlobStore(options.Store);
        var repo = new DeliveryRepository(store, blobs, LoadOnlineKey(options.Keys, Roles.Snapshot), LoadOnlineKey(options.Keys, Roles.Timestamp), options, TimeProvider.System);
        await repo.InitializeAsync(await File.ReadAllBytesAsync(seedRoot));
        if (options.AdminTokenFile is { } tokenFile) await EnsureAdminTokenAsync(repo, tokenFile);

        var builder = WebApplication.CreateSlimBuilder(args ?? []);
        builder.WebHost.UseUrls(options.Urls);
        builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = 64L << 20);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Logging.AddFilter("Microsoft.Hosting.Lifetime", LogLevel.Information);
        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton(store);
        builder.Services.AddSingleton(blobs);
        builder.Services.AddSingleton(repo);
        builder.Services.AddSingleton<Deltas.DeltaCache>();
        builder.Services.AddHostedService<TimestampRefresher>();
        builder.Services.TryAddSingleton(TimeProvider.System);
        builder.Services.TryAddSingleton<IRolloutHealth, NoTelemetryHealth>();
        builder.Services.AddSingleton<RolloutService>();
        builder.Services.AddHostedService<RolloutEngine>();
        builder.Services.AddSingleton<OnDevice.Server.Telemetry.TelemetryRateLimiter>();
        builder.Services.AddSingleton<OnDevice.Server.Rollouts.IRolloutHealth, OnDevice.Server.Rollouts.TelemetryHealth>();
        builder.Services.AddProblemDetails();

        var app = builder.Build();
        app.UseExceptionHandler(handler => handler.Run(async ctx =>
        {
            var error = ctx.Features.Get<IExceptionHandlerFeature>()?.Error;
            var (status, detail) = error switch
            {
                RepositoryException r => (r.Status, r.Message),
                BadHttpRequestException b => (b.StatusCode, b.Message),
                _ => (StatusCodes.Status500InternalServerError, "internal server error"),
            };
            await TypedResults.Problem(detail, statusCode: status).ExecuteAsync(ctx);
        }));
        app.MapMetadataApi();
        app.MapBlobsApi();
        app.MapResolveApi();
        app.MapReleasesApi();
        app.MapAuditApi();
        app.MapAdminApi();
        app.MapDashboard();
        app.MapRolloutsApi();
        app.MapAssignApi();
        app.MapTelemetryApi();
        app.MapDeltasApi();
        return app;
    }

    private static async Task EnsureAdminTokenAsync(DeliveryRepository repo, string file)
    {
        string token;
        if (File.Exists(file)) token = (await File.ReadAllTextAsync(file)).Trim();
        else
        {
            token = TokenAuth.NewToken();
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
            if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            await using var fs = new FileStream(file, options);
            await fs.WriteAsync(System.Text.Encoding.UTF8.GetBytes(token + "\n"));
        }
        if (token.Length < 16) throw new ArgumentException($"the admin token in {file} is shorter than 16 characters");
        if (await repo.Store.FindTokenAsync(TokenAuth.Hash(token)) is null) await repo.CreateTokenAsync(token, "admin", "operator", "server");
    }
}

/// <summary>Keeps the timestamp (and snapshot) fresh: checks every minute or every tenth of the timestamp lifetime.</summary>
public sealed class TimestampRefresher(DeliveryRepository repo, ServerOptions options, ILogger<TimestampRefresher> log) : BackgroundService
{
    /// <inheritdoc/>
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var period = TimeSpan.FromTicks(Math.Clamp(options.TimestampLifetime.Ticks / 10, TimeSpan.FromSeconds(1).Ticks, TimeSpan.FromMinutes(1).Ticks));
        using var timer = new PeriodicTimer(period);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try { await repo.RefreshAsync(stoppingToken); }
            catch (Exception e) when (e is not OperationCanceledException) { log.LogWarning(e, "timestamp refresh failed"); }
        }
    }
}
