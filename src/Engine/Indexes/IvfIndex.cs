using Adanns.Engine.Clustering;
using Adanns.Engine.Quantization;
using Adanns.Engine.Transforms;
using Adanns.Kernels;
using Adanns.Kernels.Gpu;

namespace Adanns.Engine.Indexes;

/// <summary>Options for building an <see cref="IvfIndex"/>.</summary>
/// <param name="KMeans">k-means options (sample size, iterations, seed, threads).</param>
/// <param name="RotationSample">Rows used to learn the rotation when the spec has <c>Rot</c>.</param>
/// <param name="Threads">Threads for assignment (0 = all cores).</param>
/// <param name="ScanStoreDims">Dims kept in the scan-optimised (interleaved) store; scans at larger d_s fall back
/// to the row store. Default: the spec's scan dim (or d_c). Raise it to sweep d_s at query time.</param>
/// <param name="Device">One knob for the GPU: k-means training runs there (unless <see cref="KMeans"/> names a device
/// itself) and the built index's <see cref="IvfIndex.Device"/> is set to it. Default: the SIMD CPU path.</param>
public sealed record IvfBuildOptions(KMeansOptions? KMeans = null, int RotationSample = 25_000, int Threads = 0, int? ScanStoreDims = null,
    ComputeDevice Device = ComputeDevice.Cpu);

/// <summary>Build progress: the phase and a fraction in [0, 1] of that phase.</summary>
public readonly record struct IvfBuildProgress(string Phase, double Fraction, string? Detail = null);

/// <summary>
/// AdANNS-IVF: a coarse quantizer (k-means on the d_c-dim prefix) + inverted lists stored as Matryoshka slabs
/// + a per-query pipeline that ranks centroids at d_c', scans the probed lists at d_s, and reranks a shortlist
/// through one or more stages of growing dims. Rigid IVF is the special case d_c = d_s = D.
/// </summary>
/// <remarks>
/// <para>Coarse quantizer metric: spherical (cosine) when the index metric is <see cref="Metric.Cosine"/>, else L2
/// (for inner product this is the usual choice: unit-norm data ranks the same, and L2 centroids are well-defined).
/// Vectors are assigned with the trained d_c centroids; probing uses the full-D mean of each list's members
/// (for cosine, the mean of members scaled by their d_c-prefix norm, whose d_c-prefix equals the spherical
/// centroid), so a query can probe at any d_c' ≤ D without a rebuild.</para>
/// <para>Thread safety: searches may run concurrently with each other. Add / Remove / Compact must not run
/// concurrently with searches or each other (the collection layer adds that synchronisation).</para>
/// </remarks>
public sealed partial class IvfIndex : IVectorIndex
{
    private readonly InvertedList[] _lists;
    private readonly float[] _assignCentroids;    // nlist × d_c: trained centroids, used to assign new vectors
    private readonly double[] _sums;              // nlist × D: running sums of (scaled) members
    private readonly int[] _liveCounts;           // live members per list
    private readonly float[] _probeCentroids;     // interleaved-16 blocks of nlist × D: _sums / _liveCounts
    private readonly Dictionary<long, long> _idToSlot = new(); // id → (list << 32) | position
    private volatile int[]? _listStarts;          // row slot of each list's first row; null after a write
    private long _nextAutoId;

    private IvfIndex(int dimension, Metric metric, IndexSpec spec, RotationTransform? rotation, float[] assignCentroids, int scanStoreDims, ScalarQuantizer8? sq)
    {
        Dimension = dimension;
        Metric = metric;
        Spec = spec;
        Rotation = rotation;
        CoarseDim = spec.CoarseDim ?? dimension;
        NList = spec.NList;
        if (scanStoreDims < 1 || scanStoreDims > dimension)
            throw new ArgumentOutOfRangeException(nameof(scanStoreDims), scanStoreDims, $"Scan store dims must be in [1, {dimension}].");
        ScanStoreDims = scanStoreDims;
        if (spec.Sq8 != (sq is not null) || (sq is not null && sq.Dimension != scanStoreDims))
            throw new ArgumentException($"Index spec \"{spec}\": the scan quantizer must be present exactly when the spec has SQ8, over {scanStoreDims} dims.");
        ScanQuantizer = sq;
        _lists = new InvertedList[NList];
        for (int l = 0; l < NList; l++) _lists[l] = new InvertedList(dimension, scanStoreDims, sq);
        _assignCentroids = assignCentroids;
        _sums = new double[(long)NList * dimension];
        _liveCounts = new int[NList];
        _probeCentroids = new float[InterleavedKernels.Groups(dimension) * InterleavedKernels.GroupStride(ProbeBlocks)];
        for (int l = 0; l < NList; l++) RefreshProbeCentroid(l);
    }

    /// <summary>Full dimension D of stored vectors and queries.</summary>
    public int Dimension { get; }

    /// <summary>Ranking metric (score direction as documented on <see cref="Engine.Metric"/>).</summary>
    public Metric Metric { get; }

    /// <summary>The pipeline this index was built with.</summary>
    public IndexSpec Spec { get; }

    /// <summary>The energy-ordering rotation applied to vectors and queries, if the spec has <c>Rot</c>.</summary>
    public RotationTransform? Rotation { get; }

    /// <summary>Clustering dim d_c the centroids were trained at.</summary>
    public int CoarseDim { get; }

    /// <summary>Number of inverted lists.</summary>
    public int NList { get; }

    /// <summary>Live vectors (added and not removed).</summary>
    public int Count => _idToSlot.Count;

    /// <summary>The 8-bit quantizer of the scan store when the spec has SQ8.</summary>
    public ScalarQuantizer8? ScanQuantizer { get; }

    /// <summary>Dims held in the scan-optimised store (scans at d_s ≤ this read contiguous interleaved blocks).</summary>
    public int ScanStoreDims { get; }

    private int ProbeBlocks => (NList + InterleavedKernels.BlockRows - 1) / InterleavedKernels.BlockRows;

    // Group-major: every query reads all centroids at a prefix d_c' that is often much shorter than D.
    private TileLayout ProbeLayout => TileLayout.GroupMajor(ProbeBlocks);

    /// <summary>Sizes (live + tombstoned rows) of every list.</summary>
    public int[] ListSizes() => _lists.Select(l => l.Count).ToArray();

    /// <summary>Rows removed but not yet reclaimed by <see cref="Compact"/>.</summary>
    public int TombstoneCount => _lists.Sum(l => l.Tombstones);

    /// <summary>Bytes resident per live vector (see <see cref="BytesPerVector"/>).</summary>
    public double ResidentBytesPerVector => BytesPerVector;

    /// <summary>0: the lists' full rows are part of the resident index.</summary>
    public double RerankBytesPerVector => 0;

    /// <summary>
    /// Bytes resident per live vector: slab data, ids, segment norms, list slack and the id map, plus centroids
    /// amortised over the vectors.
    /// </summary>
    public double BytesPerVector
    {
        get
        {
            if (Count == 0) return 0;
            long bytes = 0;
            foreach (var l in _lists)
                bytes += l.AllocatedBytes;
            bytes += (long)_idToSlot.Count * 24; // dictionary entry: key, value, hash/next
            bytes += (long)NList * (CoarseDim * 4 + Dimension * (4 + 8) + 4);
            if (Rotation is not null) bytes += (long)Dimension * Dimension * 4;
            return (double)bytes / Count;
        }
    }

    /// <summary>
    /// Trains the pipeline on <paramref name="vectors"/> (rotation, k-means at d_c) and adds them all, with ids
    /// 0..N−1 (or <paramref name="ids"/>).
    /// </summary>
    public static IvfIndex Build(VectorSet vectors, IndexSpec spec, Metric metric, IvfBuildOptions? options = null,
        ReadOnlySpan<long> ids = default, IProgress<IvfBuildProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var index = Train(vectors, spec, metric, options, progress, cancellationToken);
        index.AddRange(vectors, ids, options?.Threads ?? 0, progress, cancellationToken);
        return index;
    }

    /// <summary>Builds from a factory string, e.g. <c>"Rot,IVF1024@64,Scan64,Rerank384"</c>.</summary>
    public static IvfIndex Build(VectorSet vectors, string spec, Metric metric, IvfBuildOptions? options = null) =>
        Build(vectors, IndexSpec.Parse(spec), metric, options);

    /// <summary>Learns the rotation (if any) and the coarse centroids from <paramref name="sample"/>; adds nothing.</summary>
    public static IvfIndex Train(VectorSet sample, IndexSpec spec, Metric metric, IvfBuildOptions? options = null,
        IProgress<IvfBuildProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sample);
        ArgumentNullException.ThrowIfNull(spec);
        if (!Enum.IsDefined(metric)) throw new ArgumentOutOfRangeException(nameof(metric), metric, "Unknown metric.");
        spec.Validate(sample.Dimension);
        if (spec.IsCodecPipeline)
            throw new ArgumentException($"Index spec \"{spec}\" has PQ codes, Spill or Prefix8: build it with VectorIndex.Build (or PqIndex).", nameof(spec));
        var o = options ?? new IvfBuildOptions();
        int D = sample.Dimension, dc = spec.CoarseDim ?? D;
        if (sample.Count < spec.NList)
            throw new ArgumentException($"Index spec \"{spec}\": training needs at least nlist = {spec.NList} vectors; got {sample.Count}.", nameof(sample));

        RotationTransform? rotation = null;
        var kmOptions = (o.KMeans ?? new KMeansOptions()) with
        {
            Threads = o.KMeans?.Threads ?? o.Threads,
            Device = o.KMeans is { Device: not ComputeDevice.Cpu } own ? own.Device : o.Device,
        };
        int trainRows = (int)Math.Min(sample.Count, (long)spec.NList * kmOptions.PointsPerCentroid);
        VectorSet trainSet = sample;
        bool ownTrainSet = false;
        if (spec.Rotate)
        {
            progress?.Report(new IvfBuildProgress("rotation", 0));
            rotation = RotationTransform.Learn(sample, o.RotationSample);
            // Rotate only what k-means will see: an evenly spaced subset of trainRows rows.
            trainSet = new VectorSet(D, trainRows);
            ownTrainSet = true;
            const int Chunk = 1024;
            var src = new float[Chunk * D];
            var dst = new float[Chunk * D];
            for (int i0 = 0; i0 < trainRows; i0 += Chunk)
            {
                int m = Math.Min(Chunk, trainRows - i0);
                for (int i = 0; i < m; i++)
                    sample.Row((int)((long)(i0 + i) * sample.Count / trainRows)).CopyTo(src.AsSpan(i * D, D));
                rotation.ApplyBatch(src.AsSpan(0, m * D), dst.AsSpan(0, m * D)); // blocked GEMM, not row by row
                trainSet.AddRange(dst.AsSpan(0, m * D));
            }
            progress?.Report(new IvfBuildProgress("rotation", 1));
        }
        try
        {
            var kmProgress = progress is null ? null : new Progress<KMeansProgress>(p =>
                progress.Report(new IvfBuildProgress("kmeans", p.MaxIterations == 0 ? 1 : (double)p.Iteration / p.MaxIterations, $"{p.Phase} cost={p.Cost:G5}")));
            var km = KMeans.Train(trainSet, dc, spec.NList, metric == Metric.Cosine, kmOptions, kmProgress, cancellationToken);
            int store = o.ScanStoreDims ?? spec.ScanDim ?? dc;
            if (store < 1 || store > D)
                throw new ArgumentOutOfRangeException(nameof(options), store, $"Scan store dims must be in [1, {D}].");
            var sq = spec.Sq8 ? ScalarQuantizer8.Train(trainSet, store) : null;
            return new IvfIndex(D, metric, spec, rotation, km.Centroids, store, sq) { Device = o.Device };
        }
        finally
        {
            if (ownTrainSet) trainSet.Dispose();
        }
    }

    /// <summary>Adds one vector under <paramref name="id"/> (≥ 0, not already present).</summary>
    public void Add(ReadOnlySpan<float> vector, long id)
    {
        CheckVector(vector, 0);
        if (id < 0) throw new ArgumentOutOfRangeException(nameof(id), id, "Ids must be non-negative.");
        if (_idToSlot.ContainsKey(id)) throw new ArgumentException($"Id {id} is already in the index; remove it first.", nameof(id));
        var x = new float[Dimension];
        PrepareStored(vector, x);
        int list = AssignOne(x);
        Insert(list, x, id);
    }

    /// <summary>
    /// Adds every row of <paramref name="vectors"/>, with ids from <paramref name="ids"/> or, when that is empty,
    /// consecutive ids after the largest used so far. Assignment runs in batches on <paramref name="threads"/> threads.
    /// </summary>
    public void AddRange(VectorSet vectors, ReadOnlySpan<long> ids = default, int threads = 0,
        IProgress<IvfBuildProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(vectors);
        if (vectors.Dimension != Dimension)
            throw new ArgumentException($"Vectors have {vectors.Dimension} dims; the index holds {Dimension}.", nameof(vectors));
        if (!ids.IsEmpty && ids.Length != vectors.Count)
            throw new ArgumentException($"{ids.Length} ids given for {vectors.Count} vectors.", nameof(ids));
        // Validate everything first, so a bad row or id leaves the index untouched.
        var seen = new HashSet<long>();
        for (int i = 0; i < vectors.Count; i++)
        {
            CheckVector(vectors.Row(i), i);
            if (!ids.IsEmpty)
            {
                long id = ids[i];
                if (id < 0) throw new ArgumentException($"Id {id} at row {i} is negative.", nameof(ids));
                if (_idToSlot.ContainsKey(id) || !seen.Add(id))
                    throw new ArgumentException($"Id {id} at row {i} is already in the index or repeated in the batch.", nameof(ids));
            }
        }

        const int Chunk = 4096;
        int D = Dimension, dc = CoarseDim;
        var buf = new float[Chunk * D];
        var prefixes = new float[Chunk * dc];
        var assign = new int[Chunk];
        var touched = new bool[NList];
        for (int start = 0; start < vectors.Count; start += Chunk)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int m = Math.Min(Chunk, vectors.Count - start);
            if (Rotation is not null)
                Rotation.ApplyBatch(vectors.RowBlock(start, m), buf.AsSpan(0, m * D)); // blocked GEMM
            else
                vectors.RowBlock(start, m).CopyTo(buf);
            for (int i = 0; i < m; i++)
            {
                var p = prefixes.AsSpan(i * dc, dc);
                buf.AsSpan(i * D, dc).CopyTo(p);
                if (Metric == Metric.Cosine) VectorMath.NormalizeInPlace(p); // spherical centroids rank by cosine
            }
            KMeans.Assign(prefixes, m, dc, _assignCentroids, NList, Metric == Metric.Cosine, threads, assign);
            for (int i = 0; i < m; i++)
            {
                long id = ids.IsEmpty ? _nextAutoId : ids[start + i];
                Insert(assign[i], buf.AsSpan(i * D, D), id, refresh: false);
                touched[assign[i]] = true;
            }
            progress?.Report(new IvfBuildProgress("add", (double)(start + m) / vectors.Count));
        }
        // Probe centroids are refreshed once per touched list, not once per vector.
        for (int l = 0; l < NList; l++)
            if (touched[l]) RefreshProbeCentroid(l);
    }

    /// <summary>Removes <paramref name="id"/>; returns false when it is not in the index. Space is reclaimed by <see cref="Compact"/>.</summary>
    public bool Remove(long id)
    {
        if (!_idToSlot.Remove(id, out long slot)) return false;
        int list = (int)(slot >> 32), pos = (int)(slot & 0xFFFFFFFF);
        var l = _lists[list];
        var row = new float[Dimension];
        l.Read(pos, row);
        UpdateSums(list, row, -1);
        l.Ids[pos] = -1;
        l.Tombstones++;
        _writeVersion++;
        return true;
    }

    /// <summary>True when <paramref name="id"/> is live in the index.</summary>
    public bool Contains(long id) => _idToSlot.ContainsKey(id);

    /// <summary>Reclaims the space of removed vectors (rows move; results are unchanged).</summary>
    public void Compact()
    {
        for (int l = 0; l < NList; l++)
        {
            long listTag = (long)l << 32;
            _lists[l].Compact((id, pos) => _idToSlot[id] = listTag | (uint)pos);
            _listStarts = null;
        }
        _writeVersion++;
    }

    /// <summary>
    /// The stored vector of <paramref name="id"/> in the caller's space (an index with <c>Rot</c> keeps rotated rows and
    /// rotates them back), or false when absent.
    /// </summary>
    public bool TryGetStoredVector(long id, Span<float> destination) => TryGetStoredVector(id, destination, null);

    /// <summary><see cref="TryGetStoredVector(long, Span{float})"/> with a reusable D-float buffer for rotated rows read back from the blocks.</summary>
    private bool TryGetStoredVector(long id, Span<float> destination, float[]? buffer)
    {
        if (destination.Length != Dimension)
            throw new ArgumentException($"Destination must hold {Dimension} floats.", nameof(destination));
        if (!_idToSlot.TryGetValue(id, out long slot)) return false;
        var list = _lists[(int)(slot >> 32)];
        int pos = (int)(slot & 0xFFFFFFFF);
        if (Rotation is null)
        {
            list.Read(pos, destination);
            return true;
        }
        var row = list.RowSpan(pos);
        if (row.IsEmpty)
        {
            var tmp = buffer ?? new float[Dimension];
            list.Read(pos, tmp);
            row = tmp;
        }
        Rotation.Invert(row, destination);
        return true;
    }

    /// <inheritdoc/>
    public void ReadStoredVectors(ReadOnlySpan<long> ids, Span<float> destination)
    {
        int D = Dimension;
        if (destination.Length < (long)ids.Length * D)
            throw new ArgumentException($"Destination holds {destination.Length} floats; {ids.Length} × {D} needed.", nameof(destination));
        var buffer = Rotation is null ? null : new float[D]; // one buffer for the batch, not one per row
        for (int i = 0; i < ids.Length; i++)
            if (!TryGetStoredVector(ids[i], destination.Slice(i * D, D), buffer))
                throw new KeyNotFoundException($"Id {ids[i]} is not in the index.");
    }

    void IVectorIndex.AddRange(VectorSet vectors, ReadOnlySpan<long> ids, int threads, CancellationToken cancellationToken) =>
        AddRange(vectors, ids, threads, null, cancellationToken);

    /// <summary>Releases the device copy of the lists (if any); the index must not be searched afterwards.</summary>
    public void Dispose() => ReleaseDeviceMemory();

    /// <summary>Coarse quantizer metric: spherical for cosine, L2 otherwise (see the class remarks).</summary>
    private Metric CoarseMetric => Metric == Metric.Cosine ? Metric.Cosine : Metric.L2;

    /// <summary>Rotates (if configured) <paramref name="vector"/> into <paramref name="dst"/>.</summary>
    private void PrepareStored(ReadOnlySpan<float> vector, Span<float> dst)
    {
        if (Rotation is null) vector.CopyTo(dst);
        else Rotation.Apply(vector, dst);
    }

    /// <summary>
    /// Nearest trained centroid of one vector, by the same rule as <see cref="KMeans.Assign"/> (spherical: the
    /// largest dot product of the unit prefix with the unit centroids; otherwise L2), ties to the lower list.
    /// </summary>
    private int AssignOne(ReadOnlySpan<float> x)
    {
        int dc = CoarseDim;
        Span<float> prefix = dc <= 4096 ? stackalloc float[dc] : new float[dc];
        x[..dc].CopyTo(prefix);
        bool spherical = Metric == Metric.Cosine;
        if (spherical) VectorMath.NormalizeInPlace(prefix);
        int best = 0;
        float bestKey = float.PositiveInfinity;
        for (int l = 0; l < NList; l++)
        {
            var c = _assignCentroids.AsSpan(l * dc, dc);
            float key = spherical ? -VectorMath.Dot(prefix, c) : VectorMath.L2Squared(prefix, c);
            if (key < bestKey) { bestKey = key; best = l; }
        }
        return best;
    }

    private void Insert(int list, ReadOnlySpan<float> x, long id, bool refresh = true)
    {
        var l = _lists[list];
        int pos = l.Append(x, id);
        _listStarts = null;
        _writeVersion++;
        _idToSlot[id] = ((long)list << 32) | (uint)pos;
        if (id >= _nextAutoId) _nextAutoId = id + 1;
        UpdateSums(list, x, +1, refresh);
    }

    /// <summary>Keeps the probe centroid of <paramref name="list"/> equal to the (scaled) mean of its live members.</summary>
    private void UpdateSums(int list, ReadOnlySpan<float> x, int sign, bool refresh = true)
    {
        int D = Dimension;
        double scale = 1;
        if (Metric == Metric.Cosine)
        {
            double n = Math.Sqrt(VectorMath.NormSquared(x[..CoarseDim]));
            scale = n > 0 ? 1 / n : 0;
        }
        var sum = _sums.AsSpan(list * D, D);
        for (int j = 0; j < D; j++) sum[j] += sign * scale * x[j];
        _liveCounts[list] += sign;
        if (refresh) RefreshProbeCentroid(list);
    }

    private void RefreshProbeCentroid(int list)
    {
        int D = Dimension, dc = CoarseDim;
        Span<float> c = D <= 4096 ? stackalloc float[D] : new float[D];
        int count = _liveCounts[list];
        if (count <= 0)
        {
            // Empty list: fall back to the trained centroid (zero beyond d_c); scanning it costs nothing.
            _assignCentroids.AsSpan(list * dc, dc).CopyTo(c);
            Array.Clear(_sums, list * D, D);
            _liveCounts[list] = 0;
        }
        else
        {
            var sum = _sums.AsSpan(list * D, D);
            for (int j = 0; j < D; j++) c[j] = (float)(sum[j] / count);
        }
        InterleavedKernels.WriteRow(_probeCentroids, ProbeLayout, list, c);
    }

    private void CheckVector(ReadOnlySpan<float> vector, int row)
    {
        if (vector.Length != Dimension)
            throw new ArgumentException($"Vector {row} has {vector.Length} dims; the index holds {Dimension}-dim vectors.");
        if (!System.Numerics.Tensors.TensorPrimitives.IsFiniteAll(vector))
            throw new ArgumentException($"Vector {row} contains NaN or infinite components.");
    }
}
