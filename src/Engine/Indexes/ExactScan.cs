using System.Runtime.CompilerServices;
using Adanns.Kernels;

namespace Adanns.Engine.Indexes;

/// <summary>
/// The engine's one exact search: every path that answers exactly — <see cref="FlatIndex"/> single queries, a
/// collection's untrained store and its selective-filter path, the exact mode of <see cref="IvfIndex"/> and
/// <see cref="IvfIndex"/> — scores rows and keeps the top k through this type, so they give a row the same score and
/// break equal scores the same way: <b>the lower id wins</b> (the index's external id; a collection's record key).
/// </summary>
/// <remarks>
/// Rows are scored in tiles by the blocked dot-product kernel (<see cref="RowKernels.DotRows"/>, four rows per step);
/// the last one to three rows of a tile go through the same four-row step in a zero-padded copy, so a row's score never
/// depends on where it sits (equal vectors always tie exactly, whatever their slots). Keys, smaller is better:
/// ‖x‖² − 2q·x for L2 (‖q‖² added back in the score), −q̂·x/‖x‖ for cosine (the query is normalised once), −q·x for
/// inner product; the per-row term (‖x‖² or 1/‖x‖) comes from a caller's cache or is computed per row. Key
/// conversions are scalar (no fused multiply-add in one part of a tile and not in another). The heap lives in
/// per-thread scratch: a warm search allocates nothing. One scan per thread at a time.
/// </remarks>
internal ref struct ExactScan
{
    /// <summary>Rows per kernel call.</summary>
    public const int Tile = 1024;

    private const int Group = 4;

    [ThreadStatic] private static Scratch? t_scratch;

    private readonly Metric _metric;
    private readonly ReadOnlySpan<float> _q;
    private readonly float _qNorm2;
    private readonly Scratch _scratch;
    private TopKHeap<long> _heap; // the kernels' one heap, over 64-bit external ids

    /// <summary>
    /// Starts an exact top-<paramref name="k"/> for <paramref name="query"/> (its length is the scoring dim d; rows are
    /// read at their first d components) under <paramref name="metric"/>.
    /// </summary>
    public ExactScan(Metric metric, ReadOnlySpan<float> query, int k)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(k, 1);
        _metric = metric;
        _scratch = t_scratch ??= new Scratch();
        var q = _scratch.Query(query.Length);
        _qNorm2 = PrepareQuery(metric, query, q);
        _q = q;
        _heap = new TopKHeap<long>(_scratch.HeapKeys(k), _scratch.HeapIds(k));
    }

    /// <summary>
    /// Resumes (or starts, with <paramref name="count"/> 0) a top-k kept in the caller's buffers (k = their length), for
    /// scans that interleave many queries over one pass of the rows: the first <paramref name="count"/> entries are
    /// what an earlier scan over the same buffers left (read <see cref="Count"/> before it goes out of scope).
    /// </summary>
    public ExactScan(Metric metric, ReadOnlySpan<float> query, Span<float> heapKeys, Span<long> heapIds, int count)
    {
        if (heapKeys.Length < 1 || heapKeys.Length != heapIds.Length)
            throw new ArgumentException($"Heap buffers must have one equal length ≥ 1 (keys {heapKeys.Length}, ids {heapIds.Length}).");
        if ((uint)count > (uint)heapKeys.Length) throw new ArgumentOutOfRangeException(nameof(count), count, $"Count must be in [0, {heapKeys.Length}].");
        _metric = metric;
        _scratch = t_scratch ??= new Scratch();
        var q = _scratch.Query(query.Length);
        _qNorm2 = PrepareQuery(metric, query, q);
        _q = q;
        _heap = new TopKHeap<long>(heapKeys, heapIds);
        _heap.Restore(count);
    }

    /// <summary>Entries kept so far (≤ k).</summary>
    public readonly int Count => _heap.Count;

    /// <summary>Copies q into <paramref name="dst"/>, unit-normalised for cosine; returns ‖q‖² (L2), else 0.</summary>
    public static float PrepareQuery(Metric metric, ReadOnlySpan<float> q, Span<float> dst)
    {
        q.CopyTo(dst);
        if (metric == Metric.Cosine) VectorMath.NormalizeInPlace(dst[..q.Length]);
        return metric == Metric.L2 ? VectorMath.NormSquared(dst[..q.Length]) : 0f;
    }

    /// <summary>The per-row term of a key: ‖x‖² (L2), 1/‖x‖ (cosine; 0 for a zero row), 0 (inner product).</summary>
    public static float RowTerm(Metric metric, ReadOnlySpan<float> x)
    {
        if (metric == Metric.InnerProduct) return 0f;
        float n2 = VectorMath.NormSquared(x);
        if (metric == Metric.L2) return n2;
        float n = MathF.Sqrt(n2);
        return n > 0 ? 1f / n : 0f;
    }

    /// <summary>The metric's score of a key (see the class remarks) for a query with ‖q‖² = <paramref name="qNorm2"/>.</summary>
    public static float Score(Metric metric, float key, float qNorm2) => metric == Metric.L2 ? MathF.Max(0f, key + qNorm2) : -key;

    /// <summary>
    /// Keys of rows j &lt; <paramref name="keys"/>.Length at <paramref name="rows"/>[j·stride ..][:d] for the prepared
    /// query <paramref name="q"/> (d = its length). <paramref name="terms"/>: the rows' cached terms
    /// (<see cref="RowTerm"/>), or empty to compute them.
    /// </summary>
    public static void Keys(Metric metric, ReadOnlySpan<float> q, ReadOnlySpan<float> rows, int stride, Span<float> keys, ReadOnlySpan<float> terms,
        Span<float> pad)
    {
        int n = keys.Length, d = q.Length;
        if (n == 0) return;
        int body = n & ~(Group - 1);
        if (body > 0) RowKernels.DotRows(q, rows[..((body - 1) * stride + d)], stride, keys[..body]);
        if (body < n)
        {
            int rest = n - body;
            var p = pad[..(Group * d)];
            p.Clear();
            for (int j = 0; j < rest; j++) rows.Slice((body + j) * stride, d).CopyTo(p.Slice(j * d, d));
            Span<float> dots = stackalloc float[Group];
            RowKernels.DotRows(q, p, d, dots);
            dots[..rest].CopyTo(keys[body..]);
        }
        switch (metric)
        {
            case Metric.L2:
                for (int j = 0; j < n; j++)
                {
                    float x2 = terms.IsEmpty ? RowTerm(metric, rows.Slice(j * stride, d)) : terms[j];
                    float twice = 2f * keys[j];
                    keys[j] = x2 - twice;
                }
                break;
            case Metric.Cosine:
                for (int j = 0; j < n; j++)
                {
                    float inv = terms.IsEmpty ? RowTerm(metric, rows.Slice(j * stride, d)) : terms[j];
                    float cos = keys[j] * inv;
                    keys[j] = -cos;
                }
                break;
            default:
                for (int j = 0; j < n; j++) keys[j] = -keys[j];
                break;
        }
    }

    /// <summary>
    /// Offers <paramref name="count"/> rows (row j at <paramref name="rows"/>[j·stride ..]) with ids
    /// <paramref name="ids"/>[j]; rows with a negative id (tombstones) or that <paramref name="filter"/> rejects are
    /// skipped. <paramref name="terms"/>: cached row terms parallel to the rows, or empty. Returns how many rows were
    /// offered (live and accepted).
    /// </summary>
    public int Add(ReadOnlySpan<float> rows, int stride, ReadOnlySpan<long> ids, int count, IIdFilter? filter = null, ReadOnlySpan<float> terms = default)
    {
        int offered = 0;
        for (int r0 = 0; r0 < count; r0 += Tile)
        {
            int m = Math.Min(Tile, count - r0);
            var keys = _scratch.Keys(m);
            Keys(_metric, _q, rows.Slice(r0 * stride, (m - 1) * stride + _q.Length), stride, keys, terms.IsEmpty ? default : terms.Slice(r0, m), _scratch.Pad(Group * _q.Length));
            for (int j = 0; j < m; j++)
            {
                long id = ids[r0 + j];
                if (id < 0 || (filter is not null && !filter.Accept(id))) continue;
                Push(keys[j], id);
                offered++;
            }
        }
        return offered;
    }

    /// <summary>
    /// Offers <paramref name="count"/> rows whose ids are <paramref name="firstId"/> + j (a <see cref="FlatIndex"/>'s
    /// row numbers).
    /// </summary>
    public void AddRange(ReadOnlySpan<float> rows, int stride, long firstId, int count, ReadOnlySpan<float> terms = default)
    {
        for (int r0 = 0; r0 < count; r0 += Tile)
        {
            int m = Math.Min(Tile, count - r0);
            var keys = _scratch.Keys(m);
            Keys(_metric, _q, rows.Slice(r0 * stride, (m - 1) * stride + _q.Length), stride, keys, terms.IsEmpty ? default : terms.Slice(r0, m), _scratch.Pad(Group * _q.Length));
            float threshold = Threshold;
            for (int j = 0; j < m; j++)
            {
                float key = keys[j];
                if (key <= threshold && Push(key, firstId + r0 + j)) threshold = Threshold;
            }
        }
    }

    /// <summary>A key above this can never enter (+∞ until k are kept); an equal one still can, through a lower id.</summary>
    public readonly float Threshold
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => _heap.Threshold;
    }

    /// <summary>Offers one (key, id); NaN is never kept. Returns whether it was kept.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Push(float key, long id) => _heap.Push(key, id);

    /// <summary>
    /// Writes the kept entries best first (key, then lower id) as ids and metric scores, pads the rest of the outputs
    /// with id −1 and the metric's worst score, and returns how many were kept. The scan is empty afterwards.
    /// </summary>
    public int Finish(Span<long> outIds, Span<float> outScores)
    {
        int n = _heap.SortBestFirst();
        var keys = _heap.Keys;
        var ids = _heap.Ids;
        for (int j = 0; j < n; j++)
        {
            outIds[j] = ids[j];
            outScores[j] = Score(_metric, keys[j], _qNorm2);
        }
        float worst = _metric.HigherIsBetter() ? float.NegativeInfinity : float.PositiveInfinity;
        int pad = Math.Min(outIds.Length, outScores.Length);
        for (int j = n; j < pad; j++)
        {
            outIds[j] = -1;
            outScores[j] = worst;
        }
        return n;
    }

    /// <summary>The kept keys and ids best first, unscored (for merging partial scans); returns how many.</summary>
    public int TakeSorted(Span<float> keys, Span<long> ids)
    {
        int n = _heap.SortBestFirst();
        _heap.Keys[..n].CopyTo(keys);
        _heap.Ids[..n].CopyTo(ids);
        return n;
    }

    private const int RowTile = 256;   // batch: 256 rows × 384 dims × 4 B = 384 KB, stays in a 1.25 MB L2
    private const int QueryGroup = 4;  // batch: the GEMM micro-kernel's query block

    /// <summary>
    /// The batch entry of the exact search (a flat batch, the ground truth): nq prepared queries (<paramref name="packed"/>,
    /// nq×d, unit length for cosine; <paramref name="qNorms2"/>: their ‖q‖² for L2) against every row of
    /// <paramref name="rows"/> at its first d dims (ids: row numbers), as a blocked GEMM — a tile of rows that fits in L2
    /// swept by groups of four queries through <see cref="BlockKernels.DotBlock"/> — on <paramref name="threads"/>
    /// threads over chunks of queries. The keys, the heap (<see cref="TopKHeap{TId}"/>), the tie rule (lower id) and the
    /// scores are this type's; only the dot products' summation order differs from a single query's (equal up to float
    /// rounding). <paramref name="terms"/>: the rows' cached terms (<see cref="RowTerm"/>; required for L2 and cosine).
    /// </summary>
    public static void SearchBatch(Metric metric, VectorSet rows, ReadOnlySpan<float> terms, float[] packed, float[] qNorms2, int d, int k, int threads,
        Span<long> ids, Span<float> scores)
    {
        int nq = qNorms2.Length;
        if (metric != Metric.InnerProduct && terms.Length < rows.Count)
            throw new ArgumentException($"Row terms cover {terms.Length} of {rows.Count} rows.", nameof(terms));
        var termArr = terms.ToArray();
        var idArr = new long[(long)nq * k];
        var scoreArr = new float[(long)nq * k];
        // Chunks of queries per task: large enough to reuse each row tile across many queries.
        int chunk = Math.Max(QueryGroup, (nq + threads - 1) / threads);
        chunk = (chunk + QueryGroup - 1) / QueryGroup * QueryGroup;
        int chunks = (nq + chunk - 1) / chunk;
        Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = threads }, c =>
        {
            int qa = c * chunk, qb = Math.Min(nq, qa + chunk);
            BatchChunk(metric, rows, termArr, packed, qNorms2, qa, qb, d, k, idArr, scoreArr);
        });
        idArr.CopyTo(ids);
        scoreArr.CopyTo(scores);
    }

    private static void BatchChunk(Metric metric, VectorSet rows, float[] terms, float[] packed, float[] qNorms2, int qa, int qb, int d, int k,
        long[] idsOut, float[] scoresOut)
    {
        int nqc = qb - qa;
        var keys = new float[nqc * k];
        var heapIds = new long[nqc * k];
        var counts = new int[nqc];
        var tile = new float[QueryGroup * RowTile];
        int n = rows.Count, D = rows.Dimension;
        for (int r0 = 0; r0 < n; r0 += RowTile)
        {
            int nr = Math.Min(RowTile, n - r0);
            var block = rows.RowBlock(r0, nr);
            var rowTerms = metric == Metric.InnerProduct ? default : terms.AsSpan(r0, nr);
            for (int g = qa; g < qb; g += QueryGroup)
            {
                int ng = Math.Min(QueryGroup, qb - g);
                BlockKernels.DotBlock(packed.AsSpan(g * d, ng * d), d, ng, block, D, nr, d, tile, RowTile);
                for (int i = 0; i < ng; i++)
                {
                    int local = g - qa + i;
                    var row = tile.AsSpan(i * RowTile, nr);
                    KeysFromDots(metric, row, rowTerms);
                    var heap = new TopKHeap<long>(keys.AsSpan(local * k, k), heapIds.AsSpan(local * k, k));
                    heap.Restore(counts[local]);
                    float threshold = heap.Threshold;
                    for (int j = 0; j < nr; j++)
                    {
                        float key = row[j];
                        if (key <= threshold && heap.Push(key, r0 + j)) threshold = heap.Threshold;
                    }
                    counts[local] = heap.Count;
                }
            }
        }
        float worst = metric.HigherIsBetter() ? float.NegativeInfinity : float.PositiveInfinity;
        for (int local = 0; local < nqc; local++)
        {
            var heap = new TopKHeap<long>(keys.AsSpan(local * k, k), heapIds.AsSpan(local * k, k));
            heap.Restore(counts[local]);
            int q = qa + local, found = heap.SortBestFirst();
            var outIds = idsOut.AsSpan(q * k, k);
            var outScores = scoresOut.AsSpan(q * k, k);
            for (int j = 0; j < found; j++)
            {
                outIds[j] = heap.Ids[j];
                outScores[j] = Score(metric, heap.Keys[j], qNorms2[q]);
            }
            for (int j = found; j < k; j++)
            {
                outIds[j] = -1;
                outScores[j] = worst;
            }
        }
    }

    /// <summary>Dot products into keys in place with the rows' cached terms (the same scalar rule as <see cref="Keys"/>).</summary>
    private static void KeysFromDots(Metric metric, Span<float> keys, ReadOnlySpan<float> terms)
    {
        switch (metric)
        {
            case Metric.L2:
                for (int j = 0; j < keys.Length; j++)
                {
                    float twice = 2f * keys[j];
                    keys[j] = terms[j] - twice;
                }
                break;
            case Metric.Cosine:
                for (int j = 0; j < keys.Length; j++)
                {
                    float cos = keys[j] * terms[j];
                    keys[j] = -cos;
                }
                break;
            default:
                for (int j = 0; j < keys.Length; j++) keys[j] = -keys[j];
                break;
        }
    }

    /// <summary>Per-thread buffers, grown on demand and reused.</summary>
    private sealed class Scratch
    {
        private float[] _query = [], _keys = [], _pad = [], _heapKeys = [];
        private long[] _heapIds = [];

        public Span<float> Query(int n) => ScratchBuffer.Span(ref _query, n);
        public Span<float> Keys(int n) => ScratchBuffer.Span(ref _keys, n);
        public Span<float> Pad(int n) => ScratchBuffer.Span(ref _pad, n);
        public Span<float> HeapKeys(int n) => ScratchBuffer.Span(ref _heapKeys, n);
        public Span<long> HeapIds(int n) => ScratchBuffer.Span(ref _heapIds, n);
    }
}
