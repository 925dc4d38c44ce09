using System.CommandLine;
using System.Globalization;
using OnDevice.Fleet;
using OnDevice.Server;

namespace OnDevice.Cli.Verbs;

/// <summary><c>ondevice fleet simulate</c>: simulated devices against a real delivery server, to watch a rollout end to end.</summary>
public static class FleetVerb
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var cmd = new Command("fleet", "Simulated device fleets against a delivery server");
        cmd.Subcommands.Add(SimulateCommand());
        return cmd;
    }

    private static Command SimulateCommand()
    {
        var server = new Option<string>("--server") { Description = "Delivery server URL", Required = true };
        var root = new Option<string>("--root") { Description = "Trusted root.json shipped with the app (from 'ondevice keys init')", Required = true };
        var model = new Option<string>("--model") { Description = "Model name the devices run", Required = true };
        var candidate = new Option<string>("--candidate") { Description = "The version that behaves as the scenario's candidate (every other version behaves as the baseline)", Required = true };
        var token = new Option<string?>("--token") { Description = "Token (reader or above) to watch the model's newest rollout: stage, cohorts, class halts, guard decisions" };
        var scenario = new Option<string>("--scenario") { Description = "healthy | slow-release (candidate p99 2x everywhere) | slow-on-old (candidate p99 2.5x on the class with the least RAM)", DefaultValueFactory = _ => "healthy" };
        var classes = new Option<string[]>("--class") { Description = "Device class RAM:SHARE:P50/P99[:CRASH_RATE] of the baseline version, repeatable (default 3G:0.4:20/45, 6G:0.35:10/24, 12G:0.25:6/14, crash rate 1e-5)", AllowMultipleArgumentsPerToken = false };
        var devices = new Option<int>("--devices") { Description = "Simulated devices", DefaultValueFactory = _ => 200 };
        var failures = new Option<double>("--failure-rate") { Description = "Fraction of HTTP requests that fail (half before reaching the server, half losing the answer)", DefaultValueFactory = _ => 0.02 };
        var duration = new Option<string>("--duration") { Description = "Longest run (e.g. 60s, 10m)", DefaultValueFactory = _ => "60s" };
        var tick = new Option<string>("--tick") { Description = "Simulation step: each device runs its inferences once per tick", DefaultValueFactory = _ => "0.5s" };
        var check = new Option<string>("--check-every") { Description = "How often each device asks for updates (±20% jitter)", DefaultValueFactory = _ => "2s" };
        var telemetryEvery = new Option<string>("--telemetry-every") { Description = "How often each device sends telemetry", DefaultValueFactory = _ => "1s" };
        var inferences = new Option<int>("--inferences") { Description = "Inferences per device per tick", DefaultValueFactory = _ => 10 };
        var concurrency = new Option<int>("--concurrency") { Description = "Devices working at once", DefaultValueFactory = _ => 32 };
        var seed = new Option<int>("--seed") { Description = "Seed (latencies, crashes, install ids, failures)", DefaultValueFactory = _ => 1 };
        var workDir = new Option<string?>("--work-dir") { Description = "Folder for the devices' caches (default: a temporary folder, removed afterwards)" };
        var untilFinal = new Option<bool>("--until-final") { Description = "Stop once the watched rollout completed, was rolled back or aborted and the devices followed (needs --token)" };
        var json = new Option<bool>("--json") { Description = "Print every tick (versions per class, rollout stage, cohorts, decisions) and the measured latencies as JSON" };
        var cmd = new Command("simulate", "Run N simulated devices (device classes, network failures, per-version latency/crash behaviour) with the real client against a server")
        {
            server, root, model, candidate, token, scenario, classes, devices, failures, duration, tick, check, telemetryEvery, inferences, concurrency, seed, workDir, untilFinal, json,
        };
        cmd.SetAction(r =>
        {
            var rootFile = r.GetValue(root)!;
            if (!File.Exists(rootFile)) throw new CliException($"root metadata not found: {rootFile}");
            if (r.GetValue(untilFinal) && r.GetValue(token) is null) throw new CliException("--until-final watches the rollout: give --token");
            Uri serverUri;
            try { serverUri = new Uri(r.GetValue(server)!.TrimEnd('/') + "/", UriKind.Absolute); }
            catch (UriFormatException) { throw new CliException($"--server must be an absolute URL, got '{r.GetValue(server)}'"); }
            FleetScenario sc;
            TimeSpan dur, tk, chk, tel;
            try
            {
                var specs = r.GetValue(classes) is { Length: > 0 } cl ? cl.Select(FleetScenario.ParseClass).ToList() : null;
                sc = FleetScenario.Named(r.GetValue(scenario)!, specs);
                dur = ServerOptions.ParseDuration(r.GetValue(duration)!);
                tk = ServerOptions.ParseDuration(r.GetValue(tick)!);
                chk = ServerOptions.ParseDuration(r.GetValue(check)!);
                tel = ServerOptions.ParseDuration(r.GetValue(telemetryEvery)!);
            }
            catch (Exception e) when (e is FormatException or ArgumentException) { throw new CliException(e.Message); }

            bool asJson = r.GetValue(json);
            var ownDir = r.GetValue(workDir) is null;
            var dir = r.GetValue(workDir) ?? Path.Combine(Path.GetTempPath(), "ondevice-fleet-" + Guid.NewGuid().ToString("N")[..12]);
            using var observer = r.GetValue(token) is { } t ? new RolloutObserver(serverUri, t, r.GetValue(model)!) : null;
            DateTime? finalAt = null;
            DateTime stableSince = DateTime.UtcNow;
            string? lastSignature = null;
            var options = new FleetOptions
            {
                Server = serverUri, Model = r.GetValue(model)!, TrustedRoot = File.ReadAllBytes(rootFile), Scenario = sc, Candidate = r.GetValue(candidate)!,
                WorkDirectory = dir, Devices = r.GetValue(devices), FailureRate = r.GetValue(failures), Duration = dur, Tick = tk, CheckEvery = chk,
                TelemetryEvery = tel, InferencesPerTick = r.GetValue(inferences), Concurrency = r.GetValue(concurrency), Seed = r.GetValue(seed),
                Observer = observer is null ? null : observer.ReadAsync,
                StopWhen = !r.GetValue(untilFinal) ? null : tick =>
                {
                    if (tick.Rollout is not { } ro || ro.Candidate != r.GetValue(candidate) || ro.Status is "active" or "paused") return false;
                    var now = DateTime.UtcNow;
                    finalAt ??= now;
                    // Devices follow within a few update checks: stop once every device runs what the final state
                    // assigns it (everyone the candidate, or everyone the baseline), or once the versions in use stopped
                    // changing (halted classes keep a mix); never later than 20 update intervals.
                    var expected = ro.Status == "completed" && ro.Classes.Count == 0 ? ro.Candidate : ro.Status == "rolled-back" ? ro.Baseline : null;
                    if (expected is not null && tick.Count(expected) == tick.Versions.Values.Sum(v => v.Values.Sum())) return true;
                    var signature = string.Join(";", tick.Versions.Select(kv => kv.Key + ":" + string.Join(",", kv.Value.Select(v => v.Key + "=" + v.Value))));
                    if (signature != lastSignature) { lastSignature = signature; stableSince = now; }
                    return (expected is null && now - stableSince > chk * 5) || now - finalAt > chk * 20;
                },
            };
            if (observer is not null)
            {
                // A wrong token or URL should stop the run now, not leave every tick without the rollout.
                try { observer.ReadAsync().GetAwaiter().GetResult(); }
                catch (HttpRequestException e) { throw new CliException($"cannot read the rollouts of {options.Model} from {serverUri}: {e.Message}"); }
            }
            FleetResult result;
            try
            {
                var sim = new FleetSimulator(options);
                if (!asJson) Console.WriteLine($"fleet: {options.Devices} devices ({string.Join(", ", sc.Classes.Select(c => c.Name))}), scenario {sc.Name}: {sc.Description}");
                string? last = null;
                result = sim.RunAsync(asJson ? null : tickReport =>
                {
                    var line = Describe(tickReport, options.Candidate);
                    if (line == last) return;
                    last = line;
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{tickReport.Seconds,7:0.0}s  {line}"));
                }).GetAwaiter().GetResult();
            }
            catch (ArgumentException e) { throw new CliException(e.Message); }
            finally
            {
                if (ownDir) try { Directory.Delete(dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            }
            if (asJson) Cli.WriteJson(result);
            else
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{result.Seconds:0.0} s, {result.Requests} requests, {result.NetworkFailures} failed by injected faults"));
                foreach (var m in result.Measured)
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {m.DeviceClass,-10} {m.Version,-10} {m.Devices,5} devices  {m.Inferences,9} inferences  p50 {m.P50Ms,7:0.0} ms  p99 {m.P99Ms,7:0.0} ms  crashes {m.Crashes}"));
            }
            return 0;
        });
        return cmd;
    }

    /// <summary>One line per change: rollout status/stage/halts, and per class the share on the candidate.</summary>
    internal static string Describe(FleetTick t, string candidate)
    {
        var parts = new List<string>();
        if (t.Rollout is { } r)
        {
            parts.Add(string.Create(CultureInfo.InvariantCulture, $"rollout {r.Id} {r.Status} stage {r.Stage + 1}/{r.StageCount} ({r.Percent:0.##}%)"));
            foreach (var (cls, state) in r.Classes) parts.Add($"{cls} {state}");
        }
        foreach (var (cls, versions) in t.Versions)
        {
            int total = versions.Values.Sum();
            int onCandidate = versions.GetValueOrDefault(candidate);
            parts.Add($"{cls}: {onCandidate}/{total} on {candidate}");
        }
        return string.Join(" | ", parts);
    }
}
