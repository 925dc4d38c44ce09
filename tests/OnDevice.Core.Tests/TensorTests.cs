using OnDevice.Core;

namespace OnDevice.Core.Tests;

public class TensorTests
{
    [Fact]
    public void Int4_PacksTwoPerByte_FirstElementInLowNibble()
    {
        var packed = Int4.Pack([1, -2, 7, -8, 3]);
        Assert.Equal(new byte[] { 0xE1, 0x87, 0x03 }, packed);
        Assert.Equal(new[] { 1, -2, 7, -8, 3 }, Enumerable.Range(0, 5).Select(i => Int4.GetSigned(packed, i)));
        Assert.Equal(new[] { 1, 14, 7, 8, 3 }, Enumerable.Range(0, 5).Select(i => Int4.GetUnsigned(packed, i)));
    }

    [Fact]
    public void Int4Tensor_HasCeilHalfBytes_AndReadsBack()
    {
        var t = Tensor.FromBytes(DType.Int4, [5], Int4.Pack([1, -2, 7, -8, 3]));
        Assert.Equal(3, t.ByteLength);
        Assert.Equal(new[] { 1f, -2f, 7f, -8f, 3f }, t.ToFloatArray());
        Assert.Throws<ArgumentException>(() => Tensor.FromBytes(DType.UInt4, [5], new byte[2]));
    }

    [Theory]
    [InlineData(1.0f, 0x3F80)]
    [InlineData(-2.5f, 0xC020)]
    [InlineData(1.00390625f, 0x3F80)] // exactly halfway between 0x3F80 and 0x3F81: ties to even
    [InlineData(1.01171875f, 0x3F82)] // halfway between 0x3F81 and 0x3F82: ties to even (up)
    [InlineData(float.PositiveInfinity, 0x7F80)]
    public void BFloat16_RoundsToNearestEven(float value, int expectedBits)
    {
        Assert.Equal((ushort)expectedBits, BFloat16.FromSingle(value));
        if (float.IsFinite(value) && value is 1.0f or -2.5f) Assert.Equal(value, BFloat16.ToSingle((ushort)expectedBits));
    }

    [Fact]
    public void BFloat16_KeepsNaN()
    {
        Assert.True(float.IsNaN(BFloat16.ToSingle(BFloat16.FromSingle(float.NaN))));
    }

    [Fact]
    public void FromBytes_RejectsWrongLength_WithShapeInMessage()
    {
        var e = Assert.Throws<ArgumentException>(() => Tensor.FromBytes(DType.Float32, [2, 3], new byte[20], "w"));
        Assert.Contains("'w'", e.Message);
        Assert.Contains("24", e.Message);
    }

    [Fact]
    public void TypedViews_CheckElementSize()
    {
        var t = Tensor.FromArray<float>([1, 2, 3, 4], [2, 2]);
        Assert.Equal(4, t.AsSpan<float>().Length);
        Assert.Throws<InvalidOperationException>(() => t.AsSpan<double>().Length);
        Assert.Equal(new long[] { 1, 2, 3, 4 }, t.ToInt64Array());
    }

    [Fact]
    public void ContentEquals_ComparesDtypeDimsAndBytes()
    {
        var a = Tensor.FromArray<int>([1, 2, 3, 4], [2, 2]);
        Assert.True(a.ContentEquals(a.Clone("other")));
        Assert.False(a.ContentEquals(Tensor.FromArray<int>([1, 2, 3, 4], [4])));
        Assert.False(a.ContentEquals(Tensor.FromArray<int>([1, 2, 3, 5], [2, 2])));
        Assert.False(a.ContentEquals(Tensor.FromArray<uint>([1, 2, 3, 4], [2, 2])));
    }

    [Fact]
    public void CountElements_DetectsOverflowAndNegativeDims()
    {
        Assert.Throws<OverflowException>(() => Tensor.CountElements([long.MaxValue, 2]));
        Assert.Throws<ArgumentException>(() => Tensor.CountElements([2, -1]));
        Assert.Equal(1, Tensor.CountElements([]));
        Assert.Equal(0, Tensor.CountElements([3, 0]));
    }

    [Fact]
    public void MappedFile_SlicesAreZeroCopy_AndWritesNeverReachTheFile()
    {
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllBytes(path, Enumerable.Range(0, 64).Select(i => (byte)i).ToArray());
            var map = MappedFile.Open(path);
            var t = Tensor.FromBytes(DType.UInt8, [16], map.Slice(16, 16));
            Assert.True(t.IsMemoryMapped);
            Assert.Equal(16, t.Bytes[0]);
            t.MutableBytes[0] = 200; // copy-on-write: private page
            Assert.Equal(200, t.Bytes[0]);
            Assert.Equal(16, File.ReadAllBytes(path)[16]);
            Assert.Throws<ArgumentOutOfRangeException>(() => map.Slice(60, 8));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void DTypes_NamesRoundTrip_AndSizesAreRight()
    {
        foreach (var d in DTypes.All)
        {
            Assert.True(DTypes.TryParse(d.Name(), out var back));
            Assert.Equal(d, back);
        }
        Assert.Equal(4, DType.Int4.BitsPerElement());
        Assert.Equal(3, DType.UInt4.ByteCount(5));
        Assert.Equal(10, DType.Float16.ByteCount(5));
        Assert.True(DType.BFloat16.IsFloatingPoint());
        Assert.False(DType.Bool.IsInteger());
    }
}
