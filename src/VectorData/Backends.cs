using System.Runtime.CompilerServices;
using Adanns.Client;
using Adanns.Engine;
using Adanns.Engine.Collections;
using Adanns.Engine.Indexes;
using Adanns.Engine.Storage;
using Grpc.Core;
using V1 = Adanns.Protocol.V1;

namespace Adanns.VectorData;

/// <summary>A record as read back from a store.</summary>
internal readonly record struct StoredRecord(RecordId Id, ReadOnlyMemory<float>? Vector, IReadOnlyDictionary<string, PayloadValue>? Payload);

/// <summary>A search hit with the store's own score (in the collection metric's units).</summary>
internal readonly record struct ScoredRecord(StoredRecord Record, float Score);

/// <summary>What a collection is, as far as the provider needs to know.</summary>
internal sealed record CollectionShape(int Dimension, Metric Metric);

/// <summary>Thrown by a backend when the named collection does not exist.</summary>
internal sealed class CollectionMissingException(string name, Exception? inner = null)
    : Exception($"The collection \"{name}\" does not exist: call EnsureCollectionExistsAsync first.", inner);

/// <summary>
/// The operations the provider runs, implemented once over the embedded database and once over the gRPC client, so
/// the two stores share every line of mapping, filtering and scoring above this interface.
/// </summary>
internal interface IAdannsBackend : IDisposable
{
    /// <summary>"embedded" or the server address.</summary>
    string Name { get; }

    IAsyncEnumerable<string> ListCollectionsAsync(CancellationToken ct);

    Task<CollectionShape?> DescribeAsync(string name, CancellationToken ct);

    /// <summary>Creates the collection; false when it exists already.</summary>
    Task<bool> CreateAsync(string name, int dimension, Metric metric, string indexSpec, int? trainThreshold, CancellationToken ct);

    Task<bool> DropAsync(string name, CancellationToken ct);

    Task UpsertAsync(string name, IReadOnlyList<VectorRecord> records, CancellationToken ct);

    Task<IReadOnlyList<StoredRecord>> GetAsync(string name, IReadOnlyList<RecordId> ids, bool withVectors, CancellationToken ct);

    /// <summary>Up to <paramref name="limit"/> records matching the filter after the first <paramref name="skip"/>, in storage order.</summary>
    Task<IReadOnlyList<StoredRecord>> FindAsync(string name, FilterNode? filter, int skip, int limit, bool withVectors, CancellationToken ct);

    Task DeleteAsync(string name, IReadOnlyList<RecordId> ids, CancellationToken ct);

    Task<IReadOnlyList<ScoredRecord>> SearchAsync(string name, ReadOnlyMemory<float> query, int k, FilterNode? filter, SearchParams? parameters,
        bool withVectors, CancellationToken ct);
}

/// <summary>The in-process <see cref="AdannsDatabase"/>.</summary>
internal sealed class EmbeddedBackend(AdannsDatabase database, bool ownsDatabase) : IAdannsBackend
{
    public string Name => "embedded:" + database.DirectoryPath;

    public AdannsDatabase Database => database;

    private Collection Get(string name)
    {
        try
        {
            return database.GetCollection(name);
        }
        catch (AdannsException e) when (e.Code == AdannsErrorCode.CollectionNotFound)
        {
            throw new CollectionMissingException(name, e);
        }
    }

    public async IAsyncEnumerable<string> ListCollectionsAsync([EnumeratorCancellation] CancellationToken ct)
    {
        await Task.CompletedTask.ConfigureAwait(false);
        foreach (var n in database.ListCollections())
        {
            ct.ThrowIfCancellationRequested();
            yield return n;
        }
    }

    public Task<CollectionShape?> DescribeAsync(string name, CancellationToken ct) =>
        Task.FromResult(database.TryGetCollection(name, out var c) && c is not null ? new CollectionShape(c.Dimension, c.Metric) : null);

    public Task<bool> CreateAsync(string name, int dimension, Metric metric, string indexSpec, int? trainThreshold, CancellationToken ct)
    {
        try
        {
            database.CreateCollection(new CollectionConfig(name, dimension, metric, indexSpec) { TrainThreshold = trainThreshold });
            return Task.FromResult(true);
        }
        catch (AdannsException e) when (e.Code == AdannsErrorCode.CollectionExists)
        {
            return Task.FromResult(false);
        }
    }

    public Task<bool> DropAsync(string name, CancellationToken ct) => database.DropCollectionAsync(name);

    public Task UpsertAsync(string name, IReadOnlyList<VectorRecord> records, CancellationToken ct) =>
        Get(name).UpsertAsync(records, wait: true, ct);

    public async Task<IReadOnlyList<StoredRecord>> GetAsync(string name, IReadOnlyList<RecordId> ids, bool withVectors, CancellationToken ct)
    {
        var found = await Get(name).GetManyAsync(ids, ct).ConfigureAwait(false);
        var result = new List<StoredRecord>(found.Count);
        foreach (var r in found)
            if (r is not null) result.Add(new StoredRecord(r.Id, withVectors ? r.Vector : null, r.Payload));
        return result;
    }

    public Task<IReadOnlyList<StoredRecord>> FindAsync(string name, FilterNode? filter, int skip, int limit, bool withVectors, CancellationToken ct)
    {
        var c = Get(name);
        var ids = c.FindIds(filter?.ToEngine(), (int)Math.Min(int.MaxValue, (long)skip + limit)).Skip(skip).ToArray();
        return GetAsync(name, ids, withVectors, ct);
    }

    public Task DeleteAsync(string name, IReadOnlyList<RecordId> ids, CancellationToken ct) => Get(name).DeleteAsync(ids, wait: true, ct);

    public async Task<IReadOnlyList<ScoredRecord>> SearchAsync(string name, ReadOnlyMemory<float> query, int k, FilterNode? filter,
        SearchParams? parameters, bool withVectors, CancellationToken ct)
    {
        var c = Get(name);
        var hits = (await c.SearchAsync(query, k, parameters, filter?.ToEngine(), withPayload: true, ct).ConfigureAwait(false)).Hits;
        IReadOnlyList<VectorRecord?>? full = null;
        if (withVectors) full = await c.GetManyAsync(hits.Select(h => h.Id).ToArray(), ct).ConfigureAwait(false);
        var results = new List<ScoredRecord>(hits.Count);
        for (int i = 0; i < hits.Count; i++)
        {
            ReadOnlyMemory<float>? vector = null;
            if (full is not null)
            {
                // Deleted between the search and this read: the hit is dropped, as a search a moment later would.
                if (full[i] is not { } r) continue;
                vector = r.Vector;
            }
            results.Add(new ScoredRecord(new StoredRecord(hits[i].Id, vector, hits[i].Payload), hits[i].Score));
        }
        return results;
    }

    public void Dispose()
    {
        if (ownsDatabase) database.Dispose();
    }
}

/// <summary>A server reached through <see cref="AdannsClient"/>.</summary>
internal sealed class RemoteBackend(AdannsClient client, bool ownsClient, int maxBatch) : IAdannsBackend
{
    public string Name => "remote";

    public AdannsClient Client => client;

    private static async Task<T> Call<T>(string name, Func<Task<T>> call)
    {
        try
        {
            return await call().ConfigureAwait(false);
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.NotFound)
        {
            throw new CollectionMissingException(name, e);
        }
    }

    public async IAsyncEnumerable<string> ListCollectionsAsync([EnumeratorCancellation] CancellationToken ct)
    {
        foreach (var n in await client.ListCollectionsAsync(ct).ConfigureAwait(false)) yield return n;
    }

    public async Task<CollectionShape?> DescribeAsync(string name, CancellationToken ct)
    {
        try
        {
            var info = await client.GetCollectionAsync(name, ct).ConfigureAwait(false);
            return new CollectionShape((int)info.Dimension, info.Metric switch
            {
                V1.Metric.L2 => Metric.L2,
                V1.Metric.InnerProduct => Metric.InnerProduct,
                _ => Metric.Cosine,
            });
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.NotFound)
        {
            return null;
        }
    }

    public async Task<bool> CreateAsync(string name, int dimension, Metric metric, string indexSpec, int? trainThreshold, CancellationToken ct)
    {
        var m = metric switch
        {
            Metric.L2 => V1.Metric.L2,
            Metric.InnerProduct => V1.Metric.InnerProduct,
            _ => V1.Metric.Cosine,
        };
        try
        {
            await client.CreateCollectionAsync(name, dimension, m, indexSpec, trainThreshold: trainThreshold, cancellationToken: ct).ConfigureAwait(false);
            return true;
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.AlreadyExists)
        {
            return false;
        }
    }

    public async Task<bool> DropAsync(string name, CancellationToken ct)
    {
        try
        {
            await client.DeleteCollectionAsync(name, ct).ConfigureAwait(false);
            return true;
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.NotFound)
        {
            return false;
        }
    }

    public async Task UpsertAsync(string name, IReadOnlyList<VectorRecord> records, CancellationToken ct)
    {
        // The server caps a request at its max_batch; larger upserts go in chunks (each chunk atomic).
        for (int start = 0; start < records.Count; start += maxBatch)
        {
            var points = new List<V1.Point>(Math.Min(maxBatch, records.Count - start));
            for (int i = start; i < Math.Min(records.Count, start + maxBatch); i++)
            {
                var r = records[i];
                var p = V1.Point.Create(ToProto(r.Id), r.Vector.Span);
                if (r.Payload is not null)
                    foreach (var (k, v) in r.Payload) p.Payload[k] = Payloads.ToProto(v);
                points.Add(p);
            }
            await Call(name, () => client.UpsertAsync(name, points, wait: true, ct)).ConfigureAwait(false);
        }
    }

    public async Task<IReadOnlyList<StoredRecord>> GetAsync(string name, IReadOnlyList<RecordId> ids, bool withVectors, CancellationToken ct)
    {
        var found = new List<StoredRecord>(ids.Count);
        for (int start = 0; start < ids.Count; start += maxBatch)
        {
            var chunk = ids.Skip(start).Take(maxBatch).Select(ToProto).ToArray();
            var points = await Call(name, () => client.GetAsync(name, chunk, withVectors, withPayload: true, ct)).ConfigureAwait(false);
            found.AddRange(points.Select(p => FromProto(p.Id, p.Vector, p.Payload, withVectors)));
        }
        return found;
    }

    public async Task<IReadOnlyList<StoredRecord>> FindAsync(string name, FilterNode? filter, int skip, int limit, bool withVectors, CancellationToken ct)
    {
        // Pages of at most maxBatch points matching the filter (every point without one), by offset.
        var found = new List<StoredRecord>();
        var protoFilter = filter?.ToProto();
        while (found.Count < limit)
        {
            int page = Math.Min(maxBatch, limit - found.Count);
            var r = new V1.GetPointsRequest
            {
                Collection = name, WithVectors = withVectors, WithPayload = true, Filter = protoFilter, Limit = (uint)page, Offset = (uint)(skip + found.Count),
            };
            var response = await Call(name, async () => await client.Points.GetAsync(r, cancellationToken: ct).ConfigureAwait(false)).ConfigureAwait(false);
            found.AddRange(response.Points.Select(p => FromProto(p.Id, p.Vector, p.Payload, withVectors)));
            if (response.Points.Count < page) break;
        }
        return found;
    }

    public async Task DeleteAsync(string name, IReadOnlyList<RecordId> ids, CancellationToken ct)
    {
        for (int start = 0; start < ids.Count; start += maxBatch)
        {
            var chunk = ids.Skip(start).Take(maxBatch).Select(ToProto).ToArray();
            await Call(name, () => client.DeleteAsync(name, chunk, wait: true, ct)).ConfigureAwait(false);
        }
    }

    public async Task<IReadOnlyList<ScoredRecord>> SearchAsync(string name, ReadOnlyMemory<float> query, int k, FilterNode? filter,
        SearchParams? parameters, bool withVectors, CancellationToken ct)
    {
        var request = AdannsClient.Query(name, query.Span, k, filter?.ToProto(), ToProto(parameters), withPayload: true, withVectors: withVectors);
        var response = await Call(name, () => client.SearchAsync(request, ct)).ConfigureAwait(false);
        return response.Points.Select(p => new ScoredRecord(FromProto(p.Id, p.Vector, p.Payload, withVectors), p.Score)).ToArray();
    }

    private static V1.SearchParams? ToProto(SearchParams? p)
    {
        if (p is null) return null;
        var r = new V1.SearchParams();
        if (p.NProbe is int n) r.Nprobe = (uint)n;
        if (p.CoarseDim is int c) r.CoarseDim = (uint)c;
        if (p.ScanDim is int s) r.ScanDim = (uint)s;
        if (p.Shortlist is int l) r.Shortlist = (uint)l;
        if (p.Rerank is { } stages)
        {
            r.OverrideRerank = true;
            foreach (var st in stages) r.Rerank.Add(new V1.RerankStage { Dim = (uint)st.Dim, Keep = (uint)(st.Keep ?? 0) });
        }
        if (p.Exact is bool e) r.Exact = e;
        if (p.MaxFlops is double f) r.MaxFlops = f;
        if (p.MaxMicros is double m) r.MaxMicros = m;
        if (p.TargetRecall is double t) r.TargetRecall = t;
        return r;
    }

    private static V1.PointId ToProto(RecordId id) => id.IsString ? V1.PointId.FromString(id.Text!) : V1.PointId.FromNumber(id.Number);

    private static StoredRecord FromProto(V1.PointId id, Google.Protobuf.Collections.RepeatedField<float> vector,
        Google.Protobuf.Collections.MapField<string, V1.Value> payload, bool withVectors)
    {
        RecordId rid = id.KindCase == V1.PointId.KindOneofCase.Str ? new RecordId(id.Str) : new RecordId(id.Num);
        Dictionary<string, PayloadValue>? pl = null;
        if (payload.Count > 0)
        {
            pl = new Dictionary<string, PayloadValue>(payload.Count, StringComparer.Ordinal);
            foreach (var (k, v) in payload) pl[k] = Payloads.FromProto(v);
        }
        return new StoredRecord(rid, withVectors ? vector.ToArray() : null, pl);
    }

    public void Dispose()
    {
        if (ownsClient) client.Dispose();
    }
}
