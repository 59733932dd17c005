using Adanns.Engine;
using Adanns.Engine.Collections;
using Adanns.Engine.Indexes;
using Adanns.Engine.Storage;
using Google.Protobuf.Collections;
using Grpc.Core;
using V1 = Adanns.Protocol.V1;

namespace Adanns.Server;

/// <summary>
/// Every conversion between the wire types (adanns.v1) and the engine's types, in one place. Input conversions
/// validate what the engine cannot see (unset oneofs, limits) and throw <see cref="AdannsException"/> InvalidArgument
/// with a message naming the field.
/// </summary>
internal static class ProtoConvert
{
    // ------------------------------------------------------------ enums

    public static Metric ToMetric(V1.Metric m) => m switch
    {
        V1.Metric.L2 => Metric.L2,
        V1.Metric.InnerProduct => Metric.InnerProduct,
        V1.Metric.Cosine => Metric.Cosine,
        _ => throw Invalid($"metric must be METRIC_L2, METRIC_INNER_PRODUCT or METRIC_COSINE (got {m})."),
    };

    public static V1.Metric ToProto(Metric m) => m switch
    {
        Metric.L2 => V1.Metric.L2,
        Metric.InnerProduct => V1.Metric.InnerProduct,
        Metric.Cosine => V1.Metric.Cosine,
        _ => V1.Metric.Unspecified,
    };

    public static V1.SearchPath ToProto(SearchPath p) => p switch
    {
        SearchPath.Flat => V1.SearchPath.Exact,
        SearchPath.Index => V1.SearchPath.Index,
        SearchPath.IndexFiltered => V1.SearchPath.IndexFiltered,
        SearchPath.ExactFiltered => V1.SearchPath.ExactFiltered,
        _ => V1.SearchPath.Unspecified,
    };

    // ------------------------------------------------------------ collections

    public static CollectionConfig ToConfig(V1.CreateCollectionRequest r, string defaultSpec)
    {
        string spec = string.IsNullOrWhiteSpace(r.IndexSpec) ? defaultSpec : r.IndexSpec.Trim();
        // Auto decides rotation by measuring the prefixes' ranking, raw vs rotated: nothing to prepend there.
        if (r.Rotate && !spec.StartsWith("Rot,", StringComparison.OrdinalIgnoreCase) && !VectorIndex.IsAuto(spec, out _)) spec = "Rot," + spec;
        if (r.Dimension > int.MaxValue) throw Invalid($"dimension {r.Dimension} is too large.");
        var config = new CollectionConfig(r.Name, (int)r.Dimension, ToMetric(r.Metric), spec);
        if (r.HasTrainThreshold)
        {
            if (r.TrainThreshold is 0 or > int.MaxValue) throw Invalid($"train_threshold must be in [1, {int.MaxValue}] (got {r.TrainThreshold}).");
            config = config with { TrainThreshold = (int)r.TrainThreshold };
        }
        if (r.HasMaxPayloadBytes)
        {
            if (r.MaxPayloadBytes > int.MaxValue) throw Invalid($"max_payload_bytes {r.MaxPayloadBytes} is too large.");
            config = config with { MaxPayloadBytes = (int)r.MaxPayloadBytes };
        }
        if (!string.IsNullOrWhiteSpace(r.Embedder)) config = config with { Embedder = r.Embedder.Trim() };
        return config;
    }

    public static V1.CollectionInfo ToInfo(Collection c)
    {
        var s = c.GetStats();
        return new V1.CollectionInfo
        {
            Name = c.Name,
            Dimension = (uint)c.Dimension,
            Metric = ToProto(c.Metric),
            IndexSpec = c.Config.IndexSpec,
            Count = (ulong)s.Count,
            IndexTrained = s.IndexTrained,
            Tombstones = (ulong)s.Tombstones,
            AppliedLsn = (ulong)s.AppliedLsn,
            CheckpointLsn = (ulong)s.CheckpointLsn,
            Retrains = (uint)s.Retrains,
            Compactions = (uint)s.Compactions,
            RecordLogBytes = (ulong)Math.Max(0, s.RecordLogBytes),
            WalBytes = (ulong)Math.Max(0, s.WalBytes),
            HigherIsBetter = c.Metric.HigherIsBetter(),
            TrainThreshold = (uint)(c.Config.TrainThreshold ?? 0),
            MaxPayloadBytes = (uint)c.Config.MaxPayloadBytes,
            Embedder = c.Config.Embedder ?? "",
            Tuning = c.GetTuning() is { } t ? ToProto(t) : null,
            Memory = ToProto(c.GetMemory()),
        };
    }

    public static V1.CollectionMemory ToProto(in CollectionMemory m) => new()
    {
        VectorsOnDisk = m.VectorsOnDisk,
        IndexBytesPerVector = m.IndexBytesPerVector,
        RerankBytesPerVector = m.RerankBytesPerVector,
        RecordMapBytesPerVector = m.RecordMapBytesPerVector,
        RecordStoreMemoryBytes = (ulong)Math.Max(0, m.RecordStoreMemoryBytes),
    };

    public static V1.IndexTuning ToProto(IndexTuning t)
    {
        var r = new V1.IndexTuning { Spec = t.Spec, Defaults = t.Defaults is { } d ? ToProto(d) : null };
        if (t.Profile is { } p)
        {
            r.ProfileK = (uint)p.K;
            r.ProfileQueries = (uint)p.Queries;
            r.ProfileVectors = (ulong)p.VectorCount;
            r.TunedRecall = p.TunedRecall ?? 0;
            foreach (var point in p.Points)
            {
                var sp = point.Params;
                r.Profile.Add(new V1.TuningPoint
                {
                    Params = ToProto(new ResolvedSearch(sp.NProbe ?? 0, sp.CoarseDim ?? 0, sp.ScanDim ?? 0, sp.Shortlist ?? 0, sp.Rerank ?? [], sp.Exact ?? false)),
                    FlopsPerQuery = point.FlopsPerQuery,
                    MicrosPerQuery = point.MicrosPerQuery,
                    Recall = point.Recall,
                });
            }
        }
        return r;
    }

    public static V1.UsedParams ToProto(in ResolvedSearch u)
    {
        var r = new V1.UsedParams
        {
            Nprobe = (uint)u.NProbe,
            CoarseDim = (uint)u.CoarseDim,
            ScanDim = (uint)u.ScanDim,
            Shortlist = (uint)u.Shortlist,
            Exact = u.Exact,
            BudgetPoint = u.BudgetPoint,
            OverBudget = u.OverBudget,
        };
        if (u.PredictedRecall is double predicted) r.PredictedRecall = predicted;
        foreach (var st in u.Rerank) r.Rerank.Add(new V1.RerankStage { Dim = (uint)st.Dim, Keep = (uint)(st.Keep ?? 0) });
        return r;
    }

    // ------------------------------------------------------------ ids, payloads, points

    public static RecordId ToRecordId(V1.PointId? id, string what) => id?.KindCase switch
    {
        V1.PointId.KindOneofCase.Num => new RecordId(id.Num),
        V1.PointId.KindOneofCase.Str => new RecordId(id.Str), // throws InvalidId (empty, too long)
        _ => throw Invalid($"{what}: the id is not set (give num or str)."),
    };

    public static V1.PointId ToProto(RecordId id) => id.IsString ? new V1.PointId { Str = id.Text } : new V1.PointId { Num = id.Number };

    public static RecordId[] ToRecordIds(RepeatedField<V1.PointId> ids, int maxBatch)
    {
        CheckBatch(ids.Count, maxBatch, "ids");
        var result = new RecordId[ids.Count];
        for (int i = 0; i < result.Length; i++) result[i] = ToRecordId(ids[i], $"ids[{i}]");
        return result;
    }

    public static PayloadValue ToPayloadValue(V1.Value? v, string what) => v?.KindCase switch
    {
        V1.Value.KindOneofCase.StringValue => PayloadValue.String(v.StringValue),
        V1.Value.KindOneofCase.NumberValue => double.IsFinite(v.NumberValue)
            ? PayloadValue.Number(v.NumberValue)
            : throw Invalid($"{what}: numbers must be finite (got {v.NumberValue})."),
        V1.Value.KindOneofCase.BoolValue => PayloadValue.Bool(v.BoolValue),
        V1.Value.KindOneofCase.ListValue => PayloadValue.List(v.ListValue.Values.Select((e, i) => ToPayloadValue(e, $"{what}[{i}]")).ToArray()),
        _ => throw Invalid($"{what}: the value is not set."),
    };

    public static V1.Value ToProto(PayloadValue v) => v.Kind switch
    {
        PayloadKind.String => new V1.Value { StringValue = v.AsString },
        PayloadKind.Number => new V1.Value { NumberValue = v.AsNumber },
        PayloadKind.Bool => new V1.Value { BoolValue = v.AsBool },
        _ => ListToProto(v.AsList),
    };

    private static V1.Value ListToProto(IReadOnlyList<PayloadValue> items)
    {
        var list = new V1.ListValue();
        foreach (var e in items) list.Values.Add(ToProto(e));
        return new V1.Value { ListValue = list };
    }

    public static Dictionary<string, PayloadValue>? ToPayload(MapField<string, V1.Value> map, string what)
    {
        if (map.Count == 0) return null;
        var d = new Dictionary<string, PayloadValue>(map.Count, StringComparer.Ordinal);
        foreach (var (k, v) in map)
        {
            if (k.Length == 0) throw Invalid($"{what}: payload field names must not be empty.");
            d[k] = ToPayloadValue(v, $"{what}.payload[\"{k}\"]");
        }
        return d;
    }

    public static void FillPayload(MapField<string, V1.Value> dst, IReadOnlyDictionary<string, PayloadValue>? payload)
    {
        if (payload is null) return;
        foreach (var (k, v) in payload) dst[k] = ToProto(v);
    }

    /// <summary>
    /// The points as records; points that carry text instead of a vector are embedded in one batch by the collection's
    /// embedder and keep their text in the payload field "text".
    /// </summary>
    public static async Task<VectorRecord[]> ToRecordsAsync(Collection c, RepeatedField<V1.Point> points, int maxBatch, CancellationToken ct)
    {
        var texts = new List<string>();
        var textPoints = new List<int>();
        for (int i = 0; i < points.Count; i++)
        {
            if (points[i].Text.Length == 0) continue;
            if (points[i].Vector.Count > 0) throw Invalid($"points[{i}]: give either text or vector, not both.");
            textPoints.Add(i);
            texts.Add(points[i].Text);
        }
        if (textPoints.Count == 0) return ToRecords(points, maxBatch);
        CheckBatch(points.Count, maxBatch, "points");
        if (c.Config.Embedder is null)
            throw Invalid($"points[{textPoints[0]}] has text, but collection \"{c.Name}\" has no embedder (create it with embedder \"minilm\" to send text).");
        float[] vectors;
        try
        {
            vectors = await c.EmbedAsync(texts, ct).ConfigureAwait(false);
        }
        catch (AdannsException e) when (e.RecordIndex is int t)
        {
            throw new AdannsException(e.Code, $"points[{textPoints[t]}]: {e.Message}", e);
        }
        var records = new VectorRecord[points.Count];
        int next = 0;
        for (int i = 0; i < records.Length; i++)
        {
            var p = points[i];
            string what = $"points[{i}]";
            var id = ToRecordId(p.Id, what);
            if (next < textPoints.Count && textPoints[next] == i)
            {
                records[i] = new VectorRecord(id, vectors.AsMemory(next * c.Dimension, c.Dimension), Collection.WithText(ToPayload(p.Payload, what), p.Text));
                next++;
            }
            else
            {
                records[i] = new VectorRecord(id, ToArray(p.Vector), ToPayload(p.Payload, what));
            }
        }
        return records;
    }

    public static VectorRecord[] ToRecords(RepeatedField<V1.Point> points, int maxBatch)
    {
        CheckBatch(points.Count, maxBatch, "points");
        var records = new VectorRecord[points.Count];
        for (int i = 0; i < records.Length; i++)
        {
            var p = points[i];
            string what = $"points[{i}]";
            var id = ToRecordId(p.Id, what);
            records[i] = new VectorRecord(id, ToArray(p.Vector), ToPayload(p.Payload, what));
        }
        return records;
    }

    public static float[] ToArray(RepeatedField<float> values)
    {
        var a = new float[values.Count];
        values.CopyTo(a, 0);
        return a;
    }

    public static void CheckBatch(int count, int maxBatch, string what)
    {
        if (count > maxBatch) throw Invalid($"{what}: {count} items exceed the server's limit of {maxBatch} per request (Adanns:Limits:MaxBatch).");
    }

    // ------------------------------------------------------------ filters

    /// <summary>The engine filter, or null when <paramref name="f"/> is null. Bounded to <paramref name="maxNodes"/> nodes.</summary>
    public static Filter? ToFilter(V1.Filter? f, int maxNodes)
    {
        if (f is null) return null;
        int nodes = 0;
        return Convert(f, "filter", ref nodes, maxNodes);
    }

    private static Filter Convert(V1.Filter f, string path, ref int nodes, int maxNodes)
    {
        if (++nodes > maxNodes) throw Invalid($"filter: more than {maxNodes} conditions (Adanns:Limits:MaxFilterNodes).");
        try
        {
            switch (f.KindCase)
            {
                case V1.Filter.KindOneofCase.Equals_:
                    return Filter.Eq(f.Equals_.Field, ToPayloadValue(f.Equals_.Value, $"{path}.equals.value"));
                case V1.Filter.KindOneofCase.In:
                    return Filter.In(f.In.Field, f.In.Values.Select((v, i) => ToPayloadValue(v, $"{path}.in.values[{i}]")).ToArray());
                case V1.Filter.KindOneofCase.Range:
                {
                    var r = f.Range;
                    if (r.HasGte && r.HasGt) throw Invalid($"{path}.range: set at most one of gte and gt.");
                    if (r.HasLte && r.HasLt) throw Invalid($"{path}.range: set at most one of lte and lt.");
                    double? min = r.HasGte ? r.Gte : r.HasGt ? r.Gt : null;
                    double? max = r.HasLte ? r.Lte : r.HasLt ? r.Lt : null;
                    return Filter.Range(r.Field, min, max, minInclusive: !r.HasGt, maxInclusive: !r.HasLt);
                }
                case V1.Filter.KindOneofCase.And:
                case V1.Filter.KindOneofCase.Or:
                {
                    bool and = f.KindCase == V1.Filter.KindOneofCase.And;
                    var list = and ? f.And.Filters : f.Or.Filters;
                    var parts = new Filter[list.Count];
                    string name = and ? "and" : "or";
                    for (int i = 0; i < parts.Length; i++) parts[i] = Convert(list[i], $"{path}.{name}[{i}]", ref nodes, maxNodes);
                    return and ? Filter.And(parts) : Filter.Or(parts);
                }
                case V1.Filter.KindOneofCase.Not:
                    return Filter.Not(Convert(f.Not, $"{path}.not", ref nodes, maxNodes));
                default:
                    throw Invalid($"{path}: the condition is not set (give equals, in, range, and, or or not).");
            }
        }
        catch (ArgumentException e)
        {
            throw Invalid($"{path}: {AdannsException.CleanMessage(e)}");
        }
    }

    // ------------------------------------------------------------ search

    public static SearchParams? ToSearchParams(V1.SearchParams? p)
    {
        if (p is null) return null;
        var r = new SearchParams
        {
            NProbe = p.HasNprobe ? ToInt(p.Nprobe, "params.nprobe") : null,
            CoarseDim = p.HasCoarseDim ? ToInt(p.CoarseDim, "params.coarse_dim") : null,
            ScanDim = p.HasScanDim ? ToInt(p.ScanDim, "params.scan_dim") : null,
            Shortlist = p.HasShortlist ? ToInt(p.Shortlist, "params.shortlist") : null,
            Rerank = p.OverrideRerank || p.Rerank.Count > 0
                ? p.Rerank.Select((s, i) => new RerankStage(ToInt(s.Dim, $"params.rerank[{i}].dim"), s.Keep == 0 ? null : ToInt(s.Keep, $"params.rerank[{i}].keep"))).ToArray()
                : null,
            Exact = p.HasExact ? p.Exact : null,
            MaxFlops = p.HasMaxFlops ? Positive(p.MaxFlops, "params.max_flops") : null,
            MaxMicros = p.HasMaxMicros ? Positive(p.MaxMicros, "params.max_micros") : null,
            TargetRecall = p.HasTargetRecall
                ? (p.TargetRecall > 0 && p.TargetRecall <= 1 ? p.TargetRecall : throw Invalid($"params.target_recall must be in (0, 1] (got {p.TargetRecall.ToString(System.Globalization.CultureInfo.InvariantCulture)})."))
                : null,
        };
        return r;
    }

    private static int ToInt(uint v, string what) =>
        v is >= 1 and <= int.MaxValue ? (int)v : throw Invalid($"{what} must be in [1, {int.MaxValue}] (got {v}).");

    private static double Positive(double v, string what) =>
        double.IsFinite(v) && v > 0 ? v : throw Invalid($"{what} must be a positive finite number (got {v}).");

    public static V1.SearchStats ToProto(in SearchReport report, double serverMicros)
    {
        var s = new V1.SearchStats
        {
            Path = ToProto(report.Path),
            ListsProbed = (ulong)report.Stats.ListsProbed,
            VectorsScanned = (ulong)report.Stats.VectorsScanned,
            VectorsReranked = (ulong)report.Stats.VectorsReranked,
            Flops = (ulong)report.Stats.Flops,
            ServerMicros = serverMicros,
        };
        if (report.Used is { } u) s.Used = ToProto(u);
        return s;
    }

    /// <summary>An invalid request field: INVALID_ARGUMENT with the code <see cref="AdannsErrorCode.InvalidArgument"/> in the trailers.</summary>
    public static AdannsException Invalid(string message) => new(AdannsErrorCode.InvalidArgument, message);
}
