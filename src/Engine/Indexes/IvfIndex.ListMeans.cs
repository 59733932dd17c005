using Adanns.Kernels;

namespace Adanns.Engine.Indexes;

public sealed partial class IvfIndex
{
    // Running list means at full D, for probing at a query-time coarse dim d_c' > d_c (the trained centroids only have
    // d_c dims). Vectors are assigned with the trained centroids; a list's probe centroid beyond d_c is the mean of its
    // live members (cosine: members scaled by 1/‖x[:d_c]‖, so the mean's d_c-prefix points where the spherical centroid
    // does). Spill's second copies do not count: a list's mean is that of the vectors it was assigned.
    private double[]? _sums;          // nlist × D; null for one list (nothing to rank) or until the first add
    private int[]? _liveCounts;       // live first copies per list
    private bool _sumsStale;          // a removal (or a load) left the sums unknown: rebuilt from the rows on first use
    private long _writeVersion;       // bumped by every mutation: device copies and the mean table follow it
    private MeanTable? _meanTable;
    private readonly Lock _meanGate = new();
    // Which rows of the mean table a write left out of date, so the next probe rewrites those rows only (not the whole
    // nlist × D table after every write). Set by writers, consumed under _meanGate by the first search after them:
    // writes never overlap searches (class remarks), so no search reads a row while it is rewritten.
    private bool _meanRowsAllStale = true; // no table yet, or the sums were recomputed or loaded: every row
    private bool[]? _meanRowStale;         // per list
    private int[]? _staleMeanRows;         // the first _staleMeanRowCount of them, each once
    private int _staleMeanRowCount;
    private float[]? _meanRow;             // one list's mean, as the table row is written
    internal long MeanRowsWritten;         // rows of the mean table written so far (tests)

    /// <summary>The probe centroids at full D (interleaved, group-major) and the write version they describe.</summary>
    private sealed record MeanTable(float[] Table, long Version);

    /// <summary>Adds (sign +1) or removes (−1) a (rotated) row from the running sums of <paramref name="list"/>.</summary>
    private void UpdateMeans(int list, ReadOnlySpan<float> row, int sign)
    {
        _writeVersion++;
        if (NList == 1 || _sumsStale) return;
        AccumulateMean(list, row, sign);
    }

    private void AccumulateMean(int list, ReadOnlySpan<float> row, int sign)
    {
        int D = Dimension;
        _sums ??= new double[(long)NList * D];
        _liveCounts ??= new int[NList];
        double scale = 1;
        if (Spherical)
        {
            double n = Math.Sqrt(VectorMath.NormSquared(row[..CoarseDim]));
            scale = n > 0 ? 1 / n : 0;
        }
        var sum = _sums.AsSpan(list * D, D);
        double w = sign * scale;
        for (int j = 0; j < D; j++) sum[j] += w * row[j];
        _liveCounts[list] += sign;
        MarkMeanRowStale(list);
    }

    private void MarkMeanRowStale(int list)
    {
        if (_meanRowsAllStale) return;
        _meanRowStale ??= new bool[NList];
        if (_meanRowStale[list]) return;
        _meanRowStale[list] = true;
        (_staleMeanRows ??= new int[NList])[_staleMeanRowCount++] = list;
    }

    private bool _meansIncludeRemoved; // external source: removed rows still count in their lists' means until Compact

    /// <summary>
    /// A removal without resident rows: the removed row is not read back (the caller may hold a lock, and the read may go
    /// to disk), so it keeps counting in its list's running mean — a probe centroid over the members assigned since the
    /// means were last computed — until <see cref="Compact"/> recomputes them. Invalidating instead made the next search
    /// read every vector from the source (O(N) per search after any removal; issue 20: 10x slower ingest in collections).
    /// </summary>
    private void KeepRemovedInMeans()
    {
        _writeVersion++; // slots changed: device copies follow
        _meansIncludeRemoved = true;
    }

    /// <summary>The sums can no longer be kept incrementally (rows added without being known): rebuilt on first use.</summary>
    private void InvalidateMeans()
    {
        _writeVersion++;
        _sumsStale = true;
    }

    /// <summary>Recomputes the sums from every live vector (resident rows, or the external source a chunk at a time).</summary>
    private void RecomputeMeans()
    {
        int D = Dimension;
        var sums = new double[(long)NList * D];
        var counts = new int[NList];
        _sums = sums;
        _liveCounts = counts;
        _sumsStale = false;
        _meansIncludeRemoved = false;
        _meanRowsAllStale = true;
        const int Chunk = 256;
        var ids = new long[Chunk];
        var lists = new int[Chunk];
        var raw = new float[Chunk * D];
        var rows = Rotation is null ? raw : new float[Chunk * D];
        int m = 0;
        void Flush()
        {
            if (m == 0) return;
            if (_rows is null)
            {
                _source!.Read(ids.AsSpan(0, m), raw.AsSpan(0, m * D));
                Rotation?.ApplyBatch(raw.AsSpan(0, m * D), rows.AsSpan(0, m * D));
            }
            for (int i = 0; i < m; i++) AccumulateMean(lists[i], rows.AsSpan(i * D, D), +1);
            m = 0;
        }
        foreach (var (id, loc) in _idToLoc)
        {
            int list = (int)(loc >> 32);
            if (_rows is not null)
            {
                int slot = _lists[list].Slots[(int)(uint)loc];
                _rows.Row(slot).CopyTo(rows.AsSpan(m * D, D));
            }
            ids[m] = id;
            lists[m++] = list;
            if (m == Chunk) Flush();
        }
        Flush();
    }

    /// <summary>
    /// Whether every probe ranks the lists' running means (at any d_c'), not only probes above d_c: a plain float / SQ8
    /// spec (no Spill, no Prefix8) probes as IVF always did, so its recall is what it was. Other specs rank the trained
    /// centroids (8-bit, int8/VNNI where it wins) up to d_c.
    /// </summary>
    private bool ProbesMeans => !Spec.IsCodecPipeline;

    /// <summary>
    /// The probe centroids at full D for the current contents. After writes, the first search rewrites (under a lock)
    /// the rows of the lists they changed, in place: a removal that keeps its row in the means, or a compaction, changes
    /// none; the whole table is written only at first use and after the sums were recomputed.
    /// </summary>
    private float[] MeanCentroids()
    {
        var t = Volatile.Read(ref _meanTable);
        if (t is not null && t.Version == _writeVersion) return t.Table;
        lock (_meanGate)
        {
            t = _meanTable;
            if (t is not null && t.Version == _writeVersion) return t.Table;
            if (_sumsStale || _sums is null) RecomputeMeans();
            var layout = TileLayout.GroupMajor(CoarseBlocks);
            float[] table;
            if (t is null || _meanRowsAllStale)
            {
                table = t?.Table ?? new float[InterleavedKernels.Groups(Dimension) * InterleavedKernels.GroupStride(CoarseBlocks)];
                for (int l = 0; l < NList; l++) WriteMeanRow(table, layout, l);
                if (_meanRowStale is not null) Array.Clear(_meanRowStale);
            }
            else
            {
                table = t.Table;
                for (int i = 0; i < _staleMeanRowCount; i++)
                {
                    int l = _staleMeanRows![i];
                    WriteMeanRow(table, layout, l);
                    _meanRowStale![l] = false;
                }
            }
            _staleMeanRowCount = 0;
            _meanRowsAllStale = false;
            Volatile.Write(ref _meanTable, new MeanTable(table, _writeVersion));
            return table;
        }
    }

    /// <summary>List <paramref name="l"/>'s row of the mean table: its live members' mean, or (empty) its trained centroid.</summary>
    private void WriteMeanRow(float[] table, TileLayout layout, int l)
    {
        int D = Dimension, dc = CoarseDim;
        var c = _meanRow ??= new float[D];
        int count = _liveCounts![l];
        if (count <= 0)
        {
            // An empty list: its trained centroid, zero beyond d_c (scanning it costs nothing).
            Array.Clear(c);
            _coarse.AsSpan(l * dc, dc).CopyTo(c);
        }
        else
        {
            var sum = _sums!.AsSpan(l * D, D);
            for (int j = 0; j < D; j++) c[j] = (float)(sum[j] / count);
        }
        InterleavedKernels.WriteRow(table, layout, l, c);
        MeanRowsWritten++;
    }

    /// <summary>Tests: the mean table the next probe ranks (brought up to date), and the same written from scratch.</summary>
    internal (float[] Current, float[] FromScratch) MeanTablesForTest()
    {
        var current = (float[])MeanCentroids().Clone();
        var fresh = new float[current.Length];
        var layout = TileLayout.GroupMajor(CoarseBlocks);
        lock (_meanGate)
            for (int l = 0; l < NList; l++) WriteMeanRow(fresh, layout, l);
        return (current, fresh);
    }

    /// <summary>Tests: recompute the running sums from the live rows (as a load or a compaction after removals does).</summary>
    internal void RecomputeMeansForTest()
    {
        RecomputeMeans();
        _writeVersion++;
    }

    /// <summary>
    /// The nprobe nearest list means at dim d &gt; d_c (spherical for cosine, L2 otherwise, as the coarse k-means), in
    /// no particular order; returns how many.
    /// </summary>
    private int RankMeans(ReadOnlySpan<float> q, int d, int nprobe, Span<int> probes, Scratch s)
    {
        var table = MeanCentroids();
        int padded = CoarseBlocks * InterleavedKernels.BlockRows;
        var dots = s.CoarseDots(padded);
        var norms = s.CoarseNorms(padded);
        InterleavedKernels.Dot(q[..d], table, TileLayout.GroupMajor(CoarseBlocks), CoarseBlocks, dots, norms);
        var keys = dots[..NList];
        RerankKey.ToKeys(keys, norms[..NList], Spherical ? Metric.Cosine : Metric.L2);
        return TopKReservoir.SelectSmallest(keys, nprobe, s.Reservoir(NList + 1), s.ProbeKeys(nprobe), probes);
    }
}
