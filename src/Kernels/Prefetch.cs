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
    public static unsafe void Lines(ReadOnlySpan<float> data, int lines = 2)
    {
        if (!Sse.IsSupported || data.IsEmpty) return;
        byte* p = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(data));
        int bytes = data.Length * sizeof(float);
        for (int i = 0; i < lines && i * 64 < bytes; i++) Sse.Prefetch0(p + i * 64);
    }
}
