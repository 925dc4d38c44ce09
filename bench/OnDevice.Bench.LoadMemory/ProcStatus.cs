using System.Text;

namespace OnDevice.Bench.LoadMemory;

/// <summary>Memory figures of this process from <c>/proc/self/status</c>, in bytes (-1 when a field is missing).</summary>
internal readonly record struct MemSnapshot(long VmHWM, long VmRSS, long RssAnon, long RssFile)
{
    public static readonly string[] Fields = ["VmHWM", "VmRSS", "RssAnon", "RssFile"];

    public long this[string field] => field switch
    {
        "VmHWM" => VmHWM,
        "VmRSS" => VmRSS,
        "RssAnon" => RssAnon,
        "RssFile" => RssFile,
        _ => throw new ArgumentOutOfRangeException(nameof(field), field, null),
    };
}

/// <summary>Reads <c>/proc/self/status</c> into a reusable buffer, so sampling allocates nothing.</summary>
internal sealed class ProcStatus
{
    private const string StatusPath = "/proc/self/status";
    private readonly byte[] _buffer = new byte[16 * 1024];

    public static bool Available => File.Exists(StatusPath);

    public MemSnapshot Read()
    {
        int n;
        using (var h = File.OpenHandle(StatusPath))
        {
            n = 0;
            int got;
            while (n < _buffer.Length && (got = RandomAccess.Read(h, _buffer.AsSpan(n), n)) > 0) n += got;
        }
        var text = _buffer.AsSpan(0, n);
        return new MemSnapshot(Field(text, "VmHWM:"u8), Field(text, "VmRSS:"u8), Field(text, "RssAnon:"u8), Field(text, "RssFile:"u8));
    }

    /// <summary>Resets VmHWM to the current RSS (Linux 4.0+, <c>echo 5 &gt; /proc/self/clear_refs</c>); false when not permitted.</summary>
    public static bool TryResetPeak()
    {
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
            return true;
        }
        catch (IOException) { return false; }
        catch (UnauthorizedAccessException) { return false; }
    }

    /// <summary>The value of a "Name:   1234 kB" line in bytes, or -1 when the line is absent.</summary>
    private static long Field(ReadOnlySpan<byte> text, ReadOnlySpan<byte> name)
    {
        int at = 0;
        while (at < text.Length)
        {
            var line = text[at..];
            int nl = line.IndexOf((byte)'\n');
            if (nl >= 0) line = line[..nl];
            if (line.StartsWith(name))
            {
                long v = 0;
                foreach (var b in line[name.Length..])
                    if (b is >= (byte)'0' and <= (byte)'9') v = v * 10 + (b - '0');
                return line.EndsWith(" kB"u8) ? v * 1024 : v;
            }
            if (nl < 0) break;
            at += nl + 1;
        }
        return -1;
    }

    public static string Describe(MemSnapshot s)
    {
        var sb = new StringBuilder();
        foreach (var f in MemSnapshot.Fields) sb.Append(f).Append('=').Append(s[f] / 1024).Append(" kB ");
        return sb.ToString().TrimEnd();
    }
}

/// <summary>
/// Polls <c>/proc/self/status</c> on a background thread and keeps the largest RssAnon and RssFile seen,
/// so a transient copy (made and dropped between two stage snapshots) still shows up.
/// </summary>
internal sealed class PeakSampler : IDisposable
{
    private readonly ProcStatus _status = new();
    private readonly Lock _gate = new();
    private readonly Thread _thread;
    private volatile bool _stop;
    private long _peakAnon = -1, _peakFile = -1;

    public PeakSampler(int intervalMs = 2)
    {
        _thread = new Thread(() =>
        {
            while (!_stop)
            {
                Sample();
                Thread.Sleep(intervalMs);
            }
        }) { IsBackground = true, Name = "rss-sampler" };
    }

    public long PeakRssAnon => Interlocked.Read(ref _peakAnon);

    public long PeakRssFile => Interlocked.Read(ref _peakFile);

    public void Start() => _thread.Start();

    /// <summary>Takes one sample now (also called by the owner at each stage so stage values count as peaks).</summary>
    public void Sample()
    {
        MemSnapshot s;
        lock (_gate) s = _status.Read();
        Max(ref _peakAnon, s.RssAnon);
        Max(ref _peakFile, s.RssFile);
    }

    private static void Max(ref long slot, long value)
    {
        long cur;
        while (value > (cur = Interlocked.Read(ref slot)) && Interlocked.CompareExchange(ref slot, value, cur) != cur) { }
    }

    public void Dispose()
    {
        _stop = true;
        if (_thread.IsAlive) _thread.Join();
    }
}
