using Adanns.Engine;
using Adanns.Engine.Collections;
using Adanns.Engine.Indexes;
using Adanns.Engine.Storage;
using Grpc.Core;
using V1 = Adanns.Protocol.V1;

namespace Adanns.Client;

public sealed partial class AdannsClient
{
    /// <summary>Queries sent per SearchBatch call by <see cref="IAdannsCollection.SearchBatchAsync"/> (and between cancellation checks).</summary>
    public const int SearchBatchChunk = 256;

    /// <summary>The collection named <paramref name="name"/> (its dimension and metric are fetched once).</summary>
    /// <exception cref="AdannsException"><see cref="AdannsErrorCode.CollectionNotFound"/>, or a transport code.</exception>
    public async Task<IAdannsCollection> OpenCollectionAsync(string name, CancellationToken cancellationToken = default)
    {
        var info = await Call(() => Collections.GetAsync(new V1.GetCollectionRequest { Name = name }, Options(cancellationToken)).ResponseAsync, cancellationToken)
            .ConfigureAwait(false);
        return new RemoteCollection(this, info.Name, (int)info.Dimension, RemoteConvert.ToMetric(info.Metric));
    }

    /// <summary>Creates a collection from an engine <see cref="CollectionConfig"/>.</summary>
    /// <exception cref="AdannsException"><see cref="AdannsErrorCode.CollectionExists"/>, <see cref="AdannsErrorCode.InvalidConfiguration"/>, …</exception>
    public async Task<IAdannsCollection> CreateCollectionAsync(CollectionConfig config, CancellationToken cancellationToken = default)
    {
        var request = RemoteConvert.ToProto(config);
        var info = await Call(() => Collections.CreateAsync(request, Options(cancellationToken)).ResponseAsync, cancellationToken).ConfigureAwait(false);
        return new RemoteCollection(this, info.Name, (int)info.Dimension, RemoteConvert.ToMetric(info.Metric));
    }

    /// <summary>Drops a collection; false when there is none.</summary>
    public async Task<bool> DropCollectionAsync(string name, CancellationToken cancellationToken = default)
    {
        try
        {
            await Call(() => Collections.DeleteAsync(new V1.DeleteCollectionRequest { Name = name }, Options(cancellationToken)).ResponseAsync, cancellationToken)
                .ConfigureAwait(false);
            return true;
        }
        catch (AdannsException e) when (e.Code == AdannsErrorCode.CollectionNotFound)
        {
            return false;
        }
    }

    /// <inheritdoc/>
    async Task<IReadOnlyList<string>> IAdannsDatabase.ListCollectionsAsync(CancellationToken cancellationToken) =>
        (await Call(() => Collections.ListAsync(new V1.ListCollectionsRequest(), Options(cancellationToken)).ResponseAsync, cancellationToken).ConfigureAwait(false)).Names;

    /// <inheritdoc/>
    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }

    /// <summary>Runs one call, turning a failure into <see cref="AdannsException"/> (or <see cref="OperationCanceledException"/>).</summary>
    internal static async Task<T> Call<T>(Func<Task<T>> call, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        try
        {
            return await call().ConfigureAwait(false);
        }
        catch (RpcException e)
        {
            throw RemoteConvert.ToException(e, ct);
        }
    }
}

/// <summary>A collection on a server, behind the same interface as an embedded <see cref="Collection"/>.</summary>
internal sealed class RemoteCollection(AdannsClient client, string name, int dimension, Metric metric) : IAdannsCollection
{
    public string Name => name;
    public int Dimension => dimension;
    public Metric Metric => metric;

    public async Task UpsertAsync(IReadOnlyList<VectorRecord> records, bool wait = true, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(records);
        if (records.Count == 0) return;
        var r = new V1.UpsertRequest { Collection = name, Wait = wait };
        for (int i = 0; i < records.Count; i++)
            r.Points.Add(RemoteConvert.ToProto(records[i] ?? throw new AdannsException(AdannsErrorCode.InvalidId, $"Record {i} of the batch is null.", i)));
        await AdannsClient.Call(() => client.Points.UpsertAsync(r, client.Options(cancellationToken)).ResponseAsync, cancellationToken).ConfigureAwait(false);
    }

    public async Task<int> DeleteAsync(IReadOnlyList<RecordId> ids, bool wait = true, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(ids);
        if (ids.Count == 0) return 0;
        var r = new V1.DeletePointsRequest { Collection = name, Wait = wait };
        foreach (var id in ids) r.Ids.Add(RemoteConvert.ToProto(id));
        return (int)(await AdannsClient.Call(() => client.Points.DeleteAsync(r, client.Options(cancellationToken)).ResponseAsync, cancellationToken)
            .ConfigureAwait(false)).Deleted;
    }

    public async ValueTask<VectorRecord?> GetAsync(RecordId id, CancellationToken cancellationToken = default) =>
        (await GetManyAsync([id], cancellationToken).ConfigureAwait(false))[0];

    public async Task<IReadOnlyList<VectorRecord?>> GetManyAsync(IReadOnlyList<RecordId> ids, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var result = new VectorRecord?[ids.Count];
        if (ids.Count == 0) return result;
        var r = new V1.GetPointsRequest { Collection = name, WithVectors = true, WithPayload = true };
        foreach (var id in ids.Distinct()) r.Ids.Add(RemoteConvert.ToProto(id));
        var got = await AdannsClient.Call(() => client.Points.GetAsync(r, client.Options(cancellationToken)).ResponseAsync, cancellationToken).ConfigureAwait(false);
        // The server omits missing ids; put each found record back at every position that asked for it.
        var byId = new Dictionary<RecordId, VectorRecord>();
        foreach (var p in got.Points) byId.TryAdd(RemoteConvert.ToRecordId(p.Id), RemoteConvert.ToRecord(p));
        for (int i = 0; i < ids.Count; i++) result[i] = byId.GetValueOrDefault(ids[i]);
        return result;
    }

    public async Task<IReadOnlyList<bool>> ExistAsync(IReadOnlyList<RecordId> ids, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var result = new bool[ids.Count];
        if (ids.Count == 0) return result;
        var r = new V1.GetPointsRequest { Collection = name, WithVectors = false, WithPayload = false };
        foreach (var id in ids.Distinct()) r.Ids.Add(RemoteConvert.ToProto(id));
        var got = await AdannsClient.Call(() => client.Points.GetAsync(r, client.Options(cancellationToken)).ResponseAsync, cancellationToken).ConfigureAwait(false);
        var present = got.Points.Select(p => RemoteConvert.ToRecordId(p.Id)).ToHashSet();
        for (int i = 0; i < ids.Count; i++) result[i] = present.Contains(ids[i]);
        return result;
    }

    public async Task<long> CountAsync(Filter? filter = null, CancellationToken cancellationToken = default) =>
        (long)(await AdannsClient.Call(() => client.Points.CountAsync(new V1.CountRequest { Collection = name, Filter = RemoteConvert.ToProto(filter) },
            client.Options(cancellationToken)).ResponseAsync, cancellationToken).ConfigureAwait(false)).Count;

    public async ValueTask<SearchResult> SearchAsync(ReadOnlyMemory<float> query, int k, SearchParams? parameters = null, Filter? filter = null,
        bool withPayload = false, CancellationToken cancellationToken = default)
    {
        var request = Request(query, k, parameters, filter, withPayload);
        var response = await AdannsClient.Call(() => client.SearchApi.SearchAsync(request, client.Options(cancellationToken)).ResponseAsync, cancellationToken)
            .ConfigureAwait(false);
        return RemoteConvert.ToResult(response, withPayload);
    }

    public async Task<IReadOnlyList<SearchResult>> SearchBatchAsync(IReadOnlyList<ReadOnlyMemory<float>> queries, int k, SearchParams? parameters = null,
        Filter? filter = null, bool withPayload = false, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(queries);
        var results = new List<SearchResult>(queries.Count);
        var protoFilter = RemoteConvert.ToProto(filter);
        var protoParams = RemoteConvert.ToProto(parameters);
        for (int start = 0; start < queries.Count; start += AdannsClient.SearchBatchChunk)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var r = new V1.SearchBatchRequest { Collection = name };
            int n = Math.Min(AdannsClient.SearchBatchChunk, queries.Count - start);
            for (int i = 0; i < n; i++) r.Searches.Add(Request(queries[start + i], k, protoParams, protoFilter, withPayload));
            V1.SearchBatchResponse response;
            try
            {
                response = await AdannsClient.Call(() => client.SearchApi.SearchBatchAsync(r, client.Options(cancellationToken)).ResponseAsync, cancellationToken)
                    .ConfigureAwait(false);
            }
            catch (AdannsException e) when (start > 0 && e.RecordIndex is int at)
            {
                throw new AdannsException(e.Code, e.Message, start + at); // the position in the whole batch
            }
            foreach (var one in response.Results) results.Add(RemoteConvert.ToResult(one, withPayload));
        }
        return results;
    }

    public async Task UpsertTextAsync(IReadOnlyList<TextRecord> records, bool wait = true, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(records);
        if (records.Count == 0) return;
        var r = new V1.UpsertRequest { Collection = name, Wait = wait };
        for (int i = 0; i < records.Count; i++)
        {
            var t = records[i] ?? throw new AdannsException(AdannsErrorCode.InvalidId, $"Record {i} of the batch is null.", i);
            if (string.IsNullOrWhiteSpace(t.Text)) throw new AdannsException(AdannsErrorCode.InvalidArgument, $"Collection \"{name}\": text {i} is empty.", i);
            var p = new V1.Point { Id = RemoteConvert.ToProto(t.Id), Text = t.Text };
            RemoteConvert.Fill(p.Payload, t.Payload);
            r.Points.Add(p);
        }
        await AdannsClient.Call(() => client.Points.UpsertAsync(r, client.Options(cancellationToken)).ResponseAsync, cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask<SearchResult> SearchTextAsync(string text, int k, SearchParams? parameters = null, Filter? filter = null, bool withPayload = false,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (string.IsNullOrWhiteSpace(text)) throw new AdannsException(AdannsErrorCode.InvalidArgument, $"Collection \"{name}\": text 0 is empty.", 0);
        if (k < 1) throw new AdannsException(AdannsErrorCode.InvalidQuery, $"k must be at least 1 (got {k}).");
        var request = new V1.SearchRequest
        {
            Collection = name, TopK = (uint)k, Params = RemoteConvert.ToProto(parameters), Filter = RemoteConvert.ToProto(filter), WithPayload = withPayload, Text = text,
        };
        var response = await AdannsClient.Call(() => client.SearchApi.SearchAsync(request, client.Options(cancellationToken)).ResponseAsync, cancellationToken)
            .ConfigureAwait(false);
        return RemoteConvert.ToResult(response, withPayload);
    }

    private V1.SearchRequest Request(ReadOnlyMemory<float> query, int k, SearchParams? parameters, Filter? filter, bool withPayload) =>
        Request(query, k, RemoteConvert.ToProto(parameters), RemoteConvert.ToProto(filter), withPayload);

    private V1.SearchRequest Request(ReadOnlyMemory<float> query, int k, V1.SearchParams? parameters, V1.Filter? filter, bool withPayload)
    {
        if (k < 1) throw new AdannsException(AdannsErrorCode.InvalidQuery, $"k must be at least 1 (got {k}).");
        var r = new V1.SearchRequest { Collection = name, TopK = (uint)k, Params = parameters, Filter = filter, WithPayload = withPayload };
        r.Vector.AddRange(query.ToArray());
        return r;
    }

    public async Task<CollectionDescription> DescribeAsync(CancellationToken cancellationToken = default) =>
        RemoteConvert.ToDescription(await AdannsClient.Call(() => client.Collections.GetAsync(new V1.GetCollectionRequest { Name = name },
            client.Options(cancellationToken)).ResponseAsync, cancellationToken).ConfigureAwait(false));

    public Task CheckpointAsync(CancellationToken cancellationToken = default) =>
        AdannsClient.Call(() => client.Admin.SnapshotAsync(new V1.SnapshotRequest { Collection = name }, client.Options(cancellationToken)).ResponseAsync,
            cancellationToken);

    public async Task<bool> WaitForIndexAsync(CancellationToken cancellationToken = default)
    {
        var last = await AdannsClient.Call(async () =>
        {
            using var call = client.Admin.BuildIndex(new V1.BuildIndexRequest { Collection = name }, client.Options(cancellationToken));
            V1.BuildIndexProgress? p = null;
            await foreach (var step in call.ResponseStream.ReadAllAsync(cancellationToken).ConfigureAwait(false)) p = step;
            return p;
        }, cancellationToken).ConfigureAwait(false);
        return last?.Phase == V1.BuildIndexProgress.Types.Phase.Done;
    }
}
