using OnDevice.Federated.Server;

// Federated-learning coordinator: --db sqlite:PATH|postgres:CONNSTR (default sqlite:federated.db) --urls URL
var get = (string name) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault();
var app = await FederatedServerApp.BuildAsync(get("--db") ?? "sqlite:federated.db", get("--urls") ?? "http://127.0.0.1:5090");
await app.RunAsync();
