using System.Text.Json;
using OnDevice.Core;

namespace OnDevice.Federated.Privacy;

/// <summary>One charge on a device's ledger: <see cref="Steps"/> applications of the subsampled Gaussian at (q, σ).</summary>
/// <param name="Model">Model the run trains.</param>
/// <param name="Run">Training run id.</param>
/// <param name="SamplingRate">q.</param>
/// <param name="NoiseMultiplier">σ.</param>
/// <param name="Steps">Rounds charged.</param>
public sealed record LedgerEntry(string Model, string Run, double SamplingRate, double NoiseMultiplier, long Steps);

/// <summary>
/// A device's own record of the privacy it has spent, across rounds, runs and models, composed with the RDP
/// accountant. Before each round it asks <see cref="TryCharge"/>; when one more round would take ε over the budget the
/// device refuses to take part. Optionally kept in a JSON file (written atomically).
/// </summary>
public sealed class PrivacyLedger
{
    private readonly List<LedgerEntry> _entries = [];
    private readonly string? _path;

    /// <summary>A ledger with budget (ε, δ), optionally persisted at <paramref name="path"/> (loaded if it exists).</summary>
    public PrivacyLedger(double epsilonBudget, double delta, string? path = null)
    {
        if (!(epsilonBudget > 0)) throw new FederatedException($"the ε budget must be positive, got {epsilonBudget}");
        if (!(delta > 0 && delta < 1)) throw new FederatedException($"δ must be in (0, 1), got {delta}");
        EpsilonBudget = epsilonBudget;
        Delta = delta;
        _path = path;
        if (path is not null && File.Exists(path))
        {
            var saved = JsonSerializer.Deserialize<Saved>(File.ReadAllText(path)) ?? throw new FederatedException($"{path}: not a privacy ledger");
            if (saved.EpsilonBudget != epsilonBudget || saved.Delta != delta)
                throw new FederatedException($"{path}: the ledger's budget (ε {saved.EpsilonBudget}, δ {saved.Delta}) differs from the requested one (ε {epsilonBudget}, δ {delta})");
            foreach (var e in saved.Entries) Add(e);
        }
    }

    private sealed record Saved(double EpsilonBudget, double Delta, List<LedgerEntry> Entries);

    private readonly RdpAccountant _acc = new();

    /// <summary>Total ε budget.</summary>
    public double EpsilonBudget { get; }

    /// <summary>δ of the budget.</summary>
    public double Delta { get; }

    /// <summary>Charges so far (consecutive rounds of one run are merged).</summary>
    public IReadOnlyList<LedgerEntry> Entries => _entries;

    /// <summary>ε spent so far (improved conversion).</summary>
    public double Spent => _acc.GetEpsilon(Delta).Epsilon;

    /// <summary>ε left.</summary>
    public double Remaining => Math.Max(0, EpsilonBudget - Spent);

    /// <summary>
    /// Charges one round of (q, σ) for <paramref name="model"/>/<paramref name="run"/> if that keeps ε within budget and
    /// returns true; otherwise records nothing and returns false (the device must not take part).
    /// </summary>
    public bool TryCharge(string model, string run, double samplingRate, double noiseMultiplier, long steps = 1)
    {
        ArgumentException.ThrowIfNullOrEmpty(model);
        ArgumentException.ThrowIfNullOrEmpty(run);
        var trial = _acc.Clone().Compose(samplingRate, noiseMultiplier, steps);
        if (trial.GetEpsilon(Delta).Epsilon > EpsilonBudget) return false;
        Add(new LedgerEntry(model, run, samplingRate, noiseMultiplier, steps));
        if (_path is not null) AtomicFile.WriteAllBytes(_path, JsonSerializer.SerializeToUtf8Bytes(new Saved(EpsilonBudget, Delta, _entries)));
        return true;
    }

    private void Add(LedgerEntry e)
    {
        _acc.Compose(e.SamplingRate, e.NoiseMultiplier, e.Steps);
        if (_entries.Count > 0 && _entries[^1] is var last && last.Model == e.Model && last.Run == e.Run && last.SamplingRate == e.SamplingRate && last.NoiseMultiplier == e.NoiseMultiplier)
            _entries[^1] = last with { Steps = last.Steps + e.Steps };
        else
            _entries.Add(e);
    }
}
