using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace Adanns.Kernels.Gpu;

/// <summary>How a dot product q·x becomes a ranking key (smaller is better; per-query constants omitted).</summary>
public enum KeyKind
{
    /// <summary>key = −q·x (inner product).</summary>
    InnerProduct = 0,

    /// <summary>key = ‖x‖² − 2q·x (squared L2 without ‖q‖²); the row term is ‖x‖².</summary>
    L2 = 1,

    /// <summary>key = −q·x / ‖x‖ (cosine with a unit query); the row term is 1/‖x‖.</summary>
    Cosine = 2,
}

/// <summary>Scalars of the tiled distance kernel.</summary>
internal struct DistanceArgs
{
    public int Nq, RowCount, D, Kind;
    public long RowStart, RowStride;
}

/// <summary>Scalars of the selection kernel.</summary>
internal struct SelectArgs
{
    public long SegLen, OutSegStride, OutOffset;
    public int Parts, K, IdBase, SkipEmpty;
}

/// <summary>Scalars of the list-scan kernel.</summary>
internal struct ScanArgs
{
    public int D, Kind, Quantized, BlockStride;
}

/// <summary>
/// The ILGPU kernels and their compiled, cached launchers for one accelerator. Kernel bodies are static methods
/// over array views (ILGPU's rules: no allocation, no exceptions, no virtual calls).
/// </summary>
internal sealed class GpuKernels
{
    /// <summary>Largest top-k a thread keeps (local memory is sized at compile time).</summary>
    public const int KMax = 256;

    /// <summary>Largest side T of the T×T thread group of the distance kernel (shared memory is sized at compile time).</summary>
    public const int MaxTile = 16;

    public readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, DistanceArgs> Distance;
    public readonly Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<long>, ArrayView<float>, ArrayView<int>, SelectArgs> Select;
    public readonly Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<float>, int> CentroidUpdate;
    public readonly Action<KernelConfig, ArrayView<float>, ArrayView<byte>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>,
        ArrayView<long>, ArrayView<int>, ArrayView<int>, ArrayView<int>, ArrayView<long>, ArrayView<float>, ArrayView<int>, ScanArgs> Scan;

    public GpuKernels(Accelerator accelerator)
    {
        // Compiled once per accelerator (the owning GpuDevice caches this object).
        Distance = accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, DistanceArgs>(DistanceKernel);
        Select = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<long>, ArrayView<float>, ArrayView<int>, SelectArgs>(SelectKernel);
        CentroidUpdate = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<float>, int>(CentroidUpdateKernel);
        Scan = accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<byte>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>,
            ArrayView<long>, ArrayView<int>, ArrayView<int>, ArrayView<int>, ArrayView<long>, ArrayView<float>, ArrayView<int>, ScanArgs>(ScanKernel);
    }

    /// <summary>Outputs per thread along each side of the distance tile (a 4×4 register block).</summary>
    public const int Block = 4;

    private const int KStep = 16;            // dims staged in shared memory per step
    private const int StagePad = KStep + 1;  // a padded shared-memory row avoids bank conflicts

    /// <summary>
    /// keys[qi·RowCount + r] = key(queries[qi] · rows[RowStart + r][:D]) for a tile of (T·4 rows) × (T·4 queries) per
    /// T×T group. queries: Nq×D row-major; rows: row-major with stride RowStride; terms: per-row ‖x‖² (L2) or 1/‖x‖
    /// (cosine), indexed by RowStart + r (empty for inner product).
    /// </summary>
    /// <remarks>
    /// Per step of 16 dims the group stages its T·4 query rows and T·4 data rows in shared memory (neighbouring threads
    /// load neighbouring dims: coalesced), then each thread accumulates a 4×4 block of dot products in registers:
    /// 8 shared loads per 16 FMAs, and each row value read from global memory serves T·4 queries. Thread (tx, ty)
    /// owns queries qBase + ty + i·T and rows rowBase + tx + j·T, so its writes are coalesced along rows.
    /// </remarks>
    private static void DistanceKernel(ArrayView<float> queries, ArrayView<float> rows, ArrayView<float> terms, ArrayView<float> keys, DistanceArgs a)
    {
        var sQ = SharedMemory.Allocate<float>(MaxTile * Block * StagePad);
        var sX = SharedMemory.Allocate<float>(MaxTile * Block * StagePad);
        int t = Group.DimX;
        int tx = Group.IdxX, ty = Group.IdxY;
        int span = t * Block;
        int rowBase = Grid.IdxX * span, qBase = Grid.IdxY * span;
        int lid = ty * t + tx, threads = t * t;
        float c00 = 0f, c01 = 0f, c02 = 0f, c03 = 0f, c10 = 0f, c11 = 0f, c12 = 0f, c13 = 0f;
        float c20 = 0f, c21 = 0f, c22 = 0f, c23 = 0f, c30 = 0f, c31 = 0f, c32 = 0f, c33 = 0f;
        for (int k0 = 0; k0 < a.D; k0 += KStep)
        {
            for (int e = lid; e < span * KStep; e += threads)
            {
                int r = e / KStep, kk = e % KStep, j = k0 + kk;
                int lq = qBase + r, lr = rowBase + r;
                sQ[r * StagePad + kk] = lq < a.Nq && j < a.D ? queries[(long)lq * a.D + j] : 0f;
                sX[r * StagePad + kk] = lr < a.RowCount && j < a.D ? rows[(a.RowStart + lr) * a.RowStride + j] : 0f;
            }
            Group.Barrier();
            for (int kk = 0; kk < KStep; kk++)
            {
                float a0 = sQ[ty * StagePad + kk], a1 = sQ[(ty + t) * StagePad + kk];
                float a2 = sQ[(ty + 2 * t) * StagePad + kk], a3 = sQ[(ty + 3 * t) * StagePad + kk];
                float b0 = sX[tx * StagePad + kk], b1 = sX[(tx + t) * StagePad + kk];
                float b2 = sX[(tx + 2 * t) * StagePad + kk], b3 = sX[(tx + 3 * t) * StagePad + kk];
                c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
                c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
                c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
                c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
            }
            Group.Barrier();
        }
        int q0 = qBase + ty, r0 = rowBase + tx;
        Emit(terms, keys, a, q0, r0, c00); Emit(terms, keys, a, q0, r0 + t, c01); Emit(terms, keys, a, q0, r0 + 2 * t, c02); Emit(terms, keys, a, q0, r0 + 3 * t, c03);
        Emit(terms, keys, a, q0 + t, r0, c10); Emit(terms, keys, a, q0 + t, r0 + t, c11); Emit(terms, keys, a, q0 + t, r0 + 2 * t, c12); Emit(terms, keys, a, q0 + t, r0 + 3 * t, c13);
        Emit(terms, keys, a, q0 + 2 * t, r0, c20); Emit(terms, keys, a, q0 + 2 * t, r0 + t, c21); Emit(terms, keys, a, q0 + 2 * t, r0 + 2 * t, c22); Emit(terms, keys, a, q0 + 2 * t, r0 + 3 * t, c23);
        Emit(terms, keys, a, q0 + 3 * t, r0, c30); Emit(terms, keys, a, q0 + 3 * t, r0 + t, c31); Emit(terms, keys, a, q0 + 3 * t, r0 + 2 * t, c32); Emit(terms, keys, a, q0 + 3 * t, r0 + 3 * t, c33);
    }

    /// <summary>Writes the key of (query qi, row) when both exist.</summary>
    private static void Emit(ArrayView<float> terms, ArrayView<float> keys, DistanceArgs a, int qi, int row, float dot)
    {
        if (qi >= a.Nq || row >= a.RowCount) return;
        float key;
        if (a.Kind == (int)KeyKind.L2) key = terms[a.RowStart + row] - 2f * dot;
        else if (a.Kind == (int)KeyKind.Cosine) key = -dot * terms[a.RowStart + row];
        else key = -dot;
        keys[(long)qi * a.RowCount + row] = key;
    }

    /// <summary>
    /// Top-k of segments, split into Parts interleaved parts per segment: thread t = s·Parts + p keeps the k best
    /// (key, id) of entries start+p, start+p+Parts, … of segment s (neighbouring threads read neighbouring entries)
    /// and writes them best first at outOffset + s·outSegStride + p·k, padded with (+∞, −1).
    /// Segment s is [segOffsets[s], segOffsets[s+1]) or, when segOffsets is empty, [s·SegLen, (s+1)·SegLen).
    /// Ids come from <paramref name="ids"/> or, when it is empty, are IdBase + position in the segment.
    /// Order: smaller key first, equal keys by lower id; NaN keys and (with SkipEmpty) ids &lt; 0 are dropped.
    /// </summary>
    private static void SelectKernel(Index1D index, ArrayView<float> keys, ArrayView<int> ids, ArrayView<long> segOffsets,
        ArrayView<float> outKeys, ArrayView<int> outIds, SelectArgs a)
    {
        int s = index / a.Parts, p = index % a.Parts;
        long start, end;
        if (segOffsets.Length > 0) { start = segOffsets[s]; end = segOffsets[s + 1]; }
        else { start = s * a.SegLen; end = start + a.SegLen; }
        var lk = LocalMemory.Allocate<float>(KMax);
        var li = LocalMemory.Allocate<int>(KMax);
        int k = a.K, count = 0;
        bool explicitIds = ids.Length > 0;
        for (long i = start + p; i < end; i += a.Parts)
        {
            float key = keys[i];
            if (XMath.IsNaN(key)) continue; // a NaN distance has no rank (as on the CPU)
            int id = explicitIds ? ids[i] : a.IdBase + (int)(i - start);
            if (a.SkipEmpty != 0 && id < 0) continue;
            if (count == k)
            {
                float wk = lk[k - 1];
                if (!(key < wk || (key == wk && id < li[k - 1]))) continue;
                count--; // the worst falls off
            }
            // Insertion into the sorted list.
            int pos = count;
            while (pos > 0)
            {
                float pk = lk[pos - 1];
                if (!(key < pk || (key == pk && id < li[pos - 1]))) break;
                lk[pos] = pk;
                li[pos] = li[pos - 1];
                pos--;
            }
            lk[pos] = key;
            li[pos] = id;
            count++;
        }
        long o = a.OutOffset + s * a.OutSegStride + (long)p * k;
        for (int j = 0; j < k; j++)
        {
            outKeys[o + j] = j < count ? lk[j] : float.PositiveInfinity;
            outIds[o + j] = j < count ? li[j] : -1;
        }
    }

    /// <summary>
    /// k-means update: thread t = c·dim + j writes centroids[c][j] = mean over the points of cluster c (listed in
    /// ascending point order in order[starts[c]..starts[c+1])) of points[p][j], summed in double in that order —
    /// the same sum, in the same order, as the CPU update. Empty clusters are left unchanged.
    /// </summary>
    private static void CentroidUpdateKernel(Index1D index, ArrayView<float> points, ArrayView<int> order, ArrayView<int> starts, ArrayView<float> centroids, int dim)
    {
        int c = index / dim, j = index % dim;
        int a = starts[c], b = starts[c + 1];
        if (a == b) return;
        double sum = 0;
        for (int i = a; i < b; i++)
            sum += points[(long)order[i] * dim + j];
        centroids[index] = (float)(sum / (b - a));
    }

    /// <summary>
    /// IVF list scan for a query batch grouped by list. Group u scans list units[3u] for the up to 4 (query, list)
    /// pairs units[3u+1] … units[3u+1]+units[3u+2]−1 (consecutive in pair order, all probing that list): every row value is
    /// read once for the 4 queries. Thread r of the group takes rows r, r+G, … of the list.
    /// </summary>
    /// <remarks>
    /// Lists are stored interleaved-16 block-major (see <see cref="InterleavedKernels"/>): value (row, dim j) of list l
    /// is at listBase[l] + (row/16)·BlockStride + (j/16)·256 + (j%16)·16 + row%16, float (<paramref name="data"/>) or an
    /// 8-bit code decoded as lo[j] + step[j]·c (<paramref name="codes"/>). pairOut holds two longs per pair (output offset,
    /// query index); per pair p and row r the kernel writes the key at pairOut[2p] + r and the global slot listSlot[l] + r.
    /// Rows whose live[slot] is 0 (tombstones) get key NaN, which the selection drops.
    /// </remarks>
    private static void ScanKernel(ArrayView<float> data, ArrayView<byte> codes, ArrayView<float> lo, ArrayView<float> step,
        ArrayView<float> queries, ArrayView<int> units, ArrayView<long> listBase, ArrayView<int> listCount, ArrayView<int> listSlot,
        ArrayView<int> live, ArrayView<long> pairOut, ArrayView<float> outKeys, ArrayView<int> outIds, ScanArgs a)
    {
        int u = Grid.IdxX;
        int l = units[u * 3], p0 = units[u * 3 + 1], g = units[u * 3 + 2];
        int n = listCount[l];
        long lbase = listBase[l];
        int d = a.D;
        // Query rows of the pairs: pairOut holds 2 longs per pair: (output offset, query index).
        long q0 = pairOut[2 * p0 + 1] * d;
        long q1 = g > 1 ? pairOut[2 * (p0 + 1) + 1] * d : q0;
        long q2 = g > 2 ? pairOut[2 * (p0 + 2) + 1] * d : q0;
        long q3 = g > 3 ? pairOut[2 * (p0 + 3) + 1] * d : q0;
        for (int r = Group.IdxX; r < n; r += Group.DimX)
        {
            long rbase = lbase + (long)(r / 16) * a.BlockStride + (r % 16);
            float d0 = 0f, d1 = 0f, d2 = 0f, d3 = 0f, nn = 0f;
            for (int j = 0; j < d; j++)
            {
                long off = rbase + (j / 16) * 256 + (j % 16) * 16;
                float x = a.Quantized != 0 ? lo[j] + step[j] * codes[off] : data[off];
                d0 += queries[q0 + j] * x;
                d1 += queries[q1 + j] * x;
                d2 += queries[q2 + j] * x;
                d3 += queries[q3 + j] * x;
                nn += x * x;
            }
            int slot = listSlot[l] + r;
            bool dead = live[slot] == 0; // tombstone: a NaN key never enters a shortlist (as on the CPU)
            for (int t = 0; t < g; t++)
            {
                float dot = t == 0 ? d0 : t == 1 ? d1 : t == 2 ? d2 : d3;
                float key;
                if (a.Kind == (int)KeyKind.L2) key = nn - 2f * dot;
                else if (a.Kind == (int)KeyKind.Cosine) key = -dot / XMath.Max(XMath.Sqrt(nn), 1e-30f);
                else key = -dot;
                if (dead) key = float.NaN;
                long o = pairOut[2 * (p0 + t)] + r;
                outKeys[o] = key;
                outIds[o] = slot;
            }
        }
    }
}
