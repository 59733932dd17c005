using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Adanns.Kernels;

/// <summary>
/// Dot products of an int8 query with many uint8 rows (scalar-quantized vectors), for ranking a fixed set such as IVF
/// centroids: with AVX-VNNI one <c>vpdpbusd</c> does 32 multiply-adds into int32 lanes without overflow, so a
/// 2,048 × 128 table takes a few microseconds where float decoding takes tens. Without AVX-VNNI (e.g. Ice Lake, whose
/// AVX-512 VNNI .NET does not expose) the codes are widened to int16 and multiplied pairwise into int32
/// (<c>vpmovzxbw</c> + <c>vpmaddwd</c>, AVX-512BW or AVX2): exact too — never the saturating <c>vpmaddubsw</c>, whose
/// int16 pair sums overflow (255·127·2 &gt; 32,767).
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

    /// <summary>
    /// Whether <see cref="Dot"/> and <see cref="DotRows"/> run on vector instructions here (AVX-VNNI, AVX-512BW or
    /// AVX2; otherwise a scalar loop). A JIT-time constant.
    /// </summary>
    public static bool IsAccelerated => AvxVnni.IsSupported || Avx512BW.IsSupported || Avx2.IsSupported;

    /// <summary>The instructions the kernels run on here: "avx-vnni", "avx512bw", "avx2" or "scalar".</summary>
    public static string Path => AvxVnni.IsSupported ? "avx-vnni" : Avx512BW.IsSupported ? "avx512bw" : Avx2.IsSupported ? "avx2" : "scalar";

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
        else if (Avx512BW.IsSupported || Avx2.IsSupported)
        {
            Span<long> qw = stackalloc long[used];
            WidenQuads(qq, qw);
            if (Avx512BW.IsSupported) Dot512(qw, packed, blocks, quads, dots);
            else Dot256(qw, packed, blocks, quads, dots);
        }
        else DotScalar(qq, packed, blocks, quads, dots);
    }

    /// <summary>Each quad of four int8 query values (one int32) as four int16 (one int64), for <c>vpmaddwd</c>.</summary>
    internal static void WidenQuads(ReadOnlySpan<int> qq, Span<long> qw)
    {
        for (int t = 0; t < qq.Length; t++)
        {
            long v = 0;
            for (int u = 0; u < 4; u++) v |= (long)(ushort)(short)(sbyte)(qq[t] >> (8 * u)) << (16 * u);
            qw[t] = v;
        }
    }

    /// <summary>
    /// AVX-512BW: one block's quad (8 rows × 4 dims = 32 bytes) zero-extended to 32 int16, times the quad's four query
    /// values repeated, pairs summed into 16 int32 (row r in lanes 2r, 2r + 1; at most 2·255·128 each: exact).
    /// </summary>
    internal static void Dot512(ReadOnlySpan<long> qw, ReadOnlySpan<byte> packed, int blocks, int quads, Span<int> dots)
    {
        if (!Avx512BW.IsSupported) throw new PlatformNotSupportedException();
        DotBlocks<Block512, Vector512<short>>(qw, packed, blocks, quads, dots);
    }

    /// <summary>AVX2: as <see cref="Dot512"/> with each quad in two halves (rows 0–3 and 4–7).</summary>
    internal static void Dot256(ReadOnlySpan<long> qw, ReadOnlySpan<byte> packed, int blocks, int quads, Span<int> dots)
    {
        if (!Avx2.IsSupported) throw new PlatformNotSupportedException();
        DotBlocks<Block256, Vector256<short>>(qw, packed, blocks, quads, dots);
    }

    /// <summary>
    /// One block's running sums on a widened path (an operator struct that is its own accumulator: the JIT keeps it in
    /// registers and inlines it per width). <see cref="Broadcast"/> repeats a quad's four int16 query values over a
    /// register once for all blocks of a step; <see cref="Add"/> adds the block's quad at byte <c>at</c> of <c>p</c> times them.
    /// </summary>
    private interface IBlockSums<TSelf, TW> where TSelf : struct, IBlockSums<TSelf, TW>
    {
        static abstract TW Broadcast(long quad);
        void Add(ref byte p, nuint at, TW w);
        /// <summary>The block's eight row sums at <paramref name="rows"/>.</summary>
        void Store(ref int rows);
    }

    /// <summary>
    /// The block loop the widened paths share: four blocks at a time (four independent accumulator chains hide the
    /// multiply-adds' latency), then one at a time.
    /// </summary>
    private static void DotBlocks<TSums, TW>(ReadOnlySpan<long> qw, ReadOnlySpan<byte> packed, int blocks, int quads, Span<int> dots)
        where TSums : struct, IBlockSums<TSums, TW>
    {
        ref byte p = ref MemoryMarshal.GetReference(packed);
        ref int o = ref MemoryMarshal.GetReference(dots);
        ref long w0 = ref MemoryMarshal.GetReference(qw);
        int used = qw.Length, stride = quads * 32;
        int b = 0;
        for (; b + 4 <= blocks; b += 4)
        {
            TSums a0 = default, a1 = default, a2 = default, a3 = default;
            ref byte p0 = ref Unsafe.Add(ref p, (nint)b * stride);
            for (int t = 0; t < used; t++)
            {
                var w = TSums.Broadcast(Unsafe.Add(ref w0, t));
                nuint at = (nuint)(t * 32);
                a0.Add(ref p0, at, w);
                a1.Add(ref p0, at + (nuint)stride, w);
                a2.Add(ref p0, at + (nuint)(2 * stride), w);
                a3.Add(ref p0, at + (nuint)(3 * stride), w);
            }
            a0.Store(ref Unsafe.Add(ref o, b * BlockRows));
            a1.Store(ref Unsafe.Add(ref o, (b + 1) * BlockRows));
            a2.Store(ref Unsafe.Add(ref o, (b + 2) * BlockRows));
            a3.Store(ref Unsafe.Add(ref o, (b + 3) * BlockRows));
        }
        for (; b < blocks; b++)
        {
            TSums a = default;
            ref byte pb = ref Unsafe.Add(ref p, (nint)b * stride);
            for (int t = 0; t < used; t++)
                a.Add(ref pb, (nuint)(t * 32), TSums.Broadcast(Unsafe.Add(ref w0, t)));
            a.Store(ref Unsafe.Add(ref o, b * BlockRows));
        }
    }

    /// <summary>AVX-512BW sums: 16 int32, rows' pairs in lanes 2r and 2r + 1.</summary>
    private struct Block512 : IBlockSums<Block512, Vector512<short>>
    {
        private Vector512<int> _a;
        public static Vector512<short> Broadcast(long quad) => Vector512.Create(quad).AsInt16();
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Add(ref byte p, nuint at, Vector512<short> w) =>
            _a += Avx512BW.MultiplyAddAdjacent(Avx512BW.ConvertToVector512Int16(Vector256.LoadUnsafe(ref p, at)), w);
        /// <summary>Lanes 2r and 2r + 1 summed into lane r (int32 wrap-around is exact: the true sums fit).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public readonly void Store(ref int rows)
        {
            var s = _a + (_a.AsUInt64() >>> 32).AsInt32();                   // lane 2r: a[2r] + a[2r+1]
            Avx512F.ConvertToVector256Int32(s.AsInt64()).StoreUnsafe(ref rows); // vpmovqd: the low half of each int64
        }
    }

    /// <summary>AVX2 sums: rows 0–3's pairs in <c>_lo</c>, rows 4–7's in <c>_hi</c> (each quad's 32 bytes in two halves).</summary>
    private struct Block256 : IBlockSums<Block256, Vector256<short>>
    {
        private Vector256<int> _lo, _hi;
        public static Vector256<short> Broadcast(long quad) => Vector256.Create(quad).AsInt16();
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Add(ref byte p, nuint at, Vector256<short> w)
        {
            _lo += Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(Vector128.LoadUnsafe(ref p, at)), w);
            _hi += Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(Vector128.LoadUnsafe(ref p, at + 16)), w);
        }
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public readonly void Store(ref int rows)
        {
            var h = Avx2.HorizontalAdd(_lo, _hi); // per 128-bit lane: rows 0 1 4 5 | 2 3 6 7
            Avx2.Permute4x64(h.AsInt64(), 0b11_01_10_00).AsInt32().StoreUnsafe(ref rows);
        }
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

    /// <summary>Portable reference of the packed dot product (tests, and machines without AVX2).</summary>
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
        else if (Avx512BW.IsSupported && d >= 16) DotRows512(q, rows, stride, which, dots);
        else if (Avx2.IsSupported && d >= 16) DotRows256(q, rows, stride, which, dots);
        else DotRowsScalar(q, rows, stride, which, dots);
    }

    /// <summary>
    /// AVX-512BW: 32 codes zero-extended and 32 query values sign-extended to int16, <c>vpmaddwd</c> into int32 (pair
    /// sums at most 2·255·128: exact); a 16-dim AVX2 step and a scalar loop for the last &lt; 32 dims.
    /// </summary>
    internal static void DotRows512(ReadOnlySpan<sbyte> q, ReadOnlySpan<byte> rows, int stride, ReadOnlySpan<int> which, Span<int> dots)
    {
        if (!Avx512BW.IsSupported) throw new PlatformNotSupportedException();
        DotRowsWith<Row512>(q, rows, stride, which, dots);
    }

    /// <summary>AVX2: as <see cref="DotRows512"/> 16 dims per <c>vpmaddwd</c>, scalar for the last &lt; 16.</summary>
    internal static void DotRows256(ReadOnlySpan<sbyte> q, ReadOnlySpan<byte> rows, int stride, ReadOnlySpan<int> which, Span<int> dots)
    {
        if (!Avx2.IsSupported) throw new PlatformNotSupportedException();
        DotRowsWith<Row256>(q, rows, stride, which, dots);
    }

    /// <summary>One row's int8 · uint8 dot product over <c>d</c> dims (an operator struct: the JIT inlines it per width).</summary>
    private interface IRowDot
    {
        static abstract int Dot(ref byte row, ref sbyte q, int d);
    }

    /// <summary>
    /// The gather loop the widened paths share: rows are scattered and each is only a few cache lines, so they are
    /// prefetched well ahead and many misses overlap; <typeparamref name="TRow"/> scores each row.
    /// </summary>
    private static void DotRowsWith<TRow>(ReadOnlySpan<sbyte> q, ReadOnlySpan<byte> rows, int stride, ReadOnlySpan<int> which, Span<int> dots)
        where TRow : struct, IRowDot
    {
        const int Ahead = 12;
        int d = q.Length, lines = Math.Min(16, (d + 63) / 64);
        ref sbyte qr = ref MemoryMarshal.GetReference(q);
        ref byte t = ref MemoryMarshal.GetReference(rows);
        for (int i = 0; i < which.Length; i++)
        {
            if (i + Ahead < which.Length) Prefetch.Lines(rows.Slice(which[i + Ahead] * stride, d), lines);
            dots[i] = TRow.Dot(ref Unsafe.Add(ref t, (nint)which[i] * stride), ref qr, d);
        }
    }

    /// <summary>16 dims per AVX2 <c>vpmaddwd</c> step (two accumulators), scalar for the rest.</summary>
    private static int Dot256Tail(ref byte row, ref sbyte qr, int j, int d, Vector256<int> a0, Vector256<int> a1)
    {
        for (; j + 32 <= d; j += 32)
        {
            a0 += Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(Vector128.LoadUnsafe(ref row, (nuint)j)),
                Avx2.ConvertToVector256Int16(Vector128.LoadUnsafe(ref qr, (nuint)j)));
            a1 += Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(Vector128.LoadUnsafe(ref row, (nuint)(j + 16))),
                Avx2.ConvertToVector256Int16(Vector128.LoadUnsafe(ref qr, (nuint)(j + 16))));
        }
        if (j + 16 <= d)
        {
            a0 += Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(Vector128.LoadUnsafe(ref row, (nuint)j)),
                Avx2.ConvertToVector256Int16(Vector128.LoadUnsafe(ref qr, (nuint)j)));
            j += 16;
        }
        int sum = Vector256.Sum(a0 + a1);
        for (; j < d; j++) sum += Unsafe.Add(ref row, j) * Unsafe.Add(ref qr, j);
        return sum;
    }

    private readonly struct Row512 : IRowDot
    {
        public static int Dot(ref byte row, ref sbyte qr, int d)
        {
            var a0 = Vector512<int>.Zero;
            var a1 = Vector512<int>.Zero;
            int j = 0;
            for (; j + 64 <= d; j += 64)
            {
                a0 += Avx512BW.MultiplyAddAdjacent(Avx512BW.ConvertToVector512Int16(Vector256.LoadUnsafe(ref row, (nuint)j)),
                    Avx512BW.ConvertToVector512Int16(Vector256.LoadUnsafe(ref qr, (nuint)j)));
                a1 += Avx512BW.MultiplyAddAdjacent(Avx512BW.ConvertToVector512Int16(Vector256.LoadUnsafe(ref row, (nuint)(j + 32))),
                    Avx512BW.ConvertToVector512Int16(Vector256.LoadUnsafe(ref qr, (nuint)(j + 32))));
            }
            if (j + 32 <= d)
            {
                a0 += Avx512BW.MultiplyAddAdjacent(Avx512BW.ConvertToVector512Int16(Vector256.LoadUnsafe(ref row, (nuint)j)),
                    Avx512BW.ConvertToVector512Int16(Vector256.LoadUnsafe(ref qr, (nuint)j)));
                j += 32;
            }
            var s = a0 + a1;
            // The rest (< 32 dims) through the AVX2 step: at most one 16-dim step, then scalar.
            return Dot256Tail(ref row, ref qr, j, d, s.GetLower() + s.GetUpper(), Vector256<int>.Zero);
        }
    }

    private readonly struct Row256 : IRowDot
    {
        public static int Dot(ref byte row, ref sbyte qr, int d) => Dot256Tail(ref row, ref qr, 0, d, Vector256<int>.Zero, Vector256<int>.Zero);
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

    /// <summary>Portable reference of <see cref="DotRows"/> (tests, short queries, and machines without AVX2).</summary>
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
