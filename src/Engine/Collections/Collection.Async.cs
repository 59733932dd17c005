using System.Diagnostics;
using Adanns.Engine.Indexes;
using Adanns.Engine.Storage;

namespace Adanns.Engine.Collections;

public sealed partial class Collection
{
    /// <summary>Queries answered per trip through the index's batch path (and between cancellation checks).</summary>
    internal const int BatchChunk = 256;

    /// <summary>Reads in flight at once in <see cref="GetManyAsync"/>.</summary>
    private const int GetWindow = 64;

    /// <summary>
    /// The record with <paramref name="id"/> (vector as stored, payload), or null. The record store is read
    /// asynchronously: an older record on disk completes through asynchronous I/O without blocking a thread.
    /// </summary>
    public async ValueTask<VectorRecord?> GetAsync(RecordId id, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        for (int attempt = 0; ; attempt++)
        {
            if (LookUpKey(id) is not long key) return null;
            var value = await ReadRecordAsync(key).WaitAsync(cancellationToken).ConfigureAwait(false);
            if (value is not null) return Decode(value);
            // Replaced or deleted between the lookup and the read: look the id up again.
            if (LookUpKey(id) == key && attempt >= 2)
                throw new AdannsException(AdannsErrorCode.Corrupt, $"Collection \"{Name}\": record {id} (key {key}) is missing from the record store.");
        }
    }

    /// <summary>
    /// The records with <paramref name="ids"/>, in the same order; null where an id is not stored. Reads go out
    /// asynchronously, up to 64 at a time; cancellation stops between windows (and abandons the window in flight).
    /// </summary>
    public async Task<IReadOnlyList<VectorRecord?>> GetManyAsync(IReadOnlyList<RecordId> ids, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var result = new VectorRecord?[ids.Count];
        var window = new Task<VectorRecord?>[Math.Min(GetWindow, ids.Count)];
        for (int start = 0; start < ids.Count; start += GetWindow)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int n = Math.Min(GetWindow, ids.Count - start);
            for (int i = 0; i < n; i++) window[i] = GetAsync(ids[start + i], CancellationToken.None).AsTask();
            await Task.WhenAll(window.AsSpan(0, n)).WaitAsync(cancellationToken).ConfigureAwait(false);
            for (int i = 0; i < n; i++) result[start + i] = window[i].Result;
        }
        return result;
    }

    private long? LookUpKey(RecordId id)
    {
        _lock.EnterReadLock();
        try
        {
            ThrowIfClosed();
            return _keys.TryGetValue(id, out long key) ? key : null;
        }
        finally { _lock.ExitReadLock(); }
    }

    private async Task<byte[]?> ReadRecordAsync(long key)
    {
        try
        {
            return await _store.ReadAsync(key).ConfigureAwait(false);
        }
        catch (ObjectDisposedException e)
        {
            throw new AdannsException(AdannsErrorCode.Closed, $"Collection \"{Name}\" is closed.", e);
        }
    }

    private VectorRecord Decode(byte[] value)
    {
        var (rid, payload, vector) = RecordCodec.Decode(value, Dimension, $"Collection \"{Name}\" record store");
        return new VectorRecord(rid, vector, payload);
    }

    /// <summary>
    /// <see cref="SearchWithReport(ReadOnlySpan{float}, int, SearchParams?, Filter?, bool, out SearchReport)"/> as a task returning hits and report,
    /// searched on the thread pool: every collection's index reads its rerank vectors from the record store on disk, so
    /// the caller's thread never waits on that I/O.
    /// </summary>
    public ValueTask<SearchResult> SearchAsync(ReadOnlyMemory<float> query, int k, SearchParams? parameters = null, Filter? filter = null,
        bool withPayload = false, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (!ReadsFromDisk) return new ValueTask<SearchResult>(SearchNow(query.Span, k, parameters, filter, withPayload));
        return new ValueTask<SearchResult>(Task.Run(() => SearchNow(query.Span, k, parameters, filter, withPayload), cancellationToken));
    }

    private bool ReadsFromDisk => true; // every trained index reads its rerank vectors from the record store

    private SearchResult SearchNow(ReadOnlySpan<float> query, int k, SearchParams? parameters, Filter? filter, bool withPayload)
    {
        var hits = SearchWithReport(query, k, parameters, filter, withPayload, out var report);
        return new SearchResult(hits, report);
    }

    /// <summary>
    /// One <see cref="SearchResult"/> per query, in query order, run on the thread pool. Without a filter, once the
    /// index is trained, queries go through the index's batch path (all cores) in chunks of 256; with a filter, 32
    /// queries at a time share one evaluation of the filter and one read lock (each taking its own path); before
    /// training each query runs as by <see cref="SearchAsync"/>. Cancellation is checked between chunks (and between
    /// filtered queries), and the read lock is released between chunks so writes are not held up.
    /// </summary>
    /// <exception cref="AdannsException">Bad k or query (the message names the query's position); nothing is searched.</exception>
    public Task<IReadOnlyList<SearchResult>> SearchBatchAsync(IReadOnlyList<ReadOnlyMemory<float>> queries, int k, SearchParams? parameters = null,
        Filter? filter = null, bool withPayload = false, CancellationToken cancellationToken = default) =>
        SearchBatchAsync(queries, k, parameters, filter, withPayload, withVectors: false, cancellationToken);

    /// <summary>
    /// <see cref="SearchBatchAsync(IReadOnlyList{ReadOnlyMemory{float}}, int, SearchParams?, Filter?, bool, CancellationToken)"/>;
    /// with <paramref name="withVectors"/> each hit carries its stored vector, read after its chunk's search from the same
    /// snapshot (the chunk's read epoch keeps a record deleted meanwhile readable).
    /// </summary>
    public async Task<IReadOnlyList<SearchResult>> SearchBatchAsync(IReadOnlyList<ReadOnlyMemory<float>> queries, int k, SearchParams? parameters,
        Filter? filter, bool withPayload, bool withVectors, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(queries);
        if (k < 1 || k > 100_000) throw new AdannsException(AdannsErrorCode.InvalidQuery, $"k must be in [1, 100000] (got {k}).");
        int D = Dimension;
        for (int i = 0; i < queries.Count; i++)
        {
            var q = queries[i].Span;
            if (q.Length != D)
                throw new AdannsException(AdannsErrorCode.WrongDimension, $"Collection \"{Name}\": query {i} has {q.Length} dims; expected {D}.", i);
            if (!System.Numerics.Tensors.TensorPrimitives.IsFiniteAll(q))
                throw new AdannsException(AdannsErrorCode.NonFiniteVector, $"Collection \"{Name}\": query {i} has NaN or infinite components.", i);
        }
        var results = new SearchResult[queries.Count];
        for (int start = 0; start < queries.Count; start += BatchChunk)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int s = start, n = Math.Min(BatchChunk, queries.Count - start);
            await Task.Run(() => SearchChunk(queries, s, n, k, parameters, filter, withPayload, withVectors, results, cancellationToken), cancellationToken).ConfigureAwait(false);
        }
        return results;
    }

    private void SearchChunk(IReadOnlyList<ReadOnlyMemory<float>> queries, int start, int n, int k, SearchParams? parameters, Filter? filter,
        bool withPayload, bool withVectors, SearchResult[] results, CancellationToken ct)
    {
        if (filter is null && TrySearchChunkThroughIndex(queries, start, n, k, parameters, withPayload, withVectors, results)) return;
        if (filter is not null)
        {
            for (int s = start; s < start + n; s += FilteredChunk)
                SearchFilteredChunk(queries, s, Math.Min(FilteredChunk, start + n - s), k, parameters, filter, withPayload, withVectors, results, ct);
            return;
        }
        for (int i = start; i < start + n; i++)
        {
            ct.ThrowIfCancellationRequested();
            var hits = SearchWithReport(queries[i].Span, k, parameters, filter, withPayload, withVectors, out var report);
            results[i] = new SearchResult(hits, report);
        }
    }

    /// <summary>Filtered queries searched under one read lock with one key set (the lock is released between these).</summary>
    internal const int FilteredChunk = 32;

    /// <summary>
    /// Filtered queries of a batch: the filter's key set is computed once for <paramref name="n"/> queries (it costs
    /// O(matching records), per query before), under one read lock, so they all see one snapshot; each query then takes
    /// its own path (exact or index, by the filter's selectivity), and PQ shortlists and vectors are read after the lock
    /// under one read epoch.
    /// </summary>
    private void SearchFilteredChunk(IReadOnlyList<ReadOnlyMemory<float>> queries, int start, int n, int k, SearchParams? parameters, Filter filter,
        bool withPayload, bool withVectors, SearchResult[] results, CancellationToken ct)
    {
        long started = Stopwatch.GetTimestamp();
        var chosen = new (SearchHit[] Hits, OutsideRead? Outside, long[]? VectorKeys, SearchPath Path, ResolvedSearch? Used, SearchStats Stats)[n];
        int epoch = -1;
        _lock.EnterReadLock();
        try
        {
            ThrowIfClosed();
            using var bits = MatchingKeys(filter);
            bool readsAfter = false;
            for (int i = 0; i < n; i++)
            {
                ct.ThrowIfCancellationRequested();
                var stats = new SearchStats();
                var hits = SearchLocked(queries[start + i].Span, k, parameters, bits, withPayload, withVectors, ref stats, out var path, out var used,
                    out var outside, out var vectorKeys);
                chosen[i] = (hits, outside, vectorKeys, path, used, stats);
                readsAfter |= outside is not null || vectorKeys is not null;
            }
            // What is read after the lock stays in the store until the chunk leaves its read epoch.
            if (readsAfter) epoch = EnterReadEpoch();
        }
        finally { _lock.ExitReadLock(); }
        try
        {
            for (int i = 0; i < n; i++)
            {
                var (hits, outside, vectorKeys, path, used, stats) = chosen[i];
                if (epoch >= 0) hits = CompleteAfterLock(hits, outside, vectorKeys, queries[start + i].Span, k, withPayload, withVectors, ref stats);
                results[start + i] = new SearchResult(hits, new SearchReport(path, used, stats));
            }
        }
        finally
        {
            if (epoch >= 0) ExitReadEpoch(epoch);
        }
        double seconds = Stopwatch.GetElapsedTime(started).TotalSeconds / n;
        for (int i = 0; i < n; i++) _metrics.Searched(Name, chosen[i].Path, 1, seconds);
    }

    /// <summary>The chunk through the index's batch path; false when there is no trained index yet.</summary>
    private bool TrySearchChunkThroughIndex(IReadOnlyList<ReadOnlyMemory<float>> queries, int start, int n, int k, SearchParams? parameters,
        bool withPayload, bool withVectors, SearchResult[] results)
    {
        long started = Stopwatch.GetTimestamp();
        int D = Dimension;
        var packed = new float[n * D];
        for (int i = 0; i < n; i++) queries[start + i].Span.CopyTo(packed.AsSpan(i * D, D));
        OutsideRead[]? outside = null;
        var twoPhaseStats = new SearchStats();
        ResolvedSearch twoPhaseUsed = default;
        long[][]? vectorKeys = null; // with_vectors: each query's kept hits' record keys, read after the lock
        int vectorEpoch = -1;
        _lock.EnterReadLock();
        try
        {
            ThrowIfClosed();
            if (_index is not { } index) return false;
            var used = Resolve(parameters, k);
            if (TwoPhaseIndex(used) is { } pq)
            {
                // A PQ index reranks from the record store: every query's shortlist is chosen under the lock, the vectors
                // are read after it (see Collection.OutsideLock.cs).
                outside = new OutsideRead[n];
                for (int i = 0; i < n; i++) outside[i] = Shortlist(pq, packed.AsSpan(i * D, D), k, used, null, ref twoPhaseStats);
                twoPhaseUsed = used;
                outside[0].Epoch = EnterReadEpoch();
                return true;
            }
            var found = index.SearchBatch(packed, k, parameters, null, 0, out var stats);
            if (withVectors) vectorKeys = new long[n][];
            var report = new SearchReport(SearchPath.Index, used, stats);
            for (int i = 0; i < n; i++)
            {
                var ids = found.Ids.AsSpan(i * k, k);
                var scores = found.Scores.AsSpan(i * k, k);
                var hits = new List<SearchHit>(k);
                var live = new List<long>(k);
                for (int j = 0; j < k; j++)
                {
                    // Unfilled slots are negative; a key deleted since the index saw it is skipped, as in Search.
                    if (ids[j] < 0 || !_meta.TryGetValue(ids[j], out var m)) continue;
                    hits.Add(new SearchHit(m.Id, scores[j], withPayload ? m.Payload : null));
                    live.Add(ids[j]);
                }
                results[start + i] = new SearchResult(hits, report);
                if (vectorKeys is not null) vectorKeys[i] = [.. live];
            }
            // The hits' vectors are read after the lock; the read epoch keeps their records in the store until then.
            if (vectorKeys is not null) vectorEpoch = EnterReadEpoch();
            else _metrics.Searched(Name, SearchPath.Index, n, Stopwatch.GetElapsedTime(started).TotalSeconds);
            return true;
        }
        finally
        {
            _lock.ExitReadLock();
            if (vectorEpoch >= 0)
            {
                try
                {
                    for (int i = 0; i < n; i++)
                    {
                        var r = results[start + i];
                        results[start + i] = r with { Hits = AttachVectors([.. r.Hits], vectorKeys![i]) };
                    }
                }
                finally { ExitReadEpoch(vectorEpoch); }
                _metrics.Searched(Name, SearchPath.Index, n, Stopwatch.GetElapsedTime(started).TotalSeconds);
            }
            if (outside is { } chosen && chosen[0].Epoch >= 0) CompleteChunkOutside(chosen, packed, k, withPayload, withVectors, twoPhaseUsed, twoPhaseStats, start, results, started);
        }
    }

    /// <summary>Phase two of a chunk of PQ searches, with no lock held; the chunk's read epoch is in the first entry.</summary>
    private void CompleteChunkOutside(OutsideRead[] outside, float[] packed, int k, bool withPayload, bool withVectors, ResolvedSearch used,
        SearchStats stats, int start, SearchResult[] results, long started)
    {
        int D = Dimension;
        var hits = new SearchHit[outside.Length][];
        try
        {
            for (int i = 0; i < outside.Length; i++)
            {
                hits[i] = CompleteOutside(outside[i], packed.AsSpan(i * D, D), k, withPayload, withVectors, ref stats);
                Array.Sort(hits[i], SearchHitOrder.For(Metric)); // the engine's tie rule, as in a single search
            }
        }
        finally { ExitReadEpoch(outside[0].Epoch); }
        var report = new SearchReport(SearchPath.Index, used, stats);
        for (int i = 0; i < outside.Length; i++) results[start + i] = new SearchResult(hits[i], report);
        _metrics.Searched(Name, SearchPath.Index, outside.Length, Stopwatch.GetElapsedTime(started).TotalSeconds);
    }

    /// <summary>For each of <paramref name="ids"/>, whether a record with it is live (one consistent snapshot).</summary>
    public Task<IReadOnlyList<bool>> ExistAsync(IReadOnlyList<RecordId> ids, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(ids);
        cancellationToken.ThrowIfCancellationRequested();
        var found = new bool[ids.Count];
        _lock.EnterReadLock();
        try
        {
            ThrowIfClosed();
            for (int i = 0; i < found.Length; i++) found[i] = _keys.ContainsKey(ids[i]);
        }
        finally { _lock.ExitReadLock(); }
        return Task.FromResult<IReadOnlyList<bool>>(found);
    }

    /// <summary>Live records, or those matching <paramref name="filter"/> (a consistent snapshot).</summary>
    public Task<long> CountAsync(Filter? filter = null, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return Task.FromResult(filter is null ? Count : FindIds(filter).Count);
    }

    /// <summary>Configuration, counters and resident memory now.</summary>
    public Task<CollectionDescription> DescribeAsync(CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return Task.FromResult(new CollectionDescription(Name, Dimension, Metric, Config.IndexSpec, GetStats(), GetMemory(), Config.Embedder, GetTuning()));
    }

    /// <summary>
    /// The trained index's pipeline, default search parameters and measured cost/recall frontier (what a recall target
    /// or a budget chooses from); null while the collection is untrained.
    /// </summary>
    public IndexTuning? GetTuning()
    {
        _lock.EnterReadLock();
        try
        {
            if (_index is not { } index) return null;
            ResolvedSearch? defaults;
            try
            {
                defaults = index.Resolve(null, IndexTuning.DefaultsK);
            }
            catch (ArgumentException)
            {
                defaults = null; // an index too small for k = 10 at its defaults
            }
            return new IndexTuning(index.Spec.ToString(), defaults, index.ComputeProfile);
        }
        finally { _lock.ExitReadLock(); }
    }
}
