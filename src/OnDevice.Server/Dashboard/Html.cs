using System.Globalization;
using System.Net;
using System.Text;

namespace OnDevice.Server.Dashboard;

/// <summary>
/// A tiny HTML writer for the dashboard: every text and attribute value goes through <see cref="WebUtility.HtmlEncode(string?)"/>,
/// raw markup is only ever the writer's own constants. No scripts, no external assets.
/// </summary>
public sealed class Html
{
    private readonly StringBuilder _sb = new();

    /// <summary>Escapes text for element content or a quoted attribute value.</summary>
    public static string Escape(string? s) => WebUtility.HtmlEncode(s ?? "");

    /// <summary>Appends escaped text.</summary>
    public Html Text(string? s) { _sb.Append(Escape(s)); return this; }

    /// <summary>Appends markup the caller built from constants (never user data).</summary>
    public Html Raw(string markup) { _sb.Append(markup); return this; }

    /// <summary>Appends <c>&lt;tag attrs&gt;text&lt;/tag&gt;</c> with escaped text.</summary>
    public Html Element(string tag, string? text, string? cssClass = null)
    {
        _sb.Append('<').Append(tag);
        if (cssClass is not null) _sb.Append(" class=\"").Append(Escape(cssClass)).Append('"');
        _sb.Append('>').Append(Escape(text)).Append("</").Append(tag).Append('>');
        return this;
    }

    /// <summary>Appends a link; <paramref name="href"/> is a path built by the dashboard, escaped as an attribute.</summary>
    public Html Link(string href, string text)
    {
        _sb.Append("<a href=\"").Append(Escape(href)).Append("\">").Append(Escape(text)).Append("</a>");
        return this;
    }

    /// <summary>Appends a table with a header row and escaped cells (a cell may be an <see cref="Html"/> fragment).</summary>
    public Html Table(string id, IReadOnlyList<string> headers, IEnumerable<IReadOnlyList<object?>> rows, string? empty = null)
    {
        var list = rows.ToList();
        if (list.Count == 0 && empty is not null) return Element("p", empty, "empty");
        _sb.Append("<table id=\"").Append(Escape(id)).Append("\"><thead><tr>");
        foreach (var h in headers) _sb.Append("<th>").Append(Escape(h)).Append("</th>");
        _sb.Append("</tr></thead><tbody>");
        foreach (var row in list)
        {
            _sb.Append("<tr>");
            foreach (var cell in row)
            {
                _sb.Append(cell is double or long or int ? "<td class=\"num\">" : "<td>");
                _sb.Append(cell switch
                {
                    null => "",
                    Html h => h.ToString(),
                    double d => Escape(Number(d)),
                    IFormattable f => Escape(f.ToString(null, CultureInfo.InvariantCulture)),
                    _ => Escape(cell.ToString()),
                });
                _sb.Append("</td>");
            }
            _sb.Append("</tr>");
        }
        _sb.Append("</tbody></table>");
        return this;
    }

    /// <summary>A number for display: up to 4 significant decimals, invariant culture.</summary>
    public static string Number(double d) =>
        double.IsNaN(d) ? "–" : Math.Abs(d) >= 1000 || d == Math.Floor(d) ? d.ToString("#,0.##", CultureInfo.InvariantCulture) : d.ToString("0.####", CultureInfo.InvariantCulture);

    /// <summary>A UTC time for display.</summary>
    public static string Time(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    /// <summary>A fragment holding escaped text.</summary>
    public static Html Of(string? text) => new Html().Text(text);

    /// <summary>A fragment holding a link.</summary>
    public static Html LinkTo(string href, string text) => new Html().Link(href, text);

    /// <inheritdoc/>
    public override string ToString() => _sb.ToString();

    /// <summary>The dashboard's stylesheet (embedded in every page).</summary>
    public const string Css = """
        body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
        header{background:#1d2330;color:#fff;padding:10px 24px;display:flex;gap:20px;align-items:center}
        header a{color:#cfe0ff;text-decoration:none}header a:hover{text-decoration:underline}
        header .brand{font-weight:600;color:#fff;margin-right:12px}
        header form{margin-left:auto}
        main{padding:16px 24px;max-width:1200px}
        h1{font-size:20px;margin:8px 0 14px}h2{font-size:16px;margin:22px 0 8px}
        table{border-collapse:collapse;background:#fff;margin:6px 0 14px;min-width:50%}
        th,td{border:1px solid #d9dde5;padding:4px 9px;text-align:left;vertical-align:top}
        th{background:#eef1f6;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
        code,pre{font:12px ui-monospace,monospace;white-space:pre-wrap;word-break:break-all}
        .empty{color:#6b7280;font-style:italic}
        .pass,.active,.completed{color:#116b2f;font-weight:600}.fail,.halted,.rolled-back,.aborted{color:#b3261e;font-weight:600}
        .insufficient,.paused,.waiting{color:#8a5a00;font-weight:600}
        .card{background:#fff;border:1px solid #d9dde5;padding:10px 14px;margin:8px 0;display:inline-block;vertical-align:top}
        .login{max-width:420px;margin:60px auto;background:#fff;border:1px solid #d9dde5;padding:20px}
        .login input[type=password]{width:100%;box-sizing:border-box;padding:6px;margin:8px 0}
        .error{color:#b3261e}
        svg text{font:11px system-ui,sans-serif;fill:#1d2330}
        """;
}
