using System.Runtime.InteropServices;

namespace OnDevice.Runtime.Llm;

/// <summary>
/// Native memory for a large, read-mostly array (a quantized weight matrix): 2 MiB-aligned when at least 2 MiB long and,
/// on Linux, advised for transparent huge pages (<c>madvise(MADV_HUGEPAGE)</c>) before it is first written, so a decode
/// step that streams every weight once takes one TLB entry per 2 MiB instead of per 4 KiB. Freed by <see cref="Dispose"/>
/// or, failing that, by the finalizer of its handle; readers hold a reference (<see cref="Acquire"/>) while they use the
/// pointer, so disposing during a product cannot free memory under it.
/// </summary>
public sealed unsafe partial class WeightBuffer : IDisposable
{
    /// <summary>Huge-page size the buffers are aligned to.</summary>
    public const long HugePage = 2L << 20;

    /// <summary>Whether new buffers of at least <see cref="HugePage"/> bytes ask for transparent huge pages (default true; the benchmark turns it off for A/B runs).</summary>
    public static bool UseHugePages { get; set; } = true;

    private readonly Handle _handle;

    /// <summary>First byte (zeroed at allocation).</summary>
    public byte* Pointer { get; }

    /// <summary>Bytes usable from <see cref="Pointer"/>.</summary>
    public long Length { get; }

    /// <summary>Whether <c>madvise(MADV_HUGEPAGE)</c> was accepted for this buffer.</summary>
    public bool HugePagesAdvised { get; }

    /// <summary>Allocates <paramref name="bytes"/> zeroed bytes.</summary>
    public WeightBuffer(long bytes, bool? hugePages = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bytes);
        bool huge = (hugePages ?? UseHugePages) && bytes >= HugePage;
        // Whole 4 KiB pages so the advice never covers a neighbour's bytes.
        long size = (bytes + 4095) & ~4095L;
        void* p = NativeMemory.AlignedAlloc((nuint)size, huge ? (nuint)HugePage : 64);
        _handle = new Handle((nint)p, size);
        Pointer = (byte*)p;
        Length = bytes;
        if (huge && OperatingSystem.IsLinux())
            try { HugePagesAdvised = Madvise(p, (nuint)size, MadvHugePage) == 0; }
            catch (DllNotFoundException) { } // not glibc/musl: plain pages
            catch (EntryPointNotFoundException) { }
        // First touch after the advice, so the faults can take huge pages.
        NativeMemory.Clear(p, (nuint)size);
    }

    /// <summary>The bytes as a span (only while the buffer is alive).</summary>
    public Span<byte> AsSpan(long offset, int length)
    {
        if (offset < 0 || length < 0 || offset + length > Length) throw new ArgumentOutOfRangeException(nameof(offset), $"{offset}+{length} outside {Length} bytes");
        return new Span<byte>(Pointer + offset, length);
    }

    /// <summary>
    /// Keeps the memory alive until the returned lease is disposed (use around every read of <see cref="Pointer"/> that
    /// may race with <see cref="Dispose"/>); throws <see cref="ObjectDisposedException"/> once disposed.
    /// </summary>
    public Lease Acquire()
    {
        bool added = false;
        _handle.DangerousAddRef(ref added);
        return new Lease(_handle);
    }

    /// <summary>Frees the memory once no <see cref="Lease"/> is held.</summary>
    public void Dispose() => _handle.Dispose();

    /// <summary>A reference that keeps a <see cref="WeightBuffer"/>'s memory alive.</summary>
    public readonly struct Lease : IDisposable
    {
        private readonly SafeHandle? _h;
        internal Lease(SafeHandle h) => _h = h;

        /// <summary>Releases the reference.</summary>
        public void Dispose() => _h?.DangerousRelease();
    }

    /// <summary>
    /// Pages of this buffer's range that the kernel backs with huge pages, in bytes, from /proc/self/smaps (null when not
    /// readable, e.g. not Linux). The buffer's range usually shares one mapping with other allocations, so the figure
    /// is that mapping's AnonHugePages.
    /// </summary>
    public long? AnonHugePageBytes() => SmapsAnonHuge((nint)Pointer);

    internal static long? SmapsAnonHuge(nint address)
    {
        const string path = "/proc/self/smaps";
        if (!File.Exists(path)) return null;
        bool inside = false;
        foreach (var line in File.ReadLines(path))
        {
            int dash = line.IndexOf('-');
            int space = line.IndexOf(' ');
            if (dash > 0 && space > dash && IsHex(line.AsSpan(0, dash)))
            {
                ulong lo = ulong.Parse(line.AsSpan(0, dash), System.Globalization.NumberStyles.HexNumber);
                ulong hi = ulong.Parse(line.AsSpan(dash + 1, space - dash - 1), System.Globalization.NumberStyles.HexNumber);
                inside = (ulong)address >= lo && (ulong)address < hi;
                continue;
            }
            if (inside && line.StartsWith("AnonHugePages:", StringComparison.Ordinal))
                return long.Parse(line.AsSpan(14).Trim().ToString().Split(' ')[0]) * 1024;
        }
        return null;
    }

    private static bool IsHex(ReadOnlySpan<char> s)
    {
        foreach (var c in s) if (!char.IsAsciiHexDigit(c)) return false;
        return s.Length > 0;
    }

    private const int MadvHugePage = 14;

    [LibraryImport("libc", EntryPoint = "madvise", SetLastError = true)]
    private static partial int Madvise(void* addr, nuint length, int advice);

    private sealed class Handle : SafeHandle
    {
        private readonly long _size;

        public Handle(nint p, long size) : base(0, ownsHandle: true)
        {
            SetHandle(p);
            _size = size;
            GC.AddMemoryPressure(size);
        }

        public override bool IsInvalid => handle == 0;

        protected override bool ReleaseHandle()
        {
            NativeMemory.AlignedFree((void*)handle);
            GC.RemoveMemoryPressure(_size);
            return true;
        }
    }
}
