using System.Net;
using OnDevice.Delivery;

namespace OnDevice.Client;

/// <summary>Fetches metadata over HTTP from <c>BASE/v1/metadata/PATH</c>, reading at most the allowed bytes plus one.</summary>
public sealed class HttpMetadataSource(HttpClient http, Uri baseUri) : IMetadataSource
{
    /// <inheritdoc/>
    public async Task<byte[]?> FetchAsync(string path, long maxBytes, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(baseUri, "v1/metadata/" + path));
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound) return null;
        if (!response.IsSuccessStatusCode) throw new HttpRequestException($"GET {path}: {(int)response.StatusCode} {response.ReasonPhrase}", null, response.StatusCode);
        await using var body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        var buffer = new MemoryStream();
        var chunk = new byte[16384];
        while (buffer.Length <= maxBytes)
        {
            int want = (int)Math.Min(chunk.Length, maxBytes + 1 - buffer.Length);
            int n = await body.ReadAsync(chunk.AsMemory(0, want), cancellationToken).ConfigureAwait(false);
            if (n == 0) break;
            buffer.Write(chunk, 0, n);
        }
        return buffer.ToArray();
    }
}

/// <summary>Verified metadata kept in a directory, each file replaced atomically.</summary>
public sealed class FileTrustStore(string directory) : ITrustStore
{
    /// <inheritdoc/>
    public byte[]? Load(string name)
    {
        var p = PathOf(name);
        return File.Exists(p) ? File.ReadAllBytes(p) : null;
    }

    /// <inheritdoc/>
    public void Save(string name, byte[] bytes) => FileUtil.WriteAtomic(PathOf(name), bytes);

    /// <inheritdoc/>
    public void Delete(string name)
    {
        var p = PathOf(name);
        if (File.Exists(p)) File.Delete(p);
    }

    private string PathOf(string name)
    {
        TargetsNames.ValidatePath(name);
        return Path.Combine(directory, name.Replace('/', Path.DirectorySeparatorChar));
    }
}

internal static class FileUtil
{
    /// <summary>Writes via a temp file in the same directory, flushes, renames over the target.</summary>
    public static void WriteAtomic(string path, byte[] bytes)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(dir);
        var temp = Path.Combine(dir, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var fs = new FileStream(temp, FileMode.CreateNew, FileAccess.Write))
            {
                fs.Write(bytes);
                fs.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: true);
        }
        catch
        {
            try { File.Delete(temp); } catch (IOException) { }
            throw;
        }
    }
}
