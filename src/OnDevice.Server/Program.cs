using OnDevice.Server;

// Standalone entry (the usual one is `ondevice serve`): --store DIR --keys DIR [--db sqlite:PATH|postgres:CONNSTR] [--urls URL] [--admin-token-file FILE]
var get = (string name) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault();
var options = new ServerOptions
{
    Store = get("--store") ?? throw new ArgumentException("--store DIR is required"),
    Keys = get("--keys") ?? throw new ArgumentException("--keys DIR is required"),
    Db = get("--db"),
    Urls = get("--urls") ?? "http://127.0.0.1:5080",
    AdminTokenFile = get("--admin-token-file"),
    RolloutTick = get("--rollout-tick") is { } tick ? ServerOptions.ParseDuration(tick) : TimeSpan.FromSeconds(30),
};
var app = await ServerApp.BuildAsync(options);
await app.RunAsync();
