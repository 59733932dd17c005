using System.Runtime.InteropServices;
using Adanns.Kernels;

namespace Adanns.Engine;

/// <summary>
/// N×D float32 rows, row-major, in one 64-byte-aligned native buffer (outside the managed heap, so a
/// million-row set costs the GC nothing). A Matryoshka prefix x[:d] of a row is a zero-copy slice of it.
/// Per-row L2 norms of prefixes are cached for the dims registered with <see cref="EnsurePrefixNorms"/>
/// and kept up to date by <see cref="Add(ReadOnlySpan{float})"/>.
/// </summary>
/// <remarks>
/// Concurrent readers are safe. Writers (<see cref="Add(ReadOnlySpan{float})"/>, <see cref="AddRange"/>,
/// <see cref="EnsurePrefixNorms"/>) must not run concurrently with readers or each other: growing the buffer
/// moves it. Indices that need online writes add their own synchronisation above this type.
/// </remarks>
public sealed unsafe class VectorSet : IDisposable
{
    private const nuint Alignment = 64;
    private float* _data;
    private long _capacity;
    // Copy-on-write: readers take the current snapshot without locking; EnsurePrefixNorms publishes a new one.
    private volatile SortedDictionary<int, float[]> _prefixNorms = new();
    private readonly object _normsLock = new();
    private bool _disposed;

    /// <summary>Creates an empty set of <paramref name="dimension"/>-dim rows.</summary>
    public VectorSet(int dimension, long initialCapacity = 0)
    {
        if (dimension <= 0)
            throw new ArgumentOutOfRangeException(nameof(dimension), dimension, "Dimension must be positive.");
        if (initialCapacity < 0)
            throw new ArgumentOutOfRangeException(nameof(initialCapacity), initialCapacity, "Capacity must be non-negative.");
        Dimension = dimension;
        if (initialCapacity > 0)
            Grow(initialCapacity);
    }

    /// <summary>Copies <paramref name="rows"/> (n×<paramref name="dimension"/>, row-major) into a new set.</summary>
    public static VectorSet FromRows(ReadOnlySpan<float> rows, int dimension)
    {
        if (dimension <= 0)
            throw new ArgumentOutOfRangeException(nameof(dimension), dimension, "Dimension must be positive.");
        if (rows.Length % dimension != 0)
            throw new ArgumentException($"Row data length {rows.Length} is not a multiple of dimension {dimension}.", nameof(rows));
        var set = new VectorSet(dimension, rows.Length / dimension);
        set.AddRange(rows);
        return set;
    }

    /// <summary>Full dimension D of every row.</summary>
    public int Dimension { get; }

    /// <summary>Number of rows N.</summary>
    public int Count { get; private set; }

    /// <summary>Rows that fit before the buffer must grow.</summary>
    public long Capacity => _capacity;

    /// <summary>Bytes of native memory held by the rows (norm caches excluded).</summary>
    public long AllocatedBytes => _capacity * Dimension * sizeof(float);

    /// <summary>The dims whose prefix norms are cached, ascending.</summary>
    public IReadOnlyCollection<int> CachedPrefixDims => _prefixNorms.Keys;

    /// <summary>Row <paramref name="index"/> (all D dims).</summary>
    public ReadOnlySpan<float> this[int index] => Row(index);

    /// <summary>Row <paramref name="index"/> (all D dims).</summary>
    public ReadOnlySpan<float> Row(int index)
    {
        CheckIndex(index);
        return new ReadOnlySpan<float>(_data + (long)index * Dimension, Dimension);
    }

    /// <summary>The first <paramref name="d"/> dims of row <paramref name="index"/>, without copying.</summary>
    public ReadOnlySpan<float> Prefix(int index, int d)
    {
        CheckIndex(index);
        CheckDim(d);
        return new ReadOnlySpan<float>(_data + (long)index * Dimension, d);
    }

    /// <summary>
    /// Rows [start, start+count) as one contiguous count×D row-major span (the kernels' "rows with stride D").
    /// The block must hold fewer than 2^31 floats.
    /// </summary>
    public ReadOnlySpan<float> RowBlock(int start, int count)
    {
        if ((uint)start > (uint)Count || (uint)count > (uint)(Count - start))
            throw new ArgumentOutOfRangeException(nameof(count), $"Rows [{start}, {start + (long)count}) are outside [0, {Count}).");
        long len = (long)count * Dimension;
        if (len > int.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(count), $"A block of {count} rows × {Dimension} dims exceeds 2^31 floats; use smaller blocks.");
        ThrowIfDisposed();
        return new ReadOnlySpan<float>(_data + (long)start * Dimension, (int)len);
    }

    /// <summary>Appends one row; returns its index.</summary>
    public int Add(ReadOnlySpan<float> row)
    {
        if (row.Length != Dimension)
            throw new ArgumentException($"Row has {row.Length} dims; this set holds {Dimension}-dim rows.", nameof(row));
        AddRange(row);
        return Count - 1;
    }

    /// <summary>Appends rows (n×D, row-major).</summary>
    public void AddRange(ReadOnlySpan<float> rows)
    {
        ThrowIfDisposed();
        if (rows.Length % Dimension != 0)
            throw new ArgumentException($"Row data length {rows.Length} is not a multiple of dimension {Dimension}.", nameof(rows));
        int n = rows.Length / Dimension;
        if ((long)Count + n > int.MaxValue)
            throw new InvalidOperationException($"A vector set holds at most {int.MaxValue} rows.");
        EnsureCapacity((long)Count + n);
        rows.CopyTo(new Span<float>(_data + (long)Count * Dimension, rows.Length));
        int first = Count;
        Count += n;
        foreach (var d in _prefixNorms.Keys.ToArray())
            ExtendNorms(d, first);
    }

    /// <summary>
    /// Caches ‖x[:d]‖ for every row (and for rows added later), so prefix renormalisation is one multiply.
    /// Returns the cache: element i is the norm of row i's d-dim prefix.
    /// </summary>
    public ReadOnlySpan<float> EnsurePrefixNorms(int d)
    {
        CheckDim(d);
        if (!_prefixNorms.ContainsKey(d))
        {
            lock (_normsLock)
            {
                if (!_prefixNorms.ContainsKey(d))
                {
                    var arr = new float[Math.Max(16, (int)Math.Min(_capacity, int.MaxValue))];
                    for (int i = 0; i < Count; i++)
                        arr[i] = MathF.Sqrt(VectorMath.NormSquared(Prefix(i, d)));
                    var next = new SortedDictionary<int, float[]>(_prefixNorms) { [d] = arr };
                    _prefixNorms = next;
                }
            }
        }
        return _prefixNorms[d].AsSpan(0, Count);
    }

    /// <summary>Cached prefix norms for <paramref name="d"/>, or false when <paramref name="d"/> is not cached.</summary>
    public bool TryGetPrefixNorms(int d, out ReadOnlySpan<float> norms)
    {
        if (_prefixNorms.TryGetValue(d, out var arr))
        {
            norms = arr.AsSpan(0, Count);
            return true;
        }
        norms = default;
        return false;
    }

    /// <summary>Copies rows (or their d-dim prefixes, L2-renormalised when <paramref name="normalize"/>) to a managed array.</summary>
    public float[] ToArray(int d = 0, bool normalize = false)
    {
        if (d == 0) d = Dimension;
        CheckDim(d);
        var result = new float[(long)Count * d];
        for (int i = 0; i < Count; i++)
        {
            var dst = result.AsSpan(i * d, d);
            Prefix(i, d).CopyTo(dst);
            if (normalize)
                VectorMath.NormalizeInPlace(dst);
        }
        return result;
    }

    private void ExtendNorms(int d, int first)
    {
        var arr = _prefixNorms[d];
        if (arr.Length < Count)
        {
            Array.Resize(ref arr, (int)Math.Max(Count, Math.Min(_capacity, int.MaxValue)));
            _prefixNorms[d] = arr;
        }
        for (int i = first; i < Count; i++)
            arr[i] = MathF.Sqrt(VectorMath.NormSquared(Prefix(i, d)));
    }

    private void EnsureCapacity(long needed)
    {
        if (needed <= _capacity) return;
        Grow(Math.Max(needed, Math.Max(16, _capacity + _capacity / 2)));
    }

    private void Grow(long newCapacity)
    {
        nuint bytes = (nuint)(newCapacity * Dimension * sizeof(float));
        var fresh = (float*)NativeMemory.AlignedAlloc(bytes, Alignment);
        if (_data != null)
        {
            Buffer.MemoryCopy(_data, fresh, (long)bytes, (long)Count * Dimension * sizeof(float));
            NativeMemory.AlignedFree(_data);
            GC.RemoveMemoryPressure(_capacity * Dimension * sizeof(float));
        }
        _data = fresh;
        _capacity = newCapacity;
        GC.AddMemoryPressure((long)bytes);
    }

    private void CheckIndex(int index)
    {
        ThrowIfDisposed();
        if ((uint)index >= (uint)Count)
            throw new ArgumentOutOfRangeException(nameof(index), index, $"Row index must be in [0, {Count}).");
    }

    private void CheckDim(int d)
    {
        if (d <= 0 || d > Dimension)
            throw new ArgumentOutOfRangeException(nameof(d), d, $"Prefix dim must be in [1, {Dimension}].");
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);

    /// <summary>Frees the native buffer.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (_data != null)
        {
            NativeMemory.AlignedFree(_data);
            GC.RemoveMemoryPressure(_capacity * Dimension * sizeof(float));
            _data = null;
        }
        GC.SuppressFinalize(this);
    }

    /// <summary>Frees the native buffer if Dispose was never called.</summary>
    ~VectorSet()
    {
        if (_data != null)
            NativeMemory.AlignedFree(_data);
    }
}
