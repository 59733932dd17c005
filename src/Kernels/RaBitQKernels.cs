using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Adanns.Kernels;

/// <summary>
/// Integer inner products of a few-bit quantized query with many few-bit codes stored as bit planes (RaBitQ and
/// Extended RaBitQ codes): Σ_j u_j·q_j = Σ_{i,k} 2^{i+k}·popcount(plane_i(u) ∧ plane_k(q)), exact in int32.
/// </summary>
/// <remarks>
/// <para>Layout: codes of b bits over d dims are W = ⌈d/64⌉ 64-bit words per plane; rows go in blocks of
/// <see cref="BlockRows"/> = 8, and within a block plane i, word w holds the 8 rows' words side by side
/// (<c>block + ((i·W + w)·8 + r)</c> ulongs), so one 512-bit load reads one word of 8 rows. A block may be followed by
/// caller data (per-row factors): blocks are <c>stride</c> ulongs apart, stride ≥ b·W·8. Bits past d are zero.</para>
/// <para>Query: k-bit unsigned values, as k planes of W words (<see cref="QueryPlanes"/>), zero past d.</para>
/// <para>Paths, chosen once: AVX-512BW (byte-shuffle popcount of 8 rows at a time, query planes summed per byte with
/// their weights before one <c>vpsadbw</c>), AVX2 (the same on two 256-bit halves), and a scalar loop on the hardware
/// popcount. .NET exposes no VPOPCNTQ intrinsic, so the shuffle popcount serves both vector paths.</para>
/// </remarks>
public static class RaBitQKernels
{
    /// <summary>Rows per block (64-bit lanes of a 512-bit register).</summary>
    public const int BlockRows = 8;

    /// <summary>64-bit words per plane for d dims.</summary>
    public static int Words(int d) => (d + 63) >> 6;

    /// <summary>Ulongs of the code planes of one block (b planes × W words × 8 rows).</summary>
    public static int PlaneUlongs(int bits, int words) => bits * words * BlockRows;

    /// <summary>Blocks holding n rows.</summary>
    public static int Blocks(int n) => (n + BlockRows - 1) / BlockRows;

    /// <summary>Which vector path <see cref="Scan"/> takes here: "avx512", "avx2" or "scalar".</summary>
    public static string Path => Avx512BW.IsSupported ? "avx512" : Avx2.IsSupported ? "avx2" : "scalar";

    /// <summary>Writes row <paramref name="row"/>'s values (each &lt; 2^bits; d = u.Length) into its block's planes.</summary>
    public static void WriteRow(Span<ulong> blocks, int stride, int bits, int words, int row, ReadOnlySpan<byte> u)
    {
        if (u.Length > words * 64) throw new ArgumentException($"{u.Length} values do not fit {words} words.", nameof(u));
        int b = row / BlockRows, r = row % BlockRows;
        var block = blocks.Slice(b * stride, PlaneUlongs(bits, words));
        for (int i = 0; i < bits; i++)
            for (int w = 0; w < words; w++)
            {
                ulong word = 0;
                int j0 = w * 64, j1 = Math.Min(u.Length, j0 + 64);
                for (int j = j0; j < j1; j++) word |= (ulong)((u[j] >> i) & 1) << (j - j0);
                block[(i * words + w) * BlockRows + r] = word;
            }
    }

    /// <summary>Reads row <paramref name="row"/>'s first u.Length values back from its block's planes.</summary>
    public static void ReadRow(ReadOnlySpan<ulong> blocks, int stride, int bits, int words, int row, Span<byte> u)
    {
        int b = row / BlockRows, r = row % BlockRows;
        var block = blocks.Slice(b * stride, PlaneUlongs(bits, words));
        u.Clear();
        for (int i = 0; i < bits; i++)
            for (int j = 0; j < u.Length; j++)
                u[j] |= (byte)(((block[(i * words + (j >> 6)) * BlockRows + r] >> (j & 63)) & 1) << i);
    }

    /// <summary>
    /// Rounds q to k-bit unsigned levels: q_j ≈ lo + Δ·levels_j with lo = min q, Δ = (max q − lo)/(2^k − 1) (1 when all
    /// values are equal); returns Δ.
    /// </summary>
    public static float QuantizeQuery(ReadOnlySpan<float> q, int bits, Span<byte> levels, out float lo)
    {
        if (bits is < 1 or > 8) throw new ArgumentOutOfRangeException(nameof(bits), bits, "Query bits must be in [1, 8].");
        if (levels.Length < q.Length) throw new ArgumentException($"Levels must hold {q.Length} values.", nameof(levels));
        float min = System.Numerics.Tensors.TensorPrimitives.Min(q), max = System.Numerics.Tensors.TensorPrimitives.Max(q);
        int top = (1 << bits) - 1;
        float delta = max > min ? (max - min) / top : 1f;
        float inv = 1f / delta;
        for (int j = 0; j < q.Length; j++)
        {
            int v = (int)MathF.Round((q[j] - min) * inv);
            levels[j] = (byte)Math.Clamp(v, 0, top);
        }
        lo = min;
        return delta;
    }

    /// <summary>The k planes of query levels (k·W words, plane-major), zero past levels.Length.</summary>
    public static void QueryPlanes(ReadOnlySpan<byte> levels, int bits, int words, Span<ulong> planes)
    {
        if (planes.Length < bits * words) throw new ArgumentException($"Planes must hold {bits * words} words.", nameof(planes));
        planes[..(bits * words)].Clear();
        for (int j = 0; j < levels.Length; j++)
        {
            uint v = levels[j];
            ulong bit = 1UL << (j & 63);
            int w = j >> 6;
            while (v != 0)
            {
                int k = BitOperations.TrailingZeroCount(v);
                v &= v - 1;
                planes[k * words + w] |= bit;
            }
        }
    }

    /// <summary>
    /// <see cref="QuantizeQuery"/> then <see cref="QueryPlanes"/> in one vectorised pass (per probed list, so it must be
    /// cheap): levels are rounded with <paramref name="scaled"/> as scratch (q.Length floats, may be overwritten), and
    /// each plane word is the top bits of 64 shifted level bytes. Same results as the two scalar steps.
    /// </summary>
    public static float QuantizeToPlanes(ReadOnlySpan<float> q, int bits, int words, Span<float> scaled, Span<byte> levels, Span<ulong> planes, out float lo)
    {
        int d = q.Length;
        if (bits is < 1 or > 8) throw new ArgumentOutOfRangeException(nameof(bits), bits, "Query bits must be in [1, 8].");
        if (words * 64 < d || levels.Length < words * 64 || scaled.Length < d || planes.Length < bits * words)
            throw new ArgumentException($"{d} dims need {words} ≥ ⌈d/64⌉ words, {words * 64} level bytes, {d} scratch floats and {bits * words} plane words.");
        float min = System.Numerics.Tensors.TensorPrimitives.Min(q), max = System.Numerics.Tensors.TensorPrimitives.Max(q);
        int top = (1 << bits) - 1;
        float delta = max > min ? (max - min) / top : 1f;
        var x = scaled[..d];
        System.Numerics.Tensors.TensorPrimitives.Subtract(q, min, x);
        System.Numerics.Tensors.TensorPrimitives.Multiply(x, 1f / delta, x);
        System.Numerics.Tensors.TensorPrimitives.Min(x, top, x); // (q − min)/Δ ∈ [0, top] up to rounding
        int at = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            // Round half to even, as MathF.Round (Vector256.Round), then convert the whole numbers.
            ref float x0 = ref MemoryMarshal.GetReference(x);
            for (; at + 8 <= d; at += 8)
            {
                var r = Vector256.ConvertToInt32(Vector256.Round(Vector256.LoadUnsafe(ref x0, (nuint)at)));
                for (int t = 0; t < 8; t++) levels[at + t] = (byte)r.GetElement(t);
            }
        }
        for (int j = at; j < d; j++) levels[j] = (byte)(int)MathF.Round(x[j]);
        levels[d..(words * 64)].Clear();
        if (Vector512.IsHardwareAccelerated)
        {
            ref byte l0 = ref MemoryMarshal.GetReference(levels);
            for (int w = 0; w < words; w++)
            {
                var v = Vector512.LoadUnsafe(ref l0, (nuint)(w * 64));
                for (int k = 0; k < bits; k++)
                    planes[k * words + w] = Vector512.ShiftLeft(v, 7 - k).ExtractMostSignificantBits();
            }
        }
        else
        {
            QueryPlanes(levels[..d], bits, words, planes);
        }
        lo = min;
        return delta;
    }

    /// <summary>
    /// sums[r] = Σ_j u_rj·q_j for the 8·<paramref name="blocks"/> rows of <paramref name="codes"/> (b-bit codes,
    /// W words per plane, blocks <paramref name="stride"/> ulongs apart) and a k-bit query in planes.
    /// </summary>
    public static void Scan(ReadOnlySpan<ulong> codes, int stride, int bits, int words, int blocks, ReadOnlySpan<ulong> queryPlanes, int queryBits,
        Span<int> sums)
    {
        Check(codes, stride, bits, words, blocks, queryPlanes, queryBits, sums);
        if (Avx512BW.IsSupported) ScanAvx512(codes, stride, bits, words, blocks, queryPlanes, queryBits, sums);
        else if (Avx2.IsSupported) ScanAvx2(codes, stride, bits, words, blocks, queryPlanes, queryBits, sums);
        else ScanScalar(codes, stride, bits, words, blocks, queryPlanes, queryBits, sums);
    }

    private static void Check(ReadOnlySpan<ulong> codes, int stride, int bits, int words, int blocks, ReadOnlySpan<ulong> queryPlanes, int queryBits,
        ReadOnlySpan<int> sums)
    {
        if (bits is < 1 or > 8 || queryBits is < 1 or > 8) throw new ArgumentOutOfRangeException(nameof(bits), $"Code and query bits must be in [1, 8] (got {bits}, {queryBits}).");
        if (words < 1 || stride < PlaneUlongs(bits, words)) throw new ArgumentException($"Stride {stride} is below the {PlaneUlongs(bits, words)} plane words of a block.", nameof(stride));
        if (blocks < 0 || (blocks > 0 && codes.Length < (long)(blocks - 1) * stride + PlaneUlongs(bits, words)))
            throw new ArgumentException($"{blocks} blocks need more than the {codes.Length} code words given.", nameof(codes));
        if (queryPlanes.Length < queryBits * words) throw new ArgumentException($"The query needs {queryBits * words} plane words.", nameof(queryPlanes));
        if (sums.Length < blocks * BlockRows) throw new ArgumentException($"Sums must hold {blocks * BlockRows} values.", nameof(sums));
    }

    /// <summary>The scalar path (hardware popcount per word); public so tests compare the dispatched path with it.</summary>
    public static void ScanScalar(ReadOnlySpan<ulong> codes, int stride, int bits, int words, int blocks, ReadOnlySpan<ulong> queryPlanes, int queryBits,
        Span<int> sums)
    {
        Check(codes, stride, bits, words, blocks, queryPlanes, queryBits, sums);
        for (int b = 0; b < blocks; b++)
        {
            var block = codes.Slice(b * stride);
            for (int r = 0; r < BlockRows; r++)
            {
                int total = 0;
                for (int i = 0; i < bits; i++)
                    for (int w = 0; w < words; w++)
                    {
                        ulong x = block[(i * words + w) * BlockRows + r];
                        if (x == 0) continue;
                        for (int k = 0; k < queryBits; k++)
                            total += BitOperations.PopCount(x & queryPlanes[k * words + w]) << (i + k);
                    }
                sums[b * BlockRows + r] = total;
            }
        }
    }

    private static ReadOnlySpan<byte> NibbleCounts => [0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4];

    private static void ScanAvx512(ReadOnlySpan<ulong> codes, int stride, int bits, int words, int blocks, ReadOnlySpan<ulong> queryPlanes, int queryBits,
        Span<int> sums)
    {
        var lut = Vector512.Create(Vector128.Create(NibbleCounts));
        var low = Vector512.Create((byte)0x0F);
        ref ulong c0 = ref MemoryMarshal.GetReference(codes);
        ref ulong q0 = ref MemoryMarshal.GetReference(queryPlanes);
        for (int b = 0; b < blocks; b++)
        {
            var total = Vector512<ulong>.Zero;
            ref ulong block = ref Unsafe.Add(ref c0, b * stride);
            for (int i = 0; i < bits; i++)
                for (int w = 0; w < words; w++)
                {
                    var x = Vector512.LoadUnsafe(ref block, (nuint)((i * words + w) * BlockRows));
                    // Query planes in groups of 4, Horner-weighted per byte: Σ_{k<4} 2^k·count_k ≤ 8·15 fits a byte.
                    for (int g = 0; g < queryBits; g += 4)
                    {
                        var acc = Vector512<byte>.Zero;
                        for (int k = Math.Min(queryBits, g + 4) - 1; k >= g; k--)
                        {
                            var t = (x & Vector512.Create(Unsafe.Add(ref q0, k * words + w))).AsByte();
                            var cnt = Avx512BW.Shuffle(lut, t & low) + Avx512BW.Shuffle(lut, Vector512.ShiftRightLogical(t.AsUInt16(), 4).AsByte() & low);
                            acc = acc + acc + cnt;
                        }
                        var lane = Avx512BW.SumAbsoluteDifferences(acc, Vector512<byte>.Zero).AsUInt64();
                        total += Vector512.ShiftLeft(lane, i + g);
                    }
                }
            var dst = sums.Slice(b * BlockRows, BlockRows);
            var narrowed = Avx512F.ConvertToVector256Int32(total.AsInt64());
            narrowed.CopyTo(dst);
        }
    }

    private static void ScanAvx2(ReadOnlySpan<ulong> codes, int stride, int bits, int words, int blocks, ReadOnlySpan<ulong> queryPlanes, int queryBits,
        Span<int> sums)
    {
        var lut = Vector256.Create(Vector128.Create(NibbleCounts));
        var low = Vector256.Create((byte)0x0F);
        ref ulong c0 = ref MemoryMarshal.GetReference(codes);
        ref ulong q0 = ref MemoryMarshal.GetReference(queryPlanes);
        for (int b = 0; b < blocks; b++)
        {
            ref ulong block = ref Unsafe.Add(ref c0, b * stride);
            for (int half = 0; half < 2; half++)
            {
                var total = Vector256<ulong>.Zero;
                for (int i = 0; i < bits; i++)
                    for (int w = 0; w < words; w++)
                    {
                        var x = Vector256.LoadUnsafe(ref block, (nuint)((i * words + w) * BlockRows + 4 * half));
                        for (int g = 0; g < queryBits; g += 4)
                        {
                            var acc = Vector256<byte>.Zero;
                            for (int k = Math.Min(queryBits, g + 4) - 1; k >= g; k--)
                            {
                                var t = (x & Vector256.Create(Unsafe.Add(ref q0, k * words + w))).AsByte();
                                var cnt = Avx2.Shuffle(lut, t & low) + Avx2.Shuffle(lut, Vector256.ShiftRightLogical(t.AsUInt16(), 4).AsByte() & low);
                                acc = acc + acc + cnt;
                            }
                            var lane = Avx2.SumAbsoluteDifferences(acc, Vector256<byte>.Zero).AsUInt64();
                            total += Vector256.ShiftLeft(lane, i + g);
                        }
                    }
                for (int r = 0; r < 4; r++) sums[b * BlockRows + 4 * half + r] = (int)total.GetElement(r);
            }
        }
    }
}
