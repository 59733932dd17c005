using System.Diagnostics;
using Adanns.Cluster;
using Adanns.Engine;
using Adanns.Engine.Collections;
using Adanns.Engine.Storage;
using Adanns.Protocol.V1;
using Adanns.Server.Services;
using Grpc.Core;
using Microsoft.Extensions.Options;
using V1 = Adanns.Protocol.V1;

namespace Adanns.Server.Cluster;

/// <summary>Conversions and checks shared by the cluster-mode services.</summary>
internal static class ClusterConvert
{
    /// <summary>
    /// Runs a gateway call, reporting cluster-level failures (silo not started yet, a node's connection dropped)
    /// as Unavailable; engine errors pass through to the interceptor's mapping.
    /// </summary>
    public static async Task<T> Guard<T>(Func<Task<T>> call)
    {
        try
        {
            return await call().ConfigureAwait(false);
        }
        catch (Exception e) when (e is not (AdannsException or RpcException or OperationCanceledException))
        {
            throw new AdannsException(AdannsErrorCode.Closed, $"The cluster could not answer: {AdannsException.CleanMessage(e)}", e);
        }
    }

    public static ClusterCollectionSpec ToSpec(V1.CreateCollectionRequest r, string defaultSpec)
    {
        var config = ProtoConvert.ToConfig(r, defaultSpec);
        int shards = r.HasShards ? Bounded(r.Shards, 1, 256, "shards") : 1;
        int rf = r.HasReplicationFactor ? Bounded(r.ReplicationFactor, 1, 64, "replication_factor") : 1;
        int wc = r.HasWriteConsistency ? Bounded(r.WriteConsistency, 0, 64, "write_consistency") : 0;
        return new ClusterCollectionSpec(config, shards, rf, wc);
    }

    private static int Bounded(uint v, int min, int max, string what) =>
        v >= min && v <= max ? (int)v : throw ProtoConvert.Invalid($"{what} must be in [{min}, {max}] (got {v}).");

    public static V1.CollectionInfo ToInfo(ClusterCollectionInfo info)
    {
        var c = info.Spec.Config;
        var r = new V1.CollectionInfo
        {
            Name = c.Name,
            Dimension = (uint)c.Dimension,
            Metric = ProtoConvert.ToProto(c.Metric),
            IndexSpec = c.IndexSpec,
            Count = (ulong)info.Count,
            IndexTrained = info.IndexTrained,
            HigherIsBetter = c.Metric.HigherIsBetter(),
            TrainThreshold = (uint)(c.TrainThreshold ?? 0),
            MaxPayloadBytes = (uint)c.MaxPayloadBytes,
            Shards = (uint)info.Spec.Shards,
            ReplicationFactor = (uint)info.Spec.ReplicationFactor,
            WriteConsistency = (uint)info.Spec.WriteConsistency,
        };
        foreach (var s in info.Shards)
        {
            var p = new V1.ShardPlacement { Shard = (uint)s.Shard, Sequence = s.Sequence };
            foreach (var rep in s.Replicas)
                p.Replicas.Add(new V1.ReplicaPlacement { Node = rep.Node, State = ToProto(rep.State), Position = rep.Position });
            r.Placement.Add(p);
        }
        return r;
    }

    private static V1.ReplicaState ToProto(Adanns.Cluster.ReplicaState s) => s switch
    {
        Adanns.Cluster.ReplicaState.Active => V1.ReplicaState.Active,
        Adanns.Cluster.ReplicaState.CatchingUp => V1.ReplicaState.CatchingUp,
        Adanns.Cluster.ReplicaState.Dead => V1.ReplicaState.Dead,
        Adanns.Cluster.ReplicaState.Removed => V1.ReplicaState.Removed,
        _ => V1.ReplicaState.Unspecified,
    };

    /// <summary>A proto filter as the cluster's wire filter (validated first by the single-node conversion, which names bad fields).</summary>
    public static FilterSpec? ToFilter(V1.Filter? f, int maxNodes)
    {
        if (f is null) return null;
        ProtoConvert.ToFilter(f, maxNodes);
        return Convert(f, "filter");
    }

    private static FilterSpec Convert(V1.Filter f, string path) => f.KindCase switch
    {
        V1.Filter.KindOneofCase.Equals_ => new FilterSpec { Kind = FilterKind.In, Field = f.Equals_.Field, Values = [ProtoConvert.ToPayloadValue(f.Equals_.Value, path)] },
        V1.Filter.KindOneofCase.In => new FilterSpec { Kind = FilterKind.In, Field = f.In.Field, Values = f.In.Values.Select(v => ProtoConvert.ToPayloadValue(v, path)).ToArray() },
        V1.Filter.KindOneofCase.Range => new FilterSpec
        {
            Kind = FilterKind.Range,
            Field = f.Range.Field,
            Min = f.Range.HasGte ? f.Range.Gte : f.Range.HasGt ? f.Range.Gt : null,
            Max = f.Range.HasLte ? f.Range.Lte : f.Range.HasLt ? f.Range.Lt : null,
            MinInclusive = !f.Range.HasGt,
            MaxInclusive = !f.Range.HasLt,
        },
        V1.Filter.KindOneofCase.And => new FilterSpec { Kind = FilterKind.And, Children = f.And.Filters.Select(x => Convert(x, path)).ToArray() },
        V1.Filter.KindOneofCase.Or => new FilterSpec { Kind = FilterKind.Or, Children = f.Or.Filters.Select(x => Convert(x, path)).ToArray() },
        V1.Filter.KindOneofCase.Not => new FilterSpec { Kind = FilterKind.Not, Children = [Convert(f.Not, path)] },
        _ => throw ProtoConvert.Invalid($"{path}: the condition is not set."),
    };
}

/// <summary>adanns.v1.Collections in cluster mode.</summary>
public sealed class ClusterCollectionsService(ClusterGateway gateway, IOptions<AdannsServerOptions> options, ILogger<ClusterCollectionsService> logger)
    : V1.Collections.CollectionsBase
{
    /// <inheritdoc/>
    public override async Task<V1.CollectionInfo> Create(V1.CreateCollectionRequest request, ServerCallContext context)
    {
        var spec = ClusterConvert.ToSpec(request, options.Value.DefaultIndexSpec);
        await ClusterConvert.Guard(() => gateway.CreateCollectionAsync(spec)).ConfigureAwait(false);
        logger.LogInformation("Created collection {Collection}: D={Dimension}, {Metric}, {Spec}, {Shards} shard(s) × {Rf}, write_consistency {Wc}",
            spec.Config.Name, spec.Config.Dimension, spec.Config.Metric, spec.Config.IndexSpec, spec.Shards, spec.ReplicationFactor, spec.WriteConsistency);
        return ClusterConvert.ToInfo(await ClusterConvert.Guard(() => gateway.DescribeAsync(spec.Config.Name)).ConfigureAwait(false));
    }

    /// <inheritdoc/>
    public override async Task<V1.CollectionInfo> Get(V1.GetCollectionRequest request, ServerCallContext context) =>
        ClusterConvert.ToInfo(await ClusterConvert.Guard(() => gateway.DescribeAsync(request.Name)).ConfigureAwait(false));

    /// <inheritdoc/>
    public override async Task<V1.ListCollectionsResponse> List(V1.ListCollectionsRequest request, ServerCallContext context)
    {
        var r = new V1.ListCollectionsResponse();
        r.Names.Add(await ClusterConvert.Guard(gateway.ListCollectionsAsync).ConfigureAwait(false));
        return r;
    }

    /// <inheritdoc/>
    public override async Task<V1.DeleteCollectionResponse> Delete(V1.DeleteCollectionRequest request, ServerCallContext context)
    {
        if (!await ClusterConvert.Guard(() => gateway.DropCollectionAsync(request.Name)).ConfigureAwait(false))
            throw new AdannsException(AdannsErrorCode.CollectionNotFound, $"No collection named \"{request.Name}\".");
        logger.LogInformation("Dropped collection {Collection}", request.Name);
        return new V1.DeleteCollectionResponse();
    }

    /// <inheritdoc/>
    public override async Task<V1.CollectionExistsResponse> Exists(V1.CollectionExistsRequest request, ServerCallContext context) =>
        new() { Exists = await ClusterConvert.Guard(() => gateway.TryGetSpecAsync(request.Name)).ConfigureAwait(false) is not null };
}

/// <summary>adanns.v1.Points in cluster mode.</summary>
public sealed class ClusterPointsService(ClusterGateway gateway, IOptions<AdannsServerOptions> options) : V1.Points.PointsBase
{
    private readonly LimitOptions _limits = options.Value.Limits;

    /// <inheritdoc/>
    public override async Task<V1.UpsertResponse> Upsert(V1.UpsertRequest request, ServerCallContext context)
    {
        var records = ProtoConvert.ToRecords(request.Points, _limits.MaxBatch);
        await ClusterConvert.Guard(async () => { await gateway.UpsertAsync(request.Collection, records, request.Wait).ConfigureAwait(false); return 0; }).ConfigureAwait(false);
        return new V1.UpsertResponse { Upserted = (uint)records.Length };
    }

    /// <inheritdoc/>
    public override async Task<V1.DeletePointsResponse> Delete(V1.DeletePointsRequest request, ServerCallContext context)
    {
        bool byFilter = request.Filter is not null;
        if (byFilter == request.Ids.Count > 0)
            throw ProtoConvert.Invalid("Delete needs either ids or a filter (exactly one of the two).");
        int deleted = byFilter
            ? await ClusterConvert.Guard(() => gateway.DeleteWhereAsync(request.Collection, ClusterConvert.ToFilter(request.Filter, _limits.MaxFilterNodes)!, request.Wait)).ConfigureAwait(false)
            : await ClusterConvert.Guard(() => gateway.DeleteAsync(request.Collection, ProtoConvert.ToRecordIds(request.Ids, _limits.MaxBatch), request.Wait)).ConfigureAwait(false);
        return new V1.DeletePointsResponse { Deleted = (uint)(request.Wait ? deleted : 0) };
    }

    /// <inheritdoc/>
    public override async Task<V1.GetPointsResponse> Get(V1.GetPointsRequest request, ServerCallContext context)
    {
        var ids = ProtoConvert.ToRecordIds(request.Ids, _limits.MaxBatch);
        var found = await ClusterConvert.Guard(() => gateway.GetAsync(request.Collection, ids)).ConfigureAwait(false);
        var r = new V1.GetPointsResponse();
        foreach (var rec in found)
        {
            var p = new V1.RetrievedPoint { Id = ProtoConvert.ToProto(rec.Id) };
            if (request.WithVectors) p.Vector.AddFloats(rec.Vector.Span);
            if (request.WithPayload) ProtoConvert.FillPayload(p.Payload, rec.Payload);
            r.Points.Add(p);
        }
        return r;
    }

    /// <inheritdoc/>
    public override async Task<V1.CountResponse> Count(V1.CountRequest request, ServerCallContext context)
    {
        var filter = ClusterConvert.ToFilter(request.Filter, _limits.MaxFilterNodes);
        return new V1.CountResponse { Count = (ulong)await ClusterConvert.Guard(() => gateway.CountAsync(request.Collection, filter)).ConfigureAwait(false) };
    }
}

/// <summary>adanns.v1.Search in cluster mode: validates like the single node, fans out through the gateway.</summary>
public sealed class ClusterSearchService(ClusterGateway gateway, IOptions<AdannsServerOptions> options, ServerMetrics metrics) : V1.Search.SearchBase
{
    private readonly LimitOptions _limits = options.Value.Limits;

    /// <inheritdoc/>
    public override async Task<V1.SearchResponse> Search(V1.SearchRequest request, ServerCallContext context)
    {
        var spec = await ClusterConvert.Guard(() => gateway.GetSpecAsync(request.Collection)).ConfigureAwait(false);
        var response = await SearchOneAsync(spec, request, "").ConfigureAwait(false);
        metrics.RecordQueries(1);
        return response;
    }

    /// <inheritdoc/>
    public override async Task<V1.SearchBatchResponse> SearchBatch(V1.SearchBatchRequest request, ServerCallContext context)
    {
        long start = Stopwatch.GetTimestamp();
        ProtoConvert.CheckBatch(request.Searches.Count, _limits.MaxBatch, "searches");
        var spec = await ClusterConvert.Guard(() => gateway.GetSpecAsync(request.Collection)).ConfigureAwait(false);
        var r = new V1.SearchBatchResponse();
        var results = await Task.WhenAll(request.Searches.Select((q, i) => SearchOneAsync(spec, q, $"searches[{i}]: "))).ConfigureAwait(false);
        r.Results.Add(results);
        r.ServerMicros = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
        metrics.RecordQueries(request.Searches.Count);
        return r;
    }

    private async Task<V1.SearchResponse> SearchOneAsync(ClusterCollectionSpec spec, V1.SearchRequest q, string where)
    {
        long start = Stopwatch.GetTimestamp();
        var c = spec.Config;
        if (q.TopK < 1 || q.TopK > _limits.MaxTopK)
            throw ProtoConvert.Invalid($"{where}top_k must be in [1, {_limits.MaxTopK}] (got {q.TopK}).");
        if (q.Vector.Count != c.Dimension)
            throw ProtoConvert.Invalid($"{where}the query vector has {q.Vector.Count} dims; collection \"{c.Name}\" holds {c.Dimension}-dim vectors.");
        if (q.HasScoreThreshold && !float.IsFinite(q.ScoreThreshold))
            throw ProtoConvert.Invalid($"{where}score_threshold must be finite (got {q.ScoreThreshold}).");
        var vector = ProtoConvert.ToArray(q.Vector);
        var filter = ClusterConvert.ToFilter(q.Filter, _limits.MaxFilterNodes);
        var parameters = ProtoConvert.ToSearchParams(q.Params);
        SearchHit[] hits;
        SearchAnswer totals;
        try
        {
            (hits, totals) = await ClusterConvert.Guard(() => gateway.SearchAsync(c.Name, vector, (int)q.TopK, parameters, filter, q.WithPayload)).ConfigureAwait(false);
        }
        catch (AdannsException e) when (where.Length > 0)
        {
            throw new AdannsException(e.Code, where + e.Message, e);
        }
        var response = new V1.SearchResponse();
        bool higher = c.Metric.HigherIsBetter();
        var kept = hits.TakeWhile(h => !q.HasScoreThreshold || (higher ? h.Score >= q.ScoreThreshold : h.Score <= q.ScoreThreshold)).ToArray();
        var vectors = q.WithVectors
            ? (await ClusterConvert.Guard(() => gateway.GetAsync(c.Name, kept.Select(h => h.Id).ToArray())).ConfigureAwait(false)).ToDictionary(r => r.Id)
            : null;
        foreach (var h in kept)
        {
            var p = new V1.ScoredPoint { Id = ProtoConvert.ToProto(h.Id), Score = h.Score };
            if (q.WithPayload) ProtoConvert.FillPayload(p.Payload, h.Payload);
            if (vectors is not null && vectors.TryGetValue(h.Id, out var rec)) p.Vector.AddFloats(rec.Vector.Span);
            response.Points.Add(p);
        }
        response.Stats = new V1.SearchStats
        {
            Path = ProtoConvert.ToProto(totals.Path),
            ListsProbed = (ulong)totals.ListsProbed,
            VectorsScanned = (ulong)totals.VectorsScanned,
            VectorsReranked = (ulong)totals.VectorsReranked,
            Flops = (ulong)totals.Flops,
            ServerMicros = Stopwatch.GetElapsedTime(start).TotalMicroseconds,
        };
        return response;
    }
}

/// <summary>adanns.v1.Admin in cluster mode: index builds and snapshots on every active replica; membership in ServerInfo.</summary>
public sealed class ClusterAdminService(ClusterGateway gateway, IOptions<AdannsServerOptions> options) : V1.Admin.AdminBase
{
    /// <inheritdoc/>
    public override async Task BuildIndex(V1.BuildIndexRequest request, IServerStreamWriter<V1.BuildIndexProgress> responseStream, ServerCallContext context)
    {
        var sw = Stopwatch.StartNew();
        async Task<V1.BuildIndexProgress> Progress(V1.BuildIndexProgress.Types.Phase phase)
        {
            var info = await ClusterConvert.Guard(() => gateway.DescribeAsync(request.Collection)).ConfigureAwait(false);
            return new V1.BuildIndexProgress { Phase = phase, ElapsedSeconds = sw.Elapsed.TotalSeconds, Count = (ulong)info.Count, IndexTrained = info.IndexTrained };
        }

        await responseStream.WriteAsync(await Progress(V1.BuildIndexProgress.Types.Phase.Started).ConfigureAwait(false), context.CancellationToken).ConfigureAwait(false);
        var training = ClusterConvert.Guard(() => gateway.WaitForIndexAsync(request.Collection));
        while (await Task.WhenAny(training, Task.Delay(AdminService.ProgressInterval, context.CancellationToken)).ConfigureAwait(false) != training)
        {
            context.CancellationToken.ThrowIfCancellationRequested();
            await responseStream.WriteAsync(await Progress(V1.BuildIndexProgress.Types.Phase.Training).ConfigureAwait(false), context.CancellationToken).ConfigureAwait(false);
        }
        bool enough = await training.ConfigureAwait(false);
        await responseStream.WriteAsync(await Progress(enough ? V1.BuildIndexProgress.Types.Phase.Done : V1.BuildIndexProgress.Types.Phase.TooFewVectors).ConfigureAwait(false),
            context.CancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public override async Task<V1.SnapshotResponse> Snapshot(V1.SnapshotRequest request, ServerCallContext context)
    {
        await ClusterConvert.Guard(async () => { await gateway.CheckpointAsync(request.Collection).ConfigureAwait(false); return 0; }).ConfigureAwait(false);
        // Every active replica checkpointed in its own node's data directory.
        return new V1.SnapshotResponse { Directory = Path.GetFullPath(options.Value.DataDirectory) };
    }

    /// <inheritdoc/>
    public override Task<V1.ServerInfoResponse> ServerInfo(V1.ServerInfoRequest request, ServerCallContext context)
    {
        var info = AdminService.BaseInfo(options.Value);
        info.Cluster = new V1.ClusterInfo { Enabled = true, ClusterId = options.Value.Cluster.ClusterId, Node = gateway.LocalNode };
        foreach (var m in gateway.Members())
            info.Cluster.Members.Add(new V1.ClusterMember { Name = m.Name, Address = m.Address, Status = m.Status, Local = m.IsLocal });
        return Task.FromResult(info);
    }
}
