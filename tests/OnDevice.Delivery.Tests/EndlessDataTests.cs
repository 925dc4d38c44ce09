using OnDevice.TestSupport;

namespace OnDevice.Delivery.Tests;

/// <summary>Attack: a server that never stops sending (endless data); reading must stop right after the declared length.</summary>
public class EndlessDataTests
{
    [Fact]
    public async Task Endless_stream_stops_one_byte_past_the_declared_length()
    {
        var file = new TargetFile(3_000_000, new string('0', 64), null);
        var endless = new EndlessStream(0x41);
        var sink = new MemoryStream();
        using var v = new TargetVerifier("big", file);
        var e = await Assert.ThrowsAsync<TargetLengthException>(() => v.CopyAsync(endless, sink));
        Assert.True(e.TooLong);
        Assert.Equal(3_000_001, endless.Served);
        Assert.True(sink.Length <= file.Length);
    }
}
