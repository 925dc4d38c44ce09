using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Npgsql;
using Xunit;

namespace OnDevice.TestSupport;

/// <summary>
/// A real PostgreSQL from the Debian package (scripts/setup.sh installs <c>postgresql</c>): initdb into a temp
/// directory and pg_ctl start on a free loopback port. When run as root, the server runs as the <c>postgres</c>
/// user (PostgreSQL refuses root). Missing binaries: a skip message, or a failure when CI=true. Shared by the test
/// projects; each declares its own <c>[CollectionDefinition]</c> (xUnit needs it in the test assembly).
/// </summary>
public sealed class PostgresFixture : IAsyncLifetime
{
    private string? _dir;
    private string? _bin;
    private bool _asPostgresUser;

    public bool Available { get; private set; }
    public string? SkipReason { get; private set; }
    public int Port { get; private set; }

    public string ConnectionString(string database) => $"Host=127.0.0.1;Port={Port};Username=ondevice;Database={database};Pooling=true;Maximum Pool Size=50";

    public async Task InitializeAsync()
    {
        _bin = Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql").Select(d => Path.Combine(d, "bin")).Where(d => File.Exists(Path.Combine(d, "initdb")))
                .OrderByDescending(d => int.TryParse(Path.GetFileName(Path.GetDirectoryName(d)), out var v) ? v : 0).FirstOrDefault()
            : null;
        if (_bin is null)
        {
            SkipReason = "PostgreSQL binaries not found under /usr/lib/postgresql/*/bin (apt-get install postgresql; scripts/setup.sh does)";
            if (RepoPaths.IsCi) throw new InvalidOperationException(SkipReason);
            return;
        }
        _asPostgresUser = Environment.UserName == "root";
        _dir = Path.Combine(Path.GetTempPath(), "ondevice-pg-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(_dir);
        if (_asPostgresUser) await Run("chown", "postgres", _dir);
        var data = Path.Combine(_dir, "data");
        await RunPg("initdb", "-D", data, "-A", "trust", "-U", "ondevice", "--no-sync", "--no-locale", "-E", "UTF8");
        for (int attempt = 0; ; attempt++)
        {
            Port = FreePort();
            try
            {
                await RunPg("pg_ctl", "-D", data, "-l", Path.Combine(_dir, "server.log"), "-w", "-t", "60",
                    "-o", $"-p {Port} -h 127.0.0.1 -k {_dir} -F -c max_connections=300 -c shared_buffers=32MB", "start");
                break;
            }
            catch (InvalidOperationException) when (attempt < 2) { }
        }
        Available = true;
    }

    public async Task<string> CreateDatabaseAsync(string name)
    {
        await using var c = new NpgsqlConnection(ConnectionString("postgres"));
        await c.OpenAsync();
        await using var cmd = c.CreateCommand();
        cmd.CommandText = $"CREATE DATABASE \"{name}\"";
        await cmd.ExecuteNonQueryAsync();
        return ConnectionString(name);
    }

    public async Task DisposeAsync()
    {
        if (_dir is null) return;
        if (Available)
        {
            try { await RunPg("pg_ctl", "-D", Path.Combine(_dir, "data"), "-m", "immediate", "-w", "stop"); }
            catch (InvalidOperationException) { }
        }
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    private static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    private Task RunPg(string tool, params string[] args) =>
        _asPostgresUser ? Run("runuser", ["-u", "postgres", "--", Path.Combine(_bin!, tool), .. args]) : Run(Path.Combine(_bin!, tool), args);

    private static async Task Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        var output = p.StandardOutput.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await p.WaitForExitAsync(cts.Token);
        if (p.ExitCode != 0) throw new InvalidOperationException($"{file} {string.Join(' ', args)} failed ({p.ExitCode}): {await err}{await output}");
    }
}
