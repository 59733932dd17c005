using Adanns.Kernels.Gpu;

namespace Adanns.Engine.Indexes;

public sealed partial class IvfIndex
{
    private readonly Lock _gpuGate = new();
    private ComputeDevice _device;
    private GpuListStore? _gpuStore;
    private long _gpuStoreVersion = -1;

    /// <summary>
    /// Where a batch search scans the probed lists: <see cref="ComputeDevice.Cpu"/> (SIMD, the default) or a GPU
    /// (<see cref="ComputeDevice.Auto"/> falls back to the CPU without CUDA; <see cref="ComputeDevice.Cuda"/> throws
    /// <see cref="GpuException"/>). Not saved with the index.
    /// </summary>
    /// <remarks>
    /// On a GPU the SQ8 / float scan codes of all lists live in device memory (copied on first use and again after
    /// writes); the batch is scanned list by list with the queries that probe each list, and each query's shortlist is
    /// selected on the device. Centroid ranking and the rerank stages run on the CPU. Everything the device copy cannot
    /// serve runs on the CPU, explicitly (<see cref="BatchRunsOnDevice"/> tells which): PQ, 4-bit and RaBitQ codes,
    /// <c>Spill</c>, <c>Rot</c> with <c>Prefix8</c> (such a batch rotates its queries as one block), filters, exact search,
    /// scans deeper than the codes, and shortlists above <see cref="GpuDevice.MaxK"/>.
    /// Single-query <c>Search</c> always runs on the CPU (one query cannot fill a GPU). Set it while no search runs:
    /// changing it frees the device copy a running search may be reading.
    /// </remarks>
    public ComputeDevice Device
    {
        get => _device;
        set
        {
            if (!Enum.IsDefined(value)) throw new ArgumentOutOfRangeException(nameof(value), value, "Unknown device.");
            lock (_gpuGate)
            {
                _device = value;
                ReleaseGpuStore();
            }
        }
    }

    /// <summary>
    /// The device a batch search with <paramref name="p"/> (and <paramref name="filtered"/> or not) scans its lists on:
    /// the GPU's name when it runs there, otherwise "cpu".
    /// </summary>
    public string BatchRunsOnDevice(SearchParams? p = null, bool filtered = false)
    {
        var r = Resolve(p, 10);
        if (filtered || !ListMajor(r, null) || !GpuServes(r)) return "cpu";
        var device = GpuDevice.Get(_device);
        return device is null ? "cpu" : device.Name;
    }

    /// <summary>Frees the device copy of the lists (rebuilt on the next GPU batch search).</summary>
    public void ReleaseDeviceMemory()
    {
        lock (_gpuGate) ReleaseGpuStore();
    }

    private void ReleaseGpuStore()
    {
        _gpuStore?.Dispose();
        _gpuStore = null;
        _gpuStoreVersion = -1;
    }

    private bool GpuServes(in ResolvedSearch r) => _device != ComputeDevice.Cpu && r.Shortlist <= GpuDevice.MaxK;

    /// <summary>The device copy of the lists when this (list-major) batch can run there; null for the CPU path.</summary>
    private GpuListStore? GpuScanStore(in ResolvedSearch r)
    {
        if (!GpuServes(r)) return null;
        lock (_gpuGate)
        {
            if (_gpuStore is not null && _gpuStoreVersion == _writeVersion) return _gpuStore;
            var device = GpuDevice.Get(_device);
            if (device is null) return null; // Auto without CUDA
            ReleaseGpuStore();
            var sq = ScanQuantizer;
            _gpuStore = new GpuListStore(device, CodeDim, sq is null ? default : sq.Lo, sq is null ? default : sq.Step, NList, l =>
            {
                var list = _lists[l];
                var live = new bool[list.Count];
                for (int i = 0; i < live.Length; i++) live[i] = list.Slots[i] >= 0;
                int used = (list.Count + 15) / 16 * list.Tiles.BlockStride;
                return sq is null
                    ? new GpuListData(list.Count, list.Floats[..used].ToArray(), default, live)
                    : new GpuListData(list.Count, default, list.CodesMemory[..used], live);
            });
            _gpuStoreVersion = _writeVersion;
            return _gpuStore;
        }
    }

    /// <summary>
    /// Batch search with the list scan on the device: centroids ranked on the CPU (in parallel), one device scan for the
    /// whole batch, then each query's shortlist finished (8-bit stage, rerank, output) by the same code as the CPU path.
    /// </summary>
    private void SearchBatchGpu(GpuListStore store, float[] queries, int nq, int k, ResolvedSearch r, int threads, SearchResults results, out SearchStats stats)
    {
        int D = Dimension, np = r.NProbe, ds = r.ScanDim, sl = r.Shortlist;
        var q = new float[(long)nq * D];
        RotateQueries(queries.AsSpan(0, nq * D), nq, q);
        var scan = new float[(long)nq * ds];
        var probes = new int[(long)nq * np];
        var rr = r;
        Parallel.For(0, nq, new ParallelOptions { MaxDegreeOfParallelism = threads }, i =>
        {
            var s = t_scratch ??= new Scratch();
            var qi = q.AsSpan(i * D, D);
            var pr = probes.AsSpan(i * np, np);
            int probed = RankCentroids(qi, rr.CoarseDim, np, pr, s);
            pr[probed..].Fill(-1);
            // The CPU scan's keys use the raw prefix (cosine divides by the row norm only; ‖q‖ is a constant).
            qi[..ds].CopyTo(scan.AsSpan(i * ds, ds));
        });

        var kind = Metric switch { Metric.L2 => KeyKind.L2, Metric.Cosine => KeyKind.Cosine, _ => KeyKind.InnerProduct };
        var keys = new float[(long)nq * sl];
        var positions = new int[(long)nq * sl];
        store.Scan(scan, ds, probes, np, kind, sl, keys, positions);

        // The device numbers rows by list order (start of its list + position); the index's rows are slots.
        var starts = new int[NList + 1];
        for (int l = 0; l < NList; l++) starts[l + 1] = starts[l] + _lists[l].Count;
        var total = new SearchStats();
        var gate = new object();
        Parallel.For(0, nq, new ParallelOptions { MaxDegreeOfParallelism = threads }, () => new SearchStats(), (i, _, local) =>
        {
            var s = t_scratch ??= new Scratch();
            local.Queries++;
            local.Flops += (long)NList * rr.CoarseDim + RotationFlops;
            for (int j = 0; j < np; j++)
            {
                int l = probes[i * np + j];
                if (l < 0) continue;
                local.ListsProbed++;
                local.VectorsScanned += _lists[l].Count;
                local.Flops += (long)_lists[l].Count * ds;
            }
            var shortKeys = s.ShortKeys(sl);
            var shortSlots = s.ShortIds(sl);
            int found = 0;
            for (; found < sl && positions[i * sl + found] >= 0; found++)
            {
                int g = positions[i * sl + found];
                int l = FindList(starts, g);
                shortKeys[found] = keys[i * sl + found];
                shortSlots[found] = _lists[l].Slots[g - starts[l]];
            }
            FinishShortlist(q.AsSpan(i * D, D), k, rr, shortKeys, shortSlots, found, results.Ids.AsSpan(i * k, k), results.Scores.AsSpan(i * k, k), s, ref local);
            return local;
        }, local => { lock (gate) total.Add(local); });
        stats = total;
    }

    /// <summary>The list holding device row <paramref name="row"/>: the last l with starts[l] ≤ row (starts ascending).</summary>
    private int FindList(int[] starts, int row)
    {
        int lo = 0, hi = NList - 1;
        while (lo < hi)
        {
            int mid = (lo + hi + 1) >> 1;
            if (starts[mid] <= row) lo = mid; else hi = mid - 1;
        }
        while (starts[lo + 1] <= row) lo++; // empty lists share their start with the next list
        return lo;
    }
}
