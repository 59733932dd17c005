using System.Collections.Concurrent;
using System.Diagnostics;
using Adanns.Engine.Indexes;
using Adanns.Engine.Storage;
using Adanns.Kernels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Adanns.Engine.Collections;

/// <summary>
/// A named, durable set of records (id, vector, payload) with an adaptive IVF index. Obtain one from
/// <see cref="AdannsDatabase"/>. All members are thread-safe.
/// </summary>
/// <remarks>
/// <para><b>Writes.</b> A write is validated (dimension, finite components, duplicate ids, payload size), appended
/// to the write-ahead log as one entry (a batch is atomic), and acknowledged only after that entry is committed to
/// disk and applied in memory, so an acknowledged write is durable and visible to every later search and get. One
/// background applier thread commits everything pending at once (group commit), then applies the group in log
/// order under a short exclusive lock; searches hold a shared lock, so they never see a half-applied write.</para>
/// <para><b>Index.</b> Until <see cref="CollectionConfig.TrainThreshold"/> live vectors exist, searches are exact.
/// Then the IVF index is trained in the background while searches continue exactly; writes made meanwhile are
/// journaled and replayed into the new index before it is swapped in. The index is retrained the same way when
/// the collection has doubled since the last training or its lists grow unbalanced. Deletes are tombstones,
/// dropped by a background retrain once they pass a fifth of the index. With a spec of the codec pipeline (PQ/OPQ codes, Spill or Prefix8) the index is a <see cref="IvfIndex"/> holding codes only: rerank
/// reads the shortlist's full vectors from the record store in one batch per query, so the collection can be larger
/// than memory (see <see cref="GetMemory"/>).</para>
/// <para><b>Durability.</b> Checkpoints (record store + index snapshot + manifest) run periodically; recovery loads
/// the last checkpoint and replays the log after it. See <see cref="AdannsDatabase"/> for the directory layout.</para>
/// </remarks>
public sealed partial class Collection : IAdannsCollection, IDisposable, IAsyncDisposable
{
    private const string IndexFilePrefix = "index-";
    private const double FilterProbeExponent = 0.3;

    private readonly string _dir;

    /// <summary>
    /// The pipeline the collection trains (and, once trained, the index's own spec). For an <c>Auto</c> collection it is
    /// the tuner's last choice; before the first training, rigid IVF1 stands in (it only sets the training threshold:
    /// 1,024 vectors unless <see cref="CollectionConfig.TrainThreshold"/> says otherwise).
    /// </summary>
    private volatile IndexSpec _spec;

    /// <summary>The recall target of an <c>Auto</c> collection (null: the config names a spec).</summary>
    private readonly double? _autoTarget;

    /// <summary>An <c>Auto,Bytes{n}</c> collection's limit on resident index bytes per vector (null: none).</summary>
    private readonly double? _autoMaxBytes;
    private readonly DatabaseOptions _options;
    private readonly ILogger _log;
    private readonly EngineMetrics _metrics;
    private readonly TaskCompletionSource _applierExited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly RecordStore _store;
    private readonly WriteAheadLog _wal;
    private readonly ReaderWriterLockSlim _lock = new(LockRecursionPolicy.NoRecursion);

    // In-memory state, guarded by _lock (written only by the applier thread).
    private readonly Dictionary<RecordId, long> _keys = new();        // id → record key (the LSN that wrote it)
    private readonly Dictionary<long, RecordMeta> _meta = new();      // record key → id, payload
    private FlatStore? _flat;
    private IVectorIndex? _index;                                      // the trained index; PQ specs read full vectors through _vectors
    private readonly RecordVectorSource _vectors;                      // full vectors by record key, from the record store
    private readonly PayloadIndex _payloadIndex = new();               // payload field → value → keys, built per field on first filter

    // Write pipeline.
    private readonly object _seqLock = new();
    private long _nextLsn;
    private bool _closed;
    private readonly ConcurrentQueue<Pending> _pending = new();
    private readonly ConcurrentQueue<Job> _jobs = new();
    private readonly AutoResetEvent _wake = new(false);
    private readonly Thread _applier;
    private volatile Exception? _faulted;

    // Applier-thread state.
    private long _appliedLsn;
    private long _checkpointLsn;
    private long _trainedCount;
    private List<JournalOp>? _journal;
    private Task? _training;
    private long _lastCheckpointTicks = Stopwatch.GetTimestamp();
    private long _appliedSinceCheck;
    private int _retrains;
    private int _compactions;

    private sealed record RecordMeta(RecordId Id, IReadOnlyDictionary<string, PayloadValue>? Payload);

    private sealed class Pending(WriteBatch batch)
    {
        public WriteBatch Batch { get; } = batch;
        public long Address { get; set; }
        public long Enqueued { get; } = Stopwatch.GetTimestamp();
        public TaskCompletionSource<int> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private sealed class Job(Action action)
    {
        public Action Action { get; } = action;
        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private readonly record struct JournalOp(bool Add, long Key, ReadOnlyMemory<float> Vector);

    private Collection(string dir, CollectionConfig config, IndexSpec spec, DatabaseOptions options, EngineMetrics metrics)
    {
        _dir = dir;
        Config = config;
        _spec = spec;
        if (VectorIndex.IsAuto(config.IndexSpec, out double target))
        {
            _autoTarget = target;
            _autoMaxBytes = VectorIndex.ParseAuto(config.IndexSpec.Trim()).MaxBytesPerVector;
        }
        _options = options;
        _metrics = metrics;
        _log = (options.LoggerFactory ?? NullLoggerFactory.Instance).CreateLogger("Adanns.Engine.Collection");
        _store = new RecordStore(Path.Combine(dir, "records"), options.RecordMemoryBytes);
        _vectors = new RecordVectorSource(_store, config.Dimension, $"Collection \"{config.Name}\" record store");
        try
        {
            _wal = new WriteAheadLog(Path.Combine(dir, "wal"));
        }
        catch
        {
            _store.Dispose();
            throw;
        }
        _applier = new Thread(ApplierLoop) { IsBackground = true, Name = $"adanns-applier-{config.Name}" };
    }

    /// <summary>The collection's configuration.</summary>
    public CollectionConfig Config { get; }

    /// <summary>Name.</summary>
    public string Name => Config.Name;

    /// <summary>Vector dimension.</summary>
    public int Dimension => Config.Dimension;

    /// <summary>Metric.</summary>
    public Metric Metric => Config.Metric;

    /// <summary>Live records (acknowledged upserts minus deletes).</summary>
    public long Count
    {
        get
        {
            _lock.EnterReadLock();
            try { return _keys.Count; }
            finally { _lock.ExitReadLock(); }
        }
    }

    /// <summary>Counters (count, index state, LSNs, maintenance, bytes on disk).</summary>
    public CollectionStats GetStats()
    {
        _lock.EnterReadLock();
        try
        {
            return new CollectionStats(_keys.Count, _index is not null, _index?.TombstoneCount ?? 0, Volatile.Read(ref _appliedLsn),
                Volatile.Read(ref _checkpointLsn), _retrains, _compactions, _store.LogBytes, _wal.TailAddress - _wal.BeginAddress);
        }
        finally { _lock.ExitReadLock(); }
    }

    /// <summary>
    /// What the collection keeps resident in process memory, per live record: the searchable index (for a PQ spec:
    /// codes, list slots and the id map — full vectors stay in the record store and are read for rerank; for IVF:
    /// the full vectors in the lists; before training: the exact flat store), and the collection's own maps (id →
    /// record key, record key → id and payload reference). Payload contents and string-id text are extra and not
    /// counted. The record store's in-memory log is bounded by <see cref="DatabaseOptions.RecordMemoryBytes"/>.
    /// </summary>
    public CollectionMemory GetMemory()
    {
        _lock.EnterReadLock();
        try
        {
            int n = _keys.Count;
            int idBytes = System.Runtime.CompilerServices.Unsafe.SizeOf<RecordId>();
            // Dictionary entries (hash, next, key, value) plus a bucket each; RecordMeta: object header + id + payload reference.
            double maps = n == 0 ? 0 : (8 + idBytes + 8 + 4) + (8 + 8 + 8 + 4) + (16 + idBytes + 8);
            double index = _index?.ResidentBytesPerVector ?? (n == 0 ? 0 : 4.0 * Dimension + 8 + 24);
            return new CollectionMemory(n, true, index, _index?.RerankBytesPerVector ?? 0, maps, _options.RecordMemoryBytes);
        }
        finally { _lock.ExitReadLock(); }
    }

    /// <summary>
    /// Batched record-store reads that found their record on disk rather than in the in-memory log, since open: the
    /// rerank, exact-filter and training reads of a PQ collection (diagnostics).
    /// </summary>
    public long RecordReadsFromDisk => _store.PendingReads;

    /// <summary>The collection's directory.</summary>
    public string DirectoryPath => _dir;

    // ---------------------------------------------------------------- open / create

    /// <summary>The spec a collection starts with (for <c>Auto</c>: a stand-in until the tuner chooses; see <see cref="_spec"/>).</summary>
    private static IndexSpec InitialSpec(CollectionConfig config) =>
        VectorIndex.IsAuto(config.IndexSpec, out _) ? IndexSpec.Parse("IVF1") : IndexSpec.Parse(config.IndexSpec);

    internal static Collection Create(string dir, CollectionConfig config, DatabaseOptions options, EngineMetrics metrics)
    {
        var spec = InitialSpec(config);
        var c = new Collection(dir, config, spec, options, metrics);
        c._flat = new FlatStore(config.Dimension);
        c._nextLsn = 1;
        c._applier.Start();
        return c;
    }

    /// <summary>Loads the last checkpoint and replays the log after it. Throws on any verification failure.</summary>
    internal static Collection Open(string dir, CollectionConfig config, DatabaseOptions options, EngineMetrics metrics)
    {
        var spec = InitialSpec(config);
        var manifest = CollectionFiles.ReadManifest(dir);
        var c = new Collection(dir, config, spec, options, metrics);
        try
        {
            int replayed = c.Recover(manifest);
            EngineLog.Opened(c._log, c.Name, c._keys.Count, c._index is not null, replayed);
        }
        catch
        {
            c._store.Dispose();
            c._wal.Dispose();
            throw;
        }
        c._applier.Start();
        return c;
    }

    /// <summary>Returns how many log entries were replayed after the checkpoint.</summary>
    private int Recover(CollectionFiles.Manifest? m)
    {
        int replayed = 0;
        int D = Dimension;
        string what = $"Collection \"{Name}\" record store";
        if (m is not null)
        {
            try
            {
                _store.Recover(m.StoreToken);
            }
            catch (Exception e) when (e is not AdannsException)
            {
                throw new AdannsException(AdannsErrorCode.Corrupt, $"{what}: checkpoint {m.StoreToken} cannot be recovered: {e.Message}", e);
            }
            if (m.IndexFile is not null)
            {
                string path = Path.Combine(_dir, m.IndexFile);
                // Codes-only indexes read their full vectors from the record store; an index that keeps them ignores it.
                _index = VectorIndex.Load(path, _vectors);
                // An index file of an older IVF collection holds its full vectors: read them from the store instead.
                if (_index is IvfIndex { VectorSource: null } resident) resident.UseExternalVectors(_vectors);
                if (_index is IvfIndex loaded) loaded.Device = _options.SearchDevice; // not saved with the index
                (int dim, Metric metric) stored = (_index.Dimension, _index.Metric);
                if (stored.dim != D || stored.metric != Metric)
                    throw new AdannsException(AdannsErrorCode.Corrupt, $"Collection \"{Name}\": index snapshot {m.IndexFile} is for D={stored.dim}, {stored.metric}.");
                if (_autoTarget is not null) _spec = _index.Spec; // the tuner's choice lives in the snapshot
                // The snapshot may predate the checkpoint (it is written when an index is trained, not at every
                // checkpoint): drop what was removed since; the records added since are added from the store below.
                _indexFile = m.IndexFile;
                _indexLsn = m.IndexLsn ?? m.AppliedLsn;
                foreach (long k in m.IndexRemoved ?? [])
                {
                    _index.Remove(k);
                    _indexRemoved.Add(k);
                }
            }
            _appliedLsn = _checkpointLsn = m.AppliedLsn;
            _trainedCount = m.TrainedCount;
        }
        if (_index is null) _flat = new FlatStore(D);
        // A checkpoint runs beside the applier's writes (PlanCheckpoint), so its store may also hold records written after
        // the manifest's LSN — the log replay below finds them already applied — and, for an id replaced meanwhile, both
        // its old and its new record: the newer wins and the older is dropped here (its deletion was still pending).
        long maxKey = 0;
        var superseded = new List<long>();
        foreach (var (key, value) in _store.Scan())
        {
            var (id, payload, vector) = RecordCodec.Decode(value, D, what);
            if (key < 1)
                throw new AdannsException(AdannsErrorCode.Corrupt, $"{what}: record key {key} is not positive.");
            maxKey = Math.Max(maxKey, key);
            if (_keys.TryGetValue(id, out long other))
            {
                long older = Math.Min(key, other);
                superseded.Add(older);
                DropSuperseded(older);
                if (older == key) continue;
                _keys.Remove(id);
                if (_meta.Remove(other, out var gone)) _payloadIndex.Removed(other, gone.Payload);
            }
            _keys[id] = key;
            _meta[key] = new RecordMeta(id, payload);
            _payloadIndex.Added(key, payload);
            if (_index is not null)
            {
                if (_index.Contains(key)) { }
                else if (key > _indexLsn) _index.Add(vector, key); // written after the snapshot
                else throw new AdannsException(AdannsErrorCode.Corrupt, $"Collection \"{Name}\": record {id} (key {key}) is missing from the index snapshot.");
            }
            else
            {
                _flat!.Add(key, vector);
            }
        }
        if (_index is not null && _index.Count != _keys.Count)
            throw new AdannsException(AdannsErrorCode.Corrupt, $"Collection \"{Name}\": the index snapshot holds {_index.Count} vectors but the record store {_keys.Count}.");
        foreach (long k in superseded) _store.Delete(k);

        // Replay the committed log after the checkpoint, in order (entries are in LSN order).
        long maxLsn = _appliedLsn;
        foreach (var (address, entry) in _wal.Read(m?.ReplayFrom ?? 0))
        {
            var batch = WriteBatch.Decode(entry, D, $"Collection \"{Name}\" write-ahead log entry at address {address}");
            if (batch.Count == 0 || batch.LastLsn <= _appliedLsn) continue;
            if (batch.FirstLsn <= _appliedLsn)
                throw new AdannsException(AdannsErrorCode.Corrupt, $"Collection \"{Name}\": log entry at {address} straddles the checkpoint LSN {_appliedLsn}.");
            var deleted = ApplyToMemory(batch, storePuts: true);
            foreach (long k in deleted) _store.Delete(k);
            maxLsn = Math.Max(maxLsn, batch.LastLsn);
            replayed++;
        }
        if (maxKey > maxLsn)
            throw new AdannsException(AdannsErrorCode.Corrupt, $"{what}: record key {maxKey} is past the last logged LSN {maxLsn}.");
        _appliedLsn = maxLsn;
        _nextLsn = maxLsn + 1;
        return replayed;
    }

    /// <summary>Recovery: an id's older record, superseded by a newer one in the same store checkpoint, leaves the index or flat store.</summary>
    private void DropSuperseded(long key)
    {
        if (_index is not null)
        {
            if (_index.Remove(key)) _indexRemoved.Add(key); // the snapshot file may hold it: later checkpoints list it
        }
        else _flat!.Remove(key);
    }

    // ---------------------------------------------------------------- writes

    /// <summary>Inserts or replaces one record. See <see cref="UpsertAsync(IReadOnlyList{VectorRecord}, bool, CancellationToken)"/>.</summary>
    public Task UpsertAsync(RecordId id, ReadOnlyMemory<float> vector, IReadOnlyDictionary<string, PayloadValue>? payload = null,
        bool wait = true, CancellationToken cancellationToken = default) =>
        UpsertAsync([new VectorRecord(id, vector, payload)], wait, cancellationToken);

    /// <summary>
    /// Inserts or replaces a batch of records atomically (all or none survive a crash). With <paramref name="wait"/>
    /// (the default) the task completes once the batch is durable and visible to searches; without it, once the
    /// batch is in the log's buffer (it may be lost in a crash and becomes visible shortly after).
    /// </summary>
    /// <exception cref="AdannsException">Bad input (wrong dimension, NaN/Inf, empty vector, duplicate id in the
    /// batch, oversized payload, batch too large) — nothing is written; or the collection is closed.</exception>
    public Task UpsertAsync(IReadOnlyList<VectorRecord> records, bool wait = true, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(records);
        int D = Dimension;
        var ids = new RecordId[records.Count];
        var vectors = new float[checked((long)records.Count * D)];
        var payloads = new IReadOnlyDictionary<string, PayloadValue>?[records.Count];
        var seen = new HashSet<RecordId>();
        for (int i = 0; i < records.Count; i++)
        {
            var r = records[i] ?? throw new AdannsException(AdannsErrorCode.InvalidId, $"Record {i} of the batch is null.", i);
            var v = r.Vector.Span;
            if (v.Length == 0)
                throw new AdannsException(AdannsErrorCode.EmptyVector, $"Collection \"{Name}\": record {i} (id {r.Id}) has an empty vector.", i);
            if (v.Length != D)
                throw new AdannsException(AdannsErrorCode.WrongDimension, $"Collection \"{Name}\": record {i} (id {r.Id}) has {v.Length} dims; the collection holds {D}-dim vectors.", i);
            if (!System.Numerics.Tensors.TensorPrimitives.IsFiniteAll(v))
            {
                int bad = 0;
                while (float.IsFinite(v[bad])) bad++;
                throw new AdannsException(AdannsErrorCode.NonFiniteVector, $"Collection \"{Name}\": record {i} (id {r.Id}) has a non-finite component {v[bad]} at index {bad}.", i);
            }
            if (r.Id.IsString && r.Id.Text is null)
                throw new AdannsException(AdannsErrorCode.InvalidId, $"Record {i} has no id.", i);
            if (!seen.Add(r.Id))
                throw new AdannsException(AdannsErrorCode.DuplicateId, $"Collection \"{Name}\": id {r.Id} appears more than once in the batch (record {i}).", i);
            int pl = PayloadCodec.EncodedLength(r.Payload, i);
            if (pl > Config.MaxPayloadBytes)
                throw new AdannsException(AdannsErrorCode.InvalidPayload, $"Collection \"{Name}\": record {i} (id {r.Id}) has a {pl}-byte payload; the limit is {Config.MaxPayloadBytes}.", i);
            if (RecordCodec.EncodedLength(r.Id, pl, D) > RecordStore.PageBytes / 2)
                throw new AdannsException(AdannsErrorCode.InvalidPayload, $"Collection \"{Name}\": record {i} (id {r.Id}) is too large to store.", i);
            ids[i] = r.Id;
            v.CopyTo(vectors.AsSpan(i * D, D));
            payloads[i] = r.Payload is null ? null : new Dictionary<string, PayloadValue>(r.Payload, StringComparer.Ordinal);
        }
        if (records.Count == 0) return Task.CompletedTask;
        return Submit(new WriteBatch { Op = WalOp.Upsert, Dimension = D, Ids = ids, Vectors = vectors, Payloads = payloads }, wait, cancellationToken);
    }

    /// <summary>Deletes one record; true when it existed (false without <paramref name="wait"/>).</summary>
    public async Task<bool> DeleteAsync(RecordId id, bool wait = true, CancellationToken cancellationToken = default) =>
        await DeleteAsync([id], wait, cancellationToken).ConfigureAwait(false) > 0;

    /// <summary>Deletes records atomically; returns how many existed (0 without <paramref name="wait"/>). Same durability as upserts.</summary>
    public Task<int> DeleteAsync(IReadOnlyList<RecordId> ids, bool wait = true, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var seen = new HashSet<RecordId>();
        for (int i = 0; i < ids.Count; i++)
        {
            if (ids[i].IsString && ids[i].Text is null) throw new AdannsException(AdannsErrorCode.InvalidId, $"Id {i} is empty.", i);
            if (!seen.Add(ids[i]))
                throw new AdannsException(AdannsErrorCode.DuplicateId, $"Collection \"{Name}\": id {ids[i]} appears more than once in the batch (position {i}).", i);
        }
        if (ids.Count == 0) return Task.FromResult(0);
        return Submit(new WriteBatch { Op = WalOp.Delete, Dimension = Dimension, Ids = ids.ToArray() }, wait, cancellationToken);
    }

    private Task<int> Submit(WriteBatch batch, bool wait, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (_faulted is not null) throw FaultedError();
        // Backpressure: while the index lags too far behind, or earlier writes wait for it, this one waits its turn.
        if (MustThrottle)
        {
            byte[] held = batch.Encode(); // may throw BatchTooLarge: nothing logged yet; held across the wait, so not pooled
            return SubmitThrottledAsync(batch, held, wait, cancellationToken);
        }
        byte[] entry = batch.EncodeRented(out int length); // may throw BatchTooLarge: nothing logged yet
        try { return Enqueue(batch, entry.AsSpan(0, length), wait); }
        finally { System.Buffers.ArrayPool<byte>.Shared.Return(entry); } // the log copied it
    }

    /// <summary>Logs an encoded batch (assigning its LSNs) and hands it to the applier; the log copies <paramref name="entry"/>.</summary>
    private Task<int> Enqueue(WriteBatch batch, Span<byte> entry, bool wait)
    {
        var p = new Pending(batch);
        lock (_seqLock)
        {
            if (_closed) throw new AdannsException(AdannsErrorCode.Closed, $"Collection \"{Name}\" is closed.");
            if (_faulted is not null) throw FaultedError();
            batch.FirstLsn = _nextLsn;
            _nextLsn += batch.Count;
            WriteBatch.PatchLsn(entry, batch.FirstLsn);
            p.Address = _wal.Enqueue(entry);
            _pending.Enqueue(p);
        }
        // An applier that faulted after the check above drained the queue before this write arrived: fail it here
        // rather than leave it waiting for a thread that is gone.
        if (_applierDone && _faulted is not null) Fault(_faulted);
        else _wake.Set();
        return wait ? p.Done.Task : Task.FromResult(0);
    }

    // ---------------------------------------------------------------- reads

    /// <summary>True when a record with <paramref name="id"/> is live.</summary>
    public bool Contains(RecordId id)
    {
        _lock.EnterReadLock();
        try { return _keys.ContainsKey(id); }
        finally { _lock.ExitReadLock(); }
    }

    /// <summary>
    /// The k nearest records to <paramref name="query"/>, best first (fewer when fewer match). Sees every write
    /// acknowledged before the call. <paramref name="parameters"/> tune the IVF search per query (null fields =
    /// index defaults); <paramref name="filter"/> restricts results by payload.
    /// </summary>
    public SearchHit[] Search(ReadOnlySpan<float> query, int k, SearchParams? parameters = null, Filter? filter = null, bool withPayload = false) =>
        Search(query, k, parameters, filter, withPayload, out _);

    /// <summary><see cref="Search(ReadOnlySpan{float}, int, SearchParams?, Filter?, bool)"/>, also reporting the path taken.</summary>
    public SearchHit[] Search(ReadOnlySpan<float> query, int k, SearchParams? parameters, Filter? filter, bool withPayload, out SearchPath path)
    {
        var hits = SearchWithReport(query, k, parameters, filter, withPayload, out var report);
        path = report.Path;
        return hits;
    }

    /// <summary>
    /// <see cref="Search(ReadOnlySpan{float}, int, SearchParams?, Filter?, bool)"/>, also reporting the path taken, the
    /// parameters the index actually used and the work done (for servers and diagnostics).
    /// </summary>
    public SearchHit[] SearchWithReport(ReadOnlySpan<float> query, int k, SearchParams? parameters, Filter? filter, bool withPayload, out SearchReport report) =>
        SearchWithReport(query, k, parameters, filter, withPayload, withVectors: false, out report);

    /// <summary>
    /// <see cref="SearchWithReport(ReadOnlySpan{float}, int, SearchParams?, Filter?, bool, out SearchReport)"/>; with
    /// <paramref name="withVectors"/> each hit also carries its stored vector, read under the same read lock as the
    /// search, so a hit is never missing its vector because a write deleted it in between.
    /// </summary>
    public SearchHit[] SearchWithReport(ReadOnlySpan<float> query, int k, SearchParams? parameters, Filter? filter, bool withPayload, bool withVectors,
        out SearchReport report)
    {
        long started = Stopwatch.GetTimestamp();
        SearchPath path;
        ResolvedSearch? used;
        var stats = new SearchStats();
        int D = Dimension;
        if (k < 1 || k > 100_000) throw new AdannsException(AdannsErrorCode.InvalidQuery, $"k must be in [1, 100000] (got {k}).");
        if (query.Length != D) throw new AdannsException(AdannsErrorCode.WrongDimension, $"Collection \"{Name}\": the query has {query.Length} dims; expected {D}.");
        if (!System.Numerics.Tensors.TensorPrimitives.IsFiniteAll(query))
            throw new AdannsException(AdannsErrorCode.NonFiniteVector, $"Collection \"{Name}\": the query has NaN or infinite components.");
        OutsideRead? outside;   // a PQ shortlist whose vectors are read after the lock
        long[]? vectorKeys;     // with_vectors: the kept hits' record keys, read after the lock
        SearchHit[] result;
        int epoch = -1;
        _lock.EnterReadLock();
        try
        {
            ThrowIfClosed();
            using var bits = filter is null ? null : MatchingKeys(filter);
            result = SearchLocked(query, k, parameters, bits, withPayload, withVectors, ref stats, out path, out used, out outside, out vectorKeys);
            // What is read after the lock stays in the store until this search leaves its read epoch.
            if (outside is not null || vectorKeys is not null) epoch = EnterReadEpoch();
        }
        finally { _lock.ExitReadLock(); }
        if (epoch >= 0)
        {
            try { result = CompleteAfterLock(result, outside, vectorKeys, query, k, withPayload, withVectors, ref stats); }
            finally { ExitReadEpoch(epoch); }
        }
        report = new SearchReport(path, used, stats);
        _metrics.Searched(Name, path, 1, Stopwatch.GetElapsedTime(started).TotalSeconds);
        return result;
    }

    /// <summary>
    /// The part of one search that runs under the read lock (caller holds it; <paramref name="bits"/> is the filter's
    /// key set, computed under the same lock, or null). Returns the hits, or an empty array when <paramref name="outside"/>
    /// is set (a PQ shortlist completed after the lock); <paramref name="vectorKeys"/> are the hits' record keys when
    /// their vectors were asked for.
    /// </summary>
    private SearchHit[] SearchLocked(ReadOnlySpan<float> query, int k, SearchParams? parameters, KeyBits? bits, bool withPayload, bool withVectors,
        ref SearchStats stats, out SearchPath path, out ResolvedSearch? used, out OutsideRead? outside, out long[]? vectorKeys)
    {
        var ids = new long[k];
        var scores = new float[k];
        vectorKeys = null;
        // The engine's tie rule: among equal scores the lower record id wins (RecordId order: numbers before strings,
        // numbers ascending, strings ordinal), on every path. An exact path asks for more than k hits: when the last
        // one still ties with the k-th, the group of equal scores runs past the cut, and the search runs again with
        // room for all of it, so the k kept are the lowest ids of the group, whatever order the rows sit in.
        int extra = 1, n;
        bool exact;
        while (true)
        {
            n = SearchPathOnce(query, k, k + extra, parameters, bits, ref ids, ref scores, ref stats, out path, out used, out exact, out outside);
            if (outside is not null || !exact || n < k + extra || scores[k - 1] != scores[k + extra - 1]) break;
            extra = (int)Math.Min(int.MaxValue - k, Math.Max(32L, 4L * extra));
        }
        stats.Queries = 1;
        if (outside is not null) return [];
        var hits = new SearchHit[n];
        for (int i = 0; i < n; i++) hits[i] = new SearchHit(_meta[ids[i]].Id, scores[i], null);
        Array.Sort(hits, ids, 0, n, SearchHitOrder.For(Metric)); // the record keys move with their hits
        n = Math.Min(n, k);
        var result = new SearchHit[n];
        for (int i = 0; i < n; i++)
        {
            var m = _meta[ids[i]];
            result[i] = new SearchHit(m.Id, hits[i].Score, withPayload ? m.Payload : null);
        }
        if (withVectors && n > 0) vectorKeys = ids[..n];
        return result;
    }

    /// <summary>Completes a search after the lock (caller holds its read epoch): a PQ shortlist's rerank, or the hits' vectors.</summary>
    private SearchHit[] CompleteAfterLock(SearchHit[] result, OutsideRead? outside, long[]? vectorKeys, ReadOnlySpan<float> query, int k,
        bool withPayload, bool withVectors, ref SearchStats stats)
    {
        if (outside is not null)
        {
            result = CompleteOutside(outside, query, k, withPayload, withVectors, ref stats);
            Array.Sort(result, SearchHitOrder.For(Metric)); // the engine's tie rule, as on the other paths
            return result;
        }
        return vectorKeys is null ? result : AttachVectors(result, vectorKeys);
    }

    /// <summary>
    /// One run of the search path for this query: the exact paths (no index yet, a selective filter, exact
    /// parameters) keep <paramref name="capacity"/> hits, the approximate ones k. Writes the hits (record keys, best
    /// first) into <paramref name="ids"/> / <paramref name="scores"/>, grown to fit; returns how many. Caller holds the
    /// read lock.
    /// </summary>
    private int SearchPathOnce(ReadOnlySpan<float> query, int k, int capacity, SearchParams? parameters, KeyBits? bits, ref long[] ids, ref float[] scores,
        ref SearchStats stats, out SearchPath path, out ResolvedSearch? used, out bool exact, out OutsideRead? outside)
    {
        used = null;
        outside = null; // set when a PQ index reranks from the record store: the caller completes it after the lock
        int D = Dimension;
        if (_index is null)
        {
            path = SearchPath.Flat;
            exact = true;
            Room(ref ids, ref scores, capacity);
            int found = _flat!.Search(query, capacity, Metric, bits, ids, scores);
            stats.VectorsScanned += _flat.Count;
            stats.Flops += (long)_flat.Count * D;
            return found;
        }
        if (bits is null)
        {
            path = SearchPath.Index;
            used = Resolve(parameters, k);
            exact = used.Value.Exact;
            if (!exact && TwoPhaseIndex(used.Value) is { } pq)
            {
                outside = Shortlist(pq, query, k, used.Value, null, ref stats);
                return outside.Count;
            }
            int want = exact ? capacity : k;
            Room(ref ids, ref scores, want);
            return IndexSearch(query, want, exact ? ForCapacity(parameters) : parameters, null, ids, scores, ref stats);
        }
        double selectivity = _keys.Count == 0 ? 0 : (double)bits.Count / _keys.Count;
        if (selectivity <= _options.ExactFilterSelectivity)
        {
            path = SearchPath.ExactFiltered;
            exact = true;
            // A PQ index's vectors are in the record store: the matches are chosen here and read after the lock.
            if ((outside = ExactFilteredOutside(bits)) is not null) return outside.Count;
            Room(ref ids, ref scores, capacity);
            return ExactFiltered(query, capacity, bits, ids, scores, ref stats);
        }
        path = SearchPath.IndexFiltered;
        var p = parameters ?? new SearchParams();
        if (!p.UsesProfile)
        {
            // Probe more lists, as the filtered k nearest lie farther out: nprobe · s^-0.3 (×1.23 at 50 %,
            // ×2 at 10 %). The exponent keeps filtered recall@10 at the unfiltered one on MiniLM (30k × 384,
            // IVF128, nprobe 8: 0.829 unfiltered; 0.829 / 0.832 at 50 % / 10 %; s^-1 gave 0.862 / 0.986 at
            // 2.4x / 11x the cost; s^0 gave 0.814 / 0.751).
            int baseProbe = Resolve(p, k).NProbe;
            double widen = Math.Pow(Math.Max(selectivity, 1e-3), -FilterProbeExponent);
            p = p with { NProbe = Math.Min(_index.NList, (int)Math.Round(baseProbe * widen)) };
        }
        used = Resolve(p, k);
        exact = used.Value.Exact;
        int n = exact ? capacity : k;
        int got;
        if (!exact && TwoPhaseIndex(used.Value) is { } twoPhase)
        {
            outside = Shortlist(twoPhase, query, k, used.Value, bits, ref stats);
            got = outside.Count; // the rerank keeps min(shortlist, k)
        }
        else
        {
            Room(ref ids, ref scores, n);
            got = IndexSearch(query, n, exact ? ForCapacity(p) : p, bits, ids, scores, ref stats);
        }
        if (!exact && got < k && bits.Count >= got + 1)
        {
            // The probed lists held too few matches, but more exist: answer exactly instead.
            path = SearchPath.ExactFiltered;
            used = null;
            exact = true;
            if ((outside = ExactFilteredOutside(bits)) is not null) return outside.Count;
            Room(ref ids, ref scores, capacity);
            got = ExactFiltered(query, capacity, bits, ids, scores, ref stats);
        }
        return got;
    }

    /// <summary>
    /// Exact parameters for a search with room beyond k: the shortlist and rerank keeps (validated against k already,
    /// unused by an exact search) are dropped, so the larger capacity is not refused; the rerank dims stay (the last
    /// one is the exact search's dim).
    /// </summary>
    private static SearchParams? ForCapacity(SearchParams? p) =>
        p is null || (p.Shortlist is null && p.Rerank is null) ? p : p with { Shortlist = null, Rerank = p.Rerank?.Select(st => st with { Keep = null }).ToArray() };

    private static void Room(ref long[] ids, ref float[] scores, int n)
    {
        if (ids.Length < n) ids = new long[n];
        if (scores.Length < n) scores = new float[n];
    }

    /// <summary>
    /// The index's parameters for this query, validated: a bad field (nprobe above nlist, a dim above D, a shortlist
    /// under k, a budget without a profile) is the caller's error. Only this step's argument errors are; one raised
    /// later, inside the search, is a bug and must surface as such (INTERNAL). Caller holds the read lock.
    /// </summary>
    private ResolvedSearch Resolve(SearchParams? p, int k)
    {
        try
        {
            return _index!.Resolve(p, k);
        }
        catch (Exception e) when (e is ArgumentException || (e is InvalidOperationException && p is { UsesProfile: true }))
        {
            // InvalidOperationException: a budget on an index without a compute profile.
            throw new AdannsException(AdannsErrorCode.InvalidQuery, $"Collection \"{Name}\": {AdannsException.CleanMessage(e)}", e);
        }
    }

    private int IndexSearch(ReadOnlySpan<float> query, int k, SearchParams? p, IIdFilter? filter, long[] ids, float[] scores, ref SearchStats stats)
    {
        _index!.Search(query, k, ids, scores, p, filter, out var s);
        stats.Add(s);
        int n = 0;
        for (int i = 0; i < k; i++)
        {
            if (ids[i] < 0 || !_meta.ContainsKey(ids[i])) continue;
            ids[n] = ids[i];
            scores[n++] = scores[i];
        }
        return n;
    }

    /// <summary>
    /// Exact top-k over the records matching <paramref name="filter"/>, at full D (rotation preserves distances), for an
    /// index that keeps its vectors in memory (a PQ index's are read after the lock: <see cref="CompleteExactOutside"/>).
    /// </summary>
    private int ExactFiltered(ReadOnlySpan<float> query, int k, KeyBits filter, long[] ids, float[] scores, ref SearchStats stats)
    {
        const int Batch = 256;
        var index = _index!;
        int D = Dimension;
        var rows = new float[Batch * D];
        var matched = new List<long>((int)filter.Count);
        filter.CopyKeysTo(matched);
        matched.RemoveAll(key => !index.Contains(key));
        var all = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(matched);
        var scan = new ExactScan(Metric, query, k); // stored vectors come back in the caller's space
        for (int s = 0; s < all.Length; s += Batch)
        {
            int m = Math.Min(Batch, all.Length - s);
            index.ReadStoredVectors(all.Slice(s, m), rows.AsSpan(0, m * D));
            scan.Add(rows, D, all.Slice(s, m), m);
        }
        stats.VectorsScanned += matched.Count;
        stats.Flops += (long)matched.Count * D;
        return scan.Finish(ids.AsSpan(0, k), scores.AsSpan(0, k));
    }

    /// <summary>
    /// The live record keys matching <paramref name="filter"/>, from the payload index (a field is indexed on the first
    /// filter that names it). Caller holds the read lock and disposes the result.
    /// </summary>
    private KeyBits MatchingKeys(Filter filter)
    {
        Interlocked.Increment(ref _filterKeySets);
        return _payloadIndex.Evaluate(filter, Volatile.Read(ref _appliedLsn), _meta.Select(e => KeyValuePair.Create(e.Key, e.Value.Payload)));
    }

    private long _filterKeySets;

    /// <summary>Filter key sets computed since open (one per filtered search, one per filtered batch sub-chunk; tests).</summary>
    internal long FilterKeySetsBuilt => Interlocked.Read(ref _filterKeySets);

    private void ThrowIfClosed()
    {
        if (_closed && _applierDone) throw new AdannsException(AdannsErrorCode.Closed, $"Collection \"{Name}\" is closed.");
    }
}
