using Adanns.Engine.Indexes;
using Adanns.Kernels;

namespace Adanns.Engine.Collections;

/// <summary>
/// Exact in-memory vector store used until a collection has enough vectors to train its IVF index: rows in blocks,
/// delete by moving the last row into the hole (row order does not matter: equal scores are ordered
/// by record key, not by row). Not thread-safe (the collection locks).
/// </summary>
internal sealed class FlatStore
{
    // Rows live in blocks of BlockRows (the first grows by doubling up to that), so the store holds any count without
    // one array of count × dim floats (a single array faulted the collection once it passed 2³¹ floats: 8.4M rows at D = 128).
    private const int BlockShift = 16, BlockRows = 1 << BlockShift, BlockMask = BlockRows - 1;
    private readonly int _dim;
    private readonly List<float[]> _blocks = [];
    private long[] _ids;
    private readonly Dictionary<long, int> _pos = new();

    public FlatStore(int dim, int capacity = 64)
    {
        _dim = dim;
        _blocks.Add(new float[(long)Math.Clamp(capacity, 1, BlockRows) * dim]);
        _ids = new long[Math.Max(1, capacity)];
    }

    public int Count { get; private set; }

    private Span<float> Row(int p) => _blocks[p >> BlockShift].AsSpan((p & BlockMask) * _dim, _dim);

    public void Add(long id, ReadOnlySpan<float> v)
    {
        if (Count == _ids.Length) Array.Resize(ref _ids, (int)Math.Min(Array.MaxLength, 2L * _ids.Length));
        int block = Count >> BlockShift;
        if (block == _blocks.Count) _blocks.Add(new float[(long)BlockRows * _dim]);
        else if (block == 0 && _blocks[0].Length < (long)(Count + 1) * _dim)
        {
            var grown = _blocks[0];
            Array.Resize(ref grown, (int)Math.Min((long)BlockRows * _dim, 2L * grown.Length));
            _blocks[0] = grown;
        }
        v.CopyTo(Row(Count));
        _ids[Count] = id;
        _pos[id] = Count++;
    }

    public bool Remove(long id)
    {
        if (!_pos.Remove(id, out int p)) return false;
        int last = --Count;
        if (p != last)
        {
            Row(last).CopyTo(Row(p));
            _ids[p] = _ids[last];
            _pos[_ids[p]] = p;
        }
        return true;
    }

    public bool Contains(long id) => _pos.ContainsKey(id);

    public void Read(long id, Span<float> dst) => Row(_pos[id]).CopyTo(dst);

    /// <summary>
    /// Exact top-k by <paramref name="metric"/> over the rows <paramref name="filter"/> accepts (the engine's one exact
    /// search, <see cref="ExactScan"/>: equal scores go to the lower record key, wherever the rows sit); returns hits
    /// written.
    /// </summary>
    public int Search(ReadOnlySpan<float> q, int k, Metric metric, IIdFilter? filter, Span<long> ids, Span<float> scores)
    {
        var scan = new ExactScan(metric, q, k);
        for (int first = 0, b = 0; first < Count; first += BlockRows, b++)
        {
            int rows = Math.Min(BlockRows, Count - first);
            scan.Add(_blocks[b].AsSpan(0, rows * _dim), _dim, _ids.AsSpan(first, rows), rows, filter);
        }
        return scan.Finish(ids[..k], scores[..k]);
    }
}
