using System.CommandLine;
using OnDevice.Server;

namespace OnDevice.Cli.Verbs;

/// <summary><c>ondevice serve</c>: the model delivery server.</summary>
public static class ServeVerb
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var store = new Option<string>("--store") { Description = "Store directory (content-addressed blobs; the SQLite database by default)", Required = true };
        var keys = new Option<string>("--keys") { Description = "Keys directory from 'ondevice keys init' (online/ snapshot and timestamp keys; root.json seeds a new database)", Required = true };
        var db = new Option<string?>("--db") { Description = "sqlite:PATH (default STORE/delivery.db) or postgres:CONNECTION-STRING" };
        var urls = new Option<string>("--urls") { Description = "Listen URLs", DefaultValueFactory = _ => "http://127.0.0.1:5080" };
        var tokenFile = new Option<string?>("--admin-token-file") { Description = "Operator token file: created with a new token if missing, registered on start" };
        var tsLife = new Option<string>("--timestamp-lifetime") { Description = "Lifetime of each timestamp (e.g. 1d, 2h, 30s)", DefaultValueFactory = _ => "1d" };
        var snapLife = new Option<string>("--snapshot-lifetime") { Description = "Lifetime of each snapshot", DefaultValueFactory = _ => "7d" };
        var tsCache = new Option<string>("--timestamp-cache") { Description = "How long the current timestamp is served from memory before asking the database again (0 = every request)", DefaultValueFactory = _ => "1s" };
        var rolloutTick = new Option<string>("--rollout-tick") { Description = "How often the rollout engine checks schedules and health (e.g. 30s, 1s)", DefaultValueFactory = _ => "30s" };
        var telemetryRate = new Option<int>("--telemetry-rate") { Description = "Telemetry batches accepted per install id per minute", DefaultValueFactory = _ => new ServerOptions { Store = "", Keys = "" }.TelemetryBatchesPerMinute };
        var guardAlpha = new Option<double>("--guard-alpha") { Description = "Significance level of guard decisions (fail and pass, one-sided)", DefaultValueFactory = _ => OnDevice.Delivery.Guards.GuardOptions.Default.Alpha };
        var guardMinReports = new Option<long>("--guard-min-reports") { Description = "Fewest device reports per version and device class before a guard decides", DefaultValueFactory = _ => OnDevice.Delivery.Guards.GuardOptions.Default.MinReports };
        var guardMinSamples = new Option<long>("--guard-min-samples") { Description = "Fewest inferences behind a latency quantile (p99 also needs 10/(1-0.99) = 1000)", DefaultValueFactory = _ => OnDevice.Delivery.Guards.GuardOptions.Default.MinLatencySamples };
        var guardMinTrials = new Option<long>("--guard-min-trials") { Description = "Fewest trials (operations, loads, thermal samples) behind a rate", DefaultValueFactory = _ => OnDevice.Delivery.Guards.GuardOptions.Default.MinRateTrials };
        var cmd = new Command("serve", "Run the model delivery server: signed metadata, content-addressed blobs with ranges, publish/list/resolve/audit APIs")
        {
            store, keys, db, urls, tokenFile, tsLife, snapLife, tsCache,
            rolloutTick,
            telemetryRate, guardAlpha, guardMinReports, guardMinSamples, guardMinTrials,
        };
        cmd.SetAction(r =>
        {
            ServerOptions options;
            try
            {
                options = new ServerOptions
                {
                    Store = r.GetValue(store)!,
                    Keys = r.GetValue(keys)!,
                    Db = r.GetValue(db),
                    Urls = r.GetValue(urls)!,
                    AdminTokenFile = r.GetValue(tokenFile),
                    TimestampLifetime = ServerOptions.ParseDuration(r.GetValue(tsLife)!),
                    SnapshotLifetime = ServerOptions.ParseDuration(r.GetValue(snapLife)!),
                    TimestampCache = r.GetValue(tsCache) is "0" or "0s" ? TimeSpan.Zero : ServerOptions.ParseDuration(r.GetValue(tsCache)!),
                    RolloutTick = ServerOptions.ParseDuration(r.GetValue(rolloutTick)!),
                    TelemetryBatchesPerMinute = r.GetValue(telemetryRate) is var rate and >= 1 ? rate : throw new FormatException("--telemetry-rate must be at least 1"),
                    Guards = GuardOptions(r.GetValue(guardAlpha), r.GetValue(guardMinReports), r.GetValue(guardMinSamples), r.GetValue(guardMinTrials)),
                };
            }
            catch (FormatException e) { throw new CliException(e.Message); }
            if (!Directory.Exists(options.Keys)) throw new CliException($"keys directory not found: {options.Keys}");
            try
            {
                var app = ServerApp.BuildAsync(options).GetAwaiter().GetResult();
                var description = app.Services.GetService(typeof(OnDevice.Server.Storage.IDeliveryStore)) is OnDevice.Server.Storage.IDeliveryStore s ? s.Description : "?";
                Console.Error.WriteLine($"ondevice serve: store {Path.GetFullPath(options.Store)}, database {description}, listening on {options.Urls}");
                app.RunAsync().GetAwaiter().GetResult();
            }
            catch (Exception e) when (e is ArgumentException or RepositoryException or Delivery.TrustException)
            {
                throw new CliException(e.Message);
            }
            catch (System.Data.Common.DbException e)
            {
                throw new CliException($"database {options.Db ?? "sqlite"}: {e.Message}");
            }
            return 0;
        });
        return cmd;
    }

    /// <summary>Guard settings from the flags; bad values become a <see cref="FormatException"/> (a CLI error).</summary>
    private static OnDevice.Delivery.Guards.GuardOptions GuardOptions(double alpha, long minReports, long minSamples, long minTrials)
    {
        try
        {
            return (OnDevice.Delivery.Guards.GuardOptions.Default with { Alpha = alpha, MinReports = minReports, MinLatencySamples = minSamples, MinRateTrials = minTrials }).Validate();
        }
        catch (ArgumentException e) { throw new FormatException("guard settings: " + e.Message); }
    }
}
