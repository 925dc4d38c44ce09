using System.CommandLine;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using OnDevice.Server.Rollouts;

namespace OnDevice.Cli.Verbs;

/// <summary>
/// <c>ondevice rollout start|status|pause|resume|advance|rollback|abort</c>: staged rollouts on a delivery server
/// (operator token for changes, any token for status).
/// </summary>
public static class RolloutVerb
{
    /// <summary>Builds the command and its subcommands.</summary>
    public static Command Create()
    {
        var cmd = new Command("rollout", "Staged rollouts on a delivery server: start, status, pause, resume, advance, rollback (fast, skips analysis), abort");
        cmd.Subcommands.Add(Start());
        cmd.Subcommands.Add(Status());
        cmd.Subcommands.Add(Action("pause", "Hold the rollout at its current stage (or, with --class, halt one device class: devices that have the candidate keep it)"));
        cmd.Subcommands.Add(Action("resume", "Resume a paused rollout (restarts the current stage's clock; clears paused classes), or one device class with --class"));
        cmd.Subcommands.Add(Action("advance", "Move to the next stage now, without waiting for the schedule or health"));
        cmd.Subcommands.Add(Action("rollback", "Fast rollback, skipping analysis: devices return to the last good version (or only one device class with --class)"));
        cmd.Subcommands.Add(Action("abort", "Stop the rollout: devices that installed the candidate keep it, nobody else gets it"));
        return cmd;
    }

    private sealed record Common(Option<string> Server, Option<string?> Token, Option<string?> TokenFile, Option<string> Channel, Option<long?> Id, Option<bool> Json);

    private static Common AddCommon(Command c)
    {
        var common = new Common(
            new Option<string>("--server") { Description = "Server base URL, e.g. http://127.0.0.1:5080", Required = true },
            new Option<string?>("--token") { Description = "API token (operator for changes; or ONDEVICE_TOKEN)" },
            new Option<string?>("--token-file") { Description = "File holding the token" },
            new Option<string>("--channel") { Description = "Channel", DefaultValueFactory = _ => RolloutService.DefaultChannel },
            new Option<long?>("--id") { Description = "Rollout id (default: the newest rollout of MODEL on the channel)" },
            new Option<bool>("--json") { Description = "Print JSON" });
        c.Options.Add(common.Server);
        c.Options.Add(common.Token);
        c.Options.Add(common.TokenFile);
        c.Options.Add(common.Channel);
        c.Options.Add(common.Id);
        c.Options.Add(common.Json);
        return common;
    }

    private static Command Start()
    {
        var model = new Argument<string>("model") { Description = "Model name" };
        var version = new Argument<string>("version") { Description = "Published version to roll out" };
        var schedule = new Option<string>("--schedule") { Description = "Stages, e.g. '1%@0h, 10%@24h, 100%@72h' (s, m, h, d); 'apple' = 1/2/5/10/20/50/100% over 7 days", DefaultValueFactory = _ => "apple" };
        var guards = new Option<string[]>("--guard") { Description = "Guard rule (repeatable), e.g. 'p99_latency_ms > 50'", AllowMultipleArgumentsPerToken = false };
        var onFailure = new Option<string>("--on-failure") { Description = "What a failed guard does to its device class: pause or rollback", DefaultValueFactory = _ => "pause" };
        var baseline = new Option<string?>("--baseline") { Description = "Last good version (default: the channel's last completed rollout, else the newest older release)" };
        var c = new Command("start", "Start a staged rollout of a published version on a channel") { model, version, schedule, guards, onFailure, baseline };
        var common = AddCommon(c);
        c.SetAction(r =>
        {
            using var http = Client(r, common);
            var body = new Dictionary<string, object?>
            {
                ["model"] = r.GetValue(model), ["version"] = r.GetValue(version), ["channel"] = r.GetValue(common.Channel),
                ["schedule"] = r.GetValue(schedule), ["guards"] = r.GetValue(guards) ?? [], ["on_failure"] = r.GetValue(onFailure), ["baseline"] = r.GetValue(baseline),
            };
            var view = Send<RolloutView>(http, HttpMethod.Post, "/api/v1/rollouts", body, "start");
            Print(view, r.GetValue(common.Json));
            return 0;
        });
        return c;
    }

    private static Command Status()
    {
        var model = new Argument<string?>("model") { Description = "Model name (omit to list every rollout)", Arity = ArgumentArity.ZeroOrOne };
        var c = new Command("status", "Show a rollout: stage, percentage, device classes, cohort sizes, decisions with their numbers") { model };
        var common = AddCommon(c);
        c.SetAction(r =>
        {
            using var http = Client(r, common);
            bool json = r.GetValue(common.Json);
            if (r.GetValue(model) is null && r.GetValue(common.Id) is null)
            {
                var all = Send<List<RolloutView>>(http, HttpMethod.Get, "/api/v1/rollouts", null, "list");
                if (json) { Cli.WriteJson(all); return 0; }
                if (all.Count == 0) Console.WriteLine("no rollouts");
                foreach (var v in all) Console.WriteLine(Line(v));
                return 0;
            }
            var id = ResolveId(http, r, common, model);
            Print(Send<RolloutView>(http, HttpMethod.Get, $"/api/v1/rollouts/{id}", null, "status"), json);
            return 0;
        });
        return c;
    }

    private static Command Action(string action, string description)
    {
        var model = new Argument<string?>("model") { Description = "Model name (or give --id)", Arity = ArgumentArity.ZeroOrOne };
        var reason = new Option<string?>("--reason") { Description = "Why (kept in the audit log)" };
        var c = new Command(action, description) { model, reason };
        Option<string?>? cls = null;
        if (action is "pause" or "resume" or "rollback")
        {
            cls = new Option<string?>("--class") { Description = "Only this device class (e.g. 'ram<4GB')" };
            c.Options.Add(cls);
        }
        var common = AddCommon(c);
        c.SetAction(r =>
        {
            using var http = Client(r, common);
            var id = ResolveId(http, r, common, model);
            var body = new Dictionary<string, object?> { ["device_class"] = cls is null ? null : r.GetValue(cls), ["reason"] = r.GetValue(reason) };
            var view = Send<RolloutView>(http, HttpMethod.Post, $"/api/v1/rollouts/{id}/{action}", body, action);
            Print(view, r.GetValue(common.Json));
            return 0;
        });
        return c;
    }

    private static long ResolveId(HttpClient http, ParseResult r, Common common, Argument<string?> model)
    {
        if (r.GetValue(common.Id) is { } id) return id;
        var m = r.GetValue(model) ?? throw new CliException("give MODEL or --id");
        var channel = r.GetValue(common.Channel)!;
        var list = Send<List<RolloutView>>(http, HttpMethod.Get, $"/api/v1/rollouts?model={Uri.EscapeDataString(m)}&channel={Uri.EscapeDataString(channel)}&limit=1", null, "lookup");
        return list.Count > 0 ? list[0].Id : throw new CliException($"no rollout of {m} on channel {channel}");
    }

    private static HttpClient Client(ParseResult r, Common common)
    {
        var t = r.GetValue(common.Token) ?? (r.GetValue(common.TokenFile) is { } tf ? File.ReadAllText(tf).Trim() : Environment.GetEnvironmentVariable("ONDEVICE_TOKEN"))
            ?? throw new CliException("give --token, --token-file or ONDEVICE_TOKEN");
        if (!Uri.TryCreate(r.GetValue(common.Server), UriKind.Absolute, out var baseUri)) throw new CliException($"--server '{r.GetValue(common.Server)}' is not an absolute URL");
        var http = new HttpClient { BaseAddress = baseUri, Timeout = TimeSpan.FromMinutes(2) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", t);
        return http;
    }

    private static T Send<T>(HttpClient http, HttpMethod method, string path, object? body, string what)
    {
        using var request = new HttpRequestMessage(method, path);
        if (body is not null) request.Content = JsonContent.Create(body);
        HttpResponseMessage response;
        try { response = http.Send(request); }
        catch (HttpRequestException e) { throw new CliException($"cannot reach {http.BaseAddress}: {e.Message}"); }
        using (response)
        {
            var text = response.Content.ReadAsStringAsync().GetAwaiter().GetResult();
            if (!response.IsSuccessStatusCode)
            {
                string detail = text;
                try
                {
                    using var doc = JsonDocument.Parse(text);
                    if (doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("detail", out var d)) detail = d.GetString() ?? text;
                    else if (doc.RootElement.ValueKind == JsonValueKind.String) detail = doc.RootElement.GetString() ?? text;
                }
                catch (JsonException) { }
                throw new CliException($"rollout {what} failed: {(int)response.StatusCode} {response.ReasonPhrase}: {detail}");
            }
            return JsonSerializer.Deserialize<T>(text, Cli.Json) ?? throw new CliException($"rollout {what}: empty answer from the server");
        }
    }

    private static string Line(RolloutView v) =>
        $"rollout {v.Id}: {v.Model} {v.Candidate} on {v.Channel} — {v.Status}, stage {v.Stage + 1}/{v.StageCount} at {v.Percent:0.##}%, baseline {v.Baseline ?? "none"}";

    private static void Print(RolloutView v, bool json)
    {
        if (json) { Cli.WriteJson(v); return; }
        Console.WriteLine(Line(v));
        Console.WriteLine($"  schedule: {v.Schedule}; on failure: {v.OnFailure}; guards: {(v.Guards.Count == 0 ? "none (stages advance on schedule)" : string.Join("; ", v.Guards))}");
        Console.WriteLine($"  stage since {v.StageStarted:u}{(v.NextStageDue is { } due ? $", next stage due {due:u}" : "")}; {v.Reason}");
        foreach (var c in v.Classes) Console.WriteLine($"  class {c.DeviceClass}: {c.State} ({c.Reason})");
        if (v.Cohorts is { Count: > 0 } cohorts)
            foreach (var g in cohorts.GroupBy(x => x.DeviceClass))
                Console.WriteLine($"  devices {g.Key}: " + string.Join(", ", g.GroupBy(x => x.Version ?? "none").Select(x => $"{x.Sum(y => y.Devices)} on {x.Key}")));
        if (v.Decisions is { Count: > 0 } ds)
            foreach (var d in ds.Take(10)) Console.WriteLine($"  {d.At:u} {d.Actor}: {d.Kind}{(d.DeviceClass is null ? "" : " " + d.DeviceClass)} at {d.Percent:0.##}%");
    }
}
