using OnDevice.Evaluation.Data;
using OnDevice.Evaluation.Reporting;
using OnDevice.Evaluation.Tasks;
using OnDevice.TestSupport;

namespace OnDevice.Evaluation.Tests;

/// <summary>The HTML report of a real comparison (fp32 recognizer vs a 6-bit weight copy), opened in headless Chromium.</summary>
[Trait("Category", "Ocr")]
[Trait("Category", "Browser")]
[Collection("textlines")]
public class ReportTests(TextLineFixture lines)
{
    [Fact]
    public async Task Report_RendersItsCharts_InChromium_WithoutExternalRequests()
    {
        if (!Magick.Require() || !HeadlessChromium.Require()) return;
        var r = Evaluator.Compare(new CtcTask(), lines.Recognizer, lines.Perturbed(5), Dataset.Load(lines.Degraded), new TaskOptions { Dictionary = lines.Dictionary },
            new EvalOptions { Bootstrap = 300, Seed = 2, Margin = 0.01, LatencyRuns = 8, Warmup = 1, SliceBy = ["degradation", "script"] });
        Assert.True(r.DisagreementCount > 0, "a 5-bit copy should disagree on some degraded lines");
        var html = lines.Scratch("report.html");
        HtmlReport.Write(r, html);
        var text = File.ReadAllText(html);
        Assert.DoesNotContain("src=\"http", text);
        Assert.Contains("data:image/png;base64,", text);

        await using var browser = await HeadlessChromium.StartAsync();
        await browser.NavigateAsync(new Uri(html).AbsoluteUri);
        var charts = await browser.EvaluateAsync(
            "[...document.querySelectorAll('svg.chart')].map(s => { const b = s.getBoundingClientRect(); return { id: s.id, w: b.width, h: b.height, shapes: s.querySelectorAll('rect,line,circle').length }; })");
        var ids = charts.EnumerateArray().Select(c => c.GetProperty("id").GetString()).ToList();
        Assert.Equal(["metrics-chart", "delta-chart", "latency-chart", "slice-chart"], ids);
        foreach (var c in charts.EnumerateArray())
        {
            Assert.True(c.GetProperty("w").GetDouble() > 100 && c.GetProperty("h").GetDouble() > 20, $"{c} has no size");
            Assert.True(c.GetProperty("shapes").GetInt32() > 2, $"{c} drew nothing");
        }
        var bars = await browser.EvaluateAsync("document.querySelectorAll('#latency-chart rect.bar-a').length + ',' + document.querySelectorAll('#latency-chart rect.bar-b').length");
        Assert.DoesNotContain("0", bars.GetString()!.Split(','));
        // Thumbnails decoded by the browser; the filter hides rows.
        var thumbs = await browser.EvaluateAsync("[...document.querySelectorAll('img.thumb')].filter(i => i.complete && i.naturalWidth > 0).length");
        Assert.Equal(r.DisagreementCount, thumbs.GetInt32());
        var shown = await browser.EvaluateAsync("document.getElementById('filter').value = 'zzz-no-such-text'; filterRows(); document.getElementById('shown').textContent");
        Assert.Equal("0 shown", shown.GetString());
        await browser.EvaluateAsync("document.getElementById('filter').value = ''; filterRows(); 1");

        var png = await browser.ScreenshotAsync();
        var shot = lines.Scratch("report.png");
        await File.WriteAllBytesAsync(shot, png);
        var img = PngDecoder.Decode(shot);
        Assert.True(img.Width >= 800 && img.Height > 600, $"screenshot {img.Width}x{img.Height}");
        Assert.True(img.Pixels.Distinct().Count() > 10, "screenshot is blank");
        Assert.All(browser.Requests, u => Assert.True(u.StartsWith("file:", StringComparison.Ordinal) || u.StartsWith("data:", StringComparison.Ordinal), $"external request {u}"));
        Console.WriteLine($"screenshot: {shot}");
    }
}
