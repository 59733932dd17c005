namespace Adanns.Engine.Indexes;

/// <summary>The grow-on-demand rule of every index's per-thread scratch: a warm search allocates nothing.</summary>
internal static class ScratchBuffer
{
    /// <summary>The first <paramref name="n"/> entries of <paramref name="a"/>, first grown (at least doubled) if too short.</summary>
    public static Span<T> Span<T>(ref T[] a, int n)
    {
        if (a.Length < n) a = new T[Math.Max(n, a.Length * 2)];
        return a.AsSpan(0, n);
    }
}
