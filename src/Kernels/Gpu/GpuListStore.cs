using ILGPU;
using ILGPU.Runtime;

namespace Adanns.Kernels.Gpu;

/// <summary>One inverted list's scan data as the host holds it (interleaved-16, block-major; see <see cref="InterleavedKernels"/>).</summary>
/// <param name="Count">Rows in the list (tombstones included).</param>
/// <param name="Blocks">Float scan store (at least ⌈Count/16⌉ blocks), or empty when the store is quantized.</param>
/// <param name="Codes">8-bit scan store, or empty when the store is float.</param>
/// <param name="Live">Per row: false for a tombstone (never reported, never takes a shortlist place).</param>
public readonly record struct GpuListData(int Count, ReadOnlyMemory<float> Blocks, ReadOnlyMemory<byte> Codes, ReadOnlyMemory<bool> Live);

/// <summary>
/// The scan stores of all inverted lists of an IVF index copied to device memory (one buffer, lists back to back),
/// and the batch list scan: queries grouped by the lists they probe, each list's data read once per group of four
/// queries, then per-query top-shortlist selection on the device. Row "slots" number the rows of all lists in list
/// order (slot = start of its list + position), as the CPU index does.
/// </summary>
public sealed class GpuListStore : IDisposable
{
    private readonly GpuBuffer<float>? _data;
    private readonly GpuBuffer<byte>? _codes;
    private readonly GpuBuffer<float> _lo, _step;
    private readonly GpuBuffer<long> _listBase;
    private readonly GpuBuffer<int> _listCount, _listSlot, _live;
    private readonly int[] _counts;

    /// <summary>Uploads <paramref name="nlist"/> lists given by <paramref name="list"/>, stored at <paramref name="scanDims"/> dims.</summary>
    /// <param name="device">Target device.</param>
    /// <param name="scanDims">Dims of the scan store (its block stride is ⌈scanDims/16⌉·256).</param>
    /// <param name="lo">8-bit decoding offsets per dim (quantized stores only; else empty).</param>
    /// <param name="step">8-bit decoding steps per dim (quantized stores only; else empty).</param>
    /// <param name="nlist">Number of lists.</param>
    /// <param name="list">The data of list l.</param>
    public GpuListStore(GpuDevice device, int scanDims, ReadOnlySpan<float> lo, ReadOnlySpan<float> step, int nlist, Func<int, GpuListData> list)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(list);
        if (scanDims <= 0) throw new ArgumentOutOfRangeException(nameof(scanDims), scanDims, "Scan dims must be positive.");
        Device = device;
        ScanDims = scanDims;
        Quantized = !lo.IsEmpty;
        if (Quantized && (lo.Length < scanDims || step.Length < scanDims))
            throw new ArgumentException($"A quantized store needs {scanDims} offsets and steps.");
        BlockStride = InterleavedKernels.Groups(scanDims) * InterleavedKernels.TileFloats;
        NList = nlist;
        _counts = new int[nlist];
        var bases = new long[nlist];
        var slots = new int[nlist + 1];
        var lists = new GpuListData[nlist];
        long total = 0;
        for (int l = 0; l < nlist; l++)
        {
            lists[l] = list(l);
            int count = lists[l].Count;
            _counts[l] = count;
            bases[l] = total;
            total += (long)(count + 15) / 16 * BlockStride;
            slots[l + 1] = checked(slots[l] + count);
        }
        Rows = slots[nlist];
        var live = new int[Math.Max(1, Rows)];
        var disposables = new List<IDisposable>();
        try
        {
            if (Quantized) disposables.Add(_codes = new GpuBuffer<byte>(device, total, "IVF 8-bit scan store"));
            else disposables.Add(_data = new GpuBuffer<float>(device, total, "IVF scan store"));
            for (int l = 0; l < nlist; l++)
            {
                var data = lists[l];
                int used = (data.Count + 15) / 16 * BlockStride;
                if (Quantized) _codes!.CopyFrom(bases[l], data.Codes.Span[..used]);
                else _data!.CopyFrom(bases[l], data.Blocks.Span[..used]);
                var flags = data.Live.Span;
                for (int r = 0; r < data.Count; r++) live[slots[l] + r] = flags[r] ? 1 : 0;
            }
            disposables.Add(_lo = GpuBuffer<float>.Upload(device, Quantized ? lo[..scanDims] : [0f], "decode offsets"));
            disposables.Add(_step = GpuBuffer<float>.Upload(device, Quantized ? step[..scanDims] : [0f], "decode steps"));
            disposables.Add(_listBase = GpuBuffer<long>.Upload(device, bases, "list offsets"));
            disposables.Add(_listCount = GpuBuffer<int>.Upload(device, _counts, "list sizes"));
            disposables.Add(_listSlot = GpuBuffer<int>.Upload(device, slots, "list slots"));
            disposables.Add(_live = GpuBuffer<int>.Upload(device, live, "live flags"));
            // Placeholder for the store kind not in use: ILGPU views must be bound to a buffer.
            if (Quantized) disposables.Add(_data = new GpuBuffer<float>(device, 1, "unused"));
            else disposables.Add(_codes = new GpuBuffer<byte>(device, 1, "unused"));
        }
        catch
        {
            foreach (var d in disposables) d.Dispose();
            throw;
        }
    }

    /// <summary>The device holding the store.</summary>
    public GpuDevice Device { get; }

    /// <summary>Dims held per row.</summary>
    public int ScanDims { get; }

    /// <summary>True for an 8-bit store.</summary>
    public bool Quantized { get; }

    /// <summary>Number of lists.</summary>
    public int NList { get; }

    /// <summary>Rows over all lists (tombstones included).</summary>
    public int Rows { get; }

    private int BlockStride { get; }

    /// <summary>
    /// For each of nq queries (nq×d row-major; d ≤ <see cref="ScanDims"/>; prepared as the CPU scan expects: unit
    /// length for cosine) scans the distinct lists <paramref name="probes"/>[i·nprobe ..] (negative entries are skipped; a list given twice is scanned twice) at dim
    /// d and keeps the <paramref name="shortlist"/> smallest keys, best first (ties: lower slot), as keys and slots
    /// (nq×shortlist row-major, padded with (+∞, −1)).
    /// </summary>
    public void Scan(ReadOnlySpan<float> queries, int d, ReadOnlySpan<int> probes, int nprobe, KeyKind kind, int shortlist,
        Span<float> outKeys, Span<int> outSlots)
    {
        if (d <= 0 || d > ScanDims) throw new ArgumentOutOfRangeException(nameof(d), d, $"Scan dim must be in [1, {ScanDims}].");
        if (queries.Length % d != 0) throw new ArgumentException($"Query data length {queries.Length} is not a multiple of d = {d}.", nameof(queries));
        int nq = queries.Length / d;
        if (nprobe <= 0 || probes.Length < (long)nq * nprobe) throw new ArgumentException($"probes must hold {nq}×{nprobe} list numbers.", nameof(probes));
        GpuSearch.CheckK(shortlist);
        if (outKeys.Length < (long)nq * shortlist || outSlots.Length < (long)nq * shortlist)
            throw new ArgumentException($"Outputs must hold {nq}×{shortlist} entries.");
        for (int i = 0; i < nq * nprobe; i++)
            if (probes[i] >= NList) throw new ArgumentOutOfRangeException(nameof(probes), probes[i], $"List numbers must be < {NList}.");

        // Query batches bounded by the candidates they produce (keys + slots of every probed row).
        long budget = Device.IsCuda ? 1L << 25 : 1L << 12;
        int q0 = 0;
        while (q0 < nq)
        {
            long cands = 0;
            int q1 = q0;
            while (q1 < nq)
            {
                long c = 0;
                for (int j = 0; j < nprobe; j++)
                    if (probes[q1 * nprobe + j] >= 0) c += _counts[probes[q1 * nprobe + j]];
                if (q1 > q0 && cands + c > budget) break;
                cands += c;
                q1++;
            }
            ScanBatch(queries.Slice(q0 * d, (q1 - q0) * d), d, probes.Slice(q0 * nprobe, (q1 - q0) * nprobe), nprobe, kind, shortlist, cands,
                outKeys.Slice(q0 * shortlist, (q1 - q0) * shortlist), outSlots.Slice(q0 * shortlist, (q1 - q0) * shortlist));
            q0 = q1;
        }
    }

    private void ScanBatch(ReadOnlySpan<float> queries, int d, ReadOnlySpan<int> probes, int nprobe, KeyKind kind, int sl, long cands,
        Span<float> outKeys, Span<int> outSlots)
    {
        int nq = queries.Length / d;
        // Candidate layout is query-major (each query's candidates contiguous, its probes in probe order), so the
        // selection reads one segment per query; the scan itself runs list by list.
        var segOffsets = new long[nq + 1];
        var pairOffset = new long[nq * nprobe];
        var bucketCount = new int[NList + 1];
        long pos = 0;
        for (int i = 0; i < nq; i++)
        {
            segOffsets[i] = pos;
            for (int j = 0; j < nprobe; j++)
            {
                int l = probes[i * nprobe + j];
                pairOffset[i * nprobe + j] = pos;
                if (l < 0) continue;
                pos += _counts[l];
                bucketCount[l + 1]++;
            }
        }
        segOffsets[nq] = pos;
        for (int l = 0; l < NList; l++) bucketCount[l + 1] += bucketCount[l];
        int pairs = bucketCount[NList];
        var fill = bucketCount[..NList];
        var pairOut = new long[Math.Max(2, 2 * pairs)];   // (output offset, query) per pair, grouped by list
        for (int i = 0; i < nq; i++)
            for (int j = 0; j < nprobe; j++)
            {
                int l = probes[i * nprobe + j];
                if (l < 0) continue;
                int p = fill[l]++;
                pairOut[2 * p] = pairOffset[i * nprobe + j];
                pairOut[2 * p + 1] = i;
            }
        var units = new List<int>();
        for (int l = 0; l < NList; l++)
        {
            if (_counts[l] == 0) continue;
            for (int p = bucketCount[l]; p < bucketCount[l + 1]; p += 4)
            {
                units.Add(l);
                units.Add(p);
                units.Add(Math.Min(4, bucketCount[l + 1] - p));
            }
        }
        int nunits = units.Count / 3;
        if (nunits == 0 || cands == 0)
        {
            outKeys.Fill(float.PositiveInfinity);
            outSlots.Fill(-1);
            return;
        }

        using var qb = GpuBuffer<float>.Upload(Device, queries, "queries");
        using var ub = GpuBuffer<int>.Upload(Device, units.ToArray(), "scan units");
        using var pb = GpuBuffer<long>.Upload(Device, pairOut, "scan pairs");
        using var sb = GpuBuffer<long>.Upload(Device, segOffsets, "query segments");
        using var keys = new GpuBuffer<float>(Device, cands, "candidate keys");
        using var slots = new GpuBuffer<int>(Device, cands, "candidate slots");
        using var finK = new GpuBuffer<float>(Device, (long)nq * sl, "shortlists");
        using var finI = new GpuBuffer<int>(Device, (long)nq * sl, "shortlists");
        // Parts are planned from the mean segment length; long segments just give their threads more to read.
        long meanLen = Math.Max(1, cands / nq);
        using var scratch = new GpuSearch.SelectScratch(Device, nq, meanLen, sl);
        Device.Run("IVF list scan kernels", () =>
        {
            var K = Device.Kernels;
            var config = new KernelConfig(new Index1D(nunits), new Index1D(Device.ScanGroupSize));
            K.Scan(config, _data!.View, _codes!.View, _lo.View, _step.View, qb.View, ub.View, _listBase.View, _listCount.View, _listSlot.View,
                _live.View, pb.View, keys.View, slots.View,
                new ScanArgs { D = d, Kind = (int)kind, Quantized = Quantized ? 1 : 0, BlockStride = BlockStride });
            GpuSearch.Reduce(Device, nq, keys.View, slots.View, sb.View, meanLen, 0, sl, finK.View, finI.View, sl, 0, scratch);
        });
        finK.CopyTo(0, outKeys);
        finI.CopyTo(0, outSlots);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        _data?.Dispose();
        _codes?.Dispose();
        _lo.Dispose();
        _step.Dispose();
        _listBase.Dispose();
        _listCount.Dispose();
        _listSlot.Dispose();
        _live.Dispose();
    }
}
