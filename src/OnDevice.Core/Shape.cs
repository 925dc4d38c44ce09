using System.Text;

namespace OnDevice.Core;

/// <summary>One dimension of a <see cref="Shape"/>: a known size, a named symbol (e.g. <c>batch</c>) or unknown.</summary>
public readonly record struct Dim
{
    private Dim(long value, string? symbol) { Value = value; Symbol = symbol; }

    /// <summary>The size when known, otherwise -1.</summary>
    public long Value { get; }

    /// <summary>The symbol name for a symbolic dimension, otherwise null.</summary>
    public string? Symbol { get; }

    /// <summary>True when the size is a known number.</summary>
    public bool IsKnown => Value >= 0;

    /// <summary>True for a named symbolic dimension.</summary>
    public bool IsSymbolic => Symbol is not null;

    /// <summary>A dimension of known size.</summary>
    public static Dim Of(long value)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(value);
        return new Dim(value, null);
    }

    /// <summary>A symbolic dimension named <paramref name="symbol"/>.</summary>
    public static Dim Sym(string symbol)
    {
        ArgumentException.ThrowIfNullOrEmpty(symbol);
        return new Dim(-1, symbol);
    }

    /// <summary>A dimension with neither a size nor a name.</summary>
    public static Dim Unknown => new(-1, null);

    /// <summary>Implicit conversion from a known size.</summary>
    public static implicit operator Dim(long value) => Of(value);

    /// <inheritdoc/>
    public override string ToString() => IsKnown ? Value.ToString(System.Globalization.CultureInfo.InvariantCulture) : Symbol ?? "?";
}

/// <summary>A tensor shape whose dimensions may be known, symbolic or unknown.</summary>
public sealed class Shape : IEquatable<Shape>
{
    private readonly Dim[] _dims;

    /// <summary>Creates a shape from its dimensions.</summary>
    public Shape(params IEnumerable<Dim> dims) => _dims = dims.ToArray();

    /// <summary>A shape of known sizes.</summary>
    public static Shape Of(params ReadOnlySpan<long> dims)
    {
        var d = new Dim[dims.Length];
        for (int i = 0; i < d.Length; i++) d[i] = Dim.Of(dims[i]);
        return new Shape(d);
    }

    /// <summary>The scalar shape (rank 0).</summary>
    public static Shape Scalar { get; } = new();

    /// <summary>The dimensions.</summary>
    public IReadOnlyList<Dim> Dims => _dims;

    /// <summary>Number of dimensions.</summary>
    public int Rank => _dims.Length;

    /// <summary>The i-th dimension.</summary>
    public Dim this[int i] => _dims[i];

    /// <summary>True when every dimension is a known number.</summary>
    public bool IsFullyKnown => _dims.All(d => d.IsKnown);

    /// <summary>Element count when fully known, otherwise null.</summary>
    public long? ElementCount
    {
        get
        {
            long n = 1;
            foreach (var d in _dims)
            {
                if (!d.IsKnown) return null;
                n = checked(n * d.Value);
            }
            return n;
        }
    }

    /// <summary>The sizes as an array, or null when any dimension is not known.</summary>
    public long[]? ToArrayOrNull() => IsFullyKnown ? ToArray() : null;

    /// <summary>The sizes as an array; throws when any dimension is not known.</summary>
    public long[] ToArray()
    {
        if (!IsFullyKnown) throw new InvalidOperationException($"shape {this} has unknown dimensions");
        return _dims.Select(d => d.Value).ToArray();
    }

    /// <inheritdoc/>
    public bool Equals(Shape? other) => other is not null && _dims.AsSpan().SequenceEqual(other._dims);

    /// <inheritdoc/>
    public override bool Equals(object? obj) => Equals(obj as Shape);

    /// <inheritdoc/>
    public override int GetHashCode()
    {
        var h = new HashCode();
        foreach (var d in _dims) h.Add(d);
        return h.ToHashCode();
    }

    /// <inheritdoc/>
    public override string ToString()
    {
        var sb = new StringBuilder("[");
        for (int i = 0; i < _dims.Length; i++)
        {
            if (i > 0) sb.Append(',');
            sb.Append(_dims[i].ToString());
        }
        return sb.Append(']').ToString();
    }
}
