using System.Numerics.Tensors;
using Adanns.Kernels;

namespace Adanns.Engine.Indexes;

public sealed partial class IvfIndex
{
    private const int ScanChunk = 1024; // rows per kernel call: bounds per-thread scratch for long lists

    [ThreadStatic] private static Scratch? t_scratch;

    /// <summary>Resolves <paramref name="p"/> against the index defaults and validates it (once per call).</summary>
    public ResolvedSearch Resolve(SearchParams? p, int k)
    {
        if ((p is null || p.IsUnset) && ComputeProfile?.TunedParams is { } tuned) p = tuned; // a tuned index runs at its target
        if (p is { UsesProfile: true })
            return ResolveBudget(p, k); // picks concrete parameters from the profile, then comes back here
        if (k <= 0) throw new ArgumentOutOfRangeException(nameof(k), k, "k must be at least 1.");
        int D = Dimension;
        int nprobe = p?.NProbe ?? Spec.NProbe ?? IndexSpec.DefaultNProbe;
        if (p?.NProbe is null) nprobe = Math.Min(nprobe, NList);
        int dc = p?.CoarseDim ?? CoarseDim;
        int ds = p?.ScanDim ?? Spec.ScanDim ?? dc;
        var rerank = p?.Rerank ?? Spec.Rerank;
        int shortlist = p?.Shortlist ?? Math.Max(k, Spec.Shortlist ?? IndexSpec.DefaultShortlist);
        bool exact = p?.Exact ?? false;

        if (nprobe < 1 || nprobe > NList)
            throw new ArgumentOutOfRangeException(nameof(p), nprobe, $"nprobe must be in [1, {NList}] (got {nprobe}).");
        if (dc < 1 || dc > D)
            throw new ArgumentOutOfRangeException(nameof(p), dc, $"Coarse dim must be in [1, {D}] (got {dc}).");
        if (ds < 1 || ds > D)
            throw new ArgumentOutOfRangeException(nameof(p), ds, $"Scan dim must be in [1, {D}] (got {ds}).");
        SearchParamsChecks.CheckShortlistAndRerank(shortlist, rerank, D, k);
        if (exact)
        {
            // Every live vector scored at the final dim: a flat search through the list storage.
            int final = rerank.Count > 0 ? rerank[^1].Dim : ds;
            return new ResolvedSearch(NList, dc, final, k, [], true);
        }
        return new ResolvedSearch(nprobe, dc, ds, rerank.Count == 0 ? k : shortlist, rerank, false);
    }

    /// <summary>
    /// The k nearest neighbours of <paramref name="query"/> (D dims, unrotated). Writes k ids (external, −1 padded)
    /// and scores; <paramref name="stats"/> receives the work done. Allocates nothing after warm-up.
    /// </summary>
    public void Search(ReadOnlySpan<float> query, int k, Span<long> ids, Span<float> scores, SearchParams? p, out SearchStats stats) =>
        Search(query, k, ids, scores, p, null, out stats);

    /// <summary>
    /// <see cref="Search(ReadOnlySpan{float}, int, Span{long}, Span{float}, SearchParams?, out SearchStats)"/> where
    /// only ids that <paramref name="filter"/> accepts are scanned into the shortlist (the filter runs inside the list
    /// scan, so rejected rows cost no rerank). Fewer than k matches in the probed lists pad the tail with id −1.
    /// </summary>
    public void Search(ReadOnlySpan<float> query, int k, Span<long> ids, Span<float> scores, SearchParams? p, IIdFilter? filter, out SearchStats stats)
    {
        var r = Resolve(p, k);
        CheckQuery(query, 0);
        if (ids.Length < k || scores.Length < k)
            throw new ArgumentException($"Output buffers must hold k = {k} entries (ids: {ids.Length}, scores: {scores.Length}).");
        var scratch = t_scratch ??= new Scratch();
        stats = default;
        SearchOne(query, k, r, ids[..k], scores[..k], filter, scratch, ref stats);
    }

    /// <summary>Searches with the index defaults.</summary>
    public void Search(ReadOnlySpan<float> query, int k, Span<long> ids, Span<float> scores) =>
        Search(query, k, ids, scores, null, out _);

    /// <summary>
    /// Searches nq queries (nq×D row-major), spread over <paramref name="threads"/> threads (0 = all cores).
    /// Outputs are nq×k row-major; <paramref name="stats"/> sums the work of all queries.
    /// </summary>
    public void SearchBatch(ReadOnlySpan<float> queries, int k, Span<long> ids, Span<float> scores, SearchParams? p, int threads, out SearchStats stats) =>
        SearchBatch(queries, k, ids, scores, p, null, threads, out stats);

    /// <summary>
    /// Batch search (see <see cref="IVectorIndexReader.SearchBatch"/>). Without a filter the batch runs list-major (or on
    /// the GPU); a filter is asked per scanned row, so a filtered batch runs query by query on the threads.
    /// </summary>
    public void SearchBatch(ReadOnlySpan<float> queries, int k, Span<long> ids, Span<float> scores, SearchParams? p, IIdFilter? filter, int threads,
        out SearchStats stats)
    {
        var r = Resolve(p, k);
        int D = Dimension;
        if (queries.Length % D != 0)
            throw new ArgumentException($"Query data length {queries.Length} is not a multiple of D = {D}.", nameof(queries));
        int nq = queries.Length / D;
        if (ids.Length < (long)nq * k || scores.Length < (long)nq * k)
            throw new ArgumentException($"Output buffers must hold {nq}×{k} entries.");
        for (int i = 0; i < nq; i++) CheckQuery(queries.Slice(i * D, D), i);
        if (threads < 0) throw new ArgumentOutOfRangeException(nameof(threads), threads, "Threads must be ≥ 0 (0 = all cores).");
        if (threads == 0) threads = Environment.ProcessorCount;
        threads = Math.Max(1, Math.Min(threads, nq));
        if (filter is not null || r.Exact)
        {
            SearchEach(queries, nq, k, r, filter, threads, ids, scores, out stats);
            return;
        }
        if (nq > 0 && GpuScanStore(r) is { } store)
        {
            SearchBatchGpu(store, queries, nq, k, r, threads, ids, scores, out stats);
            return;
        }

        // List-major: each chunk of queries is scanned list by list, so a list's data is loaded once for every
        // query of the chunk that probes it (with 1,000 queries × 256 probes over 1,024 lists, ~60 queries per
        // load) instead of once per query. Chunks run in parallel, each on one thread with its own heaps.
        int chunk = Math.Clamp((nq + threads - 1) / threads, 1, BatchChunk);
        int chunks = (nq + chunk - 1) / chunk;
        var qArr = queries.ToArray();
        var idArr = new long[(long)nq * k];
        var scoreArr = new float[(long)nq * k];
        var total = new SearchStats();
        var gate = new object();
        var starts = ListStarts();
        Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = threads }, c =>
        {
            int a = c * chunk, b = Math.Min(nq, a + chunk);
            var local = new SearchStats();
            SearchChunk(qArr, a, b, k, r, starts, idArr, scoreArr, ref local);
            lock (gate) total.Add(local);
        });
        idArr.CopyTo(ids);
        scoreArr.CopyTo(scores);
        stats = total;
    }

    private const int BatchChunk = 256;

    /// <summary>A batch as independent single searches, spread over <paramref name="threads"/> threads.</summary>
    private void SearchEach(ReadOnlySpan<float> queries, int nq, int k, ResolvedSearch r, IIdFilter? filter, int threads, Span<long> ids, Span<float> scores,
        out SearchStats stats)
    {
        int D = Dimension;
        var qArr = queries.ToArray();
        var idArr = new long[(long)nq * k];
        var scoreArr = new float[(long)nq * k];
        var partial = new SearchStats[threads];
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
        {
            var s = t_scratch ??= new Scratch();
            int a = (int)((long)nq * t / threads), b = (int)((long)nq * (t + 1) / threads);
            for (int i = a; i < b; i++)
                SearchOne(qArr.AsSpan(i * D, D), k, r, idArr.AsSpan(i * k, k), scoreArr.AsSpan(i * k, k), filter, s, ref partial[t]);
        });
        idArr.CopyTo(ids);
        scoreArr.CopyTo(scores);
        stats = default;
        foreach (var ps in partial) stats.Add(ps);
    }

    /// <summary>Queries [a, b) of <paramref name="queries"/>, list-major; results into rows a..b of the outputs.</summary>
    private void SearchChunk(float[] queries, int a, int b, int k, in ResolvedSearch r, int[] starts, long[] idsOut, float[] scoresOut, ref SearchStats stats)
    {
        int D = Dimension, m = b - a, np = r.NProbe, sl = r.Shortlist;
        var s = t_scratch ??= new Scratch();
        var q = new float[m * D];
        var probes = new int[m * np];
        var probed = new int[m];
        bool scaled = UsesScaledQuery(r);
        var qs = scaled ? new float[m * r.ScanDim] : [];
        var qsOffset = new float[m];
        for (int i = 0; i < m; i++)
        {
            var qi = q.AsSpan(i * D, D);
            PrepareQuery(queries.AsSpan((a + i) * D, D), qi);
            probed[i] = RankCentroids(qi, r.CoarseDim, np, probes.AsSpan(i * np, np), s);
            if (scaled) qsOffset[i] = ScaleQuery(qi[..r.ScanDim], qs.AsSpan(i * r.ScanDim, r.ScanDim));
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
        var hids = new int[m * sl];
        var counts = new int[m];
        for (int l = 0; l < NList; l++)
        {
            int from = bucketStart[l], to = bucketStart[l + 1];
            if (from == to) continue;
            var list = _lists[l];
            int t = from;
            if (scaled && Metric == Metric.InnerProduct)
            {
                // 8-bit inner product: four queries share each code load.
                for (; t + 1 < to; t += 4)
                {
                    int g = Math.Min(4, to - t);
                    ScanListMulti(list, bucket.AsSpan(t, g), qs, r.ScanDim, qsOffset, starts[l], keys, hids, counts, sl, s);
                    stats.VectorsScanned += (long)g * list.Count;
                    stats.Flops += (long)g * list.Count * r.ScanDim;
                }
            }
            for (; t < to; t++)
            {
                int i = bucket[t];
                var heap = new TopKHeap(keys.AsSpan(i * sl, sl), hids.AsSpan(i * sl, sl));
                heap.Restore(counts[i]);
                ScanList(list, q.AsSpan(i * D, D), r.ScanDim, r.Exact, starts[l],
                    scaled ? qs.AsSpan(i * r.ScanDim, r.ScanDim) : default, qsOffset[i], null, ref heap, s);
                counts[i] = heap.Count;
                stats.VectorsScanned += list.Count;
                stats.Flops += (long)list.Count * r.ScanDim;
            }
            stats.ListsProbed += to - from;
        }
        for (int i = 0; i < m; i++)
        {
            var heap = new TopKHeap(keys.AsSpan(i * sl, sl), hids.AsSpan(i * sl, sl));
            heap.Restore(counts[i]);
            int found = heap.SortBestFirst();
            Finish(q.AsSpan(i * D, D), k, r, heap.Keys[..found], heap.Ids[..found], starts,
                idsOut.AsSpan((a + i) * k, k), scoresOut.AsSpan((a + i) * k, k), s, ref stats);
        }
    }

    /// <summary>Batch search returning new arrays.</summary>
    public SearchResults SearchBatch(ReadOnlySpan<float> queries, int k, SearchParams? p, int threads, out SearchStats stats) =>
        this.SearchBatch(queries, k, p, null, threads, out stats);

    /// <summary>Multiply-adds of the query rotation (counted in <see cref="SearchStats.Flops"/>: every query pays them).</summary>
    private long RotationFlops => Rotation is null ? 0 : (long)Dimension * Dimension;

    private void SearchOne(ReadOnlySpan<float> query, int k, in ResolvedSearch r, Span<long> outIds, Span<float> outScores, IIdFilter? filter, Scratch s,
        ref SearchStats stats)
    {
        int D = Dimension;
        var q = s.Query(D);
        PrepareQuery(query, q);
        stats.Queries++;
        stats.Flops += RotationFlops;
        if (r.Exact)
        {
            ExactSearch(q, k, r.ScanDim, filter, outIds, outScores, s, ref stats);
            return;
        }

        // 1. Coarse: rank the probe centroids at d_c'.
        int nprobe = r.NProbe;
        var probes = s.Probes(nprobe);
        int probed = RankCentroids(q, r.CoarseDim, nprobe, probes, s);
        stats.Flops += (long)NList * r.CoarseDim;
        bool scaled = UsesScaledQuery(r);
        var qs = scaled ? s.ScaledQuery(r.ScanDim) : default;
        float qsOffset = scaled ? ScaleQuery(q[..r.ScanDim], qs) : 0f;

        // 2. Scan the probed lists at d_s, keeping the best `shortlist` candidates (ids are global row slots).
        var starts = ListStarts();
        var heap = new TopKHeap(s.ShortKeys(r.Shortlist), s.ShortIds(r.Shortlist));
        for (int i = 0; i < probed; i++)
        {
            var list = _lists[probes[i]];
            ScanList(list, q, r.ScanDim, r.Exact, starts[probes[i]], qs, qsOffset, filter, ref heap, s);
            stats.VectorsScanned += list.Count;
            stats.Flops += (long)list.Count * r.ScanDim;
        }
        stats.ListsProbed += probed;
        int found = heap.SortBestFirst();
        Finish(q, k, r, heap.Keys[..found], heap.Ids[..found], starts, outIds, outScores, s, ref stats);
    }

    /// <summary>
    /// Exact mode: every live row (that <paramref name="filter"/> accepts) scored at dim d through the engine's one
    /// exact search (<see cref="ExactScan"/>: equal scores go to the lower external id). Rows come from the row store,
    /// or, when the float scan store holds every dim, are read out of it a chunk at a time.
    /// </summary>
    private void ExactSearch(ReadOnlySpan<float> q, int k, int d, IIdFilter? filter, Span<long> outIds, Span<float> outScores, Scratch s, ref SearchStats stats)
    {
        int D = Dimension;
        var scan = new ExactScan(Metric, q[..d], k);
        foreach (var list in _lists)
        {
            int count = list.Count;
            if (count == 0) continue;
            if (list.Rows is { } rows)
            {
                scan.Add(rows.AsSpan(0, count * D), D, list.Ids.AsSpan(0, count), count, filter);
            }
            else
            {
                var buf = s.Row(ScanChunk * D);
                for (int r0 = 0; r0 < count; r0 += ScanChunk)
                {
                    int m = Math.Min(ScanChunk, count - r0);
                    for (int j = 0; j < m; j++) list.Read(r0 + j, buf.Slice(j * D, D));
                    scan.Add(buf[..(m * D)], D, list.Ids.AsSpan(r0, m), m, filter);
                }
            }
            stats.VectorsScanned += count;
            stats.Flops += (long)count * d;
        }
        stats.ListsProbed += NList;
        scan.Finish(outIds[..k], outScores[..k]);
    }

    /// <summary>Rotates (if configured) the query into <paramref name="q"/>.</summary>
    private void PrepareQuery(ReadOnlySpan<float> query, Span<float> q)
    {
        if (Rotation is null) query.CopyTo(q);
        else Rotation.Apply(query, q);
    }

    /// <summary>Whether the scan runs the 8-bit inner-product kernel on a pre-scaled query (q_j·step_j).</summary>
    private bool UsesScaledQuery(in ResolvedSearch r) =>
        ScanQuantizer is not null && Metric == Metric.InnerProduct && r.ScanDim <= ScanStoreDims && !r.Exact;

    /// <summary>qs_j = q_j·step_j; returns the constant Σ q_j·lo_j that completes the decoded dot product.</summary>
    private float ScaleQuery(ReadOnlySpan<float> q, Span<float> qs)
    {
        var quant = ScanQuantizer!;
        TensorPrimitives.Multiply(q, quant.Step.AsSpan(0, q.Length), qs);
        return TensorPrimitives.Dot(q, quant.Lo.AsSpan(0, q.Length));
    }

    /// <summary>
    /// Row slot of each list's first row: slot = starts[list] + position, so a candidate is one int whatever the
    /// probe order. Rebuilt lazily after writes (writers clear it).
    /// </summary>
    private int[] ListStarts()
    {
        var starts = _listStarts;
        if (starts is not null) return starts;
        starts = new int[NList + 1];
        for (int l = 0; l < NList; l++) starts[l + 1] = starts[l] + _lists[l].Count;
        _listStarts = starts;
        return starts;
    }

    /// <summary>
    /// Rerank stages and output for one query, from its scan shortlist (keys and slots, best first).
    /// </summary>
    private void Finish(ReadOnlySpan<float> q, int k, in ResolvedSearch r, ReadOnlySpan<float> shortKeys, ReadOnlySpan<int> shortSlots,
        int[] starts, Span<long> outIds, Span<float> outScores, Scratch s, ref SearchStats stats)
    {
        int found = shortKeys.Length;
        // Candidates as (list, position), best first.
        var candList = s.CandList(found);
        var candPos = s.CandPos(found);
        for (int j = 0; j < found; j++)
        {
            int slot = shortSlots[j];
            int l = FindList(starts, slot);
            candList[j] = l;
            candPos[j] = slot - starts[l];
        }
        var keys = s.StageKeys(found);
        shortKeys.CopyTo(keys);
        int finalDim = r.ScanDim;

        // Rerank stages: rescore at growing dims, keep fewer each time; the last keeps k.
        for (int st = 0; st < r.Rerank.Count && found > 0; st++)
        {
            var stage = r.Rerank[st];
            int keep = st == r.Rerank.Count - 1 ? k : Math.Min(found, stage.Keep ?? found);
            keep = Math.Max(keep, Math.Min(k, found));
            var stageHeap = new TopKHeap(s.StageHeapKeys(keep), s.StageHeapIds(keep));
            for (int j = 0; j < found; j++)
                stageHeap.Push(RowKey(_lists[candList[j]], candPos[j], q, stage.Dim, s), j);
            stats.VectorsReranked += found;
            stats.Flops += (long)found * stage.Dim;
            int kept = stageHeap.SortBestFirst();
            // Re-order the candidate arrays by the stage ranking (through a small temporary copy).
            var tmpList = s.TmpList(kept);
            var tmpPos = s.TmpPos(kept);
            for (int j = 0; j < kept; j++)
            {
                int from = stageHeap.Ids[j];
                tmpList[j] = candList[from];
                tmpPos[j] = candPos[from];
            }
            tmpList.CopyTo(candList);
            tmpPos.CopyTo(candPos);
            stageHeap.Keys[..kept].CopyTo(keys);
            found = kept;
            finalDim = stage.Dim;
        }

        // Emit top-k with scores in the metric's own units at the final dim.
        int n = Math.Min(found, k);
        float qNorm2 = Metric == Metric.InnerProduct ? 1f : VectorMath.NormSquared(q[..finalDim]);
        for (int j = 0; j < n; j++)
        {
            outIds[j] = _lists[candList[j]].Ids[candPos[j]];
            outScores[j] = Metric switch
            {
                Metric.L2 => MathF.Max(0f, keys[j] + qNorm2),
                Metric.Cosine => qNorm2 > 0 ? -keys[j] / MathF.Sqrt(qNorm2) : 0f,
                _ => -keys[j],
            };
        }
        float worst = Metric.HigherIsBetter() ? float.NegativeInfinity : float.PositiveInfinity;
        for (int j = n; j < k; j++)
        {
            outIds[j] = -1;
            outScores[j] = worst;
        }
    }

    /// <summary>Top-nprobe centroids at dim d (best first) into <paramref name="probes"/>; returns how many.</summary>
    private int RankCentroids(ReadOnlySpan<float> q, int d, int nprobe, Span<int> probes, Scratch s)
    {
        int padded = ProbeBlocks * InterleavedKernels.BlockRows;
        var dots = s.CoarseKeys(padded);
        var norms = s.CoarseNorms(padded);
        // Centroid norms come out of the same pass (they change as lists grow, so nothing is cached).
        InterleavedKernels.Dot(q[..d], _probeCentroids, ProbeLayout, ProbeBlocks, dots, norms);
        var keys = dots[..NList];
        RerankKey.ToKeys(keys, norms[..NList], CoarseMetric);
        var heap = new TopKHeap(s.ProbeKeys(nprobe), probes);
        TopK.PushAll(ref heap, keys, 0);
        return heap.SortBestFirst();
    }

    /// <summary>Scores every row of <paramref name="list"/> at dim d and offers them to the shortlist heap.</summary>
    private void ScanList(InvertedList list, ReadOnlySpan<float> q, int d, bool exact, int candidateBase, ReadOnlySpan<float> scaledQuery, float scaledOffset,
        IIdFilter? filter, ref TopKHeap heap, Scratch s)
    {
        int count = list.Count;
        if (count == 0) return;
        bool needNorms = Metric != Metric.InnerProduct;
        const int ChunkBlocks = ScanChunk / InterleavedKernels.BlockRows;
        for (int r0 = 0; r0 < count; r0 += ScanChunk)
        {
            int m = Math.Min(ScanChunk, count - r0);
            int padded = (m + InterleavedKernels.BlockRows - 1) / InterleavedKernels.BlockRows * InterleavedKernels.BlockRows;
            var dots = s.Dots(padded);
            var norms = needNorms ? s.Norms(padded) : default;
            // Exact search must not read quantized values: it goes to the row store instead.
            if (d <= ScanStoreDims && !exact && ScanQuantizer is { } sq)
            {
                int nb = padded / InterleavedKernels.BlockRows;
                var layout = list.Layout;
                var codes = list.Codes.AsSpan(r0 / InterleavedKernels.BlockRows * layout.BlockStride);
                if (needNorms)
                {
                    InterleavedKernels.DotU8(q[..d], sq.Lo, sq.Step, codes, layout, nb, dots, norms);
                }
                else
                {
                    // Inner product: Σ (q_j·step_j)·c_j plus the per-query constant Σ q_j·lo_j.
                    InterleavedKernels.DotU8(scaledQuery, default, default, codes, layout, nb, dots, default);
                    TensorPrimitives.Add(dots, scaledOffset, dots);
                }
            }
            else if (d <= ScanStoreDims && ScanQuantizer is null)
            {
                int nb = padded / InterleavedKernels.BlockRows;
                var layout = list.Layout;
                var blocks = list.Blocks.AsSpan(r0 / InterleavedKernels.BlockRows * layout.BlockStride);
                InterleavedKernels.Dot(q[..d], blocks, layout, Math.Min(nb, ChunkBlocks), dots, norms);
            }
            else
            {
                // Scan deeper than the interleaved store: read the row store's prefixes (strided, slower).
                dots[..m].Clear();
                if (needNorms) norms[..m].Clear();
                var rows = list.Rows!.AsSpan(r0 * Dimension, (m - 1) * Dimension + d);
                RowKernels.DotRowsAccumulate(q[..d], rows, Dimension, dots[..m], needNorms ? norms[..m] : default);
            }
            var keys = dots[..m];
            RerankKey.ToKeys(keys, needNorms ? norms[..m] : default, Metric);
            if (list.Tombstones > 0)
            {
                var ids = list.Ids;
                for (int j = 0; j < m; j++)
                    if (ids[r0 + j] < 0) keys[j] = float.NaN; // NaN never enters a heap (+∞ would while it is not full)
            }
            if (filter is not null)
            {
                var ids = list.Ids;
                for (int j = 0; j < m; j++)
                    if (ids[r0 + j] >= 0 && !filter.Accept(ids[r0 + j])) keys[j] = float.NaN;
            }
            TopK.PushAll(ref heap, keys, candidateBase + r0);
        }
    }

    /// <summary>
    /// <see cref="ScanList"/> for 2–4 queries of a batch at once (8-bit inner-product scan store): the codes are
    /// read once per group of queries; each query's candidates go to its own shortlist heap.
    /// </summary>
    private void ScanListMulti(InvertedList list, ReadOnlySpan<int> queries, float[] scaled, int d, float[] offsets, int candidateBase,
        float[] heapKeys, int[] heapIds, int[] counts, int sl, Scratch s)
    {
        int count = list.Count;
        if (count == 0) return;
        int g = queries.Length;
        var qbuf = s.MultiQuery(4 * d);
        for (int i = 0; i < g; i++)
            scaled.AsSpan(queries[i] * d, d).CopyTo(qbuf.Slice(i * d, d));
        var layout = list.Layout;
        for (int r0 = 0; r0 < count; r0 += ScanChunk)
        {
            int m = Math.Min(ScanChunk, count - r0);
            int nb = (m + InterleavedKernels.BlockRows - 1) / InterleavedKernels.BlockRows;
            int stride = nb * InterleavedKernels.BlockRows;
            var dots = s.Dots(4 * stride);
            InterleavedKernels.DotU8Multi(qbuf, d, g, list.Codes.AsSpan(r0 / InterleavedKernels.BlockRows * layout.BlockStride), layout, nb, dots, stride);
            for (int i = 0; i < g; i++)
            {
                int qi = queries[i];
                var keys = dots.Slice(i * stride, m);
                // key = −(Σ qs·c + Σ q·lo): smaller is better.
                TensorPrimitives.Add(keys, offsets[qi], keys);
                TensorPrimitives.Negate(keys, keys);
                if (list.Tombstones > 0)
                {
                    var ids = list.Ids;
                    for (int j = 0; j < m; j++)
                        if (ids[r0 + j] < 0) keys[j] = float.NaN; // NaN never enters a heap (+∞ would while it is not full)
                }
                var heap = new TopKHeap(heapKeys.AsSpan(qi * sl, sl), heapIds.AsSpan(qi * sl, sl));
                heap.Restore(counts[qi]);
                TopK.PushAll(ref heap, keys, candidateBase + r0);
                counts[qi] = heap.Count;
            }
        }
    }

    /// <summary>The key of one stored row at dim d (rerank): one contiguous read of its full row.</summary>
    private float RowKey(InvertedList list, int pos, ReadOnlySpan<float> q, int d, Scratch s)
    {
        var row = list.RowSpan(pos);
        if (row.IsEmpty)
        {
            var tmp = s.Row(Dimension);
            list.Read(pos, tmp);
            row = tmp;
        }
        return RerankKey.Of(Metric, q, row, d);
    }

    /// <summary>The list holding row slot <paramref name="slot"/>: the last l with starts[l] ≤ slot (starts ascending).</summary>
    private int FindList(int[] starts, int slot)
    {
        int lo = 0, hi = NList - 1;
        while (lo < hi)
        {
            int mid = (lo + hi + 1) >> 1;
            if (starts[mid] <= slot) lo = mid; else hi = mid - 1;
        }
        // Empty lists share their start with the next list: skip forward to the one that holds the slot.
        while (starts[lo + 1] <= slot) lo++;
        return lo;
    }

    private void CheckQuery(ReadOnlySpan<float> query, int index)
    {
        if (query.Length != Dimension)
            throw new ArgumentException($"Query {index} has {query.Length} dims; the index expects {Dimension}.");
        if (!TensorPrimitives.IsFiniteAll(query))
            throw new ArgumentException($"Query {index} contains NaN or infinite components.");
    }

    /// <summary>Per-thread buffers, grown on demand and reused: a warm search allocates nothing.</summary>
    private sealed class Scratch
    {
        private float[] _query = [], _coarse = [], _coarseNorms = [], _row = [], _scaled = [], _multi = [], _probeKeys = [], _dots = [], _norms = [], _shortKeys = [], _stageKeys = [], _stageHeapKeys = [];
        private int[] _probes = [], _shortIds = [], _candList = [], _candPos = [], _stageHeapIds = [], _tmpList = [], _tmpPos = [];

        public Span<float> Query(int n) => ScratchBuffer.Span(ref _query, n);
        public Span<float> CoarseKeys(int n) => ScratchBuffer.Span(ref _coarse, n);
        public Span<float> CoarseNorms(int n) => ScratchBuffer.Span(ref _coarseNorms, n);
        public Span<float> Row(int n) => ScratchBuffer.Span(ref _row, n);
        public Span<float> ScaledQuery(int n) => ScratchBuffer.Span(ref _scaled, n);
        public Span<float> MultiQuery(int n) => ScratchBuffer.Span(ref _multi, n);
        public Span<float> ProbeKeys(int n) => ScratchBuffer.Span(ref _probeKeys, n);
        public Span<int> Probes(int n) => ScratchBuffer.Span(ref _probes, n);
        public Span<float> Dots(int n) => ScratchBuffer.Span(ref _dots, n);
        public Span<float> Norms(int n) => ScratchBuffer.Span(ref _norms, n);
        public Span<float> ShortKeys(int n) => ScratchBuffer.Span(ref _shortKeys, n);
        public Span<int> ShortIds(int n) => ScratchBuffer.Span(ref _shortIds, n);
        public Span<int> CandList(int n) => ScratchBuffer.Span(ref _candList, n);
        public Span<int> CandPos(int n) => ScratchBuffer.Span(ref _candPos, n);
        public Span<float> StageKeys(int n) => ScratchBuffer.Span(ref _stageKeys, n);
        public Span<float> StageHeapKeys(int n) => ScratchBuffer.Span(ref _stageHeapKeys, n);
        public Span<int> StageHeapIds(int n) => ScratchBuffer.Span(ref _stageHeapIds, n);
        public Span<int> TmpList(int n) => ScratchBuffer.Span(ref _tmpList, n);
        public Span<int> TmpPos(int n) => ScratchBuffer.Span(ref _tmpPos, n);
    }
}
