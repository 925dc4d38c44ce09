using System.CommandLine;
using System.Globalization;
using OnDevice.Federated;
using OnDevice.Federated.Data;
using OnDevice.Federated.Privacy;
using OnDevice.Federated.Remote;
using OnDevice.Federated.Simulation;
using System.Diagnostics;
using System.Net.Http.Json;
using OnDevice.Federated.Training;

namespace OnDevice.Cli.Verbs;

/// <summary><c>ondevice fl</c>: federated learning with secure aggregation and differential privacy.</summary>
public static class FlVerb
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var cmd = new Command("fl", "Federated learning: on-device training of a head, (DP-)FedAvg/FedAdam, secure aggregation");
        cmd.Subcommands.Add(SimulateCommand());
        cmd.Subcommands.Add(ClientCommand());
        return cmd;
    }

    private static (int From, int To) ParseRange(string s)
    {
        var parts = s.Split('-');
        if (parts.Length == 2 && int.TryParse(parts[0], CultureInfo.InvariantCulture, out var a) && int.TryParse(parts[1], CultureInfo.InvariantCulture, out var b) && a >= 1 && b >= a)
            return (a, b);
        throw new CliException($"--devices must look like FROM-TO (1-based), got '{s}'");
    }

    private static Command ClientCommand()
    {
        var server = new Option<string>("--server") { Description = "Federated server URL", Required = true };
        var run = new Option<string>("--run") { Description = "Run id", Required = true };
        var devices = new Option<string>("--devices") { Description = "Device ids this process hosts, FROM-TO (each is one Fashion-MNIST user)", Required = true };
        var users = new Option<int>("--users") { Description = "Users in the non-IID split (same as the orchestrator)", DefaultValueFactory = _ => 100 };
        var perUser = new Option<int>("--examples-per-user") { Description = "Cap on each user's examples", DefaultValueFactory = _ => 0 };
        var budget = new Option<double>("--device-budget") { Description = "Per-device ε budget (0 = no ledger)", DefaultValueFactory = _ => 0 };
        var ledgerDir = new Option<string?>("--ledger-dir") { Description = "Folder keeping each device's ledger file (default: in memory)" };
        var seed = new Option<int>("--seed") { Description = "Seed of the split (same as the orchestrator)", DefaultValueFactory = _ => 1 };
        var data = new Option<string>("--data") { Description = "Folder with the Fashion-MNIST .gz IDX files", DefaultValueFactory = _ => FashionMnist.DebianFolder };
        var cmd = new Command("client", "Run devices that take part in a federated server's run over HTTP (local training, ledger, secure aggregation)")
        {
            server, run, devices, users, perUser, budget, ledgerDir, seed, data,
        };
        cmd.SetAction(r =>
        {
            try
            {
                var (from, to) = ParseRange(r.GetValue(devices)!);
                if (to > r.GetValue(users)) throw new CliException($"--devices {from}-{to} exceeds --users {r.GetValue(users)}");
                var scenario = FashionMnistScenario.Build(r.GetValue(users), r.GetValue(seed), examplesPerUser: r.GetValue(perUser), folder: r.GetValue(data)!, testExamples: 1);
                using var http = new HttpClient { BaseAddress = new Uri(r.GetValue(server)!.TrimEnd('/') + "/"), Timeout = TimeSpan.FromMinutes(2) };
                var tasks = Enumerable.Range(from, to - from + 1).Select(i =>
                {
                    var c = scenario.Clients[i - 1];
                    PrivacyLedger? ledger = null;
                    if (r.GetValue(budget) > 0)
                        ledger = new PrivacyLedger(r.GetValue(budget), 1e-5, r.GetValue(ledgerDir) is { } d ? Path.Combine(Directory.CreateDirectory(d).FullName, $"device-{c.Id}.json") : null);
                    return new FederatedDevice(http, r.GetValue(run)!, c.Id, c.Train, ledger).RunAsync();
                }).ToArray();
                var done = Task.WhenAll(tasks).GetAwaiter().GetResult();
                Cli.WriteJson(new { devices = done.Length, rounds = done.Sum(d => d.Rounds), bytesSent = done.Sum(d => d.BytesSent), withdrawn = done.Count(d => d.Withdrawn) });
                return 0;
            }
            catch (FederatedException e) { throw new CliException(e.Message); }
            catch (HttpRequestException e) { throw new CliException($"federated server: {e.Message}"); }
        });
        return cmd;
    }

    private static int RunAgainstServer(string url, int processes, FashionMnistScenario scenario, RunConfig config, string[] childArgs, bool asJson)
    {
        using var http = new HttpClient { BaseAddress = new Uri(url.TrimEnd('/') + "/"), Timeout = TimeSpan.FromMinutes(2) };
        var resp = http.PostAsJsonAsync("v1/runs", config).GetAwaiter().GetResult();
        if (!resp.IsSuccessStatusCode) throw new CliException($"federated server refused the run: {resp.Content.ReadAsStringAsync().GetAwaiter().GetResult()}");
        var runId = resp.Content.ReadFromJsonAsync<Dictionary<string, string>>().GetAwaiter().GetResult()!["id"];
        int users = scenario.Clients.Count;
        var children = new List<(Process Proc, string Devices, Task<string> Out, Task<string> Err)>();
        var self = Environment.ProcessPath!;
        var dll = typeof(FlVerb).Assembly.Location;
        for (int k = 0; k < processes; k++)
        {
            int from = k * users / processes + 1, to = (k + 1) * users / processes;
            if (to < from) continue;
            var psi = new ProcessStartInfo(self) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            if (Path.GetFileNameWithoutExtension(self) == "dotnet") psi.ArgumentList.Add(dll);
            foreach (var a in new[] { "fl", "client", "--server", url, "--run", runId, "--devices", $"{from}-{to}" }.Concat(childArgs)) psi.ArgumentList.Add(a);
            var proc = Process.Start(psi)!;
            children.Add((proc, $"{from}-{to}", proc.StandardOutput.ReadToEndAsync(), proc.StandardError.ReadToEndAsync()));
        }
        if (!asJson) Console.WriteLine($"run {runId} on {url}: {users} devices in {children.Count} processes");
        var head = new Head(config.Inputs, config.Classes, config.Hidden);
        int shown = 0;
        RunStatus? status = null;
        var rows = new List<object>();
        while (true)
        {
            status = http.GetFromJsonAsync<RunStatus>($"v1/runs/{runId}").GetAwaiter().GetResult()!;
            if (status.Rounds.Count > shown)
            {
                var model = http.GetByteArrayAsync($"v1/runs/{runId}/model").GetAwaiter().GetResult();
                Buffer.BlockCopy(model, 0, head.Parameters, 0, Math.Min(model.Length, head.Parameters.Length * 4));
                double acc = head.Accuracy(scenario.Test);
                foreach (var rr in status.Rounds.Skip(shown))
                {
                    rows.Add(new { rr.Round, rr.CheckedIn, rr.Sampled, rr.Survivors, rr.Updated, rr.Note, rr.Epsilon, rr.BytesIn, rr.Seconds, accuracy = acc });
                    if (!asJson)
                        Console.WriteLine(string.Format(CultureInfo.InvariantCulture, "round {0,3}: checked in {1,4}, sampled {2,4}, in sum {3,4}, accuracy {4:0.0000}, ε {5}, {6} received, {7:0.0} s{8}",
                            rr.Round, rr.CheckedIn, rr.Sampled, rr.Survivors, acc, rr.Epsilon is { } e ? e.ToString("0.###", CultureInfo.InvariantCulture) : "∞",
                            Cli.Bytes(rr.BytesIn), rr.Seconds, rr.Note is null ? "" : "  " + rr.Note));
                }
                shown = status.Rounds.Count;
            }
            if (status.State == "finished" || children.All(c => c.Proc.HasExited)) break;
            Thread.Sleep(500);
        }
        var perProcess = new List<object>();
        foreach (var c in children)
        {
            if (!c.Proc.WaitForExit(TimeSpan.FromMinutes(2))) c.Proc.Kill(true);
            c.Proc.WaitForExit();
            if (c.Proc.ExitCode != 0) Console.Error.WriteLine($"device process exited with {c.Proc.ExitCode}: {c.Err.GetAwaiter().GetResult().Trim()}");
            // each `fl client` prints one JSON object: how many devices it hosted and the rounds they took part in
            int? hosted = null, deviceRounds = null;
            try
            {
                using var doc = System.Text.Json.JsonDocument.Parse(c.Out.GetAwaiter().GetResult());
                hosted = doc.RootElement.GetProperty("devices").GetInt32();
                deviceRounds = doc.RootElement.GetProperty("rounds").GetInt32();
            }
            catch (Exception e) when (e is System.Text.Json.JsonException or KeyNotFoundException or InvalidOperationException) { }
            perProcess.Add(new { pid = c.Proc.Id, devices = c.Devices, exitCode = c.Proc.ExitCode, hosted, deviceRounds });
            c.Proc.Dispose();
        }
        if (asJson) Cli.WriteJson(new { run = runId, state = status.State, epsilon = status.Epsilon, rounds = rows, processes = perProcess });
        return status.State == "finished" ? 0 : 1;
    }

    /// <summary>The summary printed (and emitted as JSON) after a simulation.</summary>
    public sealed record SimulationSummary
    {
        /// <summary>Settings.</summary>
        public required object Settings { get; init; }

        /// <summary>Per-round reports.</summary>
        public required List<RoundReport> Rounds { get; init; }

        /// <summary>Final global test accuracy.</summary>
        public double Accuracy { get; init; }

        /// <summary>User-level ε of the run (null when non-private).</summary>
        public double? Epsilon { get; init; }

        /// <summary>δ.</summary>
        public double Delta { get; init; }

        /// <summary>Noise multiplier used.</summary>
        public double NoiseMultiplier { get; init; }

        /// <summary>Mean accuracy of the global head on users' local test splits.</summary>
        public double? GlobalLocalAccuracy { get; init; }

        /// <summary>Mean accuracy of personalized heads on the same splits.</summary>
        public double? PersonalizedLocalAccuracy { get; init; }

        /// <summary>Devices that withdrew (budget exhausted).</summary>
        public int Withdrawn { get; init; }

        /// <summary>Wall-clock seconds.</summary>
        public double Seconds { get; init; }
    }

    private static Command SimulateCommand()
    {
        var users = new Option<int>("--users") { Description = "Simulated users (Fashion-MNIST training set split non-IID, 2–3 classes each)", DefaultValueFactory = _ => 100 };
        var rounds = new Option<int>("--rounds") { Description = "Federated rounds", DefaultValueFactory = _ => 30 };
        var rate = new Option<double>("--client-rate") { Description = "Poisson client sampling rate per round", DefaultValueFactory = _ => 0.1 };
        var epochs = new Option<double>("--local-epochs") { Description = "Local epochs per round", DefaultValueFactory = _ => 1 };
        var lr = new Option<double>("--lr") { Description = "Local learning rate", DefaultValueFactory = _ => 0.05 };
        var batch = new Option<int>("--batch") { Description = "Local batch size", DefaultValueFactory = _ => 16 };
        var localOpt = new Option<string>("--local-optimizer") { Description = "sgd or adam", DefaultValueFactory = _ => "sgd" };
        var server = new Option<string>("--server") { Description = "Server optimizer: fedavg or fedadam", DefaultValueFactory = _ => "fedavg" };
        var serverLr = new Option<double>("--server-lr") { Description = "Server learning rate", DefaultValueFactory = _ => 1.0 };
        var clip = new Option<double>("--clip") { Description = "User-level L2 clip of each update (0 = none; required with noise or --secagg)", DefaultValueFactory = _ => 0 };
        var noise = new Option<double>("--noise") { Description = "Central noise multiplier z (std z·clip)", DefaultValueFactory = _ => 0 };
        var epsilon = new Option<double?>("--epsilon") { Description = "Target user-level ε: calibrates --noise for the rounds and client rate" };
        var delta = new Option<double>("--delta") { Description = "δ", DefaultValueFactory = _ => 1e-5 };
        var dropout = new Option<double>("--dropout") { Description = "Probability that a sampled client drops out", DefaultValueFactory = _ => 0 };
        var deadline = new Option<double>("--deadline") { Description = "Round deadline in simulated seconds (median device takes 1 s)", DefaultValueFactory = _ => double.PositiveInfinity };
        var secagg = new Option<bool>("--secagg") { Description = "Aggregate with secure aggregation (Bonawitz et al. 2017)" };
        var bits = new Option<int>("--bits") { Description = "Secure aggregation word size k (values mod 2^k)", DefaultValueFactory = _ => 32 };
        var hidden = new Option<int>("--hidden") { Description = "Hidden units of an MLP head (0 = linear)", DefaultValueFactory = _ => 0 };
        var perUser = new Option<int>("--examples-per-user") { Description = "Cap on each user's examples (0 = all of its share)", DefaultValueFactory = _ => 0 };
        var personalize = new Option<double>("--personalize-epochs") { Description = "After training, fine-tune the global head on each user's data and compare on its local test split (0 = skip)", DefaultValueFactory = _ => 0 };
        var budget = new Option<double>("--device-budget") { Description = "Per-device ε budget kept in each device's ledger (0 = no ledger)", DefaultValueFactory = _ => 0 };
        var seed = new Option<int>("--seed") { Description = "Seed for the data split and simulated latencies", DefaultValueFactory = _ => 1 };
        var data = new Option<string>("--data") { Description = "Folder with the Fashion-MNIST .gz IDX files", DefaultValueFactory = _ => FashionMnist.DebianFolder };
        var json = new Option<bool>("--json") { Description = "Print one JSON object" };
        var serverUrl = new Option<string?>("--server-url") { Description = "Run against a federated server (OnDevice.Federated.Server) at this URL, devices as separate processes" };
        var processes = new Option<int>("--processes") { Description = "With --server-url: device processes to start", DefaultValueFactory = _ => 4 };
        var cmd = new Command("simulate", "Simulate federated training of a head on Fashion-MNIST (non-IID users) and report accuracy per round, ε, bytes and time per phase")
        {
            users, rounds, rate, epochs, lr, batch, localOpt, server, serverLr, clip, noise, epsilon, delta, dropout, deadline, secagg, bits, hidden, perUser, personalize, budget, seed, data, json,
            serverUrl, processes,
        };
        cmd.SetAction(r =>
        {
            bool asJson = r.GetValue(json);
            try
            {
                var started = DateTime.UtcNow;
                var folder = r.GetValue(data)!;
                if (!FashionMnist.IsAvailable(folder)) throw new CliException($"Fashion-MNIST not found in {folder} (apt-get install dataset-fashion-mnist, or give --data)");
                double z = r.GetValue(noise);
                if (r.GetValue(epsilon) is { } eps)
                {
                    if (r.GetResult(noise) is { Implicit: false }) throw new CliException("give --noise or --epsilon, not both");
                    z = RdpAccountant.CalibrateNoise(eps, r.GetValue(rate), r.GetValue(rounds), r.GetValue(delta));
                }
                var local = new LocalTrainingOptions
                {
                    Epochs = r.GetValue(epochs),
                    LearningRate = r.GetValue(lr),
                    BatchSize = r.GetValue(batch),
                    Optimizer = r.GetValue(localOpt)!.ToLowerInvariant() switch { "sgd" => OptimizerKind.Sgd, "adam" => OptimizerKind.Adam, var s => throw new CliException($"--local-optimizer must be sgd or adam, got '{s}'") },
                };
                var options = new FederatedOptions
                {
                    Rounds = r.GetValue(rounds),
                    ClientRate = r.GetValue(rate),
                    Local = local,
                    ServerOptimizer = r.GetValue(server)!.ToLowerInvariant() switch { "fedavg" => ServerOptimizerKind.FedAvg, "fedadam" => ServerOptimizerKind.FedAdam, var s => throw new CliException($"--server must be fedavg or fedadam, got '{s}'") },
                    ServerLearningRate = r.GetValue(serverLr),
                    Clip = r.GetValue(clip),
                    NoiseMultiplier = z,
                    Delta = r.GetValue(delta),
                    DropoutRate = r.GetValue(dropout),
                    DeadlineSeconds = r.GetValue(deadline),
                    SecureAggregation = r.GetValue(secagg),
                    SecAggBits = r.GetValue(bits),
                    DeviceEpsilonBudget = r.GetValue(budget),
                    Seed = r.GetValue(seed),
                };
                if (r.GetValue(users) < 2) throw new CliException($"--users must be at least 2, got {r.GetValue(users)}");
                var scenario = Cli.WithStatus(asJson, "loading Fashion-MNIST", () => FashionMnistScenario.Build(r.GetValue(users), r.GetValue(seed),
                    examplesPerUser: r.GetValue(perUser), deviceEpsilonBudget: r.GetValue(budget), delta: r.GetValue(delta), folder: folder));
                if (r.GetValue(serverUrl) is { } url)
                {
                    if (r.GetValue(processes) < 1) throw new CliException("--processes must be at least 1");
                    var rc = new RunConfig
                    {
                        Inputs = scenario.Dimension, Classes = 10, Hidden = r.GetValue(hidden), Rounds = options.Rounds, ClientRate = options.ClientRate,
                        Clip = options.Clip > 0 ? options.Clip : 1.0, NoiseMultiplier = z, Delta = options.Delta, ServerLearningRate = options.ServerLearningRate,
                        Bits = options.SecAggBits, LocalEpochs = local.Epochs, LocalLearningRate = local.LearningRate, LocalBatch = local.BatchSize,
                        PhaseSeconds = double.IsPositiveInfinity(options.DeadlineSeconds) ? 30 : options.DeadlineSeconds,
                        MinDevices = scenario.Clients.Count,
                    };
                    rc.Validate();
                    var childArgs = new List<string> { "--users", r.GetValue(users).ToString(CultureInfo.InvariantCulture), "--seed", r.GetValue(seed).ToString(CultureInfo.InvariantCulture),
                        "--examples-per-user", r.GetValue(perUser).ToString(CultureInfo.InvariantCulture), "--data", folder };
                    if (r.GetValue(budget) > 0) childArgs.AddRange(["--device-budget", r.GetValue(budget).ToString(CultureInfo.InvariantCulture)]);
                    return RunAgainstServer(url, r.GetValue(processes), scenario, rc, childArgs.ToArray(), asJson);
                }
                var head = new Head(scenario.Dimension, 10, r.GetValue(hidden), r.GetValue(seed));
                var sim = new FederatedSimulation(head, scenario.Clients, scenario.Test, options);
                if (!asJson)
                {
                    Console.WriteLine(string.Format(CultureInfo.InvariantCulture, "{0} users, {1} rounds, client rate {2}, {3} head ({4:N0} parameters), {5}{6}{7}",
                        scenario.Clients.Count, options.Rounds, options.ClientRate, head.Hidden == 0 ? "linear" : $"MLP {head.Hidden}", head.Parameters.Length,
                        options.ServerOptimizer, z > 0 ? string.Format(CultureInfo.InvariantCulture, ", DP clip {0} noise {1:0.####}", options.Clip, z) : "", options.SecureAggregation ? ", secure aggregation" : ""));
                    Console.WriteLine("round  sampled  reported  dropped  straggl  accuracy        ε   up/client  train ms  secagg ms  server ms");
                }
                var reports = sim.Run(rep =>
                {
                    if (asJson) return;
                    Console.WriteLine(string.Format(CultureInfo.InvariantCulture, "{0,5}  {1,7}  {2,8}  {3,7}  {4,7}  {5,8:0.0000}  {6,7}  {7,10}  {8,8:0.0}  {9,9:0.0}  {10,9:0.0}{11}",
                        rep.Round, rep.Sampled, rep.Reported, rep.Dropped, rep.Stragglers, rep.Accuracy, double.IsInfinity(rep.Epsilon) ? "∞" : rep.Epsilon.ToString("0.###", CultureInfo.InvariantCulture),
                        Cli.Bytes((long)rep.BytesUpPerClient), rep.TrainMsPerClient, rep.SecAggClientMs, rep.AggregateMs, rep.Note is null ? "" : "  " + rep.Note));
                });
                double? globalLocal = null, personal = null;
                if (r.GetValue(personalize) > 0)
                {
                    var withTest = scenario.Clients.Where(c => c.LocalTest is { Count: > 0 }).ToList();
                    globalLocal = withTest.Average(c => sim.Global.Accuracy(c.LocalTest!));
                    var pOpt = local with { Epochs = r.GetValue(personalize) };
                    personal = withTest.Average(c => FederatedSimulation.Personalize(sim.Global, c, pOpt, (int)c.Id).Accuracy(c.LocalTest!));
                }
                var pe = sim.PopulationEpsilon;
                var summary = new SimulationSummary
                {
                    Settings = new { users = scenario.Clients.Count, options.Rounds, options.ClientRate, localEpochs = local.Epochs, localLr = local.LearningRate, local.BatchSize, options.ServerOptimizer, options.ServerLearningRate, options.Clip, options.SecureAggregation, hidden = head.Hidden, parameters = head.Parameters.Length },
                    Rounds = reports,
                    Accuracy = reports[^1].Accuracy,
                    Epsilon = z > 0 ? pe.Epsilon : null,
                    Delta = options.Delta,
                    NoiseMultiplier = z,
                    GlobalLocalAccuracy = globalLocal,
                    PersonalizedLocalAccuracy = personal,
                    Withdrawn = scenario.Clients.Count(c => c.Withdrawn),
                    Seconds = (DateTime.UtcNow - started).TotalSeconds,
                };
                if (asJson) { Cli.WriteJson(summary); return 0; }
                Console.WriteLine(string.Format(CultureInfo.InvariantCulture, "final accuracy {0:0.0000}; {1}", summary.Accuracy,
                    z > 0 ? string.Format(CultureInfo.InvariantCulture, "user-level ε = {0:0.###} at δ = {1:g} (noise {2:0.####}, q {3}, {4} rounds)", pe.Epsilon, options.Delta, z, options.ClientRate, options.Rounds) : "not differentially private"));
                if (personal is not null)
                    Console.WriteLine(string.Format(CultureInfo.InvariantCulture, "local test splits: global head {0:0.0000}, personalized head {1:0.0000}", globalLocal, personal));
                if (summary.Withdrawn > 0) Console.WriteLine($"{summary.Withdrawn} devices withdrew when their ε budget ran out");
                Console.WriteLine(string.Format(CultureInfo.InvariantCulture, "time per phase (mean per round): train {0:0.0} ms/client, secure aggregation {1:0.0} ms/client, server {2:0.0} ms, eval {3:0.0} ms; {4:0.0} s total",
                    reports.Average(x => x.TrainMsPerClient), reports.Average(x => x.SecAggClientMs), reports.Average(x => x.AggregateMs), reports.Average(x => x.EvalMs), summary.Seconds));
                return 0;
            }
            catch (FederatedException e) { throw new CliException(e.Message); }
        });
        return cmd;
    }
}
