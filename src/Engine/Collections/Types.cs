using System.Diagnostics.Metrics;
using Adanns.Engine.Indexes;
using Adanns.Engine.Storage;
using Microsoft.Extensions.Logging;

namespace Adanns.Engine.Collections;

/// <summary>
/// What a collection is: its name, vector dimension, metric and index pipeline (an <see cref="IndexSpec"/> factory
/// string; put <c>Rot</c> in it for the energy-ordering rotation). Fixed at creation.
/// </summary>
/// <param name="Name">1–64 characters from [A-Za-z0-9_-]; also the collection's directory name.</param>
/// <param name="Dimension">Vector dimension D (1..65536).</param>
/// <param name="Metric">Ranking metric.</param>
/// <param name="IndexSpec">Index pipeline, e.g. <c>"IVF256@64,Scan128,SQ8,Rerank384"</c>, or <c>"Auto"</c> / <c>"Auto@0.9"</c>: the
/// <see cref="IndexTuner"/> chooses the pipeline on the collection's own vectors when it first trains (at 1,024 vectors
/// unless <see cref="TrainThreshold"/> says otherwise, never under 1,000), keeps that structure when it retrains on growth
/// (the frontier is measured again), and searches without parameters run at the recall target.</param>
public sealed record CollectionConfig(string Name, int Dimension, Metric Metric, string IndexSpec)
{
    /// <summary>
    /// Live vectors needed before the IVF index is trained (in the background); until then searches are exact.
    /// Null = max(1,024, 32 × nlist).
    /// </summary>
    public int? TrainThreshold { get; init; }

    /// <summary>Largest encoded payload per record, in bytes.</summary>
    public int MaxPayloadBytes { get; init; } = 64 * 1024;

    /// <summary>
    /// Name of the text embedder (one of <see cref="DatabaseOptions.Embedders"/>, e.g. <c>"minilm"</c>) that turns text
    /// into this collection's vectors (<see cref="Collection.UpsertTextAsync"/>, <see cref="Collection.SearchTextAsync"/>);
    /// null = vectors only. With an embedder, a <see cref="Dimension"/> of 0 means the embedder's.
    /// </summary>
    public string? Embedder { get; init; }

    internal int EffectiveTrainThreshold(IndexSpec spec) =>
        Math.Max(spec.IsPq ? Math.Max(spec.NList, 256) : spec.NList, TrainThreshold ?? Math.Max(1024, 32 * spec.NList)); // PQ: 256 centroids per sub-quantizer
}

/// <summary>A record: id, vector (D floats) and optional payload.</summary>
/// <param name="Id">Unsigned 64-bit or string id.</param>
/// <param name="Vector">The vector, D finite floats.</param>
/// <param name="Payload">Optional fields (string / number / bool / list values).</param>
public sealed record VectorRecord(RecordId Id, ReadOnlyMemory<float> Vector, IReadOnlyDictionary<string, PayloadValue>? Payload = null);

/// <summary>One search result.</summary>
/// <param name="Id">The record's id.</param>
/// <param name="Score">Score in the metric's units (see <see cref="Engine.Metric"/>).</param>
/// <param name="Payload">The record's payload when requested, else null.</param>
public readonly record struct SearchHit(RecordId Id, float Score, IReadOnlyDictionary<string, PayloadValue>? Payload)
{
    /// <summary>The hit's stored vector when the search asked for vectors (read in the same snapshot as the search), else empty.</summary>
    public ReadOnlyMemory<float> Vector { get; init; }
}

/// <summary>
/// The order of search results everywhere (a collection's hits, a cluster's merged shards): the better score first
/// (by the metric's direction), and among equal scores the lower record id (<see cref="RecordId.CompareTo"/>).
/// </summary>
public sealed class SearchHitOrder : IComparer<SearchHit>
{
    private readonly bool _higherIsBetter;

    private SearchHitOrder(bool higherIsBetter) => _higherIsBetter = higherIsBetter;

    /// <summary>For similarity metrics (cosine, inner product).</summary>
    public static SearchHitOrder HigherIsBetter { get; } = new(true);

    /// <summary>For distances (L2).</summary>
    public static SearchHitOrder LowerIsBetter { get; } = new(false);

    /// <summary>The order for <paramref name="metric"/>.</summary>
    public static SearchHitOrder For(Metric metric) => metric.HigherIsBetter() ? HigherIsBetter : LowerIsBetter;

    /// <inheritdoc/>
    public int Compare(SearchHit a, SearchHit b)
    {
        int c = _higherIsBetter ? b.Score.CompareTo(a.Score) : a.Score.CompareTo(b.Score);
        return c != 0 ? c : a.Id.CompareTo(b.Id);
    }
}

/// <summary>How a search ran (for tests, benchmarks and diagnostics).</summary>
public enum SearchPath
{
    /// <summary>Exact scan of every live record (the index is not trained yet).</summary>
    Flat,

    /// <summary>The IVF index, unfiltered.</summary>
    Index,

    /// <summary>The IVF index with the filter applied inside the list scan.</summary>
    IndexFiltered,

    /// <summary>Exact scan over the records matching a selective filter.</summary>
    ExactFiltered,
}

/// <summary>Counters of a collection at one moment.</summary>
/// <param name="Count">Live records.</param>
/// <param name="IndexTrained">Whether searches use the IVF index (false: exact search until enough vectors arrive).</param>
/// <param name="Tombstones">Deleted rows still in the index, awaiting compaction.</param>
/// <param name="AppliedLsn">Log sequence number of the last applied write.</param>
/// <param name="CheckpointLsn">LSN covered by the last checkpoint.</param>
/// <param name="Retrains">Index trainings finished since open.</param>
/// <param name="Compactions">Index compactions since open.</param>
/// <param name="RecordLogBytes">Bytes in the record store's log.</param>
/// <param name="WalBytes">Bytes in the write-ahead log (entries since the last checkpoint).</param>
public readonly record struct CollectionStats(long Count, bool IndexTrained, long Tombstones, long AppliedLsn, long CheckpointLsn,
    int Retrains, int Compactions, long RecordLogBytes, long WalBytes);

/// <summary>Resident memory of a collection (see <see cref="Collection.GetMemory"/>); byte figures are estimates from sizes.</summary>
/// <param name="Count">Live records.</param>
/// <param name="VectorsOnDisk">True for a PQ index: full vectors are not resident; rerank reads them from the record store.</param>
/// <param name="IndexBytesPerVector">The searchable index per live vector (codes or full rows, ids, id map, amortised centroids).</param>
/// <param name="RerankBytesPerVector">Full vectors kept in memory for rerank beside the index (0 when read from the store).</param>
/// <param name="RecordMapBytesPerVector">The collection's id and payload-reference maps per record.</param>
/// <param name="RecordStoreMemoryBytes">Bound of the record store's in-memory log (the rest of the records are on disk).</param>
public readonly record struct CollectionMemory(long Count, bool VectorsOnDisk, double IndexBytesPerVector, double RerankBytesPerVector,
    double RecordMapBytesPerVector, long RecordStoreMemoryBytes)
{
    /// <summary>Resident bytes per live record, excluding the bounded record-store log and payload contents.</summary>
    public double ResidentBytesPerVector => IndexBytesPerVector + RerankBytesPerVector + RecordMapBytesPerVector;
}

/// <summary>Database-wide settings.</summary>
public sealed record DatabaseOptions
{
    /// <summary>
    /// Text embedders collections may be created with, by name (case-insensitive), e.g. <c>["minilm"] = new
    /// Adanns.Embeddings.MiniLmTextEmbedder()</c>. A collection whose embedder is not registered still serves vectors.
    /// </summary>
    public IReadOnlyDictionary<string, ITextEmbedder>? Embedders { get; init; }

    internal static (string Name, ITextEmbedder Embedder)? FindEmbedder(IReadOnlyDictionary<string, ITextEmbedder>? embedders, string name)
    {
        if (embedders is null) return null;
        if (embedders.TryGetValue(name, out var e)) return (name, e);
        foreach (var (k, v) in embedders)
            if (string.Equals(k, name, StringComparison.OrdinalIgnoreCase)) return (k, v);
        return null;
    }

    /// <summary>Checkpoint a collection at least this often while it takes writes.</summary>
    public TimeSpan CheckpointInterval { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Checkpoint when the write-ahead log holds this many bytes.</summary>
    public long CheckpointWalBytes { get; init; } = 256L << 20;

    /// <summary>Memory for each collection's record store log (older records live on disk).</summary>
    public long RecordMemoryBytes { get; init; } = 64L << 20;

    /// <summary>Train and retrain indexes, compact and checkpoint in the background (off: only on request).</summary>
    public bool BackgroundMaintenance { get; init; } = true;

    /// <summary>
    /// A filter matching at most this fraction of live records runs as an exact scan of the matches; above it, the index
    /// scans with the filter as a per-candidate bit test and a wider probe. (The payload index counts matches exactly.
    /// 0.02: where exact and index cost about the same, between ~1 % on MiniLM 384-dim and ~4 % on 128-dim synthetic data.)
    /// </summary>
    public double ExactFilterSelectivity { get; init; } = 0.02;

    /// <summary>
    /// Floor for the process's thread-pool minimum worker threads, raised (never lowered) when a database opens; 0 leaves
    /// it alone. FASTER's file device completes its writes on the thread pool (on Linux a blocking pwrite per pool
    /// thread), so a record-store checkpoint's page flushes can occupy every pool thread at the default minimum (one per
    /// core) and the write-ahead log's commit — what every acknowledgement waits for — queued behind them until the pool
    /// grew (measured: 1.7 s commits on 2 cores during a checkpoint; none with a floor of 32).
    /// </summary>
    public int MinThreadPoolThreads { get; init; } = 32;

    /// <summary>
    /// Nice value (Linux scheduling priority, 1–19; 0 = unchanged) of a collection's training threads, so a training's
    /// CPU-bound k-means and encoding yield the CPU to the threads writes are acknowledged and searches answered on.
    /// Default 10.
    /// </summary>
    public int BackgroundThreadNice { get; init; } = 10;

    /// <summary>
    /// Backpressure: the most bytes of acknowledged vectors a collection's index may lag behind by — the writes made while
    /// a training runs, journaled (a copy of each vector, 4·D + 48 bytes) until the fresh index has absorbed them. While
    /// the journal holds more, new writes wait (in order, nothing logged yet) until the training catches up, at most
    /// <see cref="BackpressureTimeout"/>. This bounds the memory a slow training lets ingest pile up (before it, a 10M × 128
    /// ingest passed 16 GB while the first training caught up). Default 512 MiB.
    /// </summary>
    public long MaxIndexBacklogBytes { get; init; } = 512L << 20;

    /// <summary>
    /// How long a write waits for the index backlog to fall under <see cref="MaxIndexBacklogBytes"/> before it fails with
    /// <see cref="AdannsErrorCode.Overloaded"/> (gRPC <c>UNAVAILABLE</c>: retry later; nothing was written). Default 30 s;
    /// <see cref="Timeout.InfiniteTimeSpan"/>: wait until the index catches up (cluster replicas, whose writes must be logged
    /// in their shard's order).
    /// </summary>
    public TimeSpan BackpressureTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Checkpoint each collection when it is closed, so the next open replays nothing (off: recovery replays the log).</summary>
    public bool CheckpointOnDispose { get; init; } = true;

    /// <summary>Retrain when the largest list exceeds this multiple of the mean list size.</summary>
    public double ImbalanceFactor { get; init; } = 8;

    /// <summary>
    /// Measure each newly trained index's cost/recall frontier (<see cref="IvfIndex.Profile"/>, single thread) before
    /// it serves, so searches can pass a compute budget (<see cref="SearchParams.MaxFlops"/> /
    /// <see cref="SearchParams.MaxMicros"/>). Adds the profiling time to every training.
    /// </summary>
    public bool ProfileIndexes { get; init; }

    /// <summary>
    /// Where collections' batch searches scan float / SQ8 lists (<see cref="IvfIndex.Device"/>) and their trainings run
    /// k-means: <see cref="Kernels.Gpu.ComputeDevice.Cpu"/> (SIMD, the default), a CUDA GPU (<c>Auto</c> falls back to
    /// the CPU without one; <c>Cuda</c> requires one) or <c>IlgpuCpu</c> (ILGPU's CPU simulator, for tests). Single
    /// queries, other codecs and specs with a rerank stage run on the CPU: a collection's index keeps codes only and reranks
    /// from the record store, choosing each query's shortlist on its own (see <see cref="IvfIndex.Device"/>).
    /// </summary>
    public Kernels.Gpu.ComputeDevice SearchDevice { get; init; } = Kernels.Gpu.ComputeDevice.Cpu;

    /// <summary>
    /// Where the database logs (trainings, checkpoints, recoveries, quarantines, failures); null = nowhere. With
    /// <c>services.AddAdanns(…)</c> the host's logger factory is used.
    /// </summary>
    public ILoggerFactory? LoggerFactory { get; init; }

    /// <summary>
    /// Creates the database's meter (<see cref="EngineMetrics.MeterName"/>); null = a meter of its own, still visible
    /// to a <see cref="MeterListener"/> or OpenTelemetry <c>AddMeter("Adanns.Engine")</c>.
    /// </summary>
    public IMeterFactory? MeterFactory { get; init; }

    /// <summary>Throws <see cref="AdannsException"/> (<see cref="AdannsErrorCode.InvalidConfiguration"/>) naming the first bad setting.</summary>
    public void Validate()
    {
        if (Problem() is { } p) throw new AdannsException(AdannsErrorCode.InvalidConfiguration, p);
    }

    /// <summary>The first bad setting and its allowed range, or null when every setting is valid.</summary>
    public string? Problem()
    {
        if (CheckpointInterval <= TimeSpan.Zero) return $"CheckpointInterval must be positive (got {CheckpointInterval}).";
        if (CheckpointWalBytes < 1) return $"CheckpointWalBytes must be at least 1 (got {CheckpointWalBytes}).";
        if (RecordMemoryBytes < 1 << 20) return $"RecordMemoryBytes must be at least 1 MiB (got {RecordMemoryBytes}).";
        if (!(ExactFilterSelectivity is >= 0 and <= 1)) return $"ExactFilterSelectivity must be in [0, 1] (got {ExactFilterSelectivity}).";
        if (MinThreadPoolThreads is < 0 or > 4096) return $"MinThreadPoolThreads must be in [0, 4096] (got {MinThreadPoolThreads}).";
        if (MaxIndexBacklogBytes < 1 << 20) return $"MaxIndexBacklogBytes must be at least 1 MiB (got {MaxIndexBacklogBytes}).";
        if ((BackpressureTimeout < TimeSpan.Zero || BackpressureTimeout > TimeSpan.FromHours(1)) && BackpressureTimeout != Timeout.InfiniteTimeSpan)
            return $"BackpressureTimeout must be in [0, 1 h] or infinite (got {BackpressureTimeout}).";
        if (!Enum.IsDefined(SearchDevice)) return $"SearchDevice must be one of {string.Join(", ", Enum.GetNames<Kernels.Gpu.ComputeDevice>())} (got {(int)SearchDevice}).";
        if (!(ImbalanceFactor > 1) || double.IsInfinity(ImbalanceFactor)) return $"ImbalanceFactor must be a finite number above 1 (got {ImbalanceFactor}).";
        return null;
    }
}

/// <summary>A collection that failed to load and is not served.</summary>
/// <param name="Name">Directory name.</param>
/// <param name="Directory">Full path.</param>
/// <param name="Reason">What failed (file, offset, problem).</param>
public sealed record QuarantinedCollection(string Name, string Directory, string Reason);
