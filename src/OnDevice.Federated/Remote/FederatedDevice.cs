using System.Net.Http.Json;
using OnDevice.Federated.Privacy;
using OnDevice.Federated.SecureAggregation;
using OnDevice.Federated.Simulation;
using OnDevice.Federated.Training;

namespace OnDevice.Federated.Remote;

/// <summary>What one device did in a remote run.</summary>
/// <param name="Rounds">Rounds it took part in.</param>
/// <param name="BytesSent">Bytes of protocol messages it sent.</param>
/// <param name="Withdrawn">Whether it stopped because its privacy budget ran out.</param>
public sealed record DeviceSummary(int Rounds, long BytesSent, bool Withdrawn);

/// <summary>
/// A device taking part in runs of the federated server over HTTP: joins, checks in each round while its ledger
/// allows, and when sampled trains locally, clips, quantizes and runs its side of secure aggregation.
/// </summary>
public sealed class FederatedDevice(HttpClient http, string runId, uint id, Dataset data, PrivacyLedger? ledger = null)
{
    /// <summary>Runs until the run finishes (or the budget runs out).</summary>
    public async Task<DeviceSummary> RunAsync(CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(http);
        (await http.PostAsync($"v1/runs/{runId}/devices/{id}", null, ct)).EnsureSuccessStatusCode();
        var status = await http.GetFromJsonAsync<RunStatus>($"v1/runs/{runId}", ct) ?? throw new FederatedException($"no run {runId}");
        var cfg = status.Config;
        var head = new Head(cfg.Inputs, cfg.Classes, cfg.Hidden);
        var local = new LocalTrainingOptions { Epochs = cfg.LocalEpochs, LearningRate = cfg.LocalLearningRate, BatchSize = cfg.LocalBatch };
        var rng = new SecureRandom();
        int checkedIn = 0, rounds = 0;
        long sent = 0;
        SecAggClient? client = null;
        int clientRound = 0;
        string lastPhase = "";
        try
        {
            while (!ct.IsCancellationRequested)
            {
                var task = await http.GetFromJsonAsync<DeviceTask>($"v1/runs/{runId}/devices/{id}/task", ct) ?? throw new FederatedException("empty task");
                if (task.Finished) break;
                if (task.Phase == "checkin" && !task.Answered && checkedIn != task.Round)
                {
                    checkedIn = task.Round;
                    if (ledger is not null && cfg.NoiseMultiplier > 0 && !ledger.TryCharge(cfg.Model, runId, cfg.ClientRate, cfg.NoiseMultiplier))
                        return new DeviceSummary(rounds, sent, true);
                    await http.PostAsync($"v1/runs/{runId}/devices/{id}/checkin/{task.Round}", null, ct);
                }
                else if (task.Participant && !task.Answered && task.Phase is "advertise" or "share" or "masked" or "unmask" && (task.Phase != lastPhase || clientRound != task.Round))
                {
                    if (clientRound != task.Round)
                    {
                        client?.Dispose();
                        var p = new SecAggParameters(Convert.FromBase64String(task.RoundId!), task.Threshold, task.Clients, head.Parameters.Length, cfg.Bits);
                        client = new SecAggClient(p, id);
                        clientRound = task.Round;
                        rounds++;
                    }
                    byte[]? incoming = task.Message is null ? null : Convert.FromBase64String(task.Message);
                    byte[] msg;
                    try
                    {
                        msg = task.Phase switch
                        {
                            "advertise" => client!.AdvertiseKeys(),
                            "share" => client!.ShareKeys(incoming ?? throw new ProtocolException("no key list")),
                            "masked" => client!.MaskedInput(incoming ?? throw new ProtocolException("no shares"), await UpdateAsync(head, local, cfg, task.Clients, rng, ct)),
                            _ => client!.Unmask(incoming ?? throw new ProtocolException("no survivor list")),
                        };
                    }
                    catch (ProtocolException)
                    {
                        lastPhase = task.Phase; // this device aborts the round; it stays silent until the next one
                        continue;
                    }
                    lastPhase = task.Phase;
                    using var content = new ByteArrayContent(msg);
                    var resp = await http.PostAsync($"v1/runs/{runId}/devices/{id}/rounds/{task.Round}/messages", content, ct);
                    if (resp.IsSuccessStatusCode) sent += msg.Length;
                }
                await Task.Delay(50, ct);
            }
        }
        finally { client?.Dispose(); }
        return new DeviceSummary(rounds, sent, false);
    }

    private async Task<ulong[]> UpdateAsync(Head head, LocalTrainingOptions local, RunConfig cfg, int clients, SecureRandom rng, CancellationToken ct)
    {
        var bytes = await http.GetByteArrayAsync($"v1/runs/{runId}/model", ct);
        if (bytes.Length != head.Parameters.Length * 4) throw new FederatedException($"the server's model has {bytes.Length} bytes, expected {head.Parameters.Length * 4}");
        Buffer.BlockCopy(bytes, 0, head.Parameters, 0, bytes.Length);
        var (delta, _, _) = ClientUpdate.Compute(head, data, local, cfg.Clip, (int)id, rng);
        return new UpdateQuantizer(cfg.Bits, clients, cfg.Clip).Encode(delta, rng);
    }
}
