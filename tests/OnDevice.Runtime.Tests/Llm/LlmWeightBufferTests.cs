using OnDevice.Runtime.Llm;

namespace OnDevice.Runtime.Tests.Llm;

public unsafe class LlmWeightBufferTests
{
    [Fact]
    public void LargeBufferIsHugePageAlignedZeroedAndAdvisedOnLinux()
    {
        using var b = new WeightBuffer(5 * WeightBuffer.HugePage + 123, hugePages: true);
        Assert.Equal(0, (long)b.Pointer % WeightBuffer.HugePage);
        Assert.Equal(5 * WeightBuffer.HugePage + 123, b.Length);
        for (long i = 0; i < b.Length; i += 4093) Assert.Equal(0, b.Pointer[i]);
        Assert.Equal(0, b.Pointer[b.Length - 1]);
        Assert.Equal(OperatingSystem.IsLinux(), b.HugePagesAdvised);
        b.Pointer[b.Length - 1] = 7;
        Assert.Equal(7, b.AsSpan(b.Length - 1, 1)[0]);
    }

    [Fact]
    public void SmallOrPlainBuffersAreNotAdvised()
    {
        using var small = new WeightBuffer(4096, hugePages: true);
        Assert.False(small.HugePagesAdvised);
        Assert.Equal(0, (long)small.Pointer % 64);
        using var plain = new WeightBuffer(4 * WeightBuffer.HugePage, hugePages: false);
        Assert.False(plain.HugePagesAdvised);
    }

    [Fact]
    public void BadSizesAndRangesThrow()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new WeightBuffer(0));
        using var b = new WeightBuffer(100);
        Assert.Throws<ArgumentOutOfRangeException>(() => b.AsSpan(90, 11).Length);
    }

    [Fact]
    public void DisposedBufferRefusesLeasesButFreesOnlyAfterTheLastLease()
    {
        var b = new WeightBuffer(3 * WeightBuffer.HugePage);
        var lease = b.Acquire();
        b.Dispose();
        // Still held: the memory stays readable until the lease ends.
        b.Pointer[b.Length - 1] = 3;
        Assert.Equal(3, b.Pointer[b.Length - 1]);
        lease.Dispose();
        Assert.Throws<ObjectDisposedException>(() => b.Acquire());
    }

    [Theory]
    [InlineData(LlmWeights.Int8)]
    [InlineData(LlmWeights.Int4)]
    public void DisposedMatrixThrowsInsteadOfReadingFreedMemory(LlmWeights format)
    {
        int rows = 64, cols = 256;
        var rng = new Random(3);
        var w = new float[rows * cols];
        for (int i = 0; i < w.Length; i++) w[i] = rng.NextSingle() * 2 - 1;
        WeightMatrix m = format == LlmWeights.Int8 ? Q8Matrix.Quantize(w, rows, cols) : Q4Matrix.Quantize(w, rows, cols);
        var x = new float[cols];
        var y = new float[rows];
        var acts = new LlmActivations();
        var ys = GC.AllocateArray<float>(rows, pinned: true);
        fixed (float* px = x, py = y)
        {
            acts.Set(px, 1, cols, cols);
            m.Multiply(acts, py, rows, 0, rows);
            m.Dispose();
        }
        nint yp = (nint)System.Runtime.CompilerServices.Unsafe.AsPointer(ref ys[0]);
        Assert.Throws<ObjectDisposedException>(() => m.Multiply(acts, (float*)yp, rows, 0, rows));
        Assert.Throws<ObjectDisposedException>(() => m.ReadRow(0, new float[cols]));
    }

    [Fact]
    public void HugePagedWeightsGiveTheSameProductsAsPlainPages()
    {
        // 1024 × 4096 int4 = 2 MiB of quants: large enough to be advised for huge pages.
        int rows = 1024, cols = 4096;
        var rng = new Random(11);
        var w = new float[rows * cols];
        for (int i = 0; i < w.Length; i++) w[i] = rng.NextSingle() * 2 - 1;
        var x = new float[cols];
        for (int i = 0; i < x.Length; i++) x[i] = rng.NextSingle() * 2 - 1;
        bool saved = WeightBuffer.UseHugePages;
        try
        {
            WeightBuffer.UseHugePages = true;
            using var huge = Q4Matrix.Quantize(w, rows, cols);
            WeightBuffer.UseHugePages = false;
            using var plain = Q4Matrix.Quantize(w, rows, cols);
            Assert.Equal(OperatingSystem.IsLinux(), huge.Buffer.HugePagesAdvised);
            Assert.False(plain.Buffer.HugePagesAdvised);
            var y1 = new float[rows];
            var y2 = new float[rows];
            var acts = new LlmActivations();
            fixed (float* px = x, p1 = y1, p2 = y2)
            {
                acts.Set(px, 1, cols, cols);
                huge.Multiply(acts, p1, rows, 0, rows);
                plain.Multiply(acts, p2, rows, 0, rows);
            }
            Assert.Equal(y2, y1);
        }
        finally { WeightBuffer.UseHugePages = saved; }
    }
}
