namespace OnDevice.Federated.Training;

/// <summary>Cached features (one row of <see cref="Dimension"/> floats per example) and integer labels.</summary>
public sealed class Dataset
{
    private readonly float[] _features;

    /// <summary>Wraps row-major features and labels (checked for shape and range).</summary>
    public Dataset(float[] features, int[] labels, int dimension, int classes)
    {
        ArgumentNullException.ThrowIfNull(features);
        ArgumentNullException.ThrowIfNull(labels);
        if (dimension < 1) throw new FederatedException($"feature dimension must be positive, got {dimension}");
        if (features.Length != (long)labels.Length * dimension) throw new FederatedException($"{features.Length} feature values do not make {labels.Length} rows of {dimension}");
        foreach (var l in labels) if (l < 0 || l >= classes) throw new FederatedException($"label {l} outside 0..{classes - 1}");
        _features = features;
        Labels = labels;
        Dimension = dimension;
        Classes = classes;
    }

    /// <summary>Number of examples.</summary>
    public int Count => Labels.Length;

    /// <summary>Features per example.</summary>
    public int Dimension { get; }

    /// <summary>Number of classes.</summary>
    public int Classes { get; }

    /// <summary>Labels.</summary>
    public int[] Labels { get; }

    /// <summary>Features of example <paramref name="i"/>.</summary>
    public ReadOnlySpan<float> Features(int i) => _features.AsSpan(i * Dimension, Dimension);

    /// <summary>The examples at <paramref name="indices"/>, copied.</summary>
    public Dataset Subset(IReadOnlyList<int> indices)
    {
        ArgumentNullException.ThrowIfNull(indices);
        var f = new float[indices.Count * Dimension];
        var l = new int[indices.Count];
        for (int k = 0; k < indices.Count; k++)
        {
            Features(indices[k]).CopyTo(f.AsSpan(k * Dimension));
            l[k] = Labels[indices[k]];
        }
        return new Dataset(f, l, Dimension, Classes);
    }

    /// <summary>Distinct labels present.</summary>
    public int[] DistinctLabels() => Labels.Distinct().Order().ToArray();
}
