namespace OnDevice.Formats.Tests;

/// <summary>
/// Applies random, reproducible damage to a valid file and checks that a reader either accepts the result or
/// rejects it with <see cref="ModelFormatException"/>, never with any other exception.
/// </summary>
internal static class ByteFuzzer
{
    private static readonly byte[] Interesting =
        "{}()[],:'\"0123456789-+. \n\\eE"u8.ToArray().Concat(new byte[] { 0, 0x7F, 0x80, 0xC3, 0xFF }).ToArray();

    public sealed record Outcome(int Accepted, int Rejected, IReadOnlyList<string> Failures);

    /// <summary>
    /// Runs <paramref name="cases"/> mutated copies of <paramref name="valid"/> through <paramref name="read"/>.
    /// Most mutations land in the first <paramref name="headerBytes"/> bytes, where the structure lives.
    /// </summary>
    public static Outcome Run(byte[] valid, int headerBytes, int cases, int seed, Action<byte[]> read)
    {
        var rng = new Random(seed);
        var failures = new List<string>();
        int accepted = 0, rejected = 0;
        for (int i = 0; i < cases; i++)
        {
            var (bytes, what) = Mutate(valid, headerBytes, rng);
            try
            {
                read(bytes);
                accepted++;
            }
            catch (ModelFormatException)
            {
                rejected++;
            }
            catch (Exception e)
            {
                failures.Add($"case {i} ({what}): {e.GetType().Name}: {e.Message}");
            }
        }
        return new Outcome(accepted, rejected, failures);
    }

    private static (byte[] Bytes, string What) Mutate(byte[] valid, int headerBytes, Random rng)
    {
        var b = new List<byte>(valid);
        var what = new List<string>();
        int count = rng.Next(1, 4);
        for (int m = 0; m < count && b.Count > 0; m++)
        {
            int at = rng.Next(10) < 8 ? rng.Next(Math.Min(headerBytes, b.Count)) : rng.Next(b.Count);
            switch (rng.Next(6))
            {
                case 0:
                    byte v = (byte)rng.Next(256);
                    b[at] = v;
                    what.Add($"set [{at}]=0x{v:X2}");
                    break;
                case 1:
                    byte c = Interesting[rng.Next(Interesting.Length)];
                    b[at] = c;
                    what.Add($"set [{at}]=0x{c:X2}");
                    break;
                case 2:
                    int keep = rng.Next(b.Count);
                    b.RemoveRange(keep, b.Count - keep);
                    what.Add($"truncate to {keep}");
                    break;
                case 3:
                    byte ins = Interesting[rng.Next(Interesting.Length)];
                    b.Insert(at, ins);
                    what.Add($"insert 0x{ins:X2} at {at}");
                    break;
                case 4:
                    b.RemoveAt(at);
                    what.Add($"delete [{at}]");
                    break;
                default:
                    // Damage the length fields at the very start of the file.
                    int lf = rng.Next(Math.Min(12, b.Count));
                    byte lv = (byte)rng.Next(256);
                    b[lf] = lv;
                    what.Add($"set [{lf}]=0x{lv:X2}");
                    break;
            }
        }
        return (b.ToArray(), string.Join(", ", what));
    }
}
