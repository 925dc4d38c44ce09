using OnDevice.Delivery.Deltas;
using OnDevice.Formats;

namespace OnDevice.Server.Deltas;

/// <summary>Builds patches between two model files, tensor-aware when both are ONNX or both safetensors.</summary>
public static class DeltaFactory
{
    /// <summary>The tensor regions of a file (null when it is neither ONNX nor safetensors), and its kind.</summary>
    public static (TensorFileKind Kind, IReadOnlyList<DeltaRegion>? Regions) Layout(ReadOnlyMemory<byte> file)
    {
        var map = TensorLayout.Locate(file);
        if (map.Kind == TensorFileKind.Unknown || map.Tensors.Count == 0) return (map.Kind, null);
        return (map.Kind, map.Tensors.Select(t => new DeltaRegion(t.Key, t.Offset, t.Length)).ToList());
    }

    /// <summary>Builds the patch from <paramref name="old"/> to <paramref name="target"/>; tensor-aware only when both files have the same kind.</summary>
    public static DeltaBuildResult Build(ReadOnlyMemory<byte> old, ReadOnlyMemory<byte> target, DeltaBuildOptions? options = null)
    {
        var (ok, or) = Layout(old);
        var (tk, tr) = Layout(target);
        bool aware = ok == tk && or is not null && tr is not null;
        return DeltaBuilder.Build(old, aware ? or : null, target, aware ? tr : null, options);
    }
}
