using System.Runtime.CompilerServices;

namespace Adanns.Kernels;

/// <summary>
/// Bounded selection of the k smallest keys over caller-provided storage: no allocation. The order is total
/// and deterministic: a smaller key wins, and equal keys are broken by the lower id. NaN keys are never
/// kept (a NaN distance has no meaningful rank).
/// </summary>
/// <remarks>
/// A max-heap on (key, id) whose root is the current worst kept entry; <see cref="Threshold"/> lets a scan
/// reject most candidates with one comparison before calling <see cref="Push"/>.
/// Indices that rank by similarity push the negated score as the key.
/// </remarks>
public ref struct TopKHeap
{
    private readonly Span<float> _keys;
    private readonly Span<int> _ids;
    private int _count;

    /// <summary>Selects up to k = keys.Length entries into <paramref name="keys"/> / <paramref name="ids"/>.</summary>
    public TopKHeap(Span<float> keys, Span<int> ids)
    {
        if (keys.Length != ids.Length)
            throw new ArgumentException($"Key and id buffers differ in length ({keys.Length} and {ids.Length}).");
        _keys = keys;
        _ids = ids;
        _count = 0;
    }

    /// <summary>
    /// Resumes a heap whose storage already holds <paramref name="count"/> entries left by an earlier
    /// <see cref="TopKHeap"/> over the same buffers (a scan that is interrupted between tiles).
    /// </summary>
    public void Restore(int count)
    {
        if ((uint)count > (uint)_keys.Length)
            throw new ArgumentOutOfRangeException(nameof(count), count, $"Count must be in [0, {_keys.Length}].");
        _count = count;
    }

    /// <summary>The key storage (the first <see cref="Count"/> entries, or the sorted output after <see cref="SortBestFirst"/>).</summary>
    public readonly ReadOnlySpan<float> Keys => _keys;

    /// <summary>The id storage, parallel to <see cref="Keys"/>.</summary>
    public readonly ReadOnlySpan<int> Ids => _ids;

    /// <summary>Capacity k.</summary>
    public readonly int K => _keys.Length;

    /// <summary>Entries kept so far (≤ k).</summary>
    public readonly int Count => _count;

    /// <summary>
    /// A candidate with key &gt; Threshold can never enter; +∞ until k entries are held.
    /// (A key equal to it may still enter through a lower id.)
    /// </summary>
    public readonly float Threshold
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => _count < _keys.Length ? float.PositiveInfinity : _keys[0];
    }

    /// <summary>Offers (key, id); keeps it if it is among the k best so far. Returns whether it was kept.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Push(float key, int id)
    {
        if (_count < _keys.Length)
        {
            if (float.IsNaN(key)) return false;
            SiftUp(_count++, key, id);
            return true;
        }
        if (_keys.Length == 0 || !Better(key, id, _keys[0], _ids[0]))
            return false;
        SiftDown(key, id);
        return true;
    }

    /// <summary>
    /// Sorts the kept entries best first (ascending key, then ascending id) in the first <see cref="Count"/>
    /// slots and returns that count. The heap is empty afterwards.
    /// </summary>
    public int SortBestFirst()
    {
        int n = _count;
        // Heap sort: repeatedly move the worst (root) to the end.
        for (int end = n - 1; end > 0; end--)
        {
            float k = _keys[end];
            int id = _ids[end];
            _keys[end] = _keys[0];
            _ids[end] = _ids[0];
            _count = end;
            SiftDown(k, id);
        }
        _count = 0;
        return n;
    }

    /// <summary>(a, ia) ranks strictly before (b, ib).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool Better(float a, int ia, float b, int ib) => a < b || (a == b && ia < ib);

    private readonly void SiftUp(int pos, float key, int id)
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

    /// <summary>Replaces the root with (key, id) and restores the heap over the first <c>_count</c> slots.</summary>
    private readonly void SiftDown(float key, int id)
    {
        int n = _count, pos = 0;
        while (true)
        {
            int child = 2 * pos + 1;
            if (child >= n) break;
            int right = child + 1;
            if (right < n && Better(_keys[child], _ids[child], _keys[right], _ids[right]))
                child = right;
            if (!Better(key, id, _keys[child], _ids[child])) break;
            _keys[pos] = _keys[child];
            _ids[pos] = _ids[child];
            pos = child;
        }
        _keys[pos] = key;
        _ids[pos] = id;
    }
}

/// <summary>Top-k helpers over whole arrays of keys.</summary>
public static class TopK
{
    /// <summary>
    /// Pushes keys[j] with id = idOffset + j into <paramref name="heap"/>, rejecting most by the threshold.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void PushAll(ref TopKHeap heap, ReadOnlySpan<float> keys, int idOffset)
    {
        float threshold = heap.Threshold;
        for (int j = 0; j < keys.Length; j++)
        {
            float key = keys[j];
            if (key <= threshold && heap.Push(key, idOffset + j))
                threshold = heap.Threshold;
        }
    }

    /// <summary>
    /// The k smallest keys of <paramref name="keys"/> (ids are positions), best first, into the outputs;
    /// returns how many were written (min(k, number of non-NaN keys)).
    /// </summary>
    public static int SelectSmallest(ReadOnlySpan<float> keys, Span<float> outKeys, Span<int> outIds)
    {
        var heap = new TopKHeap(outKeys, outIds);
        PushAll(ref heap, keys, 0);
        return heap.SortBestFirst();
    }
}
