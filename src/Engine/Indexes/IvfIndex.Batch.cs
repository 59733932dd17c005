using System.Numerics.Tensors;
using Adanns.Kernels;

namespace Adanns.Engine.Indexes;

public sealed partial class IvfIndex
{
    /// <summary>Queries of a batch scanned list-major together (bounds the per-chunk shortlist heaps).</summary>
    private const int BatchChunk = 256;

    /// <summary>
    /// Whether a batch runs list-major (and, with a device, on the GPU): SQ8 / float scan codes scanned within the codes'
    /// dims, more than one list, no filter (it is asked per scanned row), no exact mode and no <c>Spill</c> (whose
    /// per-query set of offered slots a shared list pass cannot keep), and with a rotation only where batches rotate
    /// queries one at a time (<see cref="RotatesQueriesOneByOne"/>). Every other batch runs query by query.
    /// </summary>
    private bool ListMajor(in ResolvedSearch r, IIdFilter? filter) =>
        Codec is ListCodec.Float or ListCodec.Sq8 && filter is null && !r.Exact && !Spill && NList > 1 && r.ScanDim <= CodeDim
        && (Rotation is null || RotatesQueriesOneByOne);

    /// <summary>
    /// Whether a batch rotates its queries one at a time, as a single search does (a plain float / SQ8 spec: its batch
    /// results equal its single searches' bit for bit, as IVF's always did), rather than a group at a time through one
    /// matrix product (the other specs: faster; scores may differ from a single search's in the last bits).
    /// </summary>
    private bool RotatesQueriesOneByOne => !Spec.IsCodecPipeline;

    /// <summary>Rotates (when the index has <c>Rot</c>) <paramref name="m"/> queries into <paramref name="dst"/> the way this index's batches do.</summary>
    private void RotateQueries(ReadOnlySpan<float> queries, int m, Span<float> dst)
    {
        int D = Dimension;
        if (Rotation is null) queries[..(m * D)].CopyTo(dst);
        else if (RotatesQueriesOneByOne) for (int i = 0; i < m; i++) Rotation.Apply(queries.Slice(i * D, D), dst.Slice(i * D, D));
        else Rotation.ApplyBatch(queries[..(m * D)], dst[..(m * D)]);
    }

    /// <summary>
    /// List-major batch: each chunk of queries is scanned list by list, so a list's codes are loaded once for every
    /// query of the chunk that probes it (with 1,000 queries × 256 probes over 1,024 lists, ~60 queries per load)
    /// instead of once per query. Chunks run in parallel, each on one thread with its own heaps. Shortlists are the
    /// same (key, slot) sets a single search keeps, so results equal single searches.
    /// </summary>
    private void SearchBatchListMajor(float[] queries, int n, int k, ResolvedSearch r, int threads, SearchResults results, out SearchStats stats)
    {
        int chunk = Math.Clamp((n + threads - 1) / threads, 1, BatchChunk);
        int chunks = (n + chunk - 1) / chunk;
        var total = new SearchStats();
        var gate = new object();
        Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = threads }, c =>
        {
            int a = c * chunk, b = Math.Min(n, a + chunk);
            var local = new SearchStats();
            SearchListMajorChunk(queries, a, b, k, r, results, t_scratch ??= new Scratch(), ref local);
            lock (gate) total.Add(local);
        });
        stats = total;
    }

    /// <summary>Queries [a, b) of <paramref name="queries"/>, list-major; results into rows a..b.</summary>
    private void SearchListMajorChunk(float[] queries, int a, int b, int k, in ResolvedSearch r, SearchResults results, Scratch s, ref SearchStats stats)
    {
        int D = Dimension, m = b - a, np = r.NProbe, sl = r.Shortlist, d = r.ScanDim;
        var q = new float[m * D];
        RotateQueries(queries.AsSpan(a * D, m * D), m, q);
        var probes = new int[m * np];
        var probed = new int[m];
        var sq = ScanQuantizer;
        bool scaled = sq is not null && Metric == Metric.InnerProduct;
        var qs = scaled ? new float[m * d] : [];
        var offsets = new float[m];
        for (int i = 0; i < m; i++)
        {
            var qi = q.AsSpan(i * D, D);
            probed[i] = RankCentroids(qi, r.CoarseDim, np, probes.AsSpan(i * np, np), s);
            if (scaled)
            {
                // 8-bit inner product: Σ (q_j·step_j)·c_j plus the per-query constant Σ q_j·lo_j.
                TensorPrimitives.Multiply(qi[..d], sq!.Step.AsSpan(0, d), qs.AsSpan(i * d, d));
                offsets[i] = TensorPrimitives.Dot(qi[..d], sq.Lo.AsSpan(0, d));
            }
            stats.Queries++;
            stats.Flops += (long)NList * r.CoarseDim + RotationFlops;
        }

        // Bucket the (query, list) pairs by list.
        var bucketStart = new int[NList + 1];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < probed[i]; j++) bucketStart[probes[i * np + j] + 1]++;
        for (int l = 0; l < NList; l++) bucketStart[l + 1] += bucketStart[l];
        var fill = bucketStart[..NList];
        var bucket = new int[bucketStart[NList]];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < probed[i]; j++) bucket[fill[probes[i * np + j]]++] = i;

        var keys = new float[m * sl];
        var slots = new int[m * sl];
        var counts = new int[m];
        for (int l = 0; l < NList; l++)
        {
            int from = bucketStart[l], to = bucketStart[l + 1];
            if (from == to) continue;
            var list = _lists[l];
            int t = from;
            if (scaled)
            {
                // Four queries share each code load.
                for (; t + 1 < to; t += 4)
                {
                    int g = Math.Min(4, to - t);
                    ScanListMulti(list, bucket.AsSpan(t, g), qs, d, offsets, keys, slots, counts, sl, s);
                    stats.VectorsScanned += (long)g * list.Count;
                    stats.Flops += (long)g * list.Count * d;
                }
            }
            for (; t < to; t++)
            {
                int i = bucket[t];
                var heap = new TopKHeap(keys.AsSpan(i * sl, sl), slots.AsSpan(i * sl, sl));
                heap.Restore(counts[i]);
                ScanListInto(list, scaled ? qs.AsSpan(i * d, d) : q.AsSpan(i * D, d), offsets[i], ref heap, s);
                counts[i] = heap.Count;
                stats.VectorsScanned += list.Count;
                stats.Flops += (long)list.Count * d;
            }
            stats.ListsProbed += to - from;
        }
        var shortKeys = s.ShortKeys(sl);
        var shortSlots = s.ShortIds(sl);
        for (int i = 0; i < m; i++)
        {
            var heap = new TopKHeap(keys.AsSpan(i * sl, sl), slots.AsSpan(i * sl, sl));
            heap.Restore(counts[i]);
            int found = heap.SortBestFirst();
            heap.Keys[..found].CopyTo(shortKeys);
            heap.Ids[..found].CopyTo(shortSlots);
            int row = a + i;
            FinishShortlist(q.AsSpan(i * D, D), k, r, shortKeys, shortSlots, found, results.Ids.AsSpan(row * k, k), results.Scores.AsSpan(row * k, k), s, ref stats);
        }
    }

    /// <summary>
    /// Scores every row of <paramref name="list"/> at dim d = <paramref name="q"/>.Length (for the 8-bit inner product:
    /// the scaled query, completed by <paramref name="offset"/>) with the same kernels and key rule as the single-query
    /// scan, and offers the live rows to <paramref name="heap"/> (ids: slots).
    /// </summary>
    private void ScanListInto(PqList list, ReadOnlySpan<float> q, float offset, ref TopKHeap heap, Scratch s)
    {
        int count = list.Count, d = q.Length;
        bool needNorms = Metric != Metric.InnerProduct;
        var dots = s.Dists(ScanChunk);
        var norms = needNorms ? s.Norms(ScanChunk) : default;
        for (int r0 = 0; r0 < count; r0 += ScanChunk)
        {
            int n = Math.Min(ScanChunk, count - r0);
            var keys = ScoreChunk(list, r0, n, q, q, offset, needNorms, dots, norms);
            PushLive(ref heap, keys, list.Slots.AsSpan(r0, n));
        }
    }

    /// <summary>Offers (key, slot) of the live rows (slot ≥ 0) to the heap.</summary>
    /// <summary>
    /// Keys of rows [<paramref name="r0"/>, <paramref name="r0"/> + <paramref name="n"/>) of a float / SQ8 list, by the
    /// scan's one rule: float rows dot <paramref name="q"/>; 8-bit codes dot <paramref name="q"/> through the
    /// quantizer's ranges when norms are needed (L2, cosine), else dot the pre-scaled <paramref name="scaled"/> and add
    /// <paramref name="offset"/> (inner product: q·x̂ = Σ (q_j·step_j)·code_j + Σ q_j·lo_j); then keys as the metric ranks
    /// them. The single and the batch scans share it.
    /// </summary>
    private Span<float> ScoreChunk(PqList list, int r0, int n, ReadOnlySpan<float> q, ReadOnlySpan<float> scaled, float offset, bool needNorms,
        Span<float> dots, Span<float> norms)
    {
        var sq = ScanQuantizer;
        int nb = (n + InterleavedKernels.BlockRows - 1) / InterleavedKernels.BlockRows;
        long at = (long)(r0 / InterleavedKernels.BlockRows) * list.Tiles.BlockStride;
        var dm = dots[..(nb * InterleavedKernels.BlockRows)];
        var nm = needNorms ? norms[..dm.Length] : default;
        if (sq is null)
        {
            InterleavedKernels.Dot(q, list.Floats[(int)at..], list.Tiles, nb, dm, nm);
        }
        else if (needNorms)
        {
            InterleavedKernels.DotU8(q, sq.Lo, sq.Step, list.Codes.Slice((int)at), list.Tiles, nb, dm, nm);
        }
        else
        {
            InterleavedKernels.DotU8(scaled, default, default, list.Codes.Slice((int)at), list.Tiles, nb, dm, default);
            TensorPrimitives.Add(dm, offset, dm);
        }
        var keys = dm[..n];
        RerankKey.ToKeys(keys, needNorms ? nm[..n] : default, Metric);
        return keys;
    }

    private static void PushLive(ref TopKHeap heap, ReadOnlySpan<float> keys, ReadOnlySpan<int> slots)
    {
        float threshold = heap.Threshold;
        for (int j = 0; j < keys.Length; j++)
        {
            float key = keys[j];
            if (key <= threshold && slots[j] >= 0)
            {
                heap.Push(key, slots[j]);
                threshold = heap.Threshold;
            }
        }
    }

    /// <summary>
    /// <see cref="ScanListInto"/> for 2–4 queries at once (8-bit inner product): the codes are read once per group;
    /// each query's candidates go to its own shortlist heap.
    /// </summary>
    private void ScanListMulti(PqList list, ReadOnlySpan<int> queries, float[] scaled, int d, float[] offsets, float[] heapKeys, int[] heapSlots,
        int[] counts, int sl, Scratch s)
    {
        int count = list.Count;
        if (count == 0) return;
        int g = queries.Length;
        var qbuf = s.Code(4 * d);
        for (int i = 0; i < g; i++)
            scaled.AsSpan(queries[i] * d, d).CopyTo(qbuf.Slice(i * d, d));
        for (int r0 = 0; r0 < count; r0 += ScanChunk)
        {
            int n = Math.Min(ScanChunk, count - r0);
            int nb = (n + InterleavedKernels.BlockRows - 1) / InterleavedKernels.BlockRows;
            int stride = nb * InterleavedKernels.BlockRows;
            long at = (long)(r0 / InterleavedKernels.BlockRows) * list.Tiles.BlockStride;
            var dots = s.Dists(4 * stride);
            InterleavedKernels.DotU8Multi(qbuf, d, g, list.Codes.Slice((int)at), list.Tiles, nb, dots, stride);
            for (int i = 0; i < g; i++)
            {
                int qi = queries[i];
                var keys = dots.Slice(i * stride, n);
                // key = −(Σ qs·c + Σ q·lo): smaller is better.
                TensorPrimitives.Add(keys, offsets[qi], keys);
                TensorPrimitives.Negate(keys, keys);
                var heap = new TopKHeap(heapKeys.AsSpan(qi * sl, sl), heapSlots.AsSpan(qi * sl, sl));
                heap.Restore(counts[qi]);
                PushLive(ref heap, keys, list.Slots.AsSpan(r0, n));
                counts[qi] = heap.Count;
            }
        }
    }
}
