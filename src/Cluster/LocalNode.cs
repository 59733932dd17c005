using Adanns.Engine;
using System.Collections.Concurrent;
using System.Text.Json;
using Adanns.Engine.Collections;
using Adanns.Engine.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Adanns.Cluster;

/// <summary>
/// The shard replicas stored on this node: one engine <see cref="AdannsDatabase"/> in the node's data directory,
/// each replica a durable <see cref="Collection"/> named <c>{collection}-s{shard}</c>. Tracks each replica's place in
/// its shard's write sequence: position = engine LSN + offset, where the offset (kept in <c>replicas.json</c>)
/// is non-zero only after a full shard transfer or a write the engine rejected as bad input (which every replica
/// rejects alike and which still takes its sequence numbers).
/// </summary>
public sealed class LocalNode : IDisposable
{
    private const string OffsetsFile = "replicas.json";

    private readonly ClusterNodeOptions _options;
    private readonly ILogger<LocalNode> _log;
    private readonly Lazy<AdannsDatabase> _db;
    private readonly object _gate = new();
    private readonly Dictionary<string, long> _offsets = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Runtime> _runtime = new(StringComparer.Ordinal);

    private sealed class Runtime
    {
        public long Next;          // sequence number the next write must start at (guarded by the Runtime's lock)
        public Task Tail = Task.CompletedTask;   // the last submitted write's completion
        public TaskCompletionSource Advanced = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public volatile bool Serving;

        /// <summary>Moves <see cref="Next"/> and wakes the writes waiting for their turn (caller holds the lock).</summary>
        public void Advance(long next)
        {
            Next = next;
            var old = Advanced;
            Advanced = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            old.TrySetResult();
        }
    }

    /// <summary>How long a write that arrived ahead of its predecessor waits for it before the replica reports
    /// itself out of sync (the shard then catches it up).</summary>
    internal static readonly TimeSpan TurnTimeout = TimeSpan.FromSeconds(20);

    /// <summary>Opens (lazily, at first use) the node's database.</summary>
    public LocalNode(IOptions<ClusterNodeOptions> options, ILogger<LocalNode> log)
    {
        _options = options.Value;
        _log = log;
        _db = new Lazy<AdannsDatabase>(Open, LazyThreadSafetyMode.ExecutionAndPublication);
    }

    private AdannsDatabase Open()
    {
        string dir = Path.GetFullPath(_options.DataDirectory);
        // Backpressure without a timeout: a replica logs its shard's writes in sequence (pipelined), so one may not fail
        // out of turn while a later one is logged; a write waits until the index has caught up.
        var db = AdannsDatabase.Open(dir, _options.Database with { BackpressureTimeout = Timeout.InfiniteTimeSpan });
        string path = Path.Combine(dir, OffsetsFile);
        if (File.Exists(path))
        {
            var stored = JsonSerializer.Deserialize<Dictionary<string, long>>(File.ReadAllText(path)) ?? [];
            foreach (var (k, v) in stored) _offsets[k] = v;
        }
        foreach (var q in db.Quarantined) _log.LogError("Replica {Replica} is quarantined: {Reason}", q.Name, q.Reason);
        _log.LogInformation("Node database {Directory}: {Count} replica(s)", dir, db.ListCollections().Count);
        return db;
    }

    /// <summary>The node's database.</summary>
    public AdannsDatabase Database => _db.Value;

    private void SaveOffsets()
    {
        string dir = Database.DirectoryPath;
        string tmp = Path.Combine(dir, OffsetsFile + ".tmp");
        File.WriteAllText(tmp, JsonSerializer.Serialize(_offsets));
        File.Move(tmp, Path.Combine(dir, OffsetsFile), overwrite: true);
    }

    private long Offset(string name)
    {
        lock (_gate) return _offsets.GetValueOrDefault(name);
    }

    private Collection Get(string name) =>
        Database.TryGetCollection(name, out var c) ? c! : throw new ClusterException(AdannsErrorCode.Closed, $"Replica \"{name}\" does not exist on this node.", replicaFailure: true);

    private Runtime RuntimeOf(string name, Collection c) => _runtime.GetOrAdd(name, _ => new Runtime { Next = c.GetStats().AppliedLsn + Offset(name) + 1 });

    /// <summary>Creates an empty replica (a no-op when it exists with the same configuration).</summary>
    public void CreateReplica(string name, Engine.Collections.CollectionConfig config)
    {
        if (Database.TryGetCollection(name, out var existing))
        {
            if (existing!.Config.Dimension != config.Dimension || existing.Config.Metric != config.Metric || existing.Config.IndexSpec != config.IndexSpec)
                throw new ClusterException(AdannsErrorCode.CollectionExists, $"Replica \"{name}\" exists on this node with another configuration.");
            return;
        }
        try
        {
            Database.CreateCollection(config with { Name = name });
        }
        catch (AdannsException e)
        {
            throw new ClusterException(e.Code, e.Message);
        }
        lock (_gate)
        {
            if (_offsets.Remove(name)) SaveOffsets();
        }
        _runtime.TryRemove(name, out _);
    }

    /// <summary>Deletes a replica and its files; false when there was none.</summary>
    public async Task<bool> DropReplicaAsync(string name)
    {
        if (_runtime.TryRemove(name, out var rt)) rt.Serving = false;
        bool dropped = await Database.DropCollectionAsync(name).ConfigureAwait(false);
        lock (_gate)
        {
            if (_offsets.Remove(name)) SaveOffsets();
        }
        return dropped;
    }

    /// <summary>Position, serving flag and counters of a replica (Exists false when there is none).</summary>
    public ReplicaStatus Status(string name)
    {
        if (!Database.TryGetCollection(name, out var c)) return new ReplicaStatus(false, -1, false, 0, false);
        var rt = RuntimeOf(name, c!);
        var s = c!.GetStats();
        long next;
        lock (rt) next = rt.Next;
        return new ReplicaStatus(true, next - 1, rt.Serving, s.Count, s.IndexTrained);
    }

    /// <summary>Allows or stops reads of a replica (reads only go to replicas known to be up to date).</summary>
    public void SetServing(string name, bool serving) => RuntimeOf(name, Get(name)).Serving = serving;

    /// <summary>
    /// Applies one write of the shard's sequence. Writes are pipelined: each is submitted to the engine (its log
    /// position taken) as soon as its predecessor has been, in sequence order, and then awaits its own durability, so
    /// several batches of one shard are in flight at once (and share the engine's group commit). A write that arrives
    /// before its predecessor waits for it (up to <see cref="TurnTimeout"/>); a write already held (a resend) is
    /// acknowledged again once everything submitted is durable; a gap that does not close fails as out of sync (the
    /// shard then catches the replica up).
    /// </summary>
    public async Task<WriteResult> ApplyAsync(string name, ShardWrite w)
    {
        var c = Get(name);
        var rt = RuntimeOf(name, c);
        var deadline = DateTime.UtcNow + TurnTimeout;
        Task<int>? submitted = null;
        while (true)
        {
            Task wake;
            Task? held = null;
            lock (rt)
            {
                long next = rt.Next;
                if (w.Last < next)
                {
                    held = rt.Tail;
                    wake = Task.CompletedTask;
                }
                else if (w.First == next)
                {
                    try
                    {
                        // Validation and the log position are synchronous in the engine: the order is fixed here.
                        submitted = w.Delete ? c.DeleteAsync(w.Ids, w.Wait) : Upsert(c, w);
                    }
                    catch (AdannsException e) when (e.Code is not (AdannsErrorCode.Closed or AdannsErrorCode.Corrupt or AdannsErrorCode.CollectionFaulted))
                    {
                        // Bad input: rejected before anything was logged, identically on every replica. The write keeps its
                        // sequence numbers, so the offset moves past them.
                        lock (_gate)
                        {
                            _offsets[name] = _offsets.GetValueOrDefault(name) + w.Count;
                            SaveOffsets();
                        }
                        rt.Advance(next + w.Count);
                        throw new ClusterException(e.Code, e.Message);
                    }
                    catch (AdannsException e)
                    {
                        throw new ClusterException(e.Code, $"Replica \"{name}\": {e.Message}", replicaFailure: true);
                    }
                    rt.Tail = submitted;
                    rt.Advance(next + w.Count);
                    break;
                }
                else if (w.First < next)
                {
                    throw new ClusterException(AdannsErrorCode.Closed, $"Replica \"{name}\" is out of sync: it holds writes up to {next - 1}, got {w.First}..{w.Last}.", replicaFailure: true);
                }
                else
                {
                    wake = rt.Advanced.Task;
                }
            }
            if (held is not null)
            {
                try { await held.ConfigureAwait(false); } catch { /* reported to that write's own caller */ }
                return new WriteResult(0, 1);
            }
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero || !await WaitAsync(wake, left).ConfigureAwait(false))
            {
                long next;
                lock (rt) next = rt.Next;
                throw new ClusterException(AdannsErrorCode.Closed,
                    $"Replica \"{name}\" is out of sync: it holds writes up to {next - 1} and waited {TurnTimeout.TotalSeconds:F0} s for them before {w.First}..{w.Last}.", replicaFailure: true);
            }
        }
        try
        {
            int deleted = await submitted.ConfigureAwait(false);
            return new WriteResult(w.Delete ? deleted : 0, 1);
        }
        catch (AdannsException e)
        {
            // The write was logged but did not become durable: the collection is faulted. Its position is recomputed
            // from what it applied the next time it is asked.
            _runtime.TryRemove(name, out _);
            throw new ClusterException(e.Code, $"Replica \"{name}\": {e.Message}", replicaFailure: true);
        }
    }

    /// <summary>Submits an upsert (bad input throws here, synchronously) and returns its completion.</summary>
    private static Task<int> Upsert(Collection c, ShardWrite w)
    {
        var submitted = c.UpsertAsync(Array.ConvertAll(w.Points, p => p.ToRecord()), w.Wait);
        return Completion(submitted);

        static async Task<int> Completion(Task t)
        {
            await t.ConfigureAwait(false);
            return 0;
        }
    }

    private static async Task<bool> WaitAsync(Task wake, TimeSpan timeout)
    {
        try
        {
            await wake.WaitAsync(timeout).ConfigureAwait(false);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    private Collection Serving(string name)
    {
        var c = Get(name);
        if (!RuntimeOf(name, c).Serving)
            throw new ClusterException(AdannsErrorCode.Closed, $"Replica \"{name}\" is not serving reads (it is catching up).", replicaFailure: true);
        return c;
    }

    /// <summary>Top-k on one replica (which must be serving).</summary>
    public SearchAnswer Search(string name, SearchCall call)
    {
        var c = Serving(name);
        try
        {
            // Hits come back in the engine's order (score, then the lower record id), the order the gateway merges by.
            var hits = c.SearchWithReport(call.Query, call.K, call.Params, call.Filter?.ToFilter(), call.WithPayload, out var report);
            var s = report.Stats;
            return new SearchAnswer
            {
                Hits = hits, Path = report.Path, ListsProbed = s.ListsProbed, VectorsScanned = s.VectorsScanned, VectorsReranked = s.VectorsReranked, Flops = s.Flops,
            };
        }
        catch (AdannsException e)
        {
            throw new ClusterException(e.Code, e.Message, replicaFailure: e.Code is AdannsErrorCode.Closed or AdannsErrorCode.Corrupt or AdannsErrorCode.CollectionFaulted);
        }
    }

    /// <summary>Records by id (missing ids omitted), read from a serving replica.</summary>
    public async Task<PointDto[]> GetAsync(string name, RecordId[] ids, bool requireServing = true)
    {
        var c = requireServing ? Serving(name) : Get(name);
        // One batched read: records on disk are fetched together (what makes a full shard transfer fast).
        var records = await c.GetManyAsync(ids).ConfigureAwait(false);
        var found = new List<PointDto>(ids.Length);
        foreach (var r in records)
            if (r is not null) found.Add(PointDto.From(r));
        return found.ToArray();
    }

    /// <summary>Ids matching a filter (all when null).</summary>
    public RecordId[] FindIds(string name, FilterSpec? filter, bool requireServing = true)
    {
        var c = requireServing ? Serving(name) : Get(name);
        return c.FindIds(filter?.ToFilter()).ToArray();
    }

    /// <summary>Live records, optionally only those matching a filter.</summary>
    public long Count(string name, FilterSpec? filter)
    {
        var c = Serving(name);
        return filter is null ? c.Count : c.FindIds(filter.ToFilter()).Count;
    }

    /// <summary>Loads one page of a full shard transfer into a fresh replica (not through the sequence).</summary>
    public async Task ImportAsync(string name, PointDto[] points)
    {
        var c = Get(name);
        if (points.Length > 0) await c.UpsertAsync(Array.ConvertAll(points, p => p.ToRecord()), wait: true).ConfigureAwait(false);
    }

    /// <summary>Ends a full transfer: the replica now holds the shard up to <paramref name="position"/>.</summary>
    public async Task FinishImportAsync(string name, long position)
    {
        var c = Get(name);
        await c.CheckpointAsync().ConfigureAwait(false);
        long lsn = c.GetStats().AppliedLsn;
        lock (_gate)
        {
            _offsets[name] = position - lsn;
            SaveOffsets();
        }
        var rt = RuntimeOf(name, c);
        lock (rt) rt.Advance(position + 1);
    }

    /// <summary>
    /// Waits until this replica has received every write up to <paramref name="position"/> of its shard's sequence
    /// and applied everything it received (writes sent without wait included): what a full transfer reads from then
    /// reflects every write up to that position (or a later one).
    /// </summary>
    public async Task SyncAsync(string name, long position)
    {
        var c = Get(name);
        var rt = RuntimeOf(name, c);
        var deadline = DateTime.UtcNow + TurnTimeout;
        while (true)
        {
            Task wake;
            lock (rt)
            {
                if (rt.Next - 1 >= position) break;
                wake = rt.Advanced.Task;
            }
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero || !await WaitAsync(wake, left).ConfigureAwait(false))
                throw new ClusterException(AdannsErrorCode.Closed, $"Replica \"{name}\" did not reach position {position} within {TurnTimeout.TotalSeconds:F0} s.", replicaFailure: true);
        }
        long target;
        lock (rt) target = rt.Next - 1 - Offset(name);
        while (c.GetStats().AppliedLsn < target) await Task.Delay(2).ConfigureAwait(false);
    }

    /// <summary>Waits for the replica's index training (false: too few vectors).</summary>
    public Task<bool> WaitForIndexAsync(string name) => Get(name).WaitForIndexAsync();

    /// <summary>Checkpoints the replica.</summary>
    public Task CheckpointAsync(string name) => Get(name).CheckpointAsync();

    /// <summary>Closes the database (every replica checkpoints).</summary>
    public void Dispose()
    {
        if (_db.IsValueCreated) _db.Value.Dispose();
    }
}
