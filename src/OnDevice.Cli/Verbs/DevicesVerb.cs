using System.CommandLine;
using OnDevice.Planning;
using Spectre.Console;

namespace OnDevice.Cli.Verbs;

/// <summary><c>ondevice devices [show NAME | calibrate]</c>: device profiles (every number with its source) and measuring this machine.</summary>
public static class DevicesVerb
{
    /// <summary>Builds the command with its <c>show</c> and <c>calibrate</c> subcommands.</summary>
    public static Command Create()
    {
        var listJson = new Option<bool>("--json") { Description = "Print JSON" };
        var cmd = new Command("devices", "List device profiles: RAM, app memory budget, bandwidth, compute (each number sourced or marked as an estimate)") { listJson };
        cmd.SetAction(r =>
        {
            var catalog = Load();
            if (r.GetValue(listJson))
            {
                Cli.WriteJson(new { userDirectory = catalog.UserDirectory, devices = catalog.All.Select(Row).ToList() });
                return 0;
            }
            var t = new Table().AddColumns("name", "RAM", "app budget", "bandwidth", "fastest compute", "origin").Border(TableBorder.Simple);
            foreach (var d in catalog.All)
                t.AddRow(Markup.Escape(d.Name), Fig(d.RamBytes, Units.Bytes), Fig(d.AppBudgetBytes, Units.Bytes),
                    Fig(d.MemoryBandwidthBytesPerSecond, v => Units.Bytes(v) + "/s"),
                    Markup.Escape(string.Join(", ", d.Compute.Where(u => u.Value.OpsPerSecond.Count > 0).Select(u => u.Value.OpsPerSecond.MaxBy(p => p.Value.Value) is var p
                        ? $"{u.Key} {p.Key} {Units.Ops(p.Value.Value)}{(p.Value.IsEstimate ? "*" : "")}" : ""))),
                    Markup.Escape(d.Origin));
            AnsiConsole.Write(t);
            Console.WriteLine("* estimate (not published); 'ondevice devices show NAME' gives every source. User profiles: " + catalog.UserDirectory);
            return 0;
        });

        var name = new Argument<string>("name") { Description = "Device name" };
        var showJson = new Option<bool>("--json") { Description = "Print JSON" };
        var show = new Command("show", "Show one device profile with the source or estimate behind every number") { name, showJson };
        show.SetAction(r =>
        {
            var d = Get(r.GetValue(name)!);
            if (r.GetValue(showJson)) { Cli.WriteJson(d); return 0; }
            Console.WriteLine($"{d.DisplayName} ({d.Name}; {d.Kind}; {d.Soc}) — {d.Origin}");
            var t = new Table().AddColumns("field", "value", "provenance").Border(TableBorder.Simple);
            foreach (var (path, f) in d.Figures())
                t.AddRow(Markup.Escape(path), Markup.Escape(path.Contains("opsPerSecond") ? Units.Ops(f.Value) + "OPS" : path.Contains("PerSecond") ? Units.Bytes(f.Value) + "/s" : Units.Bytes(f.Value)),
                    Markup.Escape(f.Provenance() + (f.Note is { } n ? $" (note: {n})" : "")));
            AnsiConsole.Write(t);
            foreach (var c in d.NpuConstraints) Console.WriteLine($"NPU: {c.Text} [{(c.Source is { } s ? "source: " + s : "estimate: " + c.Estimate)}]");
            foreach (var m in d.Missing) Console.WriteLine($"missing: {m}");
            if (d.Notes is { } notes) Console.WriteLine($"notes: {notes}");
            return 0;
        });

        var calName = new Option<string>("--name") { Description = "Profile name to save as", DefaultValueFactory = _ => "this-machine" };
        var quick = new Option<bool>("--quick") { Description = "Smaller buffers and shorter timings" };
        var threads = new Option<int>("--threads") { Description = "Threads to measure with (default: all processors)", DefaultValueFactory = _ => Environment.ProcessorCount };
        var calJson = new Option<bool>("--json") { Description = "Print the profile as JSON" };
        var calibrate = new Command("calibrate", "Measure this machine (memory, read bandwidth, fp32/int8 GEMM with the runtime's kernels) and save it as a device profile")
        {
            calName, quick, threads, calJson,
        };
        calibrate.SetAction(r =>
        {
            bool asJson = r.GetValue(calJson);
            DeviceProfile profile;
            try
            {
                var options = new CalibrationOptions { Name = r.GetValue(calName)!, Quick = r.GetValue(quick), Threads = r.GetValue(threads) };
                profile = Cli.WithStatus(asJson, "calibrating", () => Calibrator.Run(options));
            }
            catch (PlanningException e) { throw new CliException(e.Message); }
            var path = DeviceCatalog.Save(profile, DeviceCatalog.DefaultUserDirectory);
            if (asJson) { Cli.WriteJson(new { path, profile }); return 0; }
            Console.WriteLine($"saved {path}");
            foreach (var (p, f) in profile.Figures()) Console.WriteLine($"  {p,-32} {(p.Contains("ops") ? Units.Ops(f.Value) + "OPS" : p.Contains("PerSecond") ? Units.Bytes(f.Value) + "/s" : Units.Bytes(f.Value))}");
            foreach (var m in profile.Missing) Console.WriteLine($"  missing: {m}");
            return 0;
        });

        cmd.Subcommands.Add(show);
        cmd.Subcommands.Add(calibrate);
        return cmd;
    }

    private static DeviceCatalog Load()
    {
        try { return DeviceCatalog.Load(); }
        catch (PlanningException e) { throw new CliException(e.Message); }
    }

    private static DeviceProfile Get(string name)
    {
        try { return Load().Get(name); }
        catch (PlanningException e) { throw new CliException(e.Message); }
    }

    private static string Fig(Figure? f, Func<double, string> format) => f is null ? "" : Markup.Escape(format(f.Value) + (f.IsEstimate ? "*" : ""));

    private static object Row(DeviceProfile d) => new
    {
        d.Name, d.DisplayName, d.Kind, d.Soc,
        RamBytes = (long?)d.RamBytes?.Value,
        AppBudgetBytes = (long?)d.AppBudgetBytes?.Value,
        MemoryBandwidthBytesPerSecond = d.MemoryBandwidthBytesPerSecond?.Value,
        Compute = d.Compute.ToDictionary(u => u.Key, u => u.Value.OpsPerSecond.ToDictionary(p => p.Key, p => p.Value.Value)),
        Estimated = d.Figures().Where(f => f.Figure.IsEstimate).Select(f => f.Path).ToList(),
        d.Missing,
        d.Origin,
    };
}
