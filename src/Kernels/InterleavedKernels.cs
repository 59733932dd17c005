using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Adanns.Kernels;

/// <summary>
/// Kernels over the <b>interleaved-16</b> layout: rows are grouped in blocks of 16, and within a block the
/// values are stored dimension-major — block b holds x[16b+0..15][0], then x[16b+0..15][1], and so on. A
/// Matryoshka prefix of d dims of all 16 rows is therefore the first 16·d floats of the block: contiguous,
/// and one FMA per dim scores 16 rows at once with no horizontal sums.
/// </summary>
/// <remarks>
/// Shape: <c>blocks</c> holds nb blocks, each <c>blockStride</c> floats apart (blockStride = 16·dims stored,
/// ≥ 16·d). Outputs hold 16·nb floats (rows of a partial last block are whatever the padding gives).
/// </remarks>
public static class InterleavedKernels
{
    /// <summary>Rows per block.</summary>
    public const int BlockRows = 16;

    /// <summary>
    /// dots[r] = q · x_r[:d] for every row r of <paramref name="nb"/> blocks, d = q.Length; when
    /// <paramref name="norms2"/> is not empty also norms2[r] = ‖x_r[:d]‖².
    /// </summary>
    public static void Dot(ReadOnlySpan<float> q, ReadOnlySpan<float> blocks, int blockStride, int nb, Span<float> dots, Span<float> norms2)
    {
        int d = q.Length;
        if (blockStride < BlockRows * d)
            throw new ArgumentException($"Block stride {blockStride} cannot hold {d} dims of 16 rows.");
        if (nb < 0 || (nb > 0 && (long)(nb - 1) * blockStride + BlockRows * d > blocks.Length))
            throw new ArgumentException($"{nb} blocks at stride {blockStride} need more than the {blocks.Length} floats given.");
        if (dots.Length < nb * BlockRows || (!norms2.IsEmpty && norms2.Length < nb * BlockRows))
            throw new ArgumentException($"Outputs must hold {nb * BlockRows} floats.");
        if (nb == 0) return;
        if (Vector512.IsHardwareAccelerated)
        {
            if (norms2.IsEmpty) Dot512<NoNorm>(q, blocks, blockStride, nb, dots, norms2);
            else Dot512<Norm>(q, blocks, blockStride, nb, dots, norms2);
            return;
        }
        DotPortable(q, blocks, blockStride, nb, dots, norms2);
    }

    private interface INormFlag { static abstract bool On { get; } }
    private readonly struct Norm : INormFlag { public static bool On => true; }
    private readonly struct NoNorm : INormFlag { public static bool On => false; }

    private static void Dot512<TNorm>(ReadOnlySpan<float> q, ReadOnlySpan<float> blocks, int blockStride, int nb, Span<float> dots, Span<float> norms2)
        where TNorm : struct, INormFlag
    {
        int d = q.Length;
        ref float qr = ref MemoryMarshal.GetReference(q);
        ref float br = ref MemoryMarshal.GetReference(blocks);
        ref float dr = ref MemoryMarshal.GetReference(dots);
        ref float nr = ref MemoryMarshal.GetReference(norms2);
        nuint stride = (nuint)blockStride;
        int b = 0;
        // Four blocks (64 rows) per pass share each broadcast of q[j].
        for (; b + 4 <= nb; b += 4)
        {
            ref float x0 = ref Unsafe.Add(ref br, (nuint)b * stride);
            ref float x1 = ref Unsafe.Add(ref x0, stride);
            ref float x2 = ref Unsafe.Add(ref x1, stride);
            ref float x3 = ref Unsafe.Add(ref x2, stride);
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            Vector512<float> n0 = default, n1 = default, n2 = default, n3 = default;
            for (nuint j = 0, o = 0; j < (nuint)d; j++, o += BlockRows)
            {
                var qj = Vector512.Create(Unsafe.Add(ref qr, j));
                var v0 = Vector512.LoadUnsafe(ref x0, o);
                var v1 = Vector512.LoadUnsafe(ref x1, o);
                var v2 = Vector512.LoadUnsafe(ref x2, o);
                var v3 = Vector512.LoadUnsafe(ref x3, o);
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
            ref float x0 = ref Unsafe.Add(ref br, (nuint)b * stride);
            Vector512<float> a0 = default, n0 = default;
            for (nuint j = 0, o = 0; j < (nuint)d; j++, o += BlockRows)
            {
                var v0 = Vector512.LoadUnsafe(ref x0, o);
                a0 = Vector512.FusedMultiplyAdd(Vector512.Create(Unsafe.Add(ref qr, j)), v0, a0);
                if (TNorm.On) n0 = Vector512.FusedMultiplyAdd(v0, v0, n0);
            }
            a0.StoreUnsafe(ref dr, (nuint)b * BlockRows);
            if (TNorm.On) n0.StoreUnsafe(ref nr, (nuint)b * BlockRows);
        }
    }

    /// <summary>Vector256/128/scalar-friendly version (the JIT vectorises what it can through Vector&lt;T&gt;-free loops).</summary>
    internal static void DotPortable(ReadOnlySpan<float> q, ReadOnlySpan<float> blocks, int blockStride, int nb, Span<float> dots, Span<float> norms2)
    {
        int d = q.Length;
        bool withNorms = !norms2.IsEmpty;
        Span<float> acc = stackalloc float[BlockRows];
        Span<float> nacc = stackalloc float[BlockRows];
        for (int b = 0; b < nb; b++)
        {
            acc.Clear();
            nacc.Clear();
            var block = blocks.Slice(b * blockStride, BlockRows * d);
            for (int j = 0; j < d; j++)
            {
                var col = block.Slice(j * BlockRows, BlockRows);
                // TensorPrimitives picks Vector256/128 here where the hardware has them.
                System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(col, q[j], acc, acc);
                if (withNorms) System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(col, col, nacc, nacc);
            }
            acc.CopyTo(dots.Slice(b * BlockRows, BlockRows));
            if (withNorms) nacc.CopyTo(norms2.Slice(b * BlockRows, BlockRows));
        }
    }

    /// <summary>Writes row <paramref name="row"/> (its first d = <paramref name="values"/>.Length dims) into interleaved storage.</summary>
    public static void WriteRow(Span<float> blocks, int blockStride, int row, ReadOnlySpan<float> values)
    {
        int b = row / BlockRows, lane = row % BlockRows;
        if (blockStride < BlockRows * values.Length)
            throw new ArgumentException($"Block stride {blockStride} cannot hold {values.Length} dims.");
        var block = blocks.Slice(b * blockStride, BlockRows * values.Length);
        for (int j = 0; j < values.Length; j++)
            block[j * BlockRows + lane] = values[j];
    }

    /// <summary>Reads row <paramref name="row"/>'s first <paramref name="destination"/>.Length dims from interleaved storage.</summary>
    public static void ReadRow(ReadOnlySpan<float> blocks, int blockStride, int row, Span<float> destination)
    {
        int b = row / BlockRows, lane = row % BlockRows;
        var block = blocks.Slice(b * blockStride, BlockRows * destination.Length);
        for (int j = 0; j < destination.Length; j++)
            destination[j] = block[j * BlockRows + lane];
    }
}
