namespace OnDevice.Delivery.Tests;

/// <summary>Attack: a server that never stops sending (endless data); reading must stop right after the declared length.</summary>
public class EndlessDataTests
{
    private sealed class EndlessStream : Stream
    {
        public long Served { get; private set; }
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => Served; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count)
        {
            Array.Fill(buffer, (byte)0x41, offset, count);
            Served += count;
            return count;
        }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    [Fact]
    public async Task Endless_stream_stops_one_byte_past_the_declared_length()
    {
        var file = new TargetFile(3_000_000, new string('0', 64), null);
        var endless = new EndlessStream();
        var sink = new MemoryStream();
        using var v = new TargetVerifier("big", file);
        var e = await Assert.ThrowsAsync<TargetLengthException>(() => v.CopyAsync(endless, sink));
        Assert.True(e.TooLong);
        Assert.Equal(3_000_001, endless.Served);
        Assert.True(sink.Length <= file.Length);
    }
}
