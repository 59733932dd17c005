using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Adanns.Kernels;

/// <summary>
/// One query against a block of rows. Rows are row-major with a stride, so scanning a Matryoshka prefix
/// d = q.Length of each row reads only its first d floats.
/// </summary>
/// <remarks>
/// Shapes: <c>q</c> is d floats; <c>rows</c> holds n rows at <c>stride</c> floats apart (d ≤ stride), i.e. at
/// least (n−1)·stride + d floats; <c>dst</c> is n floats. Four rows are processed together so each query
/// vector load is shared by four FMAs.
/// </remarks>
public static class RowKernels
{
    /// <summary>dst[j] = q · rows[j·stride .. j·stride + d).</summary>
    public static void DotRows(ReadOnlySpan<float> q, ReadOnlySpan<float> rows, int stride, Span<float> dst) =>
        Rows<DotOp>(q, rows, stride, dst);

    /// <summary>dst[j] = ‖q − rows[j·stride .. j·stride + d)‖².</summary>
    public static void L2Rows(ReadOnlySpan<float> q, ReadOnlySpan<float> rows, int stride, Span<float> dst) =>
        Rows<L2Op>(q, rows, stride, dst);

    private static void Rows<TOp>(ReadOnlySpan<float> q, ReadOnlySpan<float> rows, int stride, Span<float> dst)
        where TOp : struct, IPairOp
    {
        int d = q.Length, n = dst.Length;
        CheckShape(d, rows.Length, stride, n);
        if (n == 0) return;
        if (!Vector512.IsHardwareAccelerated || d < 16)
        {
            for (int j = 0; j < n; j++)
                dst[j] = VectorMath.Aggregate<TOp>(q, rows.Slice(j * stride, d));
            return;
        }
        Rows512<TOp>(q, rows, stride, dst);
    }

    internal static void Rows512<TOp>(ReadOnlySpan<float> q, ReadOnlySpan<float> rows, int stride, Span<float> dst)
        where TOp : struct, IPairOp
    {
        const int W = 16;
        nuint d = (nuint)q.Length;
        int n = dst.Length;
        ref float qr = ref MemoryMarshal.GetReference(q);
        ref float rr = ref MemoryMarshal.GetReference(rows);
        nuint tail = d % W;
        var mask = tail == 0 ? Vector512<float>.AllBitsSet : VectorMath.TailMask512((int)tail);
        nuint s = (nuint)stride;
        int j = 0;
        for (; j + 4 <= n; j += 4)
        {
            ref float r0 = ref Unsafe.Add(ref rr, (nuint)j * s);
            ref float r1 = ref Unsafe.Add(ref r0, s);
            ref float r2 = ref Unsafe.Add(ref r1, s);
            ref float r3 = ref Unsafe.Add(ref r2, s);
            var a0 = Vector512<float>.Zero;
            var a1 = Vector512<float>.Zero;
            var a2 = Vector512<float>.Zero;
            var a3 = Vector512<float>.Zero;
            nuint i = 0;
            for (; i + W <= d; i += W)
            {
                var vq = Vector512.LoadUnsafe(ref qr, i);
                a0 = TOp.Vec(a0, vq, Vector512.LoadUnsafe(ref r0, i));
                a1 = TOp.Vec(a1, vq, Vector512.LoadUnsafe(ref r1, i));
                a2 = TOp.Vec(a2, vq, Vector512.LoadUnsafe(ref r2, i));
                a3 = TOp.Vec(a3, vq, Vector512.LoadUnsafe(ref r3, i));
            }
            if (tail != 0)
            {
                // Overlapping masked load of the last 16 dims (d ≥ 16 here), never reading past row j's prefix.
                nuint o = d - W;
                var vq = Vector512.LoadUnsafe(ref qr, o) & mask;
                a0 = TOp.Vec(a0, vq, Vector512.LoadUnsafe(ref r0, o) & mask);
                a1 = TOp.Vec(a1, vq, Vector512.LoadUnsafe(ref r1, o) & mask);
                a2 = TOp.Vec(a2, vq, Vector512.LoadUnsafe(ref r2, o) & mask);
                a3 = TOp.Vec(a3, vq, Vector512.LoadUnsafe(ref r3, o) & mask);
            }
            dst[j] = Vector512.Sum(a0);
            dst[j + 1] = Vector512.Sum(a1);
            dst[j + 2] = Vector512.Sum(a2);
            dst[j + 3] = Vector512.Sum(a3);
        }
        for (; j < n; j++)
            dst[j] = VectorMath.Aggregate512<TOp>(q, rows.Slice(j * stride, (int)d));
    }

    /// <summary>
    /// Accumulating scan over one dimension block: dots[j] += q · rows[j·stride ..][:d] and, when
    /// <paramref name="norms2"/> is not empty, norms2[j] += ‖rows[j·stride ..][:d]‖², with d = q.Length.
    /// Used to scan Matryoshka slabs (dimension-blocked storage) one block at a time.
    /// </summary>
    public static void DotRowsAccumulate(ReadOnlySpan<float> q, ReadOnlySpan<float> rows, int stride, Span<float> dots, Span<float> norms2)
    {
        int d = q.Length, n = dots.Length;
        CheckShape(d, rows.Length, stride, n);
        bool withNorms = !norms2.IsEmpty;
        if (withNorms && norms2.Length < n)
            throw new ArgumentException($"Norm buffer holds {norms2.Length} floats for {n} rows.");
        if (n == 0 || d == 0) return;
        if (!Vector512.IsHardwareAccelerated || d < 16)
        {
            for (int j = 0; j < n; j++)
            {
                var r = rows.Slice(j * stride, d);
                dots[j] += VectorMath.Aggregate<DotOp>(q, r);
                if (withNorms) norms2[j] += VectorMath.Aggregate<DotOp>(r, r);
            }
            return;
        }
        if (withNorms) Accumulate512<WithNorms>(q, rows, stride, dots, norms2);
        else Accumulate512<NoNorms>(q, rows, stride, dots, norms2);
    }

    private interface INormMode { static abstract bool Enabled { get; } }
    private readonly struct WithNorms : INormMode { public static bool Enabled => true; }
    private readonly struct NoNorms : INormMode { public static bool Enabled => false; }

    private static void Accumulate512<TNorm>(ReadOnlySpan<float> q, ReadOnlySpan<float> rows, int stride, Span<float> dots, Span<float> norms2)
        where TNorm : struct, INormMode
    {
        const int W = 16;
        nuint d = (nuint)q.Length;
        int n = dots.Length;
        ref float qr = ref MemoryMarshal.GetReference(q);
        ref float rr = ref MemoryMarshal.GetReference(rows);
        nuint tail = d % W;
        var mask = tail == 0 ? Vector512<float>.AllBitsSet : VectorMath.TailMask512((int)tail);
        nuint s = (nuint)stride;
        int j = 0;
        for (; j + 2 <= n; j += 2)
        {
            ref float r0 = ref Unsafe.Add(ref rr, (nuint)j * s);
            ref float r1 = ref Unsafe.Add(ref r0, s);
            var a0 = Vector512<float>.Zero;
            var a1 = Vector512<float>.Zero;
            var n0 = Vector512<float>.Zero;
            var n1 = Vector512<float>.Zero;
            nuint i = 0;
            for (; i + W <= d; i += W)
            {
                var vq = Vector512.LoadUnsafe(ref qr, i);
                var x0 = Vector512.LoadUnsafe(ref r0, i);
                var x1 = Vector512.LoadUnsafe(ref r1, i);
                a0 = Vector512.FusedMultiplyAdd(vq, x0, a0);
                a1 = Vector512.FusedMultiplyAdd(vq, x1, a1);
                if (TNorm.Enabled)
                {
                    n0 = Vector512.FusedMultiplyAdd(x0, x0, n0);
                    n1 = Vector512.FusedMultiplyAdd(x1, x1, n1);
                }
            }
            if (tail != 0)
            {
                nuint o = d - W;
                var vq = Vector512.LoadUnsafe(ref qr, o) & mask;
                var x0 = Vector512.LoadUnsafe(ref r0, o) & mask;
                var x1 = Vector512.LoadUnsafe(ref r1, o) & mask;
                a0 = Vector512.FusedMultiplyAdd(vq, x0, a0);
                a1 = Vector512.FusedMultiplyAdd(vq, x1, a1);
                if (TNorm.Enabled)
                {
                    n0 = Vector512.FusedMultiplyAdd(x0, x0, n0);
                    n1 = Vector512.FusedMultiplyAdd(x1, x1, n1);
                }
            }
            dots[j] += Vector512.Sum(a0);
            dots[j + 1] += Vector512.Sum(a1);
            if (TNorm.Enabled)
            {
                norms2[j] += Vector512.Sum(n0);
                norms2[j + 1] += Vector512.Sum(n1);
            }
        }
        if (j < n)
        {
            var r = rows.Slice(j * stride, (int)d);
            dots[j] += VectorMath.Aggregate512<DotOp>(q, r);
            if (TNorm.Enabled) norms2[j] += VectorMath.Aggregate512<DotOp>(r, r);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void CheckShape(int d, int rowsLength, int stride, int n)
    {
        if (d > stride || stride <= 0)
            throw new ArgumentException($"Prefix length {d} must be ≤ row stride {stride} (and stride > 0).");
        if (n > 0 && (long)(n - 1) * stride + d > rowsLength)
            throw new ArgumentException($"{n} rows at stride {stride} with prefix {d} need {(long)(n - 1) * stride + d} floats; the row span has {rowsLength}.");
    }
}
