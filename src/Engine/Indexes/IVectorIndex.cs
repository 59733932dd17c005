using Adanns.Engine.Transforms;

namespace Adanns.Engine.Indexes;

/// <summary>
/// The read side of every vector index (after faiss's <c>Index</c> and qdrant's <c>VectorIndexRead</c>): search, one
/// query or a batch, with per-call <see cref="SearchParams"/> resolved once at the top of the call, an explicit id
/// filter, and the work done reported as <see cref="SearchStats"/>.
/// </summary>
/// <remarks>
/// <para>Results: k ids (external, best first, padded with −1) and scores in the metric's own units (see
/// <see cref="Engine.Metric"/>); the padding's score is the metric's worst value.</para>
/// <para>Space: queries, added vectors and stored vectors are all in the caller's space. An index whose spec has
/// <c>Rot</c> rotates internally and never hands out a rotated vector.</para>
/// <para>Thread safety: any number of searches may run at once. Mutations (<see cref="IVectorIndex"/>) must not run
/// concurrently with searches or with each other; the collection layer serialises them.</para>
/// </remarks>
public interface IVectorIndexReader
{
    /// <summary>Full dimension D of stored vectors and queries.</summary>
    int Dimension { get; }

    /// <summary>Ranking metric.</summary>
    Metric Metric { get; }

    /// <summary>The pipeline the index was built with.</summary>
    IndexSpec Spec { get; }

    /// <summary>The energy-ordering rotation applied inside the index (spec <c>Rot</c>), or null.</summary>
    RotationTransform? Rotation { get; }

    /// <summary>Live vectors.</summary>
    int Count { get; }

    /// <summary>Inverted lists (1 for a flat scan).</summary>
    int NList { get; }

    /// <summary>Rows removed but not yet reclaimed by <see cref="IVectorIndex.Compact"/>.</summary>
    int TombstoneCount { get; }

    /// <summary>Sizes (live + tombstoned rows) of every list.</summary>
    int[] ListSizes();

    /// <summary>Bytes of the searchable index per live vector (scan store or codes, lists, centroids, maps).</summary>
    double ResidentBytesPerVector { get; }

    /// <summary>Bytes per live vector of full vectors kept in memory only for rerank (0 when none are, or they are read from a source).</summary>
    double RerankBytesPerVector { get; }

    /// <summary>The measured cost/recall frontier behind compute budgets; null until <see cref="IVectorIndex.Profile"/> ran (or a profiled index was loaded).</summary>
    ComputeProfile? ComputeProfile { get; }

    /// <summary>
    /// Resolves <paramref name="p"/> against the index defaults (or, with <see cref="SearchParams.MaxFlops"/> /
    /// <see cref="SearchParams.MaxMicros"/>, picks a point of <see cref="ComputeProfile"/>) and validates it: exactly
    /// what a search with the same arguments would run.
    /// </summary>
    ResolvedSearch Resolve(SearchParams? p, int k);

    /// <summary>
    /// The k nearest neighbours of <paramref name="query"/> (D dims). Only ids that <paramref name="filter"/> accepts
    /// are returned (null = all). Allocates nothing after warm-up.
    /// </summary>
    void Search(ReadOnlySpan<float> query, int k, Span<long> ids, Span<float> scores, SearchParams? p, IIdFilter? filter, out SearchStats stats);

    /// <summary>
    /// Searches nq queries (<paramref name="queries"/>: nq×D, row-major) on <paramref name="threads"/> threads (0 = all
    /// cores); <paramref name="ids"/> and <paramref name="scores"/> are nq×k row-major; <paramref name="stats"/> sums
    /// every query's work. The results equal nq single searches with the same arguments.
    /// </summary>
    void SearchBatch(ReadOnlySpan<float> queries, int k, Span<long> ids, Span<float> scores, SearchParams? p, IIdFilter? filter, int threads,
        out SearchStats stats);

    /// <summary>Whether <paramref name="id"/> is live.</summary>
    bool Contains(long id);

    /// <summary>Copies the stored full vector of <paramref name="id"/> (caller space) into <paramref name="destination"/> (D floats); false when absent.</summary>
    bool TryGetStoredVector(long id, Span<float> destination);

    /// <summary>
    /// The stored full vectors of every id in <paramref name="ids"/> (all live; caller space) into
    /// <paramref name="destination"/> (ids.Length × D, row-major), in one batch where the vectors live outside the index.
    /// </summary>
    void ReadStoredVectors(ReadOnlySpan<long> ids, Span<float> destination);

    /// <summary>Saves the index to a versioned, checksummed file (written to a temporary file and renamed).</summary>
    void Save(string path);
}

/// <summary>
/// A vector index with its mutations: every index the engine builds (<see cref="VectorIndex.Build(VectorSet, IndexSpec, Metric, VectorIndexBuildOptions?)"/>).
/// </summary>
/// <remarks>
/// Mutations must be serialised by the caller and never overlap a search (see <see cref="IVectorIndexReader"/>).
/// <see cref="IDisposable.Dispose"/> releases native and device memory; it, too, is a mutation: no search may run
/// during or after it.
/// </remarks>
public interface IVectorIndex : IVectorIndexReader, IDisposable
{
    /// <summary>Adds one vector under <paramref name="id"/> (≥ 0, not already present).</summary>
    void Add(ReadOnlySpan<float> vector, long id);

    /// <summary>
    /// Adds every row of <paramref name="vectors"/> under <paramref name="ids"/> (or, when empty, consecutive ids after
    /// the largest used so far). Everything is validated first: a bad row or id leaves the index untouched.
    /// </summary>
    void AddRange(VectorSet vectors, ReadOnlySpan<long> ids = default, int threads = 0, CancellationToken cancellationToken = default);

    /// <summary>Removes <paramref name="id"/> (a tombstone until <see cref="Compact"/>); false when absent.</summary>
    bool Remove(long id);

    /// <summary>Reclaims the space of removed vectors; results are unchanged.</summary>
    void Compact();

    /// <summary>
    /// Measures the index's cost/recall frontier on a seeded sample of its own vectors (see <see cref="ProfileOptions"/>),
    /// keeps it as <see cref="IVectorIndexReader.ComputeProfile"/> (saved with the index) and returns it; afterwards a
    /// <see cref="SearchParams.MaxFlops"/> or <see cref="SearchParams.MaxMicros"/> budget works on any spec.
    /// </summary>
    ComputeProfile Profile(ProfileOptions? options = null);
}

/// <summary>Options for <see cref="VectorIndex.Build(VectorSet, IndexSpec, Metric, VectorIndexBuildOptions?)"/>, whatever the spec.</summary>
/// <param name="Ivf">Options used when the spec has float or SQ8 lists.</param>
/// <param name="Pq">Options used when the spec has PQ/OPQ codes.</param>
/// <param name="Ids">Ids of the rows (default 0..N−1).</param>
/// <param name="Threads">Threads for assignment and encoding (0 = all cores); overrides the per-family options' own.</param>
public sealed record VectorIndexBuildOptions(IvfBuildOptions? Ivf = null, PqBuildOptions? Pq = null, long[]? Ids = null, int? Threads = null)
{
    /// <summary>Rotations and coarse centroids shared with other builds over the same rows (see <see cref="TrainingCache"/>); null = none.</summary>
    public TrainingCache? Cache { get; init; }
}

/// <summary>The factory of every index: one spec grammar (<see cref="IndexSpec"/>), one file loader.</summary>
public static class VectorIndex
{
    /// <summary>Builds the index <paramref name="spec"/> describes over <paramref name="vectors"/> (ids 0..N−1 unless given).</summary>
    public static IVectorIndex Build(VectorSet vectors, IndexSpec spec, Metric metric, VectorIndexBuildOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(vectors);
        ArgumentNullException.ThrowIfNull(spec);
        var o = options ?? new VectorIndexBuildOptions();
        if (o.Ids is { } given && given.Length != vectors.Count)
            throw new ArgumentException($"{given.Length} ids given for {vectors.Count} vectors.", nameof(options));
        var pq = OptionsFor(spec, o);
        return IvfIndex.Build(vectors, spec, metric, pq, o.Ids);
    }

    /// <summary>
    /// The pipeline's build options for <paramref name="spec"/>: <see cref="VectorIndexBuildOptions.Pq"/> for specs with
    /// PQ/RaBitQ codes, Spill or Prefix8; for plain float / SQ8 specs <see cref="VectorIndexBuildOptions.Ivf"/> when given
    /// (its k-means, rotation sample, threads, scan store dims and device; training on at most nlist × points-per-centroid
    /// rows, as IVF always did).
    /// </summary>
    public static PqBuildOptions OptionsFor(IndexSpec spec, VectorIndexBuildOptions? options)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var o = options ?? new VectorIndexBuildOptions();
        PqBuildOptions pq;
        if (!spec.IsCodecPipeline && (o.Ivf is not null || o.Pq is null))
        {
            var ivf = o.Ivf ?? new IvfBuildOptions();
            pq = ivf.ToPipelineOptions();
        }
        else
        {
            pq = o.Pq ?? new PqBuildOptions();
        }
        if (o.Threads is { } t) pq = pq with { Threads = t };
        if (o.Cache is not null) pq = pq with { Cache = o.Cache };
        return pq;
    }

    /// <summary>
    /// Builds from a factory string, e.g. <c>"Rot,IVF256@32,Scan64,SQ8,Rerank128"</c>, or <c>"Auto"</c> /
    /// <c>"Auto@0.95"</c>: the <see cref="IndexTuner"/> chooses the pipeline for that recall@10 target on these vectors.
    /// </summary>
    public static IVectorIndex Build(VectorSet vectors, string spec, Metric metric, VectorIndexBuildOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (spec.Trim().StartsWith("auto", StringComparison.OrdinalIgnoreCase))
        {
            var tuner = ParseAuto(spec.Trim()) with { Threads = options?.Threads ?? 0 };
            return IndexTuner.Build(vectors, metric, tuner, options?.Ids).Index;
        }
        return Build(vectors, IndexSpec.Parse(spec), metric, options);
    }

    /// <summary>
    /// Whether <paramref name="spec"/> is <c>Auto</c> or <c>Auto@t</c> (the tuner chooses the pipeline), and its recall
    /// target (0.95 for plain <c>Auto</c>). A malformed <c>Auto@…</c> throws <see cref="FormatException"/>.
    /// </summary>
    public static bool IsAuto(string spec, out double targetRecall)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var s = spec.Trim();
        targetRecall = 0;
        if (!s.StartsWith("auto", StringComparison.OrdinalIgnoreCase)) return false;
        targetRecall = ParseAutoTarget(s);
        return true;
    }

    /// <summary>The target of <c>Auto</c> (0.95) or <c>Auto@t</c>, t in (0, 1].</summary>
    internal static double ParseAutoTarget(string spec) => ParseAuto(spec).TargetRecall;

    /// <summary>
    /// <c>Auto[@t][,Bytes{n}]</c> as tuner options: the recall target t in (0, 1] (default 0.95) and an optional limit of
    /// n resident index bytes per vector (<see cref="TunerOptions.MaxBytesPerVector"/>).
    /// </summary>
    internal static TunerOptions ParseAuto(string spec)
    {
        var parts = spec.Split(',', StringSplitOptions.TrimEntries);
        string head = parts[0];
        double target = new TunerOptions().TargetRecall;
        if (head.Length != 4 || !head.Equals("auto", StringComparison.OrdinalIgnoreCase))
        {
            if (!(head.Length > 5 && head[4] == '@' && head[..4].Equals("auto", StringComparison.OrdinalIgnoreCase)
                  && double.TryParse(head[5..], System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out target)
                  && target > 0 && target <= 1))
                throw new FormatException($"Index spec \"{spec}\": expected Auto or Auto@<target recall in (0, 1]>, e.g. Auto@0.95 (optionally ,Bytes<n>).");
        }
        double? bytes = null;
        foreach (var part in parts.Skip(1))
        {
            if (bytes is null && part.Length > 5 && part.StartsWith("Bytes", StringComparison.OrdinalIgnoreCase)
                && int.TryParse(part[5..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int n) && n >= 1)
            {
                bytes = n;
                continue;
            }
            throw new FormatException($"Index spec \"{spec}\": after Auto only Bytes<n> may follow (resident index bytes per vector, n ≥ 1), once; got \"{part}\".");
        }
        return new TunerOptions(TargetRecall: target, MaxBytesPerVector: bytes);
    }

    /// <summary>
    /// Loads any index file the engine ever wrote (every format and version, told apart by the file's magic). An index
    /// saved without its full vectors needs <paramref name="source"/> (it then reads them from there); an index that
    /// keeps its vectors ignores it.
    /// </summary>
    public static IVectorIndex Load(string path, IVectorSource? source = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        Span<byte> magic = stackalloc byte[8];
        using (var f = File.OpenRead(path))
        {
            int read = f.ReadAtLeast(magic, magic.Length, throwOnEndOfStream: false);
            if (read < magic.Length) throw new Persistence.IndexFileException(path, 0, "too short to be an index file.");
        }
        if (magic.SequenceEqual(IvfIndex.FileMagic)) return IvfIndex.Load(path, source);
        if (magic.SequenceEqual(IvfIndex.IvfFileMagic)) return IvfIndex.LoadIvfFile(path); // plain float / SQ8 specs before format 1.9
        throw new Persistence.IndexFileException(path, 0, "not an AdannsDotNet index file (unknown magic).");
    }
}

/// <summary>Convenience overloads every index gets through its contract.</summary>
public static class VectorIndexExtensions
{
    /// <summary>Searches with optional parameters and filter, discarding the stats.</summary>
    public static void Search(this IVectorIndexReader index, ReadOnlySpan<float> query, int k, Span<long> ids, Span<float> scores,
        SearchParams? p = null, IIdFilter? filter = null) =>
        index.Search(query, k, ids, scores, p, filter, out _);

    /// <summary>Batch search into new arrays.</summary>
    public static SearchResults SearchBatch(this IVectorIndexReader index, ReadOnlySpan<float> queries, int k, SearchParams? p = null,
        IIdFilter? filter = null, int threads = 0) =>
        SearchBatch(index, queries, k, p, filter, threads, out _);

    /// <summary>Batch search into new arrays, with the summed stats.</summary>
    public static SearchResults SearchBatch(this IVectorIndexReader index, ReadOnlySpan<float> queries, int k, SearchParams? p, IIdFilter? filter,
        int threads, out SearchStats stats)
    {
        ArgumentNullException.ThrowIfNull(index);
        if (queries.Length % index.Dimension != 0)
            throw new ArgumentException($"Query data length {queries.Length} is not a multiple of D = {index.Dimension}.", nameof(queries));
        var res = new SearchResults(queries.Length / index.Dimension, k);
        index.SearchBatch(queries, k, res.Ids, res.Scores, p, filter, threads, out stats);
        return res;
    }
}
