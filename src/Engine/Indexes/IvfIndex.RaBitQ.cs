using Adanns.Engine.Quantization;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Adanns.Kernels;

namespace Adanns.Engine.Indexes;

/// <summary>The RaBitQ list codec's scan and its bound-driven rerank stage.</summary>
public sealed partial class IvfIndex
{
    /// <summary>
    /// RaBitQ codes: whether a first rerank stage at the code dim is bound-driven (the default; the shortlist is then an
    /// upper limit). False reranks the whole fixed shortlist, as every other codec does (for comparisons). Not saved.
    /// </summary>
    public bool BoundDrivenRerank { get; set; } = true;

    /// <summary>
    /// Whether the first rerank stage is bound-driven: RaBitQ codes and a first stage at exactly the code dim (not read
    /// from the 8-bit prefix copy). Each estimate then has a bound on the very key the stage computes, so candidates
    /// whose lower bound cannot beat the stage's current worst kept key are never reranked.
    /// </summary>
    private bool BoundDriven(in ResolvedSearch r) =>
        BoundDrivenRerank && Codec == ListCodec.RaBitQ && !r.Exact && r.Rerank.Count > 0 && r.Rerank[0].Dim == CodeDim && !FirstStageReads8Bit(r);

    /// <summary>
    /// The RaBitQ scan: the query prefix is rotated and turned into 8-bit tables once (<see cref="RaBitQuantizer.PrepareQuery"/>);
    /// per probed list only scalar terms change (d operations for ⟨q, c⟩); every code's table sum comes from
    /// <see cref="RaBitQKernels.Scan"/>, and its estimated key (rerank-rule units at the code dim) enters the shortlist.
    /// With a bound-driven stage next, each kept candidate's error bound is written to the scratch's <c>Bounds</c> in
    /// shortlist order.
    /// </summary>
    private int ScanRaBitQ(ReadOnlySpan<float> q, in ResolvedSearch r, IIdFilter? filter, ReadOnlySpan<int> probes, Span<float> shortKeys, Span<int> shortSlots,
        Scratch s, ref SearchStats stats)
    {
        var rq = RaBitQ!;
        int d = CodeDim;
        bool bounded = BoundDriven(r);
        var qs = s.Rq(rq);
        // The raw query prefix (cosine keys are −q·x̂, as the rerank rule); a batch rotated its group's prefixes together.
        int row = s.RqRow;
        s.RqRow = -1;
        rq.PrepareQuery(q, qs, row >= 0 ? s.RqRotated((row + 1) * d).Slice(row * d, d) : default);
        stats.Flops += rq.RotationOperations + (long)rq.SubCodes * RaBitQKernels.Entries;
        // Spill: room for both copies of every candidate, so that the shortlist holds r.Shortlist distinct vectors. A
        // vector's two copies have their own codes (residuals to their own lists), hence their own keys. Both may enter
        // the shortlist and the better one is kept afterwards (BestDistinct).
        int room = Spill ? 2 * r.Shortlist : r.Shortlist;
        var takeKeys = Spill ? s.RqTakeKeys(room) : shortKeys;
        var takeSlots = Spill ? s.RqTakeSlots(room) : shortSlots;
        var bounds = bounded ? s.Bounds(room) : default;
        int found = filter is null
            ? ScanRaBitQAll(q, probes, room, bounded, takeKeys, takeSlots, bounds, qs, s, ref stats)
            : ScanRaBitQFiltered(q, probes, filter, room, bounded, takeKeys, takeSlots, bounds, qs, s, ref stats);
        if (Spill)
        {
            // Sorted by key (ties by slot), second copies dropped: the shortlist comes out in rank order.
            return BestDistinct(takeKeys[..found], takeSlots[..found], bounded ? bounds[..found] : default, r.Shortlist, shortKeys, shortSlots, s);
        }
        if (!bounded && r.Rerank.Count == 0) shortKeys[..found].Sort(shortSlots[..found]);
        return found;
    }

    /// <summary>
    /// The scan without a filter, in two passes: every probed row's estimated key is written to one array (removed
    /// rows as NaN, never kept), 16 (or 8) rows at a time from the table sums and the block's factor rows, with no
    /// per-row branch; then the <paramref name="room"/> smallest are chosen at once (<see cref="TopKReservoir.SelectSmallest"/>:
    /// a sampled threshold, one vectorised collect, one quickselect). Feeding a reservoir row by row instead cost as much
    /// as the table scan itself (a profile: 16% of samples in the loop's pushes and branches, 6% in its selections).
    /// Writes the chosen keys, their slots and (<paramref name="bounded"/>) their bounds; returns how many.
    /// </summary>
    private int ScanRaBitQAll(ReadOnlySpan<float> q, ReadOnlySpan<int> probes, int room, bool bounded, Span<float> takeKeys, Span<int> takeSlots,
        Span<float> bounds, RaBitQuantizer.QueryScratch qs, Scratch s, ref SearchStats stats)
    {
        var rq = RaBitQ!;
        int d = CodeDim, bits = rq.Bits;
        bool l2 = Metric == Metric.L2;
        int rows = RowsIn(probes);
        int step = Vector512.IsHardwareAccelerated ? 16 : 8;
        // Keys of every probed row, list after list; a list's last vector of keys may run up to step − 1 past its rows
        // (the next list overwrites them; the last list's land in the padding).
        var keys = s.RqKeys(rows + 16);
        var starts = s.RqListStarts(probes.Length + 1);
        var boundScales = s.RqBoundScales(probes.Length);
        var sums = s.RqSums(ScanChunk);
        float scale = qs.Scale, offset = qs.Offset;
        PrefetchCentre(rq, d, probes, 0);
        ref float kk0 = ref MemoryMarshal.GetReference(keys);
        ref int s0 = ref MemoryMarshal.GetReference(sums);
        // Lists count their tombstones; should a count ever miss one (a removed row chosen below), the pass is redone
        // checking every slot.
        bool trustTombstones = true;
    Pass:
        int at = 0;
        for (int pi = 0; pi < probes.Length; pi++)
        {
            starts[pi] = at;
            int l = probes[pi];
            PrefetchCentre(rq, d, probes, pi + 1);
            var list = _lists[l];
            int count = list.Count;
            if (count == 0) continue;
            rq.PrepareList(q, l, l2, qs);
            boundScales[pi] = qs.BoundScale;
            stats.Flops += d;
            var codes = list.Codes;
            var factors = list.Floats;
            int stride = list.RqStride, blockFloats = stride / sizeof(float);
            float constant = qs.ListConstant;
            ref float f0 = ref MemoryMarshal.GetReference(factors);
            ref int slot0 = ref MemoryMarshal.GetArrayDataReference(list.Slots);
            bool checkSlots = list.Tombstones > 0 || !trustTombstones;
            for (int r0 = 0; r0 < count; r0 += ScanChunk)
            {
                int n = Math.Min(ScanChunk, count - r0);
                RaBitQKernels.Scan(codes.Slice(r0 / RaBitQKernels.BlockRows * stride), stride, bits, d, RaBitQKernels.Blocks(n), qs.Table, sums);
                int factorsAt = list.RqFactorIndex(r0);
                ref float dst = ref Unsafe.Add(ref kk0, at + r0);
                ref int slots = ref Unsafe.Add(ref slot0, r0);
                // Key = constant + A′ + S·(scale·sum + offset) from the block's factor rows (A′, S, E: 32 floats each).
                for (int row0 = 0; row0 < n; row0 += step)
                {
                    nuint fa = (nuint)(factorsAt + row0 / RaBitQKernels.BlockRows * blockFloats + row0 % RaBitQKernels.BlockRows);
                    // Removed rows' keys become NaN; a list without tombstones skips the slot reads (one more stream).
                    // A partial vector's slots are checked one by one (the array may end there).
                    bool whole = n - row0 >= step;
                    if (Vector512.IsHardwareAccelerated)
                    {
                        var sum = Vector512.ConvertToSingle(Vector512.LoadUnsafe(ref s0, (nuint)row0));
                        var key = Vector512.Create(constant) + Vector512.LoadUnsafe(ref f0, fa)
                            + Vector512.LoadUnsafe(ref f0, fa + RaBitQKernels.BlockRows) * (Vector512.Create(scale) * sum + Vector512.Create(offset));
                        if (whole && checkSlots)
                            key = Vector512.ConditionalSelect(Vector512.LessThan(Vector512.LoadUnsafe(ref slots, (nuint)row0), Vector512<int>.Zero).AsSingle(),
                                Vector512.Create(float.NaN), key);
                        key.StoreUnsafe(ref dst, (nuint)row0);
                    }
                    else
                    {
                        var sum = Vector256.ConvertToSingle(Vector256.LoadUnsafe(ref s0, (nuint)row0));
                        var key = Vector256.Create(constant) + Vector256.LoadUnsafe(ref f0, fa)
                            + Vector256.LoadUnsafe(ref f0, fa + RaBitQKernels.BlockRows) * (Vector256.Create(scale) * sum + Vector256.Create(offset));
                        if (whole && checkSlots)
                            key = Vector256.ConditionalSelect(Vector256.LessThan(Vector256.LoadUnsafe(ref slots, (nuint)row0), Vector256<int>.Zero).AsSingle(),
                                Vector256.Create(float.NaN), key);
                        key.StoreUnsafe(ref dst, (nuint)row0);
                    }
                    if (!whole && checkSlots)
                        for (int j = row0; j < n; j++)
                            if (Unsafe.Add(ref slots, j) < 0) Unsafe.Add(ref dst, j) = float.NaN;
                }
            }
            at += count;
            if (!trustTombstones) continue;
            stats.VectorsScanned += count;
            stats.Flops += (long)count * bits * rq.SubCodes; // counted as 4-bit lookups, like fast-scan PQ's sub-quantizers
        }
        starts[probes.Length] = at;
        // The room best keys (ids: positions in the key array), then each position's slot and bound.
        int found = TopKReservoir.SelectSmallest(keys[..rows], room, s.Reservoir(rows + 1), takeKeys, takeSlots);
        float noise = qs.Noise;
        for (int j = 0; j < found; j++)
        {
            int p = takeSlots[j];
            int pi = ListOf(starts, probes.Length, p);
            var list = _lists[probes[pi]];
            int row = p - starts[pi];
            takeSlots[j] = list.Slots[row];
            if (takeSlots[j] < 0)
            {
                trustTombstones = false;
                goto Pass;
            }
            if (bounded)
            {
                int fi = list.RqFactorIndex(row);
                bounds[j] = boundScales[pi] * list.Floats[fi + 2 * RaBitQKernels.BlockRows] + noise * MathF.Abs(list.Floats[fi + RaBitQKernels.BlockRows]);
            }
        }
        return found;
    }

    /// <summary>The probe whose rows [starts[pi], starts[pi + 1]) hold position <paramref name="p"/> (empty lists share a start).</summary>
    private static int ListOf(ReadOnlySpan<int> starts, int lists, int p)
    {
        int lo = 0, hi = lists - 1; // the last pi with starts[pi] <= p
        while (lo < hi)
        {
            int mid = (lo + hi + 1) >> 1;
            if (starts[mid] <= p) lo = mid; else hi = mid - 1;
        }
        return lo;
    }

    /// <summary>
    /// The scan with a filter: rows under the shortlist's running threshold are looked at one by one (the filter
    /// is asked only for them) and fed to a reservoir. Writes as <see cref="ScanRaBitQAll"/>.
    /// </summary>
    private int ScanRaBitQFiltered(ReadOnlySpan<float> q, ReadOnlySpan<int> probes, IIdFilter filter, int room, bool bounded, Span<float> takeKeys,
        Span<int> takeSlots, Span<float> bounds, RaBitQuantizer.QueryScratch qs, Scratch s, ref SearchStats stats)
    {
        var rq = RaBitQ!;
        int d = CodeDim, bits = rq.Bits;
        bool l2 = Metric == Metric.L2;
        // Bound-driven: the reservoir holds candidate numbers; their slots and bounds wait in the scratch.
        int rows = RowsIn(probes);
        var candSlots = bounded ? s.CandSlots2(rows) : default;
        var candBounds = bounded ? s.CandBounds(rows) : default;
        int cands = 0;
        var shortlist = new TopKReservoir(room, s.Reservoir(2 * room));
        var sums = s.RqSums(ScanChunk);
        float scale = qs.Scale, offset = qs.Offset, noise = qs.Noise;
        int step = Vector512.IsHardwareAccelerated ? 16 : 8;
        Span<float> keyRow = stackalloc float[16];
        {
            PrefetchCentre(rq, d, probes, 0);
            for (int pi = 0; pi < probes.Length; pi++)
            {
                int l = probes[pi];
                PrefetchCentre(rq, d, probes, pi + 1);
                var list = _lists[l];
                int count = list.Count;
                if (count == 0) continue;
                rq.PrepareList(q, l, l2, qs);
                stats.Flops += d;
                var codes = list.Codes;
                var factors = list.Floats;
                int stride = list.RqStride;
                float constant = qs.ListConstant, boundScale = qs.BoundScale;
                // Key = constant + A′ + S·(scale·sum + offset), 16 (or 8) rows at a time from the block's factor rows (A′, S,
                // E: 32 floats each), compared with the shortlist's threshold; only rows under it are looked at one by one.
                ref float f0 = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(factors);
                ref int s0 = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(sums);
                ref float k0 = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(keyRow);
                for (int r0 = 0; r0 < count; r0 += ScanChunk)
                {
                    int n = Math.Min(ScanChunk, count - r0);
                    int nb = RaBitQKernels.Blocks(n);
                    RaBitQKernels.Scan(codes.Slice(r0 / RaBitQKernels.BlockRows * stride), stride, bits, d, nb, qs.Table, sums);
                    var slots = list.Slots.AsSpan(r0, n);
                    int factorsAt = list.RqFactorIndex(r0), blockFloats = stride / sizeof(float);
                    for (int row0 = 0; row0 < n; row0 += step)
                    {
                        nuint at = (nuint)(factorsAt + row0 / RaBitQKernels.BlockRows * blockFloats + row0 % RaBitQKernels.BlockRows);
                        uint mask;
                        if (Vector512.IsHardwareAccelerated)
                        {
                            var sum = Vector512.ConvertToSingle(Vector512.LoadUnsafe(ref s0, (nuint)row0));
                            var keys = Vector512.Create(constant) + Vector512.LoadUnsafe(ref f0, at)
                                + Vector512.LoadUnsafe(ref f0, at + RaBitQKernels.BlockRows) * (Vector512.Create(scale) * sum + Vector512.Create(offset));
                            keys.StoreUnsafe(ref k0);
                            mask = (uint)Vector512.LessThanOrEqual(keys, Vector512.Create(shortlist.Threshold)).ExtractMostSignificantBits();
                        }
                        else
                        {
                            var sum = Vector256.ConvertToSingle(Vector256.LoadUnsafe(ref s0, (nuint)row0));
                            var keys = Vector256.Create(constant) + Vector256.LoadUnsafe(ref f0, at)
                                + Vector256.LoadUnsafe(ref f0, at + RaBitQKernels.BlockRows) * (Vector256.Create(scale) * sum + Vector256.Create(offset));
                            keys.StoreUnsafe(ref k0);
                            mask = Vector256.LessThanOrEqual(keys, Vector256.Create(shortlist.Threshold)).ExtractMostSignificantBits();
                        }
                        int valid = n - row0;
                        if (valid < step) mask &= (1u << valid) - 1; // rows past the end of the list
                        while (mask != 0)
                        {
                            int j = System.Numerics.BitOperations.TrailingZeroCount(mask);
                            mask &= mask - 1;
                            float key = keyRow[j];
                            if (key > shortlist.Threshold) continue;
                            int slot = slots[row0 + j];
                            if (slot < 0 || (filter is not null && !filter.Accept(_slotIds[slot]))) continue;
                            if (bounded)
                            {
                                candSlots[cands] = slot;
                                candBounds[cands] = boundScale * factors[(int)at + 2 * RaBitQKernels.BlockRows + j]
                                    + noise * MathF.Abs(factors[(int)at + RaBitQKernels.BlockRows + j]);
                                shortlist.Push(key, cands++);
                            }
                            else
                            {
                                shortlist.Push(key, slot);
                            }
                        }
                    }
                }
                stats.VectorsScanned += count;
                stats.Flops += (long)count * bits * rq.SubCodes; // counted as 4-bit lookups, like fast-scan PQ's sub-quantizers
            }
        }
        int found = shortlist.TakeUnsorted(takeKeys, takeSlots);
        if (bounded)
        {
            for (int j = 0; j < found; j++)
            {
                int c = takeSlots[j];
                takeSlots[j] = candSlots[c];
                bounds[j] = candBounds[c];
            }
        }
        return found;
    }

    /// <summary>
    /// The <paramref name="limit"/> best distinct slots of <paramref name="keys"/> / <paramref name="slots"/> (Spill: a
    /// vector's two copies may both be there; the one with the smaller key counts, then the smaller bound), best first
    /// (by key, ties by slot), into <paramref name="outKeys"/> / <paramref name="outSlots"/>; their bounds move to the
    /// front of <paramref name="bounds"/> in that order. One sort of packed (key, position) words and one pass with the
    /// seen-slot bits; returns how many.
    /// </summary>
    private int BestDistinct(ReadOnlySpan<float> keys, ReadOnlySpan<int> slots, Span<float> bounds, int limit, Span<float> outKeys, Span<int> outSlots, Scratch s)
    {
        int n = keys.Length;
        var words = s.Reservoir(n);
        for (int j = 0; j < n; j++) words[j] = ((ulong)OrderedBits(keys[j]) << 32) | (uint)j;
        words.Sort();
        // Equal keys (rare): order their run by slot, then bound, so that neither the lists' order nor the rows' order
        // inside them (a saved and loaded index orders them differently) decides.
        for (int t = 1; t < n; t++)
        {
            if ((words[t] >> 32) != (words[t - 1] >> 32)) continue;
            int end = t + 1;
            while (end < n && (words[end] >> 32) == (words[t] >> 32)) end++;
            for (int u = t; u < end; u++)
                for (int v = u; v > t - 1 && After((int)(uint)words[v - 1], (int)(uint)words[v], slots, bounds); v--)
                    (words[v - 1], words[v]) = (words[v], words[v - 1]);
            t = end - 1;
        }
        var seen = NewSeen(n, s);
        var b2 = bounds.IsEmpty ? default : s.Lower(Math.Min(n, limit));
        int m = 0;
        for (int t = 0; t < n && m < limit; t++)
        {
            int j = (int)(uint)words[t];
            if (!seen.Add(slots[j])) continue;
            outKeys[m] = keys[j];
            outSlots[m] = slots[j];
            if (!bounds.IsEmpty) b2[m] = bounds[j];
            m++;
        }
        seen.Clear();
        if (!bounds.IsEmpty) b2[..m].CopyTo(bounds);
        return m;
    }

    /// <summary>Entry a ranks after entry b among equal keys: by slot, then bound.</summary>
    private static bool After(int a, int b, ReadOnlySpan<int> slots, ReadOnlySpan<float> bounds) =>
        slots[a] > slots[b] || (slots[a] == slots[b] && !bounds.IsEmpty && bounds[a] > bounds[b]);

    /// <summary>A float's bits as an unsigned integer with the same order (−0 folded into +0; not for NaN).</summary>
    private static uint OrderedBits(float key)
    {
        uint bits = BitConverter.SingleToUInt32Bits(key + 0f);
        return (bits & 0x8000_0000u) != 0 ? ~bits : bits | 0x8000_0000u;
    }

    /// <summary>
    /// The bound-driven first rerank stage (at the code dim) and everything after it. Candidates are reranked in order
    /// of their estimate; one is skipped when its lower bound (estimate − bound) exceeds the stage's current worst kept
    /// exact key, and the stage stops once no remaining candidate's lower bound can (a suffix minimum). Whenever every
    /// bound holds and the true top keys were among the scanned candidates, the stage keeps exactly the exact best.
    /// </summary>
    private void FinishBounded(ReadOnlySpan<float> q, int k, in ResolvedSearch r, Span<float> shortKeys, Span<int> shortSlots,
        Span<long> outIds, Span<float> outScores, Scratch s, ref SearchStats stats)
    {
        int D = Dimension, d = CodeDim, found = shortKeys.Length;
        var stage = r.Rerank[0];
        bool last = r.Rerank.Count == 1;
        int keep = last ? k : Math.Max(Math.Min(found, stage.Keep ?? found), Math.Min(k, found));
        keep = Math.Max(1, keep);
        var bounds = s.Bounds(found);
        // Order by estimate (ties by slot), carrying each candidate's position for its bound.
        var order = s.Order(found);
        for (int j = 0; j < found; j++) order[j] = j;
        var estimates = s.StageKeys(found);
        shortKeys.CopyTo(estimates);
        SortByKeyThenSlot(estimates, order, shortSlots);
        // Lower bounds in that order, and their suffix minima (overwriting the sorted estimates, no longer needed).
        var lower = s.Lower(found);
        var suffixMin = estimates;
        float min = float.PositiveInfinity;
        for (int j = found - 1; j >= 0; j--)
        {
            float lb = estimates[j] - bounds[order[j]];
            lower[j] = lb;
            min = MathF.Min(min, lb);
            suffixMin[j] = min;
        }
        var heap = new TopKHeap(s.StageHeapKeys(keep), s.StageHeapIds(keep));
        long reranked = 0;
        int lines = Math.Min(32, (d * sizeof(float) + 63) / 64);
        const int Batch = 16; // external sources: candidates read per call
        var batch = s.ReadBatch(Batch + 3);
        var batchAt = s.ReadBatchAt(Batch);
        var rows = _rows is null ? s.ExternalRows((Batch + 3) * D) : default;
        for (int j = 0; j < found;)
        {
            float worst = heap.Count == keep ? heap.Threshold : float.PositiveInfinity;
            if (suffixMin[j] > worst) break; // no remaining candidate can enter
            if (lower[j] > worst)
            {
                j++;
                continue;
            }
            if (_rows is not null)
            {
                // Candidates are scattered over the rerank store: prefetch a few rows ahead in estimate order.
                const int Ahead = 6;
                if (j + Ahead < found) Prefetch.Lines(_rows.Row(shortSlots[order[j + Ahead]]), lines);
                int slot = shortSlots[order[j]];
                heap.Push(RowKey(_rows.Row(slot), q, d), slot);
                reranked++;
                j++;
                continue;
            }
            int m = 0;
            for (int t = j; t < found && m < Batch; t++)
                if (lower[t] <= worst)
                {
                    batchAt[m] = t;
                    batch[m++] = shortSlots[order[t]];
                }
            // Read whole quads: a rotated read goes through the blocked product, whose 4-row kernel rounds like the
            // rotation of the resident rows (a remainder row would round differently); the padding rows are not scored.
            int padded = (m + 3) & ~3;
            for (int t = m; t < padded; t++) batch[t] = batch[m - 1];
            ReadExternal(batch[..padded], rows[..(padded * D)], s);
            // Score them as the resident path would, one at a time against the current worst key, so both sources
            // rerank the same candidates (a failed bound must not make them differ).
            bool stop = false;
            for (int t = 0; t < m; t++)
            {
                float now = heap.Count == keep ? heap.Threshold : float.PositiveInfinity;
                if (suffixMin[batchAt[t]] > now)
                {
                    stop = true;
                    break;
                }
                if (lower[batchAt[t]] > now) continue;
                heap.Push(RowKey(rows.Slice(t * D, D), q, d), batch[t]);
                reranked++;
            }
            if (stop) break;
            j = batchAt[m - 1] + 1;
        }
        stats.VectorsReranked += reranked;
        stats.Flops += reranked * d;
        int kept = heap.SortBestFirst();
        var keys = shortKeys[..kept];
        var slots = shortSlots[..kept];
        heap.Keys[..kept].CopyTo(keys);
        heap.Ids[..kept].CopyTo(slots);
        if (last)
        {
            for (int j = 0; j < k; j++)
            {
                outIds[j] = j < kept ? _slotIds[slots[j]] : -1;
                outScores[j] = j < kept ? ScoreOf(keys[j], q[..d]) : Metric.HigherIsBetter() ? float.NegativeInfinity : float.PositiveInfinity;
            }
            return;
        }
        ReadOnlySpan<float> external = default;
        if (_rows is null && kept > 0)
        {
            InSlotOrder(keys, slots);
            int padded = (kept + 3) & ~3; // whole quads, as above
            var read = s.ReadBatch(padded);
            slots.CopyTo(read);
            for (int t = kept; t < padded; t++) read[t] = slots[kept - 1];
            var buf = s.ExternalRows(padded * D);
            ReadExternal(read, buf, s);
            external = buf[..(kept * D)];
        }
        Finish(q, k, r, 1, keys, slots, external, outIds, outScores, s, ref stats);
    }

    /// <summary>Sorts keys ascending, ties by slot, carrying the candidate positions in <paramref name="order"/>.</summary>
    private static void SortByKeyThenSlot(Span<float> keys, Span<int> order, ReadOnlySpan<int> slots)
    {
        // Insertion sort on small shortlists, else a sort of packed (key, position) words (ties then by position; the
        // shortlist came out of the reservoir in a deterministic order, so results are reproducible either way).
        int n = keys.Length;
        bool sorted = true; // the Spill shortlist arrives in rank order (BestDistinct)
        for (int i = 1; i < n && sorted; i++)
            sorted = keys[i - 1] < keys[i] || (keys[i - 1] == keys[i] && slots[order[i - 1]] < slots[order[i]]);
        if (sorted) return;
        if (n <= 32)
        {
            for (int i = 1; i < n; i++)
            {
                float key = keys[i];
                int o = order[i];
                int j = i - 1;
                while (j >= 0 && (keys[j] > key || (keys[j] == key && slots[order[j]] > slots[o])))
                {
                    keys[j + 1] = keys[j];
                    order[j + 1] = order[j];
                    j--;
                }
                keys[j + 1] = key;
                order[j + 1] = o;
            }
            return;
        }
        keys.Sort(order);
    }

    /// <summary>
    /// Fetches the centre of probe <paramref name="pi"/> (<paramref name="d"/> floats, read by PrepareList) into cache, if there is such a
    /// probe: called for the next list while this one is scanned, since the centres (lists × d) are not cache-resident
    /// and a miss per line of each probed centre showed in profiles.
    /// </summary>
    private static void PrefetchCentre(RaBitQuantizer rq, int d, ReadOnlySpan<int> probes, int pi)
    {
        if (pi >= probes.Length) return;
        Prefetch.Lines(rq.Centers.Slice(probes[pi] * d, d), Math.Min(32, (d * sizeof(float) + 63) / 64));
    }
}
