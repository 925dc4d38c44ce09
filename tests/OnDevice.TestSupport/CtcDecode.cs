namespace OnDevice.TestSupport;

/// <summary>Greedy CTC decoding as PaddleOCR does it: arg-max per step, merge repeats, drop the blank (index 0).</summary>
public static class CtcDecode
{
    /// <summary>The PaddleOCR dictionary: index 0 is the blank, 1..n the file's lines, n+1 a space.</summary>
    public static string[] LoadDictionary(string path)
    {
        var lines = File.ReadAllText(path).Split('\n');
        if (lines.Length > 0 && lines[^1].Length == 0) lines = lines[..^1];
        return ["<blank>", .. lines.Select(l => l.TrimEnd('\r')), " "];
    }

    /// <summary>Decodes probabilities [T, C] (row-major) into text.</summary>
    public static string Greedy(ReadOnlySpan<float> probs, int steps, int classes, string[] dictionary)
    {
        var sb = new System.Text.StringBuilder();
        int prev = -1;
        for (int t = 0; t < steps; t++)
        {
            var row = probs.Slice(t * classes, classes);
            int best = 0;
            for (int c = 1; c < classes; c++) if (row[c] > row[best]) best = c;
            if (best != prev && best != 0) sb.Append(dictionary[best]);
            prev = best;
        }
        return sb.ToString();
    }
}
