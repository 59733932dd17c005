using Adanns.Engine.Quantization;
using Adanns.Kernels;

namespace Adanns.Engine.Indexes;

/// <summary>
/// One inverted list. Two stores, each laid out for its access pattern:
/// <list type="bullet">
/// <item>the <b>scan store</b>: the first <c>ScanDims</c> dims of every row in the interleaved-16 layout
/// (see <see cref="InterleavedKernels"/>), as float32 (<see cref="Blocks"/>) or as 8-bit scalar-quantized codes
/// (<see cref="Codes"/>), so a scan at any prefix d ≤ ScanDims streams contiguous memory;</item>
/// <item>the <b>row store</b> <see cref="Rows"/>: full D-dim float32 rows, row-major, for reranking a shortlist
/// (each candidate is one contiguous read). Omitted only when the scan store holds all D dims as float32
/// (rigid IVF): rows are then read back from the blocks.</item>
/// </list>
/// </summary>
internal sealed class InvertedList
{
    private readonly int _dimension;
    private readonly int _scanDims;
    private readonly ScalarQuantizer8? _sq;
    private readonly byte[] _codeScratch;

    public InvertedList(int dimension, int scanDims, ScalarQuantizer8? sq, int capacity = 0)
    {
        _dimension = dimension;
        _scanDims = scanDims;
        _sq = sq;
        _codeScratch = sq is null ? [] : new byte[scanDims];
        Allocate(RoundUp(capacity));
    }

    /// <summary>Full dimension D of a row.</summary>
    public int Dimension => _dimension;

    /// <summary>Rows held, tombstones included.</summary>
    public int Count { get; private set; }

    /// <summary>Rows that fit before the arrays grow (a multiple of 16).</summary>
    public int Capacity { get; private set; }

    /// <summary>Rows removed but not yet compacted away (their id is −1).</summary>
    public int Tombstones { get; set; }

    /// <summary>External id per row; −1 marks a tombstone.</summary>
    public long[] Ids { get; private set; } = [];

    /// <summary>Float32 scan store (empty when the scan store is quantized).</summary>
    public float[] Blocks { get; private set; } = [];

    /// <summary>8-bit scan store (empty unless quantized).</summary>
    public byte[] Codes { get; private set; } = [];

    /// <summary>Full rows (Capacity × D), or null when the float scan store already holds every dim.</summary>
    public float[]? Rows { get; private set; }

    /// <summary>
    /// Block-major tiles: a list holds a few dozen rows, so a scan reads all its blocks; keeping each block's
    /// tiles adjacent makes the whole list one contiguous run the hardware prefetcher can stream.
    /// </summary>
    public TileLayout Layout => TileLayout.BlockMajor(_scanDims);

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
        if (_sq is null)
        {
            InterleavedKernels.WriteRow(Blocks, Layout, pos, row[.._scanDims]);
        }
        else
        {
            _sq.Encode(row, _codeScratch);
            InterleavedKernels.WriteRow(Codes, Layout, pos, _codeScratch);
        }
        if (Rows is not null) row.CopyTo(Rows.AsSpan(pos * _dimension, _dimension));
    }

    /// <summary>Copies the full row at <paramref name="pos"/> into <paramref name="dst"/>.</summary>
    public void Read(int pos, Span<float> dst)
    {
        if (Rows is not null) Rows.AsSpan(pos * _dimension, _dimension).CopyTo(dst);
        else InterleavedKernels.ReadRow(Blocks, Layout, pos, dst[.._scanDims]);
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
        Array.Fill(Ids, -1L, write, Count - write);
        Count = write;
        Tombstones = 0;
        if (Capacity > 64 && Count < Capacity / 4)
            Grow(RoundUp(Math.Max(16, Count * 2))); // give memory back after large deletes
    }

    /// <summary>Bytes this list holds (capacity included).</summary>
    public long AllocatedBytes => Ids.Length * 8L + Blocks.Length * 4L + Codes.Length + (Rows?.LongLength ?? 0) * 4;

    private static int RoundUp(int n) => (n + InterleavedKernels.BlockRows - 1) / InterleavedKernels.BlockRows * InterleavedKernels.BlockRows;

    private void Allocate(int capacity)
    {
        Capacity = capacity;
        Ids = new long[capacity];
        long scanEntries = (long)(capacity / InterleavedKernels.BlockRows) * Layout.BlockStride;
        if (_sq is null) Blocks = new float[scanEntries];
        else Codes = new byte[scanEntries];
        Rows = _sq is not null || _scanDims < _dimension ? new float[(long)capacity * _dimension] : null;
    }

    private void Grow(int newCapacity)
    {
        var (ids, blocks, codes, rows, count) = (Ids, Blocks, Codes, Rows, Count);
        Allocate(newCapacity);
        Array.Copy(ids, Ids, count);
        // Block-major: the used blocks are a prefix of the store, so growing is one copy. Padding rows past
        // Count hold stale or zero values that scans never report.
        long used = (long)((count + InterleavedKernels.BlockRows - 1) / InterleavedKernels.BlockRows) * Layout.BlockStride;
        if (_sq is null) Array.Copy(blocks, Blocks, used);
        else Array.Copy(codes, Codes, used);
        if (rows is not null && Rows is not null) Array.Copy(rows, Rows, (long)count * _dimension);
    }
}
