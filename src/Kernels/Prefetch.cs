using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace Adanns.Kernels;

/// <summary>Software prefetch hints for gathers the hardware prefetcher cannot predict (e.g. rerank rows).</summary>
public static class Prefetch
{
    /// <summary>
    /// Asks for the first cache lines of <paramref name="data"/> to be brought into all cache levels. A hint only: it
    /// never faults, so a stale address (the GC may move the array later) costs nothing but a wasted fetch.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Lines(ReadOnlySpan<float> data, int lines = 2) => Lines(MemoryMarshal.AsBytes(data), lines);

    /// <summary>The same for bytes: the first <paramref name="lines"/> cache lines of <paramref name="data"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void Lines(ReadOnlySpan<byte> data, int lines)
    {
        if (!Sse.IsSupported || data.IsEmpty) return;
        byte* p = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(data));
        int n = Math.Min(lines, (data.Length + 63) / 64);
        for (int i = 0; i < n; i++) Sse.Prefetch0(p + i * 64);
    }
}
