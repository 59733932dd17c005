using Adanns.Kernels;

namespace Adanns.Engine.Indexes;

/// <summary>
/// One inverted list. Two stores, each laid out for its access pattern:
/// <list type="bullet">
/// <item><see cref="Blocks"/>: the first <c>ScanDims</c> dims of every row in the interleaved-16 layout
/// (see <see cref="InterleavedKernels"/>), so a scan at any prefix d ≤ ScanDims reads contiguous memory and
/// scores 16 rows per FMA;</item>
/// <item><see cref="Rows"/>: full D-dim rows, row-major, for reranking a shortlist (each candidate is one
/// contiguous read). Omitted when ScanDims = D (rigid IVF): rows are then read back from the blocks.</item>
/// </list>
/// </summary>
internal sealed class InvertedList
{
    private readonly int _dimension;
    private readonly int _scanDims;

    public InvertedList(int dimension, int scanDims, int capacity = 0)
    {
        _dimension = dimension;
        _scanDims = scanDims;
        Allocate(RoundUp(capacity));
    }

    /// <summary>Rows held, tombstones included.</summary>
    public int Count { get; private set; }

    /// <summary>Rows that fit before the arrays grow (a multiple of 16).</summary>
    public int Capacity { get; private set; }

    /// <summary>Rows removed but not yet compacted away (their id is −1).</summary>
    public int Tombstones { get; set; }

    /// <summary>External id per row; −1 marks a tombstone.</summary>
    public long[] Ids { get; private set; } = [];

    /// <summary>The first ScanDims dims in the interleaved-16 layout (groups of 16 dims, each contiguous across blocks).</summary>
    public float[] Blocks { get; private set; } = [];

    /// <summary>Full rows (Capacity × D), or null when ScanDims = D.</summary>
    public float[]? Rows { get; private set; }

    /// <summary>Floats between consecutive dim groups of <see cref="Blocks"/>.</summary>
    public int GroupStride => (int)InterleavedKernels.GroupStride(Capacity / InterleavedKernels.BlockRows);

    /// <summary>Blocks covering <see cref="Count"/> rows.</summary>
    public int BlockCount => (Count + InterleavedKernels.BlockRows - 1) / InterleavedKernels.BlockRows;

    /// <summary>Appends a D-dim row; returns its position.</summary>
    public int Append(ReadOnlySpan<float> row, long id)
    {
        if (Count == Capacity) Grow(Math.Max(16, Capacity * 2));
        int pos = Count++;
        Write(pos, row, id);
        return pos;
    }

    /// <summary>Writes a full row at <paramref name="pos"/>.</summary>
    public void Write(int pos, ReadOnlySpan<float> row, long id)
    {
        Ids[pos] = id;
        InterleavedKernels.WriteRow(Blocks, GroupStride, pos, row[.._scanDims]);
        if (Rows is not null) row.CopyTo(Rows.AsSpan(pos * _dimension, _dimension));
    }

    /// <summary>Copies the full row at <paramref name="pos"/> into <paramref name="dst"/>.</summary>
    public void Read(int pos, Span<float> dst)
    {
        if (Rows is not null) Rows.AsSpan(pos * _dimension, _dimension).CopyTo(dst);
        else InterleavedKernels.ReadRow(Blocks, GroupStride, pos, dst[.._scanDims]);
    }

    /// <summary>The full row at <paramref name="pos"/> when rows are stored row-major; empty otherwise.</summary>
    public ReadOnlySpan<float> RowSpan(int pos) => Rows is null ? default : Rows.AsSpan(pos * _dimension, _dimension);

    /// <summary>Removes tombstones by moving live rows down; <paramref name="moved"/> hears every move.</summary>
    public void Compact(Action<long, int> moved)
    {
        if (Tombstones == 0) return;
        var row = new float[_dimension];
        int write = 0;
        for (int read = 0; read < Count; read++)
        {
            if (Ids[read] < 0) continue;
            if (write != read)
            {
                Read(read, row);
                Write(write, row, Ids[read]);
                moved(Ids[write], write);
            }
            write++;
        }
        // Zero the vacated tail so padding rows of the last block score as zero vectors (never pushed anyway).
        for (int p = write; p < Count; p++)
        {
            InterleavedKernels.WriteRow(Blocks, GroupStride, p, new float[_scanDims]);
            Ids[p] = -1;
        }
        Count = write;
        Tombstones = 0;
        if (Capacity > 64 && Count < Capacity / 4)
            Grow(RoundUp(Math.Max(16, Count * 2))); // give memory back after large deletes
    }

    /// <summary>Sets the row count directly (used by the file reader after it fills the arrays).</summary>
    internal void SetCount(int count)
    {
        if (count > Capacity) Grow(RoundUp(count));
        Count = count;
    }

    private static int RoundUp(int n) => (n + InterleavedKernels.BlockRows - 1) / InterleavedKernels.BlockRows * InterleavedKernels.BlockRows;

    private void Allocate(int capacity)
    {
        Capacity = capacity;
        Ids = new long[capacity];
        Blocks = new float[InterleavedKernels.Groups(_scanDims) * InterleavedKernels.GroupStride(capacity / InterleavedKernels.BlockRows)];
        Rows = _scanDims < _dimension ? new float[(long)capacity * _dimension] : null;
    }

    private void Grow(int newCapacity)
    {
        var (ids, blocks, rows, count, oldStride) = (Ids, Blocks, Rows, Count, GroupStride);
        Allocate(newCapacity);
        Array.Copy(ids, Ids, count);
        // Each dim group moves to its new offset (group stride grows with capacity); blocks inside it do not move.
        long used = InterleavedKernels.GroupStride((count + InterleavedKernels.BlockRows - 1) / InterleavedKernels.BlockRows);
        for (int g = 0; g < InterleavedKernels.Groups(_scanDims); g++)
            Array.Copy(blocks, (long)g * oldStride, Blocks, (long)g * GroupStride, used);
        if (rows is not null && Rows is not null) Array.Copy(rows, Rows, (long)count * _dimension);
    }
}
