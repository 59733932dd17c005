using Adanns.Engine;
using Adanns.Engine.Collections;
using Adanns.Engine.Indexes;
using Adanns.Engine.Storage;
using Google.Protobuf.Collections;
using Grpc.Core;
using V1 = Adanns.Protocol.V1;

namespace Adanns.Client;

/// <summary>Conversions between the embedded model (records, ids, payloads, filters, results) and adanns.v1, client side.</summary>
internal static class RemoteConvert
{
    public static V1.Metric ToProto(Metric m) => m switch
    {
        Metric.L2 => V1.Metric.L2,
        Metric.InnerProduct => V1.Metric.InnerProduct,
        Metric.Cosine => V1.Metric.Cosine,
        _ => throw new AdannsException(AdannsErrorCode.InvalidConfiguration, $"Unknown metric {m}."),
    };

    public static Metric ToMetric(V1.Metric m) => m switch
    {
        V1.Metric.L2 => Metric.L2,
        V1.Metric.InnerProduct => Metric.InnerProduct,
        V1.Metric.Cosine => Metric.Cosine,
        _ => throw new AdannsException(AdannsErrorCode.Internal, $"The server answered an unknown metric {m}."),
    };

    public static V1.PointId ToProto(RecordId id) => id.IsString ? new V1.PointId { Str = id.Text } : new V1.PointId { Num = id.Number };

    public static RecordId ToRecordId(V1.PointId id) => id.KindCase switch
    {
        V1.PointId.KindOneofCase.Num => new RecordId(id.Num),
        V1.PointId.KindOneofCase.Str => new RecordId(id.Str),
        _ => throw new AdannsException(AdannsErrorCode.Internal, "The server answered a point without an id."),
    };

    public static V1.Value ToProto(PayloadValue v)
    {
        switch (v.Kind)
        {
            case PayloadKind.String: return new V1.Value { StringValue = v.AsString };
            case PayloadKind.Number: return new V1.Value { NumberValue = v.AsNumber };
            case PayloadKind.Bool: return new V1.Value { BoolValue = v.AsBool };
            default:
                var list = new V1.ListValue();
                foreach (var e in v.AsList) list.Values.Add(ToProto(e));
                return new V1.Value { ListValue = list };
        }
    }

    public static PayloadValue ToPayloadValue(V1.Value v) => v.KindCase switch
    {
        V1.Value.KindOneofCase.StringValue => PayloadValue.String(v.StringValue),
        V1.Value.KindOneofCase.NumberValue => PayloadValue.Number(v.NumberValue),
        V1.Value.KindOneofCase.BoolValue => PayloadValue.Bool(v.BoolValue),
        V1.Value.KindOneofCase.ListValue => PayloadValue.List(v.ListValue.Values.Select(ToPayloadValue).ToArray()),
        _ => throw new AdannsException(AdannsErrorCode.Internal, "The server answered a payload value that is not set."),
    };

    public static void Fill(MapField<string, V1.Value> dst, IReadOnlyDictionary<string, PayloadValue>? payload)
    {
        if (payload is null) return;
        foreach (var (k, v) in payload) dst[k] = ToProto(v);
    }

    /// <summary>The payload, or null when the map is empty (as the engine stores "no payload").</summary>
    public static Dictionary<string, PayloadValue>? ToPayload(MapField<string, V1.Value> map)
    {
        if (map.Count == 0) return null;
        var d = new Dictionary<string, PayloadValue>(map.Count, StringComparer.Ordinal);
        foreach (var (k, v) in map) d[k] = ToPayloadValue(v);
        return d;
    }

    public static V1.Point ToProto(VectorRecord r)
    {
        ArgumentNullException.ThrowIfNull(r);
        var p = new V1.Point { Id = ToProto(r.Id) };
        p.Vector.AddRange(r.Vector.ToArray());
        Fill(p.Payload, r.Payload);
        return p;
    }

    public static V1.Filter? ToProto(Filter? f) => f?.Accept(FilterToProto.Instance);

    private sealed class FilterToProto : IFilterVisitor<V1.Filter>
    {
        public static readonly FilterToProto Instance = new();

        public V1.Filter In(string field, IReadOnlyList<PayloadValue> values)
        {
            if (values.Count == 1) return new V1.Filter { Equals_ = new V1.FieldEquals { Field = field, Value = ToProto(values[0]) } };
            var r = new V1.FieldIn { Field = field };
            foreach (var v in values) r.Values.Add(ToProto(v));
            return new V1.Filter { In = r };
        }

        public V1.Filter Range(string field, double? min, double? max, bool minInclusive, bool maxInclusive)
        {
            var r = new V1.FieldRange { Field = field };
            if (min is double a)
            {
                if (minInclusive) r.Gte = a;
                else r.Gt = a;
            }
            if (max is double b)
            {
                if (maxInclusive) r.Lte = b;
                else r.Lt = b;
            }
            return new V1.Filter { Range = r };
        }

        public V1.Filter And(IReadOnlyList<Filter> filters) => new() { And = List(filters) };

        public V1.Filter Or(IReadOnlyList<Filter> filters) => new() { Or = List(filters) };

        public V1.Filter Not(Filter filter) => new() { Not = filter.Accept(this) };

        private V1.FilterList List(IReadOnlyList<Filter> filters)
        {
            var l = new V1.FilterList();
            foreach (var f in filters) l.Filters.Add(f.Accept(this));
            return l;
        }
    }

    public static V1.SearchParams? ToProto(SearchParams? p)
    {
        if (p is null) return null;
        var r = new V1.SearchParams();
        if (p.NProbe is int n) r.Nprobe = Unsigned(n, "NProbe");
        if (p.CoarseDim is int c) r.CoarseDim = Unsigned(c, "CoarseDim");
        if (p.ScanDim is int s) r.ScanDim = Unsigned(s, "ScanDim");
        if (p.Shortlist is int l) r.Shortlist = Unsigned(l, "Shortlist");
        if (p.Rerank is { } stages)
        {
            r.OverrideRerank = true;
            foreach (var st in stages) r.Rerank.Add(new V1.RerankStage { Dim = Unsigned(st.Dim, "Rerank dim"), Keep = st.Keep is int k ? Unsigned(k, "Rerank keep") : 0 });
        }
        if (p.Exact is bool e) r.Exact = e;
        if (p.MaxFlops is double f) r.MaxFlops = f;
        if (p.MaxMicros is double m) r.MaxMicros = m;
        if (p.TargetRecall is double t)
        {
            if (!(t > 0 && t <= 1))
                throw new AdannsException(AdannsErrorCode.InvalidQuery, $"TargetRecall must be in (0, 1] (got {t.ToString(System.Globalization.CultureInfo.InvariantCulture)}).");
            r.TargetRecall = t;
        }
        return r;
    }

    private static uint Unsigned(int v, string what) =>
        v >= 1 ? (uint)v : throw new AdannsException(AdannsErrorCode.InvalidQuery, $"{what} must be at least 1 (got {v}).");

    public static SearchPath ToPath(V1.SearchPath p) => p switch
    {
        V1.SearchPath.Index => SearchPath.Index,
        V1.SearchPath.IndexFiltered => SearchPath.IndexFiltered,
        V1.SearchPath.ExactFiltered => SearchPath.ExactFiltered,
        _ => SearchPath.Flat,
    };

    public static SearchResult ToResult(V1.SearchResponse r, bool withPayload)
    {
        var hits = new SearchHit[r.Points.Count];
        for (int i = 0; i < hits.Length; i++)
        {
            var p = r.Points[i];
            hits[i] = new SearchHit(ToRecordId(p.Id), p.Score, withPayload ? ToPayload(p.Payload) : null);
        }
        var s = r.Stats ?? new V1.SearchStats();
        var stats = new SearchStats
        {
            Queries = 1,
            ListsProbed = (long)s.ListsProbed,
            VectorsScanned = (long)s.VectorsScanned,
            VectorsReranked = (long)s.VectorsReranked,
            Flops = (long)s.Flops,
        };
        ResolvedSearch? used = s.Used is { } u ? ToResolved(u) : null;
        return new SearchResult(hits, new SearchReport(ToPath(s.Path), used, stats));
    }

    public static ResolvedSearch ToResolved(V1.UsedParams u) =>
        new((int)u.Nprobe, (int)u.CoarseDim, (int)u.ScanDim, (int)u.Shortlist,
            u.Rerank.Select(st => new RerankStage((int)st.Dim, st.Keep == 0 ? null : (int)st.Keep)).ToArray(), u.Exact, u.BudgetPoint, u.OverBudget,
            u.HasPredictedRecall ? u.PredictedRecall : null);

    public static VectorRecord ToRecord(V1.RetrievedPoint p) => new(ToRecordId(p.Id), p.Vector.ToArray(), ToPayload(p.Payload));

    public static CollectionDescription ToDescription(V1.CollectionInfo i) => new(i.Name, (int)i.Dimension, ToMetric(i.Metric), i.IndexSpec,
        new CollectionStats((long)i.Count, i.IndexTrained, (long)i.Tombstones, (long)i.AppliedLsn, (long)i.CheckpointLsn, (int)i.Retrains,
            (int)i.Compactions, (long)i.RecordLogBytes, (long)i.WalBytes),
        Memory: i.Memory is { } m
            ? new CollectionMemory((long)i.Count, m.VectorsOnDisk, m.IndexBytesPerVector, m.RerankBytesPerVector, m.RecordMapBytesPerVector, (long)m.RecordStoreMemoryBytes)
            : null,
        Embedder: string.IsNullOrEmpty(i.Embedder) ? null : i.Embedder, Tuning: i.Tuning is { } t ? ToTuning(t) : null);

    public static IndexTuning ToTuning(V1.IndexTuning t)
    {
        ComputeProfile? profile = null;
        if (t.ProfileK > 0 && t.Profile.Count > 0)
        {
            var points = t.Profile.Select(p =>
            {
                var r = ToResolved(p.Params ?? new V1.UsedParams());
                var sp = new SearchParams { NProbe = r.NProbe, CoarseDim = r.CoarseDim, ScanDim = r.ScanDim, Shortlist = r.Shortlist, Rerank = r.Rerank };
                return new ProfilePoint(sp, p.FlopsPerQuery, p.MicrosPerQuery, p.Recall);
            });
            profile = new ComputeProfile(points, (int)t.ProfileK, Math.Max(1, (int)t.ProfileQueries), (long)t.ProfileVectors,
                t.TunedRecall > 0 && t.TunedRecall <= 1 ? t.TunedRecall : null);
        }
        return new IndexTuning(t.Spec, t.Defaults is { } d ? ToResolved(d) : null, profile);
    }

    public static V1.CreateCollectionRequest ToProto(CollectionConfig c)
    {
        ArgumentNullException.ThrowIfNull(c);
        if (c.Dimension < (c.Embedder is null ? 1 : 0)) throw new AdannsException(AdannsErrorCode.InvalidConfiguration, $"Collection \"{c.Name}\": dimension {c.Dimension} is outside {(c.Embedder is null ? "[1, 65536]" : "[0 (the embedder's), 65536]")}.");
        var r = new V1.CreateCollectionRequest { Name = c.Name ?? "", Dimension = (uint)c.Dimension, Metric = ToProto(c.Metric), IndexSpec = c.IndexSpec ?? "" };
        if (c.TrainThreshold is int t)
        {
            if (t < 1) throw new AdannsException(AdannsErrorCode.InvalidConfiguration, $"Collection \"{c.Name}\": TrainThreshold must be ≥ 1 (got {t}).");
            r.TrainThreshold = (uint)t;
        }
        if (c.MaxPayloadBytes < 0) throw new AdannsException(AdannsErrorCode.InvalidConfiguration, $"Collection \"{c.Name}\": MaxPayloadBytes must be ≥ 0.");
        r.MaxPayloadBytes = (uint)c.MaxPayloadBytes;
        if (c.Embedder is { } embedder) r.Embedder = embedder;
        return r;
    }

    /// <summary>
    /// The typed error of a failed call: the engine's code from the status details (<c>grpc-status-details-bin</c>:
    /// a <c>google.rpc.Status</c> with an <c>ErrorInfo</c> of domain <c>adanns.v1</c>, see <see cref="V1.ErrorDetails"/>)
    /// when the server sent them, else from the older <c>adanns-error-code</c> trailer, else the code the gRPC status
    /// implies. A call cancelled by the caller's token is an <see cref="OperationCanceledException"/>.
    /// </summary>
    public static Exception ToException(RpcException e, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(e);
        if (e.StatusCode == StatusCode.Cancelled && ct.IsCancellationRequested) return new OperationCanceledException(e.Status.Detail, e, ct);
        AdannsErrorCode code;
        int? index;
        if (V1.ErrorDetails.TryRead(e, out string reason, out int? at0) && Enum.TryParse(reason, out AdannsErrorCode fromDetails)
            && Enum.IsDefined(fromDetails))
        {
            code = fromDetails;
            index = at0;
        }
        else
        {
            index = e.Trailers.GetValue(AdannsException.RecordIndexTrailerKey) is { } s && int.TryParse(s, System.Globalization.NumberStyles.None,
                System.Globalization.CultureInfo.InvariantCulture, out int i) ? i : null;
            code = e.Trailers.GetValue(AdannsException.TrailerKey) is { } name && Enum.TryParse<AdannsErrorCode>(name, out var c) ? c : FromStatus(e.StatusCode);
        }
        string message = string.IsNullOrEmpty(e.Status.Detail) ? $"The call failed with {e.StatusCode}." : e.Status.Detail;
        return index is int at ? new AdannsException(code, message, at) : new AdannsException(code, message, e);
    }

    private static AdannsErrorCode FromStatus(StatusCode s) => s switch
    {
        StatusCode.NotFound => AdannsErrorCode.CollectionNotFound,
        StatusCode.AlreadyExists => AdannsErrorCode.CollectionExists,
        StatusCode.Unavailable => AdannsErrorCode.Unavailable,
        StatusCode.Unauthenticated => AdannsErrorCode.Unauthenticated,
        StatusCode.PermissionDenied => AdannsErrorCode.PermissionDenied,
        StatusCode.DeadlineExceeded => AdannsErrorCode.DeadlineExceeded,
        StatusCode.ResourceExhausted => AdannsErrorCode.ResourceExhausted,
        StatusCode.DataLoss => AdannsErrorCode.Corrupt,
        StatusCode.InvalidArgument or StatusCode.OutOfRange => AdannsErrorCode.InvalidArgument,
        _ => AdannsErrorCode.Internal,
    };
}
