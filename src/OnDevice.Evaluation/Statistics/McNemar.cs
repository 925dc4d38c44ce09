namespace OnDevice.Evaluation.Statistics;

/// <summary>McNemar's test on paired correct/incorrect outcomes.</summary>
/// <param name="OnlyACorrect">Examples A got right and B got wrong.</param>
/// <param name="OnlyBCorrect">Examples B got right and A got wrong.</param>
/// <param name="PExact">Two-sided exact p-value: 2·P(X ≤ min(b, c)), X ~ Bin(b + c, ½), capped at 1.</param>
/// <param name="PMid">Mid-p variant: the exact p minus P(X = min(b, c)) (less conservative).</param>
public sealed record McNemarResult(int OnlyACorrect, int OnlyBCorrect, double PExact, double PMid);

/// <summary>McNemar's exact test (a two-sided binomial test on the discordant pairs) and its mid-p variant.</summary>
public static class McNemar
{
    /// <summary>Tests from paired outcomes (true = correct).</summary>
    public static McNemarResult Test(IReadOnlyList<bool> a, IReadOnlyList<bool> b)
    {
        if (a.Count != b.Count) throw new ArgumentException($"paired outcomes differ in length ({a.Count} vs {b.Count})");
        int onlyA = 0, onlyB = 0;
        for (int i = 0; i < a.Count; i++)
        {
            if (a[i] && !b[i]) onlyA++;
            else if (!a[i] && b[i]) onlyB++;
        }
        return Test(onlyA, onlyB);
    }

    /// <summary>Tests from the discordant counts.</summary>
    public static McNemarResult Test(int onlyACorrect, int onlyBCorrect)
    {
        int n = onlyACorrect + onlyBCorrect;
        if (n == 0) return new McNemarResult(0, 0, 1, 1);
        int k = Math.Min(onlyACorrect, onlyBCorrect);
        double cdf = Binomial.Cdf(k, n, 0.5), pmf = Binomial.Pmf(k, n, 0.5);
        return new McNemarResult(onlyACorrect, onlyBCorrect, Math.Min(1, 2 * cdf), Math.Min(1, 2 * cdf - pmf));
    }
}
