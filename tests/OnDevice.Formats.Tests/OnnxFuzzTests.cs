using OnDevice.Core;
using OnDevice.Formats.Onnx;
using OnDevice.TestSupport;

namespace OnDevice.Formats.Tests;

/// <summary>Mutates real sample models and asserts: a valid graph or a typed error, nothing else.</summary>
public class OnnxFuzzTests
{
    [Theory]
    [InlineData("paddleocr-cls", 1500)]
    [InlineData("openwakeword-hello-deepa", 1000)]
    [InlineData("silero-vad-16k-op15", 700)]
    public void MutatedSampleModels_ReadOrFailWithATypedError(string sample, int mutations)
    {
        var original = File.ReadAllBytes(SampleModels.Path(sample));
        var rng = new Random(20261121);
        var work = (byte[])original.Clone();
        int ok = 0, rejected = 0;
        for (int i = 0; i < mutations; i++)
        {
            var changed = Mutate(work, rng, out int length);
            try
            {
                var m = OnnxReader.Read(work.AsMemory(0, length), new OnnxReadOptions { Validate = true });
                // What reads must also be usable downstream without crashing.
                ModelSummary.Of(m);
                ShapeInference.Infer(m);
                OnnxReader.Read(OnnxWriter.ToBytes(m));
                ok++;
            }
            catch (ModelFormatException)
            {
                rejected++;
            }
            catch (Exception e)
            {
                Assert.Fail($"mutation {i} of {sample} ({string.Join(", ", changed.Select(c => c.Offset))}; length {length}) threw {e.GetType().Name}: {e.Message}\n{e.StackTrace}");
            }
            for (int c = changed.Count - 1; c >= 0; c--) work[changed[c].Offset] = changed[c].Value;
        }
        Assert.Equal(original, work);
        Assert.True(rejected > mutations / 10, $"only {rejected} of {mutations} mutations were rejected");
        Assert.True(ok + rejected == mutations);
    }

    private static List<(int Offset, byte Value)> Mutate(byte[] data, Random rng, out int length)
    {
        var changed = new List<(int, byte)>();
        length = data.Length;
        int kind = rng.Next(6);
        int count = kind == 0 ? 1 : rng.Next(1, 8);
        for (int k = 0; k < count; k++)
        {
            // Most interesting bytes (tags, lengths) are near structure; bias towards the start of the file too.
            int at = rng.Next(4) == 0 ? rng.Next(Math.Min(data.Length, 512)) : rng.Next(data.Length);
            changed.Add((at, data[at]));
            data[at] = kind switch
            {
                1 => 0xFF,
                2 => 0x00,
                3 => (byte)(data[at] ^ (1 << rng.Next(8))),
                4 => 0x80,
                _ => (byte)rng.Next(256),
            };
        }
        if (rng.Next(5) == 0) length = rng.Next(1, data.Length);
        return changed;
    }
}
