namespace OnDevice.Runtime.Kernels;

/// <summary>
/// Multidirectional (numpy-style) broadcasting as ONNX defines it, reduced to runs of contiguous work: the output
/// is walked in blocks of <see cref="Inner"/> elements within which each operand either advances element by
/// element or repeats one element.
/// </summary>
public sealed class Broadcast
{
    private readonly int[] _outShape;
    private readonly int[][] _strides; // per operand, per outer dim: element stride (0 when broadcast)

    /// <summary>Plans broadcasting of <paramref name="shapes"/>; throws <see cref="InvalidOperationException"/> when they are incompatible.</summary>
    public Broadcast(params int[][] shapes)
    {
        int rank = shapes.Max(s => s.Length);
        _outShape = new int[rank];
        for (int d = 0; d < rank; d++)
        {
            int size = 1;
            foreach (var s in shapes)
            {
                int k = d - (rank - s.Length);
                if (k < 0) continue;
                int v = s[k];
                if (v == size || v == 1) continue;
                if (size == 1) size = v;
                else throw new InvalidOperationException($"shapes {string.Join(" and ", shapes.Select(x => TensorBuffer.Format(x)))} cannot be broadcast");
            }
            _outShape[d] = size;
        }
        // Inner block: the longest suffix where every operand is either fully contiguous or a single repeated element.
        int inner = 1, innerDims = 0;
        var contiguous = new bool[shapes.Length];
        var scalarTail = new bool[shapes.Length];
        for (int i = 0; i < shapes.Length; i++) { contiguous[i] = true; scalarTail[i] = true; }
        for (int d = rank - 1; d >= 0; d--)
        {
            bool ok = true;
            var nextContig = new bool[shapes.Length];
            var nextScalar = new bool[shapes.Length];
            for (int i = 0; i < shapes.Length; i++)
            {
                int k = d - (rank - shapes[i].Length);
                int v = k < 0 ? 1 : shapes[i][k];
                nextContig[i] = contiguous[i] && v == _outShape[d];
                nextScalar[i] = scalarTail[i] && v == 1;
                if (!nextContig[i] && !nextScalar[i]) ok = false;
            }
            if (!ok) break;
            contiguous = nextContig;
            scalarTail = nextScalar;
            inner *= _outShape[d];
            innerDims++;
        }
        Inner = inner;
        InnerContiguous = contiguous; // otherwise the operand repeats one element over the block
        OuterRank = rank - innerDims;
        _strides = new int[shapes.Length][];
        for (int i = 0; i < shapes.Length; i++)
        {
            var st = new int[rank];
            int acc = 1;
            for (int d = rank - 1; d >= 0; d--)
            {
                int k = d - (rank - shapes[i].Length);
                int v = k < 0 ? 1 : shapes[i][k];
                st[d] = v == 1 ? 0 : acc;
                acc *= v;
            }
            _strides[i] = st;
        }
        OutLength = TensorBuffer.CheckedLength(_outShape);
    }

    /// <summary>The broadcast output shape.</summary>
    public int[] OutShape => _outShape;

    /// <summary>Output element count.</summary>
    public int OutLength { get; }

    /// <summary>Elements per inner block.</summary>
    public int Inner { get; }

    /// <summary>Per operand: true when it advances within a block, false when one element repeats.</summary>
    public bool[] InnerContiguous { get; }

    /// <summary>Dimensions outside the inner block.</summary>
    public int OuterRank { get; }

    /// <summary>Number of inner blocks.</summary>
    public int Blocks => Inner == 0 ? 0 : OutLength / Inner;

    /// <summary>Element offset of operand <paramref name="operand"/> at the start of block <paramref name="block"/>.</summary>
    public int Offset(int operand, int block)
    {
        int off = 0;
        var st = _strides[operand];
        for (int d = OuterRank - 1; d >= 0; d--)
        {
            int size = _outShape[d];
            off += block % size * st[d];
            block /= size;
        }
        return off;
    }
}
