using System.Globalization;

namespace OnDevice.Evaluation.Tasks;

/// <summary>Edit distances and n-gram overlaps used by the text tasks.</summary>
public static class TextMetrics
{
    /// <summary>The text as a list of user-perceived characters (grapheme clusters), so CJK and combining marks count once.</summary>
    public static string[] Characters(string s)
    {
        var list = new List<string>();
        var e = StringInfo.GetTextElementEnumerator(s);
        while (e.MoveNext()) list.Add(e.GetTextElement());
        return [.. list];
    }

    /// <summary>Whitespace-separated tokens.</summary>
    public static string[] Words(string s) => s.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);

    /// <summary>Levenshtein distance (insertions, deletions, substitutions all cost 1).</summary>
    public static int Levenshtein<T>(IReadOnlyList<T> a, IReadOnlyList<T> b)
    {
        var cmp = EqualityComparer<T>.Default;
        var prev = new int[b.Count + 1];
        var cur = new int[b.Count + 1];
        for (int j = 0; j <= b.Count; j++) prev[j] = j;
        for (int i = 1; i <= a.Count; i++)
        {
            cur[0] = i;
            for (int j = 1; j <= b.Count; j++)
                cur[j] = Math.Min(Math.Min(prev[j] + 1, cur[j - 1] + 1), prev[j - 1] + (cmp.Equals(a[i - 1], b[j - 1]) ? 0 : 1));
            (prev, cur) = (cur, prev);
        }
        return prev[b.Count];
    }

    /// <summary>Length of the longest common subsequence.</summary>
    public static int Lcs<T>(IReadOnlyList<T> a, IReadOnlyList<T> b)
    {
        var cmp = EqualityComparer<T>.Default;
        var prev = new int[b.Count + 1];
        var cur = new int[b.Count + 1];
        for (int i = 1; i <= a.Count; i++)
        {
            for (int j = 1; j <= b.Count; j++)
                cur[j] = cmp.Equals(a[i - 1], b[j - 1]) ? prev[j - 1] + 1 : Math.Max(prev[j], cur[j - 1]);
            (prev, cur) = (cur, prev);
        }
        return prev[b.Count];
    }

    /// <summary>ROUGE-L F1 (β = 1) between a candidate and a reference token list; 1 when both are empty.</summary>
    public static double RougeL(IReadOnlyList<string> candidate, IReadOnlyList<string> reference)
    {
        if (candidate.Count == 0 && reference.Count == 0) return 1;
        if (candidate.Count == 0 || reference.Count == 0) return 0;
        int l = Lcs(candidate, reference);
        if (l == 0) return 0;
        double p = (double)l / candidate.Count, r = (double)l / reference.Count;
        return 2 * p * r / (p + r);
    }

    /// <summary>Clipped n-gram matches and candidate n-gram counts for n = 1..4 (BLEU's sufficient statistics).</summary>
    public static (int[] Matches, int[] Totals) NGramStats(IReadOnlyList<string> candidate, IReadOnlyList<string> reference)
    {
        var matches = new int[4];
        var totals = new int[4];
        for (int n = 1; n <= 4; n++)
        {
            var refCounts = new Dictionary<string, int>(StringComparer.Ordinal);
            for (int i = 0; i + n <= reference.Count; i++)
            {
                var g = string.Join('\u0001', reference.Skip(i).Take(n));
                refCounts[g] = refCounts.GetValueOrDefault(g) + 1;
            }
            var candCounts = new Dictionary<string, int>(StringComparer.Ordinal);
            for (int i = 0; i + n <= candidate.Count; i++)
            {
                var g = string.Join('\u0001', candidate.Skip(i).Take(n));
                candCounts[g] = candCounts.GetValueOrDefault(g) + 1;
            }
            totals[n - 1] = Math.Max(0, candidate.Count - n + 1);
            foreach (var (g, c) in candCounts) matches[n - 1] += Math.Min(c, refCounts.GetValueOrDefault(g));
        }
        return (matches, totals);
    }

    /// <summary>Corpus BLEU-4 (Papineni et al.: geometric mean of clipped precisions, brevity penalty) from summed statistics.</summary>
    public static double Bleu(ReadOnlySpan<double> matches, ReadOnlySpan<double> totals, double candidateLength, double referenceLength)
    {
        double logSum = 0;
        for (int n = 0; n < 4; n++)
        {
            if (totals[n] == 0 || matches[n] == 0) return 0;
            logSum += Math.Log(matches[n] / totals[n]);
        }
        double bp = candidateLength >= referenceLength ? 1 : candidateLength == 0 ? 0 : Math.Exp(1 - referenceLength / candidateLength);
        return bp * Math.Exp(logSum / 4);
    }
}
