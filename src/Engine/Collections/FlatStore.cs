using Adanns.Engine.Indexes;
using Adanns.Kernels;

namespace Adanns.Engine.Collections;

/// <summary>
/// Exact in-memory vector store used until a collection has enough vectors to train its IVF index: rows in one
/// growable array, delete by moving the last row into the hole (row order does not matter: equal scores are ordered
/// by record key, not by row). Not thread-safe (the collection locks).
/// </summary>
internal sealed class FlatStore
{
    private readonly int _dim;
    private float[] _data;
    private long[] _ids;
    private readonly Dictionary<long, int> _pos = new();

    public FlatStore(int dim, int capacity = 64)
    {
        _dim = dim;
        _data = new float[(long)capacity * dim];
        _ids = new long[capacity];
    }

    public int Count { get; private set; }

    public void Add(long id, ReadOnlySpan<float> v)
    {
        if (Count == _ids.Length)
        {
            Array.Resize(ref _ids, _ids.Length * 2);
            Array.Resize(ref _data, _ids.Length * _dim);
        }
        v.CopyTo(_data.AsSpan(Count * _dim, _dim));
        _ids[Count] = id;
        _pos[id] = Count++;
    }

    public bool Remove(long id)
    {
        if (!_pos.Remove(id, out int p)) return false;
        int last = --Count;
        if (p != last)
        {
            _data.AsSpan(last * _dim, _dim).CopyTo(_data.AsSpan(p * _dim, _dim));
            _ids[p] = _ids[last];
            _pos[_ids[p]] = p;
        }
        return true;
    }

    public bool Contains(long id) => _pos.ContainsKey(id);

    public void Read(long id, Span<float> dst) => _data.AsSpan(_pos[id] * _dim, _dim).CopyTo(dst);

    /// <summary>
    /// Exact top-k by <paramref name="metric"/> over the rows <paramref name="filter"/> accepts (the engine's one exact
    /// search, <see cref="ExactScan"/>: equal scores go to the lower record key, wherever the rows sit); returns hits
    /// written.
    /// </summary>
    public int Search(ReadOnlySpan<float> q, int k, Metric metric, IIdFilter? filter, Span<long> ids, Span<float> scores)
    {
        var scan = new ExactScan(metric, q, k);
        if (Count > 0) scan.Add(_data.AsSpan(0, Count * _dim), _dim, _ids.AsSpan(0, Count), Count, filter);
        return scan.Finish(ids[..k], scores[..k]);
    }
}
