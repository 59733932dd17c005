using Adanns.Engine.Clustering;
using Adanns.Engine.Quantization;
using Adanns.Engine.Transforms;
using Adanns.Kernels;

namespace Adanns.Engine.Indexes;

/// <summary>Options for building a <see cref="IvfIndex"/>.</summary>
/// <param name="KMeans">Coarse k-means options (sample size, iterations, seed, threads).</param>
/// <param name="Opq">OPQ training options (used when the spec says OPQ).</param>
/// <param name="PqIterations">Lloyd iterations of each sub-quantizer for plain PQ.</param>
/// <param name="TrainingSample">Rows used to train OPQ and PQ (an evenly spaced subset).</param>
/// <param name="Threads">Threads for assignment and encoding (0 = all cores).</param>
/// <param name="RotationSample">Rows used to learn the rotation when the spec has <c>Rot</c> (one D×D Gram matrix: cheap
/// next to k-means, and the prefixes every later step relies on come out of it).</param>
/// <param name="ScanStoreDims">SQ8 / float scan codes: dims each code holds (default: the spec's scan dim, else d_c). Raise it to
/// sweep the scan dim at query time beyond the spec's; scans deeper than the codes read the resident rows.</param>
/// <param name="Device">One knob for the GPU: k-means training runs there (unless <see cref="KMeans"/> names a device itself)
/// and the built index's <see cref="IvfIndex.Device"/> is set to it. Default: the SIMD CPU path.</param>
public sealed record PqBuildOptions(KMeansOptions? KMeans = null, OpqOptions? Opq = null, int PqIterations = 20, int TrainingSample = 50_000, int Threads = 0,
    int RotationSample = 100_000, int? ScanStoreDims = null, Adanns.Kernels.Gpu.ComputeDevice Device = Adanns.Kernels.Gpu.ComputeDevice.Cpu)
{
    /// <summary>Rotations and coarse centroids shared with other builds over the same rows (see <see cref="TrainingCache"/>); null = none.</summary>
    public TrainingCache? Cache { get; init; }

    /// <summary>RaBitQ codes (spec <c>RQ{b}@{d}</c>): the kind of random rotation P (default: the structured Hadamard one).</summary>
    public RaBitQRotation RaBitQRotation { get; init; } = RaBitQRotation.Hadamard;
}

/// <summary>What the inverted lists of the IVF pipeline (<see cref="IvfIndex"/>) hold and scan.</summary>
public enum ListCodec
{
    /// <summary>Product-quantized codes (PQ/OPQ, 8-bit or 4-bit fast scan, optionally residual) scanned with lookup tables.</summary>
    Pq,

    /// <summary>8-bit scalar-quantized d_s-dim prefixes (spec <c>SQ8</c>), scanned at any prefix ≤ d_s.</summary>
    Sq8,

    /// <summary>Float32 d_s-dim prefixes, scanned at any prefix ≤ d_s.</summary>
    Float,

    /// <summary>
    /// RaBitQ / Extended RaBitQ codes of the d-dim prefix (spec <c>RQ{b}@{d}</c>), residual to the list's centre, each
    /// with an error bound that drives the first rerank stage at d (<see cref="RaBitQuantizer"/>).
    /// </summary>
    RaBitQ,
}

/// <summary>
/// AdANNS-OPQ and IVF-OPQ: vectors are kept as m-byte product-quantized codes of their d-dim prefix (optionally
/// OPQ-rotated, optionally as residuals to their list centroid), grouped in inverted lists clustered at d_c (one
/// list = a flat code scan). A query ranks centroids at d_c' ≤ d_c, scans the probed lists' codes with a per-query
/// lookup table (ADC), keeps a shortlist, and reranks it through stages that read full float vectors.
/// </summary>
/// <remarks>
/// <para>Memory: the codes, ids and list slots are the resident index (<see cref="ResidentBytesPerVector"/>); the
/// full vectors used by rerank are a separate store (<see cref="RerankBytesPerVector"/>) — in memory here, served
/// from the durable store by collections (<see cref="UseExternalVectors"/>: then the index keeps no full vector and
/// rerank reads the shortlist from an <see cref="IVectorSource"/> in one batch per query). With <c>Prefix8@d</c> an
/// 8-bit copy of each d-dim prefix is resident too, so a first rerank stage at d reads neither floats nor the source.</para>
/// <para>Cosine: every prefix is L2-renormalised before it is coded (and the query likewise), so the ADC score is the
/// cosine of the d-dim prefixes. Inner product codes raw prefixes; L2 codes raw prefixes and ranks by squared
/// distance.</para>
/// <para>Thread safety: searches may run concurrently; Add / Remove / Compact must be serialised by the caller.</para>
/// </remarks>
public sealed partial class IvfIndex : IVectorIndex
{
    private readonly float[] _coarse;          // nlist × d_c: trained centroids (unit rows for cosine)
    private readonly float[] _coarseTable;     // the same in interleaved-16 group-major blocks, for assignment and ranking at d_c' < d_c
    private readonly float[] _coarseNorms;     // ‖c‖² at d_c per centroid (padded to whole blocks), for assignment
    private readonly ScalarQuantizer8? _coarseSq; // 8-bit copy of the centroids for ranking at d_c (null for one list)
    private readonly byte[] _coarseCodes = [];  // interleaved like _coarseTable (float decoding), or
    private readonly byte[] _coarsePacked = []; // Int8Kernels' layout where its int8 × uint8 dot products run vector code (AVX-VNNI, AVX-512BW, AVX2)
    private readonly System.Collections.Concurrent.ConcurrentDictionary<int, float[]> _rankTerms = new(); // per probing dim d', see RankTerms
    private readonly float[]? _residCentroids; // nlist × d: list means in code space before OPQ (Resid only)
    private readonly PqList[] _lists;
    private VectorSet? _rows;                  // rerank store: full D-dim rows (rotated when the spec has Rot), by slot; null with an external source
    private IVectorSource? _source;            // external rerank store (caller-space rows by id) when _rows is null
    private int _slotCount;                    // slots handed out (live + garbage)
    private long[] _slotIds = new long[64];    // slot → external id; −1 once removed
    private readonly Dictionary<long, long> _idToLoc = new(); // id → (list << 32) | position
    private readonly Dictionary<long, long> _idToSpill = new(); // Spill: id → (list << 32) | position of its second copy
    private int _garbageSlots;
    private long _nextAutoId;
    private EncodeScratch? _addScratch;
    private readonly PrefixStore8? _prefix8;   // Prefix8@d: 8-bit prefix copies by slot, for a first rerank stage at d

    private IvfIndex(int dimension, Metric metric, IndexSpec spec, RotationTransform? rotation, float[] coarse,
        RotationTransform? opq, ProductQuantizer? pq, float[]? residCentroids, ScalarQuantizer8? prefix8, ScalarQuantizer8? scanSq = null,
        RaBitQuantizer? rq = null, int? scanStoreDims = null)
    {
        if ((spec.Prefix8Dim is null) != (prefix8 is null) || (prefix8 is not null && prefix8.Dimension != spec.Prefix8Dim))
            throw new ArgumentException($"Index spec \"{spec}\": the 8-bit prefix quantizer does not match Prefix8.", nameof(prefix8));
        Codec = spec.IsPq ? ListCodec.Pq : spec.IsRaBitQ ? ListCodec.RaBitQ : spec.Sq8 ? ListCodec.Sq8 : ListCodec.Float;
        if (spec.IsPq != (pq is not null))
            throw new ArgumentException($"Index spec \"{spec}\": a product quantizer is needed exactly when the spec has PQ/OPQ codes.", nameof(pq));
        int codeDim = spec.IsPq ? spec.PqDim ?? dimension : spec.IsRaBitQ ? spec.RqDim ?? dimension : scanStoreDims ?? spec.ScanDim ?? spec.CoarseDim ?? dimension;
        if (scanStoreDims is { } store && (spec.IsPq || spec.IsRaBitQ || store < 1 || store > dimension))
            throw new ArgumentOutOfRangeException(nameof(scanStoreDims), store, $"Scan store dims apply to SQ8 / float scan codes only and must be in [1, {dimension}].");
        if (spec.IsRaBitQ != (rq is not null) || (rq is not null && (rq.Dimension != codeDim || rq.Bits != spec.RqBits || rq.Lists != spec.NList)))
            throw new ArgumentException($"Index spec \"{spec}\": the RaBitQ quantizer must be present exactly when the spec has RQ, over {codeDim} dims and {spec.NList} lists.", nameof(rq));
        RaBitQ = rq;
        if (spec.Sq8 != (scanSq is not null) || (scanSq is not null && scanSq.Dimension != codeDim))
            throw new ArgumentException($"Index spec \"{spec}\": the scan quantizer must be present exactly when the spec has SQ8, over {codeDim} dims.", nameof(scanSq));
        ScanQuantizer = scanSq;
        _prefix8 = prefix8 is null ? null : new PrefixStore8(prefix8);
        Dimension = dimension;
        Metric = metric;
        Spec = spec;
        Rotation = rotation;
        NList = spec.NList;
        CoarseDim = spec.CoarseDim ?? dimension;
        CodeDim = codeDim;
        Opq = opq;
        Quantizer = pq;
        _coarse = coarse;
        _residCentroids = residCentroids;
        _coarseTable = new float[InterleavedKernels.Groups(CoarseDim) * InterleavedKernels.GroupStride(CoarseBlocks)];
        for (int l = 0; l < NList; l++)
            InterleavedKernels.WriteRow(_coarseTable, CoarseLayout, l, coarse.AsSpan(l * CoarseDim, CoarseDim));
        // ‖c‖² of every centroid, once: by the same kernel and summation order an assignment used to repeat per row.
        _coarseNorms = new float[CoarseBlocks * InterleavedKernels.BlockRows];
        InterleavedKernels.Dot(new float[CoarseDim], _coarseTable, CoarseLayout, CoarseBlocks, new float[_coarseNorms.Length], _coarseNorms);
        if (NList > 1)
        {
            // Ranking reads every centroid per query: at nlist 2048 × d_c 128 the float table is 1 MB, which competes
            // with the codes for L2. An 8-bit copy streams a quarter of that; the probe order it gives differs from
            // the float one only between near-tied lists. Norms stay exact (the centroids never change).
            _coarseSq = ScalarQuantizer8.TrainRows(coarse, NList, CoarseDim);
            var codes = new byte[NList * CoarseDim];
            for (int l = 0; l < NList; l++)
                _coarseSq.Encode(coarse.AsSpan(l * CoarseDim, CoarseDim), codes.AsSpan(l * CoarseDim, CoarseDim));
            // Int8 dot products (exact int32 sums of the rounded query) where Int8Kernels has a vector path: 2.7 ns per
            // centroid with AVX-512BW on Ice Lake vs 5.9 ns decoding the codes to float (bench/RESULTS.md, "Int8
            // kernels without AVX-VNNI"). Chosen once per process: IsAccelerated is a JIT-time constant.
            if (Int8Kernels.IsAccelerated)
            {
                _coarsePacked = new byte[Int8Kernels.PackedBytes(NList, CoarseDim)];
                Int8Kernels.Pack(codes, NList, CoarseDim, _coarsePacked);
            }
            else
            {
                _coarseCodes = new byte[_coarseTable.Length];
                for (int l = 0; l < NList; l++)
                    InterleavedKernels.WriteRow(_coarseCodes, CoarseLayout, l, codes.AsSpan(l * CoarseDim, CoarseDim));
            }
            RankTerms(CoarseDim); // the default probing dim's terms, ready before the first query
        }
        _codeWidth = Codec switch { ListCodec.Pq => pq!.M, ListCodec.Sq8 => codeDim, ListCodec.RaBitQ => rq!.CodeWidth, _ => codeDim * sizeof(float) };
        var layout = Codec switch
        {
            ListCodec.Pq => pq!.Bits == 4 ? CodeLayout.FastScan4 : CodeLayout.RowMajor,
            ListCodec.Sq8 => CodeLayout.Interleaved8,
            ListCodec.RaBitQ => CodeLayout.RaBitQ,
            _ => CodeLayout.Interleaved32,
        };
        _lists = new PqList[NList];
        for (int l = 0; l < NList; l++) _lists[l] = new PqList(_codeWidth, layout, codeDim, rq?.Bits ?? 0);
        _rows = new VectorSet(dimension);
    }

    /// <summary>
    /// The per-centroid term that turns q·c[:d] into a ranking key, computed once per probing dim (the centroids never
    /// change): −1/‖c[:d]‖ for cosine (key = q·c · term, prefixes of unit centroids renormalised), ‖c[:d]‖² otherwise
    /// (the L2 rule, key = term − 2 q·c).
    /// </summary>
    private float[] RankTerms(int d)
    {
        if (_rankTerms.TryGetValue(d, out var cached)) return cached; // no delegate allocation once cached
        var terms = new float[NList];
        for (int l = 0; l < NList; l++)
        {
            float n2 = VectorMath.NormSquared(_coarse.AsSpan(l * CoarseDim, d));
            terms[l] = Spherical ? -1f / MathF.Sqrt(MathF.Max(n2, 1e-30f)) : n2;
        }
        return _rankTerms.GetOrAdd(d, terms);
    }

    /// <summary>Full dimension D of stored vectors and queries.</summary>
    public int Dimension { get; }

    /// <summary>Ranking metric (score direction as documented on <see cref="Engine.Metric"/>).</summary>
    public Metric Metric { get; }

    /// <summary>The pipeline this index was built with.</summary>
    public IndexSpec Spec { get; }

    /// <summary>The energy-ordering rotation applied to vectors and queries, if the spec has <c>Rot</c>.</summary>
    public RotationTransform? Rotation { get; }

    /// <summary>Inverted lists (1 = flat code scan).</summary>
    public int NList { get; }

    /// <summary>Clustering dim d_c.</summary>
    public int CoarseDim { get; }

    /// <summary>Prefix dim d the codes are learned on (PQ/OPQ), or the scan dim d_s the SQ8/float scan codes hold.</summary>
    public int CodeDim { get; }

    /// <summary>The list codec: what the inverted lists hold and how a probed list is scanned.</summary>
    public ListCodec Codec { get; }

    /// <summary>
    /// Bytes per stored code: the sub-quantizer count for 8-bit PQ codes, half of it for 4-bit codes, d_s for SQ8 scan
    /// codes and 4·d_s for float scan codes.
    /// </summary>
    public int CodeBytes => Codec switch { ListCodec.Pq => Quantizer!.CodeBytes, ListCodec.RaBitQ => RaBitQ!.StoredBytes, _ => _codeWidth };

    /// <summary>The RaBitQ quantizer of <see cref="ListCodec.RaBitQ"/> codes; null otherwise.</summary>
    public RaBitQuantizer? RaBitQ { get; }

    /// <summary>PQ sub-quantizers (table lookups per scanned code); 0 for SQ8/float scan codes.</summary>
    public int SubQuantizers => Quantizer?.M ?? 0;

    /// <summary>Whether codes are 4-bit and scanned with the in-register fast-scan kernel (<c>PQ{m}x4</c>).</summary>
    public bool FastScan => Quantizer?.Bits == 4;

    /// <summary>The OPQ rotation of the d-dim code space, if the spec says OPQ.</summary>
    public RotationTransform? Opq { get; }

    /// <summary>The product quantizer of the (rotated) code space; null for SQ8/float scan codes.</summary>
    public ProductQuantizer? Quantizer { get; }

    /// <summary>The 8-bit quantizer of SQ8 scan codes (spec <c>SQ8</c> without PQ); null otherwise.</summary>
    public ScalarQuantizer8? ScanQuantizer { get; }

    private readonly int _codeWidth; // unpacked code bytes (see PqList)

    /// <summary>Whether every vector also sits in a second (SOAR-chosen) list (<c>Spill</c>).</summary>
    public bool Spill => Spec.Spill;

    /// <summary>Whether codes are residuals to their list's centroid.</summary>
    public bool Residual => _residCentroids is not null;

    /// <summary>Live vectors.</summary>
    public int Count => _idToLoc.Count;

    /// <summary>Rows removed but not yet reclaimed by <see cref="Compact"/>.</summary>
    public int TombstoneCount => _lists.Sum(l => l.Tombstones);

    private int CoarseBlocks => (NList + InterleavedKernels.BlockRows - 1) / InterleavedKernels.BlockRows;

    private TileLayout CoarseLayout => TileLayout.GroupMajor(CoarseBlocks);

    private bool Spherical => Metric == Metric.Cosine;

    /// <summary>Sizes (live + tombstoned) of every list.</summary>
    public int[] ListSizes() => _lists.Select(l => l.Count).ToArray();

    /// <summary>Each list's codes (tests: where they start in memory).</summary>
    internal IEnumerable<Memory<byte>> ListCodes() => _lists.Select(l => l.CodesMemory);

    /// <summary>
    /// Bytes of the searchable index per live vector: codes, list slots, the id map, list slack, the 8-bit prefix copy
    /// (<c>Prefix8</c>), plus centroids, rotations and codebooks amortised over the vectors. The rerank store is not included (see
    /// <see cref="RerankBytesPerVector"/>).
    /// </summary>
    public double ResidentBytesPerVector
    {
        get
        {
            if (Count == 0) return 0;
            long bytes = 0;
            foreach (var l in _lists) bytes += l.AllocatedBytes;
            bytes += (long)(_idToLoc.Count + _idToSpill.Count) * 24; // dictionary entry: key, value, hash/next
            bytes += (long)_slotIds.Length * 8;
            bytes += (long)_coarse.Length * 4 * 2 + _coarseCodes.Length + _coarsePacked.Length + (long)_rankTerms.Count * NList * 4; // row-major, interleaved and 8-bit copies
            bytes += (_residCentroids?.LongLength ?? 0) * 4;
            if (Quantizer is { } pq) bytes += (long)pq.Dimension * pq.Ksub * 4 * 2 + pq.M * pq.Ksub * 4;
            if (ScanQuantizer is { } sq) bytes += (long)sq.Dimension * 8;
            if (RaBitQ is { } rqz) bytes += (long)rqz.Dimension * rqz.Dimension * 4 + 2L * rqz.Lists * rqz.Dimension * 4;
            if (Opq is not null) bytes += (long)CodeDim * CodeDim * 4;
            if (Rotation is not null) bytes += (long)Dimension * Dimension * 4;
            bytes += _prefix8?.AllocatedBytes ?? 0;
            return (double)bytes / Count;
        }
    }

    /// <summary>
    /// Bytes per live vector of the in-memory full-vector rerank store (float32 rows, garbage included); 0 when the
    /// vectors are read from an external <see cref="IVectorSource"/>.
    /// </summary>
    public double RerankBytesPerVector => Count == 0 || _rows is null ? 0 : (double)_rows.Count * Dimension * 4 / Count;

    /// <inheritdoc/>
    public ComputeProfile? ComputeProfile { get; private set; }

    /// <summary>
    /// Measures recall@k, FLOPs and single-thread microseconds per query over a grid of (nprobe, scan dim, shortlist)
    /// with the spec's rerank stages, on a seeded sample of the index's own vectors as queries, keeps the Pareto frontier
    /// as <see cref="ComputeProfile"/> (saved with the index) and returns it. Scan dims: the code dim for PQ / RaBitQ
    /// codes and for scan codes with Spill or Prefix8; S/8, S/4, S/2 and S of the codes' S dims for a plain float / SQ8
    /// spec (see <see cref="ProfileOptions"/>).
    /// </summary>
    /// <remarks>
    /// May run concurrently with searches (which keep using the previous profile until this one is stored), not with
    /// Add / Remove / Compact. Timings are only meaningful on an otherwise idle core. Re-profile after adding or removing
    /// a large share of the vectors.
    /// </remarks>
    public ComputeProfile Profile(ProfileOptions? options = null)
    {
        var o = options ?? new ProfileOptions();
        var funnels = IndexProfiler.CheckAll(o, this, Spec.Rerank);
        int dc = o.CoarseDim ?? CoarseDim;
        if (dc < 1 || dc > Dimension) throw new ArgumentOutOfRangeException(nameof(options), dc, $"Profile coarse dim must be in [1, {Dimension}].");
        int maxScan = _rows is null ? CodeDim : Dimension;
        if (Codec is ListCodec.Pq or ListCodec.RaBitQ && o.ScanDims is { } sd && sd.Any(d => d != CodeDim))
            throw new ArgumentOutOfRangeException(nameof(options), string.Join(",", sd), $"This index scans {CodeDim}-dim codes; the profile's scan dims can only be {CodeDim}.");
        if (Codec is ListCodec.Sq8 or ListCodec.Float && o.ScanDims is { } sds && sds.Any(d => d < 1 || d > maxScan))
            throw new ArgumentOutOfRangeException(nameof(options), string.Join(",", sds), $"This index holds {CodeDim}-dim scan codes; the profile's scan dims must be in [1, {maxScan}].");
        var nprobes = IndexProfiler.Distinct(o.NProbes ?? IndexProfiler.PowersOfTwo(NList), 1, NList, "nprobe", nameof(options));
        var multiples = IndexProfiler.Distinct(o.ShortlistMultiples ?? [4, 10, 30], 1, int.MaxValue / o.K, "shortlist multiple", nameof(options));
        // Scan codes: by default S/8, S/4, S/2 and S of the codes' S dims for a plain float/SQ8 spec (the IVF grid), the
        // codes' dims alone with Spill or Prefix8; PQ and RaBitQ codes scan at their code dim only.
        int[] scanDims = Codec is ListCodec.Pq or ListCodec.RaBitQ ? [CodeDim]
            : o.ScanDims is { } given ? IndexProfiler.Distinct(given, 1, maxScan, "scan dim", nameof(options))
            : Spec.IsCodecPipeline ? [CodeDim] : IndexProfiler.DefaultScanDims(CodeDim);
        var series = funnels.SelectMany(rerank => IndexProfiler.Grid(o.K, dc, scanDims, multiples, rerank, nprobes)).ToList();
        var ids = _idToLoc.Keys.ToArray();
        Array.Sort(ids);
        var profile = IndexProfiler.Measure(this, o, ids, series);
        ComputeProfile = profile;
        return profile;
    }

    /// <inheritdoc/>
    public void ReadStoredVectors(ReadOnlySpan<long> ids, Span<float> destination)
    {
        int D = Dimension;
        if (destination.Length < (long)ids.Length * D)
            throw new ArgumentException($"Destination holds {destination.Length} floats; {ids.Length} × {D} needed.", nameof(destination));
        if (_rows is null)
        {
            foreach (long id in ids)
                if (!_idToLoc.ContainsKey(id)) throw new KeyNotFoundException($"Id {id} is not in the index.");
            _source!.Read(ids, destination[..(ids.Length * D)]); // one batch: the source may be a disk-backed store
            return;
        }
        for (int i = 0; i < ids.Length; i++)
            if (!TryGetStoredVector(ids[i], destination.Slice(i * D, D)))
                throw new KeyNotFoundException($"Id {ids[i]} is not in the index.");
    }

    /// <summary>Frees the resident rerank rows (native memory); the index must not be used afterwards.</summary>
    public void Dispose()
    {
        ThrowIfSearching("Dispose");
        ReleaseDeviceMemory();
        _rows?.Dispose();
    }

    private int _searchers; // searches in flight: native rows must not be freed under them

    /// <summary>
    /// The single-writer rule, checked where it matters most: the resident rows are native memory, so freeing them
    /// under a running search would read freed memory rather than throw. Mutations must never overlap a search.
    /// </summary>
    private void ThrowIfSearching(string what)
    {
        if (Volatile.Read(ref _searchers) != 0)
            throw new InvalidOperationException($"IvfIndex.{what} ran while a search was running: mutations must be serialised with searches (see the class remarks).");
    }

    /// <summary>
    /// The single-writer rule for adds: <paramref name="rows"/> more resident rows that do not fit the rows' native
    /// buffer move it (the old one is freed), so such an add under a running search throws before changing anything.
    /// </summary>
    private void ThrowIfGrowingUnderSearch(int rows)
    {
        if (_rows is not null && _rows.Count + (long)rows > _rows.Capacity) ThrowIfSearching("Add");
    }

    /// <summary>The external source rerank reads full vectors from, or null when they are kept in memory.</summary>
    public IVectorSource? VectorSource => _source;

    /// <summary>
    /// From now on keep no full vectors: the in-memory rerank rows are released, and rerank (and exact search) read
    /// the shortlist's vectors from <paramref name="source"/> — one batch call per query, or per chunk of queries in
    /// a batch search. The source must serve every id live in the index (now and after later adds), in the
    /// caller's (unrotated) space; an index with <c>Rot</c> rotates what it reads. Call it while no search runs.
    /// </summary>
    public void UseExternalVectors(IVectorSource source)
    {
        ArgumentNullException.ThrowIfNull(source);
        if (source.Dimension != Dimension)
            throw new ArgumentException($"The vector source is {source.Dimension}-dim; the index is {Dimension}-dim.", nameof(source));
        ThrowIfSearching(nameof(UseExternalVectors));
        _source = source;
        _rows?.Dispose();
        _rows = null;
    }

    /// <summary>Trains (rotation, coarse k-means, OPQ/PQ) on <paramref name="vectors"/> and adds them all.</summary>
    public static IvfIndex Build(VectorSet vectors, IndexSpec spec, Metric metric, PqBuildOptions? options = null, ReadOnlySpan<long> ids = default,
        IProgress<IvfBuildProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var index = Train(vectors, spec, metric, options, progress, cancellationToken, out var rotatedRows);
        index.AddRange(vectors, ids, options?.Threads ?? 0, cancellationToken, rotatedRows);
        return index;
    }

    /// <summary>Builds from a factory string, e.g. <c>"Rot,IVF1024@64,OPQ32@96,Rerank384"</c>.</summary>
    public static IvfIndex Build(VectorSet vectors, string spec, Metric metric, PqBuildOptions? options = null) =>
        Build(vectors, IndexSpec.Parse(spec), metric, options);

    /// <summary>Learns every trained part from <paramref name="sample"/>; adds nothing.</summary>
    public static IvfIndex Train(VectorSet sample, IndexSpec spec, Metric metric, PqBuildOptions? options = null,
        IProgress<IvfBuildProgress>? progress = null, CancellationToken cancellationToken = default) =>
        Train(sample, spec, metric, options, progress, cancellationToken, out _);

    /// <summary>
    /// <see cref="Train(VectorSet, IndexSpec, Metric, PqBuildOptions?, IProgress{IvfBuildProgress}?, CancellationToken)"/>;
    /// with a rotation, <paramref name="rotatedRows"/> is every row of <paramref name="sample"/> rotated (row-major)
    /// when training had them anyway — from the <see cref="PqBuildOptions.Cache"/>, or because the training subset
    /// was every row — so a bulk add of the same rows need not rotate them again; otherwise null.
    /// </summary>
    private static IvfIndex Train(VectorSet sample, IndexSpec spec, Metric metric, PqBuildOptions? options,
        IProgress<IvfBuildProgress>? progress, CancellationToken cancellationToken, out float[]? rotatedRows)
    {
        rotatedRows = null;
        ArgumentNullException.ThrowIfNull(sample);
        ArgumentNullException.ThrowIfNull(spec);
        if (!Enum.IsDefined(metric)) throw new ArgumentOutOfRangeException(nameof(metric), metric, "Unknown metric.");
        spec.Validate(sample.Dimension);
        var o = options ?? new PqBuildOptions();
        if (o.TrainingSample < PqKernels.Ksub)
            throw new ArgumentOutOfRangeException(nameof(options), o.TrainingSample, $"The training sample must be at least {PqKernels.Ksub} rows.");
        int D = sample.Dimension, dc = spec.CoarseDim ?? D;
        if (spec.IsPq && sample.Count < Math.Max(spec.NList, PqKernels.Ksub))
            throw new ArgumentException(
                $"Index spec \"{spec}\": training needs at least {Math.Max(spec.NList, PqKernels.Ksub)} vectors (nlist and 256 PQ centroids); got {sample.Count}.",
                nameof(sample));
        if (sample.Count < spec.NList)
            throw new ArgumentException($"Index spec \"{spec}\": training needs at least nlist = {spec.NList} vectors; got {sample.Count}.", nameof(sample));

        RotationTransform? rotation = null;
        if (spec.Rotate)
        {
            progress?.Report(new IvfBuildProgress("rotation", 0));
            rotation = o.Cache is { } cache ? cache.Rotation(sample, o.RotationSample, () => RotationTransform.Learn(sample, o.RotationSample))
                : RotationTransform.Learn(sample, o.RotationSample);
            progress?.Report(new IvfBuildProgress("rotation", 1));
        }

        // One evenly spaced training subset, rotated once: the coarse k-means, residual means and PQ all use it.
        var kmOptions = (o.KMeans ?? new KMeansOptions()) with
        {
            Threads = o.KMeans?.Threads ?? o.Threads,
            Device = o.KMeans is { Device: not Adanns.Kernels.Gpu.ComputeDevice.Cpu } own ? own.Device : o.Device,
        };
        int n = (int)Math.Min(sample.Count, Math.Max(o.TrainingSample, spec.NList > 1 ? (long)spec.NList * kmOptions.PointsPerCentroid : 0));
        using var train = new VectorSet(D, n);
        if (rotation is null)
        {
            for (int i = 0; i < n; i++) train.Add(sample.Row((int)((long)i * sample.Count / n)));
        }
        else if (o.Cache?.RotatedRows(sample, rotation) is { } cached)
        {
            for (int i = 0; i < n; i++) train.Add(cached.AsSpan((int)((long)i * sample.Count / n) * D, D));
            rotatedRows = cached;
        }
        else
        {
            // Rotated a block of rows at a time (a matrix product that keeps the D×D matrix in cache), as the bulk
            // add rotates the rows it files: one row at a time streamed the whole matrix per row (at D = 784 a
            // 2.4 MB read per row, a fifth of a Fashion-MNIST build).
            const int Block = 256;
            var rows = new float[Math.Min(Block, n) * D];
            var rotated = new float[rows.Length];
            for (int s0 = 0; s0 < n; s0 += Block)
            {
                int rowsNow = Math.Min(Block, n - s0);
                for (int i = 0; i < rowsNow; i++) sample.Row((int)((long)(s0 + i) * sample.Count / n)).CopyTo(rows.AsSpan(i * D, D));
                rotation.ApplyBatch(rows.AsSpan(0, rowsNow * D), rotated.AsSpan(0, rowsNow * D));
                for (int i = 0; i < rowsNow; i++) train.Add(rotated.AsSpan(i * D, D));
            }
            // The subset was every row, in order: hand the rotated rows to the bulk add (same products, same rows).
            if (n == sample.Count && (long)n * D <= TrainingCache.MaxRotatedFloats) rotatedRows = train.ToArray(D, normalize: false);
        }

        float[] coarse;
        int[] assign = new int[n];
        if (spec.NList > 1)
        {
            var kmProgress = progress is null ? null : new Progress<KMeansProgress>(p =>
                progress.Report(new IvfBuildProgress("kmeans", p.MaxIterations == 0 ? 1 : (double)p.Iteration / p.MaxIterations, $"{p.Phase} cost={p.Cost:G5}")));
            float[] TrainCoarse() => KMeans.Train(train, dc, spec.NList, metric == Metric.Cosine, kmOptions, kmProgress, cancellationToken).Centroids;
            coarse = o.Cache is { } cache ? cache.Coarse(sample, rotation, n, dc, spec.NList, metric == Metric.Cosine, kmOptions with { Threads = 0 }, TrainCoarse)
                : TrainCoarse();
            var pts = train.ToArray(dc, normalize: metric == Metric.Cosine);
            KMeans.Assign(pts, n, dc, coarse, spec.NList, metric == Metric.Cosine, kmOptions.Threads, assign);
        }
        else
        {
            coarse = new float[dc]; // one list: its centroid is never used to rank
        }

        ScalarQuantizer8? prefix8 = null;
        if (spec.Prefix8Dim is { } d8)
        {
            // Ranges of the (rotated) training rows' d8-dim prefixes; values outside clamp when encoded.
            var p = new float[(long)n * d8];
            for (int i = 0; i < n; i++) train.Row(i)[..d8].CopyTo(p.AsSpan(i * d8, d8));
            prefix8 = ScalarQuantizer8.TrainRows(p, n, d8);
        }
        if (spec.IsRaBitQ)
        {
            // RaBitQ: the centres are the lists' means of the code-space rows (the d-dim prefixes, unit for cosine).
            int dr = spec.RqDim ?? D;
            var centers = new float[(long)spec.NList * dr];
            var counts = new int[spec.NList];
            var sums = new double[(long)spec.NList * dr];
            var xr = new float[dr];
            for (int i = 0; i < n; i++)
            {
                PrefixInto(train.Row(i), dr, metric == Metric.Cosine, xr);
                counts[assign[i]]++;
                var sum = sums.AsSpan(assign[i] * dr, dr);
                for (int j = 0; j < dr; j++) sum[j] += xr[j];
            }
            for (int l = 0; l < spec.NList; l++)
                for (int j = 0; j < dr; j++)
                    centers[(long)l * dr + j] = counts[l] == 0 ? 0f : (float)(sums[(long)l * dr + j] / counts[l]);
            var rq = RaBitQuantizer.Create(dr, spec.RqBits!.Value, centers, kmOptions.Seed, rotation: o.RaBitQRotation);
            return new IvfIndex(D, metric, spec, rotation, coarse, null, null, null, prefix8, null, rq) { Device = o.Device };
        }
        if (!spec.IsPq)
        {
            // SQ8 / float scan codes of the d_s-dim prefix: nothing to learn but SQ8's per-dim ranges.
            int ds = o.ScanStoreDims ?? spec.ScanDim ?? dc;
            if (ds < 1 || ds > D) throw new ArgumentOutOfRangeException(nameof(options), ds, $"Scan store dims must be in [1, {D}].");
            ScalarQuantizer8? scanSq = null;
            if (spec.Sq8)
            {
                var p = new float[(long)n * ds];
                for (int i = 0; i < n; i++) train.Row(i)[..ds].CopyTo(p.AsSpan(i * ds, ds));
                scanSq = ScalarQuantizer8.TrainRows(p, n, ds);
            }
            return new IvfIndex(D, metric, spec, rotation, coarse, null, null, null, prefix8, scanSq, scanStoreDims: o.ScanStoreDims) { Device = o.Device };
        }

        // Code-space rows: the d-dim prefix (unit for cosine), minus the list mean when residual.
        int d = spec.PqDim ?? D, m = spec.PqBytes!.Value, bits = spec.PqBits;
        var x = new float[(long)n * d];
        for (int i = 0; i < n; i++)
            PrefixInto(train.Row(i), d, metric == Metric.Cosine, x.AsSpan(i * d, d));
        float[]? resid = null;
        if (spec.Residual)
        {
            resid = new float[(long)spec.NList * d];
            var counts = new int[spec.NList];
            var sums = new double[(long)spec.NList * d];
            for (int i = 0; i < n; i++)
            {
                counts[assign[i]]++;
                var row = x.AsSpan(i * d, d);
                var sum = sums.AsSpan(assign[i] * d, d);
                for (int j = 0; j < d; j++) sum[j] += row[j];
            }
            for (int l = 0; l < spec.NList; l++)
                for (int j = 0; j < d; j++)
                    resid[(long)l * d + j] = counts[l] == 0 ? 0f : (float)(sums[(long)l * d + j] / counts[l]);
            for (int i = 0; i < n; i++)
                System.Numerics.Tensors.TensorPrimitives.Subtract(x.AsSpan(i * d, d), resid.AsSpan(assign[i] * d, d), x.AsSpan(i * d, d));
        }

        progress?.Report(new IvfBuildProgress(spec.Opq ? "opq" : "pq", 0));
        RotationTransform? opq = null;
        ProductQuantizer pq;
        if (spec.Opq)
        {
            (opq, pq) = OpqTrainer.Train(x, n, d, m, (o.Opq ?? new OpqOptions()) with { Threads = o.Opq?.Threads ?? o.Threads }, cancellationToken, bits);
        }
        else
        {
            pq = ProductQuantizer.Train(x, n, d, m, new KMeansOptions(MaxIterations: o.PqIterations, Seed: kmOptions.Seed, Threads: o.Threads),
                cancellationToken: cancellationToken, bits: bits);
        }
        progress?.Report(new IvfBuildProgress(spec.Opq ? "opq" : "pq", 1));
        return new IvfIndex(D, metric, spec, rotation, coarse, opq, pq, resid, prefix8) { Device = o.Device };
    }

    /// <summary>dst = x[:d], L2-normalised when <paramref name="unit"/> (cosine).</summary>
    private static void PrefixInto(ReadOnlySpan<float> x, int d, bool unit, Span<float> dst)
    {
        x[..d].CopyTo(dst);
        if (unit) VectorMath.NormalizeInPlace(dst);
    }

    /// <summary>Adds one vector (D dims, unrotated) under <paramref name="id"/> (≥ 0, not present).</summary>
    public void Add(ReadOnlySpan<float> vector, long id)
    {
        CheckVector(vector, 0);
        if (id < 0) throw new ArgumentOutOfRangeException(nameof(id), id, "Ids must be non-negative.");
        if (_idToLoc.ContainsKey(id)) throw new ArgumentException($"Id {id} is already in the index; remove it first.", nameof(id));
        // Writers are serialised (see remarks), so one scratch serves every single-vector add: collections add per upsert.
        ThrowIfGrowingUnderSearch(1);
        var scratch = _addScratch ??= new EncodeScratch(this);
        var row = scratch.Row;
        if (Rotation is null) vector.CopyTo(row); else Rotation.Apply(vector, row);
        int list = Assign(row, scratch, out int spill);
        EncodeInto(row, list, scratch.Code, scratch);
        // RaBitQ codes are residuals to their list's centre: a second copy needs its own code.
        bool ownSpillCode = Codec == ListCodec.RaBitQ && spill >= 0;
        if (ownSpillCode) EncodeInto(row, spill, scratch.SpillCode, scratch);
        Append(list, row, scratch.Code, id, spill, spillCode: ownSpillCode ? scratch.SpillCode : default);
        _nextAutoId = Math.Max(_nextAutoId, id + 1);
    }

    /// <summary>
    /// Adds every row of <paramref name="vectors"/> (unrotated) with ids <paramref name="ids"/> (default: the next
    /// free ids). Assignment and encoding run on <paramref name="threads"/> threads; ids are checked first, so a
    /// rejected batch adds nothing.
    /// </summary>
    public void AddRange(VectorSet vectors, ReadOnlySpan<long> ids = default, int threads = 0, CancellationToken cancellationToken = default) =>
        AddRange(vectors, ids, threads, cancellationToken, null);

    /// <summary><see cref="AddRange(VectorSet, ReadOnlySpan{long}, int, CancellationToken)"/>; <paramref name="rotatedRows"/>, when
    /// given, holds <paramref name="vectors"/> already rotated by <see cref="Rotation"/> (row-major), read instead of rotating them.</summary>
    private void AddRange(VectorSet vectors, ReadOnlySpan<long> ids, int threads, CancellationToken cancellationToken, float[]? rotatedRows)
    {
        if (rotatedRows is not null && (Rotation is null || rotatedRows.LongLength != (long)vectors.Count * Dimension))
            throw new ArgumentException("Pre-rotated rows must be every vector rotated by this index's rotation.", nameof(rotatedRows));
        ArgumentNullException.ThrowIfNull(vectors);
        if (vectors.Dimension != Dimension)
            throw new ArgumentException($"Vectors have {vectors.Dimension} dims; the index expects {Dimension}.", nameof(vectors));
        int n = vectors.Count;
        if (!ids.IsEmpty && ids.Length != n) throw new ArgumentException($"{ids.Length} ids for {n} vectors.", nameof(ids));
        var idArray = new long[n];
        var seen = new HashSet<long>();
        for (int i = 0; i < n; i++)
        {
            long id = ids.IsEmpty ? _nextAutoId + i : ids[i];
            if (id < 0) throw new ArgumentOutOfRangeException(nameof(ids), id, $"Id at position {i} is negative.");
            if (_idToLoc.ContainsKey(id) || !seen.Add(id)) throw new ArgumentException($"Id {id} (position {i}) is already present or repeated.", nameof(ids));
            idArray[i] = id;
        }
        for (int i = 0; i < n; i++) CheckVector(vectors.Row(i), i);
        ThrowIfGrowingUnderSearch(n);

        if (threads <= 0) threads = Environment.ProcessorCount;
        const int Chunk = 4096;
        var rows = new float[(long)Math.Min(Chunk, n) * Dimension];
        var lists = new int[Math.Min(Chunk, n)];
        var spills = new int[Math.Min(Chunk, n)];
        int cm = _codeWidth; // unpacked: one byte per sub-quantizer until the list packs it
        var codes = new byte[(long)Math.Min(Chunk, n) * cm];
        bool ownSpillCodes = Codec == ListCodec.RaBitQ && Spill; // residual codes: a second copy needs its own
        var spillCodes = ownSpillCodes ? new byte[codes.Length] : [];
        for (int s = 0; s < n; s += Chunk)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int m = Math.Min(Chunk, n - s);
            if (Rotation is null) vectors.RowBlock(s, m).CopyTo(rows);
            else if (rotatedRows is not null) rotatedRows.AsSpan(s * Dimension, m * Dimension).CopyTo(rows);
            else Rotation.ApplyBatch(vectors.RowBlock(s, m), rows.AsSpan(0, m * Dimension));
            int t = Math.Max(1, Math.Min(threads, m / 256 + 1));
            Parallel.For(0, t, new ParallelOptions { MaxDegreeOfParallelism = t }, w =>
            {
                var scratch = new EncodeScratch(this);
                int a = (int)((long)m * w / t), b = (int)((long)m * (w + 1) / t);
                for (int g = a; g < b; g += AssignRows)
                {
                    int gm = Math.Min(AssignRows, b - g);
                    AssignGroup(rows.AsSpan(g * Dimension, gm * Dimension), gm, scratch, lists.AsSpan(g, gm), spills.AsSpan(g, gm));
                    for (int i = g; i < g + gm; i++)
                    {
                        var row = rows.AsSpan(i * Dimension, Dimension);
                        EncodeInto(row, lists[i], codes.AsSpan(i * cm, cm), scratch);
                        if (ownSpillCodes && spills[i] >= 0) EncodeInto(row, spills[i], spillCodes.AsSpan(i * cm, cm), scratch);
                    }
                }
            });
            for (int i = 0; i < m; i++)
                Append(lists[i], rows.AsSpan(i * Dimension, Dimension), codes.AsSpan(i * cm, cm), idArray[s + i], spills[i],
                    spillCode: ownSpillCodes ? spillCodes.AsSpan(i * cm, cm) : default);
        }
        foreach (long id in idArray) _nextAutoId = Math.Max(_nextAutoId, id + 1);
    }

    /// <summary>Removes <paramref name="id"/> (a tombstone until <see cref="Compact"/>); false when absent.</summary>
    public bool Remove(long id)
    {
        if (!_idToLoc.Remove(id, out long loc)) return false;
        var list = _lists[(int)(loc >> 32)];
        int pos = (int)(uint)loc;
        int slot = list.Slots[pos];
        if (_rows is not null) UpdateMeans((int)(loc >> 32), _rows.Row(slot), -1);
        else KeepRemovedInMeans();
        _slotIds[slot] = -1;
        list.Slots[pos] = -1;
        list.Tombstones++;
        if (_idToSpill.Remove(id, out long spillLoc))
        {
            var second = _lists[(int)(spillLoc >> 32)];
            second.Slots[(int)(uint)spillLoc] = -1;
            second.Tombstones++;
        }
        _garbageSlots++;
        return true;
    }

    /// <summary>Whether <paramref name="id"/> is live in the index.</summary>
    public bool Contains(long id) => _idToLoc.ContainsKey(id);

    /// <summary>Reclaims tombstoned codes and the rerank rows behind them.</summary>
    public void Compact()
    {
        if (_garbageSlots == 0) return;
        ThrowIfSearching(nameof(Compact));
        _writeVersion++; // positions move: a device copy of the lists is stale
        // Rebuild the rerank store (when resident) with live rows only, then renumber every list's slots.
        var remap = new int[_slotCount];
        Array.Fill(remap, -1);
        var fresh = _rows is null ? null : new VectorSet(Dimension, Count);
        var ids = new long[Math.Max(64, Count)];
        int live = 0;
        for (int slot = 0; slot < _slotCount; slot++)
        {
            if (_slotIds[slot] < 0) continue;
            remap[slot] = live++;
            fresh?.Add(_rows!.Row(slot));
            ids[remap[slot]] = _slotIds[slot];
        }
        for (int l = 0; l < NList; l++)
        {
            var list = _lists[l];
            // A row is its id's first copy or (Spill) its second, never both in one list.
            list.Compact((id, pos) =>
            {
                long loc = ((long)l << 32) | (uint)pos;
                if ((int)(_idToLoc[id] >> 32) == l) _idToLoc[id] = loc;
                else _idToSpill[id] = loc;
            }, slot => ids[remap[slot]], remap);
        }
        _rows?.Dispose();
        _rows = fresh;
        _prefix8?.Compact(remap, live);
        _slotIds = ids;
        _slotCount = live;
        Array.Fill(_slotIds, -1L, live, _slotIds.Length - live);
        _garbageSlots = 0;
        if (_meansIncludeRemoved) RecomputeMeans(); // removed rows leave the running means here (external source: read once)
    }

    /// <summary>
    /// Moves every slot s to <paramref name="newSlot"/>[s] (a permutation of a compacted index's slots, from an index
    /// file's ORDR section): rows, ids, 8-bit prefix copies and list entries follow.
    /// </summary>
    private void RenumberSlots(ReadOnlySpan<int> newSlot)
    {
        int n = _slotCount;
        var ids = new long[_slotIds.Length];
        Array.Fill(ids, -1L);
        for (int slot = 0; slot < n; slot++) ids[newSlot[slot]] = _slotIds[slot];
        if (_rows is not null)
        {
            var old = new int[n];
            for (int slot = 0; slot < n; slot++) old[newSlot[slot]] = slot;
            var fresh = new VectorSet(Dimension, n);
            for (int i = 0; i < n; i++) fresh.Add(_rows.Row(old[i]));
            _rows.Dispose();
            _rows = fresh;
        }
        _prefix8?.Compact(newSlot, n); // a permutation is a compaction that drops nothing
        foreach (var list in _lists)
            for (int p = 0; p < list.Count; p++)
                if (list.Slots[p] >= 0) list.Slots[p] = newSlot[list.Slots[p]];
        _slotIds = ids;
    }

    /// <summary>
    /// Copies the stored full vector of <paramref name="id"/> (in the caller's, unrotated space); with an external
    /// source, reads it from there.
    /// </summary>
    public bool TryGetStoredVector(long id, Span<float> destination)
    {
        if (!_idToLoc.TryGetValue(id, out long loc)) return false;
        if (destination.Length < Dimension) throw new ArgumentException($"Destination holds {destination.Length} floats; {Dimension} needed.");
        if (_rows is null)
        {
            Span<long> one = [id];
            _source!.Read(one, destination[..Dimension]);
            return true;
        }
        int slot = _lists[(int)(loc >> 32)].Slots[(int)(uint)loc];
        var row = _rows.Row(slot);
        if (Rotation is null) row.CopyTo(destination);
        else Rotation.Invert(row, destination[..Dimension]);
        return true;
    }

    private void Append(int list, ReadOnlySpan<float> row, ReadOnlySpan<byte> code, long id, int spill = -1, bool encodePrefix = true,
        ReadOnlySpan<byte> spillCode = default, bool rowKnown = true)
    {
        if (rowKnown) UpdateMeans(list, row, +1);
        else InvalidateMeans();
        int slot = _slotCount++;
        _rows?.Add(row); // row r of the rerank store is slot r
        if (encodePrefix) _prefix8?.Append(row); // and of the 8-bit prefix copy (index files restore it from PR8R)
        if (slot >= _slotIds.Length)
        {
            int old = _slotIds.Length;
            Array.Resize(ref _slotIds, Math.Max(64, old * 2));
            Array.Fill(_slotIds, -1L, old, _slotIds.Length - old);
        }
        _slotIds[slot] = id;
        int pos = _lists[list].Append(code, slot);
        _idToLoc[id] = ((long)list << 32) | (uint)pos;
        if (spill >= 0) AppendSpill(spill, spillCode.IsEmpty ? code : spillCode, slot, id);
    }

    /// <summary>The second copy of slot <paramref name="slot"/>'s code (same code, same slot) in list <paramref name="list"/>.</summary>
    private void AppendSpill(int list, ReadOnlySpan<byte> code, int slot, long id)
    {
        int pos = _lists[list].Append(code, slot);
        _idToSpill[id] = ((long)list << 32) | (uint)pos;
    }

    /// <summary>
    /// SOAR's weight on the second residual's component along the first (Sun et al. use λ around 1): larger values
    /// push the second list further from the first one's direction, at the price of a farther centroid.
    /// </summary>
    private const float SpillLambda = 1f;

    /// <summary>Lists nearest a vector (after its own) among which SOAR picks the second list.</summary>
    private const int SpillCandidates = 16;

    /// <summary>
    /// The list a (rotated) row belongs to — the nearest trained centroid at d_c — and with <c>Spill</c> its second
    /// list (−1 without): among the nearest others, the one minimising SOAR's loss ‖x − c'‖² + λ·(r·(x − c'))²/‖r‖²,
    /// r = x − c (the first residual). A second list whose residual is orthogonal to the first catches the queries
    /// the first one misses: those whose direction from x disagrees with r.
    /// </summary>
    private int Assign(ReadOnlySpan<float> row, EncodeScratch s, out int spill)
    {
        spill = -1;
        if (NList == 1) return 0;
        var x = s.Coarse.AsSpan(0, CoarseDim);
        PrefixInto(row, CoarseDim, Spherical, x);
        int padded = CoarseBlocks * InterleavedKernels.BlockRows;
        InterleavedKernels.Dot(x, _coarseTable, CoarseLayout, CoarseBlocks, s.Dots.AsSpan(0, padded), default);
        return AssignFromDots(x, s.Dots.AsSpan(0, padded), s, out spill);
    }

    /// <summary>
    /// <see cref="Assign"/> for up to four rows at once (the build's bulk path): one pass over the centroid table
    /// scores all of them (<see cref="InterleavedKernels.DotMulti"/>, dots equal to one row's at a time exactly, so the
    /// lists are the same). lists[i] / spills[i] for rows[i·D ..].
    /// </summary>
    private void AssignGroup(ReadOnlySpan<float> rows, int m, EncodeScratch s, Span<int> lists, Span<int> spills)
    {
        if (NList == 1)
        {
            lists[..m].Clear();
            spills[..m].Fill(-1);
            return;
        }
        int dc = CoarseDim, padded = CoarseBlocks * InterleavedKernels.BlockRows;
        for (int i = 0; i < m; i++) PrefixInto(rows.Slice(i * Dimension, Dimension), dc, Spherical, s.Coarse.AsSpan(i * dc, dc));
        InterleavedKernels.DotMulti(s.Coarse, dc, m, _coarseTable, CoarseLayout, CoarseBlocks, s.Dots, padded);
        for (int i = 0; i < m; i++)
            lists[i] = AssignFromDots(s.Coarse.AsSpan(i * dc, dc), s.Dots.AsSpan(i * padded, padded), s, out spills[i]);
    }

    /// <summary>The nearest list (and with <c>Spill</c> the second) of prefix <paramref name="x"/> from its centroid dots.</summary>
    private int AssignFromDots(ReadOnlySpan<float> x, ReadOnlySpan<float> dots, EncodeScratch s, out int spill)
    {
        var norms = _coarseNorms;
        int best = 0;
        float bestKey = float.PositiveInfinity;
        for (int l = 0; l < NList; l++)
        {
            // Spherical: max x·c. Euclidean: min ‖c‖² − 2x·c — the rule the k-means used.
            float key = Spherical ? -dots[l] : norms[l] - 2 * dots[l];
            if (key < bestKey) { bestKey = key; best = l; }
        }
        spill = Spec.Spill ? SpillList(x, best, dots, s) : -1;
        return best;
    }

    /// <summary>SOAR's second list for prefix <paramref name="x"/> whose first list is <paramref name="first"/> (see <see cref="Assign"/>).</summary>
    private int SpillList(ReadOnlySpan<float> x, int first, ReadOnlySpan<float> dots, EncodeScratch s)
    {
        var norms = _coarseNorms;
        int dc = CoarseDim;
        float xx = VectorMath.NormSquared(x);
        // ‖x − c‖² = ‖x‖² − 2x·c + ‖c‖², from the dots Assign just computed.
        var near = new TopKHeap(s.SpillKeys, s.SpillIds);
        for (int l = 0; l < NList; l++)
            if (l != first) near.Push(xx - 2 * dots[l] + norms[l], l);
        int n = near.SortBestFirst();
        var c1 = _coarse.AsSpan(first * dc, dc);
        float rr = MathF.Max(xx - 2 * dots[first] + norms[first], 1e-30f);
        int best = -1;
        float bestLoss = float.PositiveInfinity;
        for (int j = 0; j < n; j++)
        {
            int l = near.Ids[j];
            // r·(x − c') = ‖x‖² − x·c' − x·c + c·c'
            float along = xx - dots[l] - dots[first] + VectorMath.Dot(c1, _coarse.AsSpan(l * dc, dc));
            float loss = near.Keys[j] + SpillLambda * along * along / rr;
            if (loss < bestLoss) { bestLoss = loss; best = l; }
        }
        return best;
    }

    /// <summary>Code of a (rotated) row in list <paramref name="list"/>.</summary>
    private void EncodeInto(ReadOnlySpan<float> row, int list, Span<byte> code, EncodeScratch s)
    {
        switch (Codec)
        {
            case ListCodec.Sq8:
                ScanQuantizer!.Encode(row[..CodeDim], code[..CodeDim]);
                return;
            case ListCodec.Float:
                System.Runtime.InteropServices.MemoryMarshal.AsBytes(row[..CodeDim]).CopyTo(code);
                return;
            case ListCodec.RaBitQ:
                PrefixInto(row, CodeDim, Spherical, s.Prefix);
                RaBitQ!.Encode(s.Prefix, list, Metric == Metric.L2, code, s.Rq!);
                return;
        }
        var x = s.Prefix;
        PrefixInto(row, CodeDim, Spherical, x);
        if (_residCentroids is not null)
            System.Numerics.Tensors.TensorPrimitives.Subtract(x, _residCentroids.AsSpan(list * CodeDim, CodeDim), x);
        ReadOnlySpan<float> z = x;
        if (Opq is not null)
        {
            Opq.Apply(x, s.Rotated);
            z = s.Rotated;
        }
        Quantizer!.Encode(z, code, s.Table);
    }

    private void CheckVector(ReadOnlySpan<float> v, int index)
    {
        if (v.Length != Dimension)
            throw new ArgumentException($"Vector {index} has {v.Length} dims; the index expects {Dimension}.");
        if (!System.Numerics.Tensors.TensorPrimitives.IsFiniteAll(v))
            throw new ArgumentException($"Vector {index} contains NaN or infinite components.");
    }

    /// <summary>Rows assigned per pass over the centroid table in a bulk add (<see cref="InterleavedKernels.DotMulti"/> takes up to four).</summary>
    private const int AssignRows = 4;

    private sealed class EncodeScratch(IvfIndex ix)
    {
        // Room for a group of rows (AssignGroup): four prefixes and four rows of dots.
        public readonly float[] Coarse = new float[AssignRows * ix.CoarseDim];
        public readonly float[] Dots = new float[AssignRows * ix.CoarseBlocks * InterleavedKernels.BlockRows];
        public readonly float[] Prefix = new float[ix.CodeDim];
        public readonly float[] Rotated = new float[ix.CodeDim];
        public readonly float[] Table = new float[ix.SubQuantizers * (ix.Quantizer?.Ksub ?? 0)];
        public readonly float[] Row = new float[ix.Dimension];
        public readonly byte[] Code = new byte[ix._codeWidth];
        public readonly byte[] SpillCode = ix.Codec == ListCodec.RaBitQ && ix.Spill ? new byte[ix._codeWidth] : [];
        public readonly RaBitQuantizer.EncodeScratch? Rq = ix.RaBitQ is null ? null : new RaBitQuantizer.EncodeScratch(ix.CodeDim);
        public readonly float[] SpillKeys = new float[Math.Min(SpillCandidates, Math.Max(1, ix.NList - 1))];
        public readonly int[] SpillIds = new int[Math.Min(SpillCandidates, Math.Max(1, ix.NList - 1))];
    }
}

/// <summary>How a list codec lays its codes out in an inverted list (chosen once per index, see <see cref="PqList"/>).</summary>
internal enum CodeLayout
{
    /// <summary>Row-major bytes, one code after the other (8-bit PQ/OPQ codes).</summary>
    RowMajor,

    /// <summary>4-bit codes packed in fast-scan blocks of 32 rows (<see cref="FastScanKernels"/>).</summary>
    FastScan4,

    /// <summary>8-bit scalar-quantized prefixes in the interleaved-16 layout (<see cref="InterleavedKernels.DotU8"/>).</summary>
    Interleaved8,

    /// <summary>Float32 prefixes in the interleaved-16 layout (<see cref="InterleavedKernels.Dot"/>).</summary>
    Interleaved32,

    /// <summary>
    /// RaBitQ codes: blocks of 32 rows, each the rows' bit planes in fast-scan order (<see cref="RaBitQKernels"/>)
    /// followed by their <see cref="RaBitQuantizer.Factors"/> floats, factor-major (factor f of row r at float f·32 + r).
    /// </summary>
    RaBitQ,
}

/// <summary>
/// One inverted list of codes and each row's rerank-store slot. The codec decides the layout (<see cref="CodeLayout"/>):
/// 8-bit PQ codes are row-major (Count × M bytes); 4-bit codes are packed in fast-scan blocks of 32 rows; SQ8 and float
/// scan codes of a d_s-dim prefix sit in interleaved-16 blocks (block-major, as in the IVF scan store), so a scan at any
/// prefix d ≤ d_s streams contiguous memory. Codes come in and go out "unpacked": one byte per PQ sub-quantizer, d_s
/// bytes for SQ8, d_s floats (as bytes) for float.
/// </summary>
internal sealed class PqList
{
    private readonly int _width;      // unpacked code bytes (PQ: M; SQ8: d_s; float: 4·d_s)
    private readonly CodeLayout _layout;
    private readonly int _dims;       // interleaved layouts: the prefix dims d_s
    private readonly TileLayout _tiles;
    private readonly int _bits; // RaBitQ: bits per dim

    public PqList(int width, CodeLayout layout, int dims = 0, int bits = 0)
    {
        _width = width;
        _layout = layout;
        _dims = dims;
        _tiles = layout is CodeLayout.Interleaved8 or CodeLayout.Interleaved32 ? TileLayout.BlockMajor(dims) : default;
        if (layout == CodeLayout.RaBitQ)
        {
            _bits = bits;
        }
    }

    /// <summary>RaBitQ layout: bytes of one block's bit planes (the factors follow them).</summary>
    public int RqPlaneBytes => _bits * RaBitQKernels.PlaneBytes(_dims);

    /// <summary>RaBitQ layout: bytes from one block to the next (planes, then 32 rows × the factors).</summary>
    public int RqStride => RqPlaneBytes + RaBitQuantizer.Factors * RaBitQKernels.BlockRows * sizeof(float);

    /// <summary>8-bit PQ (M bytes per code) or 4-bit fast scan (M sub-quantizers).</summary>
    public PqList(int m, int bits) : this(m, bits == 4 ? CodeLayout.FastScan4 : CodeLayout.RowMajor)
    {
    }

    public int Count { get; private set; }

    public int Tombstones { get; set; }

    /// <summary>Whether <see cref="Codes"/> holds packed 4-bit fast-scan blocks.</summary>
    public bool Packed => _layout == CodeLayout.FastScan4;

    /// <summary>The tile layout of an interleaved list (block-major over d_s dims; strides in values).</summary>
    public TileLayout Tiles => _tiles;

    /// <summary>
    /// Row-major: Count × M bytes. Fast scan: ⌈Capacity/32⌉ blocks. Interleaved: ⌈Capacity/16⌉ blocks of
    /// <see cref="Tiles"/>' block stride values (bytes, or floats stored as bytes).
    /// </summary>
    /// <remarks>
    /// The codes start on a 64-byte boundary: the scan kernels read them in 64-byte vectors (interleaved blocks are 16
    /// values wide, fast-scan blocks whole 32-byte pairs), and a load that straddles two cache lines costs two. A plain
    /// array's data sits wherever the GC put it (8-byte aligned, and moved by compaction), which made two builds of
    /// the same index differ by up to ~25% in scan speed. So the buffer lives on the pinned object heap (never moved)
    /// with up to 63 spare bytes in front, and <see cref="Codes"/> starts at the first aligned byte.
    /// </remarks>
    public Span<byte> Codes => _buffer.AsSpan(_offset, _length);

    /// <summary><see cref="Codes"/> as memory (the GPU upload keeps it past a call).</summary>
    public Memory<byte> CodesMemory => _buffer.AsMemory(_offset, _length);

    private byte[] _buffer = [];
    private int _offset, _length;

    /// <summary>The interleaved float store (<see cref="CodeLayout.Interleaved32"/>) as floats.</summary>
    public ReadOnlySpan<float> Floats => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(Codes);

    /// <summary>Rerank-store slot per row; −1 marks a tombstone.</summary>
    public int[] Slots { get; private set; } = [];

    public long AllocatedBytes => _buffer.LongLength + Slots.LongLength * 4;

    private int RowsPerBlock => _layout switch
    {
        CodeLayout.FastScan4 => FastScanKernels.BlockRows,
        CodeLayout.Interleaved8 or CodeLayout.Interleaved32 => InterleavedKernels.BlockRows,
        CodeLayout.RaBitQ => RaBitQKernels.BlockRows,
        _ => 1,
    };

    public int Append(ReadOnlySpan<byte> code, int slot)
    {
        if (Count == Slots.Length) Resize(Math.Max(Math.Max(16, RowsPerBlock), Count * 2));
        WriteCode(Count, code);
        Slots[Count] = slot;
        return Count++;
    }

    /// <summary>Row <paramref name="pos"/>'s code, unpacked (see the class remarks).</summary>
    public void ReadCode(int pos, Span<byte> code)
    {
        switch (_layout)
        {
            case CodeLayout.FastScan4:
                FastScanKernels.ReadCode(Codes, _width, pos, code);
                break;
            case CodeLayout.Interleaved8:
                for (int j = 0; j < _dims; j++) code[j] = Codes[InterleavedIndex(pos, j)];
                break;
            case CodeLayout.Interleaved32:
                InterleavedKernels.ReadRow(Floats, _tiles, pos, System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(code[.._width]));
                break;
            case CodeLayout.RaBitQ:
                {
                    RaBitQKernels.ReadRow(Codes, RqStride, _bits, pos, code[.._dims]);
                    var f = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(code.Slice(_dims, RaBitQuantizer.Factors * sizeof(float)));
                    var all = Floats;
                    int at = RqFactorIndex(pos);
                    for (int i = 0; i < RaBitQuantizer.Factors; i++) f[i] = all[at + i * RaBitQKernels.BlockRows];
                    break;
                }
            default:
                Codes.Slice(pos * _width, _width).CopyTo(code);
                break;
        }
    }

    private void WriteCode(int pos, ReadOnlySpan<byte> code)
    {
        switch (_layout)
        {
            case CodeLayout.FastScan4:
                FastScanKernels.WriteCode(Codes, _width, pos, code);
                break;
            case CodeLayout.Interleaved8:
                InterleavedKernels.WriteRow(Codes, _tiles, pos, code[.._dims]);
                break;
            case CodeLayout.Interleaved32:
                InterleavedKernels.WriteRow(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(Codes), _tiles, pos,
                    System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(code[.._width]));
                break;
            case CodeLayout.RaBitQ:
                {
                    RaBitQKernels.WriteRow(Codes, RqStride, _bits, pos, code[.._dims]);
                    var f = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(code.Slice(_dims, RaBitQuantizer.Factors * sizeof(float)));
                    var all = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(Codes);
                    int at = RqFactorIndex(pos);
                    for (int i = 0; i < RaBitQuantizer.Factors; i++) all[at + i * RaBitQKernels.BlockRows] = f[i];
                    break;
                }
            default:
                code[.._width].CopyTo(Codes.Slice(pos * _width, _width));
                break;
        }
    }

    /// <summary>RaBitQ layout: the float index of row <paramref name="pos"/>'s first factor (factor i is 32·i floats on).</summary>
    public int RqFactorIndex(int pos) => (pos / RaBitQKernels.BlockRows * RqStride + RqPlaneBytes) / sizeof(float) + pos % RaBitQKernels.BlockRows;

    /// <summary>Where value j of row <paramref name="pos"/> sits in an interleaved store (in values).</summary>
    private int InterleavedIndex(int pos, int j)
    {
        const int B = InterleavedKernels.BlockRows;
        return (int)_tiles.Offset(pos / B, j / B) + (j % B) * B + pos % B;
    }

    /// <summary>Drops tombstones; slots are renumbered through <paramref name="remap"/>; <paramref name="moved"/> hears every row's new position.</summary>
    public void Compact(Action<long, int> moved, Func<int, long> idOfOldSlot, int[] remap)
    {
        Span<byte> code = _width <= 1024 ? stackalloc byte[_width] : new byte[_width];
        int write = 0;
        for (int read = 0; read < Count; read++)
        {
            int slot = Slots[read];
            if (slot < 0) continue;
            if (write != read)
            {
                ReadCode(read, code);
                WriteCode(write, code);
            }
            long id = idOfOldSlot(slot);
            Slots[write] = remap[slot];
            moved(id, write);
            write++;
        }
        Count = write;
        Tombstones = 0;
        if (Slots.Length > 64 && Count < Slots.Length / 4) Resize(Math.Max(16, Count * 2));
    }

    /// <summary>Alignment of <see cref="Codes"/> (a cache line, one 512-bit vector).</summary>
    private const int CodeAlignment = 64;

    /// <summary>How many bytes into a pinned <paramref name="buffer"/> its first 64-byte-aligned byte lies.</summary>
    private static unsafe int AlignedOffset(byte[] buffer)
    {
        fixed (byte* p = buffer)
            return (int)((CodeAlignment - (nint)p % CodeAlignment) % CodeAlignment);
    }

    /// <summary>Bytes of codes that hold <paramref name="rows"/> rows (whole blocks for blocked layouts).</summary>
    private long BytesFor(int rows) => _layout switch
    {
        CodeLayout.FastScan4 => (long)FastScanKernels.Blocks(rows) * FastScanKernels.BlockBytes(_width),
        CodeLayout.Interleaved8 => (long)((rows + InterleavedKernels.BlockRows - 1) / InterleavedKernels.BlockRows) * _tiles.BlockStride,
        CodeLayout.Interleaved32 => (long)((rows + InterleavedKernels.BlockRows - 1) / InterleavedKernels.BlockRows) * _tiles.BlockStride * sizeof(float),
        CodeLayout.RaBitQ => (long)RaBitQKernels.Blocks(rows) * RqStride,
        _ => (long)rows * _width,
    };

    private void Resize(int capacity)
    {
        int per = RowsPerBlock;
        capacity = (capacity + per - 1) / per * per;
        int length = checked((int)BytesFor(capacity));
        // Zeroed (stale floats past Count must not be NaN or denormal: blocked scans compute whole blocks), pinned so
        // the aligned offset stays valid for the buffer's life.
        var buffer = GC.AllocateArray<byte>(length + CodeAlignment - 1, pinned: true);
        int offset = AlignedOffset(buffer);
        var slots = new int[capacity];
        // Blocked layouts: the used blocks are a prefix of the array. Rows past Count in the last block may hold stale
        // codes; scans stop at Count.
        Codes[..(int)BytesFor(Count)].CopyTo(buffer.AsSpan(offset, length));
        Slots.AsSpan(0, Count).CopyTo(slots);
        (_buffer, _offset, _length) = (buffer, offset, length);
        Slots = slots;
    }
}
