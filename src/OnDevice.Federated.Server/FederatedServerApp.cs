using OnDevice.Federated.Server.Api;
using OnDevice.Federated.Server.Storage;

namespace OnDevice.Federated.Server;

/// <summary>Builds the federated server: storage, the round coordinator and the HTTP API.</summary>
public static class FederatedServerApp
{
    /// <summary>A ready-to-run app listening on <paramref name="urls"/>, storing runs in <paramref name="db"/> (sqlite:PATH or postgres:CONNSTR).</summary>
    public static async Task<WebApplication> BuildAsync(string db, string urls)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls(urls);
        builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = 64L * 1024 * 1024);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        var store = RunStore.Open(db);
        await store.MigrateAsync();
        builder.Services.AddSingleton(store);
        builder.Services.AddSingleton<RunCoordinator>();
        var app = builder.Build();
        app.MapRunsApi();
        app.MapRoundsApi();
        app.Lifetime.ApplicationStopping.Register(() => app.Services.GetRequiredService<RunCoordinator>().Dispose());
        return app;
    }
}
