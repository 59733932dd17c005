using System.Diagnostics;
using Adanns.Engine;
using Adanns.Engine.Collections;
using Adanns.Protocol.V1;
using Grpc.Core;
using Microsoft.Extensions.Options;
using V1 = Adanns.Protocol.V1;

namespace Adanns.Server.Services;

/// <summary>adanns.v1.Search: validates limits, converts, calls <c>Collection.SearchWithReport</c>.</summary>
public sealed class SearchService(DatabaseHost host, IOptions<AdannsServerOptions> options, ServerMetrics metrics) : V1.Search.SearchBase
{
    private readonly LimitOptions _limits = options.Value.Limits;

    /// <inheritdoc/>
    public override async Task<V1.SearchResponse> Search(V1.SearchRequest request, ServerCallContext context)
    {
        var c = host.Database.GetCollection(request.Collection);
        request = (await ResolveTextAsync(c, [request], context.CancellationToken).ConfigureAwait(false))[0];
        var response = await SearchOneAsync(c, request, "", context.CancellationToken).ConfigureAwait(false);
        metrics.RecordQueries(1);
        return response;
    }

    /// <inheritdoc/>
    /// <remarks>
    /// Unfiltered searches that share top_k, params and with_payload/with_vectors run together through the index's
    /// batch path (<c>Collection.SearchBatchAsync</c>);
    /// filtered ones run one by one. Results come back in request order.
    /// </remarks>
    public override async Task<V1.SearchBatchResponse> SearchBatch(V1.SearchBatchRequest request, ServerCallContext context)
    {
        long start = Stopwatch.GetTimestamp();
        var c = host.Database.GetCollection(request.Collection);
        ProtoConvert.CheckBatch(request.Searches.Count, _limits.MaxBatch, "searches");
        var ct = context.CancellationToken;
        var searches = await ResolveTextAsync(c, request.Searches, ct).ConfigureAwait(false);
        var responses = new V1.SearchResponse[searches.Count];
        var groups = new Dictionary<(uint TopK, V1.SearchParams? Params, bool Payload, bool Vectors), List<int>>();
        for (int i = 0; i < searches.Count; i++)
        {
            var q = searches[i];
            Validate(c, q, $"searches[{i}]: ");
            if (q.Filter is not null)
            {
                responses[i] = await SearchOneAsync(c, q, $"searches[{i}]: ", ct).ConfigureAwait(false);
                continue;
            }
            var key = (q.TopK, q.Params, q.WithPayload, q.WithVectors);
            if (!groups.TryGetValue(key, out var list)) groups[key] = list = [];
            list.Add(i);
        }
        foreach (var ((topK, p, payload, vectors), members) in groups)
        {
            var first = searches[members[0]];
            var parameters = ProtoConvert.ToSearchParams(first.Params);
            var queries = members.Select(i => (ReadOnlyMemory<float>)ProtoConvert.ToArray(searches[i].Vector)).ToArray();
            IReadOnlyList<SearchResult> found;
            try
            {
                found = await c.SearchBatchAsync(queries, (int)topK, parameters, null, payload, vectors, ct).ConfigureAwait(false);
            }
            catch (AdannsException e)
            {
                // Parameters are shared by the group: name the first query that carries them.
                throw new AdannsException(e.Code, $"searches[{members[e.RecordIndex ?? 0]}]: {e.Message}", e);
            }
            double micros = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
            for (int j = 0; j < members.Count; j++)
                responses[members[j]] = ToResponse(c, searches[members[j]], found[j].Hits, found[j].Report, micros);
        }
        var r = new V1.SearchBatchResponse();
        r.Results.AddRange(responses);
        r.ServerMicros = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
        metrics.RecordQueries(request.Searches.Count);
        return r;
    }

    /// <summary>
    /// The queries with every text query replaced by a copy carrying its embedding as the vector (all texts embedded in
    /// one batch by the collection's embedder); the list itself when no query has text.
    /// </summary>
    private static async Task<IReadOnlyList<V1.SearchRequest>> ResolveTextAsync(Collection c, IReadOnlyList<V1.SearchRequest> queries, CancellationToken ct)
    {
        var texts = new List<string>();
        var at = new List<int>();
        for (int i = 0; i < queries.Count; i++)
        {
            if (queries[i].Text.Length == 0) continue;
            string where = queries.Count == 1 ? "" : $"searches[{i}]: ";
            if (queries[i].Vector.Count > 0) throw ProtoConvert.Invalid($"{where}give either text or vector, not both.");
            if (c.Config.Embedder is null)
                throw ProtoConvert.Invalid($"{where}the query has text, but collection \"{c.Name}\" has no embedder (create it with embedder \"minilm\" to search by text).");
            texts.Add(queries[i].Text);
            at.Add(i);
        }
        if (texts.Count == 0) return queries;
        var vectors = await c.EmbedAsync(texts, ct).ConfigureAwait(false);
        var resolved = queries.ToArray();
        for (int j = 0; j < at.Count; j++)
        {
            var q = resolved[at[j]].Clone();
            q.Text = "";
            q.Vector.AddFloats(vectors.AsSpan(j * c.Dimension, c.Dimension));
            resolved[at[j]] = q;
        }
        return resolved;
    }

    private void Validate(Collection c, V1.SearchRequest q, string where)
    {
        if (q.TopK < 1 || q.TopK > _limits.MaxTopK)
            throw ProtoConvert.Invalid($"{where}top_k must be in [1, {_limits.MaxTopK}] (got {q.TopK}).");
        if (q.Vector.Count != c.Dimension)
            throw new AdannsException(AdannsErrorCode.WrongDimension, $"{where}the query vector has {q.Vector.Count} dims; collection \"{c.Name}\" holds {c.Dimension}-dim vectors.");
        if (q.HasScoreThreshold && !float.IsFinite(q.ScoreThreshold))
            throw ProtoConvert.Invalid($"{where}score_threshold must be finite (got {q.ScoreThreshold}).");
    }

    private ValueTask<V1.SearchResponse> SearchOneAsync(Collection c, V1.SearchRequest q, string where, CancellationToken ct)
    {
        long start = Stopwatch.GetTimestamp();
        ct.ThrowIfCancellationRequested();
        Validate(c, q, where);
        var vector = ProtoConvert.ToArray(q.Vector);
        var filter = ProtoConvert.ToFilter(q.Filter, _limits.MaxFilterNodes);
        var parameters = ProtoConvert.ToSearchParams(q.Params);
        SearchHit[] hits;
        SearchReport report;
        try
        {
            // Vectors are read under the search's own lock: a hit deleted right after still comes with its vector.
            hits = c.SearchWithReport(vector, (int)q.TopK, parameters, filter, q.WithPayload, q.WithVectors, out report);
        }
        catch (AdannsException e) when (where.Length > 0)
        {
            throw new AdannsException(e.Code, where + e.Message, e);
        }
        return ValueTask.FromResult(ToResponse(c, q, hits, report, Stopwatch.GetElapsedTime(start).TotalMicroseconds));
    }

    private static V1.SearchResponse ToResponse(Collection c, V1.SearchRequest q, IReadOnlyList<SearchHit> hits, in SearchReport report, double micros)
    {
        var response = new V1.SearchResponse();
        bool higher = c.Metric.HigherIsBetter();
        foreach (var h in hits)
        {
            if (q.HasScoreThreshold && (higher ? h.Score < q.ScoreThreshold : h.Score > q.ScoreThreshold)) break; // best first
            var p = new V1.ScoredPoint { Id = ProtoConvert.ToProto(h.Id), Score = h.Score };
            if (q.WithPayload) ProtoConvert.FillPayload(p.Payload, h.Payload);
            if (q.WithVectors) p.Vector.AddFloats(h.Vector.Span);
            response.Points.Add(p);
        }
        response.Stats = ProtoConvert.ToProto(report, micros);
        return response;
    }
}
