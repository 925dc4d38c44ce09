using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.Data.Sqlite;
using Npgsql;
using System.Net.Http.Json;
using OnDevice.Federated.Data;
using OnDevice.Federated.Privacy;
using OnDevice.Federated.Remote;
using OnDevice.Federated.Server;
using OnDevice.Federated.Simulation;
using OnDevice.Federated.Training;
using OnDevice.TestSupport;
using Xunit.Abstractions;

namespace OnDevice.Federated.Tests;

/// <summary>
/// The federated server over real HTTP (Kestrel on a loopback port), devices polling it; run once per storage
/// backend by the derived classes (SQLite and a real PostgreSQL).
/// </summary>
public abstract class FederatedServerScenarios
{
    /// <summary>The --db spec for a fresh, empty store (sqlite:PATH or postgres:CONNSTR), or null to skip.</summary>
    protected abstract Task<string?> DbAsync(string dir);

    /// <summary>Checks, straight in the database, that the run and its rounds were stored.</summary>
    protected abstract Task AssertStoredAsync(string runId, int rounds);

    private async Task<(WebApplication App, HttpClient Http)?> StartAsync(string dir)
    {
        var db = await DbAsync(dir);
        if (db is null) return null;
        var app = await FederatedServerApp.BuildAsync(db, "http://127.0.0.1:0");
        await app.StartAsync();
        var http = new HttpClient { BaseAddress = new Uri(app.Urls.First() + "/"), Timeout = TimeSpan.FromSeconds(60) };
        return (app, http);
    }

    private static bool Available()
    {
        if (FashionMnist.IsAvailable()) return true;
        if (RepoPaths.IsCi) Assert.Fail($"Fashion-MNIST missing in {FashionMnist.DebianFolder}");
        Console.WriteLine($"SKIPPED (data missing): {FashionMnist.DebianFolder}");
        return false;
    }

    [Fact]
    public async Task Devices_train_a_head_through_secure_aggregation_over_http_and_rounds_are_stored()
    {
        if (!Available()) return;
        using var dir = new TempDir();
        if (await StartAsync(dir.Path) is not (WebApplication app, HttpClient http)) return;
        await using var _ = app;
        using var __ = http;
        var s = FashionMnistScenario.Build(10, seed: 5, examplesPerUser: 150, testExamples: 2000);
        var config = new RunConfig { Inputs = 784, Classes = 10, Rounds = 3, ClientRate = 1.0, Clip = 1.0, NoiseMultiplier = 0.3, CheckinSeconds = 1.5, PhaseSeconds = 20 };
        var created = await (await http.PostAsJsonAsync("v1/runs", config)).Content.ReadFromJsonAsync<Dictionary<string, string>>();
        var runId = created!["id"];
        var devices = s.Clients.Select(c => new FederatedDevice(http, runId, c.Id, c.Train, new PrivacyLedger(100, 1e-5)).RunAsync()).ToArray();
        // a malformed message and one from a device that is not in the round are refused without disturbing the run
        await Task.Delay(300);
        var bad = await http.PostAsync($"v1/runs/{runId}/devices/99/rounds/1/messages", new ByteArrayContent([1, 2, 3]));
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        var summaries = await Task.WhenAll(devices).WaitAsync(TimeSpan.FromMinutes(4));
        Assert.All(summaries, d => Assert.True(d.Rounds >= 1 && d.BytesSent > 0 && !d.Withdrawn));

        var status = await http.GetFromJsonAsync<RunStatus>($"v1/runs/{runId}");
        Assert.Equal("finished", status!.State);
        Assert.Equal(3, status.Rounds.Count);
        Assert.All(status.Rounds, r => Assert.True(r.Updated, r.Note));
        Assert.All(status.Rounds, r => Assert.Equal(10, r.Survivors));
        Assert.Equal(RdpAccountant.Epsilon(0.3, 1.0, 3, 1e-5).Epsilon, status.Epsilon!.Value, 1e-9);
        await AssertStoredAsync(runId, 3);
        var model = await http.GetByteArrayAsync($"v1/runs/{runId}/model");
        var head = new Head(784, 10);
        Buffer.BlockCopy(model, 0, head.Parameters, 0, model.Length);
        Assert.True(head.Accuracy(s.Test) > 0.3, $"accuracy {head.Accuracy(s.Test)}");
    }

    [Fact]
    public async Task Bad_run_configs_and_unknown_runs_are_rejected()
    {
        using var dir = new TempDir();
        if (await StartAsync(dir.Path) is not (WebApplication app, HttpClient http)) return;
        await using var _ = app;
        using var __ = http;
        var bad = await http.PostAsJsonAsync("v1/runs", new RunConfig { Inputs = 0, Classes = 10 });
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync("v1/runs/nope")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await http.PostAsync("v1/runs/nope/devices/1", null)).StatusCode);
    }
}

/// <summary>The federated server scenarios on SQLite (the default store).</summary>
[Trait("Category", "FashionMnist")]
public class FederatedServerTests : FederatedServerScenarios
{
    private string? _path;

    protected override Task<string?> DbAsync(string dir) => Task.FromResult<string?>($"sqlite:{_path = Path.Combine(dir, "fl.db")}");

    protected override async Task AssertStoredAsync(string runId, int rounds)
    {
        await using var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = _path, Pooling = false }.ToString());
        await c.OpenAsync();
        Assert.Equal(rounds, await StoredRoundsAsync(c, runId));
    }

    internal static async Task<long> StoredRoundsAsync(System.Data.Common.DbConnection c, string runId)
    {
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT COUNT(*) FROM fl_rounds r JOIN fl_runs u ON u.id = r.run_id WHERE r.run_id = @id AND u.state = 'finished'";
        var p = cmd.CreateParameter();
        p.ParameterName = "@id";
        p.Value = runId;
        cmd.Parameters.Add(p);
        return Convert.ToInt64(await cmd.ExecuteScalarAsync());
    }
}

/// <summary>The same scenarios on a real PostgreSQL (one fresh database per test).</summary>
[Collection("postgres")]
[Trait("Category", "FashionMnist")]
public class FederatedServerPostgresTests(PostgresFixture pg, ITestOutputHelper output) : FederatedServerScenarios
{
    protected override async Task<string?> DbAsync(string dir)
    {
        if (!pg.Available)
        {
            output.WriteLine($"SKIPPED: {pg.SkipReason}");
            return null;
        }
        _connectionString = await pg.CreateDatabaseAsync("fl_" + Guid.NewGuid().ToString("N")[..8]);
        return "postgres:" + _connectionString;
    }

    private string? _connectionString;

    protected override async Task AssertStoredAsync(string runId, int rounds)
    {
        await using var c = new NpgsqlConnection(_connectionString);
        await c.OpenAsync();
        Assert.Equal(rounds, await FederatedServerTests.StoredRoundsAsync(c, runId));
    }
}
