using Grpc.Core;
using Microsoft.Extensions.Options;
using V1 = Adanns.Protocol.V1;

namespace Adanns.Server.Services;

/// <summary>adanns.v1.Collections.</summary>
public sealed class CollectionsService(DatabaseHost host, IOptions<AdannsServerOptions> options, ILogger<CollectionsService> logger)
    : V1.Collections.CollectionsBase
{
    /// <inheritdoc/>
    public override Task<V1.CollectionInfo> Create(V1.CreateCollectionRequest request, ServerCallContext context)
    {
        if (request is { HasShards: true, Shards: not 1 } or { HasReplicationFactor: true, ReplicationFactor: not 1 } or { HasWriteConsistency: true, WriteConsistency: > 1 })
            throw ProtoConvert.Invalid("shards, replication_factor and write_consistency above 1 need cluster mode (Adanns:Cluster:Enabled=true).");
        var config = ProtoConvert.ToConfig(request, options.Value.DefaultIndexSpec);
        var c = host.Database.CreateCollection(config);
        logger.LogInformation("Created collection {Collection}: D={Dimension}, {Metric}, {Spec}", c.Name, c.Dimension, c.Metric, c.Config.IndexSpec);
        return Task.FromResult(ProtoConvert.ToInfo(c));
    }

    /// <inheritdoc/>
    public override Task<V1.CollectionInfo> Get(V1.GetCollectionRequest request, ServerCallContext context) =>
        Task.FromResult(ProtoConvert.ToInfo(host.Database.GetCollection(request.Name)));

    /// <inheritdoc/>
    public override Task<V1.ListCollectionsResponse> List(V1.ListCollectionsRequest request, ServerCallContext context)
    {
        var db = host.Database;
        var r = new V1.ListCollectionsResponse();
        r.Names.Add(db.ListCollections());
        foreach (var q in db.Quarantined) r.Quarantined.Add(new V1.QuarantinedCollection { Name = q.Name, Reason = q.Reason });
        return Task.FromResult(r);
    }

    /// <inheritdoc/>
    public override async Task<V1.DeleteCollectionResponse> Delete(V1.DeleteCollectionRequest request, ServerCallContext context)
    {
        if (!await host.Database.DropCollectionAsync(request.Name).ConfigureAwait(false))
            throw new RpcException(new Status(StatusCode.NotFound, $"No collection named \"{request.Name}\"."));
        logger.LogInformation("Dropped collection {Collection}", request.Name);
        return new V1.DeleteCollectionResponse();
    }

    /// <inheritdoc/>
    public override Task<V1.CollectionExistsResponse> Exists(V1.CollectionExistsRequest request, ServerCallContext context) =>
        Task.FromResult(new V1.CollectionExistsResponse { Exists = host.Database.TryGetCollection(request.Name, out _) });
}
