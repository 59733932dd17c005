using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Adanns.Kernels;

/// <summary>
/// Bounded selection of the k smallest keys over caller-provided storage: no allocation. The order is total
/// and deterministic: a smaller key wins, and equal keys are broken by the lower id. NaN keys are never
/// kept (a NaN distance has no meaningful rank).
/// </summary>
/// <remarks>
/// A max-heap on (key, id) whose root is the current worst kept entry; <see cref="Threshold"/> lets a scan
/// reject most candidates with one comparison before calling <see cref="Push"/>.
/// Indices that rank by similarity push the negated score as the key. One implementation for every id type: int row
/// slots in the index scans (<see cref="TopKHeap"/>), 64-bit external ids in the exact search; the JIT specialises each.
/// </remarks>
public ref struct TopKHeap<TId> where TId : unmanaged, IComparisonOperators<TId, TId, bool>
{
    private readonly Span<float> _keys;
    private readonly Span<TId> _ids;
    private int _count;

    /// <summary>Selects up to k = keys.Length entries into <paramref name="keys"/> / <paramref name="ids"/>.</summary>
    public TopKHeap(Span<float> keys, Span<TId> ids)
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
    public readonly ReadOnlySpan<TId> Ids => _ids;

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
    public bool Push(float key, TId id)
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
            TId id = _ids[end];
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
    public static bool Better(float a, TId ia, float b, TId ib) => a < b || (a == b && ia < ib);

    private readonly void SiftUp(int pos, float key, TId id)
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
    private readonly void SiftDown(float key, TId id)
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

/// <summary>
/// <see cref="TopKHeap{TId}"/> over int ids (row slots, list positions): the same heap, named for the scans that use it.
/// </summary>
public ref struct TopKHeap
{
    private TopKHeap<int> _heap;

    /// <summary>Selects up to k = keys.Length entries into <paramref name="keys"/> / <paramref name="ids"/>.</summary>
    public TopKHeap(Span<float> keys, Span<int> ids) => _heap = new TopKHeap<int>(keys, ids);

    /// <inheritdoc cref="TopKHeap{TId}.Restore"/>
    public void Restore(int count) => _heap.Restore(count);

    /// <inheritdoc cref="TopKHeap{TId}.Keys"/>
    public readonly ReadOnlySpan<float> Keys => _heap.Keys;

    /// <inheritdoc cref="TopKHeap{TId}.Ids"/>
    public readonly ReadOnlySpan<int> Ids => _heap.Ids;

    /// <inheritdoc cref="TopKHeap{TId}.K"/>
    public readonly int K => _heap.K;

    /// <inheritdoc cref="TopKHeap{TId}.Count"/>
    public readonly int Count => _heap.Count;

    /// <inheritdoc cref="TopKHeap{TId}.Threshold"/>
    public readonly float Threshold
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => _heap.Threshold;
    }

    /// <inheritdoc cref="TopKHeap{TId}.Push"/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Push(float key, int id) => _heap.Push(key, id);

    /// <inheritdoc cref="TopKHeap{TId}.SortBestFirst"/>
    public int SortBestFirst() => _heap.SortBestFirst();
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

/// <summary>
/// Collects the k smallest (key, id) pairs of a long stream in a buffer of more than k entries: candidates under the
/// current threshold are appended (one compare and one store), and when the buffer fills a quickselect keeps the k
/// best and tightens the threshold. Amortised O(1) per accepted candidate, against O(log k) for
/// <see cref="TopKHeap.Push"/> — the difference matters when a scan accepts thousands of candidates for a shortlist of
/// hundreds. Same total order as <see cref="TopKHeap"/> (key, then id; NaN never kept) for ids ≥ 0; no allocation.
/// </summary>
/// <remarks>
/// Each entry is one 64-bit word: the key's bits mapped to an unsigned integer with the same order, then the id, so
/// (key, id) comparisons are single integer comparisons and the final sort is a primitive sort.
/// </remarks>
public ref struct TopKReservoir
{
    private readonly Span<ulong> _entries;
    private readonly int _k;
    private int _count;
    private float _threshold;

    /// <summary>Keeps the <paramref name="k"/> best in a buffer of capacity &gt; k (2k–4k is the usual choice).</summary>
    public TopKReservoir(int k, Span<ulong> buffer)
    {
        if (k < 1) throw new ArgumentOutOfRangeException(nameof(k), k, "k must be at least 1.");
        if (buffer.Length <= k) throw new ArgumentException($"The buffer must hold more than k = {k} entries (got {buffer.Length}).");
        _entries = buffer;
        _k = k;
        _count = 0;
        _threshold = float.PositiveInfinity;
    }

    /// <summary>Capacity k.</summary>
    public readonly int K => _k;

    /// <summary>A candidate with key &gt; Threshold can never be among the k best; +∞ until k entries were kept once.</summary>
    public readonly float Threshold
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => _threshold;
    }

    /// <summary>Offers (key, id ≥ 0); NaN keys and keys above <see cref="Threshold"/> are dropped.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Push(float key, int id)
    {
        if (!(key <= _threshold)) return; // also drops NaN
        _entries[_count] = Pack(key, id);
        if (++_count == _entries.Length) Shrink();
    }

    /// <summary>
    /// Writes the kept entries best first (ascending key, then id) into the outputs and returns how many
    /// (min(k, accepted)). The reservoir is empty afterwards.
    /// </summary>
    public int SortBestFirst(Span<float> outKeys, Span<int> outIds)
    {
        if (_count > _k) Shrink();
        int n = _count;
        if (outKeys.Length < n || outIds.Length < n) throw new ArgumentException($"Outputs must hold {n} entries.");
        _entries[..n].Sort();
        return CopyOut(n, outKeys, outIds);
    }

    /// <summary>
    /// Writes the kept entries in no particular (but deterministic) order and returns how many: for callers that
    /// rescore the candidates anyway and need no sort. The reservoir is empty afterwards.
    /// </summary>
    public int TakeUnsorted(Span<float> outKeys, Span<int> outIds)
    {
        if (_count > _k) Shrink();
        int n = _count;
        if (outKeys.Length < n || outIds.Length < n) throw new ArgumentException($"Outputs must hold {n} entries.");
        return CopyOut(n, outKeys, outIds);
    }

    /// <summary>Unpacks the first n entries into the outputs and empties the reservoir.</summary>
    private int CopyOut(int n, Span<float> outKeys, Span<int> outIds)
    {
        Unpack(_entries[..n], outKeys, outIds);
        _count = 0;
        _threshold = float.PositiveInfinity;
        return n;
    }

    /// <summary>Unpacks (key, id) words into the outputs; returns how many.</summary>
    private static int Unpack(ReadOnlySpan<ulong> words, Span<float> outKeys, Span<int> outIds)
    {
        for (int i = 0; i < words.Length; i++)
        {
            ulong e = words[i];
            outKeys[i] = KeyOf(e);
            outIds[i] = (int)(uint)e;
        }
        return words.Length;
    }

    /// <summary>(key, id) as one word whose unsigned order is the (key, id) order. −0 is folded into +0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Pack(float key, int id)
    {
        uint bits = BitConverter.SingleToUInt32Bits(key + 0f);
        // Positive floats order like their bits once the sign bit is set; negative ones in reverse, so flip them all.
        bits = (bits & 0x8000_0000u) != 0 ? ~bits : bits | 0x8000_0000u;
        return ((ulong)bits << 32) | (uint)id;
    }

    private static float KeyOf(ulong entry)
    {
        uint bits = (uint)(entry >> 32);
        bits = (bits & 0x8000_0000u) != 0 ? bits & 0x7FFF_FFFFu : ~bits;
        return BitConverter.UInt32BitsToSingle(bits);
    }

    /// <summary>Quickselect: the k best move to the front, the rest are dropped, the threshold becomes the k-th key.</summary>
    private void Shrink()
    {
        var e = _entries;
        SelectInPlace(e[.._count], _k);
        _count = _k;
        ulong worst = 0;
        for (int t = 0; t < _k; t++) worst = Math.Max(worst, e[t]);
        _threshold = KeyOf(worst);
    }

    /// <summary>
    /// Moves the <paramref name="nth"/> smallest words of <paramref name="e"/> to its front, in no order (quickselect;
    /// the rest of the span is left permuted). For callers that pack their own (key, id) words.
    /// </summary>
    public static void SelectInPlace(Span<ulong> e, int nth)
    {
        if (nth < 0 || nth > e.Length) throw new ArgumentOutOfRangeException(nameof(nth), nth, $"nth must be in [0, {e.Length}].");
        int lo = 0, hi = e.Length; // select the nth smallest into [0, nth) within [lo, hi)
        while (hi - lo > 1)
        {
            // Median of three as the pivot keeps sorted or reversed input (lists visited best first) linear.
            int mid = lo + ((hi - lo) >> 1);
            ulong a = e[lo], b = e[mid], c = e[hi - 1];
            ulong pivot = Math.Max(Math.Min(a, b), Math.Min(Math.Max(a, b), c));
            // Branch-free Lomuto partition: entries below the pivot move to the front. Comparisons of random keys
            // against a median are coin flips, so a branch per entry would mispredict half the time.
            // Refs, not span indexers: this loop is the whole cost of a selection, and bounds checks double it.
            int store = lo;
            ref ulong e0 = ref MemoryMarshal.GetReference(e);
            for (int i = lo; i < hi; i++)
            {
                ref ulong xi = ref Unsafe.Add(ref e0, i);
                ref ulong xs = ref Unsafe.Add(ref e0, store);
                ulong x = xi;
                xi = xs;
                xs = x;
                store += x < pivot ? 1 : 0;
            }
            // [lo, store) < pivot ≤ [store, hi). The pivot itself is in the upper part: move it to its place.
            if (store >= nth)
            {
                hi = store;
                continue;
            }
            int p = store;
            for (int i = store; i < hi; i++)
                if (e[i] == pivot) { (e[i], e[p]) = (e[p], e[i]); break; }
            if (p + 1 >= nth) break; // [0, p] holds the nth smallest (p + 1 == nth)
            lo = p + 1;
        }
    }

    /// <summary>Words of a small sample taken to estimate a threshold in <see cref="SelectSmallest"/>.</summary>
    private const int SampleSize = 128;

    /// <summary>
    /// The k smallest keys of a whole array (ids are positions), in no particular (but deterministic) order, into the
    /// outputs; returns how many (min(k, non-NaN keys)). Exactly the set a <see cref="TopKReservoir"/> fed every key
    /// would keep, at a fraction of the cost when k is much smaller than the array: a threshold estimated from a
    /// sample lets one vectorised pass collect a little more than k candidates, and one quickselect finishes.
    /// <paramref name="buffer"/> must hold more than keys.Length entries (the fallback when the sample misleads).
    /// </summary>
    public static int SelectSmallest(ReadOnlySpan<float> keys, int k, Span<ulong> buffer, Span<float> outKeys, Span<int> outIds)
    {
        if (k < 1) throw new ArgumentOutOfRangeException(nameof(k), k, "k must be at least 1.");
        int n = keys.Length;
        if (buffer.Length <= n) throw new ArgumentException($"The buffer must hold more than {n} entries (got {buffer.Length}).", nameof(buffer));
        if (outKeys.Length < Math.Min(k, n) || outIds.Length < Math.Min(k, n)) throw new ArgumentException($"Outputs must hold {Math.Min(k, n)} entries.");
        if (k >= n)
        {
            // Every non-NaN key is kept.
            return Unpack(buffer[..Collect(keys, float.PositiveInfinity, buffer)], outKeys, outIds);
        }
        // Only worth it when the sample can say something: k well under n.
        if (n >= 4 * SampleSize && (long)k * 4 <= n)
        {
            Span<ulong> sample = stackalloc ulong[SampleSize];
            int stride = n / SampleSize, valid = 0;
            for (int i = 0; i < SampleSize; i++)
            {
                float key = keys[i * stride];
                if (!float.IsNaN(key)) sample[valid++] = Pack(key, i * stride);
            }
            if (valid > 0)
            {
                float t = KeyOf(SampledBound(sample[..valid], k, n));
                int count = Collect(keys, t, buffer);
                if (count >= k)
                {
                    SelectInPlace(buffer[..count], k);
                    return Unpack(buffer[..k], outKeys, outIds);
                }
            }
        }
        var res = new TopKReservoir(k, buffer);
        for (int i = 0; i < n; i++) res.Push(keys[i], i);
        return res.TakeUnsorted(outKeys, outIds);
    }

    /// <summary>
    /// From a sample of packed words spread evenly over n values: the word that about 1.25k + a few of the n values
    /// are at or under (the sample's rank k·|sample|·1.25/n + 3). A pass keeping the values at or under it then keeps a
    /// little more than k; fewer than k (the true k-th value above the estimate) is rare, and the caller must then
    /// fall back to keeping everything. The sample is permuted.
    /// </summary>
    internal static ulong SampledBound(Span<ulong> sample, int k, int n)
    {
        int rank = (int)Math.Min(sample.Length - 1L, (long)k * sample.Length * 5 / (4L * n) + 3);
        SelectInPlace(sample, rank + 1);
        ulong bound = 0;
        for (int i = 0; i <= rank; i++) bound = Math.Max(bound, sample[i]);
        return bound;
    }

    /// <summary>Packs every (key ≤ t, position) of <paramref name="keys"/> into <paramref name="buffer"/>; returns how many.</summary>
    private static int Collect(ReadOnlySpan<float> keys, float t, Span<ulong> buffer)
    {
        int count = 0, i = 0, n = keys.Length;
        if (Vector512.IsHardwareAccelerated)
        {
            var tv = Vector512.Create(t);
            for (; i + 16 <= n; i += 16)
            {
                // One compare per 16 keys; only the (few) survivors are touched one by one.
                ulong mask = Vector512.LessThanOrEqual(Vector512.Create(keys.Slice(i, 16)), tv).ExtractMostSignificantBits();
                while (mask != 0)
                {
                    int j = BitOperations.TrailingZeroCount(mask);
                    mask &= mask - 1;
                    buffer[count++] = Pack(keys[i + j], i + j);
                }
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var tv = Vector256.Create(t);
            for (; i + 8 <= n; i += 8)
            {
                uint mask = Vector256.LessThanOrEqual(Vector256.Create(keys.Slice(i, 8)), tv).ExtractMostSignificantBits();
                while (mask != 0)
                {
                    int j = BitOperations.TrailingZeroCount(mask);
                    mask &= mask - 1;
                    buffer[count++] = Pack(keys[i + j], i + j);
                }
            }
        }
        for (; i < n; i++)
            if (keys[i] <= t) buffer[count++] = Pack(keys[i], i);
        return count;
    }
}
