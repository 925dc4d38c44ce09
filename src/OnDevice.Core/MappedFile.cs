using System.Buffers;
using System.IO.MemoryMappedFiles;

namespace OnDevice.Core;

/// <summary>
/// A read-mostly, copy-on-write memory mapping of a whole file. Tensors slice it without copying;
/// writes to a slice go to private pages and never reach the file. The mapping lives as long as any
/// slice is reachable and is released by the garbage collector.
/// </summary>
public sealed unsafe class MappedFile
{
    private readonly MemoryMappedFile? _map;
    private readonly MemoryMappedViewAccessor? _view;
    private readonly byte* _base;

    private MappedFile(string path, MemoryMappedFile? map, MemoryMappedViewAccessor? view, byte* basePtr, long length)
    {
        Path = path;
        _map = map;
        _view = view;
        _base = basePtr;
        Length = length;
    }

    /// <summary>Full path of the mapped file.</summary>
    public string Path { get; }

    /// <summary>File length in bytes.</summary>
    public long Length { get; }

    /// <summary>Maps <paramref name="path"/> copy-on-write. Throws the usual IO exceptions when it cannot be opened.</summary>
    public static MappedFile Open(string path)
    {
        var full = System.IO.Path.GetFullPath(path);
        using var fs = new FileStream(full, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete);
        long length = fs.Length;
        if (length == 0) return new MappedFile(full, null, null, null, 0);
        var map = MemoryMappedFile.CreateFromFile(fs, null, 0, MemoryMappedFileAccess.CopyOnWrite, HandleInheritability.None, leaveOpen: true);
        var view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.CopyOnWrite);
        byte* p = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        p += view.PointerOffset;
        return new MappedFile(full, map, view, p, length);
    }

    /// <summary>Releases the mapping when no slice refers to it any more.</summary>
    ~MappedFile()
    {
        if (_view is null) return;
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _map!.Dispose();
    }

    /// <summary>A read-only view of <paramref name="length"/> bytes at <paramref name="offset"/>; valid while this object is reachable.</summary>
    public ReadOnlySpan<byte> Span(long offset, int length)
    {
        CheckRange(offset, length);
        return new ReadOnlySpan<byte>(_base + offset, length);
    }

    /// <summary>A memory slice that keeps the mapping alive for as long as the memory is referenced.</summary>
    public Memory<byte> Slice(long offset, int length)
    {
        CheckRange(offset, length);
        return length == 0 ? Memory<byte>.Empty : new Region(this, offset, length).Memory;
    }

    private void CheckRange(long offset, int length)
    {
        if (offset < 0 || length < 0 || offset > Length - length)
            throw new ArgumentOutOfRangeException(nameof(offset), $"range [{offset}, {offset}+{length}) is outside {Path} ({Length} bytes)");
    }

    /// <summary>True when <paramref name="memory"/> is a slice of some mapped file.</summary>
    public static bool IsMapped(ReadOnlyMemory<byte> memory) =>
        System.Runtime.InteropServices.MemoryMarshal.TryGetMemoryManager<byte, Region>(memory, out _);

    private sealed class Region(MappedFile owner, long offset, int length) : MemoryManager<byte>
    {
        // Holding the owner keeps the mapping alive while this region is reachable.
        private readonly MappedFile _owner = owner;

        public override Span<byte> GetSpan() => new(_owner._base + offset, length);

        public override MemoryHandle Pin(int elementIndex = 0) => new(_owner._base + offset + elementIndex, default, this);

        public override void Unpin() { }

        protected override void Dispose(bool disposing) { }
    }
}
