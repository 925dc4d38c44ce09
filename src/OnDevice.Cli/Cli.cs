using System.CommandLine;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using OnDevice.Core;
using OnDevice.Formats;
using OnDevice.Samples;
using Spectre.Console;

namespace OnDevice.Cli;

/// <summary>A failure the user can act on; printed as one line, exit code 1.</summary>
public sealed class CliException(string message) : Exception(message);

/// <summary>Shared plumbing for verbs: error handling, JSON output, model resolution.</summary>
public static class Cli
{
    /// <summary>JSON settings for every <c>--json</c> output: camelCase, indented, nulls omitted.</summary>
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>True when stdout is a terminal (progress and colour allowed).</summary>
    public static bool IsInteractive => !Console.IsOutputRedirected && !Console.IsErrorRedirected;

    /// <summary>Parses and runs, turning known failures into one clear line on stderr and a non-zero exit code.</summary>
    public static int Invoke(RootCommand root, string[] args)
    {
        var config = new InvocationConfiguration { EnableDefaultExceptionHandler = false };
        try
        {
            return root.Parse(args).Invoke(config);
        }
        catch (Exception e)
        {
            return Report(e);
        }
    }

    private static int Report(Exception e)
    {
        var message = e switch
        {
            CliException or ModelFormatException or SampleException or ModelValidationException => e.Message,
            Runtime.InvalidInputException or Runtime.MemoryLimitExceededException or NotSupportedException => e.Message,
            FileNotFoundException f => $"file not found: {f.FileName ?? f.Message}",
            DirectoryNotFoundException or UnauthorizedAccessException or IOException => e.Message,
            _ => null,
        };
        if (message is not null)
        {
            Console.Error.WriteLine($"ondevice: error: {message}");
            return 1;
        }
        Console.Error.WriteLine($"ondevice: internal error: {e.GetType().Name}: {e.Message}");
        if (Environment.GetEnvironmentVariable("ONDEVICE_DEBUG") == "1") Console.Error.WriteLine(e);
        else Console.Error.WriteLine("(set ONDEVICE_DEBUG=1 for details)");
        return 70;
    }

    /// <summary>Writes <paramref name="value"/> as JSON to stdout.</summary>
    public static void WriteJson<T>(T value) => Console.Out.WriteLine(JsonSerializer.Serialize(value, Json));

    /// <summary>
    /// A model path from the user: an existing file, or the name of a sample (pulled into the cache if needed).
    /// </summary>
    public static string ResolveModel(string pathOrSample, bool quiet)
    {
        if (File.Exists(pathOrSample) || Directory.Exists(pathOrSample)) return pathOrSample;
        var sample = SampleCatalog.All.FirstOrDefault(s => string.Equals(s.Name, pathOrSample, StringComparison.OrdinalIgnoreCase));
        if (sample is null) return pathOrSample; // the reader reports "file not found" with the path
        return WithStatus(quiet, $"pulling sample {sample.Name}", () => SampleStore.Default().Ensure(sample));
    }

    /// <summary>Runs <paramref name="work"/> under a spinner on a terminal, silently otherwise.</summary>
    public static T WithStatus<T>(bool quiet, string status, Func<T> work)
    {
        if (quiet || !IsInteractive) return work();
        T result = default!;
        AnsiConsole.Status().Start(status, _ => result = work());
        return result;
    }

    /// <summary>Human-readable byte count (KiB/MiB/GiB).</summary>
    public static string Bytes(long n) => n switch
    {
        < 1024 => $"{n} B",
        < 1024 * 1024 => $"{n / 1024.0:0.0} KiB",
        < 1024L * 1024 * 1024 => $"{n / (1024.0 * 1024):0.00} MiB",
        _ => $"{n / (1024.0 * 1024 * 1024):0.00} GiB",
    };

    /// <summary>Large counts with SI suffix (k, M, G).</summary>
    public static string Count(long n) => n switch
    {
        < 10_000 => n.ToString("N0", System.Globalization.CultureInfo.InvariantCulture),
        < 10_000_000 => $"{n / 1e3:0.0} k",
        < 10_000_000_000 => $"{n / 1e6:0.00} M",
        _ => $"{n / 1e9:0.00} G",
    };
}
