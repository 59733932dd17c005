using Adanns.Engine.Storage;
using Grpc.Core;
using Microsoft.Extensions.Options;
using Adanns.Protocol.V1;
using V1 = Adanns.Protocol.V1;

namespace Adanns.Server.Services;

/// <summary>adanns.v1.Points.</summary>
public sealed class PointsService(DatabaseHost host, IOptions<AdannsServerOptions> options) : V1.Points.PointsBase
{
    private const int DeleteChunk = 10_000;
    private readonly LimitOptions _limits = options.Value.Limits;

    /// <inheritdoc/>
    public override async Task<V1.UpsertResponse> Upsert(V1.UpsertRequest request, ServerCallContext context)
    {
        var c = host.Database.GetCollection(request.Collection);
        var records = await ProtoConvert.ToRecordsAsync(c, request.Points, _limits.MaxBatch, context.CancellationToken).ConfigureAwait(false);
        await c.UpsertAsync(records, request.Wait, context.CancellationToken).ConfigureAwait(false);
        return new V1.UpsertResponse { Upserted = (uint)records.Length };
    }

    /// <inheritdoc/>
    public override async Task<V1.DeletePointsResponse> Delete(V1.DeletePointsRequest request, ServerCallContext context)
    {
        var c = host.Database.GetCollection(request.Collection);
        bool byFilter = request.Filter is not null;
        if (byFilter == request.Ids.Count > 0)
            throw ProtoConvert.Invalid("Delete needs either ids or a filter (exactly one of the two).");
        IReadOnlyList<RecordId> ids = byFilter
            ? c.FindIds(ProtoConvert.ToFilter(request.Filter, _limits.MaxFilterNodes))
            : ProtoConvert.ToRecordIds(request.Ids, _limits.MaxBatch);
        // Ids are deleted atomically; a filter matching more than one chunk is deleted chunk by chunk.
        int deleted = 0;
        for (int start = 0; start < ids.Count; start += DeleteChunk)
        {
            context.CancellationToken.ThrowIfCancellationRequested();
            var chunk = ids.Count <= DeleteChunk ? ids : ids.Skip(start).Take(DeleteChunk).ToArray();
            deleted += await c.DeleteAsync(chunk, request.Wait, context.CancellationToken).ConfigureAwait(false);
        }
        return new V1.DeletePointsResponse { Deleted = (uint)deleted };
    }

    /// <inheritdoc/>
    public override async Task<V1.GetPointsResponse> Get(V1.GetPointsRequest request, ServerCallContext context)
    {
        var c = host.Database.GetCollection(request.Collection);
        IReadOnlyList<RecordId> ids;
        if (request.HasLimit)
        {
            if (request.Ids.Count > 0) throw ProtoConvert.Invalid("Get takes either ids or a limit (with an optional filter), not both.");
            if (request.Limit < 1 || request.Limit > _limits.MaxBatch)
                throw ProtoConvert.Invalid($"limit must be in [1, {_limits.MaxBatch}] (got {request.Limit}).");
            if (request.Offset > int.MaxValue - request.Limit) throw ProtoConvert.Invalid($"offset {request.Offset} is too large.");
            var matches = c.FindIds(ProtoConvert.ToFilter(request.Filter, _limits.MaxFilterNodes), (int)(request.Offset + request.Limit));
            ids = matches.Skip((int)request.Offset).ToArray();
        }
        else
        {
            if (request.Filter is not null || request.Offset > 0) throw ProtoConvert.Invalid("Get with a filter or an offset needs a limit.");
            ids = ProtoConvert.ToRecordIds(request.Ids, _limits.MaxBatch);
        }
        var r = new V1.GetPointsResponse();
        foreach (var id in ids)
        {
            context.CancellationToken.ThrowIfCancellationRequested();
            if (await c.GetAsync(id).ConfigureAwait(false) is not { } rec) continue;
            var p = new V1.RetrievedPoint { Id = ProtoConvert.ToProto(rec.Id) };
            if (request.WithVectors) p.Vector.AddFloats(rec.Vector.Span);
            if (request.WithPayload) ProtoConvert.FillPayload(p.Payload, rec.Payload);
            r.Points.Add(p);
        }
        return r;
    }

    /// <inheritdoc/>
    public override Task<V1.CountResponse> Count(V1.CountRequest request, ServerCallContext context)
    {
        var c = host.Database.GetCollection(request.Collection);
        var filter = ProtoConvert.ToFilter(request.Filter, _limits.MaxFilterNodes);
        long n = filter is null ? c.Count : c.FindIds(filter).Count;
        return Task.FromResult(new V1.CountResponse { Count = (ulong)n });
    }
}
