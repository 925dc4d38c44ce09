using System.Security.Cryptography;
using OnDevice.Federated.SecureAggregation;

namespace OnDevice.Federated.Tests;

/// <summary>Drives one in-process round: every message goes through bytes, clients drop out at chosen phases.</summary>
internal sealed class SecAggHarness : IDisposable
{
    public SecAggParameters P { get; }
    public SecAggServer Server { get; }
    public Dictionary<uint, SecAggClient> Clients { get; } = [];
    public Dictionary<uint, ulong[]> Inputs { get; } = [];

    /// <summary>Hooks to tamper with messages: (phase 0..3, client id, message) → message to deliver, or null to drop it.</summary>
    public Func<int, uint, byte[], byte[]?>? ToServer { get; set; }
    public Func<int, uint, byte[], byte[]?>? ToClient { get; set; }

    public SecAggHarness(int n, int t, int length, int bits, int seed = 1)
    {
        P = new SecAggParameters(SecAggParameters.NewRoundId(), t, n, length, bits);
        Server = new SecAggServer(P);
        var rng = new Random(seed);
        for (uint id = 1; id <= n; id++)
        {
            Clients[id] = new SecAggClient(P, id);
            Inputs[id] = Enumerable.Range(0, length).Select(_ => (ulong)rng.NextInt64() & P.Mask).ToArray();
        }
    }

    /// <summary>Runs the round; <paramref name="drops"/>[phase] are the clients that vanish before sending that phase's message.</summary>
    public void Run(params HashSet<uint>[] drops)
    {
        var alive = new HashSet<uint>(Clients.Keys);
        for (int phase = 0; phase < 4; phase++)
        {
            if (phase < drops.Length) alive.ExceptWith(drops[phase]);
            foreach (var id in alive.ToArray())
            {
                var c = Clients[id];
                byte[]? outgoing;
                try
                {
                    byte[]? incoming = phase == 0 ? [] : Server.MessageFor(id);
                    if (incoming is null) { alive.Remove(id); continue; }
                    if (phase > 0 && ToClient is not null) incoming = ToClient(phase, id, incoming);
                    if (incoming is null) { alive.Remove(id); continue; }
                    outgoing = phase switch
                    {
                        0 => c.AdvertiseKeys(),
                        1 => c.ShareKeys(incoming),
                        2 => c.MaskedInput(incoming, Inputs[id]),
                        _ => c.Unmask(incoming),
                    };
                }
                catch (ProtocolException) { alive.Remove(id); continue; }
                if (ToServer is not null) outgoing = ToServer(phase, id, outgoing);
                if (outgoing is null) continue;
                try { Server.Receive(outgoing); }
                catch (ProtocolException) { }
            }
            Server.CloseRound();
            if (Server.Phase == SecAggPhase.Failed) return;
        }
    }

    public ulong[] ExpectedSum(IEnumerable<uint> ids)
    {
        var s = new ulong[P.VectorLength];
        foreach (var id in ids)
            for (int i = 0; i < s.Length; i++) s[i] = (s[i] + Inputs[id][i]) & P.Mask;
        return s;
    }

    public static HashSet<uint> Pick(int n, int count, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(1, n).Select(i => (uint)i).OrderBy(_ => rng.Next()).Take(count).ToHashSet();
    }

    public void Dispose()
    {
        foreach (var c in Clients.Values) c.Dispose();
    }
}
