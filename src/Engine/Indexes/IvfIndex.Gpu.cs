using Adanns.Kernels;
using Adanns.Kernels.Gpu;

namespace Adanns.Engine.Indexes;

public sealed partial class IvfIndex
{
    private readonly Lock _gpuGate = new();
    private ComputeDevice _device;
    private GpuListStore? _gpuStore;
    private long _gpuStoreVersion = -1;
    private long _writeVersion;

    /// <summary>
    /// Where <see cref="SearchBatch(ReadOnlySpan{float}, int, Span{long}, Span{float}, SearchParams?, int, out SearchStats)"/>
    /// scans the probed lists: <see cref="ComputeDevice.Cpu"/> (SIMD, the default) or a GPU
    /// (<see cref="ComputeDevice.Auto"/> falls back to the CPU without CUDA; <see cref="ComputeDevice.Cuda"/> throws
    /// <see cref="GpuException"/>). Not saved with the index.
    /// </summary>
    /// <remarks>
    /// On a GPU the scan stores of all lists live in device memory (copied on first use and again after writes); the
    /// batch is scanned list by list with the queries that probe each list, and each query's shortlist is selected on the
    /// device. Centroid ranking and the rerank stages run on the CPU, as do configurations the device copy cannot
    /// serve: exact search, scans deeper than <see cref="ScanStoreDims"/>, and shortlists above
    /// <see cref="GpuDevice.MaxK"/>. Single-query <c>Search</c> always runs on the CPU (one query cannot fill a GPU).
    /// Set it while no search runs: changing it frees the device copy a running search may be reading.
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

    /// <summary>The device copy of the lists when this search can run there; null for the CPU path.</summary>
    private GpuListStore? GpuScanStore(in ResolvedSearch r)
    {
        if (_device == ComputeDevice.Cpu || r.Exact || r.ScanDim > ScanStoreDims || r.Shortlist > GpuDevice.MaxK) return null;
        lock (_gpuGate)
        {
            if (_gpuStore is not null && _gpuStoreVersion == _writeVersion) return _gpuStore;
            var device = GpuDevice.Get(_device);
            if (device is null) return null; // Auto without CUDA
            ReleaseGpuStore();
            var sq = ScanQuantizer;
            _gpuStore = new GpuListStore(device, ScanStoreDims, sq is null ? default : sq.Lo, sq is null ? default : sq.Step, NList, l =>
            {
                var list = _lists[l];
                var live = new bool[list.Count];
                for (int i = 0; i < live.Length; i++) live[i] = list.Ids[i] >= 0;
                return new GpuListData(list.Count, list.Blocks, list.Codes, live);
            });
            _gpuStoreVersion = _writeVersion;
            return _gpuStore;
        }
    }

    /// <summary>
    /// Batch search with the list scan on the device: centroids ranked on the CPU (in parallel), one device scan for the
    /// whole batch, then each query's shortlist reranked and emitted by the same <c>Finish</c> as the CPU path.
    /// </summary>
    private void SearchBatchGpu(GpuListStore store, ReadOnlySpan<float> queries, int nq, int k, ResolvedSearch r, int threads,
        Span<long> ids, Span<float> scores, out SearchStats stats)
    {
        int D = Dimension, np = r.NProbe, ds = r.ScanDim, sl = r.Shortlist;
        var q = new float[(long)nq * D];
        var scan = new float[(long)nq * ds];
        var probes = new int[(long)nq * np];
        var qIn = queries.ToArray();
        var starts = ListStarts();
        var rr = r;
        Parallel.For(0, nq, new ParallelOptions { MaxDegreeOfParallelism = threads }, i =>
        {
            var s = t_scratch ??= new Scratch();
            var qi = q.AsSpan(i * D, D);
            PrepareQuery(qIn.AsSpan(i * D, D), qi);
            var pr = probes.AsSpan(i * np, np);
            int probed = RankCentroids(qi, rr.CoarseDim, np, pr, s);
            pr[probed..].Fill(-1);
            // The CPU scan's keys use the raw prefix (cosine divides by the row norm only; ‖q‖ is a constant).
            qi[..ds].CopyTo(scan.AsSpan(i * ds, ds));
        });

        var kind = Metric switch { Metric.L2 => KeyKind.L2, Metric.Cosine => KeyKind.Cosine, _ => KeyKind.InnerProduct };
        var keys = new float[(long)nq * sl];
        var slots = new int[(long)nq * sl];
        store.Scan(scan, ds, probes, np, kind, sl, keys, slots);

        var idArr = new long[(long)nq * k];
        var scoreArr = new float[(long)nq * k];
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
            var sk = keys.AsSpan(i * sl, sl);
            var ss = slots.AsSpan(i * sl, sl);
            int found = 0;
            while (found < sl && ss[found] >= 0) found++;
            Finish(q.AsSpan(i * D, D), k, rr, sk[..found], ss[..found], starts, idArr.AsSpan(i * k, k), scoreArr.AsSpan(i * k, k), s, ref local);
            return local;
        }, local => { lock (gate) total.Add(local); });
        idArr.CopyTo(ids);
        scoreArr.CopyTo(scores);
        stats = total;
    }
}
