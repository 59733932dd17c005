using System.Numerics.Tensors;
using Adanns.Engine.Quantization;
using Adanns.Kernels;

namespace Adanns.Engine.Indexes;

public sealed partial class IvfIndex
{
    private const int ScanChunk = 1024; // codes per kernel call: bounds the per-thread distance buffer
    private const int ReadChunk = 16;   // queries of a batch whose shortlists are read from an external source in one call

    [ThreadStatic] private static Scratch? t_scratch;

    /// <summary>
    /// Resolves <paramref name="p"/> against the index defaults (once per call). The coarse dim may be lowered to
    /// any d_c' ≤ d_c; the scan dim is the code dim (PQ codes cannot be rescanned at another prefix).
    /// </summary>
    public ResolvedSearch Resolve(SearchParams? p, int k)
    {
        if ((p is null || p.IsUnset) && ComputeProfile?.TunedParams is { } tuned) p = tuned; // a tuned index runs at its target
        if (p is { UsesProfile: true })
        {
            // The profile's points are concrete parameters of this index; resolve the chosen one as usual.
            var concrete = IndexProfiler.BudgetParams(ComputeProfile, p, k, out int point, out bool over);
            return Resolve(concrete, k) with { BudgetPoint = point, OverBudget = over, PredictedRecall = ComputeProfile!.Points[point].Recall };
        }
        if (k <= 0) throw new ArgumentOutOfRangeException(nameof(k), k, "k must be at least 1.");
        int nprobe = p?.NProbe ?? Math.Min(Spec.NProbe ?? IndexSpec.DefaultNProbe, NList);
        int dc = p?.CoarseDim ?? CoarseDim;
        var rerank = p?.Rerank ?? Spec.Rerank;
        int shortlist = p?.Shortlist ?? Math.Max(k, Spec.Shortlist ?? IndexSpec.DefaultShortlist);
        if (nprobe < 1 || nprobe > NList)
            throw new ArgumentOutOfRangeException(nameof(p), nprobe, $"nprobe must be in [1, {NList}] (got {nprobe}).");
        // d_c' ≤ d_c ranks the trained centroids; d_c' > d_c the lists' running means at full D.
        if (dc < 1 || dc > Dimension)
            throw new ArgumentOutOfRangeException(nameof(p), dc, $"Coarse dim must be in [1, {Dimension}] (got {dc}).");
        if (Codec is ListCodec.Pq or ListCodec.RaBitQ && p?.ScanDim is { } ds && ds != CodeDim)
            throw new ArgumentOutOfRangeException(nameof(p), ds, $"This index scans {CodeDim}-dim {(Codec == ListCodec.Pq ? "PQ" : "RaBitQ")} codes; the scan dim cannot be changed (got {ds}).");
        // SQ8 / float scan codes hold a d_s-dim prefix: any shorter prefix scans too (Matryoshka); a longer one reads the
        // resident rows (slower). The default scan dim is the spec's d_s, or the probing dim when the spec names none.
        int scanDim = Codec is ListCodec.Pq or ListCodec.RaBitQ ? CodeDim : p?.ScanDim ?? Spec.ScanDim ?? Math.Min(dc, _rows is null ? CodeDim : Dimension);
        int maxScan = Codec is ListCodec.Pq or ListCodec.RaBitQ || _rows is null ? CodeDim : Dimension;
        if (scanDim < 1 || scanDim > maxScan)
            throw new ArgumentOutOfRangeException(nameof(p), scanDim, maxScan == CodeDim && maxScan < Dimension && Codec is ListCodec.Sq8 or ListCodec.Float
                ? $"Scan dim must be in [1, {CodeDim}] (the scan codes' dims; deeper scans need resident rows) (got {scanDim})."
                : $"Scan dim must be in [1, {maxScan}] (got {scanDim}).");
        SearchParamsChecks.CheckShortlistAndRerank(shortlist, rerank, Dimension, k);
        if (p?.Exact == true)
            return new ResolvedSearch(NList, dc, rerank.Count > 0 ? rerank[^1].Dim : Dimension, k, [], true);
        return new ResolvedSearch(nprobe, dc, scanDim, rerank.Count == 0 ? k : shortlist, rerank, false);
    }

    /// <summary>
    /// The k nearest neighbours of <paramref name="query"/> (D dims, unrotated): k ids (−1 padded) and scores in the
    /// metric's units — exact at the last rerank dim, or the ADC estimate at the code dim when there is no rerank.
    /// Allocates nothing after warm-up.
    /// </summary>
    public void Search(ReadOnlySpan<float> query, int k, Span<long> ids, Span<float> scores, SearchParams? p, out SearchStats stats) =>
        Search(query, k, ids, scores, p, null, out stats);

    /// <summary>
    /// <see cref="Search(ReadOnlySpan{float}, int, Span{long}, Span{float}, SearchParams?, out SearchStats)"/> keeping
    /// only ids that <paramref name="filter"/> accepts: the filter is asked during the code scan (at most once per
    /// scanned live row, only for rows whose ADC key would enter the shortlist) and during exact search.
    /// </summary>
    public void Search(ReadOnlySpan<float> query, int k, Span<long> ids, Span<float> scores, SearchParams? p, IIdFilter? filter, out SearchStats stats)
    {
        var r = Resolve(p, k);
        CheckVector(query, 0);
        if (ids.Length < k || scores.Length < k)
            throw new ArgumentException($"Output spans must hold k = {k} entries.");
        stats = default;
        Interlocked.Increment(ref _searchers);
        try
        {
            SearchOne(query, k, r, ids, scores, filter, t_scratch ??= new Scratch(), ref stats);
        }
        finally
        {
            Interlocked.Decrement(ref _searchers);
        }
    }

    /// <summary>Search with the index defaults.</summary>
    public void Search(ReadOnlySpan<float> query, int k, Span<long> ids, Span<float> scores) =>
        Search(query, k, ids, scores, null, out _);

    /// <summary>Searches n queries (n×D row-major) on <paramref name="threads"/> threads (0 = all cores).</summary>
    public SearchResults SearchBatch(float[] queries, int k, SearchParams? p, int threads, out SearchStats stats) =>
        this.SearchBatch(queries, k, p, null, threads, out stats);

    /// <summary>
    /// Batch search (see <see cref="IVectorIndexReader.SearchBatch"/>): queries are rotated a group at a time, and with
    /// an external vector source the shortlists of a chunk of queries are read in one call.
    /// </summary>
    public void SearchBatch(ReadOnlySpan<float> queries, int k, Span<long> ids, Span<float> scores, SearchParams? p, IIdFilter? filter, int threads,
        out SearchStats stats)
    {
        var r = Resolve(p, k);
        if (queries.Length % Dimension != 0)
            throw new ArgumentException($"Queries ({queries.Length} floats) must be n×{Dimension}.", nameof(queries));
        int n = queries.Length / Dimension;
        if (ids.Length < (long)n * k || scores.Length < (long)n * k)
            throw new ArgumentException($"Output buffers must hold {n}×{k} entries.");
        if (threads < 0) throw new ArgumentOutOfRangeException(nameof(threads), threads, "Threads must be ≥ 0 (0 = all cores).");
        for (int i = 0; i < n; i++) CheckVector(queries.Slice(i * Dimension, Dimension), i);
        var results = new SearchResults(n, k);
        Interlocked.Increment(ref _searchers);
        try
        {
            SearchBatchInto(queries.ToArray(), k, r, filter, threads, results, out stats);
        }
        finally
        {
            Interlocked.Decrement(ref _searchers);
        }
        results.Ids.CopyTo(ids);
        results.Scores.CopyTo(scores);
    }

    private void SearchBatchInto(float[] queries, int k, ResolvedSearch r, IIdFilter? filter, int threads, SearchResults results, out SearchStats stats)
    {
        int n = results.QueryCount;
        if (threads <= 0) threads = Environment.ProcessorCount;
        threads = Math.Max(1, Math.Min(threads, n));
        if (n > 0 && ListMajor(r, filter))
        {
            if (GpuScanStore(r) is { } store)
                SearchBatchGpu(store, queries, n, k, r, threads, results, out stats);
            else
                SearchBatchListMajor(queries, n, k, r, threads, results, out stats);
            return;
        }
        var partial = new SearchStats[threads];
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
        {
            var s = t_scratch ??= new Scratch();
            int a = (int)((long)n * t / threads), b = (int)((long)n * (t + 1) / threads);
            if (_rows is null && !r.Exact && r.Rerank.Count > 0 && filter is null && !BoundDriven(r))
            {
                for (int c = a; c < b; c += ReadChunk)
                    SearchChunk(queries, c, Math.Min(ReadChunk, b - c), k, r, results, s, ref partial[t]);
                return;
            }
            // With a rotation, a few queries at a time go through it as one matrix product: the D×D matrix is read once
            // per group, not once per query (per query it is a D² multiply-add pass that streams the whole matrix).
            int D = Dimension;
            for (int c = a; c < b; c += RotateChunk)
            {
                int m = Math.Min(RotateChunk, b - c);
                ReadOnlySpan<float> group = queries.AsSpan(c * D, m * D);
                if (Rotation is not null && !RotatesQueriesOneByOne)
                {
                    var rotated = s.RotatedQueries(RotateChunk * D)[..(m * D)];
                    Rotation.ApplyBatch(group, rotated);
                    group = rotated;
                }
                // RaBitQ: P·q of the group's (index-space) query prefixes, one blocked product.
                bool rqGroup = RaBitQ is not null && !r.Exact && (Rotation is null || !RotatesQueriesOneByOne);
                if (rqGroup) RaBitQ!.RotateBatch(group, D, m, s.RqRotated(RotateChunk * RaBitQ.Dimension));
                for (int j = 0; j < m; j++)
                {
                    int i = c + j;
                    s.RqRow = rqGroup ? j : -1; // the RaBitQ scan takes this query's P·q from the group
                    SearchOne(group.Slice(j * D, D), k, r, results.Ids.AsSpan(i * k, k), results.Scores.AsSpan(i * k, k), filter, s, ref partial[t],
                        inIndexSpace: Rotation is null || !RotatesQueriesOneByOne);
                }
            }
        });
        stats = default;
        foreach (var ps in partial) stats.Add(ps);
    }

    /// <summary>Multiply-adds of the query rotation (counted in <see cref="SearchStats.Flops"/>: every query pays them).</summary>
    private long RotationFlops => Rotation is null ? 0 : (long)Dimension * Dimension;

    /// <summary>Queries of a batch rotated together (one matrix product per group; see <see cref="SearchBatch(ReadOnlySpan{float}, int, Span{long}, Span{float}, SearchParams?, IIdFilter?, int, out SearchStats)"/>).</summary>
    private const int RotateChunk = 32;

    /// <summary>One query; <paramref name="inIndexSpace"/>: <paramref name="query"/> is already rotated (or needs no rotation).</summary>
    private void SearchOne(ReadOnlySpan<float> query, int k, in ResolvedSearch r, Span<long> outIds, Span<float> outScores, IIdFilter? filter, Scratch s,
        ref SearchStats stats, bool inIndexSpace = false)
    {
        int D = Dimension;
        var q = s.Query(D);
        if (inIndexSpace || Rotation is null) query.CopyTo(q); else Rotation.Apply(query, q);
        stats.Queries++;
        stats.Flops += RotationFlops; // a batch rotates queries in groups before calling here: the same work per query
        if (r.Exact)
        {
            ExactSearch(q, k, r.ScanDim, filter, outIds, outScores, s, ref stats);
            return;
        }
        var shortKeys = s.ShortKeys(r.Shortlist);
        var shortSlots = s.ShortIds(r.Shortlist);
        int found = Scan(q, r, filter, shortKeys, shortSlots, s, ref stats);
        if (BoundDriven(r))
        {
            FinishBounded(q, k, r, shortKeys[..found], shortSlots[..found], outIds, outScores, s, ref stats);
            return;
        }
        FinishShortlist(q, k, r, shortKeys, shortSlots, found, outIds, outScores, s, ref stats);
    }

    /// <summary>
    /// Everything after the scan for one (rotated) query: the 8-bit first stage (<c>Prefix8</c>), the shortlist's rows
    /// read from an external source, the float rerank stages and the output. <paramref name="shortKeys"/> and
    /// <paramref name="shortSlots"/> (scratch, reordered in place) hold <paramref name="found"/> candidates.
    /// </summary>
    private void FinishShortlist(ReadOnlySpan<float> q, int k, in ResolvedSearch r, Span<float> shortKeys, Span<int> shortSlots, int found,
        Span<long> outIds, Span<float> outScores, Scratch s, ref SearchStats stats)
    {
        int D = Dimension;
        int first = 0;
        if (FirstStageReads8Bit(r) && found > 0)
        {
            found = Stage8(q, r, k, shortKeys, shortSlots, found, s, ref stats);
            first = 1;
        }
        ReadOnlySpan<float> rows = default;
        if (_rows is null && r.Rerank.Count > 0 && found > 0)
        {
            InSlotOrder(shortKeys[..found], shortSlots[..found]);
            var buf = s.ExternalRows(found * D);
            ReadExternal(shortSlots[..found], buf, s);
            rows = buf;
        }
        Finish(q, k, r, first, shortKeys[..found], shortSlots[..found], rows, outIds, outScores, s, ref stats);
    }

    /// <summary>
    /// Queries [first, first + m) of a batch on an index with an external vector source: every query's shortlist is
    /// scanned first, then all shortlists are read in one call, then each query is reranked.
    /// </summary>
    private void SearchChunk(float[] queries, int first, int m, int k, in ResolvedSearch r, SearchResults results, Scratch s, ref SearchStats stats)
    {
        int D = Dimension, sl = r.Shortlist;
        var qs = s.ChunkQueries(m * D);
        var keys = s.ChunkKeys(m * sl);
        var slots = s.ChunkSlots(m * sl);
        var counts = s.ChunkCounts(m);
        var shortKeys = s.ShortKeys(sl);
        var shortSlots = s.ShortIds(sl);
        int total = 0, firstStage = FirstStageReads8Bit(r) ? 1 : 0;
        RotateQueries(queries.AsSpan(first * D, m * D), m, qs);
        for (int i = 0; i < m; i++)
        {
            var q = qs.Slice(i * D, D);
            stats.Queries++;
            stats.Flops += RotationFlops;
            int found = Scan(q, r, null, shortKeys, shortSlots, s, ref stats);
            if (firstStage == 1 && found > 0) found = Stage8(q, r, k, shortKeys, shortSlots, found, s, ref stats);
            InSlotOrder(shortKeys[..found], shortSlots[..found]);
            shortKeys[..found].CopyTo(keys.Slice(i * sl, found));
            shortSlots[..found].CopyTo(slots.Slice(total, found)); // packed: one contiguous read below
            counts[i] = found;
            total += found;
        }
        var rows = s.ExternalRows(total * D);
        if (total > 0) ReadExternal(slots[..total], rows, s);
        int at = 0;
        for (int i = 0; i < m; i++)
        {
            int found = counts[i];
            int row = first + i;
            Finish(qs.Slice(i * D, D), k, r, firstStage, keys.Slice(i * sl, found), slots.Slice(at, found), rows.Slice(at * D, found * D),
                results.Ids.AsSpan(row * k, k), results.Scores.AsSpan(row * k, k), s, ref stats);
            at += found;
        }
    }

    /// <summary>
    /// Orders a shortlist whose rows are read from the external source by slot: rerank then meets those rows by
    /// position, and breaking its ties by position is the same as by slot, as with resident rows.
    /// </summary>
    private static void InSlotOrder(Span<float> keys, Span<int> slots) => slots.Sort(keys);

    /// <summary>Reads the full vectors of rerank-store <paramref name="slots"/> from the external source, rotated into index space.</summary>
    private void ReadExternal(ReadOnlySpan<int> slots, Span<float> destination, Scratch s)
    {
        var ids = s.ReadIds(slots.Length);
        for (int j = 0; j < slots.Length; j++) ids[j] = _slotIds[slots[j]];
        if (Rotation is null)
        {
            _source!.Read(ids, destination);
            return;
        }
        var raw = s.RawRows(destination.Length);
        _source!.Read(ids, raw);
        Rotation.ApplyBatch(raw, destination);
    }

    /// <summary>
    /// Coarse ranking and ADC scan of the (rotated) query <paramref name="q"/>: the shortlist, best first, into
    /// <paramref name="shortKeys"/> / <paramref name="shortSlots"/> (rerank-store slots); returns its length.
    /// </summary>
    private int Scan(ReadOnlySpan<float> q, in ResolvedSearch r, IIdFilter? filter, Span<float> shortKeys, Span<int> shortSlots, Scratch s, ref SearchStats stats)
    {
        int d = CodeDim;

        // 1. Coarse: the nprobe nearest centroids at d_c' (a flat index has one list), unordered.
        var probes = s.Probes(r.NProbe);
        int probed;
        if (NList == 1)
        {
            probes[0] = 0;
            probed = 1;
        }
        else
        {
            probed = RankCentroids(q, r.CoarseDim, r.NProbe, probes, s);
            stats.Flops += (long)NList * r.CoarseDim;
        }

        if (Codec == ListCodec.RaBitQ)
        {
            int n = ScanRaBitQ(q, r, filter, probes[..probed], shortKeys, shortSlots, s, ref stats);
            stats.ListsProbed += probed;
            return n;
        }
        if (Codec != ListCodec.Pq)
        {
            int n = ScanStore(q, r, filter, probes[..probed], shortKeys, shortSlots, s, ref stats);
            stats.ListsProbed += probed;
            return n;
        }

        // 2. The query in code space and its lookup table. Inner product / cosine: one table for every list, plus the
        // per-list constant q·c_l for residual codes. L2 with residuals: a table per list for (q − c_l).
        var qc = s.Code(d);
        PrefixInto(q, d, Spherical, qc);
        bool ip = Metric != Metric.L2;
        int m = SubQuantizers, ksub = Quantizer!.Ksub;
        var lut = s.Table(m * ksub);
        bool tableFresh = false;
        if (ip || _residCentroids is null)
        {
            BuildTable(qc, ip, lut, s);
            tableFresh = true;
            stats.Flops += (long)ksub * d;
        }

        // 3. ADC scan of the probed lists into the shortlist (ids are rerank-store slots).
        if (FastScan && _residCentroids is null && filter is null && r.Shortlist <= MaxSharedShortlist)
        {
            int rows = 0;
            foreach (int l in probes[..probed]) rows += FastScanKernels.Blocks(_lists[l].Count) * FastScanKernels.BlockRows;
            if (rows <= MaxSharedRows)
            {
                var table = new FastTable(s, m);
                table.Quantize(lut, ip ? -1f : 1f);
                stats.ListsProbed += probed;
                return ScanFastShared(probes[..probed], rows, table, r.Shortlist, r.Rerank.Count == 0, shortKeys, shortSlots, s, ref stats);
            }
        }
        // A reservoir, not a heap: a deep scan accepts thousands of candidates on the way to its shortlist.
        var shortlist = new TopKReservoir(r.Shortlist, s.Reservoir(2 * r.Shortlist));
        var fast = FastScan ? new FastTable(s, m) : default;
        // Spill: a vector's two copies carry the same code, hence the same key; the first one offered stands for both.
        var seen = Spill ? NewSeen(RowsIn(probes[..probed]), s) : default;
        // The seen bits live in per-thread scratch and must be all clear for the next query, even when a filter throws.
        try
        {
            for (int i = 0; i < probed; i++)
            {
                int l = probes[i];
                var list = _lists[l];
                if (list.Count == 0) continue;
                float offset = 0;
                if (_residCentroids is not null)
                {
                    var c = _residCentroids.AsSpan(l * d, d);
                    if (ip)
                    {
                        offset = VectorMath.Dot(qc, c);
                    }
                    else
                    {
                        var diff = s.Diff(d);
                        TensorPrimitives.Subtract(qc, c, diff);
                        BuildTable(diff, false, lut, s);
                        tableFresh = true;
                        stats.Flops += (long)ksub * d;
                    }
                }
                // Keys, smaller is better, chosen once per list: −(ADC inner product + the residual's centroid term), or
                // the ADC squared L2 without ‖q‖².
                float sign = ip ? -1f : 1f, bias = ip ? -offset : 0f;
                if (FastScan)
                {
                    if (tableFresh) fast.Quantize(lut, sign);
                    tableFresh = false;
                    ScanFast(list, fast, bias, filter, ref shortlist, ref seen, s);
                }
                else
                {
                    ScanCodes(list, lut, sign, bias, filter, ref shortlist, ref seen, s);
                }
                stats.VectorsScanned += list.Count;
                stats.Flops += (long)list.Count * m;
            }
        }
        finally
        {
            seen.Clear();
        }
        stats.ListsProbed += probed;
        // Rerank rescores every candidate and breaks ties by slot, not by shortlist position, so only a search without
        // rerank needs the shortlist sorted.
        return r.Rerank.Count > 0 ? shortlist.TakeUnsorted(shortKeys, shortSlots) : shortlist.SortBestFirst(shortKeys, shortSlots);
    }

    /// <summary>
    /// The scan of SQ8 / float scan codes (the d_s-dim prefixes in interleaved blocks, as the IVF scan store): every
    /// probed list is scored at the query's scan dim with the exact rerank rule on the decoded prefix (so keys and
    /// scores mean what they mean after a rerank stage at that dim), and the best rows enter the shortlist.
    /// </summary>
    private int ScanStore(ReadOnlySpan<float> q, in ResolvedSearch r, IIdFilter? filter, ReadOnlySpan<int> probes, Span<float> shortKeys, Span<int> shortSlots,
        Scratch s, ref SearchStats stats)
    {
        int d = r.ScanDim;
        var qd = q[..d];
        bool needNorms = Metric != Metric.InnerProduct;
        var sq = ScanQuantizer;
        // 8-bit inner product: Σ (q_j·step_j)·c_j plus the per-query constant Σ q_j·lo_j (one FMA per value).
        Span<float> scaled = default;
        float offset = 0;
        if (sq is not null && !needNorms)
        {
            scaled = s.Code(d);
            TensorPrimitives.Multiply(qd, sq.Step.AsSpan(0, d), scaled);
            offset = TensorPrimitives.Dot(qd, sq.Lo.AsSpan(0, d));
        }
        var shortlist = new TopKReservoir(r.Shortlist, s.Reservoir(2 * r.Shortlist));
        var seen = Spill ? NewSeen(RowsIn(probes), s) : default;
        if (d > CodeDim)
        {
            // Deeper than the scan codes: score the resident rows' d-dim prefixes (one row read per scanned vector).
            try
            {
                foreach (int l in probes)
                {
                    var list = _lists[l];
                    int count = list.Count;
                    var slots = list.Slots;
                    float threshold = shortlist.Threshold;
                    for (int j = 0; j < count; j++)
                    {
                        int slot = slots[j];
                        if (slot < 0) continue;
                        float key = RowKey(_rows!.Row(slot), q, d);
                        if (key <= threshold && (filter is null || filter.Accept(_slotIds[slot])) && seen.Add(slot))
                        {
                            shortlist.Push(key, slot);
                            threshold = shortlist.Threshold;
                        }
                    }
                    stats.VectorsScanned += count;
                    stats.Flops += (long)count * d;
                }
            }
            finally
            {
                seen.Clear();
            }
            return r.Rerank.Count > 0 ? shortlist.TakeUnsorted(shortKeys, shortSlots) : shortlist.SortBestFirst(shortKeys, shortSlots);
        }
        var dots = s.Dists(ScanChunk);
        var norms = needNorms ? s.Norms(ScanChunk) : default;
        try
        {
            foreach (int l in probes)
            {
                var list = _lists[l];
                int count = list.Count;
                for (int r0 = 0; r0 < count; r0 += ScanChunk)
                {
                    int n = Math.Min(ScanChunk, count - r0);
                    var keys = ScoreChunk(list, r0, n, qd, scaled, offset, needNorms, dots, norms);
                    var slots = list.Slots.AsSpan(r0, n);
                    float threshold = shortlist.Threshold;
                    for (int j = 0; j < n; j++)
                    {
                        float key = keys[j];
                        if (key <= threshold && slots[j] >= 0 && (filter is null || filter.Accept(_slotIds[slots[j]])) && seen.Add(slots[j]))
                        {
                            shortlist.Push(key, slots[j]);
                            threshold = shortlist.Threshold;
                        }
                    }
                }
                stats.VectorsScanned += count;
                stats.Flops += (long)count * d;
            }
        }
        finally
        {
            seen.Clear(); // per-thread bits must be clear for the next query, even when a filter throws
        }
        return r.Rerank.Count > 0 ? shortlist.TakeUnsorted(shortKeys, shortSlots) : shortlist.SortBestFirst(shortKeys, shortSlots);
    }

    /// <summary>The per-query set of slots already offered to the shortlist (Spill only), for scans of at most <paramref name="rows"/> rows.</summary>
    private SeenSlots NewSeen(int rows, Scratch s) => new(s.Seen((_slotCount + 63) / 64), s.Touched(rows));

    /// <summary>Rows (live and removed) of the listed lists.</summary>
    private int RowsIn(ReadOnlySpan<int> lists)
    {
        int rows = 0;
        foreach (int l in lists) rows += _lists[l].Count;
        return rows;
    }

    /// <summary>
    /// Slots seen by one query's scan, as bits over the rerank store plus the list of bits set, so clearing costs what
    /// setting did (the bits must be all clear between queries). Default (no storage): every slot is new.
    /// </summary>
    private ref struct SeenSlots(Span<ulong> bits, Span<int> touched)
    {
        private readonly Span<ulong> _bits = bits;
        private readonly Span<int> _touched = touched;
        private int _count;

        /// <summary>True (and remembered) the first time <paramref name="slot"/> is offered.</summary>
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
        public bool Add(int slot)
        {
            if (_bits.IsEmpty) return true;
            ref ulong word = ref _bits[slot >> 6];
            ulong bit = 1UL << slot;
            if ((word & bit) != 0) return false;
            word |= bit;
            _touched[_count++] = slot;
            return true;
        }

        /// <summary>Forgets every slot added.</summary>
        public void Clear()
        {
            for (int i = 0; i < _count; i++) _bits[_touched[i] >> 6] = 0;
            _count = 0;
        }
    }

    /// <summary>8-bit ADC scan of one list into the shortlist: key = sign · Σ lut + bias.</summary>
    private void ScanCodes(PqList list, ReadOnlySpan<float> lut, float sign, float bias, IIdFilter? filter, ref TopKReservoir shortlist, ref SeenSlots seen,
        Scratch s)
    {
        int m = SubQuantizers;
        var dist = s.Dists(ScanChunk);
        for (int r0 = 0; r0 < list.Count; r0 += ScanChunk)
        {
            int n = Math.Min(ScanChunk, list.Count - r0);
            var dm = dist[..n];
            PqKernels.Scan(list.Codes.Slice(r0 * m, n * m), m, lut, dm);
            var slots = list.Slots.AsSpan(r0, n);
            float threshold = shortlist.Threshold;
            for (int j = 0; j < n; j++)
            {
                float key = sign * dm[j] + bias;
                if (key <= threshold && slots[j] >= 0 && (filter is null || filter.Accept(_slotIds[slots[j]])) && seen.Add(slots[j]))
                {
                    shortlist.Push(key, slots[j]);
                    threshold = shortlist.Threshold;
                }
            }
        }
    }

    /// <summary>
    /// The 8-bit fast-scan table of one query (or one list, for L2 residuals): keys are estimated as
    /// sum / Scale + Bias from the 16-bit sums of table entries.
    /// </summary>
    private ref struct FastTable(Scratch s, int m)
    {
        public readonly Span<byte> Table = s.FastTable(FastScanKernels.TableBytes(m));
        public readonly Span<float> Keys = s.FastKeys(m * FastScanKernels.Ksub);
        public readonly int M = m;
        public float Scale;
        public float Bias;

        /// <summary>Quantizes sign · lut (keys: smaller is better, so inner products are negated first).</summary>
        public void Quantize(ReadOnlySpan<float> lut, float sign)
        {
            TensorPrimitives.Multiply(lut[..Keys.Length], sign, Keys);
            Scale = FastScanKernels.QuantizeTable(Keys, M, Table, out Bias);
        }
    }

    /// <summary>
    /// 4-bit fast scan of one list into the shortlist. Sums are compared with the shortlist's threshold converted to
    /// table units, 32 rows at a time, so only rows that can enter the shortlist are looked at one by one. Keys are
    /// the quantized estimate (sum / scale + bias + list bias): a shortlist for rerank, not exact ADC distances.
    /// </summary>
    private void ScanFast(PqList list, in FastTable t, float listBias, IIdFilter? filter, ref TopKReservoir shortlist, ref SeenSlots seen, Scratch s)
    {
        int m = t.M, count = list.Count;
        const int ChunkBlocks = ScanChunk / FastScanKernels.BlockRows;
        var sums = s.Sums(ScanChunk);
        float inv = 1f / t.Scale, baseKey = t.Bias + listBias;
        int blocks = FastScanKernels.Blocks(count);
        for (int b0 = 0; b0 < blocks; b0 += ChunkBlocks)
        {
            int nb = Math.Min(ChunkBlocks, blocks - b0);
            FastScanKernels.Scan(list.Codes.Slice(b0 * FastScanKernels.BlockBytes(m)), m, nb, t.Table, sums);
            for (int b = 0; b < nb; b++)
            {
                int row0 = (b0 + b) * FastScanKernels.BlockRows;
                // Sums at or under this bound may beat the current worst kept key; the shortlist has the final word.
                float bound = (shortlist.Threshold - baseKey) * t.Scale;
                if (bound < 0) continue;
                ushort limit = bound >= ushort.MaxValue ? ushort.MaxValue : (ushort)MathF.Ceiling(bound);
                uint mask = FastScanKernels.MaskAtMost(sums.Slice(b * FastScanKernels.BlockRows, FastScanKernels.BlockRows), limit);
                int valid = count - row0;
                if (valid < FastScanKernels.BlockRows) mask &= (1u << valid) - 1; // rows past the end of the list
                while (mask != 0)
                {
                    int j = System.Numerics.BitOperations.TrailingZeroCount(mask);
                    mask &= mask - 1;
                    int slot = list.Slots[row0 + j];
                    if (slot < 0 || (filter is not null && !filter.Accept(_slotIds[slot]))) continue;
                    float key = sums[b * FastScanKernels.BlockRows + j] * inv + baseKey;
                    if (key <= shortlist.Threshold && seen.Add(slot)) shortlist.Push(key, slot);
                }
            }
        }
    }

    /// <summary>Probed rows up to which <see cref="ScanFastShared"/> holds every sum at once (scratch: 10 bytes per row).</summary>
    private const int MaxSharedRows = 1 << 18;

    /// <summary>Shortlists up to which <see cref="ScanFastShared"/> is used (its sample estimates a rank of ≤ 64k).</summary>
    private const int MaxSharedShortlist = 1 << 16;

    /// <summary>
    /// 4-bit fast scan when every probed list shares one table (codes not residual) and nothing filters: sums are then
    /// comparable across lists, so all probed lists are scanned first and the shortlist is chosen once — a threshold
    /// estimated from a sample of the sums, one vectorised pass collecting the rows at or under it, one quickselect —
    /// instead of feeding candidates one by one to a reservoir whose threshold tightens only as it fills.
    /// Keeps exactly the k best (sum, slot) pairs; keys as in <see cref="ScanFast"/>. Returns the shortlist length.
    /// </summary>
    private int ScanFastShared(ReadOnlySpan<int> probes, int rows, in FastTable t, int k, bool sorted, Span<float> shortKeys, Span<int> shortSlots,
        Scratch s, ref SearchStats stats)
    {
        int m = t.M;
        const int B = FastScanKernels.BlockRows;
        var sums = s.Sums(rows);
        int at = 0;
        foreach (int l in probes)
        {
            var list = _lists[l];
            int nb = FastScanKernels.Blocks(list.Count);
            if (nb == 0) continue;
            FastScanKernels.Scan(list.Codes, m, nb, t.Table, sums.Slice(at, nb * B));
            at += nb * B;
            stats.VectorsScanned += list.Count;
            stats.Flops += (long)list.Count * m;
        }

        var words = s.Reservoir(rows + 1);
        var seen = Spill ? NewSeen(rows, s) : default;
        // Spill: both copies of a vector may sit under the limit, so aim at twice the distinct rows needed.
        int count = CollectSums(probes, sums, FastScanKernels.EstimateLimit(sums[..rows], Spill ? 2 * k : k), words, ref seen);
        if (count < k)
        {
            seen.Clear();
            count = CollectSums(probes, sums, ushort.MaxValue, words, ref seen); // the sample guessed low: take every live row
        }
        seen.Clear();
        if (count > k)
        {
            TopKReservoir.SelectInPlace(words[..count], k);
            count = k;
        }
        if (sorted) words[..count].Sort();
        float inv = 1f / t.Scale;
        for (int j = 0; j < count; j++)
        {
            ulong w = words[j];
            shortKeys[j] = (ushort)(w >> 32) * inv + t.Bias;
            shortSlots[j] = (int)(uint)w;
        }
        return count;
    }

    /// <summary>Packs (sum, slot) of every live probed row whose sum is at most <paramref name="limit"/>; returns how many.</summary>
    private int CollectSums(ReadOnlySpan<int> probes, ReadOnlySpan<ushort> sums, ushort limit, Span<ulong> words, ref SeenSlots seen)
    {
        const int B = FastScanKernels.BlockRows;
        int count = 0, at = 0;
        foreach (int l in probes)
        {
            var list = _lists[l];
            int n = list.Count;
            var slots = list.Slots;
            for (int row0 = 0; row0 < n; row0 += B, at += B)
            {
                uint mask = FastScanKernels.MaskAtMost(sums.Slice(at, B), limit);
                int valid = n - row0;
                if (valid < B) mask &= (1u << valid) - 1; // rows past the end of the list
                while (mask != 0)
                {
                    int j = System.Numerics.BitOperations.TrailingZeroCount(mask);
                    mask &= mask - 1;
                    int slot = slots[row0 + j];
                    if (slot >= 0 && seen.Add(slot)) words[count++] = ((ulong)sums[at + j] << 32) | (uint)slot;
                }
            }
        }
        return count;
    }

    /// <summary>The lookup table of a code-space query (rotated by OPQ first when the index has one).</summary>
    private void BuildTable(ReadOnlySpan<float> x, bool innerProduct, Span<float> lut, Scratch s)
    {
        ReadOnlySpan<float> z = x;
        if (Opq is not null)
        {
            var rotated = s.Rotated(CodeDim);
            Opq.Apply(x, rotated);
            z = rotated;
        }
        Quantizer!.ComputeTable(z, innerProduct, lut);
    }

    /// <summary>
    /// The nprobe nearest centroids at dim d, in no particular order (the scan's reservoir keeps the exact top
    /// shortlist whatever order lists come in, so sorting them would buy nothing); returns how many.
    /// </summary>
    private int RankCentroids(ReadOnlySpan<float> q, int d, int nprobe, Span<int> probes, Scratch s)
    {
        if (d > CoarseDim || ProbesMeans) return RankMeans(q, d, nprobe, probes, s);
        // 8-bit centroids (any prefix d ≤ d_c): q·ĉ = Σ (q_j·step_j)·code_j + Σ q_j·lo_j. Built for every index with
        // more than one list, the only ones that rank centroids.
        var sq = _coarseSq!;
        var keys = s.CoarseDots(CoarseBlocks * InterleavedKernels.BlockRows);
        var qs = s.CoarseQuery(d);
        TensorPrimitives.Multiply(q[..d], sq.Step.AsSpan(0, d), qs);
        float offset = VectorMath.Dot(q[..d], sq.Lo.AsSpan(0, d));
        if (_coarsePacked.Length > 0)
        {
            // Int8 kernels (AVX-VNNI / AVX-512BW / AVX2): the scaled query rounded to int8 too (one scale), exact int32
            // sums, one float multiply-add.
            var qi = s.CoarseInt8(d);
            float scale = Int8Kernels.Quantize(qs, qi);
            var sums = s.CoarseSums(keys.Length);
            Int8Kernels.Dot(qi, _coarsePacked, NList, CoarseDim, sums);
            TensorPrimitives.ConvertTruncating<int, float>(sums[..NList], keys[..NList]);
            TensorPrimitives.Multiply(keys[..NList], 1f / scale, keys[..NList]);
        }
        else
        {
            InterleavedKernels.DotU8(qs, default, default, _coarseCodes, CoarseLayout, CoarseBlocks, keys, default);
        }
        keys = keys[..NList];
        TensorPrimitives.Add(keys, offset, keys);
        var terms = RankTerms(d);
        if (Spherical) TensorPrimitives.Multiply(keys, terms, keys);
        else TensorPrimitives.MultiplyAdd(keys, -2f, terms, keys);
        return TopKReservoir.SelectSmallest(keys, nprobe, s.Reservoir(NList + 1), s.ProbeKeys(nprobe), probes);
    }

    /// <summary>
    /// Whether the first rerank stage reads the 8-bit prefix copy (<c>Prefix8@d</c>): a stage at exactly d dims with
    /// a later stage after it, so the scores returned always come from float vectors.
    /// </summary>
    private bool FirstStageReads8Bit(in ResolvedSearch r) => _prefix8 is { } p8 && !r.Exact && r.Rerank.Count >= 2 && r.Rerank[0].Dim == p8.Dim;

    /// <summary>
    /// The first rerank stage on the 8-bit prefix copy: rescores the shortlist (any order) at d, keeps the stage's
    /// best in place — in no particular order; ties at the cut broken by slot as in <see cref="Finish"/> — and returns
    /// how many.
    /// </summary>
    private int Stage8(ReadOnlySpan<float> q, in ResolvedSearch r, int k, Span<float> keys, Span<int> slots, int found, Scratch s, ref SearchStats stats)
    {
        var p8 = _prefix8!;
        var stage = r.Rerank[0];
        int keep = Math.Max(Math.Min(found, stage.Keep ?? found), Math.Min(k, found));
        var qi = s.Prefix8Query(p8.Dim);
        float scale = p8.PrepareQuery(q, s.Prefix8Scaled(p8.Dim), qi, out float offset);
        var estimates = s.Prefix8Keys(found);
        p8.Keys(Metric, qi, scale, offset, slots[..found], s.Prefix8Dots(found), estimates);
        // One quickselect over all of them (a reservoir never full until taken), not a heap: the next stages rescore
        // the survivors and break ties by slot, so their order does not matter.
        var best = new TopKReservoir(keep, s.Reservoir(found + 1));
        for (int j = 0; j < found; j++) best.Push(estimates[j], slots[j]);
        stats.VectorsReranked += found;
        stats.Flops += (long)found * p8.Dim;
        return best.TakeUnsorted(keys, slots);
    }

    /// <summary>
    /// Rerank stages from <paramref name="firstStage"/> on over the shortlist (keys and slots: best first without
    /// rerank, any order with it) and the output. <paramref name="external"/>: the shortlist's full rows in index space
    /// (found × D, in shortlist order) when the index has no resident rows.
    /// </summary>
    private void Finish(ReadOnlySpan<float> q, int k, in ResolvedSearch r, int firstStage, ReadOnlySpan<float> shortKeys, ReadOnlySpan<int> shortSlots,
        ReadOnlySpan<float> external, Span<long> outIds, Span<float> outScores, Scratch s, ref SearchStats stats, bool outputPositions = false)
    {
        int D = Dimension;
        bool ext = _rows is null;
        int found = shortKeys.Length;
        // Candidates: rerank-store slots when rows are resident; positions in the shortlist (rows of `external`) otherwise,
        // a shortlist in slot order (InSlotOrder), so stage ties break by slot either way.
        var cand = s.CandSlots(found);
        if (ext)
        {
            for (int j = 0; j < found; j++) cand[j] = j;
        }
        else
        {
            shortSlots.CopyTo(cand);
        }
        var keys = s.StageKeys(found);
        shortKeys.CopyTo(keys);
        int finalDim = Codec == ListCodec.Pq ? 0 : r.ScanDim; // 0: still ADC keys; scan codes give exact-rule keys at d_s

        for (int st = firstStage; st < r.Rerank.Count && found > 0; st++)
        {
            var stage = r.Rerank[st];
            int keep = st == r.Rerank.Count - 1 ? k : Math.Min(found, stage.Keep ?? found);
            keep = Math.Max(keep, Math.Min(k, found));
            var stageHeap = new TopKHeap(s.StageHeapKeys(keep), s.StageHeapIds(keep));
            // Candidates are scattered over the rerank store: prefetch a few rows ahead (each stage reads dim floats).
            const int Ahead = 6;
            int lines = Math.Min(32, (stage.Dim * sizeof(float) + 63) / 64);
            for (int j = 0; j < found; j++)
            {
                if (!ext && j + Ahead < found) Prefetch.Lines(_rows!.Row(cand[j + Ahead]), lines);
                var row = ext ? external.Slice(cand[j] * D, D) : _rows!.Row(cand[j]);
                stageHeap.Push(RowKey(row, q, stage.Dim), cand[j]);
            }
            stats.VectorsReranked += found;
            stats.Flops += (long)found * stage.Dim;
            found = stageHeap.SortBestFirst();
            stageHeap.Ids[..found].CopyTo(cand);
            stageHeap.Keys[..found].CopyTo(keys);
            finalDim = stage.Dim;
        }

        int n = Math.Min(found, k);
        Span<float> qc = default;
        if (finalDim == 0 && n > 0)
        {
            qc = s.Code(CodeDim);
            PrefixInto(q, CodeDim, Spherical, qc);
        }
        for (int j = 0; j < n; j++)
        {
            outIds[j] = outputPositions ? cand[j] : _slotIds[ext ? shortSlots[cand[j]] : cand[j]]; // positions: see IvfIndex.TwoPhase.cs
            outScores[j] = finalDim > 0 ? ScoreOf(keys[j], q[..finalDim]) : AdcScoreOf(keys[j], qc);
        }
        float worst = Metric.HigherIsBetter() ? float.NegativeInfinity : float.PositiveInfinity;
        for (int j = n; j < k; j++)
        {
            outIds[j] = -1;
            outScores[j] = worst;
        }
    }

    /// <summary>Metric score from an exact rerank key at the prefix <paramref name="qd"/>.Length.</summary>
    private float ScoreOf(float key, ReadOnlySpan<float> qd) => Metric switch
    {
        Metric.L2 => MathF.Max(0f, key + VectorMath.NormSquared(qd)),
        Metric.Cosine => VectorMath.NormSquared(qd) is var qq && qq > 0 ? -key / MathF.Sqrt(qq) : 0f,
        _ => -key,
    };

    /// <summary>Metric score from an ADC key: inner product (cosine: of unit prefixes) or squared L2.</summary>
    private float AdcScoreOf(float key, ReadOnlySpan<float> qc) =>
        Metric == Metric.L2 ? MathF.Max(0f, key + VectorMath.NormSquared(qc)) : -key;

    /// <summary>Exact key (smaller is better) of a stored row at dim d (see <see cref="RerankKey"/>).</summary>
    private float RowKey(ReadOnlySpan<float> row, ReadOnlySpan<float> q, int d) => RerankKey.Of(Metric, q, row, d);

    /// <summary>
    /// Every live vector (that <paramref name="filter"/> accepts) scored at dim d from the rerank store, through the
    /// engine's one exact search (<see cref="ExactScan"/>: equal scores go to the lower external id).
    /// </summary>
    private void ExactSearch(ReadOnlySpan<float> q, int k, int d, IIdFilter? filter, Span<long> outIds, Span<float> outScores, Scratch s, ref SearchStats stats)
    {
        int D = Dimension;
        var scan = new ExactScan(Metric, q[..d], k);
        long reranked = 0;
        if (_rows is not null)
        {
            // Resident rows by slot, a tile at a time (removed slots have id −1 and are skipped).
            for (int s0 = 0; s0 < _slotCount; s0 += ExactScan.Tile)
            {
                int m = Math.Min(ExactScan.Tile, _slotCount - s0);
                reranked += scan.Add(_rows.RowBlock(s0, m), D, _slotIds.AsSpan(s0, m), m, filter);
            }
        }
        else
        {
            // Read the live rows from the external source in chunks.
            var chunk = s.CandSlots(ScanChunk);
            var rows = s.ExternalRows(ScanChunk * D);
            for (int slot = 0; slot < _slotCount;)
            {
                int m = 0;
                for (; slot < _slotCount && m < ScanChunk; slot++)
                    if (_slotIds[slot] >= 0 && (filter is null || filter.Accept(_slotIds[slot]))) chunk[m++] = slot;
                if (m == 0) continue;
                ReadExternal(chunk[..m], rows[..(m * D)], s);
                var ids = s.ReadIds(m);
                for (int j = 0; j < m; j++) ids[j] = _slotIds[chunk[j]];
                reranked += scan.Add(rows[..(m * D)], D, ids, m);
            }
        }
        // Exact mode scans every live vector (from the rerank store) at d: counted as scanned, over all lists.
        stats.VectorsScanned += reranked;
        stats.ListsProbed += NList;
        stats.Flops += reranked * d;
        scan.Finish(outIds[..k], outScores[..k]);
    }

    /// <summary>Per-thread buffers, grown on demand and reused: a warm search allocates nothing.</summary>
    private sealed class Scratch
    {
        private byte[] _fastTable = [];
        private ushort[] _sums = [];
        private float[] _fastKeys = [], _coarseQuery = [];
        private ulong[] _reservoir = [];
        private sbyte[] _coarseInt8 = [];
        private int[] _coarseSums = [];
        private float[] _query = [], _code = [], _rotated = [], _diff = [], _table = [], _dists = [], _coarseDots = [],
            _probeKeys = [], _shortKeys = [], _stageKeys = [], _stageHeapKeys = [], _externalRows = [], _rawRows = [], _chunkQueries = [], _chunkKeys = [];
        private int[] _probes = [], _shortIds = [], _candSlots = [], _stageHeapIds = [], _chunkSlots = [], _chunkCounts = [];
        private long[] _readIds = [];
        private ulong[] _seen = [];
        private float[] _rotatedQueries = [];
        private int[] _touched = [];
        private sbyte[] _prefix8Query = [];
        private float[] _prefix8Scaled = [], _prefix8Keys = [], _norms = [];
        private int[] _prefix8Dots = [];
        private float[] _bounds = [], _candBounds = [], _lower = [];
        private int[] _candSlots2 = [], _rqSums = [], _order = [];
        private RaBitQuantizer.QueryScratch? _rq;

        /// <summary>The RaBitQ query state for <paramref name="q"/> (kept while the thread searches indexes of the same shape).</summary>
        public RaBitQuantizer.QueryScratch Rq(RaBitQuantizer q) =>
            _rq is { } cached && cached.Shape == q.Dimension ? cached : _rq = new RaBitQuantizer.QueryScratch(q);
        public Span<float> Bounds(int n) => ScratchBuffer.Span(ref _bounds, n);
        public Span<float> CandBounds(int n) => ScratchBuffer.Span(ref _candBounds, n);
        public Span<float> Lower(int n) => ScratchBuffer.Span(ref _lower, n);
        public Span<int> CandSlots2(int n) => ScratchBuffer.Span(ref _candSlots2, n);
        public Span<int> RqSums(int n) => ScratchBuffer.Span(ref _rqSums, n);
        public Span<int> Order(int n) => ScratchBuffer.Span(ref _order, n);
        private float[] _rqRotated = [];
        /// <summary>A batch group's RaBitQ-rotated query prefixes (rows of d floats).</summary>
        public Span<float> RqRotated(int n) => ScratchBuffer.Span(ref _rqRotated, n);
        /// <summary>The row of <see cref="RqRotated"/> holding the current query's P·q, or −1 (rotate it in the scan).</summary>
        public int RqRow = -1;
        private float[] _rqTakeKeys = [];
        private int[] _rqTakeSlots = [];
        /// <summary>The RaBitQ scan's reservoir output before second copies are dropped.</summary>
        public Span<float> RqTakeKeys(int n) => ScratchBuffer.Span(ref _rqTakeKeys, n);
        public Span<int> RqTakeSlots(int n) => ScratchBuffer.Span(ref _rqTakeSlots, n);
        private float[] _rqKeys = [], _rqBoundScales = [];
        private int[] _rqListStarts = [];
        /// <summary>The RaBitQ scan's keys of every probed row, its lists' first positions and bound scales.</summary>
        public Span<float> RqKeys(int n) => ScratchBuffer.Span(ref _rqKeys, n);
        public Span<int> RqListStarts(int n) => ScratchBuffer.Span(ref _rqListStarts, n);
        public Span<float> RqBoundScales(int n) => ScratchBuffer.Span(ref _rqBoundScales, n);
        private int[] _readBatch = [];
        public Span<int> ReadBatch(int n) => ScratchBuffer.Span(ref _readBatch, n);
        private int[] _readBatchAt = [];
        public Span<int> ReadBatchAt(int n) => ScratchBuffer.Span(ref _readBatchAt, n);

        public Span<float> Query(int n) => ScratchBuffer.Span(ref _query, n);
        public Span<byte> FastTable(int n) => ScratchBuffer.Span(ref _fastTable, n);
        public Span<float> FastKeys(int n) => ScratchBuffer.Span(ref _fastKeys, n);
        public Span<ushort> Sums(int n) => ScratchBuffer.Span(ref _sums, n);
        public Span<ulong> Reservoir(int n) => ScratchBuffer.Span(ref _reservoir, n);
        public Span<float> Code(int n) => ScratchBuffer.Span(ref _code, n);
        public Span<float> Rotated(int n) => ScratchBuffer.Span(ref _rotated, n);
        public Span<float> CoarseQuery(int n) => ScratchBuffer.Span(ref _coarseQuery, n);
        public Span<sbyte> CoarseInt8(int n) => ScratchBuffer.Span(ref _coarseInt8, n);
        public Span<int> CoarseSums(int n) => ScratchBuffer.Span(ref _coarseSums, n);
        public Span<float> Diff(int n) => ScratchBuffer.Span(ref _diff, n);
        public Span<float> Table(int n) => ScratchBuffer.Span(ref _table, n);
        public Span<float> Dists(int n) => ScratchBuffer.Span(ref _dists, n);
        public Span<float> Norms(int n) => ScratchBuffer.Span(ref _norms, n);
        public Span<float> CoarseDots(int n) => ScratchBuffer.Span(ref _coarseDots, n);
        private float[] _coarseNorms = [];
        public Span<float> CoarseNorms(int n) => ScratchBuffer.Span(ref _coarseNorms, n);
        public Span<float> ProbeKeys(int n) => ScratchBuffer.Span(ref _probeKeys, n);
        public Span<int> Probes(int n) => ScratchBuffer.Span(ref _probes, n);
        public Span<float> ShortKeys(int n) => ScratchBuffer.Span(ref _shortKeys, n);
        public Span<int> ShortIds(int n) => ScratchBuffer.Span(ref _shortIds, n);
        public Span<int> CandSlots(int n) => ScratchBuffer.Span(ref _candSlots, n);
        public Span<float> StageKeys(int n) => ScratchBuffer.Span(ref _stageKeys, n);
        public Span<float> StageHeapKeys(int n) => ScratchBuffer.Span(ref _stageHeapKeys, n);
        public Span<int> StageHeapIds(int n) => ScratchBuffer.Span(ref _stageHeapIds, n);
        public Span<float> ExternalRows(int n) => ScratchBuffer.Span(ref _externalRows, n);
        public Span<float> RawRows(int n) => ScratchBuffer.Span(ref _rawRows, n);
        public Span<long> ReadIds(int n) => ScratchBuffer.Span(ref _readIds, n);
        public Span<float> RotatedQueries(int n) => ScratchBuffer.Span(ref _rotatedQueries, n);
        public Span<ulong> Seen(int n)
        {
            // Grown with zeros: the bits are clear between queries, and so are new words.
            if (_seen.Length < n) Array.Resize(ref _seen, Math.Max(n, _seen.Length * 2));
            return _seen.AsSpan(0, n);
        }
        public Span<int> Touched(int n) => ScratchBuffer.Span(ref _touched, n);
        public Span<sbyte> Prefix8Query(int n) => ScratchBuffer.Span(ref _prefix8Query, n);
        public Span<float> Prefix8Scaled(int n) => ScratchBuffer.Span(ref _prefix8Scaled, n);
        public Span<int> Prefix8Dots(int n) => ScratchBuffer.Span(ref _prefix8Dots, n);
        public Span<float> Prefix8Keys(int n) => ScratchBuffer.Span(ref _prefix8Keys, n);
        public Span<float> ChunkQueries(int n) => ScratchBuffer.Span(ref _chunkQueries, n);
        public Span<float> ChunkKeys(int n) => ScratchBuffer.Span(ref _chunkKeys, n);
        public Span<int> ChunkSlots(int n) => ScratchBuffer.Span(ref _chunkSlots, n);
        public Span<int> ChunkCounts(int n) => ScratchBuffer.Span(ref _chunkCounts, n);
    }
}
