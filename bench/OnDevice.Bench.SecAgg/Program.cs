// Secure-aggregation cost: n clients × L-entry vectors, a fraction of clients dropping after ShareKeys (before sending
// their masked input — the case that costs the server most), as in Bonawitz et al. 2017, Figure/Table of the Java prototype.
// Usage: dotnet run -c Release --project bench/OnDevice.Bench.SecAgg -- CLIENTS LENGTH DROPOUT[,DROPOUT…] [BITS] [THREADS]
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using OnDevice.Federated.SecureAggregation;

var inv = CultureInfo.InvariantCulture;
if (args.Length > 0 && args[0] == "micro")
{
    // per-operation CPU costs (thread CPU time, so other processes on the machine do not inflate them)
    double Cpu(Action a, int reps)
    {
        a();
        var t0 = ThreadCpu.Seconds();
        for (int i = 0; i < reps; i++) a();
        return (ThreadCpu.Seconds() - t0) / reps * 1000;
    }
    using var ka = System.Security.Cryptography.ECDiffieHellman.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256);
    using var kb = System.Security.Cryptography.ECDiffieHellman.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256);
    var qb = kb.ExportParameters(false);
    var holders500 = Enumerable.Range(1, 500).Select(i => (uint)i).ToArray();
    var acc100k = new ulong[100_000];
    var gkey = new byte[32];
    var plain = new byte[140];
    var ct = new byte[140];
    var tag = new byte[16];
    var nonce = new byte[12];
    Console.WriteLine(string.Format(inv, "cpu_ms import_public {0:0.000}", Cpu(() => { using var k = System.Security.Cryptography.ECDiffieHellman.Create(new System.Security.Cryptography.ECParameters { Curve = qb.Curve, Q = qb.Q }); }, 300)));
    Console.WriteLine(string.Format(inv, "cpu_ms ecdh_derive {0:0.000}", Cpu(() => ka.DeriveRawSecretAgreement(kb.PublicKey), 300)));
    Console.WriteLine(string.Format(inv, "cpu_ms gcm_140B {0:0.000}", Cpu(() => { using var g = new System.Security.Cryptography.AesGcm(gkey, 16); g.Encrypt(nonce, plain, ct, tag); }, 1000)));
    Console.WriteLine(string.Format(inv, "cpu_ms mask_100k {0:0.000}", Cpu(() => MaskGenerator.Apply(gkey, acc100k, 32, 1), 200)));
    Console.WriteLine(string.Format(inv, "cpu_ms shamir_split_500_t251 {0:0.000}", Cpu(() => Shamir.Split(new byte[32], 251, holders500), 10)));
    var h100 = holders500[..100];
    Console.WriteLine(string.Format(inv, "cpu_ms shamir_split_100_t51 {0:0.000}", Cpu(() => Shamir.Split(new byte[32], 51, h100), 50)));
    return 0;
}
if (args.Length > 0 && args[0] == "micro-old")
{
    using var a = System.Security.Cryptography.ECDiffieHellman.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256);
    using var b = System.Security.Cryptography.ECDiffieHellman.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256);
    var pb = b.ExportParameters(false);
    var sw0 = Stopwatch.StartNew();
    for (int i = 0; i < 200; i++) { using var imp = System.Security.Cryptography.ECDiffieHellman.Create(new System.Security.Cryptography.ECParameters { Curve = pb.Curve, Q = pb.Q }); }
    Console.WriteLine($"import {sw0.Elapsed.TotalMilliseconds / 200:0.000} ms");
    sw0.Restart();
    for (int i = 0; i < 200; i++) a.DeriveRawSecretAgreement(b.PublicKey);
    Console.WriteLine($"derive {sw0.Elapsed.TotalMilliseconds / 200:0.000} ms");
    var holders = Enumerable.Range(1, 500).Select(i => (uint)i).ToArray();
    sw0.Restart();
    Shamir.Split(new byte[32], 251, holders);
    Console.WriteLine($"shamir split 500/251 {sw0.Elapsed.TotalMilliseconds:0.0} ms");
    sw0.Restart();
    MaskGenerator.Generate(new byte[32], 100_000, 32);
    Console.WriteLine($"mask 100k {sw0.Elapsed.TotalMilliseconds:0.00} ms");
    sw0.Restart();
    for (int i = 0; i < 10; i++) MaskGenerator.Generate(new byte[32], 100_000, 32);
    Console.WriteLine($"mask 100k {sw0.Elapsed.TotalMilliseconds / 10:0.00} ms");
    using var aes = System.Security.Cryptography.Aes.Create();
    aes.Key = new byte[32];
    var buf = new byte[400_000];
    var outb = new byte[400_000];
    sw0.Restart();
    for (int i = 0; i < 10; i++) aes.EncryptEcb(buf, outb, System.Security.Cryptography.PaddingMode.None);
    Console.WriteLine($"ecb 400KB {sw0.Elapsed.TotalMilliseconds / 10:0.00} ms");
    var accv = new ulong[100_000];
    for (int i = 0; i < 50; i++) MaskGenerator.Apply(new byte[32], accv, 32, 1);
    sw0.Restart();
    for (int i = 0; i < 100; i++) MaskGenerator.Apply(new byte[32], accv, 32, 1);
    Console.WriteLine($"apply 100k x100 {sw0.Elapsed.TotalMilliseconds / 100:0.00} ms");
    var seedArr = new byte[32];
    sw0.Restart();
    for (int i = 0; i < 100; i++) { using var a2 = System.Security.Cryptography.Aes.Create(); a2.Key = seedArr; a2.EncryptEcb(buf.AsSpan(0, 16), outb, System.Security.Cryptography.PaddingMode.None); }
    Console.WriteLine($"aes create+1 block {sw0.Elapsed.TotalMilliseconds / 100:0.000} ms");
    return 0;
}
int n = args.Length > 0 ? int.Parse(args[0], inv) : 100;
int length = args.Length > 1 ? int.Parse(args[1], inv) : 10_000;
var drops = (args.Length > 2 ? args[2] : "0,0.1,0.3").Split(',').Select(s => double.Parse(s, inv)).ToArray();
int bits = args.Length > 3 ? int.Parse(args[3], inv) : 32;
int threads = args.Length > 4 ? int.Parse(args[4], inv) : Environment.ProcessorCount;
Console.WriteLine($"# secure aggregation: {n} clients, {length:N0} entries, k = {bits}, t = {n / 2 + 1}, client threads {threads}, {Environment.ProcessorCount} cores");
Console.WriteLine("# times are thread CPU time (clock_gettime CLOCK_THREAD_CPUTIME_ID): client = its 4 protocol calls; server = Receive + MessageFor + CloseRound");
Console.WriteLine("dropout  clients_ms_median  clients_ms_mean  server_s  unmask_s  bytes_up/client  bytes_down/client  exact");
foreach (var d in drops)
{
    var p = new SecAggParameters(SecAggParameters.NewRoundId(), n / 2 + 1, n, length, bits);
    var server = new SecAggServer(p);
    var rng = new Random(7);
    var clients = Enumerable.Range(1, n).Select(i => new SecAggClient(p, (uint)i)).ToArray();
    var inputs = clients.Select(_ => Enumerable.Range(0, length).Select(_ => (ulong)rng.NextInt64() & p.Mask).ToArray()).ToArray();
    var dropped = Enumerable.Range(0, n).OrderBy(_ => rng.Next()).Take((int)Math.Round(d * n)).ToHashSet();
    var clientMs = new double[n];
    var up = new long[n];
    var down = new long[n];
    double serverCpu = 0, unmaskCpu = 0;
    var wall = Stopwatch.StartNew();
    var gate = new object();
    for (int phase = 0; phase < 4; phase++)
    {
        Parallel.For(0, n, new ParallelOptions { MaxDegreeOfParallelism = threads }, i =>
        {
            if (phase >= 2 && dropped.Contains(i)) return;
            byte[]? incoming;
            lock (gate)
            {
                var s0 = ThreadCpu.Seconds();
                incoming = phase == 0 ? [] : server.MessageFor(clients[i].Id);
                serverCpu += ThreadCpu.Seconds() - s0;
            }
            if (incoming is null) throw new InvalidOperationException($"client {i + 1} was left out");
            var c0 = ThreadCpu.Seconds();
            var msg = phase switch
            {
                0 => clients[i].AdvertiseKeys(),
                1 => clients[i].ShareKeys(incoming),
                2 => clients[i].MaskedInput(incoming, inputs[i]),
                _ => clients[i].Unmask(incoming),
            };
            clientMs[i] += (ThreadCpu.Seconds() - c0) * 1000;
            up[i] += msg.Length;
            down[i] += incoming.Length;
            lock (gate)
            {
                var s0 = ThreadCpu.Seconds();
                server.Receive(msg);
                serverCpu += ThreadCpu.Seconds() - s0;
            }
        });
        var u0 = ThreadCpu.Seconds();
        server.CloseRound();
        var closeCpu = ThreadCpu.Seconds() - u0;
        serverCpu += closeCpu;
        if (phase == 3) unmaskCpu = closeCpu;
    }
    var survivors = Enumerable.Range(0, n).Where(i => !dropped.Contains(i)).ToArray();
    var expected = new ulong[length];
    foreach (var i in survivors) for (int j = 0; j < length; j++) expected[j] = (expected[j] + inputs[i][j]) & p.Mask;
    bool exact = server.Phase == SecAggPhase.Completed && server.Result.AsSpan().SequenceEqual(expected);
    var ms = survivors.Select(i => clientMs[i]).Order().ToArray();
    Console.WriteLine(string.Format(inv, "{0,7:0.00}  {1,17:0.0}  {2,15:0.0}  {3,8:0.00}  {4,8:0.00}  {5,15:N0}  {6,17:N0}  {7}",
        d, ms[ms.Length / 2], ms.Average(), serverCpu, unmaskCpu,
        survivors.Average(i => (double)up[i]), survivors.Average(i => (double)down[i]), exact ? "yes" : "NO") + string.Format(inv, "  (wall {0:0.0} s)", wall.Elapsed.TotalSeconds));
    foreach (var c in clients) c.Dispose();
    if (!exact) return 1;
}
return 0;

/// <summary>CPU time of the calling thread (Linux clock_gettime).</summary>
internal static partial class ThreadCpu
{
    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec { public long Sec; public long Nsec; }

    [LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static partial int ClockGettime(int clock, out Timespec ts);

    public static double Seconds()
    {
        if (ClockGettime(3, out var ts) != 0) throw new InvalidOperationException("clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
        return ts.Sec + ts.Nsec * 1e-9;
    }
}
