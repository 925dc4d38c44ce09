namespace OnDevice.Core;

/// <summary>The declared type of a graph value: a tensor, sequence, map, optional or sparse tensor.</summary>
public abstract record TypeInfo
{
    /// <summary>Optional ONNX type denotation (e.g. <c>IMAGE</c>).</summary>
    public string Denotation { get; init; } = "";
}

/// <summary>A dense tensor of <see cref="DType"/> with an optional (possibly partial) shape.</summary>
public sealed record TensorTypeInfo(DType ElementType, Shape? Shape) : TypeInfo
{
    /// <inheritdoc/>
    public bool Equals(TensorTypeInfo? other) =>
        other is not null && ElementType == other.ElementType && Denotation == other.Denotation &&
        (Shape is null ? other.Shape is null : Shape.Equals(other.Shape));

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(ElementType, Shape, Denotation);

    /// <inheritdoc/>
    public override string ToString() => $"{ElementType.Name()}{Shape?.ToString() ?? "[*]"}";
}

/// <summary>A sparse tensor type.</summary>
public sealed record SparseTensorTypeInfo(DType ElementType, Shape? Shape) : TypeInfo
{
    /// <inheritdoc/>
    public bool Equals(SparseTensorTypeInfo? other) =>
        other is not null && ElementType == other.ElementType && Denotation == other.Denotation &&
        (Shape is null ? other.Shape is null : Shape.Equals(other.Shape));

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(ElementType, Shape, Denotation);

    /// <inheritdoc/>
    public override string ToString() => $"sparse {ElementType.Name()}{Shape?.ToString() ?? "[*]"}";
}

/// <summary>A sequence of values of one type.</summary>
public sealed record SequenceTypeInfo(TypeInfo? ElementType) : TypeInfo
{
    /// <inheritdoc/>
    public override string ToString() => $"seq({ElementType})";
}

/// <summary>A map from a scalar key type to a value type.</summary>
public sealed record MapTypeInfo(DType KeyType, TypeInfo? ValueType) : TypeInfo
{
    /// <inheritdoc/>
    public override string ToString() => $"map({KeyType.Name()},{ValueType})";
}

/// <summary>An optional value.</summary>
public sealed record OptionalTypeInfo(TypeInfo? ElementType) : TypeInfo
{
    /// <inheritdoc/>
    public override string ToString() => $"optional({ElementType})";
}

/// <summary>A named value with its declared type (graph input, output or intermediate annotation).</summary>
public sealed class ValueInfo(string name, TypeInfo? type = null)
{
    /// <summary>Value name.</summary>
    public string Name { get; set; } = name;

    /// <summary>Declared type, if any.</summary>
    public TypeInfo? Type { get; set; } = type;

    /// <summary>Documentation string.</summary>
    public string DocString { get; set; } = "";

    /// <summary>Key/value metadata attached to the value.</summary>
    public List<KeyValuePair<string, string>> Metadata { get; } = [];

    /// <summary>The tensor type, or null when the value is not a tensor or has no type.</summary>
    public TensorTypeInfo? TensorType => Type as TensorTypeInfo;

    /// <summary>A tensor value info.</summary>
    public static ValueInfo Tensor(string name, DType dtype, Shape? shape) => new(name, new TensorTypeInfo(dtype, shape));

    /// <inheritdoc/>
    public override string ToString() => $"{Name}: {Type?.ToString() ?? "?"}";
}
