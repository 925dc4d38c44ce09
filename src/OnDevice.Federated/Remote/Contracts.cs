namespace OnDevice.Federated.Remote;

/// <summary>Settings of a federated run hosted by the federated server.</summary>
public sealed record RunConfig
{
    /// <summary>Model name (recorded in device ledgers).</summary>
    public string Model { get; init; } = "head";

    /// <summary>Feature dimension of the head.</summary>
    public int Inputs { get; init; }

    /// <summary>Classes.</summary>
    public int Classes { get; init; }

    /// <summary>Hidden units (0 = linear).</summary>
    public int Hidden { get; init; }

    /// <summary>Rounds.</summary>
    public int Rounds { get; init; } = 10;

    /// <summary>Poisson client sampling rate.</summary>
    public double ClientRate { get; init; } = 0.5;

    /// <summary>User-level clip norm (required: bounds the quantized updates).</summary>
    public double Clip { get; init; } = 1.0;

    /// <summary>Central noise multiplier (0 = non-private).</summary>
    public double NoiseMultiplier { get; init; }

    /// <summary>δ of the reported ε.</summary>
    public double Delta { get; init; } = 1e-5;

    /// <summary>Server learning rate (FedAvg).</summary>
    public double ServerLearningRate { get; init; } = 1.0;

    /// <summary>Secure-aggregation word size.</summary>
    public int Bits { get; init; } = 32;

    /// <summary>Check-in window per round, seconds.</summary>
    public double CheckinSeconds { get; init; } = 2;

    /// <summary>Deadline of each secure-aggregation phase, seconds (stragglers after it are dropped).</summary>
    public double PhaseSeconds { get; init; } = 10;

    /// <summary>Devices that must join before round 1 starts (waited for up to <see cref="JoinTimeoutSeconds"/>).</summary>
    public int MinDevices { get; init; }

    /// <summary>How long round 1 waits for <see cref="MinDevices"/>, seconds.</summary>
    public double JoinTimeoutSeconds { get; init; } = 300;

    /// <summary>Local training of devices.</summary>
    public double LocalEpochs { get; init; } = 1;

    /// <summary>Local learning rate.</summary>
    public double LocalLearningRate { get; init; } = 0.05;

    /// <summary>Local batch size.</summary>
    public int LocalBatch { get; init; } = 10;

    /// <summary>Checks the values; throws <see cref="FederatedException"/>.</summary>
    public void Validate()
    {
        if (Inputs < 1 || Classes < 2 || Hidden < 0) throw new FederatedException("inputs ≥ 1, classes ≥ 2 and hidden ≥ 0 are required");
        if (Rounds < 1 || Rounds > 100_000) throw new FederatedException($"rounds must be 1..100000, got {Rounds}");
        if (!(ClientRate > 0 && ClientRate <= 1)) throw new FederatedException($"the client rate must be in (0, 1], got {ClientRate}");
        if (!(Clip > 0)) throw new FederatedException("a positive clip norm is required");
        if (!(NoiseMultiplier >= 0)) throw new FederatedException("the noise multiplier must be non-negative");
        if (!(Delta > 0 && Delta < 1)) throw new FederatedException("δ must be in (0, 1)");
        if (Bits < 16 || Bits > 62) throw new FederatedException($"bits must be 16..62, got {Bits}");
        if (MinDevices < 0 || !(JoinTimeoutSeconds >= 0)) throw new FederatedException("MinDevices and the join timeout must be non-negative");
        if (!(CheckinSeconds > 0 && PhaseSeconds > 0)) throw new FederatedException("deadlines must be positive");
        if (!(LocalEpochs > 0 && LocalLearningRate > 0) || LocalBatch < 1) throw new FederatedException("local training settings must be positive");
    }
}

/// <summary>What the server tells a polling device.</summary>
public sealed record DeviceTask
{
    /// <summary>True when the run has ended.</summary>
    public bool Finished { get; init; }

    /// <summary>Current round (1-based).</summary>
    public int Round { get; init; }

    /// <summary>checkin, advertise, share, masked, unmask or closing.</summary>
    public string Phase { get; init; } = "";

    /// <summary>Whether the device was sampled into this round.</summary>
    public bool Participant { get; init; }

    /// <summary>Whether the device already answered this phase.</summary>
    public bool Answered { get; init; }

    /// <summary>Secure-aggregation round id (base64), for participants.</summary>
    public string? RoundId { get; init; }

    /// <summary>t.</summary>
    public int Threshold { get; init; }

    /// <summary>n (participants).</summary>
    public int Clients { get; init; }

    /// <summary>The server's message for this phase (base64), if any.</summary>
    public string? Message { get; init; }
}

/// <summary>One finished round as recorded by the server.</summary>
public sealed record RoundRecord(int Round, int CheckedIn, int Sampled, int Survivors, bool Updated, string? Note, double? Epsilon, long BytesIn, double Seconds);

/// <summary>A run's status.</summary>
public sealed record RunStatus(string Id, RunConfig Config, string State, int RoundsDone, double? Epsilon, int Devices, List<RoundRecord> Rounds);
