using System.Diagnostics;
using Adanns.Engine.Indexes;
using Adanns.Engine.Storage;

namespace Adanns.Engine.Collections;

public sealed partial class Collection
{
    private volatile bool _applierDone;
    private byte[] _encodeScratch = new byte[4096]; // the applier's (or recovery's) record encoding buffer: one thread at a time
    private volatile bool _stopRequested;
    private readonly CancellationTokenSource _trainingCancel = new();
    private long _journalReplayed;

    /// <summary>Journaled writes replayed into freshly trained indexes before their swap, since open (diagnostics, tests).</summary>
    internal long JournalOpsReplayed => Interlocked.Read(ref _journalReplayed);

    /// <summary>True while a background training runs (tests).</summary>
    internal bool TrainingInProgress => _training is { IsCompleted: false };

    /// <summary>Test seam: runs on the applier thread before each write group is committed; an exception faults the collection.</summary>
    internal Action? BeforeApplyHook { get; set; }

    /// <summary>Test seam: a trained index waits here (cancellably) before it catches up with the journal and is swapped in.</summary>
    internal ManualResetEventSlim? TrainingGate { get; set; }

    /// <summary>
    /// The one thread that mutates the collection: commits the log for every group of pending writes, applies
    /// them in log order, acknowledges them, and runs maintenance (training swaps, compaction, checkpoints).
    /// </summary>
    private void ApplierLoop()
    {
        try
        {
            while (true)
            {
                _wake.WaitOne(100);
                bool stopping = _stopRequested;
                ApplyPending();
                while (_jobs.TryDequeue(out var job)) RunJob(job);
                if (_storeCheckpoint is { IsCompleted: true }) FinishStoreCheckpoint();
                if (_checkpointRequests.Count > 0 && _storeCheckpoint is null) BeginStoreCheckpoint(); // CheckpointAsync / CompactAsync
                if (stopping && _pending.IsEmpty) break;
                if (_options.BackgroundMaintenance) Maintain();
            }
            WaitForStoreCheckpoint();
            if (_appliedLsn > _checkpointLsn && _options.CheckpointOnDispose) Checkpoint();
        }
        catch (Exception e)
        {
            EngineLog.Faulted(_log, Name, e);
            Fault(e);
        }
        finally
        {
            _applierDone = true;
            _trainingCancel.Cancel(); // a training in flight cannot be swapped in any more
            // A faulted applier leaves a background checkpoint to finish on its own; closing waits for it (FinishClose).
            FailQueuedJobs();
            FailCheckpointWaiters(ApplierGone());
            _applierExited.TrySetResult();
        }
    }

    private void Fault(Exception e)
    {
        _faulted ??= e;
        while (_pending.TryDequeue(out var p)) p.Done.TrySetException(FaultedError());
        SignalBacklog(); // throttled writers fail now rather than at their timeout
    }

    /// <summary>
    /// What every write to a faulted collection answers: the collection and the cause, with a code that tells a
    /// client retrying cannot help (gRPC FAILED_PRECONDITION, not UNAVAILABLE). Reads keep serving what was applied.
    /// </summary>
    private AdannsException FaultedError()
    {
        var f = _faulted!;
        return new AdannsException(AdannsErrorCode.CollectionFaulted,
            $"Collection \"{Name}\" is quarantined after an internal failure ({f.GetType().Name}: {AdannsException.CleanMessage(f)}); writes are refused until the database is reopened. Acknowledged writes are durable.", f);
    }

    private void RunJob(Job job)
    {
        try
        {
            job.Action();
            job.Done.TrySetResult();
        }
        catch (Exception e)
        {
            job.Done.TrySetException(e);
        }
    }

    /// <summary>
    /// Runs <paramref name="action"/> on the applier thread, between write groups. Never hangs: once the applier has
    /// exited (closed or faulted) the task fails with <see cref="AdannsErrorCode.Closed"/> or <see cref="AdannsErrorCode.CollectionFaulted"/>.
    /// </summary>
    private Task RunOnApplier(Action action)
    {
        if (_applierDone || _closed) return Task.FromException(ApplierGone());
        var job = new Job(action);
        _jobs.Enqueue(job);
        // The applier sets _applierDone before draining the queue one last time: a job enqueued after that drain sees
        // the flag here and is failed now (failing it twice is harmless).
        if (_applierDone)
        {
            FailQueuedJobs();
            return job.Done.Task;
        }
        try { _wake.Set(); }
        catch (ObjectDisposedException) { FailQueuedJobs(); }
        return job.Done.Task;
    }

    private AdannsException ApplierGone() => _faulted is not null ? FaultedError() : new AdannsException(AdannsErrorCode.Closed, $"Collection \"{Name}\" is closed.");

    private void FailQueuedJobs()
    {
        while (_jobs.TryDequeue(out var job)) job.Done.TrySetException(ApplierGone());
    }

    private void ApplyPending()
    {
        int n = _pending.Count;
        if (n == 0) return;
        BeforeApplyHook?.Invoke();
        long t0 = Stopwatch.GetTimestamp();
        // Group commit: one durable commit covers every entry enqueued so far (at least these n).
        _wal.Commit();
        long t1 = Stopwatch.GetTimestamp();
        var group = new Pending[n];
        for (int i = 0; i < n; i++) _pending.TryDequeue(out group[i]!);

        // New records go to the store before they become reachable (keys are fresh LSNs, so nothing reads them yet).
        foreach (var p in group)
        {
            var b = p.Batch;
            if (b.Op != WalOp.Upsert) continue;
            for (int i = 0; i < b.Count; i++)
                _store.Put(b.FirstLsn + i, RecordCodec.Encode(b.Ids[i], b.Payloads[i], b.Vector(i), ref _encodeScratch));
        }
        var results = new int[n];
        var garbage = new List<long>();
        long t2 = Stopwatch.GetTimestamp();
        _lock.EnterWriteLock();
        long t3 = Stopwatch.GetTimestamp();
        try
        {
            for (int g = 0; g < n; g++)
            {
                var deleted = ApplyToMemory(group[g].Batch, storePuts: false);
                results[g] = group[g].Batch.Op == WalOp.Delete ? deleted.Count : group[g].Batch.Count;
                garbage.AddRange(deleted);
                _appliedLsn = group[g].Batch.LastLsn;
            }
        }
        finally { _lock.ExitWriteLock(); }
        long t4 = Stopwatch.GetTimestamp();
        // Replaced and deleted records leave the store after they became unreachable, just before the next checkpoint
        // (on the maintenance thread, not here): see PlanCheckpoint.
        _garbage.AddRange(garbage);
        _appliedSinceCheck += group.Sum(p => p.Batch.Count);
        for (int g = 0; g < n; g++)
        {
            if (group[g].Batch.Op == WalOp.Delete) _metrics.Deleted(Name, results[g]);
            else _metrics.Upserted(Name, results[g]);
            group[g].Done.TrySetResult(results[g]);
        }
        // Where a slow group's time went (the oldest write's wait is its acknowledged latency less the hand-off).
        if (Stopwatch.GetElapsedTime(group[0].Enqueued).TotalMilliseconds >= SlowGroupMilliseconds && _log.IsEnabled(Microsoft.Extensions.Logging.LogLevel.Debug))
        {
            static double Ms(long from, long to) => (to - from) * 1000.0 / Stopwatch.Frequency;
            EngineLog.SlowWriteGroup(_log, Name, n, Ms(group[0].Enqueued, Stopwatch.GetTimestamp()), Ms(group[0].Enqueued, t0), Ms(t0, t1), Ms(t1, t2), Ms(t2, t3), Ms(t3, t4));
        }
    }

    /// <summary>A write group whose oldest write waited this long is logged (Debug) with where the time went.</summary>
    internal const double SlowGroupMilliseconds = 40;

    /// <summary>
    /// Applies one batch to the in-memory state (caller holds the write lock, or is recovering). Returns the record
    /// keys that became unreachable (replaced or deleted), which the caller deletes from the store.
    /// </summary>
    private List<long> ApplyToMemory(WriteBatch b, bool storePuts)
    {
        var dead = new List<long>();
        for (int i = 0; i < b.Count; i++)
        {
            long lsn = b.FirstLsn + i;
            var id = b.Ids[i];
            bool exists = _keys.TryGetValue(id, out long old);
            if (b.Op == WalOp.Delete)
            {
                if (exists && old < lsn)
                {
                    RemoveKey(old, id);
                    dead.Add(old);
                }
                continue;
            }
            if (_meta.ContainsKey(lsn) || (exists && old >= lsn)) continue; // already applied (idempotent replay)
            if (exists)
            {
                RemoveKey(old, id);
                dead.Add(old);
            }
            var v = b.Vector(i);
            if (storePuts) _store.Put(lsn, RecordCodec.Encode(id, b.Payloads[i], v, ref _encodeScratch));
            if (_index is not null) _index.Add(v, lsn);
            else _flat!.Add(lsn, v);
            _keys[id] = lsn;
            _meta[lsn] = new RecordMeta(id, b.Payloads[i]);
            _payloadIndex.Added(lsn, b.Payloads[i]);
            if (_journal is not null)
            {
                // A view of the batch's own vector array (not a copy: 4·D bytes of garbage per write during a training);
                // the batch's array stays alive until the journal's replay drops the view.
                lock (_journalLock) _journal.Add(new JournalOp(true, lsn, b.VectorMemory(i)));
                BacklogAdded(JournalOpBytes);
            }
        }
        return dead;
    }

    private void RemoveKey(long key, RecordId id)
    {
        if (_index is not null)
        {
            _index.Remove(key);
            _indexRemoved.Add(key); // the index file predates this: the checkpoint lists it for recovery
        }
        else _flat!.Remove(key);
        _keys.Remove(id);
        if (_meta.Remove(key, out var m)) _payloadIndex.Removed(key, m.Payload);
        if (_journal is not null) lock (_journalLock) _journal.Add(new JournalOp(false, key, default));
    }

    // ---------------------------------------------------------------- maintenance

    private void Maintain()
    {
        if (_training is { IsCompleted: true } t)
        {
            _training = null;
            if (t.Exception is { } e) EngineLog.TrainingFailed(_log, Name, e.InnerException?.Message ?? e.Message, e.InnerException);
        }
        int count = _keys.Count; // the applier is the only writer: no lock needed to read
        int threshold = TrainingThreshold;
        if (_training is null && count >= threshold && NeedsTraining(count))
            _training = StartTraining();

        // Tombstones are dropped by training a fresh index in the background (swapped in under a short lock), not by
        // compacting the live index, which holds the write lock for O(N). CompactAsync does the same (CompactIndexAsync).
        if (_training is null && _index is { } index && index.TombstoneCount > Math.Max(1024, index.Count / 5))
            _training = StartTraining();

        // The index snapshot is written by the training that built it; when no retraining has happened for long (the
        // records written since outnumber twice the index) a retrain writes a fresh one, off the write path.
        if (_training is null && _index is { } idx && _appliedLsn - _indexLsn > 2L * idx.Count + 65_536)
            _training = StartTraining();

        // Checkpoints run on the maintenance thread, beside the writes (BeginStoreCheckpoint); one at a time.
        if (_storeCheckpoint is not null) return;
        bool due = Stopwatch.GetElapsedTime(_lastCheckpointTicks) >= _options.CheckpointInterval && _appliedLsn > _checkpointLsn;
        if (due || _checkpointRequested || _wal.TailAddress - _wal.BeginAddress >= _options.CheckpointWalBytes)
            BeginStoreCheckpoint();
    }

    /// <summary>
    /// Live vectors needed before the index trains. Auto: what the tuner needs (or the configured threshold, when
    /// higher), not a rule on the tuned spec's nlist: the tuner sizes nlist for the count it trains on (4√N lists hold
    /// √N/4 rows each, fewer than 32 below 16,384 vectors), so a rule of 32 rows per list would hold back the retrain
    /// that growth calls for.
    /// </summary>
    private int TrainingThreshold => _autoTarget is null
        ? Config.EffectiveTrainThreshold(_spec)
        : Math.Max(Config.TrainThreshold ?? 0, IndexTuner.MinimumVectors);

    private bool NeedsTraining(int count)
    {
        if (_index is null) return true;
        if (count >= 2 * _trainedCount) return true; // centroids were trained on under half of today's vectors
        if (_appliedSinceCheck < 4096) return false;
        _appliedSinceCheck = 0;
        var sizes = _index.ListSizes();
        double mean = (double)sizes.Sum() / sizes.Length;
        return mean >= 16 && sizes.Max() > _options.ImbalanceFactor * mean;
    }

    /// <summary>
    /// Trains a new index in the background from a snapshot of the live vectors, then swaps it in on the applier
    /// thread after replaying the writes journaled meanwhile. Searches use the old index (or exact search) until then.
    /// </summary>
    private Task StartTraining()
    {
        BacklogCleared(); // the new training journals afresh: a failed one's unreplayed writes no longer count
        _trainingStarted = Stopwatch.GetTimestamp();
        EngineLog.TrainingStarted(_log, Name, _keys.Count);
        if (_autoTarget is double target) return StartAutoTraining(target);
        return StartPqTraining(); // every spec: codes in memory, full vectors read from the record store
    }

    /// <summary>
    /// An <c>Auto</c> collection's (re)training: the first time, the tuner chooses the pipeline on a sample read from the
    /// record store; on growth the structure decisions of the index in use are kept (nlist rescaled to the new count) and
    /// only the frontier is measured again. Then it trains like any collection of that spec, is profiled the tuner's way
    /// (searches without parameters run at the target) and swapped in; the chosen spec lives in the index snapshot.
    /// </summary>
    private Task StartAutoTraining(double target)
    {
        int D = Dimension;
        long snapshotLsn = _appliedLsn;
        var keys = _meta.Keys.ToArray(); // a snapshot; the vectors are read from the record store in the background
        lock (_journalLock) _journal = [];
        var ct = _trainingCancel.Token;
        var tuner = new TunerOptions(TargetRecall: target, Threads: 1, MaxBytesPerVector: _autoMaxBytes);
        var previous = _index?.ComputeProfile?.TunedRecall is not null ? _index.Spec : null;
        int previousCount = (int)Math.Min(_trainedCount, int.MaxValue);
        return TrackTraining(RunTraining(() =>
        {
            IndexSpec spec;
            if (previous is not null)
            {
                // The lists-per-√N the tuner chose (4 or 16), read back off the index in use, applied to the new count.
                int dc = previous.CoarseDim ?? D;
                double perSqrtN = IndexTuner.ListsPerSqrtN.MinBy(f => Math.Abs(IndexTuner.NListFor(previousCount, dc, f) - previous.NList));
                spec = previous with { NList = IndexTuner.NListFor(keys.Length, dc, perSqrtN) };
            }
            else
            {
                int sampleCount = Math.Min(keys.Length, tuner.SampleRows);
                var sampleKeys = new long[sampleCount];
                for (int i = 0; i < sampleCount; i++) sampleKeys[i] = keys[(long)i * keys.Length / sampleCount];
                using var sample = ReadAvailable(sampleKeys, D, out _);
                spec = IndexTuner.Choose(sample, Metric, tuner, keys.Length).Spec;
            }
            ct.ThrowIfCancellationRequested();
            IVectorIndex fresh = TrainPq(spec, keys, ct);
            if (fresh.Count > 10 * tuner.K) IndexTuner.ProfileTuned(fresh, tuner);
            SwapWhenCaughtUp(fresh, snapshotLsn, ct);
        }));
    }

    private long _trainingStarted;

    /// <summary>Rows a plain float / SQ8 spec's (re)training learns its centroids (and rotation) from; the rest are only assigned.</summary>
    internal const int IvfTrainingSample = 100_000;

    /// <summary>
    /// Training never holds every vector in memory: the centroids and quantizers learn from an evenly spaced sample read
    /// from the record store, then all records are encoded in chunks read from the store. The index keeps codes only
    /// (whatever the spec: float and SQ8 lists too), so the store's copy is the only full copy of each vector.
    /// </summary>
    private Task StartPqTraining()
    {
        int D = Dimension;
        long snapshotLsn = _appliedLsn;
        var keys = _meta.Keys.ToArray(); // a snapshot; the vectors are read from the record store in the background
        lock (_journalLock) _journal = [];
        var ct = _trainingCancel.Token;
        var spec = _spec;
        return TrackTraining(RunTraining(() =>
        {
            var fresh = TrainPq(spec, keys, ct);
            if (_options.ProfileIndexes && fresh.Count > 10) fresh.Profile(new ProfileOptions { Threads = 1 });
            SwapWhenCaughtUp(fresh, snapshotLsn, ct);
        }));
    }

    /// <summary>
    /// Trains a codec-pipeline index of <paramref name="spec"/> on a sample of <paramref name="keys"/> and encodes them all
    /// (background thread); it keeps codes only and reads full vectors from the record store.
    /// </summary>
    private IvfIndex TrainPq(IndexSpec spec, long[] keys, CancellationToken ct)
    {
        int D = Dimension;
        // 20k rows train 256-centroid sub-quantizers well (~80 per centroid) at a fraction of the default 50k's cost. A
        // plain float / SQ8 spec learns only centroids (and SQ8 ranges): up to 100k rows, as its k-means wants.
        bool plain = !spec.IsCodecPipeline;
        var options = new PqBuildOptions(TrainingSample: plain ? IvfTrainingSample : 20_000, Threads: 1, RotationSample: plain ? new IvfBuildOptions().RotationSample : new PqBuildOptions().RotationSample,
            Device: _options.SearchDevice);
        int sampleCount = Math.Min(keys.Length, options.TrainingSample);
        var sampleKeys = new long[sampleCount];
        for (int i = 0; i < sampleCount; i++) sampleKeys[i] = keys[(long)i * keys.Length / sampleCount];
        IvfIndex fresh;
        using (var sample = ReadAvailable(sampleKeys, D, out _))
            fresh = IvfIndex.Train(sample, spec, Metric, options, cancellationToken: ct);
        fresh.UseExternalVectors(_vectors);
        const int Chunk = 4096;
        var scratch = new float[Chunk * D]; // one read buffer for every chunk: a fresh 2 MB (large-object heap) array per chunk drove gen-2 collections
        for (int s = 0; s < keys.Length; s += Chunk)
        {
            ct.ThrowIfCancellationRequested(); // disposal: stop reading the store it is about to close
            var chunk = keys.AsSpan(s, Math.Min(Chunk, keys.Length - s));
            using var set = ReadAvailable(chunk, D, out var ids, scratch); // records deleted meanwhile are skipped (the journal removes them anyway)
            fresh.AddRange(set, ids, threads: 1);
        }
        return fresh;
    }

    /// <summary>The vectors of the <paramref name="keys"/> still in the record store, and those keys.</summary>
    private Engine.VectorSet ReadAvailable(ReadOnlySpan<long> keys, int D, out long[] foundKeys, float[]? scratch = null)
    {
        var rows = scratch is not null && scratch.LongLength >= (long)keys.Length * D ? scratch : new float[(long)keys.Length * D];
        var found = new bool[keys.Length];
        int n = _vectors.ReadAvailable(keys, rows, found);
        foundKeys = new long[n];
        int w = 0;
        for (int i = 0; i < keys.Length; i++)
        {
            if (!found[i]) continue;
            if (w != i) rows.AsSpan(i * D, D).CopyTo(rows.AsSpan(w * D, D));
            foundKeys[w++] = keys[i];
        }
        var set = new Engine.VectorSet(D, Math.Max(1, n));
        set.AddRange(rows.AsSpan(0, n * D));
        return set;
    }

    /// <summary>
    /// Runs a training on its own thread, not a thread-pool worker: a training holds its thread for seconds to minutes,
    /// and acknowledgements complete through the pool, so on a small machine a training on a pool worker starved them
    /// (writes stalled for the whole training, ~1 s each at 50k–150k vectors on 2 cores, until the pool grew).
    /// </summary>
    private Task RunTraining(Action training) =>
        Task.Factory.StartNew(() =>
        {
            // Its own thread (LongRunning), so the lower priority ends with it. The swap's short job runs on the applier.
            ThreadNice.Lower(_options.BackgroundThreadNice);
            TrainingThreadNice = ThreadNice.Current();
            training();
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

    /// <summary>The nice value the last training ran at (Linux; null elsewhere or before any training). Tests.</summary>
    internal int? TrainingThreadNice { get; private set; }

    private Task TrackTraining(Task training)
    {
        Task? tracked = null; // assigned before the applier (the caller's thread) can run the job below
        tracked = training.ContinueWith(t =>
        {
            if (t.IsFaulted && !_applierDone)
            {
                // Stop journaling (the applier owns the journal's lifetime); if the applier is gone this fails harmlessly.
                // Not once a later training has started: Maintain may see this one fail and start the next (with its
                // own journal) before this job runs.
                _ = RunOnApplier(() =>
                {
                    if (_training is not null && !ReferenceEquals(_training, tracked)) return;
                    lock (_journalLock) _journal = null;
                    BacklogCleared();
                });
            }
            t.Wait(); // surfaces the failure to Maintain
        }, TaskScheduler.Default);
        return tracked;
    }

    /// <summary>
    /// Swaps a freshly trained index in: called on the training's thread. First the writes journaled while it trained
    /// are replayed into it there, in rounds, while writes go on, and it is saved to its snapshot file (still there,
    /// off the write path); then the applier replays the few journaled since (outside the lock: no other thread sees
    /// the fresh index, and the applier is the only writer) and only the pointer swap takes the write lock.
    /// </summary>
    /// <param name="fresh">The trained index.</param>
    /// <param name="snapshotLsn">The applied LSN when the training took its snapshot of keys: every record live then
    /// and still live is in <paramref name="fresh"/>.</param>
    /// <param name="cancellationToken">Cancelled when the collection closes.</param>
    private void SwapWhenCaughtUp(IVectorIndex fresh, long snapshotLsn, CancellationToken cancellationToken)
    {
        TrainingGate?.Wait(cancellationToken);
        int replayed = 0;
        for (int round = 0; round < 8; round++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int n = ReplayJournal(fresh, replayed);
            replayed += n;
            if (n < 256) break; // what is left is for the applier's short turn
        }
        // A compaction (CompactAsync) asked for no tombstones: the removes replayed above left some in the fresh index,
        // which no search sees yet, so it is compacted here, off the write path. (The applier's last replay may add a few.)
        if (_compactFresh && fresh.TombstoneCount > 0) fresh.Compact();
        string file = $"{IndexFilePrefix}{snapshotLsn}-{Guid.NewGuid():N}.pqx";
        _pendingIndexFile = file; // a checkpoint meanwhile must not delete it as stale
        try
        {
            fresh.Save(Path.Combine(_dir, file));
            // Saving takes seconds at scale, and the writes journaled meanwhile would all be replayed by the applier, with
            // writes waiting (measured: 230 ms write stalls at each swap of a 500k index); replay them here first. The
            // file is not changed by it (recovery replays what came after the snapshot from the record store anyway).
            for (int round = 0; round < 8; round++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                int n = ReplayJournal(fresh, replayed);
                replayed += n;
                if (n < 256) break;
            }
            RunOnApplier(() => SwapIndex(fresh, replayed, file, snapshotLsn)).Wait(cancellationToken);
        }
        catch
        {
            _pendingIndexFile = null; // the next checkpoint deletes it
            throw;
        }
    }

    /// <summary>
    /// Replays journal entries from <paramref name="from"/> on into <paramref name="fresh"/>; returns how many. Works in
    /// slices: each replayed add drops its vector copy from the journal (only removes are read again, by the swap), and
    /// its bytes leave the index backlog, so throttled writers resume while the replay goes on.
    /// </summary>
    private int ReplayJournal(IVectorIndex fresh, int from)
    {
        const int Slice = 4096;
        int done = 0;
        while (true)
        {
            JournalOp[] ops;
            lock (_journalLock)
            {
                if (_journal is null || _journal.Count <= from + done) break;
                ops = _journal.GetRange(from + done, Math.Min(Slice, _journal.Count - from - done)).ToArray();
            }
            int adds = 0;
            foreach (var op in ops)
            {
                if (op.Add)
                {
                    if (!fresh.Contains(op.Key)) fresh.Add(op.Vector.Span, op.Key);
                    adds++;
                }
                else
                {
                    fresh.Remove(op.Key);
                }
            }
            lock (_journalLock)
            {
                // The journal is the same list (only this training's swap or failure replaces it, and neither runs now).
                if (_journal is not null)
                    for (int i = from + done; i < from + done + ops.Length; i++)
                        if (_journal[i].Add) _journal[i] = _journal[i] with { Vector = default };
            }
            BacklogReleased(adds * JournalOpBytes);
            done += ops.Length;
            Interlocked.Add(ref _journalReplayed, ops.Length);
        }
        return done;
    }

    private readonly object _journalLock = new();

    // The current index's snapshot file, the LSN it was taken at, and the keys removed from the index since (applier
    // thread; recovery restores them). A trained index not swapped in yet may be saving to _pendingIndexFile.
    private string? _indexFile;
    private long _indexLsn;
    private readonly List<long> _indexRemoved = [];
    private volatile string? _pendingIndexFile;

    private void SwapIndex(IVectorIndex fresh, int replayed, string file, long snapshotLsn)
    {
        ReplayJournal(fresh, replayed);
        IVectorIndex? old;
        _lock.EnterWriteLock();
        try
        {
            old = _index;
            _index = fresh;
            _flat = null;
            if (_autoTarget is not null) _spec = fresh.Spec; // Auto: the tuner's choice is now the collection's pipeline
            lock (_journalLock)
            {
                // The saved file may still hold any key removed since the snapshot (journaled removes): list them all.
                _indexRemoved.Clear();
                foreach (var op in _journal!)
                    if (!op.Add) _indexRemoved.Add(op.Key);
                _journal = null;
            }
            BacklogCleared();
            _indexFile = file;
            _indexLsn = snapshotLsn;
            _pendingIndexFile = null;
        }
        finally { _lock.ExitWriteLock(); }
        if (_compactFresh)
        {
            _compactFresh = false;
            _compactions++;
            EngineLog.Compacted(_log, Name, old?.TombstoneCount ?? 0);
        }
        old?.Dispose(); // no search can hold it: they all run under the read lock, and the swap held the write lock
        _trainedCount = fresh.Count;
        _retrains++;
        _metrics.Trained(Name);
        EngineLog.Trained(_log, Name, fresh.Count, Stopwatch.GetElapsedTime(_trainingStarted).TotalSeconds, _retrains);
        _checkpointRequested = true; // the next manifest names the trained index's file (recovery need not retrain); taken in the background
    }

    // ---------------------------------------------------------------- checkpoints

    // Record keys replaced or deleted since the last checkpoint plan (applier thread). They stay in the record store
    // until the next checkpoint deletes them just before it starts, so the store a checkpoint captures never lacks a
    // record that its manifest's state still holds (see PlanCheckpoint).
    private readonly List<long> _garbage = [];
    private Task<Guid>? _storeCheckpoint;   // the record-store checkpoint running on the maintenance thread, or null
    private CheckpointPlan? _checkpointPlan;  // what that checkpoint's manifest will say
    private bool _checkpointRequested;      // a swap asked for a checkpoint (applier thread)

    /// <summary>
    /// What a checkpoint's manifest records, fixed on the applier thread when the checkpoint starts: the applied LSN,
    /// where replay starts, the index snapshot and the keys removed from it since, and the garbage record keys the
    /// maintenance thread deletes from the store before the store checkpoint begins.
    /// </summary>
    private sealed record CheckpointPlan(long AppliedLsn, long ReplayFrom, long TrainedCount, string? IndexFile, long IndexLsn, long[]? IndexRemoved,
        long[] Garbage, bool CompactStore, long Started);

    /// <summary>
    /// Fixes a checkpoint's plan (applier thread). The store checkpoint that follows runs beside later writes, so it
    /// captures this state plus a prefix of the writes applied after it (FASTER's checkpoints are consistent per
    /// session: the applier's puts since, never a later deletion, as deletions are only made by the maintenance
    /// thread before the checkpoint starts). Recovery accepts that: records newer than the manifest's LSN are ones the
    /// log replay would write anyway, and of two records of one id the newer wins (<see cref="Recover"/>).
    /// </summary>
    private CheckpointPlan PlanCheckpoint()
    {
        // Entries not applied yet start at the first pending one (or the tail): recovery replays from there.
        long replayFrom;
        lock (_seqLock)
            replayFrom = _pending.TryPeek(out var first) ? first.Address : _wal.TailAddress;
        bool compact = RecordLogCompactionDue(_store.LogBytes, _keys.Count, Dimension, _options.RecordMemoryBytes, Interlocked.Read(ref _logBytesAfterCompaction));
        string? indexFile = _index is null ? null : _indexFile;
        var garbage = _garbage.ToArray();
        _garbage.Clear();
        return new CheckpointPlan(_appliedLsn, replayFrom, _trainedCount, indexFile, _indexLsn, indexFile is null ? null : _indexRemoved.ToArray(),
            garbage, compact, Stopwatch.GetTimestamp());
    }

    // The record log's size right after its last compaction (the live records' true size then, payloads included).
    private long _logBytesAfterCompaction;

    /// <summary>
    /// Whether a checkpoint compacts the record log: when it is past the store's memory (only records on disk can be
    /// compacted) and at least half of it is garbage — replaced or deleted records and their tombstones. The live size is
    /// estimated as records × (4·D + 64) bytes, and never below what the log measured after the last compaction (so large
    /// payloads, which the estimate leaves out, cannot make it compact again and again for nothing). Each compaction then
    /// copies at most as many bytes as it frees. (It was three times the live data and past 64 MiB: a churn that
    /// replaces as much as it inserts grew the live set faster than the garbage and never reached it; issue 20.)
    /// </summary>
    internal static bool RecordLogCompactionDue(long logBytes, long liveRecords, int dimension, long memoryBytes, long logBytesAfterLastCompaction)
    {
        long live = Math.Max(Math.Max(1, liveRecords) * (4L * dimension + 64), logBytesAfterLastCompaction);
        return logBytes > memoryBytes && logBytes > 2 * live;
    }

    /// <summary>The store's part of a checkpoint (maintenance thread, or the applier while none runs): garbage out, compaction if due, FASTER checkpoint.</summary>
    private Guid RunStoreCheckpoint(CheckpointPlan plan, bool background = false)
    {
        if (plan.Garbage.Length > 0) WaitForEarlierReaders(); // a search reading outside the lock may still read them
        foreach (long key in plan.Garbage) _store.Delete(key);
        if (plan.CompactStore)
        {
            long before = _store.LogBytes, started = Stopwatch.GetTimestamp();
            _store.Compact();
            Interlocked.Exchange(ref _logBytesAfterCompaction, _store.LogBytes);
            Interlocked.Increment(ref _recordLogCompactions);
            EngineLog.StoreCompacted(_log, Name, before, _store.LogBytes, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        }
        if (background) StoreCheckpointGate?.Wait(TimeSpan.FromSeconds(60));
        return _store.Checkpoint();
    }

    private int _recordLogCompactions;

    /// <summary>Record-log compactions since open, automatic and asked for (tests, diagnostics).</summary>
    internal int RecordLogCompactions => Volatile.Read(ref _recordLogCompactions);

    /// <summary>Test seam: a background checkpoint waits here (up to a minute) after its deletions, before the store checkpoint starts.</summary>
    internal ManualResetEventSlim? StoreCheckpointGate { get; set; }

    /// <summary>Test seam: starts a background checkpoint after the writes acknowledged so far (none when one runs) and returns its plan's LSN.</summary>
    internal async Task<long> BeginBackgroundCheckpointAsync()
    {
        long lsn = -1;
        await RunOnApplier(() =>
        {
            ApplyPending();
            if (_storeCheckpoint is not null) return;
            BeginStoreCheckpoint();
            lsn = _checkpointPlan!.AppliedLsn;
        }).ConfigureAwait(false);
        return lsn;
    }

    /// <summary>True while a background checkpoint runs (tests).</summary>
    internal bool CheckpointInProgress => _storeCheckpoint is { IsCompleted: false };

    /// <summary>Starts a checkpoint on its own thread (applier thread); <see cref="Maintain"/> finishes it when done.</summary>
    private void BeginStoreCheckpoint()
    {
        var plan = PlanCheckpoint();
        // Callers waiting for a checkpoint (CheckpointAsync, CompactAsync) are answered by this one: it starts after
        // their writes were applied. A compaction asked for makes it compact the record log.
        if (_checkpointRequests.Any(r => r.Compact)) plan = plan with { CompactStore = true };
        _checkpointWaiters.AddRange(_checkpointRequests.Select(r => r.Done));
        _checkpointRequests.Clear();
        _checkpointRequested = false;
        _checkpointPlan = plan;
        _storeCheckpoint = Task.Factory.StartNew(() =>
        {
            try { return RunStoreCheckpoint(plan, background: true); }
            finally { WakeApplier(); } // finished promptly, not at the applier's next 100 ms tick
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    private void WakeApplier()
    {
        try { _wake.Set(); }
        catch (ObjectDisposedException) { /* closed meanwhile */ }
    }

    // Explicit checkpoints and compactions asked for and not started yet, and those the running checkpoint answers (applier thread).
    private readonly List<(TaskCompletionSource Done, bool Compact)> _checkpointRequests = [];
    private readonly List<TaskCompletionSource> _checkpointWaiters = [];

    private void FailCheckpointWaiters(Exception e)
    {
        foreach (var (done, _) in _checkpointRequests) done.TrySetException(e);
        foreach (var done in _checkpointWaiters) done.TrySetException(e);
        _checkpointRequests.Clear();
        _checkpointWaiters.Clear();
    }

    /// <summary>
    /// Asks for a checkpoint after the writes acknowledged so far (compacting the record log when <paramref name="compact"/>),
    /// taken on the maintenance thread like the periodic ones, so writes go on meanwhile; the task completes when its
    /// manifest is written.
    /// </summary>
    private async Task RequestCheckpointAsync(bool compact)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await RunOnApplier(() =>
        {
            ApplyPending();
            _checkpointRequests.Add((done, compact));
            if (_storeCheckpoint is null) BeginStoreCheckpoint();
        }).ConfigureAwait(false);
        await done.Task.ConfigureAwait(false);
    }

    /// <summary>Waits for a background checkpoint (applier thread) and finishes it: manifest, then clean-up. A failure faults the collection.</summary>
    private void WaitForStoreCheckpoint()
    {
        if (_storeCheckpoint is null) return;
        try { _storeCheckpoint.Wait(); }
        catch (AggregateException) { /* rethrown by FinishStoreCheckpoint */ }
        FinishStoreCheckpoint();
    }

    private void FinishStoreCheckpoint()
    {
        var task = _storeCheckpoint!;
        var plan = _checkpointPlan!;
        _storeCheckpoint = null;
        _checkpointPlan = null;
        var waiters = _checkpointWaiters.ToArray();
        _checkpointWaiters.Clear();
        try
        {
            Guid token = task.GetAwaiter().GetResult(); // a failed store checkpoint faults the collection, as one on the applier did
            CompleteCheckpoint(plan, token);
        }
        catch (Exception e)
        {
            foreach (var w in waiters) w.TrySetException(e);
            throw;
        }
        foreach (var w in waiters) w.TrySetResult();
    }

    /// <summary>
    /// Writes the manifest naming the store checkpoint and the index snapshot (atomic rename); only then old
    /// checkpoints, snapshots and log entries are deleted (applier thread).
    /// </summary>
    private void CompleteCheckpoint(CheckpointPlan plan, Guid token)
    {
        CollectionFiles.WriteManifest(_dir, new CollectionFiles.Manifest(plan.AppliedLsn, token, plan.IndexFile, plan.ReplayFrom, plan.TrainedCount,
            plan.IndexFile is null ? null : plan.IndexLsn, plan.IndexRemoved));
        _checkpointLsn = plan.AppliedLsn;
        _lastCheckpointTicks = Stopwatch.GetTimestamp();
        _metrics.Checkpointed(Name);
        EngineLog.Checkpointed(_log, Name, plan.AppliedLsn, Stopwatch.GetElapsedTime(plan.Started).TotalMilliseconds);

        _store.RemoveCheckpointsExcept(token);
        foreach (var f in Directory.GetFiles(_dir, IndexFilePrefix + "*"))
        {
            if (!f.EndsWith(".ivf", StringComparison.Ordinal) && !f.EndsWith(".pqx", StringComparison.Ordinal)) continue;
            string name = Path.GetFileName(f);
            // Kept: the manifest's snapshot, the one of the index in use (a swap may have happened meanwhile), one being saved.
            if (name == plan.IndexFile || name == _indexFile || name == _pendingIndexFile) continue;
            File.Delete(f);
        }
        _wal.TruncateUntil(plan.ReplayFrom);
    }

    /// <summary>A whole checkpoint on the applier thread (explicit calls and close): waits for a background one first.</summary>
    private void Checkpoint()
    {
        WaitForStoreCheckpoint();
        var plan = PlanCheckpoint();
        _checkpointRequested = false;
        CompleteCheckpoint(plan, RunStoreCheckpoint(plan));
    }

    /// <summary>
    /// Takes a checkpoint now (after the writes acknowledged so far), so a restart replays nothing before it. It runs on
    /// the maintenance thread beside later writes (one checkpoint at a time: after a running one, if any).
    /// </summary>
    public Task CheckpointAsync(CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return RequestCheckpointAsync(compact: false).WaitAsync(cancellationToken);
    }

    /// <summary>
    /// Runs maintenance now: drops the index's tombstones and compacts the record store's log, then checkpoints. Writes
    /// go on meanwhile: the index is compacted by training a fresh one in the background (its journal replayed, then
    /// compacted before the short swap), as background maintenance does, and the log is compacted by a checkpoint on
    /// the maintenance thread. Returns when both are done; tombstones left by deletes made meanwhile are for the next one.
    /// </summary>
    public async Task CompactAsync()
    {
        await CompactIndexAsync().ConfigureAwait(false);
        await RequestCheckpointAsync(compact: true).ConfigureAwait(false); // dead records are deleted, then the log compacted
    }

    // A compaction asked for: the next swap compacts its fresh index first (read by the training thread).
    private volatile bool _compactFresh;

    private async Task CompactIndexAsync()
    {
        // Two rounds at most: a training already past its compaction point when this was asked leaves the tombstones of
        // the deletes it replayed, which a second one drops.
        for (int round = 0; round < 2; round++)
        {
            Task? training = null;
            await RunOnApplier(() =>
            {
                ApplyPending();
                if (_index is not { TombstoneCount: > 0 }) return;
                _compactFresh = true;
                training = EnsureTraining();
            }).ConfigureAwait(false);
            if (training is null) return;
            await training.ConfigureAwait(false);
        }
    }

    /// <summary>The training in flight, or a new one (applier thread); a finished one is collected first, as Maintain does.</summary>
    private Task EnsureTraining()
    {
        if (_training is { IsCompleted: true } t)
        {
            _training = null;
            if (t.Exception is { } e) EngineLog.TrainingFailed(_log, Name, e.InnerException?.Message ?? e.Message, e.InnerException);
        }
        return _training ??= StartTraining();
    }

    /// <summary>
    /// Starts index training if the collection has enough vectors and no trained index yet (or it is due for a
    /// retrain), and waits for it to be swapped in. Returns false when there are too few vectors to train.
    /// </summary>
    public async Task<bool> WaitForIndexAsync(CancellationToken cancellationToken = default)
    {
        Task? training = null;
        bool enough = false;
        await RunOnApplier(() =>
        {
            ApplyPending();
            enough = _keys.Count >= TrainingThreshold;
            if (_training is null && enough && NeedsTraining(_keys.Count)) _training = StartTraining();
            training = _training;
        }).ConfigureAwait(false);
        if (training is not null) await training.WaitAsync(cancellationToken).ConfigureAwait(false);
        return enough;
    }

    /// <summary>Stops the applier after it has applied and acknowledged every accepted write, checkpoints, and closes the files.</summary>
    public void Dispose()
    {
        if (!BeginClose()) return;
        if (_applier.IsAlive) _applier.Join();
        // The applier's exit cancelled the training; wait until it has stopped reading the store (it checks between chunks).
        try { _training?.Wait(); }
        catch (AggregateException) { /* a failed or cancelled training changes nothing durable */ }
        FinishClose();
    }

    /// <summary>
    /// <see cref="Dispose"/> without blocking a thread: awaits the applier's last group, checkpoint and any training
    /// in flight, then closes the files.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (!BeginClose()) return;
        await _applierExited.Task.ConfigureAwait(false);
        if (_training is { } t)
        {
            // Cancelled by the applier's exit; it stops at its next chunk boundary.
            try { await t.ConfigureAwait(false); }
            catch (Exception e) when (e is AggregateException or OperationCanceledException or InvalidOperationException or AdannsException)
            {
                // A failed or cancelled training changes nothing durable.
            }
        }
        FinishClose();
    }

    private bool BeginClose()
    {
        lock (_seqLock)
        {
            if (_closed) return false;
            _closed = true;
        }
        _stopRequested = true;
        _wake.Set();
        SignalBacklog(); // throttled writers fail with Closed rather than wait
        return true;
    }

    private void FinishClose()
    {
        FailQueuedJobs();
        // A faulted applier leaves a background checkpoint running: it must finish before the store closes.
        try { _storeCheckpoint?.Wait(); }
        catch (AggregateException) { /* the collection is faulted or closing: nothing more to record */ }
        _lock.EnterWriteLock();
        try
        {
            WaitForAllReaders(); // searches reading the store outside the lock (none can start: the write lock is held)
            _wal.Dispose();
            _store.Dispose(); // waits for asynchronous reads still in flight
        }
        finally { _lock.ExitWriteLock(); }
        _wake.Dispose();
    }
}
