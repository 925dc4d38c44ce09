using System.Collections.Concurrent;
using System.Diagnostics;
using OnDevice.Federated.Privacy;
using OnDevice.Federated.Remote;
using OnDevice.Federated.SecureAggregation;
using OnDevice.Federated.Server.Storage;
using OnDevice.Federated.Simulation;
using OnDevice.Federated.Training;

namespace OnDevice.Federated.Server;

/// <summary>
/// Drives the rounds of each run: a check-in window, Poisson sampling of the devices that checked in, the four
/// secure-aggregation phases (each closed when every expected device answered or at its deadline), then central noise
/// and the FedAvg update of the stored model. The server only ever sees masked, quantized, clipped updates.
/// </summary>
public sealed class RunCoordinator(RunStore store) : IDisposable
{
    private sealed class Run(string id, RunConfig config, float[] model)
    {
        public readonly object Gate = new();
        public string Id { get; } = id;
        public RunConfig Config { get; } = config;
        public float[] Model { get; } = model;
        public HashSet<uint> Devices { get; } = [];
        public int Round { get; set; }
        public string Phase { get; set; } = "checkin";
        public HashSet<uint> CheckedIn { get; } = [];
        public uint[] Participants { get; set; } = [];
        public SecAggServer? Server { get; set; }
        public SecAggParameters? Parameters { get; set; }
        public HashSet<uint> Answered { get; } = [];
        public bool Finished { get; set; }
        public int RoundsDone { get; set; }
        public long BytesIn { get; set; }
    }

    private readonly ConcurrentDictionary<string, Run> _runs = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly SecureRandom _rng = new();

    /// <summary>Starts a run; returns its id.</summary>
    public async Task<string> CreateAsync(RunConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        var id = Convert.ToHexString(SecAggParameters.NewRoundId()).ToLowerInvariant()[..16];
        var head = new Head(config.Inputs, config.Classes, config.Hidden, seed: 1);
        var run = new Run(id, config, head.Parameters);
        await store.SaveRunAsync(id, config, "running", 0, null, 0, run.Model);
        _runs[id] = run;
        _ = System.Threading.Tasks.Task.Run(() => DriveAsync(run, _stop.Token));
        return id;
    }

    /// <summary>Registers a device in a run's population; false if the run is unknown or finished.</summary>
    public bool Join(string runId, uint device)
    {
        if (device == 0 || !_runs.TryGetValue(runId, out var run)) return false;
        lock (run.Gate)
        {
            if (run.Finished) return false;
            run.Devices.Add(device);
            return true;
        }
    }

    /// <summary>The current model of a live run (float32 little-endian) and its round, or null.</summary>
    public (byte[] Bytes, int Round)? Model(string runId)
    {
        if (!_runs.TryGetValue(runId, out var run)) return null;
        lock (run.Gate)
        {
            var b = new byte[run.Model.Length * 4];
            Buffer.BlockCopy(run.Model, 0, b, 0, b.Length);
            return (b, run.RoundsDone);
        }
    }

    /// <summary>What <paramref name="device"/> should do now, or null if the run or device is unknown.</summary>
    public DeviceTask? GetTask(string runId, uint device)
    {
        if (!_runs.TryGetValue(runId, out var run)) return null;
        lock (run.Gate)
        {
            if (!run.Devices.Contains(device)) return null;
            if (run.Finished) return new DeviceTask { Finished = true, Round = run.Round };
            bool participant = Array.IndexOf(run.Participants, device) >= 0 && run.Phase != "checkin";
            byte[]? message = null;
            if (participant && run.Server is { } s && run.Phase is "share" or "masked" or "unmask") message = s.MessageFor(device);
            return new DeviceTask
            {
                Round = run.Round,
                Phase = run.Phase,
                Participant = participant,
                Answered = run.Phase == "checkin" ? run.CheckedIn.Contains(device) : run.Answered.Contains(device),
                RoundId = participant ? Convert.ToBase64String(run.Parameters!.RoundId) : null,
                Threshold = participant ? run.Parameters!.Threshold : 0,
                Clients = participant ? run.Parameters!.MaxClients : 0,
                Message = message is null ? null : Convert.ToBase64String(message),
            };
        }
    }

    /// <summary>A device checks in for a round (it has privacy budget left); false if not accepted.</summary>
    public bool CheckIn(string runId, uint device, int round)
    {
        if (!_runs.TryGetValue(runId, out var run)) return false;
        lock (run.Gate)
        {
            if (run.Finished || run.Phase != "checkin" || run.Round != round || !run.Devices.Contains(device)) return false;
            run.CheckedIn.Add(device);
            return true;
        }
    }

    /// <summary>Accepts one secure-aggregation message; throws <see cref="ProtocolException"/> for a bad or unexpected one.</summary>
    public void Submit(string runId, uint device, int round, byte[] message)
    {
        if (!_runs.TryGetValue(runId, out var run)) throw new ProtocolException("unknown run");
        lock (run.Gate)
        {
            if (run.Finished || run.Round != round || run.Server is null) throw new ProtocolException($"round {round} is not collecting messages");
            if (Array.IndexOf(run.Participants, device) < 0) throw new ProtocolException($"device {device} is not in round {round}");
            if (run.Answered.Contains(device)) throw new ProtocolException($"device {device} already answered the {run.Phase} phase");
            if (message.Length >= 23 && System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(message.AsSpan(19)) != device) throw new ProtocolException("the message names another device");
            run.Server.Receive(message);
            run.Answered.Add(device);
            run.BytesIn += message.Length;
        }
    }

    private static readonly string[] PhaseNames = ["advertise", "share", "masked", "unmask"];

    private async Task DriveAsync(Run run, CancellationToken ct)
    {
        var cfg = run.Config;
        try
        {
            var joinWait = Stopwatch.StartNew();
            while (joinWait.Elapsed.TotalSeconds < cfg.JoinTimeoutSeconds)
            {
                lock (run.Gate) if (run.Devices.Count >= cfg.MinDevices) break;
                await System.Threading.Tasks.Task.Delay(100, ct);
            }
            for (int r = 1; r <= cfg.Rounds && !ct.IsCancellationRequested; r++)
            {
                var sw = Stopwatch.StartNew();
                lock (run.Gate)
                {
                    run.Round = r;
                    run.Phase = "checkin";
                    run.CheckedIn.Clear();
                    run.Participants = [];
                    run.Server = null;
                    run.BytesIn = 0;
                }
                await System.Threading.Tasks.Task.Delay(TimeSpan.FromSeconds(cfg.CheckinSeconds), ct);
                int checkedIn, population;
                lock (run.Gate)
                {
                    checkedIn = run.CheckedIn.Count;
                    population = run.Devices.Count;
                    run.Participants = run.CheckedIn.Where(_ => _rng.Bernoulli(cfg.ClientRate)).Order().ToArray();
                    if (run.Participants.Length >= 3)
                    {
                        run.Parameters = new SecAggParameters(SecAggParameters.NewRoundId(), run.Participants.Length / 2 + 1, run.Participants.Length, run.Model.Length, cfg.Bits);
                        run.Server = new SecAggServer(run.Parameters);
                    }
                }
                RoundRecord record;
                if (run.Server is null)
                {
                    record = new RoundRecord(r, checkedIn, run.Participants.Length, 0, false, "fewer than 3 devices sampled", Epsilon(cfg, r), 0, sw.Elapsed.TotalSeconds);
                }
                else
                {
                    for (int p = 0; p < 4; p++)
                    {
                        uint[] expected;
                        lock (run.Gate)
                        {
                            run.Phase = PhaseNames[p];
                            run.Answered.Clear();
                            expected = p switch
                            {
                                0 => run.Participants,
                                1 => [.. run.Server.AdvertisedClients],
                                2 => [.. run.Server.SharingClients],
                                _ => [.. run.Server.Survivors],
                            };
                        }
                        var deadline = Stopwatch.StartNew();
                        while (deadline.Elapsed.TotalSeconds < cfg.PhaseSeconds)
                        {
                            lock (run.Gate) if (expected.All(run.Answered.Contains)) break;
                            await System.Threading.Tasks.Task.Delay(20, ct);
                        }
                        lock (run.Gate)
                        {
                            run.Phase = "closing";
                            run.Server.CloseRound();
                        }
                        if (run.Server.Phase == SecAggPhase.Failed) break;
                    }
                    bool updated = false;
                    string? note = null;
                    lock (run.Gate)
                    {
                        if (run.Server.Phase == SecAggPhase.Completed)
                        {
                            var quant = new UpdateQuantizer(cfg.Bits, run.Participants.Length, cfg.Clip);
                            var sum = quant.Decode(run.Server.Result);
                            double denom = run.Server.Survivors.Count;
                            if (cfg.NoiseMultiplier > 0)
                            {
                                _rng.AddGaussian(sum, cfg.NoiseMultiplier * cfg.Clip);
                                denom = Math.Max(1, cfg.ClientRate * population);
                            }
                            for (int i = 0; i < sum.Length; i++) run.Model[i] += (float)(cfg.ServerLearningRate * sum[i] / denom);
                            updated = true;
                        }
                        else note = run.Server.FailureReason;
                        run.RoundsDone = r;
                    }
                    record = new RoundRecord(r, checkedIn, run.Participants.Length, updated ? run.Server.Survivors.Count : 0, updated, note, Epsilon(cfg, r), run.BytesIn, sw.Elapsed.TotalSeconds);
                }
                lock (run.Gate) run.RoundsDone = r;
                await store.SaveRoundAsync(run.Id, record, ct);
                float[] snapshot;
                lock (run.Gate) snapshot = (float[])run.Model.Clone();
                await store.SaveRunAsync(run.Id, cfg, r == cfg.Rounds ? "finished" : "running", r, Epsilon(cfg, r), population, snapshot, ct);
            }
        }
        catch (OperationCanceledException) { }
        finally
        {
            lock (run.Gate) { run.Finished = true; run.Phase = "finished"; }
        }
    }

    private static double? Epsilon(RunConfig cfg, int rounds) =>
        cfg.NoiseMultiplier > 0 ? RdpAccountant.Epsilon(cfg.NoiseMultiplier, cfg.ClientRate, rounds, cfg.Delta).Epsilon : null;

    /// <summary>Stops all runs.</summary>
    public void Dispose()
    {
        _stop.Cancel();
        _stop.Dispose();
    }
}
