using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Adanns.Kernels;

/// <summary>
/// Inner products of one float query with many b-bit codes (RaBitQ and Extended RaBitQ codes), by lookup tables held in
/// registers — PQ "fast scan" with each code bit plane read as 4-bit sub-codes: ⟨u, q⟩ = Σ_i 2^i·Σ_g T_g[nibble_g(plane_i(u))],
/// where T_g[c] = Σ_{t&lt;4} bit_t(c)·q_{4g+t} is the 16-entry table of dims 4g…4g+3.
/// </summary>
/// <remarks>
/// <para>This is the layout faiss's <c>IndexIVFRaBitQFastScan</c> and the RaBitQ library use: one table per query
/// (built once, quantized to 7 bits with one scale), a <c>vpshufb</c> per 64 nibbles. Sums of the entries are exact
/// integers; the only approximation is the table's rounding (each entry off by at most half a step).</para>
/// <para>Entries are at most <see cref="MaxEntry"/> = 127 (not 255): the two lookups of a code byte (its low and high
/// nibble) then add in one byte without overflow, which saves two of the eleven vector operations per 64 code bytes
/// (the scan is bound by those). The rounding error stays far below RaBitQ's own (at 384 dims about 1% of it).</para>
/// <para>Code layout: blocks of <see cref="BlockRows"/> = 32 rows, <c>stride</c> bytes apart (the caller may keep
/// per-row data after a block's planes). A block holds b planes of <see cref="PlaneBytes"/>(d) bytes; in plane i, the
/// 32 bytes at <c>32·p</c> are the 32 rows' bits of dims 8p…8p+7 (bit t = dim 8p+t), as a PQ fast-scan pair of
/// sub-codes (low nibble dims 8p…8p+3, high nibble 8p+4…8p+7). Dims are padded to a multiple of 16 with zero bits.</para>
/// <para>Table layout (<see cref="TableBytes"/>), in the order the scan loads it: for every 16 dims (4 sub-codes s…s+3)
/// 128 bytes — sub-codes s and s+2 (each twice: the low nibbles of pairs 2g and 2g+1), then s+1 and s+3 (the high
/// nibbles).</para>
/// <para>Paths, chosen once: AVX-512BW (64 bytes = two pairs per shuffle), AVX2 (one pair), scalar. Both vector paths
/// share the outer loops and produce 16-bit sums per chunk of at most 1,024 dims, widened into int32 per plane.</para>
/// </remarks>
public static class RaBitQKernels
{
    /// <summary>Rows per block.</summary>
    public const int BlockRows = 32;

    /// <summary>Table entries per 4-dim sub-code.</summary>
    public const int Entries = 16;

    /// <summary>16-dim groups scanned before the 16-bit sums are widened (4·127 per group and row: 64·508 &lt; 2^16).</summary>
    private const int ChunkGroups = 64;

    /// <summary>The largest table entry the vector paths take (<see cref="QuantizeTable"/> writes at most this).</summary>
    public const int MaxEntry = 127;

    /// <summary>4-dim sub-codes over d dims (d padded to a multiple of 16).</summary>
    public static int SubCodes(int d) => 4 * ((d + 15) / 16);

    /// <summary>Bytes of one plane of one block.</summary>
    public static int PlaneBytes(int d) => SubCodes(d) * 16;

    /// <summary>Bytes of the 8-bit table for d dims.</summary>
    public static int TableBytes(int d) => SubCodes(d) * 32;

    /// <summary>Blocks holding n rows.</summary>
    public static int Blocks(int n) => (n + BlockRows - 1) / BlockRows;

    /// <summary>Which vector path <see cref="Scan"/> takes here: "avx512", "avx2" or "scalar".</summary>
    public static string Path => Avx512BW.IsSupported ? "avx512" : Avx2.IsSupported ? "avx2" : "scalar";

    /// <summary>Writes row <paramref name="row"/>'s values (each &lt; 2^bits; d = u.Length) into its block's planes.</summary>
    public static void WriteRow(Span<byte> blocks, int stride, int bits, int row, ReadOnlySpan<byte> u)
    {
        int d = u.Length, pb = PlaneBytes(d);
        if (stride < bits * pb) throw new ArgumentException($"Stride {stride} is below the {bits * pb} plane bytes of a block.", nameof(stride));
        int b = row / BlockRows, r = row % BlockRows;
        var block = blocks.Slice(b * stride, bits * pb);
        for (int i = 0; i < bits; i++)
            for (int p = 0; p < pb / BlockRows; p++)
            {
                int value = 0;
                for (int t = 0; t < 8 && 8 * p + t < d; t++) value |= ((u[8 * p + t] >> i) & 1) << t;
                block[i * pb + p * BlockRows + r] = (byte)value;
            }
    }

    /// <summary>Reads row <paramref name="row"/>'s first u.Length values back from its block's planes.</summary>
    public static void ReadRow(ReadOnlySpan<byte> blocks, int stride, int bits, int row, Span<byte> u)
    {
        int d = u.Length, pb = PlaneBytes(d);
        int b = row / BlockRows, r = row % BlockRows;
        var block = blocks.Slice(b * stride, bits * pb);
        u.Clear();
        for (int i = 0; i < bits; i++)
            for (int j = 0; j < d; j++)
                u[j] |= (byte)(((block[i * pb + (j >> 3) * BlockRows + r] >> (j & 7)) & 1) << i);
    }

    /// <summary>
    /// The float tables of q (<see cref="SubCodes"/>(q.Length) × 16, sub-code-major): entry c of sub-code g is
    /// Σ_{t&lt;4} bit_t(c)·q_{4g+t} (dims past q.Length count as 0).
    /// </summary>
    public static void BuildTable(ReadOnlySpan<float> q, Span<float> lut)
    {
        int d = q.Length, m = SubCodes(d);
        if (lut.Length < m * Entries) throw new ArgumentException($"The table needs {m * Entries} floats.", nameof(lut));
        Span<float> x = stackalloc float[4];
        if (Vector512.IsHardwareAccelerated)
        {
            var b0 = Vector512.Create(0f, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1);
            var b1 = Vector512.Create(0f, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1);
            var b2 = Vector512.Create(0f, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1);
            var b3 = Vector512.Create(0f, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
            ref float l0 = ref MemoryMarshal.GetReference(lut);
            for (int g = 0; g < m; g++)
            {
                for (int t = 0; t < 4; t++) x[t] = 4 * g + t < d ? q[4 * g + t] : 0f;
                (b0 * x[0] + b1 * x[1] + b2 * x[2] + b3 * x[3]).StoreUnsafe(ref l0, (nuint)(g * Entries));
            }
            return;
        }
        for (int g = 0; g < m; g++)
        {
            for (int t = 0; t < 4; t++) x[t] = 4 * g + t < d ? q[4 * g + t] : 0f;
            for (int c = 0; c < Entries; c++)
                lut[g * Entries + c] = ((c & 1) != 0 ? x[0] : 0f) + ((c & 2) != 0 ? x[1] : 0f) + ((c & 4) != 0 ? x[2] : 0f) + ((c & 8) != 0 ? x[3] : 0f);
        }
    }

    /// <summary>
    /// Quantizes the float tables of <see cref="BuildTable"/> (m sub-codes) to the scan table: entry = round((T − min_g)·a)
    /// with one scale a for all sub-codes (the widest spans 0…<see cref="MaxEntry"/>). A sum s over one plane's sub-codes then estimates the
    /// float sum as s/a + bias, bias = Σ_g min_g (each entry off by at most 0.5/a). Returns a.
    /// </summary>
    public static float QuantizeTable(ReadOnlySpan<float> lut, int m, Span<byte> table, out float bias)
    {
        if (m < 4 || m % 4 != 0) throw new ArgumentOutOfRangeException(nameof(m), m, "Sub-codes must be a positive multiple of 4.");
        if (lut.Length < m * Entries) throw new ArgumentException($"The float table needs {m * Entries} floats.", nameof(lut));
        if (table.Length < m * 32) throw new ArgumentException($"The 8-bit table needs {m * 32} bytes.", nameof(table));
        // Entry 0 is 0 and the entries are all subset sums of 4 values: min = Σ negatives, range = Σ |values| = entry 15 − 2·min.
        float range = 0;
        double b = 0;
        for (int g = 0; g < m; g++)
        {
            var row = lut.Slice(g * Entries, Entries);
            float lo = MathF.Min(0, row[1]) + MathF.Min(0, row[2]) + MathF.Min(0, row[4]) + MathF.Min(0, row[8]);
            range = MathF.Max(range, row[15] - 2 * lo);
            b += lo;
        }
        float a = range > 0 && float.IsFinite(range) ? MaxEntry / range : 1f;
        bias = (float)b;
        for (int g = 0; g < m; g++)
        {
            var row = lut.Slice(g * Entries, Entries);
            float lo = MathF.Min(0, row[1]) + MathF.Min(0, row[2]) + MathF.Min(0, row[4]) + MathF.Min(0, row[8]);
            int at = TableOffset(g);
            if (Avx512F.IsSupported)
            {
                var v = Vector512.Min((Vector512.Create(row) - Vector512.Create(lo)) * Vector512.Create(a) + Vector512.Create(0.5f), Vector512.Create((float)MaxEntry));
                var bytes = Avx512F.ConvertToVector128Byte(Vector512.ConvertToInt32(Vector512.Max(v, Vector512<float>.Zero)));
                bytes.CopyTo(table.Slice(at, 16));
                bytes.CopyTo(table.Slice(at + 16, 16));
                continue;
            }
            for (int c = 0; c < Entries; c++)
            {
                byte e = (byte)Math.Clamp((int)MathF.Floor((row[c] - lo) * a + 0.5f), 0, MaxEntry);
                table[at + c] = e;
                table[at + 16 + c] = e;
            }
        }
        return a;
    }

    /// <summary>
    /// Σ_i 2^i·Σ_g table_g[nibble_g(plane_i(u))] for one unpacked row u (d = u.Length values, each &lt; 2^bits), read value
    /// by value: the reference of what <see cref="Scan"/> computes for a row.
    /// </summary>
    public static int RowSum(ReadOnlySpan<byte> u, int bits, ReadOnlySpan<byte> table)
    {
        int d = u.Length, m = SubCodes(d), total = 0;
        if (table.Length < TableBytes(d)) throw new ArgumentException($"The table needs {TableBytes(d)} bytes.", nameof(table));
        for (int i = 0; i < bits; i++)
        {
            int s = 0;
            for (int g = 0; g < m; g++)
            {
                int c = 0;
                for (int t = 0; t < 4; t++)
                    if (4 * g + t < d) c |= ((u[4 * g + t] >> i) & 1) << t;
                s += table[TableOffset(g) + c];
            }
            total += s << i;
        }
        return total;
    }

    /// <summary>Byte offset of sub-code g's (doubled) 16 entries in the 8-bit table.</summary>
    private static int TableOffset(int g) => (g >> 2) * 128 + (g & 1) * 64 + ((g >> 1) & 1) * 32;

    /// <summary>
    /// sums[r] = Σ_i 2^i·Σ_g table_g[nibble_g(plane_i(row r))] for the 32·<paramref name="blocks"/> rows of
    /// <paramref name="codes"/> (b-bit codes over d dims, blocks <paramref name="stride"/> bytes apart). Table entries
    /// must be at most <see cref="MaxEntry"/> (as <see cref="QuantizeTable"/> writes them; larger ones wrap on the
    /// vector paths).
    /// </summary>
    public static void Scan(ReadOnlySpan<byte> codes, int stride, int bits, int d, int blocks, ReadOnlySpan<byte> table, Span<int> sums)
    {
        Check(codes, stride, bits, d, blocks, table, sums);
        if (Avx2.IsSupported) ScanVector(codes, stride, bits, d, blocks, table, sums);
        else ScanScalar(codes, stride, bits, d, blocks, table, sums);
    }

    private static void Check(ReadOnlySpan<byte> codes, int stride, int bits, int d, int blocks, ReadOnlySpan<byte> table, ReadOnlySpan<int> sums)
    {
        if (bits is < 1 or > 8) throw new ArgumentOutOfRangeException(nameof(bits), bits, "Code bits must be in [1, 8].");
        if (d < 1) throw new ArgumentOutOfRangeException(nameof(d), d, "Dims must be positive.");
        int pb = PlaneBytes(d);
        if (stride < bits * pb) throw new ArgumentException($"Stride {stride} is below the {bits * pb} plane bytes of a block.", nameof(stride));
        if (blocks < 0 || (blocks > 0 && codes.Length < (long)(blocks - 1) * stride + bits * pb))
            throw new ArgumentException($"{blocks} blocks need more than the {codes.Length} code bytes given.", nameof(codes));
        if (table.Length < TableBytes(d)) throw new ArgumentException($"The table needs {TableBytes(d)} bytes.", nameof(table));
        if (sums.Length < blocks * BlockRows) throw new ArgumentException($"Sums must hold {blocks * BlockRows} values.", nameof(sums));
    }

    /// <summary>The scalar path (one table lookup per sub-code); public so tests compare the dispatched path with it.</summary>
    public static void ScanScalar(ReadOnlySpan<byte> codes, int stride, int bits, int d, int blocks, ReadOnlySpan<byte> table, Span<int> sums)
    {
        Check(codes, stride, bits, d, blocks, table, sums);
        int m = SubCodes(d), pb = PlaneBytes(d);
        for (int b = 0; b < blocks; b++)
            for (int r = 0; r < BlockRows; r++)
            {
                int total = 0;
                for (int i = 0; i < bits; i++)
                {
                    int s = 0;
                    for (int g = 0; g < m; g++)
                    {
                        byte code = codes[b * stride + i * pb + (g >> 1) * BlockRows + r];
                        s += table[TableOffset(g) + ((g & 1) == 0 ? code & 0x0F : code >> 4)];
                    }
                    total += s << i;
                }
                sums[b * BlockRows + r] = total;
            }
    }

    /// <summary>
    /// The vector paths: per block and plane, 16-bit sums over chunks of at most <see cref="ChunkGroups"/> 16-dim groups
    /// (<see cref="Chunk512"/> or <see cref="Chunk256"/>, the JIT keeps one), widened and weighted into int32.
    /// </summary>
    private static void ScanVector(ReadOnlySpan<byte> codes, int stride, int bits, int d, int blocks, ReadOnlySpan<byte> table, Span<int> sums)
    {
        int groups = SubCodes(d) / 4, pb = PlaneBytes(d);
        ref byte c0 = ref MemoryMarshal.GetReference(codes);
        ref byte t0 = ref MemoryMarshal.GetReference(table);
        Span<ushort> chunk = stackalloc ushort[BlockRows];
        ref ushort ch = ref MemoryMarshal.GetReference(chunk);
        ref int s0 = ref MemoryMarshal.GetReference(sums);
        for (int b = 0; b < blocks; b++)
        {
            ref int dst = ref Unsafe.Add(ref s0, b * BlockRows);
            bool first = true;
            for (int i = 0; i < bits; i++)
            {
                ref byte plane = ref Unsafe.Add(ref c0, (nint)b * stride + i * pb);
                for (int g0 = 0; g0 < groups; g0 += ChunkGroups)
                {
                    int g1 = Math.Min(groups, g0 + ChunkGroups);
                    if (Avx512BW.IsSupported) Chunk512(ref plane, ref t0, g0, g1, ref ch);
                    else Chunk256(ref plane, ref t0, g0, g1, ref ch);
                    // Widen the 32 sums, weight by 2^i, add (or store on the first chunk of the first plane).
                    for (int h = 0; h < BlockRows; h += 16)
                    {
                        var v = Vector256.LoadUnsafe(ref ch, (nuint)h);
                        var w0 = Vector256.WidenLower(v).AsInt32() << i;
                        var w1 = Vector256.WidenUpper(v).AsInt32() << i;
                        if (!first)
                        {
                            w0 += Vector256.LoadUnsafe(ref dst, (nuint)h);
                            w1 += Vector256.LoadUnsafe(ref dst, (nuint)h + 8);
                        }
                        w0.StoreUnsafe(ref dst, (nuint)h);
                        w1.StoreUnsafe(ref dst, (nuint)h + 8);
                    }
                    first = false;
                }
            }
        }
    }

    /// <summary>Row sums (in row order) of 16-dim groups [g0, g1) of one block's plane: two pairs per 512-bit shuffle.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Chunk512(ref byte plane, ref byte table, int g0, int g1, ref ushort dst)
    {
        var nibble = Vector512.Create((byte)0x0F);
        // In 16-bit lanes the low byte is an even row and the high byte the next odd row. Whole lanes are summed (even
        // + 256·odd, modulo 2^16) beside the odd bytes alone; the even sums are the difference (faiss's trick: no masks).
        var accAll = Vector512<ushort>.Zero;
        var accO = Vector512<ushort>.Zero;
        for (int g = g0; g < g1; g++)
        {
            var v = Vector512.LoadUnsafe(ref plane, (nuint)(g * 64));
            var lo = v & nibble;
            var hi = Vector512.ShiftRightLogical(v.AsUInt16(), 4).AsByte() & nibble;
            // Entries ≤ 127: a byte's two lookups add without overflow, and one 16-bit add / shift takes both.
            var r = (Avx512BW.Shuffle(Vector512.LoadUnsafe(ref table, (nuint)(g * 128)), lo)
                + Avx512BW.Shuffle(Vector512.LoadUnsafe(ref table, (nuint)(g * 128 + 64)), hi)).AsUInt16();
            accAll += r;
            accO += Vector512.ShiftRightLogical(r, 8);
        }
        var accE = accAll - Vector512.ShiftLeft(accO, 8);
        // Lane j of e is row 2j, lane j of o row 2j + 1: interleave into row order.
        var e = accE.GetLower() + accE.GetUpper();
        var o = accO.GetLower() + accO.GetUpper();
        var interleave = Vector512.Create((ushort)0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23,
            8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
        Avx512BW.PermuteVar32x16(Vector512.Create(e, o), interleave).StoreUnsafe(ref dst);
    }

    /// <summary>The same as <see cref="Chunk512"/> one pair (256 bits) at a time.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Chunk256(ref byte plane, ref byte table, int g0, int g1, ref ushort dst)
    {
        var nibble = Vector256.Create((byte)0x0F);
        var all = Vector256<ushort>.Zero;
        var o = Vector256<ushort>.Zero;
        for (int p = 2 * g0; p < 2 * g1; p++)
        {
            var v = Vector256.LoadUnsafe(ref plane, (nuint)(p * 32));
            var lo = v & nibble;
            var hi = Vector256.ShiftRightLogical(v.AsUInt16(), 4).AsByte() & nibble;
            nuint at = (nuint)((p >> 1) * 128 + (p & 1) * 32);
            var r = (Avx2.Shuffle(Vector256.LoadUnsafe(ref table, at), lo) + Avx2.Shuffle(Vector256.LoadUnsafe(ref table, at + 64), hi)).AsUInt16();
            all += r;
            o += Vector256.ShiftRightLogical(r, 8);
        }
        var e = all - Vector256.ShiftLeft(o, 8);
        // unpack interleaves within 128-bit lanes: (E0 O0 … E3 O3 | E8 O8 … E11 O11) and (E4 … O7 | E12 … O15).
        var lo16 = Avx2.UnpackLow(e, o);
        var hi16 = Avx2.UnpackHigh(e, o);
        Avx2.Permute2x128(lo16, hi16, 0x20).StoreUnsafe(ref dst);
        Avx2.Permute2x128(lo16, hi16, 0x31).StoreUnsafe(ref dst, 16);
    }
}
