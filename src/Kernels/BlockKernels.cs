using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Adanns.Kernels;

/// <summary>
/// Query-block × row-block inner products (a small GEMM, C = Q·Rᵀ over a prefix), register-blocked 4 queries ×
/// 4 rows: each row vector load feeds four FMAs and each query load four, which is what makes batch search
/// compute-bound instead of load-bound.
/// </summary>
public static class BlockKernels
{
    /// <summary>
    /// dst[i·dstStride + j] = queries[i·qStride ..][:d] · rows[j·rStride ..][:d] for i &lt; nq, j &lt; nr.
    /// </summary>
    /// <param name="queries">nq rows at <paramref name="qStride"/> floats apart.</param>
    /// <param name="qStride">Distance between query rows (≥ d).</param>
    /// <param name="nq">Number of queries.</param>
    /// <param name="rows">nr rows at <paramref name="rStride"/> floats apart.</param>
    /// <param name="rStride">Distance between rows (≥ d).</param>
    /// <param name="nr">Number of rows.</param>
    /// <param name="d">Prefix length used from every query and row.</param>
    /// <param name="dst">nq × dstStride output (dstStride ≥ nr).</param>
    /// <param name="dstStride">Distance between output rows.</param>
    public static void DotBlock(
        ReadOnlySpan<float> queries, int qStride, int nq,
        ReadOnlySpan<float> rows, int rStride, int nr,
        int d, Span<float> dst, int dstStride)
    {
        if (d <= 0) throw new ArgumentOutOfRangeException(nameof(d), d, "Prefix length must be positive.");
        RowKernels.CheckShape(d, queries.Length, qStride, nq);
        RowKernels.CheckShape(d, rows.Length, rStride, nr);
        if (nq > 0 && (dstStride < nr || (long)(nq - 1) * dstStride + nr > dst.Length))
            throw new ArgumentException($"Output of {nq}×{nr} at stride {dstStride} does not fit in {dst.Length} floats.");
        if (nq == 0 || nr == 0) return;

        if (!Vector512.IsHardwareAccelerated || d < 16)
        {
            for (int i = 0; i < nq; i++)
            {
                var q = queries.Slice(i * qStride, d);
                for (int j = 0; j < nr; j++)
                    dst[i * dstStride + j] = VectorMath.Aggregate<DotOp>(q, rows.Slice(j * rStride, d));
            }
            return;
        }

        ref float qBase = ref MemoryMarshal.GetReference(queries);
        ref float rBase = ref MemoryMarshal.GetReference(rows);
        ref float cBase = ref MemoryMarshal.GetReference(dst);
        int i0 = 0;
        for (; i0 + 4 <= nq; i0 += 4)
        {
            int j0 = 0;
            for (; j0 + 4 <= nr; j0 += 4)
            {
                Dot4x4(
                    ref Unsafe.Add(ref qBase, (nint)i0 * qStride), (nuint)qStride,
                    ref Unsafe.Add(ref rBase, (nint)j0 * rStride), (nuint)rStride,
                    (nuint)d, ref Unsafe.Add(ref cBase, (nint)i0 * dstStride + j0), (nuint)dstStride);
            }
            for (; j0 < nr; j0++)
            {
                var r = rows.Slice(j0 * rStride, d);
                for (int i = i0; i < i0 + 4; i++)
                    dst[i * dstStride + j0] = VectorMath.Aggregate512<DotOp>(queries.Slice(i * qStride, d), r);
            }
        }
        for (; i0 < nq; i0++)
            RowKernels.Rows512<DotOp>(queries.Slice(i0 * qStride, d), rows, rStride, dst.Slice(i0 * dstStride, nr));
    }

    /// <summary>4 queries × 4 rows, d ≥ 16; 16 accumulators stay in zmm registers.</summary>
    private static void Dot4x4(ref float q0, nuint qs, ref float r0, nuint rs, nuint d, ref float c, nuint cs)
    {
        const int W = 16;
        ref float q1 = ref Unsafe.Add(ref q0, qs);
        ref float q2 = ref Unsafe.Add(ref q1, qs);
        ref float q3 = ref Unsafe.Add(ref q2, qs);
        ref float r1 = ref Unsafe.Add(ref r0, rs);
        ref float r2 = ref Unsafe.Add(ref r1, rs);
        ref float r3 = ref Unsafe.Add(ref r2, rs);
        Vector512<float> c00 = default, c01 = default, c02 = default, c03 = default;
        Vector512<float> c10 = default, c11 = default, c12 = default, c13 = default;
        Vector512<float> c20 = default, c21 = default, c22 = default, c23 = default;
        Vector512<float> c30 = default, c31 = default, c32 = default, c33 = default;
        nuint i = 0;
        for (; i + W <= d; i += W)
        {
            var x0 = Vector512.LoadUnsafe(ref r0, i);
            var x1 = Vector512.LoadUnsafe(ref r1, i);
            var x2 = Vector512.LoadUnsafe(ref r2, i);
            var x3 = Vector512.LoadUnsafe(ref r3, i);
            var y = Vector512.LoadUnsafe(ref q0, i);
            c00 = Vector512.FusedMultiplyAdd(y, x0, c00); c01 = Vector512.FusedMultiplyAdd(y, x1, c01);
            c02 = Vector512.FusedMultiplyAdd(y, x2, c02); c03 = Vector512.FusedMultiplyAdd(y, x3, c03);
            y = Vector512.LoadUnsafe(ref q1, i);
            c10 = Vector512.FusedMultiplyAdd(y, x0, c10); c11 = Vector512.FusedMultiplyAdd(y, x1, c11);
            c12 = Vector512.FusedMultiplyAdd(y, x2, c12); c13 = Vector512.FusedMultiplyAdd(y, x3, c13);
            y = Vector512.LoadUnsafe(ref q2, i);
            c20 = Vector512.FusedMultiplyAdd(y, x0, c20); c21 = Vector512.FusedMultiplyAdd(y, x1, c21);
            c22 = Vector512.FusedMultiplyAdd(y, x2, c22); c23 = Vector512.FusedMultiplyAdd(y, x3, c23);
            y = Vector512.LoadUnsafe(ref q3, i);
            c30 = Vector512.FusedMultiplyAdd(y, x0, c30); c31 = Vector512.FusedMultiplyAdd(y, x1, c31);
            c32 = Vector512.FusedMultiplyAdd(y, x2, c32); c33 = Vector512.FusedMultiplyAdd(y, x3, c33);
        }
        if (i < d)
        {
            // Overlapping masked load of the last 16 dims: already-counted lanes are zeroed in the rows only
            // (a zero factor zeroes the product).
            nuint o = d - W;
            var m = VectorMath.TailMask512((int)(d - i));
            var x0 = Vector512.LoadUnsafe(ref r0, o) & m;
            var x1 = Vector512.LoadUnsafe(ref r1, o) & m;
            var x2 = Vector512.LoadUnsafe(ref r2, o) & m;
            var x3 = Vector512.LoadUnsafe(ref r3, o) & m;
            var y = Vector512.LoadUnsafe(ref q0, o);
            c00 = Vector512.FusedMultiplyAdd(y, x0, c00); c01 = Vector512.FusedMultiplyAdd(y, x1, c01);
            c02 = Vector512.FusedMultiplyAdd(y, x2, c02); c03 = Vector512.FusedMultiplyAdd(y, x3, c03);
            y = Vector512.LoadUnsafe(ref q1, o);
            c10 = Vector512.FusedMultiplyAdd(y, x0, c10); c11 = Vector512.FusedMultiplyAdd(y, x1, c11);
            c12 = Vector512.FusedMultiplyAdd(y, x2, c12); c13 = Vector512.FusedMultiplyAdd(y, x3, c13);
            y = Vector512.LoadUnsafe(ref q2, o);
            c20 = Vector512.FusedMultiplyAdd(y, x0, c20); c21 = Vector512.FusedMultiplyAdd(y, x1, c21);
            c22 = Vector512.FusedMultiplyAdd(y, x2, c22); c23 = Vector512.FusedMultiplyAdd(y, x3, c23);
            y = Vector512.LoadUnsafe(ref q3, o);
            c30 = Vector512.FusedMultiplyAdd(y, x0, c30); c31 = Vector512.FusedMultiplyAdd(y, x1, c31);
            c32 = Vector512.FusedMultiplyAdd(y, x2, c32); c33 = Vector512.FusedMultiplyAdd(y, x3, c33);
        }
        Store4(ref c, c00, c01, c02, c03);
        Store4(ref Unsafe.Add(ref c, cs), c10, c11, c12, c13);
        Store4(ref Unsafe.Add(ref c, 2 * cs), c20, c21, c22, c23);
        Store4(ref Unsafe.Add(ref c, 3 * cs), c30, c31, c32, c33);
    }

    /// <summary>Horizontal sums of four accumulators into four consecutive floats.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store4(ref float dst, Vector512<float> a, Vector512<float> b, Vector512<float> c, Vector512<float> e)
    {
        // Fold 512 → 256 → 128 on all four at once, then a 4×4 transpose-add, so the four sums cost about as
        // much as one naive horizontal sum each would in its last step.
        var a2 = a.GetLower() + a.GetUpper();
        var b2 = b.GetLower() + b.GetUpper();
        var c2 = c.GetLower() + c.GetUpper();
        var e2 = e.GetLower() + e.GetUpper();
        var a4 = a2.GetLower() + a2.GetUpper();
        var b4 = b2.GetLower() + b2.GetUpper();
        var c4 = c2.GetLower() + c2.GetUpper();
        var e4 = e2.GetLower() + e2.GetUpper();
        // a4 = [a0 a1 a2 a3] etc.; the result lane k = Σ over lanes of the k-th vector.
        var t0 = UnpackLo(a4, b4); // a0 b0 a1 b1
        var t1 = UnpackHi(a4, b4); // a2 b2 a3 b3
        var t2 = UnpackLo(c4, e4); // c0 e0 c1 e1
        var t3 = UnpackHi(c4, e4); // c2 e2 c3 e3
        var s01 = t0 + t1;          // a0+a2 b0+b2 a1+a3 b1+b3
        var s23 = t2 + t3;          // c0+c2 e0+e2 c1+c3 e1+e3
        var lo = MoveLowHigh(s01, s23); // a02 b02 c02 e02
        var hi = MoveHighLow(s01, s23); // a13 b13 c13 e13
        (lo + hi).StoreUnsafe(ref dst);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> UnpackLo(Vector128<float> x, Vector128<float> y) =>
        System.Runtime.Intrinsics.X86.Sse.IsSupported
            ? System.Runtime.Intrinsics.X86.Sse.UnpackLow(x, y)
            : Vector128.Create(x[0], y[0], x[1], y[1]);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> UnpackHi(Vector128<float> x, Vector128<float> y) =>
        System.Runtime.Intrinsics.X86.Sse.IsSupported
            ? System.Runtime.Intrinsics.X86.Sse.UnpackHigh(x, y)
            : Vector128.Create(x[2], y[2], x[3], y[3]);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> MoveLowHigh(Vector128<float> x, Vector128<float> y) =>
        System.Runtime.Intrinsics.X86.Sse.IsSupported
            ? System.Runtime.Intrinsics.X86.Sse.MoveLowToHigh(x, y)
            : Vector128.Create(x[0], x[1], y[0], y[1]);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> MoveHighLow(Vector128<float> x, Vector128<float> y) =>
        System.Runtime.Intrinsics.X86.Sse.IsSupported
            ? System.Runtime.Intrinsics.X86.Sse.MoveHighToLow(y, x)
            : Vector128.Create(x[2], x[3], y[2], y[3]);
}
