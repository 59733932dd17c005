using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Adanns.Kernels;

/// <summary>
/// Kernels over the <b>interleaved-16</b> layout, built so that a Matryoshka prefix scan reads contiguous memory
/// and scores 16 rows per FMA with no horizontal sums.
/// </summary>
/// <remarks>
/// <para>Rows are grouped in blocks of 16 and dims in groups of 16. The 16×16 tile of (block b, group g) holds
/// its values dimension-major — value (row 16b+lane, dim 16g+jj) is at <c>tile + jj·16 + lane</c> — and the tile
/// starts at <c>b·BlockStride + g·GroupStride</c> (a <see cref="TileLayout"/>). Two layouts matter:
/// <b>block-major</b> (a block's tiles adjacent: a short list at its full stored prefix is one contiguous run,
/// which is what inverted lists of a few dozen rows need) and <b>group-major</b> (a group's tiles adjacent
/// across all blocks: a long table scanned at a short prefix streams ⌈d/16⌉ regions, as for centroids).</para>
/// <para>A store of S dims is padded to a multiple of 16 dims, and a partial last block is padded with rows
/// whose outputs callers ignore.</para>
/// </remarks>
public static class InterleavedKernels
{
    /// <summary>Rows per block and dims per group.</summary>
    public const int BlockRows = 16;

    /// <summary>Floats per (group, block) tile: 16 dims × 16 rows.</summary>
    public const int TileFloats = BlockRows * BlockRows;

    /// <summary>Floats (or bytes) a group-major table of <paramref name="blocks"/> blocks needs per dim group.</summary>
    public static long GroupStride(int blocks) => (long)blocks * TileFloats;

    /// <summary>Groups needed to hold <paramref name="dims"/> dims.</summary>
    public static int Groups(int dims) => (dims + BlockRows - 1) / BlockRows;

    /// <summary>
    /// dots[r] = q · x_r[:d] for the 16·nb rows of blocks [0, nb), d = q.Length; when <paramref name="norms2"/> is
    /// not empty also norms2[r] = ‖x_r[:d]‖². <paramref name="data"/> starts at block 0 of group 0.
    /// </summary>
    public static void Dot(ReadOnlySpan<float> q, ReadOnlySpan<float> data, TileLayout layout, int nb, Span<float> dots, Span<float> norms2)
    {
        int d = q.Length;
        CheckShape(d, data.Length, layout, nb, dots.Length, norms2);
        if (nb == 0 || d == 0) return;
        if (Vector512.IsHardwareAccelerated)
        {
            if (norms2.IsEmpty) Dot512<NoNorm>(q, data, layout, nb, dots, norms2);
            else Dot512<Norm>(q, data, layout, nb, dots, norms2);
            return;
        }
        DotPortable(q, data, layout, nb, dots, norms2);
    }

    private static void CheckShape(int d, int dataLength, TileLayout layout, int nb, int dotsLength, Span<float> norms2)
    {
        if (nb < 0) throw new ArgumentOutOfRangeException(nameof(nb), nb, "Block count must be non-negative.");
        if (layout.BlockStride < TileFloats || layout.GroupStride < TileFloats)
            throw new ArgumentException($"Tile strides ({layout.BlockStride}, {layout.GroupStride}) must be at least one tile ({TileFloats}).");
        if (nb > 0 && d > 0 && layout.Offset(nb - 1, Groups(d) - 1) + TileFloats > dataLength)
            throw new ArgumentException($"{nb} blocks × {Groups(d)} groups with strides ({layout.BlockStride}, {layout.GroupStride}) need more than the {dataLength} entries given.");
        if (dotsLength < nb * BlockRows || (!norms2.IsEmpty && norms2.Length < nb * BlockRows))
            throw new ArgumentException($"Outputs must hold {nb * BlockRows} floats.");
    }

    private interface INormFlag { static abstract bool On { get; } }
    private readonly struct Norm : INormFlag { public static bool On => true; }
    private readonly struct NoNorm : INormFlag { public static bool On => false; }

    private static void Dot512<TNorm>(ReadOnlySpan<float> q, ReadOnlySpan<float> data, TileLayout layout, int nb, Span<float> dots, Span<float> norms2)
        where TNorm : struct, INormFlag
    {
        int d = q.Length;
        int groups = Groups(d);
        ref float qr = ref MemoryMarshal.GetReference(q);
        ref float br = ref MemoryMarshal.GetReference(data);
        ref float dr = ref MemoryMarshal.GetReference(dots);
        ref float nr = ref MemoryMarshal.GetReference(norms2);
        nuint bs = (nuint)layout.BlockStride;
        int b = 0;
        // Four blocks (64 rows) per pass share each broadcast of q[j].
        for (; b + 4 <= nb; b += 4)
        {
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            Vector512<float> n0 = default, n1 = default, n2 = default, n3 = default;
            for (int g = 0; g < groups; g++)
            {
                ref float x0 = ref Unsafe.Add(ref br, (nint)layout.Offset(b, g));
                ref float qg = ref Unsafe.Add(ref qr, g * BlockRows);
                nuint dims = (nuint)Math.Min(BlockRows, d - g * BlockRows);
                for (nuint jj = 0, o = 0; jj < dims; jj++, o += BlockRows)
                {
                    var qj = Vector512.Create(Unsafe.Add(ref qg, jj));
                    var v0 = Vector512.LoadUnsafe(ref x0, o);
                    var v1 = Vector512.LoadUnsafe(ref x0, o + bs);
                    var v2 = Vector512.LoadUnsafe(ref x0, o + 2 * bs);
                    var v3 = Vector512.LoadUnsafe(ref x0, o + 3 * bs);
                    a0 = Vector512.FusedMultiplyAdd(qj, v0, a0);
                    a1 = Vector512.FusedMultiplyAdd(qj, v1, a1);
                    a2 = Vector512.FusedMultiplyAdd(qj, v2, a2);
                    a3 = Vector512.FusedMultiplyAdd(qj, v3, a3);
                    if (TNorm.On)
                    {
                        n0 = Vector512.FusedMultiplyAdd(v0, v0, n0);
                        n1 = Vector512.FusedMultiplyAdd(v1, v1, n1);
                        n2 = Vector512.FusedMultiplyAdd(v2, v2, n2);
                        n3 = Vector512.FusedMultiplyAdd(v3, v3, n3);
                    }
                }
            }
            nuint r = (nuint)b * BlockRows;
            a0.StoreUnsafe(ref dr, r);
            a1.StoreUnsafe(ref dr, r + 16);
            a2.StoreUnsafe(ref dr, r + 32);
            a3.StoreUnsafe(ref dr, r + 48);
            if (TNorm.On)
            {
                n0.StoreUnsafe(ref nr, r);
                n1.StoreUnsafe(ref nr, r + 16);
                n2.StoreUnsafe(ref nr, r + 32);
                n3.StoreUnsafe(ref nr, r + 48);
            }
        }
        for (; b < nb; b++)
        {
            Vector512<float> a0 = default, n0 = default;
            for (int g = 0; g < groups; g++)
            {
                ref float x0 = ref Unsafe.Add(ref br, (nint)layout.Offset(b, g));
                ref float qg = ref Unsafe.Add(ref qr, g * BlockRows);
                nuint dims = (nuint)Math.Min(BlockRows, d - g * BlockRows);
                for (nuint jj = 0, o = 0; jj < dims; jj++, o += BlockRows)
                {
                    var v0 = Vector512.LoadUnsafe(ref x0, o);
                    a0 = Vector512.FusedMultiplyAdd(Vector512.Create(Unsafe.Add(ref qg, jj)), v0, a0);
                    if (TNorm.On) n0 = Vector512.FusedMultiplyAdd(v0, v0, n0);
                }
            }
            a0.StoreUnsafe(ref dr, (nuint)b * BlockRows);
            if (TNorm.On) n0.StoreUnsafe(ref nr, (nuint)b * BlockRows);
        }
    }

    /// <summary>
    /// <see cref="Dot"/> (without norms) for up to four queries at once: dots[i·dotsStride + r] = q_i · x_r[:d] for
    /// query i &lt; <paramref name="queryCount"/>, the queries at stride d in <paramref name="queries"/>. Each value
    /// loaded feeds one FMA per query (k-means assignment scores many points against one centroid table, and a
    /// one-query pass loads a table value per FMA: bound by the L2, not the FMA units). Every dot is summed in the
    /// same order as <see cref="Dot"/>'s, so the results equal its bit for bit.
    /// </summary>
    public static void DotMulti(ReadOnlySpan<float> queries, int d, int queryCount, ReadOnlySpan<float> data, TileLayout layout, int nb,
        Span<float> dots, int dotsStride)
    {
        if (queryCount < 1 || queryCount > 4) throw new ArgumentOutOfRangeException(nameof(queryCount), queryCount, "1 to 4 queries per call.");
        if (d < 0 || queries.Length < queryCount * d) throw new ArgumentException($"{queryCount} queries of {d} dims need {queryCount * d} floats.");
        if (dotsStride < nb * BlockRows || dots.Length < (queryCount - 1) * dotsStride + nb * BlockRows)
            throw new ArgumentException($"Outputs must hold {queryCount} rows of {nb * BlockRows} at stride {dotsStride}.");
        CheckShape(d, data.Length, layout, nb, nb * BlockRows, default);
        if (nb == 0 || d == 0) return;
        if (!Vector512.IsHardwareAccelerated)
        {
            for (int i = 0; i < queryCount; i++)
                DotPortable(queries.Slice(i * d, d), data, layout, nb, dots.Slice(i * dotsStride, nb * BlockRows), default);
            return;
        }
        int groups = Groups(d);
        ref float qr = ref MemoryMarshal.GetReference(queries);
        ref float br = ref MemoryMarshal.GetReference(data);
        ref float dr = ref MemoryMarshal.GetReference(dots);
        // Unused query slots repeat query 0 (reads stay in bounds); their sums are not stored.
        int o1 = queryCount > 1 ? d : 0, o2 = queryCount > 2 ? 2 * d : 0, o3 = queryCount > 3 ? 3 * d : 0;
        nuint bs = (nuint)layout.BlockStride, ds = (nuint)dotsStride;
        int b = 0;
        // Two blocks × four queries: eight accumulators, two table loads and four broadcasts per eight FMAs.
        for (; b + 2 <= nb; b += 2)
        {
            Vector512<float> a00 = default, a01 = default, a10 = default, a11 = default;
            Vector512<float> a20 = default, a21 = default, a30 = default, a31 = default;
            for (int g = 0; g < groups; g++)
            {
                ref float x0 = ref Unsafe.Add(ref br, (nint)layout.Offset(b, g));
                int j0 = g * BlockRows;
                nuint dims = (nuint)Math.Min(BlockRows, d - j0);
                for (nuint jj = 0, o = 0; jj < dims; jj++, o += BlockRows)
                {
                    int j = j0 + (int)jj;
                    var v0 = Vector512.LoadUnsafe(ref x0, o);
                    var v1 = Vector512.LoadUnsafe(ref x0, o + bs);
                    var q0 = Vector512.Create(Unsafe.Add(ref qr, j));
                    var q1 = Vector512.Create(Unsafe.Add(ref qr, o1 + j));
                    var q2 = Vector512.Create(Unsafe.Add(ref qr, o2 + j));
                    var q3 = Vector512.Create(Unsafe.Add(ref qr, o3 + j));
                    a00 = Vector512.FusedMultiplyAdd(q0, v0, a00);
                    a01 = Vector512.FusedMultiplyAdd(q0, v1, a01);
                    a10 = Vector512.FusedMultiplyAdd(q1, v0, a10);
                    a11 = Vector512.FusedMultiplyAdd(q1, v1, a11);
                    a20 = Vector512.FusedMultiplyAdd(q2, v0, a20);
                    a21 = Vector512.FusedMultiplyAdd(q2, v1, a21);
                    a30 = Vector512.FusedMultiplyAdd(q3, v0, a30);
                    a31 = Vector512.FusedMultiplyAdd(q3, v1, a31);
                }
            }
            nuint r = (nuint)b * BlockRows;
            a00.StoreUnsafe(ref dr, r);
            a01.StoreUnsafe(ref dr, r + BlockRows);
            if (queryCount > 1) { a10.StoreUnsafe(ref dr, ds + r); a11.StoreUnsafe(ref dr, ds + r + BlockRows); }
            if (queryCount > 2) { a20.StoreUnsafe(ref dr, 2 * ds + r); a21.StoreUnsafe(ref dr, 2 * ds + r + BlockRows); }
            if (queryCount > 3) { a30.StoreUnsafe(ref dr, 3 * ds + r); a31.StoreUnsafe(ref dr, 3 * ds + r + BlockRows); }
        }
        for (; b < nb; b++)
        {
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (int g = 0; g < groups; g++)
            {
                ref float x0 = ref Unsafe.Add(ref br, (nint)layout.Offset(b, g));
                int j0 = g * BlockRows;
                nuint dims = (nuint)Math.Min(BlockRows, d - j0);
                for (nuint jj = 0, o = 0; jj < dims; jj++, o += BlockRows)
                {
                    int j = j0 + (int)jj;
                    var v = Vector512.LoadUnsafe(ref x0, o);
                    a0 = Vector512.FusedMultiplyAdd(Vector512.Create(Unsafe.Add(ref qr, j)), v, a0);
                    a1 = Vector512.FusedMultiplyAdd(Vector512.Create(Unsafe.Add(ref qr, o1 + j)), v, a1);
                    a2 = Vector512.FusedMultiplyAdd(Vector512.Create(Unsafe.Add(ref qr, o2 + j)), v, a2);
                    a3 = Vector512.FusedMultiplyAdd(Vector512.Create(Unsafe.Add(ref qr, o3 + j)), v, a3);
                }
            }
            nuint r = (nuint)b * BlockRows;
            a0.StoreUnsafe(ref dr, r);
            if (queryCount > 1) a1.StoreUnsafe(ref dr, ds + r);
            if (queryCount > 2) a2.StoreUnsafe(ref dr, 2 * ds + r);
            if (queryCount > 3) a3.StoreUnsafe(ref dr, 3 * ds + r);
        }
    }

    /// <summary>The path for machines without AVX-512 (TensorPrimitives uses Vector256/128 where present).</summary>
    internal static void DotPortable(ReadOnlySpan<float> q, ReadOnlySpan<float> data, TileLayout layout, int nb, Span<float> dots, Span<float> norms2)
    {
        int d = q.Length;
        bool withNorms = !norms2.IsEmpty;
        Span<float> acc = stackalloc float[BlockRows];
        Span<float> nacc = stackalloc float[BlockRows];
        for (int b = 0; b < nb; b++)
        {
            acc.Clear();
            nacc.Clear();
            for (int j = 0; j < d; j++)
            {
                int g = j / BlockRows, jj = j % BlockRows;
                var col = data.Slice((int)layout.Offset(b, g) + jj * BlockRows, BlockRows);
                System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(col, q[j], acc, acc);
                if (withNorms) System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(col, col, nacc, nacc);
            }
            acc.CopyTo(dots.Slice(b * BlockRows, BlockRows));
            if (withNorms) nacc.CopyTo(norms2.Slice(b * BlockRows, BlockRows));
        }
    }

    /// <summary>
    /// The same scan over 8-bit codes (scalar quantization: x_j ≈ lo_j + step_j·c_j), laid out like the float
    /// store but one byte per value (tile = 256 bytes, strides in bytes).
    /// Without norms it computes dots[r] = Σ_j qs_j·c_rj, where the caller passes qs_j = q_j·step_j and adds
    /// the per-query constant Σ_j q_j·lo_j itself (one FMA per value). With norms it decodes each value and
    /// returns dots[r] = q·x̂_r[:d] and norms2[r] = ‖x̂_r[:d]‖² (<paramref name="lo"/> and <paramref name="step"/>
    /// hold d values each; <paramref name="q"/> is then the plain query).
    /// </summary>
    public static void DotU8(ReadOnlySpan<float> q, ReadOnlySpan<float> lo, ReadOnlySpan<float> step, ReadOnlySpan<byte> codes,
        TileLayout layout, int nb, Span<float> dots, Span<float> norms2)
    {
        int d = q.Length;
        CheckShape(d, codes.Length, layout, nb, dots.Length, norms2);
        bool withNorms = !norms2.IsEmpty;
        if (withNorms && (lo.Length < d || step.Length < d))
            throw new ArgumentException($"Decoding {d} dims needs {d} offsets and steps.");
        if (nb == 0 || d == 0) return;
        if (System.Runtime.Intrinsics.X86.Avx512F.IsSupported)
        {
            if (withNorms) DotU8Avx512<Norm>(q, lo, step, codes, layout, nb, dots, norms2);
            else DotU8Avx512<NoNorm>(q, lo, step, codes, layout, nb, dots, norms2);
            return;
        }
        DotU8Portable(q, lo, step, codes, layout, nb, dots, norms2);
    }

    private static void DotU8Avx512<TNorm>(ReadOnlySpan<float> q, ReadOnlySpan<float> lo, ReadOnlySpan<float> step, ReadOnlySpan<byte> codes,
        TileLayout layout, int nb, Span<float> dots, Span<float> norms2) where TNorm : struct, INormFlag
    {
        int d = q.Length;
        int groups = Groups(d);
        ref float qr = ref MemoryMarshal.GetReference(q);
        ref float lr = ref MemoryMarshal.GetReference(lo);
        ref float sr = ref MemoryMarshal.GetReference(step);
        ref byte cr = ref MemoryMarshal.GetReference(codes);
        ref float dr = ref MemoryMarshal.GetReference(dots);
        ref float nr = ref MemoryMarshal.GetReference(norms2);
        nuint bs = (nuint)layout.BlockStride;
        for (int b = 0; b < nb; b += 4)
        {
            int m = Math.Min(4, nb - b);
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            Vector512<float> n0 = default, n1 = default, n2 = default, n3 = default;
            for (int g = 0; g < groups; g++)
            {
                ref byte x0 = ref Unsafe.Add(ref cr, (nint)layout.Offset(b, g));
                int j0 = g * BlockRows;
                nuint dims = (nuint)Math.Min(BlockRows, d - j0);
                for (nuint jj = 0, o = 0; jj < dims; jj++, o += BlockRows)
                {
                    // Blocks past m read the same tile again (never out of bounds); their results are not stored.
                    var v0 = U8ToFloat(ref x0, o);
                    var v1 = U8ToFloat(ref x0, m > 1 ? o + bs : o);
                    var v2 = U8ToFloat(ref x0, m > 2 ? o + 2 * bs : o);
                    var v3 = U8ToFloat(ref x0, m > 3 ? o + 3 * bs : o);
                    var qj = Vector512.Create(Unsafe.Add(ref qr, j0 + (int)jj));
                    if (TNorm.On)
                    {
                        var sj = Vector512.Create(Unsafe.Add(ref sr, j0 + (int)jj));
                        var lj = Vector512.Create(Unsafe.Add(ref lr, j0 + (int)jj));
                        v0 = Vector512.FusedMultiplyAdd(v0, sj, lj);
                        v1 = Vector512.FusedMultiplyAdd(v1, sj, lj);
                        v2 = Vector512.FusedMultiplyAdd(v2, sj, lj);
                        v3 = Vector512.FusedMultiplyAdd(v3, sj, lj);
                        n0 = Vector512.FusedMultiplyAdd(v0, v0, n0);
                        n1 = Vector512.FusedMultiplyAdd(v1, v1, n1);
                        n2 = Vector512.FusedMultiplyAdd(v2, v2, n2);
                        n3 = Vector512.FusedMultiplyAdd(v3, v3, n3);
                    }
                    a0 = Vector512.FusedMultiplyAdd(qj, v0, a0);
                    a1 = Vector512.FusedMultiplyAdd(qj, v1, a1);
                    a2 = Vector512.FusedMultiplyAdd(qj, v2, a2);
                    a3 = Vector512.FusedMultiplyAdd(qj, v3, a3);
                }
            }
            nuint r = (nuint)b * BlockRows;
            a0.StoreUnsafe(ref dr, r);
            if (m > 1) a1.StoreUnsafe(ref dr, r + 16);
            if (m > 2) a2.StoreUnsafe(ref dr, r + 32);
            if (m > 3) a3.StoreUnsafe(ref dr, r + 48);
            if (TNorm.On)
            {
                n0.StoreUnsafe(ref nr, r);
                if (m > 1) n1.StoreUnsafe(ref nr, r + 16);
                if (m > 2) n2.StoreUnsafe(ref nr, r + 32);
                if (m > 3) n3.StoreUnsafe(ref nr, r + 48);
            }
        }
    }

    /// <summary>
    /// The 8-bit inner-product scan for up to four queries at once: each code is loaded and widened once and
    /// feeds one FMA per query. dots[i·dotsStride + r] = Σ_j qs_i[j]·c_rj for query i &lt; <paramref name="queryCount"/>,
    /// where <paramref name="scaledQueries"/> holds the queries' pre-scaled vectors (q_j·step_j) at stride d.
    /// </summary>
    public static void DotU8Multi(ReadOnlySpan<float> scaledQueries, int d, int queryCount, ReadOnlySpan<byte> codes,
        TileLayout layout, int nb, Span<float> dots, int dotsStride)
    {
        if (queryCount < 1 || queryCount > 4) throw new ArgumentOutOfRangeException(nameof(queryCount), queryCount, "1 to 4 queries per call.");
        if (scaledQueries.Length < queryCount * d) throw new ArgumentException($"{queryCount} queries of {d} dims need {queryCount * d} floats.");
        if (dotsStride < nb * BlockRows || dots.Length < (queryCount - 1) * dotsStride + nb * BlockRows)
            throw new ArgumentException($"Outputs must hold {queryCount} rows of {nb * BlockRows} at stride {dotsStride}.");
        CheckShape(d, codes.Length, layout, nb, nb * BlockRows, default);
        if (nb == 0 || d == 0) return;
        if (!System.Runtime.Intrinsics.X86.Avx512F.IsSupported)
        {
            for (int i = 0; i < queryCount; i++)
                DotU8Portable(scaledQueries.Slice(i * d, d), default, default, codes, layout, nb, dots.Slice(i * dotsStride, nb * BlockRows), default);
            return;
        }
        int groups = Groups(d);
        ref float qr = ref MemoryMarshal.GetReference(scaledQueries);
        ref byte cr = ref MemoryMarshal.GetReference(codes);
        ref float dr = ref MemoryMarshal.GetReference(dots);
        // Unused query slots repeat query 0 (reads stay in bounds); their sums are not stored.
        int o1 = queryCount > 1 ? d : 0, o2 = queryCount > 2 ? 2 * d : 0, o3 = queryCount > 3 ? 3 * d : 0;
        for (int b = 0; b < nb; b++)
        {
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (int g = 0; g < groups; g++)
            {
                ref byte x0 = ref Unsafe.Add(ref cr, (nint)layout.Offset(b, g));
                int j0 = g * BlockRows;
                int dims = Math.Min(BlockRows, d - j0);
                for (int jj = 0; jj < dims; jj++)
                {
                    var v = U8ToFloat(ref x0, (nuint)(jj * BlockRows));
                    int j = j0 + jj;
                    a0 = Vector512.FusedMultiplyAdd(Vector512.Create(Unsafe.Add(ref qr, j)), v, a0);
                    a1 = Vector512.FusedMultiplyAdd(Vector512.Create(Unsafe.Add(ref qr, o1 + j)), v, a1);
                    a2 = Vector512.FusedMultiplyAdd(Vector512.Create(Unsafe.Add(ref qr, o2 + j)), v, a2);
                    a3 = Vector512.FusedMultiplyAdd(Vector512.Create(Unsafe.Add(ref qr, o3 + j)), v, a3);
                }
            }
            nuint r = (nuint)b * BlockRows;
            a0.StoreUnsafe(ref dr, r);
            if (queryCount > 1) a1.StoreUnsafe(ref dr, (nuint)dotsStride + r);
            if (queryCount > 2) a2.StoreUnsafe(ref dr, 2 * (nuint)dotsStride + r);
            if (queryCount > 3) a3.StoreUnsafe(ref dr, 3 * (nuint)dotsStride + r);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> U8ToFloat(ref byte p, nuint offset) =>
        System.Runtime.Intrinsics.X86.Avx512F.ConvertToVector512Single(
            System.Runtime.Intrinsics.X86.Avx512F.ConvertToVector512Int32(Vector128.LoadUnsafe(ref p, offset)));

    /// <summary>The 8-bit scan without AVX-512.</summary>
    internal static void DotU8Portable(ReadOnlySpan<float> q, ReadOnlySpan<float> lo, ReadOnlySpan<float> step, ReadOnlySpan<byte> codes,
        TileLayout layout, int nb, Span<float> dots, Span<float> norms2)
    {
        int d = q.Length;
        bool withNorms = !norms2.IsEmpty;
        for (int b = 0; b < nb; b++)
        {
            for (int lane = 0; lane < BlockRows; lane++)
            {
                float acc = 0, nacc = 0;
                for (int j = 0; j < d; j++)
                {
                    float c = codes[(int)layout.Offset(b, j / BlockRows) + (j % BlockRows) * BlockRows + lane];
                    if (withNorms)
                    {
                        float x = MathF.FusedMultiplyAdd(c, step[j], lo[j]);
                        acc = MathF.FusedMultiplyAdd(q[j], x, acc);
                        nacc = MathF.FusedMultiplyAdd(x, x, nacc);
                    }
                    else
                    {
                        acc = MathF.FusedMultiplyAdd(q[j], c, acc);
                    }
                }
                dots[b * BlockRows + lane] = acc;
                if (withNorms) norms2[b * BlockRows + lane] = nacc;
            }
        }
    }

    /// <summary>Writes 8-bit codes of row <paramref name="row"/> (its first <paramref name="values"/>.Length dims).</summary>
    public static void WriteRow(Span<byte> codes, TileLayout layout, int row, ReadOnlySpan<byte> values)
    {
        int b = row / BlockRows, lane = row % BlockRows;
        for (int j = 0; j < values.Length; j++)
            codes[(int)layout.Offset(b, j / BlockRows) + (j % BlockRows) * BlockRows + lane] = values[j];
    }

    /// <summary>Writes the first <paramref name="values"/>.Length dims of row <paramref name="row"/>.</summary>
    public static void WriteRow(Span<float> data, TileLayout layout, int row, ReadOnlySpan<float> values)
    {
        int b = row / BlockRows, lane = row % BlockRows;
        for (int j = 0; j < values.Length; j++)
            data[(int)layout.Offset(b, j / BlockRows) + (j % BlockRows) * BlockRows + lane] = values[j];
    }

    /// <summary>Reads the first <paramref name="destination"/>.Length dims of row <paramref name="row"/>.</summary>
    public static void ReadRow(ReadOnlySpan<float> data, TileLayout layout, int row, Span<float> destination)
    {
        int b = row / BlockRows, lane = row % BlockRows;
        for (int j = 0; j < destination.Length; j++)
            destination[j] = data[(int)layout.Offset(b, j / BlockRows) + (j % BlockRows) * BlockRows + lane];
    }
}

/// <summary>Where the 16×16 tile of (block b, dim group g) starts: b·BlockStride + g·GroupStride (in entries).</summary>
/// <param name="BlockStride">Entries between consecutive blocks of one group.</param>
/// <param name="GroupStride">Entries between consecutive groups of one block.</param>
public readonly record struct TileLayout(int BlockStride, int GroupStride)
{
    /// <summary>Tiles of one block adjacent (a short list's prefix is one contiguous run).</summary>
    public static TileLayout BlockMajor(int storedDims) =>
        new(InterleavedKernels.Groups(storedDims) * InterleavedKernels.TileFloats, InterleavedKernels.TileFloats);

    /// <summary>Tiles of one dim group adjacent across <paramref name="blocks"/> blocks (a prefix streams ⌈d/16⌉ regions).</summary>
    public static TileLayout GroupMajor(int blocks) =>
        new(InterleavedKernels.TileFloats, (int)InterleavedKernels.GroupStride(blocks));

    /// <summary>Start of the tile of (block, group).</summary>
    public long Offset(int block, int group) => (long)block * BlockStride + (long)group * GroupStride;
}
