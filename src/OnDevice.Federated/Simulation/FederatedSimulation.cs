using System.Diagnostics;
using OnDevice.Federated.Privacy;
using OnDevice.Federated.SecureAggregation;
using OnDevice.Federated.Training;

namespace OnDevice.Federated.Simulation;

/// <summary>Server optimizer of federated averaging.</summary>
public enum ServerOptimizerKind
{
    /// <summary>θ ← θ + η·Δ̄ (McMahan et al. 2017).</summary>
    FedAvg,

    /// <summary>Adam on the pseudo-gradient −Δ̄ (Reddi et al. 2021).</summary>
    FedAdam,
}

/// <summary>Settings of a federated training run.</summary>
public sealed record FederatedOptions
{
    /// <summary>Rounds.</summary>
    public int Rounds { get; init; } = 20;

    /// <summary>Poisson client sampling rate per round.</summary>
    public double ClientRate { get; init; } = 0.1;

    /// <summary>On-device training of each sampled client.</summary>
    public LocalTrainingOptions Local { get; init; } = new() { Epochs = 1, LearningRate = 0.1, BatchSize = 32 };

    /// <summary>Server optimizer.</summary>
    public ServerOptimizerKind ServerOptimizer { get; init; } = ServerOptimizerKind.FedAvg;

    /// <summary>Server learning rate.</summary>
    public double ServerLearningRate { get; init; } = 1.0;

    /// <summary>User-level L2 clip of each update (0 = none).</summary>
    public double Clip { get; init; }

    /// <summary>Central noise multiplier z: N(0, z²C²) is added to the sum (0 = non-private).</summary>
    public double NoiseMultiplier { get; init; }

    /// <summary>δ for the reported ε.</summary>
    public double Delta { get; init; } = 1e-5;

    /// <summary>Probability that a sampled client silently drops out in a round.</summary>
    public double DropoutRate { get; init; }

    /// <summary>Round deadline in simulated seconds; clients whose simulated latency exceeds it are stragglers and are left out.</summary>
    public double DeadlineSeconds { get; init; } = double.PositiveInfinity;

    /// <summary>Aggregate with secure aggregation (quantized updates) instead of a plain sum.</summary>
    public bool SecureAggregation { get; init; }

    /// <summary>k of Z_{2^k} for secure aggregation.</summary>
    public int SecAggBits { get; init; } = 32;

    /// <summary>Per-device ε budget for the ledgers (0 = no ledger).</summary>
    public double DeviceEpsilonBudget { get; init; }

    /// <summary>Model name recorded in ledgers.</summary>
    public string Model { get; init; } = "head";

    /// <summary>Seed for the non-private parts (data order, latencies).</summary>
    public int Seed { get; init; } = 1;

    /// <summary>Worker threads for local training.</summary>
    public int Parallelism { get; init; } = Environment.ProcessorCount;
}

/// <summary>One simulated device: its training data, a held-out local test split, its privacy ledger and speed.</summary>
public sealed class FederatedClient(uint id, Dataset train, Dataset? localTest, PrivacyLedger? ledger, double speed)
{
    /// <summary>Device id (non-zero).</summary>
    public uint Id { get; } = id;

    /// <summary>Local training data (never leaves the device).</summary>
    public Dataset Train { get; } = train;

    /// <summary>Local test data for personalization.</summary>
    public Dataset? LocalTest { get; } = localTest;

    /// <summary>The device's privacy ledger.</summary>
    public PrivacyLedger? Ledger { get; } = ledger;

    /// <summary>Relative slowness (1 = median device).</summary>
    public double Speed { get; } = speed;

    /// <summary>True once the device left the run (budget exhausted).</summary>
    public bool Withdrawn { get; internal set; }
}

/// <summary>What happened in one round.</summary>
public sealed record RoundReport
{
    /// <summary>Round number (1-based).</summary>
    public int Round { get; init; }

    /// <summary>Devices still taking part.</summary>
    public int Eligible { get; init; }

    /// <summary>Devices that refused this round (budget).</summary>
    public int Refused { get; init; }

    /// <summary>Devices sampled.</summary>
    public int Sampled { get; init; }

    /// <summary>Updates in the aggregate.</summary>
    public int Reported { get; init; }

    /// <summary>Sampled devices that dropped out.</summary>
    public int Dropped { get; init; }

    /// <summary>Sampled devices that missed the deadline.</summary>
    public int Stragglers { get; init; }

    /// <summary>Whether the server updated the model this round.</summary>
    public bool Updated { get; init; }

    /// <summary>Test accuracy of the global head after the round.</summary>
    public double Accuracy { get; init; }

    /// <summary>Population ε so far (user level).</summary>
    public double Epsilon { get; init; }

    /// <summary>Mean bytes sent per reporting client.</summary>
    public double BytesUpPerClient { get; init; }

    /// <summary>Mean bytes received per reporting client.</summary>
    public double BytesDownPerClient { get; init; }

    /// <summary>Mean on-device training time per client, ms.</summary>
    public double TrainMsPerClient { get; init; }

    /// <summary>Mean client-side secure-aggregation time per client, ms.</summary>
    public double SecAggClientMs { get; init; }

    /// <summary>Server aggregation time (including unmasking), ms.</summary>
    public double AggregateMs { get; init; }

    /// <summary>Evaluation time, ms.</summary>
    public double EvalMs { get; init; }

    /// <summary>Why the model was not updated, if it was not.</summary>
    public string? Note { get; init; }
}

/// <summary>
/// Federated averaging in process: Poisson client sampling, on-device training, user-level clipping, optional secure
/// aggregation of quantized updates, central Gaussian noise (DP-FedAvg, McMahan et al. 2018, with the fixed denominator
/// q·N), FedAvg or FedAdam on the server, ledgers on devices, and the population ε of the run.
/// </summary>
public sealed class FederatedSimulation
{
    private readonly IReadOnlyList<FederatedClient> _clients;
    private readonly Dataset _test;
    private readonly FederatedOptions _o;
    private readonly SecureRandom _rng = new();
    private readonly Random _sim;
    private readonly Adam? _serverAdam;
    private readonly string _run = Convert.ToHexString(SecAggParameters.NewRoundId())[..12];
    private int _roundsRun;

    /// <summary>Sets up a run starting from <paramref name="initial"/> (copied).</summary>
    public FederatedSimulation(Head initial, IReadOnlyList<FederatedClient> clients, Dataset test, FederatedOptions options)
    {
        ArgumentNullException.ThrowIfNull(initial);
        _clients = clients ?? throw new ArgumentNullException(nameof(clients));
        _test = test ?? throw new ArgumentNullException(nameof(test));
        _o = options ?? throw new ArgumentNullException(nameof(options));
        if (clients.Count == 0) throw new FederatedException("no clients");
        if (!(_o.ClientRate > 0 && _o.ClientRate <= 1)) throw new FederatedException($"the client sampling rate must be in (0, 1], got {_o.ClientRate}");
        if (_o.Rounds < 1) throw new FederatedException($"rounds must be at least 1, got {_o.Rounds}");
        if (_o.NoiseMultiplier < 0 || _o.Clip < 0) throw new FederatedException("clip and noise must be non-negative");
        if (_o.NoiseMultiplier > 0 && _o.Clip <= 0) throw new FederatedException("DP-FedAvg needs a positive clip norm (--clip) with the noise");
        if (_o.SecureAggregation && _o.Clip <= 0) throw new FederatedException("secure aggregation needs a clip norm to bound the quantized updates");
        if (!(_o.DropoutRate >= 0 && _o.DropoutRate < 1)) throw new FederatedException($"the dropout rate must be in [0, 1), got {_o.DropoutRate}");
        if (clients.Select(c => c.Id).Distinct().Count() != clients.Count || clients.Any(c => c.Id == 0)) throw new FederatedException("client ids must be distinct and non-zero");
        Global = initial.Clone();
        _sim = new Random(_o.Seed);
        if (_o.ServerOptimizer == ServerOptimizerKind.FedAdam) _serverAdam = new Adam(Global.Parameters.Length, _o.ServerLearningRate, 0.9, 0.99, 1e-3);
    }

    /// <summary>The global head.</summary>
    public Head Global { get; }

    /// <summary>The run id recorded in ledgers.</summary>
    public string RunId => _run;

    /// <summary>User-level (ε, δ) of the rounds run so far (+∞ without noise).</summary>
    public PrivacyGuarantee PopulationEpsilon => _o.NoiseMultiplier > 0
        ? RdpAccountant.Epsilon(_o.NoiseMultiplier, _o.ClientRate, _roundsRun, _o.Delta)
        : new PrivacyGuarantee(_roundsRun == 0 ? 0 : double.PositiveInfinity, _o.Delta, 0);

    /// <summary>Runs all rounds, calling <paramref name="onRound"/> after each.</summary>
    public List<RoundReport> Run(Action<RoundReport>? onRound = null)
    {
        var reports = new List<RoundReport>();
        for (int r = 1; r <= _o.Rounds; r++)
        {
            var rep = RunRound(r);
            reports.Add(rep);
            onRound?.Invoke(rep);
        }
        return reports;
    }

    /// <summary>Runs one round.</summary>
    public RoundReport RunRound(int round)
    {
        // 1. devices check their ledgers; those out of budget withdraw for good
        int refused = 0;
        foreach (var c in _clients.Where(c => !c.Withdrawn))
        {
            if (c.Ledger is null || _o.NoiseMultiplier == 0) continue;
            if (!c.Ledger.TryCharge(_o.Model, _run, _o.ClientRate, _o.NoiseMultiplier)) { c.Withdrawn = true; refused++; }
        }
        var eligible = _clients.Where(c => !c.Withdrawn).ToList();
        _roundsRun++;
        // 2. Poisson sampling of clients from a secure generator
        var sampled = eligible.Where(_ => _rng.Bernoulli(_o.ClientRate)).ToList();
        // 3. dropouts and stragglers (simulated)
        var fates = sampled.ToDictionary(c => c.Id, c =>
        {
            if (_sim.NextDouble() < _o.DropoutRate) return 1;
            var latency = c.Speed * Math.Exp(0.25 * Gauss());
            return latency > _o.DeadlineSeconds ? 2 : 0;
        });
        var reporting = sampled.Where(c => fates[c.Id] == 0).ToList();

        // 4. on-device training (also for clients that later drop: they did the work)
        var sw = Stopwatch.StartNew();
        var deltas = new Dictionary<uint, float[]>();
        var seeds = sampled.ToDictionary(c => c.Id, c => _sim.Next());
        var lockObj = new object();
        Parallel.ForEach(sampled, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, _o.Parallelism) }, c =>
        {
            var (d, _, _) = ClientUpdate.Compute(Global, c.Train, _o.Local, _o.Clip, seeds[c.Id], new SecureRandom());
            lock (lockObj) deltas[c.Id] = d;
        });
        double trainMs = sampled.Count > 0 ? sw.Elapsed.TotalMilliseconds * Math.Max(1, Math.Min(_o.Parallelism, sampled.Count)) / sampled.Count : 0;

        // 5. aggregation
        sw.Restart();
        float[]? sum = null;
        double secaggClientMs = 0, bytesUp = 0, bytesDown = 0;
        string? note = null;
        int p = Global.Parameters.Length;
        if (_o.SecureAggregation)
        {
            if (sampled.Count < 3) note = $"only {sampled.Count} clients sampled; secure aggregation needs at least 3";
            else
            {
                var res = SecureSum(sampled, reporting, deltas, round);
                secaggClientMs = res.ClientMs;
                bytesUp = res.BytesUp;
                bytesDown = res.BytesDown;
                if (res.Sum is null) note = res.Failure;
                else sum = res.Sum;
            }
        }
        else if (reporting.Count > 0)
        {
            sum = new float[p];
            foreach (var c in reporting) VectorMath.Axpy(deltas[c.Id], 1f, sum);
            bytesUp = 4.0 * p;
            bytesDown = 4.0 * p;
        }
        else note = "no client reported before the deadline";

        bool updated = false;
        if (sum is not null)
        {
            double denom;
            if (_o.NoiseMultiplier > 0)
            {
                _rng.AddGaussian(sum, _o.NoiseMultiplier * _o.Clip);
                denom = Math.Max(1, _o.ClientRate * eligible.Count); // fixed denominator: sensitivity C/(qN)
            }
            else denom = reporting.Count;
            for (int i = 0; i < p; i++) sum[i] = (float)(sum[i] / denom);
            if (_serverAdam is not null)
            {
                for (int i = 0; i < p; i++) sum[i] = -sum[i];
                _serverAdam.Step(Global.Parameters, sum);
            }
            else VectorMath.Axpy(sum, (float)_o.ServerLearningRate, Global.Parameters);
            updated = true;
        }
        double aggMs = sw.Elapsed.TotalMilliseconds;
        sw.Restart();
        double acc = Global.Accuracy(_test);
        double evalMs = sw.Elapsed.TotalMilliseconds;
        return new RoundReport
        {
            Round = round,
            Eligible = eligible.Count,
            Refused = refused,
            Sampled = sampled.Count,
            Reported = updated ? reporting.Count : 0,
            Dropped = fates.Values.Count(f => f == 1),
            Stragglers = fates.Values.Count(f => f == 2),
            Updated = updated,
            Accuracy = acc,
            Epsilon = PopulationEpsilon.Epsilon,
            BytesUpPerClient = bytesUp,
            BytesDownPerClient = bytesDown,
            TrainMsPerClient = trainMs,
            SecAggClientMs = secaggClientMs,
            AggregateMs = aggMs - secaggClientMs * sampled.Count,
            EvalMs = evalMs,
            Note = note,
        };
    }

    private double Gauss() => Math.Sqrt(-2 * Math.Log(1 - _sim.NextDouble())) * Math.Cos(2 * Math.PI * _sim.NextDouble());

    private (float[]? Sum, string? Failure, double ClientMs, double BytesUp, double BytesDown) SecureSum(
        List<FederatedClient> sampled, List<FederatedClient> reporting, Dictionary<uint, float[]> deltas, int round)
    {
        int n = sampled.Count;
        var quant = new UpdateQuantizer(_o.SecAggBits, n, _o.Clip);
        var prm = new SecAggParameters(SecAggParameters.NewRoundId(), n / 2 + 1, n, Global.Parameters.Length, _o.SecAggBits);
        var server = new SecAggServer(prm);
        var clients = sampled.ToDictionary(c => c.Id, c => new SecAggClient(prm, c.Id));
        var reportingIds = reporting.Select(c => c.Id).ToHashSet();
        var up = new Dictionary<uint, long>();
        var down = new Dictionary<uint, long>();
        var clientWatch = new Stopwatch();
        try
        {
            var alive = clients.Keys.ToHashSet();
            for (int phase = 0; phase < 4; phase++)
            {
                if (phase == 2) alive.IntersectWith(reportingIds); // dropouts and stragglers miss the masked-input deadline
                foreach (var id in alive.ToArray())
                {
                    var incoming = phase == 0 ? [] : server.MessageFor(id);
                    if (incoming is null) { alive.Remove(id); continue; }
                    down[id] = down.GetValueOrDefault(id) + incoming.Length;
                    clientWatch.Start();
                    byte[] msg;
                    try
                    {
                        msg = phase switch
                        {
                            0 => clients[id].AdvertiseKeys(),
                            1 => clients[id].ShareKeys(incoming),
                            2 => clients[id].MaskedInput(incoming, quant.Encode(deltas[id], _rng)),
                            _ => clients[id].Unmask(incoming),
                        };
                    }
                    catch (ProtocolException) { alive.Remove(id); continue; }
                    finally { clientWatch.Stop(); }
                    up[id] = up.GetValueOrDefault(id) + msg.Length;
                    try { server.Receive(msg); } catch (ProtocolException) { alive.Remove(id); }
                }
                server.CloseRound();
                if (server.Phase == SecAggPhase.Failed) break;
            }
            var ids = server.Phase == SecAggPhase.Completed ? server.Survivors.ToArray() : reportingIds.ToArray();
            double meanUp = ids.Length > 0 ? ids.Average(i => (double)up.GetValueOrDefault(i)) : 0;
            double meanDown = ids.Length > 0 ? ids.Average(i => (double)down.GetValueOrDefault(i)) : 0;
            double clientMs = clientWatch.Elapsed.TotalMilliseconds / Math.Max(1, n);
            if (server.Phase != SecAggPhase.Completed) return (null, $"secure aggregation failed in round {round}: {server.FailureReason}", clientMs, meanUp, meanDown);
            return (quant.Decode(server.Result), null, clientMs, meanUp, meanDown);
        }
        finally
        {
            foreach (var c in clients.Values) c.Dispose();
        }
    }

    /// <summary>Fine-tunes a copy of the global head on one device's data (never shared) and returns it.</summary>
    public static Head Personalize(Head global, FederatedClient client, LocalTrainingOptions options, int seed = 0)
    {
        ArgumentNullException.ThrowIfNull(global);
        ArgumentNullException.ThrowIfNull(client);
        var h = global.Clone();
        LocalTrainer.Train(h, client.Train, options, null, seed);
        return h;
    }
}
