using OnDevice.Core;
using OnDevice.Evaluation.Data;
using OnDevice.Evaluation.Tasks;
using OnDevice.TestSupport;

namespace OnDevice.Evaluation.Tests;

public class TextMetricTests
{
    [Theory]
    [InlineData("kitten", "sitting", 3)]
    [InlineData("", "abc", 3)]
    [InlineData("flaw", "lawn", 2)]
    [InlineData("中文识别", "中文认别", 1)]
    public void Levenshtein_OnCharacters(string a, string b, int expected) =>
        Assert.Equal(expected, TextMetrics.Levenshtein(TextMetrics.Characters(a), TextMetrics.Characters(b)));

    [Fact]
    public void Characters_CountsGraphemes()
    {
        Assert.Equal(3, TextMetrics.Characters("e\u0301ab").Length); // é as e + combining acute is one character
        Assert.Equal(4, TextMetrics.Characters("中文识别").Length);
    }

    [Fact]
    public void CtcScore_CerWerAndExactMatch()
    {
        var r = CtcTask.ScoreText(0, " helo world ", "hello world", 0);
        Assert.Equal(new double[] { 1, 1, 11, 1, 2, 0 }, r.Stats);
        Assert.False(r.Correct);
        var task = new CtcTask();
        Assert.Equal(1.0 / 11, task.Metrics[0].FromSums(r.Stats), 12);
        Assert.Equal(0.5, task.Metrics[1].FromSums(r.Stats), 12);
        Assert.True(CtcTask.ScoreText(1, "hello world  ", "hello world", 0).Correct);
    }

    [Fact]
    public void RougeL_AndBleu_OnKnownCases()
    {
        var c = TextMetrics.Words("the cat sat on the mat");
        var r = TextMetrics.Words("the cat is on the mat");
        // LCS = the cat on the mat (5): P = R = 5/6.
        Assert.Equal(5.0 / 6, TextMetrics.RougeL(c, r), 12);
        var (m, t) = TextMetrics.NGramStats(c, r);
        Assert.Equal(new[] { 5, 3, 1, 0 }, m);
        Assert.Equal(new[] { 6, 5, 4, 3 }, t);
        Assert.Equal(0, TextMetrics.Bleu(m.Select(x => (double)x).ToArray(), t.Select(x => (double)x).ToArray(), 6, 6));
        // Identical sentences of 4+ tokens: BLEU 1. Shorter candidate: brevity penalty exp(1 − r/c).
        var s = TextMetrics.Words("a b c d e");
        var (m2, t2) = TextMetrics.NGramStats(s, s);
        Assert.Equal(1, TextMetrics.Bleu(m2.Select(x => (double)x).ToArray(), t2.Select(x => (double)x).ToArray(), 5, 5), 12);
        Assert.Equal(Math.Exp(1 - 10.0 / 5), TextMetrics.Bleu(m2.Select(x => (double)x).ToArray(), t2.Select(x => (double)x).ToArray(), 5, 10), 12);
        // Clipping: "the the the" against "the cat" matches one "the".
        Assert.Equal(1, TextMetrics.NGramStats(TextMetrics.Words("the the the"), TextMetrics.Words("the cat")).Matches[0]);
    }

    [Fact]
    public void CtcGreedy_MergesRepeatsAndDropsBlanks()
    {
        string[] dict = ["", "a", "b", " "];
        // steps: a a blank a b b space
        int[] best = [1, 1, 0, 1, 2, 2, 3];
        var probs = new float[best.Length * 4];
        for (int t = 0; t < best.Length; t++) probs[t * 4 + best[t]] = 1;
        Assert.Equal("aab ", CtcDecoder.Greedy(probs, best.Length, 4, dict));
    }

    [Fact]
    public void CtcDictionary_IsBlankLinesSpace()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("d.txt"), "x\r\ny\nz\n");
        Assert.Equal(["", "x", "y", "z", " "], CtcDecoder.LoadDictionary(dir.File("d.txt")));
    }
}

public class PreprocessingTests
{
    [Fact]
    public void Ctc_IsBgr_Height48_AspectWidth_Normalized_Padded()
    {
        // 2x1 image: red then blue. Width by aspect: ceil(48·2/1) = 96, padded to 320.
        var img = new Image(2, 1, 3, [255, 0, 0, 0, 0, 255]);
        var t = CtcPreprocessing.Prepare(img);
        Assert.Equal(new long[] { 1, 3, 48, 320 }, t.Dims);
        var v = t.ToFloatArray();
        float At(int c, int y, int x) => v[(c * 48 + y) * 320 + x];
        Assert.Equal(-1f, At(0, 0, 0)); // B of red
        Assert.Equal(1f, At(2, 0, 0)); // R of red
        Assert.Equal(1f, At(0, 47, 95)); // B of blue at the right edge
        Assert.Equal(0f, At(1, 10, 200)); // padding
        var wide = CtcPreprocessing.Prepare(new Image(100, 10, 1, new byte[1000]));
        Assert.Equal(480, wide.Dims[3]);
    }

    [Fact]
    public void Resize_IdentityAndHalfPixelCenters()
    {
        byte[] src = [0, 100, 200, 50];
        Assert.Equal(src, ImageOps.ResizeBilinear(src, 2, 2, 1, 2, 2));
        // Upscaling 1x2 → 1x4 with half-pixel centres: 0, 25, 75, 100 (OpenCV gives the same).
        Assert.Equal(new byte[] { 0, 25, 75, 100 }, ImageOps.ResizeBilinear([0, 100], 2, 1, 1, 4, 1));
    }

    [Fact]
    public void Classification_LayoutFromShape()
    {
        Assert.Equal((false, 224, 224), ClassificationPreprocessing.Layout(Shape.Of([1, 3, 224, 224])));
        Assert.Equal((true, 96, 128), ClassificationPreprocessing.Layout(Shape.Of([1, 96, 128, 3])));
        var t = ClassificationPreprocessing.Prepare(new Image(1, 1, 3, [255, 0, 0]), 2, 2, [0, 0, 0], [1, 1, 1], bgr: true, nhwc: true);
        Assert.Equal(new long[] { 1, 2, 2, 3 }, t.Dims);
        Assert.Equal(new float[] { 0, 0, 1 }, t.AsSpan<float>()[..3].ToArray());
    }
}

public class DatasetTests
{
    [Fact]
    public void Tsv_WithSliceFields()
    {
        using var dir = new TempDir();
        File.WriteAllBytes(dir.File("a.png"), []);
        File.WriteAllText(dir.File("labels.tsv"), "file\tlabel\tfont\tscript\na.png\thello\tsans\tlatin\n");
        var d = Dataset.Load(dir.Path);
        Assert.Equal(1, d.Count);
        Assert.Equal("hello", d.Examples[0].Label);
        Assert.Equal(["font", "script"], d.FieldNames);
        Assert.Equal("latin", d.Examples[0].Fields["script"]);
    }

    [Fact]
    public void Jsonl_TextInputs_AndNumericFields()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("labels.jsonl"), "{\"text\":\"a b\",\"label\":\"a b\",\"len\":2}\n\n{\"text\":\"c\",\"label\":\"c\",\"len\":1}\n");
        var d = Dataset.Load(dir.Path);
        Assert.Equal(2, d.Count);
        Assert.Equal("2", d.Examples[0].Fields["len"]);
        Assert.Null(d.Examples[0].File);
        Assert.Equal(1, d.Take(1).Count);
    }

    [Fact]
    public void MissingFiles_EmptySets_BadRows_AreClearErrors()
    {
        using var dir = new TempDir();
        Assert.Contains("is empty", Assert.Throws<DatasetException>(() => Dataset.Load(dir.Path)).Message);
        File.WriteAllText(dir.File("labels.tsv"), "file\tlabel\nmissing.png\tx\n");
        var e = Assert.Throws<DatasetException>(() => Dataset.Load(dir.Path));
        Assert.Contains("missing.png", e.Message);
        File.WriteAllText(dir.File("labels.tsv"), "file\tlabel\n");
        Assert.Contains("no examples", Assert.Throws<DatasetException>(() => Dataset.Load(dir.Path)).Message);
        File.WriteAllText(dir.File("labels.tsv"), "file\tlabel\na.png\n");
        Assert.Contains(":2: 1 columns", Assert.Throws<DatasetException>(() => Dataset.Load(dir.Path)).Message);
        File.WriteAllText(dir.File("labels.tsv"), "name\tlabel\na\tb\n");
        Assert.Contains("'file' or 'text' column", Assert.Throws<DatasetException>(() => Dataset.Load(dir.Path)).Message);
        Assert.Contains("does not exist", Assert.Throws<DatasetException>(() => Dataset.Load(dir.File("nope"))).Message);
    }

    [Fact]
    public void Unlabelled_FolderListsInputs()
    {
        using var dir = new TempDir();
        File.WriteAllBytes(dir.File("b.npy"), []);
        File.WriteAllBytes(dir.File("a.png"), []);
        Directory.CreateDirectory(dir.File("c"));
        var d = Dataset.Load(dir.Path);
        Assert.Equal(["a.png", "b.npy", "c"], d.Examples.Select(e => e.Id));
        Assert.All(d.Examples, e => Assert.Null(e.Label));
    }
}

public class GenerationTaskTests
{
    [Fact]
    public void Scores_PredictionFiles_AndRefusesLengthMismatch()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("labels.jsonl"), "{\"text\":\"q1\",\"label\":\"the cat sat on the mat\"}\n{\"text\":\"q2\",\"label\":\"hello world\"}\n");
        File.WriteAllText(dir.File("a.txt"), "the cat sat on the mat\nhello there\n");
        File.WriteAllText(dir.File("b.jsonl"), "{\"prediction\":\"the cat sat on the mat\"}\n");
        var data = Dataset.Load(dir.Path);
        var task = new GenerationTask();
        var r = Evaluator.Evaluate(task, dir.File("a.txt"), data, new TaskOptions(), new EvalOptions { Bootstrap = 200 });
        Assert.Equal("rougeL", r.Metric);
        Assert.Equal((1 + 0.5) / 2, r.Value, 12);
        Assert.Equal(0.5, r.Metrics.Single(m => m.Name == "exactMatch").Value);
        Assert.Null(r.Latency);
        var e = Assert.Throws<EvaluationException>(() => Evaluator.Compare(task, dir.File("a.txt"), dir.File("b.jsonl"), data, new TaskOptions(), new EvalOptions()));
        Assert.Contains("has 1 predictions, the dataset has 2", e.Message);
    }

    [Fact]
    public void Compare_OfPredictionFiles_GivesMcNemarAndVerdict()
    {
        using var dir = new TempDir();
        var refs = Enumerable.Range(0, 40).Select(i => $"answer number {i}").ToList();
        File.WriteAllLines(dir.File("labels.tsv"), ["text\tlabel\tgroup", .. refs.Select((r, i) => $"q{i}\t{r}\t{(i % 2 == 0 ? "even" : "odd")}")]);
        File.WriteAllLines(dir.File("a.txt"), refs);
        File.WriteAllLines(dir.File("b.txt"), refs.Select((r, i) => i % 2 == 1 && i < 30 ? "wrong" : r));
        var data = Dataset.Load(dir.Path);
        var r = Evaluator.Compare(new GenerationTask(), dir.File("a.txt"), dir.File("b.txt"), data, new TaskOptions(),
            new EvalOptions { Bootstrap = 500, Seed = 7, Margin = 0.05, SliceBy = ["group"] });
        Assert.Equal((15, 0), (r.OnlyACorrect, r.OnlyBCorrect));
        Assert.Equal(2 * Math.Pow(0.5, 15), r.McnemarP!.Value, 12);
        Assert.Equal("inferior", r.Verdict);
        var odd = r.Slices.Single(s => s.Value == "odd");
        var even = r.Slices.Single(s => s.Value == "even");
        Assert.True(odd.Flagged && !even.Flagged && even.Delta == 0);
        Assert.Equal(15, r.DisagreementCount);
    }
}
