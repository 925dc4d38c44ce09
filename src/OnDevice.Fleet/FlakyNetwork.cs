using System.Net;

namespace OnDevice.Fleet;

/// <summary>
/// Injects network failures into a device's HTTP traffic: a fraction of requests fail before reaching the server
/// (connection refused), and as many again reach the server but lose their answer (the connection drops after the
/// server acted, so retries must be idempotent). Counts what it did. Thread-safe; shared by every simulated device.
/// </summary>
public sealed class FlakyNetworkHandler : DelegatingHandler
{
    private readonly double _rate;
    private readonly Random _rng;
    private long _requests, _refused, _dropped;

    /// <summary>Creates the handler; <paramref name="failureRate"/> is the fraction of requests that fail, half before and half after the server.</summary>
    /// <exception cref="ArgumentException">Rate outside [0, 1).</exception>
    public FlakyNetworkHandler(double failureRate, int seed, HttpMessageHandler? inner = null) : base(inner ?? new SocketsHttpHandler { MaxConnectionsPerServer = 256, PooledConnectionLifetime = TimeSpan.FromMinutes(5) })
    {
        if (!(failureRate is >= 0 and < 1)) throw new ArgumentException($"the failure rate must lie in [0, 1), got {failureRate}");
        _rate = failureRate;
        _rng = new Random(seed);
    }

    /// <summary>Requests sent by devices.</summary>
    public long Requests => Interlocked.Read(ref _requests);
    /// <summary>Requests failed before reaching the server.</summary>
    public long Refused => Interlocked.Read(ref _refused);
    /// <summary>Requests whose answer was lost after the server handled them.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <inheritdoc/>
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _requests);
        double u;
        lock (_rng) u = _rng.NextDouble();
        if (u < _rate / 2)
        {
            Interlocked.Increment(ref _refused);
            throw new HttpRequestException(HttpRequestError.ConnectionError, "simulated network failure: connection refused");
        }
        var response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
        if (u < _rate)
        {
            Interlocked.Increment(ref _dropped);
            response.Dispose();
            throw new HttpRequestException(HttpRequestError.ResponseEnded, "simulated network failure: connection dropped before the answer arrived");
        }
        return response;
    }
}
