using OnDevice.Server.Storage;

namespace OnDevice.Server.Dashboard;

/// <summary>
/// The read-only operator dashboard under <c>/dashboard</c>: server-rendered HTML, one embedded stylesheet, no scripts
/// and no external assets. Every page needs a token with at least the reader role (the operator token works), given
/// once through the login form (<c>/dashboard/login</c>) or as <c>?token=</c> on any page; the server then keeps it in
/// an HttpOnly, SameSite=Strict cookie scoped to <c>/dashboard</c> and redirects to the same page without the token in
/// its address.
/// </summary>
public static partial class DashboardEndpoints
{
    /// <summary>Name of the cookie holding the dashboard token.</summary>
    public const string Cookie = "ondevice_dashboard";

    private const string AuthorizedItem = "ondevice.dashboard.actor";

    /// <summary>Maps the dashboard pages.</summary>
    public static IEndpointRouteBuilder MapDashboard(this IEndpointRouteBuilder app)
    {
        app.MapGet("/dashboard/login", (HttpContext http, string? error) => Page(http, "Sign in", LoginForm(error, http.Request.Query["return"])));
        app.MapPost("/dashboard/login", async Task<IResult> (HttpContext http, CancellationToken ct) =>
        {
            var form = await http.Request.ReadFormAsync(ct);
            var token = form["token"].ToString().Trim();
            var back = SafeReturn(form["return"]);
            if (await AuthorizeAsync(http, token, ct) is { } problem)
                return Page(http, "Sign in", LoginForm(problem, back), StatusCodes.Status401Unauthorized);
            SetCookie(http, token);
            return Results.Redirect(back);
        });
        app.MapPost("/dashboard/logout", (HttpContext http) =>
        {
            http.Response.Cookies.Delete(Cookie, new CookieOptions { Path = "/dashboard" });
            return Results.Redirect("/dashboard/login");
        });

        var pages = app.MapGroup("/dashboard").AddEndpointFilter(async (ctx, next) =>
        {
            var http = ctx.HttpContext;
            if (http.Request.Query.TryGetValue("token", out var q))
            {
                var token = q.ToString().Trim();
                if (await AuthorizeAsync(http, token, http.RequestAborted) is { } problem)
                    return Page(http, "Sign in", LoginForm(problem, http.Request.Path), StatusCodes.Status401Unauthorized);
                SetCookie(http, token);
                var rest = http.Request.Query.Where(kv => kv.Key != "token").Select(kv => $"{Uri.EscapeDataString(kv.Key)}={Uri.EscapeDataString(kv.Value.ToString())}");
                var query = string.Join('&', rest);
                return Results.Redirect(http.Request.PathBase + http.Request.Path + (query.Length > 0 ? "?" + query : ""));
            }
            var cookie = http.Request.Cookies[Cookie];
            if (cookie is null || await AuthorizeAsync(http, cookie, http.RequestAborted) is not null)
                return Results.Redirect("/dashboard/login?return=" + Uri.EscapeDataString(http.Request.Path + http.Request.QueryString));
            return await next(ctx);
        });
        MapPages(pages);
        return app;
    }

    /// <summary>Null when the token exists with at least the reader role, otherwise the reason.</summary>
    private static async Task<string?> AuthorizeAsync(HttpContext http, string token, CancellationToken ct)
    {
        if (token.Length == 0) return "enter a token";
        var store = http.RequestServices.GetRequiredService<IDeliveryStore>();
        var row = await store.FindTokenAsync(TokenAuth.Hash(token), ct);
        if (row is null) return "unknown token";
        if (TokenAuth.ParseRole(row.Role) is null) return $"token role {row.Role} may not read the dashboard";
        http.Items[AuthorizedItem] = $"{row.Name} ({row.Role})";
        return null;
    }

    private static void SetCookie(HttpContext http, string token) =>
        http.Response.Cookies.Append(Cookie, token, new CookieOptions
        {
            HttpOnly = true,
            SameSite = SameSiteMode.Strict,
            Secure = http.Request.IsHttps,
            Path = "/dashboard",
            MaxAge = TimeSpan.FromHours(12),
        });

    /// <summary>Only local dashboard paths are followed after login.</summary>
    private static string SafeReturn(string? back) =>
        back is not null && back.StartsWith("/dashboard", StringComparison.Ordinal) && !back.StartsWith("/dashboard/login", StringComparison.Ordinal) && !back.Contains("//", StringComparison.Ordinal) && !back.Contains('\\')
            ? back : "/dashboard";

    private static Html LoginForm(string? error, string? back)
    {
        var h = new Html().Raw("<div class=\"login\"><h1>OnDevice dashboard</h1>");
        if (!string.IsNullOrEmpty(error)) h.Element("p", error, "error");
        h.Raw("<form method=\"post\" action=\"/dashboard/login\"><label for=\"token\">API token (reader, publisher or operator)</label>")
         .Raw("<input type=\"password\" id=\"token\" name=\"token\" autocomplete=\"off\">")
         .Raw("<input type=\"hidden\" name=\"return\" value=\"").Text(SafeReturn(back)).Raw("\">")
         .Raw("<button type=\"submit\" id=\"sign-in\">Sign in</button></form></div>");
        return h;
    }

    /// <summary>Wraps a body in the page layout with security headers (no scripts, nothing external, not cached).</summary>
    internal static IResult Page(HttpContext http, string title, Html body, int status = StatusCodes.Status200OK)
    {
        var signedIn = http.Items[AuthorizedItem] as string;
        var h = new Html().Raw("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>").Text(title + " · OnDevice")
            .Raw("</title><meta name=\"viewport\" content=\"width=device-width\"><style>").Raw(Html.Css).Raw("</style></head><body><header>")
            .Raw("<span class=\"brand\">OnDevice</span>");
        if (signedIn is not null)
        {
            foreach (var (href, text) in Nav) h.Link(href, text);
            h.Raw("<form method=\"post\" action=\"/dashboard/logout\"><span>").Text(signedIn).Raw(" </span><button type=\"submit\">Sign out</button></form>");
        }
        h.Raw("</header><main>").Raw(body.ToString()).Raw("</main></body></html>");
        var headers = http.Response.Headers;
        headers.ContentSecurityPolicy = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
        headers.XContentTypeOptions = "nosniff";
        headers["Referrer-Policy"] = "no-referrer";
        headers.CacheControl = "no-store";
        return Results.Content(h.ToString(), "text/html; charset=utf-8", statusCode: status);
    }
}
