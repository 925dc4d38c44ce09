namespace OnDevice.Federated.Training;

/// <summary>A first-order optimizer over a flat parameter vector.</summary>
public interface IOptimizer
{
    /// <summary>Moves <paramref name="parameters"/> against <paramref name="gradient"/>.</summary>
    void Step(Span<float> parameters, ReadOnlySpan<float> gradient);
}

/// <summary>Plain stochastic gradient descent: θ ← θ − η g.</summary>
public sealed class Sgd(double learningRate) : IOptimizer
{
    /// <inheritdoc />
    public void Step(Span<float> parameters, ReadOnlySpan<float> gradient) => VectorMath.Axpy(gradient, (float)-learningRate, parameters);
}

/// <summary>Adam (Kingma and Ba 2015) with bias correction.</summary>
public sealed class Adam(int size, double learningRate, double beta1 = 0.9, double beta2 = 0.999, double epsilon = 1e-8) : IOptimizer
{
    private readonly double[] _m = new double[size], _v = new double[size];
    private long _t;

    /// <inheritdoc />
    public void Step(Span<float> parameters, ReadOnlySpan<float> gradient)
    {
        if (parameters.Length != _m.Length || gradient.Length != _m.Length) throw new FederatedException("Adam: size mismatch");
        _t++;
        double c1 = 1 - Math.Pow(beta1, _t), c2 = 1 - Math.Pow(beta2, _t);
        for (int i = 0; i < _m.Length; i++)
        {
            double g = gradient[i];
            _m[i] = beta1 * _m[i] + (1 - beta1) * g;
            _v[i] = beta2 * _v[i] + (1 - beta2) * g * g;
            parameters[i] -= (float)(learningRate * (_m[i] / c1) / (Math.Sqrt(_v[i] / c2) + epsilon));
        }
    }
}

/// <summary>Which optimizer to use.</summary>
public enum OptimizerKind
{
    /// <summary>SGD.</summary>
    Sgd,

    /// <summary>Adam.</summary>
    Adam,
}
