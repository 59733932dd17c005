using Adanns.Engine;
using Adanns.Engine.Collections;
using Adanns.Engine.Indexes;
using Adanns.Engine.Storage;

namespace Adanns.Cluster;

/// <summary>
/// What a sharded collection is: the engine configuration every replica is created with, how many shards, how many
/// replicas of each shard, and how many replicas must durably apply a write before it is acknowledged.
/// </summary>
/// <param name="Config">Engine configuration of every shard replica (name, dimension, metric, index spec).</param>
/// <param name="Shards">Shards (1..256); ids route to shards by a stable hash (see <see cref="ShardRouting"/>).</param>
/// <param name="ReplicationFactor">Replicas of each shard, on distinct nodes (1..number of nodes).</param>
/// <param name="WriteConsistency">Replicas that must durably apply a write before it is acknowledged; 0 = every
/// live replica (at least one).</param>
public sealed record ClusterCollectionSpec(CollectionConfig Config, int Shards = 1, int ReplicationFactor = 1, int WriteConsistency = 0);

/// <summary>State of one shard replica.</summary>
public enum ReplicaState
{
    /// <summary>Up to date: receives every write and serves reads.</summary>
    Active = 1,

    /// <summary>Its node is up but the replica is behind: it is being caught up (log delta or full transfer) and
    /// serves no reads until it is.</summary>
    CatchingUp = 2,

    /// <summary>Its node left the cluster (or stopped answering); after <see cref="ClusterNodeOptions.ReReplicateAfter"/>
    /// the shard is re-replicated elsewhere.</summary>
    Dead = 3,

    /// <summary>Replaced by a re-replicated copy; its files are deleted when its node returns.</summary>
    Removed = 4,
}

/// <summary>One replica of a shard: where it lives and its state.</summary>
/// <param name="Node">Node (silo) name.</param>
/// <param name="State">State.</param>
/// <param name="Position">Last write sequence number the replica holds, as last reported (-1 unknown).</param>
/// <param name="DeadSinceUtc">When it was marked dead (null unless <see cref="ReplicaState.Dead"/>).</param>
public sealed record ReplicaInfo(string Node, ReplicaState State, long Position, DateTime? DeadSinceUtc);

/// <summary>One shard: its replicas and its write sequence.</summary>
public sealed record ShardInfo(int Shard, long Sequence, IReadOnlyList<ReplicaInfo> Replicas)
{
    /// <summary>Records copied by this shard's last full transfer (0: none since activation).</summary>
    public long LastTransferRecords { get; init; }

    /// <summary>Seconds the last full transfer took.</summary>
    public double LastTransferSeconds { get; init; }

    /// <summary>Writes the shard acknowledged while its last full transfer ran (a transfer does not stop writes).</summary>
    public long LastTransferWrites { get; init; }

    /// <summary>Most writes the shard has had in flight at once since its sequencer activated.</summary>
    public int PeakWritesInFlight { get; init; }
}

/// <summary>A sharded collection: its spec, live count and placement.</summary>
public sealed record ClusterCollectionInfo(ClusterCollectionSpec Spec, long Count, bool IndexTrained, IReadOnlyList<ShardInfo> Shards);

/// <summary>A member of the cluster as membership reports it.</summary>
/// <param name="Name">Node (silo) name.</param>
/// <param name="Address">Silo address (endpoint and generation).</param>
/// <param name="Status">Orleans status: Active, Joining, ShuttingDown, Dead, ...</param>
/// <param name="IsLocal">The node answering.</param>
public sealed record ClusterMemberInfo(string Name, string Address, string Status, bool IsLocal);

/// <summary>Stable id → shard routing. Numbers and strings hash differently (7 and "7" are different records).</summary>
public static class ShardRouting
{
    /// <summary>The shard (0..shards−1) holding <paramref name="id"/>: XxHash64 of a tag byte and the id's bytes.</summary>
    public static int ShardOf(RecordId id, int shards)
    {
        if (shards == 1) return 0;
        Span<byte> buf = stackalloc byte[1 + 8];
        ulong h;
        if (id.IsString)
        {
            var text = id.Text!;
            var bytes = new byte[1 + System.Text.Encoding.UTF8.GetByteCount(text)];
            bytes[0] = 1;
            System.Text.Encoding.UTF8.GetBytes(text, bytes.AsSpan(1));
            h = System.IO.Hashing.XxHash64.HashToUInt64(bytes);
        }
        else
        {
            buf[0] = 0;
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(buf[1..], id.Number);
            h = System.IO.Hashing.XxHash64.HashToUInt64(buf);
        }
        return (int)(h % (ulong)shards);
    }

    /// <summary>Name of shard <paramref name="shard"/>'s replica collection inside a node's database.</summary>
    public static string ReplicaName(string collection, int shard) => $"{collection}-s{shard}";

    /// <summary>Longest cluster collection name (leaves room for the shard suffix in the node's 64-character names).</summary>
    public const int MaxNameLength = 56;
}

/// <summary>
/// A client's payload size as the engine counts it against <c>MaxPayloadBytes</c>: the gateway checks the limit on
/// the whole batch before any shard is written, so a payload is rejected exactly where a single node rejects it and no
/// shard stores part of a rejected batch.
/// </summary>
public static class PayloadSize
{
    /// <summary>
    /// Encoded size (field count 2, per field 2 + UTF-8 name + value: number 9, bool 2, string 5 + UTF-8 bytes,
    /// list 5 + items; 0 for no payload). Field names are validated by the replicas' engines.
    /// </summary>
    public static int EncodedLength(IReadOnlyDictionary<string, PayloadValue>? payload)
    {
        if (payload is null || payload.Count == 0) return 0;
        long n = 2;
        foreach (var (name, value) in payload) n += 2 + System.Text.Encoding.UTF8.GetByteCount(name) + ValueLength(value);
        return (int)Math.Min(n, int.MaxValue);
    }

    private static long ValueLength(PayloadValue? v) => v is null ? 0 : v.Kind switch
    {
        PayloadKind.String => 5 + System.Text.Encoding.UTF8.GetByteCount(v.AsString),
        PayloadKind.Number => 9,
        PayloadKind.Bool => 2,
        _ => 5 + v.AsList.Sum(ValueLength),
    };
}

// ---------------------------------------------------------------- wire types (grain calls)

/// <summary>A record on the wire.</summary>
[GenerateSerializer, Immutable]
public sealed class PointDto
{
    [Id(0)] public RecordId Id { get; init; }
    [Id(1)] public float[] Vector { get; init; } = [];
    [Id(2)] public Dictionary<string, PayloadValue>? Payload { get; init; }

    public static PointDto From(VectorRecord r) => new()
    {
        Id = r.Id,
        Vector = r.Vector.ToArray(),
        Payload = r.Payload is null ? null : new Dictionary<string, PayloadValue>(r.Payload, StringComparer.Ordinal),
    };

    public VectorRecord ToRecord() => new(Id, Vector, Payload);
}

/// <summary>One write of a shard: a batch of upserts or deletes with its place in the shard's sequence.</summary>
[GenerateSerializer, Immutable]
public sealed class ShardWrite
{
    /// <summary>Sequence number of the batch's first record; record i has <c>First + i</c> (as engine LSNs do).</summary>
    [Id(0)] public long First { get; set; }
    [Id(1)] public bool Delete { get; init; }
    [Id(2)] public PointDto[] Points { get; init; } = [];
    [Id(3)] public RecordId[] Ids { get; init; } = [];
    [Id(4)] public bool Wait { get; init; } = true;

    public int Count => Delete ? Ids.Length : Points.Length;
    public long Last => First + Count - 1;
}

/// <summary>Result of one shard write.</summary>
[GenerateSerializer, Immutable]
public readonly record struct WriteResult([property: Id(0)] int Deleted, [property: Id(1)] int Acks);

/// <summary>A payload filter on the wire (the engine's <see cref="Filter"/> is opaque).</summary>
[GenerateSerializer, Immutable]
public sealed class FilterSpec
{
    [Id(0)] public FilterKind Kind { get; init; }
    [Id(1)] public string Field { get; init; } = "";
    [Id(2)] public PayloadValue[] Values { get; init; } = [];
    [Id(3)] public double? Min { get; init; }
    [Id(4)] public double? Max { get; init; }
    [Id(5)] public bool MinInclusive { get; init; } = true;
    [Id(6)] public bool MaxInclusive { get; init; } = true;
    [Id(7)] public FilterSpec[] Children { get; init; } = [];

    public Filter ToFilter() => Kind switch
    {
        FilterKind.In => Filter.In(Field, Values),
        FilterKind.Range => Filter.Range(Field, Min, Max, MinInclusive, MaxInclusive),
        FilterKind.And => Filter.And(Array.ConvertAll(Children, c => c.ToFilter())),
        FilterKind.Or => Filter.Or(Array.ConvertAll(Children, c => c.ToFilter())),
        FilterKind.Not => Filter.Not(Children[0].ToFilter()),
        _ => throw new ArgumentException($"Unknown filter kind {Kind}."),
    };
}

/// <summary>Filter node kinds.</summary>
public enum FilterKind
{
    /// <summary>field in values (equality is a one-value In).</summary>
    In = 1,
    /// <summary>numeric bounds.</summary>
    Range = 2,
    /// <summary>all children.</summary>
    And = 3,
    /// <summary>any child.</summary>
    Or = 4,
    /// <summary>negation of the single child.</summary>
    Not = 5,
}

/// <summary>A search on one replica.</summary>
[GenerateSerializer, Immutable]
public sealed class SearchCall
{
    [Id(0)] public float[] Query { get; init; } = [];
    [Id(1)] public int K { get; init; }
    [Id(2)] public SearchParams? Params { get; init; }
    [Id(3)] public FilterSpec? Filter { get; init; }
    [Id(4)] public bool WithPayload { get; init; }
}

/// <summary>One replica's answer.</summary>
[GenerateSerializer, Immutable]
public sealed class SearchAnswer
{
    [Id(0)] public SearchHit[] Hits { get; init; } = [];
    [Id(1)] public SearchPath Path { get; init; }
    [Id(2)] public long ListsProbed { get; init; }
    [Id(3)] public long VectorsScanned { get; init; }
    [Id(4)] public long VectorsReranked { get; init; }
    [Id(5)] public long Flops { get; init; }
}

/// <summary>A replica's position and whether it serves reads.</summary>
[GenerateSerializer, Immutable]
public readonly record struct ReplicaStatus([property: Id(0)] bool Exists, [property: Id(1)] long Position, [property: Id(2)] bool Serving,
    [property: Id(3)] long Count, [property: Id(4)] bool IndexTrained);

/// <summary>
/// An error that crosses grain calls with its engine error code, so the gateway can answer the client as a single
/// node would (InvalidArgument, NotFound, ...). <see cref="ReplicaFailure"/> marks failures of a replica (closed,
/// out of sync, not serving) as opposed to a rejected request.
/// </summary>
[GenerateSerializer]
public sealed class ClusterException : Exception
{
    public ClusterException() { }
    public ClusterException(string message) : base(message) { }
    public ClusterException(string message, Exception inner) : base(message, inner) { }

    public ClusterException(AdannsErrorCode code, string message, bool replicaFailure = false) : base(message)
    {
        Code = code;
        ReplicaFailure = replicaFailure;
    }

    /// <summary>Engine error code (for status mapping).</summary>
    [Id(0)] public AdannsErrorCode Code { get; init; }

    /// <summary>The replica could not serve (retry elsewhere); false: the request itself was rejected.</summary>
    [Id(1)] public bool ReplicaFailure { get; init; }

    /// <summary>The engine exception a client of this node should see.</summary>
    public AdannsException ToAdannsException() => new(Code, Message, this);
}

// ---------------------------------------------------------------- surrogates for engine types

[GenerateSerializer]
public struct RecordIdSurrogate
{
    [Id(0)] public ulong Number;
    [Id(1)] public string? Text;
}

[RegisterConverter]
public sealed class RecordIdConverter : IConverter<RecordId, RecordIdSurrogate>
{
    public RecordId ConvertFromSurrogate(in RecordIdSurrogate s) => s.Text is null ? new RecordId(s.Number) : new RecordId(s.Text);
    public RecordIdSurrogate ConvertToSurrogate(in RecordId v) => new() { Number = v.Number, Text = v.Text };
}

[GenerateSerializer]
public struct PayloadValueSurrogate
{
    [Id(0)] public byte Kind;
    [Id(1)] public string? Text;
    [Id(2)] public double Number;
    [Id(3)] public PayloadValue[]? Items;
}

[RegisterConverter]
public sealed class PayloadValueConverter : IConverter<PayloadValue, PayloadValueSurrogate>
{
    public PayloadValue ConvertFromSurrogate(in PayloadValueSurrogate s) => (PayloadKind)s.Kind switch
    {
        PayloadKind.String => PayloadValue.String(s.Text!),
        PayloadKind.Number => PayloadValue.Number(s.Number),
        PayloadKind.Bool => PayloadValue.Bool(s.Number != 0),
        _ => PayloadValue.List(s.Items ?? []),
    };

    public PayloadValueSurrogate ConvertToSurrogate(in PayloadValue v) => v.Kind switch
    {
        PayloadKind.String => new() { Kind = (byte)v.Kind, Text = v.AsString },
        PayloadKind.Number => new() { Kind = (byte)v.Kind, Number = v.AsNumber },
        PayloadKind.Bool => new() { Kind = (byte)v.Kind, Number = v.AsBool ? 1 : 0 },
        _ => new() { Kind = (byte)v.Kind, Items = v.AsList.ToArray() },
    };
}

[GenerateSerializer]
public struct SearchHitSurrogate
{
    [Id(0)] public RecordId Id;
    [Id(1)] public float Score;
    [Id(2)] public Dictionary<string, PayloadValue>? Payload;
    [Id(3)] public float[]? Vector;
}

[RegisterConverter]
public sealed class SearchHitConverter : IConverter<SearchHit, SearchHitSurrogate>
{
    public SearchHit ConvertFromSurrogate(in SearchHitSurrogate s) => new(s.Id, s.Score, s.Payload) { Vector = s.Vector ?? ReadOnlyMemory<float>.Empty };
    public SearchHitSurrogate ConvertToSurrogate(in SearchHit v) => new()
    {
        Id = v.Id, Score = v.Score, Vector = v.Vector.IsEmpty ? null : v.Vector.ToArray(),
        Payload = v.Payload is null ? null : v.Payload as Dictionary<string, PayloadValue> ?? new Dictionary<string, PayloadValue>(v.Payload, StringComparer.Ordinal),
    };
}

[GenerateSerializer]
public struct RerankStageSurrogate
{
    [Id(0)] public int Dim;
    [Id(1)] public int? Keep;
}

[RegisterConverter]
public sealed class RerankStageConverter : IConverter<RerankStage, RerankStageSurrogate>
{
    public RerankStage ConvertFromSurrogate(in RerankStageSurrogate s) => new(s.Dim, s.Keep);
    public RerankStageSurrogate ConvertToSurrogate(in RerankStage v) => new() { Dim = v.Dim, Keep = v.Keep };
}

[GenerateSerializer]
public struct SearchParamsSurrogate
{
    [Id(0)] public int? NProbe;
    [Id(1)] public int? CoarseDim;
    [Id(2)] public int? ScanDim;
    [Id(3)] public int? Shortlist;
    [Id(4)] public RerankStage[]? Rerank;
    [Id(5)] public bool? Exact;
    [Id(6)] public double? MaxFlops;
    [Id(7)] public double? MaxMicros;
    [Id(8)] public double? TargetRecall;
}

[RegisterConverter]
public sealed class SearchParamsConverter : IConverter<SearchParams, SearchParamsSurrogate>
{
    public SearchParams ConvertFromSurrogate(in SearchParamsSurrogate s) => new()
    {
        NProbe = s.NProbe, CoarseDim = s.CoarseDim, ScanDim = s.ScanDim, Shortlist = s.Shortlist, Rerank = s.Rerank,
        Exact = s.Exact, MaxFlops = s.MaxFlops, MaxMicros = s.MaxMicros, TargetRecall = s.TargetRecall,
    };

    public SearchParamsSurrogate ConvertToSurrogate(in SearchParams v) => new()
    {
        NProbe = v.NProbe, CoarseDim = v.CoarseDim, ScanDim = v.ScanDim, Shortlist = v.Shortlist, Rerank = v.Rerank?.ToArray(),
        Exact = v.Exact, MaxFlops = v.MaxFlops, MaxMicros = v.MaxMicros, TargetRecall = v.TargetRecall,
    };
}

[GenerateSerializer]
public struct CollectionConfigSurrogate
{
    [Id(0)] public string Name;
    [Id(1)] public int Dimension;
    [Id(2)] public Metric Metric;
    [Id(3)] public string IndexSpec;
    [Id(4)] public int? TrainThreshold;
    [Id(5)] public int MaxPayloadBytes;
    [Id(6)] public string? Embedder;
}

[RegisterConverter]
public sealed class CollectionConfigConverter : IConverter<CollectionConfig, CollectionConfigSurrogate>
{
    public CollectionConfig ConvertFromSurrogate(in CollectionConfigSurrogate s) =>
        new(s.Name, s.Dimension, s.Metric, s.IndexSpec) { TrainThreshold = s.TrainThreshold, MaxPayloadBytes = s.MaxPayloadBytes, Embedder = s.Embedder };

    public CollectionConfigSurrogate ConvertToSurrogate(in CollectionConfig v) => new()
    {
        Name = v.Name, Dimension = v.Dimension, Metric = v.Metric, IndexSpec = v.IndexSpec, TrainThreshold = v.TrainThreshold, MaxPayloadBytes = v.MaxPayloadBytes,
        Embedder = v.Embedder,
    };
}

[GenerateSerializer]
public struct ClusterCollectionSpecSurrogate
{
    [Id(0)] public CollectionConfig Config;
    [Id(1)] public int Shards;
    [Id(2)] public int ReplicationFactor;
    [Id(3)] public int WriteConsistency;
}

[RegisterConverter]
public sealed class ClusterCollectionSpecConverter : IConverter<ClusterCollectionSpec, ClusterCollectionSpecSurrogate>
{
    public ClusterCollectionSpec ConvertFromSurrogate(in ClusterCollectionSpecSurrogate s) => new(s.Config, s.Shards, s.ReplicationFactor, s.WriteConsistency);
    public ClusterCollectionSpecSurrogate ConvertToSurrogate(in ClusterCollectionSpec v) =>
        new() { Config = v.Config, Shards = v.Shards, ReplicationFactor = v.ReplicationFactor, WriteConsistency = v.WriteConsistency };
}

[GenerateSerializer]
public struct ReplicaInfoSurrogate
{
    [Id(0)] public string Node;
    [Id(1)] public ReplicaState State;
    [Id(2)] public long Position;
    [Id(3)] public DateTime? DeadSinceUtc;
}

[RegisterConverter]
public sealed class ReplicaInfoConverter : IConverter<ReplicaInfo, ReplicaInfoSurrogate>
{
    public ReplicaInfo ConvertFromSurrogate(in ReplicaInfoSurrogate s) => new(s.Node, s.State, s.Position, s.DeadSinceUtc);
    public ReplicaInfoSurrogate ConvertToSurrogate(in ReplicaInfo v) => new() { Node = v.Node, State = v.State, Position = v.Position, DeadSinceUtc = v.DeadSinceUtc };
}

[GenerateSerializer]
public struct ShardInfoSurrogate
{
    [Id(0)] public int Shard;
    [Id(1)] public long Sequence;
    [Id(2)] public ReplicaInfo[] Replicas;
    [Id(3)] public long LastTransferRecords;
    [Id(4)] public double LastTransferSeconds;
    [Id(5)] public long LastTransferWrites;
    [Id(6)] public int PeakWritesInFlight;
}

[RegisterConverter]
public sealed class ShardInfoConverter : IConverter<ShardInfo, ShardInfoSurrogate>
{
    public ShardInfo ConvertFromSurrogate(in ShardInfoSurrogate s) =>
        new(s.Shard, s.Sequence, s.Replicas)
        {
            LastTransferRecords = s.LastTransferRecords, LastTransferSeconds = s.LastTransferSeconds, LastTransferWrites = s.LastTransferWrites, PeakWritesInFlight = s.PeakWritesInFlight,
        };
    public ShardInfoSurrogate ConvertToSurrogate(in ShardInfo v) => new()
    {
        Shard = v.Shard, Sequence = v.Sequence, Replicas = v.Replicas.ToArray(), LastTransferRecords = v.LastTransferRecords, LastTransferSeconds = v.LastTransferSeconds,
        LastTransferWrites = v.LastTransferWrites, PeakWritesInFlight = v.PeakWritesInFlight,
    };
}
