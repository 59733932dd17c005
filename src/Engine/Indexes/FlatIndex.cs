using System.Collections.Concurrent;
using Adanns.Kernels;
using Adanns.Kernels.Gpu;

namespace Adanns.Engine.Indexes;

/// <summary>
/// Exact k-NN over a <see cref="VectorSet"/> at any Matryoshka prefix dim d ≤ D: the ground truth and the
/// baseline every adaptive index is measured against. Results are ids (row positions) best first with their
/// scores (direction per <see cref="Engine.Metric"/>); when fewer than k rows exist the tail is padded with
/// id −1 and the metric's worst score (+∞ for L2, −∞ otherwise).
/// </summary>
/// <remarks>
/// Single queries and batches on the CPU are the engine's one exact search (<see cref="ExactScan"/>: the same keys,
/// equal scores go to the lower row id); a batch runs through its blocked-GEMM entry
/// (<see cref="ExactScan.SearchBatch"/>), the ground truth's path. The per-row terms (‖x[:d]‖² or 1/‖x[:d]‖) come from
/// the set's cached prefix norms. On one thread a single query allocates nothing.
/// With <see cref="Device"/> set to a GPU, searches run there instead (rows copied to device memory once, on first
/// use): the tiled distance kernel and the device top-k, same keys and tie rule, so the same results up to float
/// rounding. k above <see cref="GpuDevice.MaxK"/> runs on the CPU.
/// </remarks>
public sealed class FlatIndex
{
    private readonly VectorSet _vectors;
    private readonly ConcurrentDictionary<int, RowTerms> _rowTerms = new();
    private readonly Lock _gpuGate = new();
    private GpuRows? _gpu;
    private ComputeDevice _device;

    /// <summary>Searches <paramref name="vectors"/> (not copied; the caller keeps ownership) under <paramref name="metric"/>.</summary>
    public FlatIndex(VectorSet vectors, Metric metric)
    {
        ArgumentNullException.ThrowIfNull(vectors);
        if (!Enum.IsDefined(metric))
            throw new ArgumentOutOfRangeException(nameof(metric), metric, "Unknown metric.");
        _vectors = vectors;
        Metric = metric;
    }

    /// <summary>The metric results are ranked by.</summary>
    public Metric Metric { get; }

    /// <summary>Full dimension D.</summary>
    public int Dimension => _vectors.Dimension;

    /// <summary>Number of indexed rows.</summary>
    public int Count => _vectors.Count;

    /// <summary>The underlying rows.</summary>
    public VectorSet Vectors => _vectors;

    /// <summary>
    /// Where searches run: <see cref="ComputeDevice.Cpu"/> (SIMD, the default), a CUDA GPU (<see cref="ComputeDevice.Auto"/>
    /// falls back to the CPU without one; <see cref="ComputeDevice.Cuda"/> throws <see cref="GpuException"/>), or the
    /// ILGPU CPU simulator (tests). Changing it frees the device copy of the rows, so set it while no search runs.
    /// </summary>
    public ComputeDevice Device
    {
        get => _device;
        set
        {
            if (!Enum.IsDefined(value)) throw new ArgumentOutOfRangeException(nameof(value), value, "Unknown device.");
            lock (_gpuGate)
            {
                _device = value;
                _gpu?.Dispose();
                _gpu = null;
            }
        }
    }

    /// <summary>Frees the device copy of the rows (it is rebuilt on the next GPU search).</summary>
    public void ReleaseDeviceMemory()
    {
        lock (_gpuGate)
        {
            _gpu?.Dispose();
            _gpu = null;
        }
    }

    /// <summary>
    /// The k nearest rows to <paramref name="query"/> at prefix dim <paramref name="dim"/> (0 = D).
    /// <paramref name="query"/> has D or exactly <paramref name="dim"/> components (its prefix is used).
    /// <paramref name="ids"/> and <paramref name="scores"/> receive k entries each.
    /// </summary>
    public void Search(ReadOnlySpan<float> query, int k, Span<long> ids, Span<float> scores, int dim = 0, int threads = 1)
    {
        int d = ResolveDim(dim);
        CheckQuery(query, d, 0);
        CheckOutputs(1, k, ids, scores);
        if (GpuFor(k) is { } gpu)
        {
            var packed = new float[d];
            float norm2 = PrepareQuery(query[..d], packed);
            SearchGpu(gpu, packed, [norm2], d, k, ids, scores);
            return;
        }
        var terms = GetRowTerms(d);
        int n = Count;
        threads = ResolveThreads(threads, n);
        if (threads <= 1)
        {
            var scan = new ExactScan(Metric, query[..d], k);
            ScanRows(ref scan, 0, n, d, terms);
            scan.Finish(ids, scores);
            return;
        }

        SearchParallel(query[..d], k, d, terms, threads, ids, scores);
    }

    // Kept out of Search so the lambda's closure is allocated only on this path, not on every call.
    private void SearchParallel(ReadOnlySpan<float> query, int k, int d, RowTerms terms, int threads, Span<long> ids, Span<float> scores)
    {
        // Rows split across threads; each keeps its own top-k, merged by the same rule (ties → lower id).
        int n = Count;
        var partKeys = new float[threads * k];
        var partIds = new long[threads * k];
        var partCounts = new int[threads];
        var qCopy = query.ToArray();
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
        {
            int start = (int)((long)n * t / threads), end = (int)((long)n * (t + 1) / threads);
            var scan = new ExactScan(Metric, qCopy, k);
            ScanRows(ref scan, start, end, d, terms);
            partCounts[t] = scan.TakeSorted(partKeys.AsSpan(t * k, k), partIds.AsSpan(t * k, k));
        });
        var merged = new ExactScan(Metric, query, k);
        for (int t = 0; t < threads; t++)
            for (int j = 0; j < partCounts[t]; j++)
                merged.Push(partKeys[t * k + j], partIds[t * k + j]);
        merged.Finish(ids, scores);
    }

    /// <summary>
    /// Exact k-NN for nq queries (nq×qDim row-major, qDim = D or <paramref name="dim"/>). Output is nq×k
    /// row-major. Queries are spread over <paramref name="threads"/> threads (0 = all cores).
    /// </summary>
    public void SearchBatch(ReadOnlySpan<float> queries, int queryDim, int k, Span<long> ids, Span<float> scores, int dim = 0, int threads = 0)
    {
        int d = ResolveDim(dim);
        if (queryDim != Dimension && queryDim != d)
            throw new ArgumentException($"Queries have {queryDim} dims; expected {Dimension} (full) or {d} (the search prefix).", nameof(queryDim));
        if (queries.Length % queryDim != 0)
            throw new ArgumentException($"Query data length {queries.Length} is not a multiple of {queryDim}.", nameof(queries));
        int nq = queries.Length / queryDim;
        CheckOutputs(nq, k, ids, scores);
        if (nq == 0) return;
        for (int i = 0; i < nq; i++)
            CheckQuery(queries.Slice(i * queryDim, queryDim), d, i);
        var terms = GetRowTerms(d);

        // Prefix, normalise (cosine) and pack the queries once, at stride d.
        var packed = new float[(long)nq * d];
        var qNorms2 = new float[nq];
        for (int i = 0; i < nq; i++)
            qNorms2[i] = PrepareQuery(queries.Slice(i * queryDim, d), packed.AsSpan(i * d, d));
        if (GpuFor(k) is { } gpu)
        {
            SearchGpu(gpu, packed, qNorms2, d, k, ids, scores);
            return;
        }

        threads = ResolveThreads(threads, nq * (long)Count / 4);
        ExactScan.SearchBatch(Metric, _vectors, terms.Values, packed, qNorms2, d, k, threads, ids, scores);
    }

    /// <summary>Convenience overload returning a new <see cref="SearchResults"/>.</summary>
    public SearchResults SearchBatch(ReadOnlySpan<float> queries, int queryDim, int k, int dim = 0, int threads = 0)
    {
        int nq = queryDim > 0 ? queries.Length / queryDim : 0;
        var r = new SearchResults(nq, k);
        SearchBatch(queries, queryDim, k, r.Ids, r.Scores, dim, threads);
        return r;
    }

    /// <summary>The device copy of the rows when searches of k results run on a GPU; null for the CPU path.</summary>
    private GpuRows? GpuFor(int k)
    {
        if (_device == ComputeDevice.Cpu || k > GpuDevice.MaxK) return null;
        lock (_gpuGate)
        {
            if (_gpu is not null && _gpu.Count == Count) return _gpu;
            var device = GpuDevice.Get(_device);
            if (device is null) return null; // Auto without CUDA: the SIMD path
            _gpu?.Dispose();
            _gpu = null;
            _gpu = new GpuRows(device, _vectors);
            return _gpu;
        }
    }

    /// <summary>Exact k-NN of packed, prepared queries (nq×d) on the device; scores as the CPU path writes them.</summary>
    private void SearchGpu(GpuRows gpu, float[] packed, float[] qNorms2, int d, int k, Span<long> ids, Span<float> scores)
    {
        int nq = qNorms2.Length;
        var kind = Metric switch { Metric.L2 => KeyKind.L2, Metric.Cosine => KeyKind.Cosine, _ => KeyKind.InnerProduct };
        var terms = kind == KeyKind.InnerProduct ? null : gpu.Terms(d, GetRowTerms(d).Values);
        var keys = new float[nq * k];
        var rows = new int[nq * k];
        GpuSearch.Nearest(gpu.Device, packed, d, gpu.Rows, Dimension, gpu.Count, kind, terms, k, keys, rows);
        float worst = Metric.HigherIsBetter() ? float.NegativeInfinity : float.PositiveInfinity;
        for (int i = 0; i < nq; i++)
            for (int j = 0; j < k; j++)
            {
                int o = i * k + j;
                ids[o] = rows[o];
                scores[o] = rows[o] < 0 ? worst : Metric == Metric.L2 ? MathF.Max(0f, keys[o] + qNorms2[i]) : -keys[o];
            }
    }

    /// <summary>Offers rows [start, end) to <paramref name="scan"/> (ids are row numbers), a tile at a time.</summary>
    private void ScanRows(ref ExactScan scan, int start, int end, int d, RowTerms terms)
    {
        int D = Dimension;
        for (int r0 = start; r0 < end; r0 += ExactScan.Tile)
        {
            int nr = Math.Min(ExactScan.Tile, end - r0);
            scan.AddRange(_vectors.RowBlock(r0, nr), D, r0, nr, terms.Values.Length == 0 ? default : terms.Values.AsSpan(r0, nr));
        }
    }

    /// <summary>Copies q[:d] into <paramref name="dst"/>, unit-normalised for cosine; returns ‖q[:d]‖² (for L2).</summary>
    private float PrepareQuery(ReadOnlySpan<float> prefix, Span<float> dst)
    {
        prefix.CopyTo(dst);
        if (Metric == Metric.Cosine)
            VectorMath.NormalizeInPlace(dst);
        return Metric == Metric.L2 ? VectorMath.NormSquared(dst) : 0f;
    }

    private RowTerms GetRowTerms(int d)
    {
        int n = Count;
        if (Metric == Metric.InnerProduct)
            return RowTerms.Empty;
        if (_rowTerms.TryGetValue(d, out var cached) && cached.Count == n)
            return cached;
        var norms = _vectors.EnsurePrefixNorms(d);
        var values = new float[n];
        for (int i = 0; i < n; i++)
        {
            float norm = norms[i];
            values[i] = Metric == Metric.L2 ? norm * norm : (norm > 0 ? 1f / norm : 0f);
        }
        var terms = new RowTerms(n, values);
        _rowTerms[d] = terms;
        return terms;
    }

    private int ResolveDim(int dim)
    {
        if (dim == 0) return Dimension;
        if (dim < 0 || dim > Dimension)
            throw new ArgumentOutOfRangeException(nameof(dim), dim, $"Prefix dim must be in [1, {Dimension}] (or 0 for the full dimension).");
        return dim;
    }

    private void CheckQuery(ReadOnlySpan<float> query, int d, int index)
    {
        if (query.Length != Dimension && query.Length != d)
            throw new ArgumentException($"Query {index} has {query.Length} dims; expected {Dimension} (full) or {d} (the search prefix).", nameof(query));
        var prefix = query[..d];
        if (!System.Numerics.Tensors.TensorPrimitives.IsFiniteAll(prefix))
            throw new ArgumentException($"Query {index} contains NaN or infinite components.", nameof(query));
    }

    private static void CheckOutputs(int nq, int k, Span<long> ids, Span<float> scores)
    {
        if (k <= 0)
            throw new ArgumentOutOfRangeException(nameof(k), k, "k must be at least 1.");
        long need = (long)nq * k;
        if (ids.Length < need || scores.Length < need)
            throw new ArgumentException($"Output buffers must hold {nq}×{k} = {need} entries (ids: {ids.Length}, scores: {scores.Length}).");
    }

    private static int ResolveThreads(int threads, long work)
    {
        if (threads < 0)
            throw new ArgumentOutOfRangeException(nameof(threads), threads, "Threads must be ≥ 0 (0 = all cores).");
        if (threads == 0) threads = Environment.ProcessorCount;
        // Splitting tiny work costs more than it saves.
        if (work < 100_000) threads = 1;
        return threads;
    }

    /// <summary>The rows (n×D) in device memory, and the per-row key terms of each prefix dim used so far.</summary>
    private sealed class GpuRows : IDisposable
    {
        private readonly Dictionary<int, GpuBuffer<float>> _terms = [];

        public GpuRows(GpuDevice device, VectorSet vectors)
        {
            Device = device;
            Count = vectors.Count;
            int D = vectors.Dimension;
            Rows = new GpuBuffer<float>(device, (long)Count * D, $"flat index rows ({Count}×{D})");
            try
            {
                const int Chunk = 16_384; // rows per copy: bounded pinned transfers out of native memory
                for (int r0 = 0; r0 < Count; r0 += Chunk)
                {
                    int m = Math.Min(Chunk, Count - r0);
                    Rows.CopyFrom((long)r0 * D, vectors.RowBlock(r0, m));
                }
            }
            catch
            {
                Rows.Dispose();
                throw;
            }
        }

        public GpuDevice Device { get; }
        public int Count { get; }
        public GpuBuffer<float> Rows { get; }

        public GpuBuffer<float> Terms(int d, float[] values)
        {
            lock (_terms)
            {
                if (!_terms.TryGetValue(d, out var b))
                    _terms[d] = b = GpuBuffer<float>.Upload(Device, values.AsSpan(0, Count), "row terms");
                return b;
            }
        }

        public void Dispose()
        {
            Rows.Dispose();
            foreach (var t in _terms.Values) t.Dispose();
        }
    }

    private sealed record RowTerms(int Count, float[] Values)
    {
        public static readonly RowTerms Empty = new(-1, []);
    }
}
