using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Adanns.Kernels;

/// <summary>
/// Dot products of an int8 query with many uint8 rows (scalar-quantized vectors), for ranking a fixed set such as IVF
/// centroids: with AVX-VNNI one <c>vpdpbusd</c> does 32 multiply-adds into int32 lanes without overflow, so a
/// 2,048 × 128 table takes a few microseconds where float decoding takes tens.
/// </summary>
/// <remarks>
/// Packed layout (<see cref="PackedBytes"/>): blocks of <see cref="BlockRows"/> = 8 rows; within a block, dims in
/// quads: 32 bytes per quad = 8 rows × 4 consecutive dims (row r's four bytes at 4r). Block b, quad t starts at
/// <c>(b·quads + t)·32</c> with quads = ⌈d/4⌉. Missing dims and rows are zero. A prefix d' ≤ d reads the first
/// ⌈d'/4⌉ quads of each block (the query's padding within the last quad must be zero).
/// </remarks>
public static class Int8Kernels
{
    /// <summary>Rows per packed block (int32 lanes of a 256-bit register).</summary>
    public const int BlockRows = 8;

    /// <summary>Whether <see cref="Dot"/> runs on VNNI instructions here (otherwise a scalar loop).</summary>
    public static bool IsAccelerated => AvxVnni.IsSupported;

    /// <summary>Dims rounded up to whole quads.</summary>
    public static int PaddedDims(int d) => (d + 3) & ~3;

    /// <summary>Bytes of the packed table for n rows of d dims.</summary>
    public static long PackedBytes(int n, int d) => (long)((n + BlockRows - 1) / BlockRows) * BlockRows * PaddedDims(d);

    /// <summary>Packs n row-major rows of d codes (n×d bytes) into the layout above.</summary>
    public static void Pack(ReadOnlySpan<byte> rows, int n, int d, Span<byte> packed)
    {
        if (n < 0 || d < 1 || rows.Length < (long)n * d) throw new ArgumentException($"Need {n} rows of {d} codes; got {rows.Length} bytes.");
        if (packed.Length < PackedBytes(n, d)) throw new ArgumentException($"Packed table needs {PackedBytes(n, d)} bytes; got {packed.Length}.");
        int quads = PaddedDims(d) / 4;
        packed[..(int)PackedBytes(n, d)].Clear();
        for (int i = 0; i < n; i++)
        {
            int b = i / BlockRows, r = i % BlockRows;
            for (int j = 0; j < d; j++)
                packed[((b * quads + j / 4) * 32) + r * 4 + j % 4] = rows[i * d + j];
        }
    }

    /// <summary>
    /// dots[i] = Σ_{j &lt; q.Length} q[j]·code[i, j] for the n rows of a table packed with <paramref name="d"/> dims
    /// (<paramref name="q"/>.Length ≤ d, rounded up to a quad with zeros). Exact in int32 for any d below 2^16.
    /// </summary>
    public static void Dot(ReadOnlySpan<sbyte> q, ReadOnlySpan<byte> packed, int n, int d, Span<int> dots)
    {
        int dq = q.Length;
        if (dq < 1 || dq > d) throw new ArgumentException($"The query has {dq} dims; the table holds {d}.", nameof(q));
        if (packed.Length < PackedBytes(n, d)) throw new ArgumentException($"{n} rows of {d} dims need {PackedBytes(n, d)} packed bytes; got {packed.Length}.", nameof(packed));
        int blocks = (n + BlockRows - 1) / BlockRows;
        if (dots.Length < blocks * BlockRows) throw new ArgumentException($"Outputs must hold {blocks * BlockRows} values (whole blocks).", nameof(dots));
        int quads = PaddedDims(d) / 4, used = PaddedDims(dq) / 4;
        // The query as one int32 per quad (four int8 lanes), zero beyond its length.
        Span<int> qq = stackalloc int[used];
        for (int t = 0; t < used; t++)
        {
            int v = 0;
            for (int u = 0; u < 4; u++)
            {
                int j = 4 * t + u;
                v |= (j < dq ? (byte)q[j] : 0) << (8 * u);
            }
            qq[t] = v;
        }
        if (AvxVnni.IsSupported) DotVnni(qq, packed, blocks, quads, dots);
        else DotScalar(qq, packed, blocks, quads, dots);
    }

    private static void DotVnni(ReadOnlySpan<int> qq, ReadOnlySpan<byte> packed, int blocks, int quads, Span<int> dots)
    {
        ref byte p = ref MemoryMarshal.GetReference(packed);
        ref int o = ref MemoryMarshal.GetReference(dots);
        int used = qq.Length, stride = quads * 32;
        int b = 0;
        // Four blocks at a time: four independent accumulator chains hide vpdpbusd's latency.
        for (; b + 4 <= blocks; b += 4)
        {
            var a0 = Vector256<int>.Zero;
            var a1 = Vector256<int>.Zero;
            var a2 = Vector256<int>.Zero;
            var a3 = Vector256<int>.Zero;
            ref byte p0 = ref Unsafe.Add(ref p, (nint)b * stride);
            for (int t = 0; t < used; t++)
            {
                var w = Vector256.Create(qq[t]).AsSByte();
                nuint at = (nuint)(t * 32);
                a0 = AvxVnni.MultiplyWideningAndAdd(a0, Vector256.LoadUnsafe(ref p0, at), w);
                a1 = AvxVnni.MultiplyWideningAndAdd(a1, Vector256.LoadUnsafe(ref p0, at + (nuint)stride), w);
                a2 = AvxVnni.MultiplyWideningAndAdd(a2, Vector256.LoadUnsafe(ref p0, at + (nuint)(2 * stride)), w);
                a3 = AvxVnni.MultiplyWideningAndAdd(a3, Vector256.LoadUnsafe(ref p0, at + (nuint)(3 * stride)), w);
            }
            a0.StoreUnsafe(ref o, (nuint)(b * BlockRows));
            a1.StoreUnsafe(ref o, (nuint)((b + 1) * BlockRows));
            a2.StoreUnsafe(ref o, (nuint)((b + 2) * BlockRows));
            a3.StoreUnsafe(ref o, (nuint)((b + 3) * BlockRows));
        }
        for (; b < blocks; b++)
        {
            var a = Vector256<int>.Zero;
            ref byte pb = ref Unsafe.Add(ref p, (nint)b * stride);
            for (int t = 0; t < used; t++)
                a = AvxVnni.MultiplyWideningAndAdd(a, Vector256.LoadUnsafe(ref pb, (nuint)(t * 32)), Vector256.Create(qq[t]).AsSByte());
            a.StoreUnsafe(ref o, (nuint)(b * BlockRows));
        }
    }

    /// <summary>Portable reference of the packed dot product (tests, and machines without VNNI).</summary>
    internal static void DotScalar(ReadOnlySpan<int> qq, ReadOnlySpan<byte> packed, int blocks, int quads, Span<int> dots)
    {
        for (int b = 0; b < blocks; b++)
            for (int r = 0; r < BlockRows; r++)
            {
                int s = 0;
                for (int t = 0; t < qq.Length; t++)
                    for (int u = 0; u < 4; u++)
                        s += packed[(b * quads + t) * 32 + r * 4 + u] * (sbyte)(qq[t] >> (8 * u));
                dots[b * BlockRows + r] = s;
            }
    }

    /// <summary>
    /// dots[i] = Σ_{j &lt; q.Length} q[j]·rows[which[i]·stride + j]: an int8 query against uint8 rows gathered by row
    /// number from a row-major table (a rerank stage reading 8-bit copies of its candidates). Exact in int32 for
    /// q.Length below 2^16. Rows ahead are prefetched: candidates are scattered over the table.
    /// </summary>
    public static void DotRows(ReadOnlySpan<sbyte> q, ReadOnlySpan<byte> rows, int stride, ReadOnlySpan<int> which, Span<int> dots)
    {
        int d = q.Length;
        if (d < 1 || d > stride) throw new ArgumentException($"The query has {d} dims; rows hold {stride}.", nameof(q));
        if (dots.Length < which.Length) throw new ArgumentException($"Outputs hold {dots.Length} values; {which.Length} needed.", nameof(dots));
        long rowCount = rows.Length / stride;
        foreach (int r in which)
            if ((uint)r >= rowCount) throw new ArgumentOutOfRangeException(nameof(which), r, $"Row {r} is outside the table's {rowCount} rows.");
        if (AvxVnni.IsSupported && d >= 32) DotRowsVnni(q, rows, stride, which, dots);
        else DotRowsScalar(q, rows, stride, which, dots);
    }

    private static void DotRowsVnni(ReadOnlySpan<sbyte> q, ReadOnlySpan<byte> rows, int stride, ReadOnlySpan<int> which, Span<int> dots)
    {
        // Rows are scattered and each is only a few cache lines: ask for them well ahead so many misses overlap.
        const int Ahead = 12;
        int d = q.Length, whole = d & ~31, lines = Math.Min(16, (d + 63) / 64);
        ref sbyte qr = ref MemoryMarshal.GetReference(q);
        ref byte t = ref MemoryMarshal.GetReference(rows);
        for (int i = 0; i < which.Length; i++)
        {
            if (i + Ahead < which.Length) Prefetch.Lines(rows.Slice(which[i + Ahead] * stride, d), lines);
            ref byte row = ref Unsafe.Add(ref t, (nint)which[i] * stride);
            // Two accumulators: consecutive vpdpbusd on one register would wait on each other.
            var a0 = Vector256<int>.Zero;
            var a1 = Vector256<int>.Zero;
            int j = 0;
            for (; j + 64 <= whole; j += 64)
            {
                a0 = AvxVnni.MultiplyWideningAndAdd(a0, Vector256.LoadUnsafe(ref row, (nuint)j), Vector256.LoadUnsafe(ref qr, (nuint)j));
                a1 = AvxVnni.MultiplyWideningAndAdd(a1, Vector256.LoadUnsafe(ref row, (nuint)(j + 32)), Vector256.LoadUnsafe(ref qr, (nuint)(j + 32)));
            }
            if (j < whole)
                a0 = AvxVnni.MultiplyWideningAndAdd(a0, Vector256.LoadUnsafe(ref row, (nuint)j), Vector256.LoadUnsafe(ref qr, (nuint)j));
            int sum = Vector256.Sum(a0 + a1);
            for (j = whole; j < d; j++) sum += Unsafe.Add(ref row, j) * Unsafe.Add(ref qr, j);
            dots[i] = sum;
        }
    }

    /// <summary>Portable reference of <see cref="DotRows"/> (tests, short queries, and machines without VNNI).</summary>
    internal static void DotRowsScalar(ReadOnlySpan<sbyte> q, ReadOnlySpan<byte> rows, int stride, ReadOnlySpan<int> which, Span<int> dots)
    {
        for (int i = 0; i < which.Length; i++)
        {
            var row = rows.Slice(which[i] * stride, q.Length);
            int sum = 0;
            for (int j = 0; j < q.Length; j++) sum += row[j] * q[j];
            dots[i] = sum;
        }
    }

    /// <summary>
    /// Rounds a float query to int8 with one scale (the largest magnitude maps to ±127) and returns that scale:
    /// Σ q_j·c_j ≈ (Σ qi_j·c_j) / scale. An all-zero query gets scale 1.
    /// </summary>
    public static float Quantize(ReadOnlySpan<float> q, Span<sbyte> qi)
    {
        if (qi.Length < q.Length) throw new ArgumentException($"Output holds {qi.Length} values; {q.Length} needed.", nameof(qi));
        float max = System.Numerics.Tensors.TensorPrimitives.MaxMagnitude(q);
        max = MathF.Abs(max);
        float scale = max > 0 && float.IsFinite(max) ? 127f / max : 1f;
        for (int j = 0; j < q.Length; j++) qi[j] = (sbyte)Math.Clamp(MathF.Round(q[j] * scale), -127f, 127f);
        return scale;
    }
}
