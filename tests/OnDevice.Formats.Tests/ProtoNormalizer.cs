using System.Runtime.InteropServices;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using OnDevice.Formats.Onnx.Proto;

namespace OnDevice.Formats.Tests;

/// <summary>
/// Brings two parsed ONNX messages to one canonical form before comparing them: singular fields explicitly set
/// to their default value are cleared (proto2 keeps their presence, which carries no meaning in ONNX), and
/// tensor values in the typed fields (float_data, int64_data ...) are moved to raw_data, which is how our
/// writer stores every numeric tensor. An empty TypeProto (a type that says nothing) is dropped, as our IR
/// reads it as "no type".
/// </summary>
internal static class ProtoNormalizer
{
    public static T Normalize<T>(T message) where T : IMessage<T>
    {
        var copy = message.Clone();
        Visit(copy);
        return copy;
    }

    private static void Visit(IMessage m)
    {
        if (m is TensorProto t) TypedToRaw(t);
        foreach (var f in m.Descriptor.Fields.InFieldNumberOrder())
        {
            var acc = f.Accessor;
            if (f.IsRepeated)
            {
                if (f.FieldType == FieldType.Message)
                    foreach (var item in (System.Collections.IList)acc.GetValue(m)) Visit((IMessage)item);
                continue;
            }
            if (f.FieldType == FieldType.Message)
            {
                if (acc.GetValue(m) is TypeProto tp && tp.CalculateSize() == 0) acc.Clear(m);
                else if (acc.GetValue(m) is IMessage sub) Visit(sub);
                continue;
            }
            if (f.HasPresence && acc.HasValue(m) && IsDefault(acc.GetValue(m)) && f.ContainingOneof is null) acc.Clear(m);
        }
    }

    private static bool IsDefault(object v) => v switch
    {
        string s => s.Length == 0,
        ByteString b => b.IsEmpty,
        long l => l == 0,
        int i => i == 0,
        float f => BitConverter.SingleToInt32Bits(f) == 0,
        double d => BitConverter.DoubleToInt64Bits(d) == 0,
        bool b => !b,
        Enum e => Convert.ToInt32(e) == 0,
        _ => false,
    };

    private static void TypedToRaw(TensorProto t)
    {
        byte[]? raw = null;
        if (t.FloatData.Count > 0) raw = MemoryMarshal.AsBytes(t.FloatData.ToArray().AsSpan()).ToArray();
        else if (t.DoubleData.Count > 0) raw = MemoryMarshal.AsBytes(t.DoubleData.ToArray().AsSpan()).ToArray();
        else if (t.Int64Data.Count > 0) raw = MemoryMarshal.AsBytes(t.Int64Data.ToArray().AsSpan()).ToArray();
        else if (t.Uint64Data.Count > 0)
            raw = t.DataType == 12 ? MemoryMarshal.AsBytes(t.Uint64Data.Select(v => (uint)v).ToArray().AsSpan()).ToArray()
                                   : MemoryMarshal.AsBytes(t.Uint64Data.ToArray().AsSpan()).ToArray();
        else if (t.Int32Data.Count > 0)
        {
            int size = t.DataType switch { 2 or 3 or 9 or 21 or 22 => 1, 4 or 5 or 10 or 16 => 2, _ => 4 };
            raw = new byte[t.Int32Data.Count * size];
            for (int i = 0; i < t.Int32Data.Count; i++)
            {
                int v = t.Int32Data[i];
                if (size == 1) raw[i] = (byte)v;
                else if (size == 2) MemoryMarshal.Write(raw.AsSpan(i * 2), (ushort)v);
                else MemoryMarshal.Write(raw.AsSpan(i * 4), v);
            }
        }
        if (raw is null) return;
        t.FloatData.Clear(); t.DoubleData.Clear(); t.Int64Data.Clear(); t.Uint64Data.Clear(); t.Int32Data.Clear();
        t.RawData = ByteString.CopyFrom(raw);
    }
}
