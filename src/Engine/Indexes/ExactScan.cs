using System.Runtime.CompilerServices;
using Adanns.Kernels;

namespace Adanns.Engine.Indexes;

/// <summary>
/// The engine's one exact search: every path that answers exactly — <see cref="FlatIndex"/> single queries, a
/// collection's untrained store and its selective-filter path, the exact mode of <see cref="PqIndex"/> and
/// <see cref="PqIndex"/> — scores rows and keeps the top k through this type, so they give a row the same score and
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
    private readonly Span<float> _keys;
    private readonly Span<long> _ids;
    private int _count;

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
        _keys = _scratch.HeapKeys(k);
        _ids = _scratch.HeapIds(k);
        _count = 0;
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
        _keys = heapKeys;
        _ids = heapIds;
        _count = count;
    }

    /// <summary>Entries kept so far (≤ k).</summary>
    public readonly int Count => _count;

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
        get => _count < _keys.Length ? float.PositiveInfinity : _keys[0];
    }

    /// <summary>Offers one (key, id); NaN is never kept. Returns whether it was kept.</summary>
    public bool Push(float key, long id)
    {
        if (_count < _keys.Length)
        {
            if (float.IsNaN(key)) return false;
            SiftUp(_count++, key, id);
            return true;
        }
        if (!Better(key, id, _keys[0], _ids[0])) return false;
        SiftDown(key, id);
        return true;
    }

    /// <summary>
    /// Writes the kept entries best first (key, then lower id) as ids and metric scores, pads the rest of the outputs
    /// with id −1 and the metric's worst score, and returns how many were kept. The scan is empty afterwards.
    /// </summary>
    public int Finish(Span<long> outIds, Span<float> outScores)
    {
        int n = SortBestFirst();
        for (int j = 0; j < n; j++)
        {
            outIds[j] = _ids[j];
            outScores[j] = Score(_metric, _keys[j], _qNorm2);
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
        int n = SortBestFirst();
        _keys[..n].CopyTo(keys);
        _ids[..n].CopyTo(ids);
        return n;
    }

    /// <summary>(a, ia) ranks strictly before (b, ib): smaller key, then lower id.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool Better(float a, long ia, float b, long ib) => a < b || (a == b && ia < ib);

    private int SortBestFirst()
    {
        int n = _count;
        for (int end = n - 1; end > 0; end--)
        {
            float key = _keys[end];
            long id = _ids[end];
            _keys[end] = _keys[0];
            _ids[end] = _ids[0];
            _count = end;
            SiftDown(key, id);
        }
        _count = 0;
        return n;
    }

    private readonly void SiftUp(int pos, float key, long id)
    {
        while (pos > 0)
        {
            int parent = (pos - 1) >> 1;
            if (!Better(_keys[parent], _ids[parent], key, id)) break;
            _keys[pos] = _keys[parent];
            _ids[pos] = _ids[parent];
            pos = parent;
        }
        _keys[pos] = key;
        _ids[pos] = id;
    }

    private readonly void SiftDown(float key, long id)
    {
        int n = _count, pos = 0;
        while (true)
        {
            int child = 2 * pos + 1;
            if (child >= n) break;
            int right = child + 1;
            if (right < n && Better(_keys[child], _ids[child], _keys[right], _ids[right])) child = right;
            if (!Better(key, id, _keys[child], _ids[child])) break;
            _keys[pos] = _keys[child];
            _ids[pos] = _ids[child];
            pos = child;
        }
        _keys[pos] = key;
        _ids[pos] = id;
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
