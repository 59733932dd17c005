using Adanns.Kernels;

namespace Adanns.Engine.Collections;

/// <summary>
/// Exact in-memory vector store used until a collection has enough vectors to train its IVF index: rows in one
/// growable array, delete by moving the last row into the hole. Not thread-safe (the collection locks).
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

    /// <summary>Exact top-k by <paramref name="metric"/> over rows <paramref name="accept"/> passes; returns hits written.</summary>
    public int Search(ReadOnlySpan<float> q, int k, Metric metric, Func<long, bool>? accept, Span<long> ids, Span<float> scores)
    {
        var keys = new float[k];
        var slots = new int[k];
        var heap = new TopKHeap(keys, slots);
        float qn = metric == Metric.Cosine ? MathF.Sqrt(VectorMath.NormSquared(q)) : 1f;
        for (int i = 0; i < Count; i++)
        {
            if (accept is not null && !accept(_ids[i])) continue;
            heap.Push(Key(q, _data.AsSpan(i * _dim, _dim), metric, qn), i);
        }
        int n = heap.SortBestFirst();
        for (int j = 0; j < n; j++)
        {
            ids[j] = _ids[heap.Ids[j]];
            scores[j] = metric.HigherIsBetter() ? -heap.Keys[j] : heap.Keys[j];
        }
        return n;
    }

    /// <summary>Smaller-is-better key of one row: L2², −dot, or −cosine.</summary>
    internal static float Key(ReadOnlySpan<float> q, ReadOnlySpan<float> x, Metric metric, float qNorm) => metric switch
    {
        Metric.L2 => VectorMath.L2Squared(q, x),
        Metric.InnerProduct => -VectorMath.Dot(q, x),
        _ => CosineKey(q, x, qNorm),
    };

    private static float CosineKey(ReadOnlySpan<float> q, ReadOnlySpan<float> x, float qNorm)
    {
        var (dot, _, xx) = VectorMath.DotAndNorms(q, x);
        return xx > 0 && qNorm > 0 ? -dot / (MathF.Sqrt(xx) * qNorm) : 0f;
    }
}
