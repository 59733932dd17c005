using System.Diagnostics;
using Adanns.Engine;
using Adanns.Engine.Collections;
using Adanns.Protocol.V1;
using Grpc.Core;
using Microsoft.Extensions.Options;
using V1 = Adanns.Protocol.V1;

namespace Adanns.Server.Services;

/// <summary>adanns.v1.Search: validates limits, converts, calls <see cref="Collection.SearchWithReport"/>.</summary>
public sealed class SearchService(DatabaseHost host, IOptions<AdannsServerOptions> options, ServerMetrics metrics) : V1.Search.SearchBase
{
    private readonly LimitOptions _limits = options.Value.Limits;

    /// <inheritdoc/>
    public override async Task<V1.SearchResponse> Search(V1.SearchRequest request, ServerCallContext context)
    {
        var c = host.Database.GetCollection(request.Collection);
        var response = await SearchOneAsync(c, request, "", context.CancellationToken).ConfigureAwait(false);
        metrics.RecordQueries(1);
        return response;
    }

    /// <inheritdoc/>
    public override async Task<V1.SearchBatchResponse> SearchBatch(V1.SearchBatchRequest request, ServerCallContext context)
    {
        long start = Stopwatch.GetTimestamp();
        var c = host.Database.GetCollection(request.Collection);
        ProtoConvert.CheckBatch(request.Searches.Count, _limits.MaxBatch, "searches");
        var r = new V1.SearchBatchResponse();
        for (int i = 0; i < request.Searches.Count; i++)
            r.Results.Add(await SearchOneAsync(c, request.Searches[i], $"searches[{i}]: ", context.CancellationToken).ConfigureAwait(false));
        r.ServerMicros = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
        metrics.RecordQueries(request.Searches.Count);
        return r;
    }

    private async ValueTask<V1.SearchResponse> SearchOneAsync(Collection c, V1.SearchRequest q, string where, CancellationToken ct)
    {
        long start = Stopwatch.GetTimestamp();
        ct.ThrowIfCancellationRequested();
        if (q.TopK < 1 || q.TopK > _limits.MaxTopK)
            throw ProtoConvert.Invalid($"{where}top_k must be in [1, {_limits.MaxTopK}] (got {q.TopK}).");
        if (q.Vector.Count != c.Dimension)
            throw new AdannsException(AdannsErrorCode.WrongDimension, $"{where}the query vector has {q.Vector.Count} dims; collection \"{c.Name}\" holds {c.Dimension}-dim vectors.");
        if (q.HasScoreThreshold && !float.IsFinite(q.ScoreThreshold))
            throw ProtoConvert.Invalid($"{where}score_threshold must be finite (got {q.ScoreThreshold}).");
        var vector = ProtoConvert.ToArray(q.Vector);
        var filter = ProtoConvert.ToFilter(q.Filter, _limits.MaxFilterNodes);
        var parameters = ProtoConvert.ToSearchParams(q.Params);
        SearchHit[] hits;
        SearchReport report;
        try
        {
            hits = c.SearchWithReport(vector, (int)q.TopK, parameters, filter, q.WithPayload, out report);
        }
        catch (AdannsException e) when (where.Length > 0)
        {
            throw new AdannsException(e.Code, where + e.Message, e);
        }

        var response = new V1.SearchResponse();
        bool higher = c.Metric.HigherIsBetter();
        foreach (var h in hits)
        {
            if (q.HasScoreThreshold && (higher ? h.Score < q.ScoreThreshold : h.Score > q.ScoreThreshold)) break; // best first
            var p = new V1.ScoredPoint { Id = ProtoConvert.ToProto(h.Id), Score = h.Score };
            if (q.WithPayload) ProtoConvert.FillPayload(p.Payload, h.Payload);
            if (q.WithVectors && await c.GetAsync(h.Id).ConfigureAwait(false) is { } rec) p.Vector.AddFloats(rec.Vector.Span);
            response.Points.Add(p);
        }
        response.Stats = ProtoConvert.ToProto(report, Stopwatch.GetElapsedTime(start).TotalMicroseconds);
        return response;
    }
}
