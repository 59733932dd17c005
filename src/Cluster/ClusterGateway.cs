using System.Collections.Concurrent;
using Adanns.Engine;
using Adanns.Engine.Collections;
using Adanns.Engine.Indexes;
using Adanns.Engine.Storage;
using Microsoft.Extensions.Options;
using Orleans.Runtime;

namespace Adanns.Cluster;

/// <summary>
/// The cluster seen as one database, from any node: routes writes to shards by id hash (each shard acknowledges
/// after its write consistency), fans reads out to one live replica per shard (retrying another when one fails)
/// and merges the per-shard top-k. Every node's gRPC server answers through its own gateway. Errors are
/// <see cref="AdannsException"/>s with the engine's codes (<see cref="AdannsErrorCode.Closed"/> for "no live
/// replica", which a server reports as Unavailable).
/// </summary>
public sealed class ClusterGateway(IGrainFactory grains, IClusterMembershipService membership, ILocalSiloDetails local, IOptions<ClusterNodeOptions> options)
{
    private static readonly TimeSpan ReadTimeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan WriteTimeout = TimeSpan.FromSeconds(60);
    private readonly ClusterNodeOptions _options = options.Value;
    private readonly ConcurrentDictionary<string, Route> _routes = new(StringComparer.Ordinal);
    private int _rotation;

    private sealed record Route(ClusterCollectionSpec Spec, string[][] ReadNodes, DateTime ExpiresUtc);

    /// <summary>This node's name.</summary>
    public string LocalNode => local.Name;

    /// <summary>Cluster members as membership reports them (every status), sorted by name.</summary>
    public IReadOnlyList<ClusterMemberInfo> Members() =>
        membership.CurrentSnapshot.Members.Values
            .Select(m => new ClusterMemberInfo(m.Name, m.SiloAddress.ToString(), m.Status.ToString(), m.SiloAddress.Equals(local.SiloAddress)))
            .OrderBy(m => m.Name, StringComparer.Ordinal).ThenBy(m => m.Address, StringComparer.Ordinal).ToArray();

    private HashSet<string> AliveNodes() =>
        membership.CurrentSnapshot.Members.Values.Where(m => m.Status == SiloStatus.Active).Select(m => m.Name).ToHashSet(StringComparer.Ordinal);

    private static async Task<T> Call<T>(Task<T> call, TimeSpan timeout)
    {
        try
        {
            return await call.WaitAsync(timeout).ConfigureAwait(false);
        }
        catch (ClusterException e)
        {
            throw e.ToAdannsException();
        }
    }

    private static async Task Call(Task call, TimeSpan timeout)
    {
        try
        {
            await call.WaitAsync(timeout).ConfigureAwait(false);
        }
        catch (ClusterException e)
        {
            throw e.ToAdannsException();
        }
    }

    // ---------------------------------------------------------------- collections

    /// <summary>Creates a sharded collection (replicas placed on distinct live nodes).</summary>
    public async Task<ClusterCollectionSpec> CreateCollectionAsync(ClusterCollectionSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (spec.Config.Name is null or { Length: 0 })
            throw new AdannsException(AdannsErrorCode.InvalidConfiguration, "Collection name must be 1–56 characters from A–Z, a–z, 0–9, '_' and '-'.");
        var created = await Call(grains.GetGrain<ICollectionGrain>(spec.Config.Name).Create(spec), WriteTimeout).ConfigureAwait(false);
        _routes.TryRemove(spec.Config.Name, out _);
        return created;
    }

    /// <summary>Names of the cluster's collections, sorted.</summary>
    public Task<string[]> ListCollectionsAsync() => Call(grains.GetGrain<ICatalogGrain>(0).List(), ReadTimeout);

    /// <summary>The collection's spec, or null when there is none.</summary>
    public async Task<ClusterCollectionSpec?> TryGetSpecAsync(string name)
    {
        if (string.IsNullOrEmpty(name)) return null;
        return await Call(grains.GetGrain<ICollectionGrain>(name).GetSpec(), ReadTimeout).ConfigureAwait(false);
    }

    /// <summary>Drops a collection on every node; false when there is none.</summary>
    public async Task<bool> DropCollectionAsync(string name)
    {
        bool dropped = await Call(grains.GetGrain<ICollectionGrain>(name).Drop(), WriteTimeout).ConfigureAwait(false);
        _routes.TryRemove(name, out _);
        return dropped;
    }

    /// <summary>Spec, live count and placement (shards → replicas → node and state).</summary>
    public async Task<ClusterCollectionInfo> DescribeAsync(string name)
    {
        var spec = await SpecAsync(name).ConfigureAwait(false);
        var shards = await Task.WhenAll(Enumerable.Range(0, spec.Shards).Select(s => Call(Shard(name, s).Describe(), ReadTimeout))).ConfigureAwait(false);
        var alive = AliveNodes();
        long count = 0;
        bool trained = true;
        foreach (var shard in shards)
        {
            var status = await FirstReplica(shard.Replicas.Where(r => r.State == ReplicaState.Active && alive.Contains(r.Node)).Select(r => r.Node),
                n => grains.GetGrain<INodeGrain>(n).Status(ShardRouting.ReplicaName(name, shard.Shard))).ConfigureAwait(false);
            count += status?.Count ?? 0;
            trained &= status?.IndexTrained ?? false;
        }
        return new ClusterCollectionInfo(spec, count, trained, shards);
    }

    private static async Task<T?> FirstReplica<T>(IEnumerable<string> nodes, Func<string, Task<T>> call) where T : struct
    {
        foreach (var n in nodes)
        {
            try { return await call(n).WaitAsync(ReadTimeout).ConfigureAwait(false); }
            catch (Exception) { /* try the next */ }
        }
        return null;
    }

    private async Task<ClusterCollectionSpec> SpecAsync(string name) =>
        await Transient(() => TryGetSpecAsync(name)).ConfigureAwait(false) ?? throw new AdannsException(AdannsErrorCode.CollectionNotFound, $"No collection named \"{name}\".");

    /// <summary>
    /// Retries a grain call that failed in transport (the grain's silo just died and its activation has not moved
    /// yet: membership declares the silo dead within seconds, then the grain activates elsewhere). Engine and
    /// cluster errors are answers, not retried.
    /// </summary>
    private static async Task<T> Transient<T>(Func<Task<T>> call)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            try
            {
                return await call().ConfigureAwait(false);
            }
            catch (Exception e) when (e is not (AdannsException or ClusterException or OperationCanceledException) && sw.Elapsed < TransientBudget)
            {
                await Task.Delay(100).ConfigureAwait(false);
            }
        }
    }

    private static readonly TimeSpan TransientBudget = TimeSpan.FromSeconds(15);

    private IShardGrain Shard(string name, int shard) => grains.GetGrain<IShardGrain>($"{name}/{shard}");

    private async Task<Route> RouteAsync(string name, bool refresh = false)
    {
        _routes.TryGetValue(name, out var cached);
        if (!refresh && cached is not null && cached.ExpiresUtc > DateTime.UtcNow) return cached;
        var spec = await SpecAsync(name).ConfigureAwait(false);
        // A shard whose grain cannot answer right now (its silo just died) keeps its last known replicas: the
        // replica loop skips dead ones anyway.
        var reads = await Task.WhenAll(Enumerable.Range(0, spec.Shards).Select(async s =>
        {
            try
            {
                return await Call(Shard(name, s).ReadReplicas(), ReadTimeout).ConfigureAwait(false);
            }
            catch (Exception) when (cached is not null && cached.Spec.Shards == spec.Shards)
            {
                return cached.ReadNodes[s];
            }
            catch (Exception e) when (e is not (AdannsException or ClusterException))
            {
                return await Transient(() => Call(Shard(name, s).ReadReplicas(), ReadTimeout)).ConfigureAwait(false);
            }
        })).ConfigureAwait(false);
        var route = new Route(spec, reads, DateTime.UtcNow + _options.RouteCacheTtl);
        _routes[name] = route;
        return route;
    }

    /// <summary>The collection's engine configuration (dimension, metric, ...).</summary>
    public async Task<ClusterCollectionSpec> GetSpecAsync(string name) => (await RouteAsync(name).ConfigureAwait(false)).Spec;

    // ---------------------------------------------------------------- reads

    /// <summary>
    /// Runs <paramref name="read"/> on one live replica of the shard, trying the next one when a replica fails
    /// (and once more after refreshing the route). A rejected request (bad input) is not retried.
    /// </summary>
    private async Task<T> ReadShard<T>(string name, int shard, Func<INodeGrain, string, Task<T>> read)
    {
        string replica = ShardRouting.ReplicaName(name, shard);
        Exception? last = null;
        for (int attempt = 0; attempt < 2; attempt++)
        {
            var route = await RouteAsync(name, refresh: attempt > 0).ConfigureAwait(false);
            var alive = AliveNodes();
            var nodes = route.ReadNodes[shard];
            int start = (int)((uint)Interlocked.Increment(ref _rotation) % (uint)Math.Max(1, nodes.Length));
            // Live nodes first (membership may lag a kill), then the rest.
            var order = Enumerable.Range(0, nodes.Length).Select(i => nodes[(start + i) % nodes.Length]).OrderBy(n => alive.Contains(n) ? 0 : 1).ToArray();
            foreach (var n in order)
            {
                try
                {
                    return await read(grains.GetGrain<INodeGrain>(n), replica).WaitAsync(ReadTimeout).ConfigureAwait(false);
                }
                catch (ClusterException e) when (!e.ReplicaFailure)
                {
                    throw e.ToAdannsException();
                }
                catch (Exception e) when (e is not AdannsException)
                {
                    last = e;
                }
            }
        }
        throw new AdannsException(AdannsErrorCode.Closed, $"Shard {shard} of \"{name}\" has no live replica that answers ({last?.Message}).", last);
    }

    /// <summary>
    /// The k best records over all shards, best first: each shard's top-k from one live replica, merged by the
    /// engine's order (<see cref="SearchHitOrder"/>: score by metric direction, then the lower record id). Every shard
    /// breaks equal scores by that rule too, so with exact per-shard searches the result equals a single node's exact
    /// search, equal scores included.
    /// </summary>
    public async Task<(SearchHit[] Hits, SearchAnswer Totals)> SearchAsync(string name, float[] query, int k, SearchParams? parameters = null,
        FilterSpec? filter = null, bool withPayload = false)
    {
        var route = await RouteAsync(name).ConfigureAwait(false);
        var call = new SearchCall { Query = query, K = k, Params = parameters, Filter = filter, WithPayload = withPayload };
        var answers = await Task.WhenAll(Enumerable.Range(0, route.Spec.Shards).Select(s => ReadShard(name, s, (g, r) => g.Search(r, call)))).ConfigureAwait(false);
        return (Merge(answers, k, route.Spec.Config.Metric.HigherIsBetter()), Total(answers));
    }

    /// <summary>The per-shard top-k lists merged into one top-k (score by metric direction, then the lower id; see <see cref="SearchHitOrder"/>).</summary>
    public static SearchHit[] Merge(IReadOnlyList<SearchAnswer> answers, int k, bool higherIsBetter)
    {
        var all = new List<SearchHit>();
        foreach (var a in answers) all.AddRange(a.Hits);
        all.Sort(higherIsBetter ? SearchHitOrder.HigherIsBetter : SearchHitOrder.LowerIsBetter);
        return all.Take(k).ToArray();
    }

    private static SearchAnswer Total(SearchAnswer[] answers) => new()
    {
        Path = answers.Length > 0 ? answers[0].Path : SearchPath.Flat,
        ListsProbed = answers.Sum(a => a.ListsProbed),
        VectorsScanned = answers.Sum(a => a.VectorsScanned),
        VectorsReranked = answers.Sum(a => a.VectorsReranked),
        Flops = answers.Sum(a => a.Flops),
    };

    /// <summary>Records by id (missing ones omitted), in the order asked.</summary>
    public async Task<VectorRecord[]> GetAsync(string name, IReadOnlyList<RecordId> ids)
    {
        var route = await RouteAsync(name).ConfigureAwait(false);
        var byShard = ids.GroupBy(id => ShardRouting.ShardOf(id, route.Spec.Shards)).ToArray();
        var parts = await Task.WhenAll(byShard.Select(g => ReadShard(name, g.Key, (n, r) => n.Get(r, g.ToArray(), true)))).ConfigureAwait(false);
        var found = parts.SelectMany(p => p).ToDictionary(p => p.Id);
        var result = new List<VectorRecord>(ids.Count);
        foreach (var id in ids)
            if (found.TryGetValue(id, out var p)) result.Add(new VectorRecord(p.Id, p.Vector, p.Payload));
        return result.ToArray();
    }

    /// <summary>Live records (matching the filter when given).</summary>
    public async Task<long> CountAsync(string name, FilterSpec? filter = null)
    {
        var route = await RouteAsync(name).ConfigureAwait(false);
        var counts = await Task.WhenAll(Enumerable.Range(0, route.Spec.Shards).Select(s => ReadShard(name, s, (n, r) => n.Count(r, filter)))).ConfigureAwait(false);
        return counts.Sum();
    }

    // ---------------------------------------------------------------- writes

    /// <summary>
    /// Upserts records: each shard's part is one atomic batch, acknowledged after the collection's write
    /// consistency. Input is validated first, so a bad record rejects the whole call before anything is written.
    /// </summary>
    public async Task UpsertAsync(string name, IReadOnlyList<VectorRecord> records, bool wait = true)
    {
        ArgumentNullException.ThrowIfNull(records);
        var route = await RouteAsync(name).ConfigureAwait(false);
        int d = route.Spec.Config.Dimension;
        var seen = new HashSet<RecordId>();
        for (int i = 0; i < records.Count; i++)
        {
            var r = records[i] ?? throw new AdannsException(AdannsErrorCode.InvalidId, $"Record {i} of the batch is null.", i);
            var v = r.Vector.Span;
            if (v.Length == 0) throw new AdannsException(AdannsErrorCode.EmptyVector, $"Collection \"{name}\": record {i} (id {r.Id}) has an empty vector.", i);
            if (v.Length != d)
                throw new AdannsException(AdannsErrorCode.WrongDimension, $"Collection \"{name}\": record {i} (id {r.Id}) has {v.Length} dims; the collection holds {d}-dim vectors.", i);
            if (!System.Numerics.Tensors.TensorPrimitives.IsFiniteAll(v))
                throw new AdannsException(AdannsErrorCode.NonFiniteVector, $"Collection \"{name}\": record {i} (id {r.Id}) has a non-finite component.", i);
            if (r.Id.IsString && r.Id.Text is null) throw new AdannsException(AdannsErrorCode.InvalidId, $"Record {i} has no id.", i);
            if (!seen.Add(r.Id))
                throw new AdannsException(AdannsErrorCode.DuplicateId, $"Collection \"{name}\": id {r.Id} appears more than once in the batch (record {i}).", i);
            int pl = PayloadSize.EncodedLength(r.Payload);
            if (pl > route.Spec.Config.MaxPayloadBytes)
                throw new AdannsException(AdannsErrorCode.InvalidPayload, $"Collection \"{name}\": record {i} (id {r.Id}) has a {pl}-byte payload; the limit is {route.Spec.Config.MaxPayloadBytes}.", i);
        }
        var points = new PointDto[records.Count];
        for (int i = 0; i < records.Count; i++) points[i] = PointDto.From(records[i]);
        var byShard = points.GroupBy(p => ShardRouting.ShardOf(p.Id, route.Spec.Shards));
        await Task.WhenAll(byShard.Select(g => WriteShard(name, g.Key,
            new ShardWrite { Points = g.ToArray(), Wait = wait }))).ConfigureAwait(false);
    }

    /// <summary>Deletes records by id (atomically per shard); returns how many existed.</summary>
    public async Task<int> DeleteAsync(string name, IReadOnlyList<RecordId> ids, bool wait = true)
    {
        var route = await RouteAsync(name).ConfigureAwait(false);
        if (ids.Distinct().Count() != ids.Count) throw new AdannsException(AdannsErrorCode.DuplicateId, $"Collection \"{name}\": an id appears more than once in the batch.");
        var results = await Task.WhenAll(ids.GroupBy(id => ShardRouting.ShardOf(id, route.Spec.Shards))
            .Select(g => WriteShard(name, g.Key, new ShardWrite { Delete = true, Ids = g.ToArray(), Wait = wait }))).ConfigureAwait(false);
        return results.Sum(r => r.Deleted);
    }

    /// <summary>Deletes every record matching the filter (per shard: the matches found on one replica, then deleted
    /// through the shard's sequence); returns how many existed.</summary>
    public async Task<int> DeleteWhereAsync(string name, FilterSpec filter, bool wait = true)
    {
        var route = await RouteAsync(name).ConfigureAwait(false);
        var results = await Task.WhenAll(Enumerable.Range(0, route.Spec.Shards).Select(async s =>
        {
            var ids = await ReadShard(name, s, (n, r) => n.FindIds(r, filter, true)).ConfigureAwait(false);
            int deleted = 0;
            for (int start = 0; start < ids.Length; start += 10_000)
            {
                var chunk = ids.AsSpan(start, Math.Min(10_000, ids.Length - start)).ToArray();
                deleted += (await WriteShard(name, s, new ShardWrite { Delete = true, Ids = chunk, Wait = wait }).ConfigureAwait(false)).Deleted;
            }
            return deleted;
        })).ConfigureAwait(false);
        return results.Sum();
    }

    private async Task<WriteResult> WriteShard(string name, int shard, ShardWrite write)
    {
        try
        {
            // Upserts and deletes by id are idempotent, so a write whose shard grain's silo just died is sent again
            // once the grain has moved (a delete's count then covers only what the resend found).
            return await Transient(() => Shard(name, shard).Write(write).WaitAsync(WriteTimeout)).ConfigureAwait(false);
        }
        catch (ClusterException e)
        {
            throw e.ToAdannsException();
        }
        catch (Exception e) when (e is not AdannsException)
        {
            _routes.TryRemove(name, out _);
            throw new AdannsException(AdannsErrorCode.Closed,
                $"Shard {shard} of \"{name}\": the write's outcome is unknown ({e.GetType().Name}: {e.Message}); retry it (upserts and deletes are idempotent).", e);
        }
    }

    // ---------------------------------------------------------------- admin

    /// <summary>Waits until every active replica's index is trained (false: a shard has too few vectors).</summary>
    public async Task<bool> WaitForIndexAsync(string name)
    {
        var spec = await SpecAsync(name).ConfigureAwait(false);
        var r = await Task.WhenAll(Enumerable.Range(0, spec.Shards).Select(s => Call(Shard(name, s).WaitForIndex(), TimeSpan.FromMinutes(30)))).ConfigureAwait(false);
        return r.All(x => x);
    }

    /// <summary>Checkpoints every active replica.</summary>
    public async Task CheckpointAsync(string name)
    {
        var spec = await SpecAsync(name).ConfigureAwait(false);
        await Task.WhenAll(Enumerable.Range(0, spec.Shards).Select(s => Call(Shard(name, s).Checkpoint(), TimeSpan.FromMinutes(5)))).ConfigureAwait(false);
    }
}
