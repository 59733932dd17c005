using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Adanns.Kernels;

/// <summary>
/// 4-bit product-quantization "fast scan": codes of 16 centroids per sub-quantizer, scanned 32 vectors at a time with
/// the lookup table held in registers (a byte shuffle per 64 code nibbles) instead of one memory load per lookup.
/// </summary>
/// <remarks>
/// <para>The idea is André et al.'s (PQ fast scan, VLDB 2015) as FAISS ships it in <c>IndexPQFastScan</c>: a 16-entry
/// table of 8-bit values fits one 128-bit register lane, so <c>vpshufb</c> performs 16 (SSE) to 64 (AVX-512) lookups
/// in one instruction. The price is precision: the float table is quantized to 8 bits (one scale shared by all
/// sub-quantizers, one offset each) and sums are accumulated in 16 bits, so distances come out approximate — these
/// codes shortlist, a rerank with real vectors decides.</para>
/// <para>Layouts (m sub-quantizers, m even, m ≤ 256):</para>
/// <list type="bullet">
/// <item><b>packed codes</b>: blocks of <see cref="BlockRows"/> = 32 vectors, <see cref="BlockBytes"/> = 16·m bytes
/// each. In block b, sub-quantizer pair p occupies 32 bytes at <c>b·16m + 32p</c>; byte i holds vector
/// <c>32b + i</c>'s codes for sub-quantizers 2p (low nibble) and 2p+1 (high nibble). A block's bytes are
/// contiguous, so a list scan streams memory; unused rows of a last partial block are zero.</item>
/// <item><b>8-bit table</b> (<see cref="TableBytes"/> = 32·m bytes), in the order the scan loads it: first, for each
/// pair p, 32 bytes = sub-quantizer 2p's 16 entries twice (the low-nibble tables); then, for each pair, sub-quantizer
/// 2p+1's entries twice (the high-nibble tables). The repetition matches vpshufb's per-128-bit-lane lookup.</item>
/// </list>
/// </remarks>
public static class FastScanKernels
{
    /// <summary>Centroids per sub-quantizer (4-bit codes).</summary>
    public const int Ksub = 16;

    /// <summary>Vectors per packed block.</summary>
    public const int BlockRows = 32;

    /// <summary>Largest sub-quantizer count: m · 255 must fit the 16-bit sums.</summary>
    public const int MaxM = 256;

    /// <summary>Bytes of one packed block of 32 codes with m sub-quantizers.</summary>
    public static int BlockBytes(int m) => m * 16;

    /// <summary>Blocks needed for <paramref name="rows"/> codes.</summary>
    public static int Blocks(int rows) => (rows + BlockRows - 1) / BlockRows;

    /// <summary>Bytes of the 8-bit table for m sub-quantizers.</summary>
    public static int TableBytes(int m) => m * 32;

    /// <summary>Throws unless m is a valid sub-quantizer count for fast scan (even, 2..256).</summary>
    public static void CheckM(int m)
    {
        if (m < 2 || m > MaxM || (m & 1) != 0)
            throw new ArgumentOutOfRangeException(nameof(m), m, $"4-bit fast scan needs an even number of sub-quantizers in [2, {MaxM}] (got {m}).");
    }

    /// <summary>Stores vector <paramref name="row"/>'s code (m values, each &lt; 16) into the packed blocks.</summary>
    public static void WriteCode(Span<byte> packed, int m, int row, ReadOnlySpan<byte> code)
    {
        CheckM(m);
        if (code.Length < m) throw new ArgumentException($"Code has {code.Length} values; {m} needed.", nameof(code));
        long baseOffset = (long)(row / BlockRows) * BlockBytes(m) + row % BlockRows;
        if (row < 0 || baseOffset + (m / 2 - 1) * 32L >= packed.Length)
            throw new ArgumentOutOfRangeException(nameof(row), row, "Row lies outside the packed blocks.");
        for (int p = 0; p < m / 2; p++)
        {
            int lo = code[2 * p], hi = code[2 * p + 1];
            if ((lo | hi) > 15) throw new ArgumentException($"Code values must be < 16 (sub-quantizer {2 * p}: {lo}, {2 * p + 1}: {hi}).", nameof(code));
            packed[(int)(baseOffset + p * 32L)] = (byte)(lo | (hi << 4));
        }
    }

    /// <summary>Reads vector <paramref name="row"/>'s code (m values) back from the packed blocks.</summary>
    public static void ReadCode(ReadOnlySpan<byte> packed, int m, int row, Span<byte> code)
    {
        CheckM(m);
        if (code.Length < m) throw new ArgumentException($"Code buffer holds {code.Length} values; {m} needed.", nameof(code));
        long baseOffset = (long)(row / BlockRows) * BlockBytes(m) + row % BlockRows;
        if (row < 0 || baseOffset + (m / 2 - 1) * 32L >= packed.Length)
            throw new ArgumentOutOfRangeException(nameof(row), row, "Row lies outside the packed blocks.");
        for (int p = 0; p < m / 2; p++)
        {
            byte b = packed[(int)(baseOffset + p * 32L)];
            code[2 * p] = (byte)(b & 0x0F);
            code[2 * p + 1] = (byte)(b >> 4);
        }
    }

    /// <summary>
    /// Quantizes a float table (m × 16, smaller = better or any additive score) to the 8-bit scan table. Returns the
    /// scale a; with <paramref name="bias"/> = Σ_j min_j, a sum s of 8-bit entries estimates the float sum as
    /// <c>s / a + bias</c> (each entry is off by at most 0.5/a).
    /// </summary>
    public static float QuantizeTable(ReadOnlySpan<float> lut, int m, Span<byte> table, out float bias)
    {
        CheckM(m);
        if (lut.Length < m * Ksub) throw new ArgumentException($"Table holds {lut.Length} floats; {m * Ksub} needed.", nameof(lut));
        if (table.Length < TableBytes(m)) throw new ArgumentException($"8-bit table holds {table.Length} bytes; {TableBytes(m)} needed.", nameof(table));
        // One scale for all sub-quantizers (sums must share units), chosen so the widest row spans 0..255.
        Span<float> mins = stackalloc float[m];
        float range = 0;
        double b = 0;
        for (int j = 0; j < m; j++)
        {
            var row = lut.Slice(j * Ksub, Ksub);
            float lo, hi;
            if (Vector512.IsHardwareAccelerated)
            {
                // A row is one 512-bit register: min and max by halving it four times.
                var v = Vector512.Create(row);
                var lo256 = Vector256.Min(v.GetLower(), v.GetUpper());
                var hi256 = Vector256.Max(v.GetLower(), v.GetUpper());
                var lo128 = Vector128.Min(lo256.GetLower(), lo256.GetUpper());
                var hi128 = Vector128.Max(hi256.GetLower(), hi256.GetUpper());
                lo = MathF.Min(MathF.Min(lo128[0], lo128[1]), MathF.Min(lo128[2], lo128[3]));
                hi = MathF.Max(MathF.Max(hi128[0], hi128[1]), MathF.Max(hi128[2], hi128[3]));
            }
            else
            {
                lo = row[0];
                hi = row[0];
                for (int c = 1; c < Ksub; c++)
                {
                    lo = MathF.Min(lo, row[c]);
                    hi = MathF.Max(hi, row[c]);
                }
            }
            mins[j] = lo;
            range = MathF.Max(range, hi - lo);
            b += lo;
        }
        float a = range > 0 && float.IsFinite(range) ? 255f / range : 1f;
        bias = (float)b;
        int half = m / 2 * 32;
        for (int j = 0; j < m; j++)
        {
            var row = lut.Slice(j * Ksub, Ksub);
            // Sub-quantizer 2p goes to the low-nibble half, 2p+1 to the high-nibble half; each row is stored twice.
            int at = (j & 1) * half + (j >> 1) * 32;
            if (Avx512F.IsSupported)
            {
                // (t − min)·a rounded, clamped to 255, narrowed 16 × int32 → 16 bytes in one instruction.
                var v = Vector512.Min((Vector512.Create(row) - Vector512.Create(mins[j])) * Vector512.Create(a) + Vector512.Create(0.5f), Vector512.Create(255f));
                var bytes = Avx512F.ConvertToVector128Byte(Vector512.ConvertToInt32(Vector512.Max(v, Vector512<float>.Zero)));
                bytes.CopyTo(table.Slice(at, 16));
                bytes.CopyTo(table.Slice(at + 16, 16));
                continue;
            }
            for (int c = 0; c < Ksub; c++)
            {
                byte q = (byte)Math.Clamp(MathF.Floor((row[c] - mins[j]) * a + 0.5f), 0f, 255f);
                table[at + c] = q;
                table[at + 16 + c] = q;
            }
        }
        return a;
    }

    /// <summary>
    /// 16-bit sums of 8-bit table entries for <paramref name="blocks"/> packed blocks: sums[i] for vector i of the
    /// scanned blocks (blocks × 32 values, in vector order; rows past the list's end hold the sums of zero codes).
    /// </summary>
    public static void Scan(ReadOnlySpan<byte> packed, int m, int blocks, ReadOnlySpan<byte> table, Span<ushort> sums)
    {
        CheckM(m);
        if (blocks < 0) throw new ArgumentOutOfRangeException(nameof(blocks), blocks, "Block count must be non-negative.");
        if (packed.Length < (long)blocks * BlockBytes(m))
            throw new ArgumentException($"{blocks} blocks of PQ{m}x4 need {(long)blocks * BlockBytes(m)} bytes; got {packed.Length}.", nameof(packed));
        if (table.Length < TableBytes(m)) throw new ArgumentException($"8-bit table holds {table.Length} bytes; {TableBytes(m)} needed.", nameof(table));
        if (sums.Length < (long)blocks * BlockRows) throw new ArgumentException($"Sums hold {sums.Length} values; {(long)blocks * BlockRows} needed.", nameof(sums));
        if (Avx512BW.IsSupported) Scan512(packed, m, blocks, table, sums);
        else if (Avx2.IsSupported) Scan256(packed, m, blocks, table, sums);
        else ScanScalar(packed, m, blocks, table, sums);
    }

    /// <summary>Scalar reference of <see cref="Scan"/> (tests, and machines without AVX2).</summary>
    public static void ScanScalar(ReadOnlySpan<byte> packed, int m, int blocks, ReadOnlySpan<byte> table, Span<ushort> sums)
    {
        int bb = BlockBytes(m), half = m / 2 * 32;
        for (int b = 0; b < blocks; b++)
        {
            for (int i = 0; i < BlockRows; i++)
            {
                int s = 0;
                for (int p = 0; p < m / 2; p++)
                {
                    byte code = packed[b * bb + p * 32 + i];
                    s += table[p * 32 + (code & 0x0F)] + table[half + p * 32 + (code >> 4)];
                }
                sums[b * BlockRows + i] = (ushort)s;
            }
        }
    }

    private static void Scan512(ReadOnlySpan<byte> packed, int m, int blocks, ReadOnlySpan<byte> table, Span<ushort> sums)
    {
        ref byte codes = ref MemoryMarshal.GetReference(packed);
        ref byte lut = ref MemoryMarshal.GetReference(table);
        ref ushort outRef = ref MemoryMarshal.GetReference(sums);
        int bb = BlockBytes(m), half = m / 2 * 32, groups = m / 4;
        bool tail = (m & 2) != 0;
        var nibble = Vector512.Create((byte)0x0F);
        var lowByte = Vector512.Create((ushort)0x00FF);
        // Row order from the two half-sums: lane j of E is row 2j, lane j of O is row 2j + 1.
        var interleave = Vector512.Create((ushort)0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23,
            8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
        for (int b = 0; b < blocks; b++)
        {
            ref byte blk = ref Unsafe.Add(ref codes, (nint)b * bb);
            // A 64-byte load is two sub-quantizer pairs for 32 vectors. In 16-bit lanes, the low byte is an even
            // vector and the high byte the next odd one, so masking / shifting splits them with no overflow.
            var accE = Vector512<ushort>.Zero;
            var accO = Vector512<ushort>.Zero;
            for (int g = 0; g < groups; g++)
            {
                var v = Vector512.LoadUnsafe(ref blk, (nuint)(g * 64));
                var lo = v & nibble;
                var hi = Vector512.ShiftRightLogical(v.AsUInt16(), 4).AsByte() & nibble;
                var rl = Avx512BW.Shuffle(Vector512.LoadUnsafe(ref lut, (nuint)(g * 64)), lo).AsUInt16();
                var rh = Avx512BW.Shuffle(Vector512.LoadUnsafe(ref lut, (nuint)(half + g * 64)), hi).AsUInt16();
                accE += (rl & lowByte) + (rh & lowByte);
                accO += Vector512.ShiftRightLogical(rl, 8) + Vector512.ShiftRightLogical(rh, 8);
            }
            var e = accE.GetLower() + accE.GetUpper();
            var o = accO.GetLower() + accO.GetUpper();
            if (tail)
            {
                int p = m / 2 - 1;
                var v = Vector256.LoadUnsafe(ref blk, (nuint)(p * 32));
                var lo = v & Vector256.Create((byte)0x0F);
                var hi = Vector256.ShiftRightLogical(v.AsUInt16(), 4).AsByte() & Vector256.Create((byte)0x0F);
                var rl = Avx2.Shuffle(Vector256.LoadUnsafe(ref lut, (nuint)(p * 32)), lo).AsUInt16();
                var rh = Avx2.Shuffle(Vector256.LoadUnsafe(ref lut, (nuint)(half + p * 32)), hi).AsUInt16();
                var mask = Vector256.Create((ushort)0x00FF);
                e += (rl & mask) + (rh & mask);
                o += Vector256.ShiftRightLogical(rl, 8) + Vector256.ShiftRightLogical(rh, 8);
            }
            Avx512BW.PermuteVar32x16(Vector512.Create(e, o), interleave).StoreUnsafe(ref outRef, (nuint)b * BlockRows);
        }
    }

    private static void Scan256(ReadOnlySpan<byte> packed, int m, int blocks, ReadOnlySpan<byte> table, Span<ushort> sums)
    {
        ref byte codes = ref MemoryMarshal.GetReference(packed);
        ref byte lut = ref MemoryMarshal.GetReference(table);
        ref ushort outRef = ref MemoryMarshal.GetReference(sums);
        int bb = BlockBytes(m), half = m / 2 * 32, pairs = m / 2;
        var nibble = Vector256.Create((byte)0x0F);
        var lowByte = Vector256.Create((ushort)0x00FF);
        for (int b = 0; b < blocks; b++)
        {
            ref byte blk = ref Unsafe.Add(ref codes, (nint)b * bb);
            var e = Vector256<ushort>.Zero;
            var o = Vector256<ushort>.Zero;
            for (int p = 0; p < pairs; p++)
            {
                var v = Vector256.LoadUnsafe(ref blk, (nuint)(p * 32));
                var lo = v & nibble;
                var hi = Vector256.ShiftRightLogical(v.AsUInt16(), 4).AsByte() & nibble;
                var rl = Avx2.Shuffle(Vector256.LoadUnsafe(ref lut, (nuint)(p * 32)), lo).AsUInt16();
                var rh = Avx2.Shuffle(Vector256.LoadUnsafe(ref lut, (nuint)(half + p * 32)), hi).AsUInt16();
                e += (rl & lowByte) + (rh & lowByte);
                o += Vector256.ShiftRightLogical(rl, 8) + Vector256.ShiftRightLogical(rh, 8);
            }
            // unpack interleaves within 128-bit lanes: (E0 O0 … E3 O3 | E8 O8 … E11 O11) and (E4 … O7 | E12 … O15).
            var lo16 = Avx2.UnpackLow(e, o);
            var hi16 = Avx2.UnpackHigh(e, o);
            Avx2.Permute2x128(lo16, hi16, 0x20).StoreUnsafe(ref outRef, (nuint)b * BlockRows);
            Avx2.Permute2x128(lo16, hi16, 0x31).StoreUnsafe(ref outRef, (nuint)b * BlockRows + 16);
        }
    }

    /// <summary>
    /// A limit that about 1.25k + a few of <paramref name="sums"/> are at or under, read off a sample of 256 of them:
    /// for choosing the k smallest of many sums with one vectorised pass (<see cref="MaskAtMost"/>) and one selection
    /// over what passes. An estimate — a caller that collects fewer than k must collect again with
    /// <see cref="ushort.MaxValue"/>, which is also what this returns when the sums are too few (under 1,024) or k
    /// too large (over a quarter of them) for a sample to help.
    /// </summary>
    public static ushort EstimateLimit(ReadOnlySpan<ushort> sums, int k)
    {
        const int Sample = 256;
        if (k < 1) throw new ArgumentOutOfRangeException(nameof(k), k, "k must be at least 1.");
        if (sums.Length < 4 * Sample || 4L * k > sums.Length) return ushort.MaxValue;
        Span<ulong> sample = stackalloc ulong[Sample];
        int stride = sums.Length / Sample;
        for (int i = 0; i < Sample; i++) sample[i] = ((ulong)sums[i * stride] << 32) | (uint)i;
        return (ushort)(TopKReservoir.SampledBound(sample, k, sums.Length) >> 32);
    }

    /// <summary>
    /// Bit i set when <paramref name="sums"/>[i] ≤ <paramref name="threshold"/>, for the first 32 sums (one block):
    /// lets a scan skip whole blocks that hold no candidate for the shortlist.
    /// </summary>
    public static uint MaskAtMost(ReadOnlySpan<ushort> sums, ushort threshold)
    {
        if (sums.Length < BlockRows) throw new ArgumentException($"A block has {BlockRows} sums; got {sums.Length}.", nameof(sums));
        if (Vector512.IsHardwareAccelerated)
        {
            var v = Vector512.Create(sums);
            return (uint)Vector512.LessThanOrEqual(v, Vector512.Create(threshold)).ExtractMostSignificantBits();
        }
        if (Vector256.IsHardwareAccelerated)
        {
            var t = Vector256.Create(threshold);
            uint lo = Vector256.LessThanOrEqual(Vector256.Create(sums), t).ExtractMostSignificantBits();
            uint hi = Vector256.LessThanOrEqual(Vector256.Create(sums[16..]), t).ExtractMostSignificantBits();
            return lo | (hi << 16);
        }
        uint mask = 0;
        for (int i = 0; i < BlockRows; i++)
            if (sums[i] <= threshold) mask |= 1u << i;
        return mask;
    }
}
