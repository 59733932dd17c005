using Adanns.Engine.Indexes;
using Adanns.Kernels;

namespace Adanns.Engine.Collections;

/// <summary>
/// Record-store reads outside the collection lock: a search chooses its candidates under the read lock (a PQ
/// collection's shortlist, the matches of its exact filtered search, or the hits whose vectors were asked for), then
/// reads their vectors with no lock held, so a read that waits on disk never queues a writer — and every reader behind
/// that writer — behind it. What it read is still the snapshot it chose from: it holds a read epoch while reading, and
/// dead records leave the store only after every reader of an earlier epoch has finished (<see cref="WaitForEarlierReaders"/>).
/// </summary>
public sealed partial class Collection
{
    private long _readEpoch;
    private readonly long[] _epochReaders = new long[2];
    private long _outsideMissing;

    /// <summary>Candidates chosen under the lock whose record was missing when read outside it (diagnostics; the epochs keep it 0).</summary>
    internal long OutsideReadsMissing => Interlocked.Read(ref _outsideMissing);

    /// <summary>Joins the current read epoch (caller holds the read lock); returns the slot to leave.</summary>
    private int EnterReadEpoch()
    {
        while (true)
        {
            long e = Volatile.Read(ref _readEpoch);
            int slot = (int)(e & 1);
            Interlocked.Increment(ref _epochReaders[slot]);
            if (Volatile.Read(ref _readEpoch) == e) return slot;
            Interlocked.Decrement(ref _epochReaders[slot]); // the epoch moved on meanwhile: join the new one
        }
    }

    private void ExitReadEpoch(int slot) => Interlocked.Decrement(ref _epochReaders[slot]);

    /// <summary>
    /// Starts a new read epoch and waits until every reader of the previous one has finished (maintenance thread, before
    /// it deletes dead records; one caller at a time). A reader that joins later chose its candidates after those
    /// records had left the collection's maps (they were removed before the checkpoint was planned), so none reads them.
    /// </summary>
    private void WaitForEarlierReaders()
    {
        long e = Interlocked.Increment(ref _readEpoch);
        int previous = (int)((e - 1) & 1);
        var spin = new SpinWait();
        while (Volatile.Read(ref _epochReaders[previous]) > 0) spin.SpinOnce(sleep1Threshold: 20);
    }

    /// <summary>Waits until no reader is reading outside the lock (caller holds the write lock, so none can join).</summary>
    private void WaitForAllReaders()
    {
        var spin = new SpinWait();
        while (Volatile.Read(ref _epochReaders[0]) + Volatile.Read(ref _epochReaders[1]) > 0) spin.SpinOnce(sleep1Threshold: 20);
    }

    /// <summary>What a search chose under the lock and completes outside it.</summary>
    private sealed class OutsideRead(long[] keys, RecordMeta[] metas, int count)
    {
        public long[] Keys { get; } = keys;
        public RecordMeta[] Metas { get; } = metas;
        public int Count { get; set; } = count;
        public int Epoch { get; set; } = -1;
        public IvfIndex? Pq { get; init; }
        public ResolvedSearch Used { get; init; }
        public float[]? CandidateKeys { get; init; }
        public int FirstStage { get; init; }

        /// <summary>An exact filtered search: <see cref="Keys"/> are every match (ascending), scored at full D after the lock.</summary>
        public bool Exact { get; init; }
    }

    /// <summary>
    /// Phase one of an exact filtered search over an index that reads its full vectors from the record store (a PQ
    /// index): every matching record the index holds, and its metadata, chosen under the read lock; null when the index
    /// keeps its vectors in memory (then the scan runs under the lock, reading no disk). Caller holds the read lock.
    /// </summary>
    private OutsideRead? ExactFilteredOutside(KeyBits filter)
    {
        if (_index is not IvfIndex { VectorSource: not null } index) return null;
        var matched = new List<long>((int)filter.Count);
        filter.CopyKeysTo(matched); // ascending: positions order the candidates as their keys do (the scan's tie rule)
        var keys = new long[matched.Count];
        var metas = new RecordMeta[matched.Count];
        int n = 0;
        foreach (long key in matched)
        {
            if (!index.Contains(key) || !_meta.TryGetValue(key, out var m)) continue;
            keys[n] = key;
            metas[n++] = m;
        }
        return new OutsideRead(keys, metas, n) { Exact = true };
    }

    /// <summary>
    /// Phase two of an exact filtered search, with no lock held (the caller holds its read epoch): reads the matches'
    /// vectors in batches and keeps the exact top k at full D, the engine's tie rule applied as under the lock (room past
    /// k, widened while the last kept score still ties with the k-th, then ordered by <see cref="SearchHitOrder"/>).
    /// </summary>
    private SearchHit[] CompleteExactOutside(OutsideRead read, ReadOnlySpan<float> query, int k, bool withPayload, bool withVectors, ref SearchStats stats)
    {
        int D = Dimension, count = read.Count;
        if (count == 0) return [];
        int extra = 1, n;
        long[] positions;
        float[] scores;
        while (true)
        {
            int capacity = (int)Math.Min(count, (long)k + extra);
            positions = new long[capacity];
            scores = new float[capacity];
            n = ScanMatches(read, query, capacity, positions, scores);
            stats.VectorsScanned += count;
            stats.Flops += (long)count * D;
            if (n < k + extra || scores[k - 1] != scores[k + extra - 1]) break;
            extra = (int)Math.Min(int.MaxValue - k, Math.Max(32L, 4L * extra));
        }
        var hits = new SearchHit[n];
        for (int i = 0; i < n; i++) hits[i] = new SearchHit(read.Metas[positions[i]].Id, scores[i], null);
        Array.Sort(hits, positions, 0, n, SearchHitOrder.For(Metric)); // the positions move with their hits
        n = Math.Min(n, k);
        var keys = new long[n];
        for (int i = 0; i < n; i++) keys[i] = read.Keys[positions[i]];
        var result = new SearchHit[n];
        for (int i = 0; i < n; i++)
        {
            var m = read.Metas[positions[i]];
            result[i] = new SearchHit(m.Id, hits[i].Score, withPayload ? m.Payload : null);
        }
        return withVectors && n > 0 ? AttachVectors(result, keys) : result;
    }

    /// <summary>The exact top <paramref name="capacity"/> of <paramref name="read"/>'s matches (positions into it, best first); returns how many.</summary>
    private int ScanMatches(OutsideRead read, ReadOnlySpan<float> query, int capacity, long[] positions, float[] scores)
    {
        const int Batch = 256;
        BeforeOutsideRead?.Invoke();
        int D = Dimension, count = read.Count;
        var rows = new float[Batch * D];
        var ids = new long[Batch];
        var found = new bool[Batch];
        var scan = new ExactScan(Metric, query, capacity); // stored vectors are in the caller's space
        for (int s = 0; s < count; s += Batch)
        {
            int m = Math.Min(Batch, count - s);
            int got = _vectors.ReadAvailable(read.Keys.AsSpan(s, m), rows.AsSpan(0, m * D), found);
            int w = 0;
            for (int j = 0; j < m; j++)
            {
                if (!found[j]) continue; // the epochs keep this from happening (counted below)
                if (w != j) rows.AsSpan(j * D, D).CopyTo(rows.AsSpan(w * D, D));
                ids[w++] = s + j;
            }
            if (got != m) Interlocked.Add(ref _outsideMissing, m - got);
            if (w > 0) scan.Add(rows, D, ids.AsSpan(0, w), w);
        }
        return scan.Finish(positions.AsSpan(0, capacity), scores.AsSpan(0, capacity));
    }

    /// <summary>The PQ index when a search resolved to <paramref name="used"/> reranks rows from the record store (two-phase), else null. Caller holds the read lock.</summary>
    private IvfIndex? TwoPhaseIndex(in ResolvedSearch used) => _index is IvfIndex pq && pq.RerankReadsSource(used) ? pq : null;

    /// <summary>Phase one of a PQ search under the read lock: the shortlist and its records' metadata.</summary>
    private OutsideRead Shortlist(IvfIndex pq, ReadOnlySpan<float> query, int k, in ResolvedSearch used, IIdFilter? filter, ref SearchStats stats)
    {
        var keys = new long[used.Shortlist];
        var candidateKeys = new float[used.Shortlist];
        int found = pq.SearchShortlist(query, k, used, filter, keys, candidateKeys, out int firstStage, out var s);
        stats.Add(s);
        var metas = new RecordMeta[found];
        int n = 0;
        for (int j = 0; j < found; j++)
        {
            if (!_meta.TryGetValue(keys[j], out var m)) continue; // deleted since the index saw it
            keys[n] = keys[j];
            candidateKeys[n] = candidateKeys[j];
            metas[n++] = m;
        }
        return new OutsideRead(keys, metas, n) { Pq = pq, Used = used, CandidateKeys = candidateKeys, FirstStage = firstStage };
    }

    /// <summary>Test seam: runs when a search starts its reads outside the lock (no lock held).</summary>
    internal Action? BeforeOutsideRead { get; set; }

    /// <summary>Completes a PQ shortlist with no lock held (the caller holds its read epoch): reads its vectors, reranks, best first.</summary>
    private SearchHit[] CompleteOutside(OutsideRead read, ReadOnlySpan<float> query, int k, bool withPayload, bool withVectors, ref SearchStats stats)
    {
        if (read.Exact) return CompleteExactOutside(read, query, k, withPayload, withVectors, ref stats);
        BeforeOutsideRead?.Invoke();
        int D = Dimension;
        var rows = ReadLive(read, out int n);
        var positions = new long[k];
        var scores = new float[k];
        read.Pq!.RerankShortlist(query, k, read.Used, read.FirstStage, read.CandidateKeys.AsSpan(0, n), rows.AsSpan(0, n * D), positions, scores, ref stats);
        var hits = new List<SearchHit>(k);
        for (int j = 0; j < k && positions[j] >= 0; j++)
        {
            int at = (int)positions[j];
            var m = read.Metas[at];
            hits.Add(new SearchHit(m.Id, scores[j], withPayload ? m.Payload : null) { Vector = withVectors ? rows.AsMemory(at * D, D) : default });
        }
        return [.. hits];
    }

    /// <summary>
    /// The stored vectors of <paramref name="hits"/> (record keys <paramref name="keys"/>), read with no lock held (the
    /// caller holds its read epoch). A hit whose record is missing is dropped (the epochs keep that from happening).
    /// </summary>
    private SearchHit[] AttachVectors(SearchHit[] hits, long[] keys)
    {
        BeforeOutsideRead?.Invoke();
        int D = Dimension;
        var rows = new float[(long)keys.Length * D];
        var found = new bool[keys.Length];
        int got = _vectors.ReadAvailable(keys, rows, found);
        if (got != keys.Length) Interlocked.Add(ref _outsideMissing, keys.Length - got);
        var result = new List<SearchHit>(got);
        for (int i = 0; i < hits.Length; i++)
            if (found[i]) result.Add(hits[i] with { Vector = rows.AsMemory(i * D, D) });
        return [.. result];
    }

    /// <summary>
    /// Reads the vectors of <paramref name="read"/>'s candidates (in order) and drops any whose record is missing, keeping
    /// the order (the epochs keep that from happening; counted in <see cref="OutsideReadsMissing"/>).
    /// </summary>
    private float[] ReadLive(OutsideRead read, out int n)
    {
        int D = Dimension, count = read.Count;
        var rows = new float[(long)count * D];
        if (count == 0)
        {
            n = 0;
            return rows;
        }
        var found = new bool[count];
        int got = _vectors.ReadAvailable(read.Keys.AsSpan(0, count), rows, found);
        if (got == count)
        {
            n = count;
            return rows;
        }
        Interlocked.Add(ref _outsideMissing, count - got);
        n = 0;
        for (int j = 0; j < count; j++)
        {
            if (!found[j]) continue;
            if (n != j)
            {
                rows.AsSpan(j * D, D).CopyTo(rows.AsSpan(n * D, D));
                read.Keys[n] = read.Keys[j];
                read.Metas[n] = read.Metas[j];
                if (read.CandidateKeys is { } ck) ck[n] = ck[j];
            }
            n++;
        }
        read.Count = n;
        return rows;
    }
}
