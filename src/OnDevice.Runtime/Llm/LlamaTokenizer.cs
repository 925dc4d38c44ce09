using System.Text;
using OnDevice.Formats.Llm;

namespace OnDevice.Runtime.Llm;

/// <summary>
/// SentencePiece-style BPE as the llama2.c reference runs it: a dummy-prefix space, one token per UTF-8 code point
/// (or byte-fallback tokens &lt;0xXX&gt; = id byte+3 when the code point is not in the vocabulary), then repeatedly
/// merge the adjacent pair whose concatenation is the highest-scoring token. Decoding strips the leading space after
/// BOS, turns &lt;0xXX&gt; pieces into bytes and drops lone unprintable bytes.
/// </summary>
public sealed class LlamaTokenizer
{
    private readonly Dictionary<string, int> _ids = new(StringComparer.Ordinal);
    private readonly byte[][] _pieces;
    private readonly float[] _scores;

    /// <summary>The vocabulary.</summary>
    public LlamaVocabulary Vocabulary { get; }

    /// <summary>Beginning-of-sequence id.</summary>
    public int Bos => Vocabulary.BosId;

    /// <summary>End-of-sequence id.</summary>
    public int Eos => Vocabulary.EosId;

    /// <summary>Builds the lookup tables.</summary>
    public LlamaTokenizer(LlamaVocabulary vocabulary)
    {
        Vocabulary = vocabulary;
        _pieces = vocabulary.Pieces;
        _scores = vocabulary.Scores;
        for (int i = 0; i < _pieces.Length; i++) _ids.TryAdd(Encoding.Latin1.GetString(_pieces[i]), i);
    }

    private int Lookup(string latin1) => _ids.TryGetValue(latin1, out var id) ? id : -1;

    /// <summary>Tokens of <paramref name="text"/>, BOS first when <paramref name="bos"/>.</summary>
    public int[] Encode(string text, bool bos = true)
    {
        var tokens = new List<int>();
        if (bos) tokens.Add(Bos);
        var bytes = Encoding.UTF8.GetBytes(text);
        var work = new List<string>();
        if (bytes.Length > 0)
        {
            int space = Lookup(" ");
            if (space >= 0) work.Add(" ");
        }
        for (int i = 0; i < bytes.Length;)
        {
            int len = 1;
            while (i + len < bytes.Length && len < 4 && (bytes[i + len] & 0xC0) == 0x80) len++;
            var cp = Encoding.Latin1.GetString(bytes, i, len);
            if (Lookup(cp) >= 0) work.Add(cp);
            else for (int j = 0; j < len; j++) work.Add("\0fallback" + (char)bytes[i + j]);
            i += len;
        }
        while (true)
        {
            float best = float.NegativeInfinity;
            int bestIdx = -1;
            for (int i = 0; i + 1 < work.Count; i++)
            {
                if (work[i].StartsWith('\0') || work[i + 1].StartsWith('\0')) continue;
                int id = Lookup(work[i] + work[i + 1]);
                if (id >= 0 && _scores[id] > best) { best = _scores[id]; bestIdx = i; }
            }
            if (bestIdx < 0) break;
            work[bestIdx] += work[bestIdx + 1];
            work.RemoveAt(bestIdx + 1);
        }
        foreach (var w in work)
            tokens.Add(w.StartsWith('\0') ? w[^1] + 3 : Lookup(w));
        return tokens.ToArray();
    }

    /// <summary>The bytes printed for <paramref name="token"/> following <paramref name="previous"/>.</summary>
    public byte[] Piece(int previous, int token)
    {
        if ((uint)token >= (uint)_pieces.Length) throw new ArgumentOutOfRangeException(nameof(token), $"token {token} is outside the vocabulary of {_pieces.Length}");
        var p = _pieces[token];
        if (previous == Bos && p.Length > 0 && p[0] == (byte)' ') p = p[1..];
        if (p.Length == 6 && p[0] == '<' && p[1] == '0' && p[2] == 'x' && p[5] == '>' &&
            byte.TryParse(Encoding.ASCII.GetString(p, 3, 2), System.Globalization.NumberStyles.HexNumber, null, out var b))
            p = [b];
        if (p.Length == 1 && !(p[0] >= 0x20 && p[0] < 0x7F) && !(p[0] is (byte)' ' or (byte)'\t' or (byte)'\n' or (byte)'\v' or (byte)'\f' or (byte)'\r'))
            return p[0] >= 0x80 ? p : []; // bytes of a UTF-8 sequence are kept; lone control bytes are dropped
        return p;
    }

    /// <summary>Text of <paramref name="tokens"/> (the first may be BOS, which is not printed).</summary>
    public string Decode(ReadOnlySpan<int> tokens)
    {
        var bytes = new List<byte>();
        for (int i = 1; i < tokens.Length; i++) bytes.AddRange(Piece(tokens[i - 1], tokens[i]));
        if (tokens.Length > 0 && tokens[0] != Bos) bytes.InsertRange(0, Piece(-1, tokens[0]));
        return Encoding.UTF8.GetString(bytes.ToArray());
    }
}
