using ILGPU;
using ILGPU.Runtime;

namespace Adanns.Kernels.Gpu;

/// <summary>
/// Exact search on a GPU: the tiled distance kernel (query batch × rows at prefix d) and the device top-k
/// selection, composed so that only k results per query come back to the host. Keys follow
/// <see cref="KeyKind"/> (smaller is better; per-query constants such as ‖q‖² are left to the caller).
/// </summary>
public static class GpuSearch
{
    /// <summary>
    /// keys (nq×rowCount, row-major) = key(queries[i][:d], rows[rowStart + r][:d]) for every query i and row r.
    /// <paramref name="queries"/>: nq×d row-major; <paramref name="rows"/>: row-major with stride
    /// <paramref name="rowStride"/> ≥ d; <paramref name="terms"/>: one value per row of <paramref name="rows"/>
    /// (‖x[:d]‖² for L2, 1/‖x[:d]‖ for cosine; null for inner product).
    /// </summary>
    public static void DistanceKeys(GpuDevice device, ReadOnlySpan<float> queries, int d, GpuBuffer<float> rows, int rowStride,
        int rowStart, int rowCount, KeyKind kind, GpuBuffer<float>? terms, Span<float> keys)
    {
        ArgumentNullException.ThrowIfNull(device);
        int nq = CheckQueries(queries, d);
        CheckRows(rows, rowStride, d, rowStart + rowCount, kind, terms);
        if (keys.Length < (long)nq * rowCount) throw new ArgumentException($"keys must hold {nq}×{rowCount} entries.", nameof(keys));
        if (nq == 0 || rowCount == 0) return;
        using var q = GpuBuffer<float>.Upload(device, queries, "queries");
        using var outKeys = new GpuBuffer<float>(device, (long)nq * rowCount, "distance matrix");
        device.Run("distance kernel", () =>
            LaunchDistance(device, q.View, nq, d, rows.View, rowStride, rowStart, rowCount, kind, TermsView(terms), outKeys.View));
        outKeys.CopyTo(0, keys[..(nq * rowCount)]);
    }

    /// <summary>
    /// The k smallest keys of each of the keys.Length / segLen segments of <paramref name="keys"/>, best first
    /// (ties: lower position), with their positions in the segment; padded with (+∞, −1). NaN keys are skipped.
    /// Outputs are segments×k row-major. k ≤ <see cref="GpuDevice.MaxK"/>.
    /// </summary>
    public static void SelectTopK(GpuDevice device, ReadOnlySpan<float> keys, int segLen, int k, Span<float> outKeys, Span<int> outIds)
    {
        ArgumentNullException.ThrowIfNull(device);
        CheckK(k);
        if (segLen <= 0 || keys.Length % segLen != 0)
            throw new ArgumentException($"Key count {keys.Length} is not a positive multiple of the segment length {segLen}.", nameof(segLen));
        int segments = keys.Length / segLen;
        if (outKeys.Length < (long)segments * k || outIds.Length < (long)segments * k)
            throw new ArgumentException($"Outputs must hold {segments}×{k} entries.");
        using var kb = GpuBuffer<float>.Upload(device, keys, "keys");
        using var finK = new GpuBuffer<float>(device, (long)segments * k, "top-k");
        using var finI = new GpuBuffer<int>(device, (long)segments * k, "top-k");
        using var scratch = new SelectScratch(device, segments, segLen, k);
        device.Run("top-k kernels", () =>
            Reduce(device, segments, kb.View, default, default, segLen, 0, k, finK.View, finI.View, k, 0, scratch));
        finK.CopyTo(0, outKeys[..(segments * k)]);
        finI.CopyTo(0, outIds[..(segments * k)]);
    }

    /// <summary>
    /// Exact k-NN: for each query (nq×d row-major) the k rows of <paramref name="rows"/> (rowCount rows, stride
    /// <paramref name="rowStride"/>) with the smallest keys, best first (ties: lower row), as keys and row indices
    /// (nq×k row-major, padded with (+∞, −1)). The distance matrix is produced and reduced tile by tile on the device.
    /// </summary>
    public static void Nearest(GpuDevice device, ReadOnlySpan<float> queries, int d, GpuBuffer<float> rows, int rowStride, int rowCount,
        KeyKind kind, GpuBuffer<float>? terms, int k, Span<float> outKeys, Span<int> outIds)
    {
        ArgumentNullException.ThrowIfNull(device);
        int nq = CheckQueries(queries, d);
        CheckRows(rows, rowStride, d, rowCount, kind, terms);
        CheckK(k);
        if (outKeys.Length < (long)nq * k || outIds.Length < (long)nq * k)
            throw new ArgumentException($"Outputs must hold {nq}×{k} entries.");
        if (nq == 0) return;
        using var q = GpuBuffer<float>.Upload(device, queries, "queries");
        NearestCore(device, q.View, nq, d, rows.View, rowStride, rowCount, kind, TermsView(terms), k, outKeys, outIds);
    }

    /// <summary><see cref="Nearest"/> for queries already on the device (k-means points).</summary>
    internal static void NearestCore(GpuDevice device, ArrayView<float> queries, int nq, int d, ArrayView<float> rows, long rowStride, int rowCount,
        KeyKind kind, ArrayView<float> terms, int k, Span<float> outKeys, Span<int> outIds)
    {
        if (rowCount == 0)
        {
            outKeys[..(nq * k)].Fill(float.PositiveInfinity);
            outIds[..(nq * k)].Fill(-1);
            return;
        }
        // Query batch × row chunk: the distance matrix of one step stays within a fixed slice of device memory
        // (256 MB on a GPU; small on the simulator so tests exercise several chunks and batches). Few rows (k-means
        // centroids) mean large query batches, so a k-means assignment takes a handful of launches.
        long keyBudget = device.IsCuda ? 1L << 26 : 1L << 13;
        int qb = (int)Math.Min(nq, Math.Max(device.IsCuda ? 1024 : 64, keyBudget / rowCount));
        int chunk = (int)Math.Clamp(keyBudget / qb, Math.Min(rowCount, 64), rowCount);
        int chunks = (rowCount + chunk - 1) / chunk;
        using var keys = new GpuBuffer<float>(device, (long)qb * chunk, "distance tile");
        using var accK = new GpuBuffer<float>(device, (long)qb * chunks * k, "per-chunk top-k");
        using var accI = new GpuBuffer<int>(device, (long)qb * chunks * k, "per-chunk top-k");
        using var finK = new GpuBuffer<float>(device, (long)qb * k, "top-k");
        using var finI = new GpuBuffer<int>(device, (long)qb * k, "top-k");
        using var scratch = new SelectScratch(device, qb, Math.Max(chunk, (long)chunks * k), k);
        for (int q0 = 0; q0 < nq; q0 += qb)
        {
            int m = Math.Min(qb, nq - q0);
            var qv = queries.SubView((long)q0 * d, (long)m * d);
            device.Run("exact search kernels", () =>
            {
                for (int c = 0; c < chunks; c++)
                {
                    int r0 = c * chunk, rc = Math.Min(chunk, rowCount - r0);
                    LaunchDistance(device, qv, m, d, rows, rowStride, r0, rc, kind, terms, keys.View);
                    // The chunk's k best per query land in slot c of the query's row of the accumulator.
                    Reduce(device, m, keys.View, default, default, rc, r0, k, accK.View, accI.View, (long)chunks * k, (long)c * k, scratch);
                }
                if (chunks > 1)
                    Reduce(device, m, accK.View, accI.View, default, (long)chunks * k, 0, k, finK.View, finI.View, k, 0, scratch);
            });
            var resK = chunks > 1 ? finK : accK;
            var resI = chunks > 1 ? finI : accI;
            resK.CopyTo(0, outKeys.Slice(q0 * k, m * k));
            resI.CopyTo(0, outIds.Slice(q0 * k, m * k));
        }
    }

    /// <summary>
    /// Top-k of <paramref name="segments"/> segments on the device, in passes: the first pass splits each segment into
    /// interleaved parts (one thread each, enough threads to fill the device), each later pass merges the parts' lists
    /// of k in groups, until one list per segment is written at outOffset + s·outSegStride. Segments are regular
    /// (segLen each) unless <paramref name="segOffsets"/> is given; ids are implicit (idBase + position) unless
    /// <paramref name="ids"/> is given.
    /// </summary>
    internal static void Reduce(GpuDevice device, int segments, ArrayView<float> keys, ArrayView<int> ids, ArrayView<long> segOffsets, long segLen,
        int idBase, int k, ArrayView<float> outKeys, ArrayView<int> outIds, long outSegStride, long outOffset, SelectScratch scratch)
    {
        var K = device.Kernels;
        bool explicitIds = ids.Length > 0;
        long len = segLen;
        bool first = true;
        int turn = 0;
        while (true)
        {
            int parts = Parts(device, segments, len, k);
            bool last = parts == 1;
            var dstK = last ? outKeys : scratch.Keys(turn);
            var dstI = last ? outIds : scratch.Ids(turn);
            K.Select(segments * parts, keys, ids, first ? segOffsets : default, dstK, dstI, new SelectArgs
            {
                SegLen = len, Parts = parts, K = k, IdBase = first ? idBase : 0,
                // Padding (id −1) written by an earlier pass is dropped; explicit caller ids are never negative.
                SkipEmpty = first && !explicitIds ? 0 : 1,
                OutSegStride = last ? outSegStride : (long)parts * k,
                OutOffset = last ? outOffset : 0,
            });
            if (last) return;
            keys = scratch.Keys(turn);
            ids = scratch.Ids(turn);
            len = (long)parts * k;
            first = false;
            turn ^= 1;
        }
    }

    /// <summary>
    /// Parts per segment for one selection pass: enough threads to keep the device busy, each reading at least a few
    /// times k entries (so every pass shrinks the data several-fold) and at most 8,192.
    /// </summary>
    internal static int Parts(GpuDevice device, int segments, long segLen, int k)
    {
        long p = Math.Max((TargetThreads(device) + segments - 1) / segments, (segLen + 8191) / 8192);
        p = Math.Min(p, segLen / MinPerPart(device, k));
        return (int)Math.Clamp(p, 1, 1 << 20);
    }

    private static long MinPerPart(GpuDevice device, int k) => device.IsCuda ? Math.Max(256, 8L * k) : Math.Max(16, 2L * k);

    private static long TargetThreads(GpuDevice device) => device.IsCuda ? 1L << 17 : 64;

    /// <summary>
    /// Entries a pass of <see cref="Reduce"/> writes at most, for any segment count up to <paramref name="segments"/>
    /// and segment length up to <paramref name="maxSegLen"/>: m·Parts(m) ≤ T + m·(⌈L/8192⌉ + 1), and ≤ m·max(1, L/minPerPart);
    /// later passes write less than the first.
    /// </summary>
    internal static long ScratchEntries(GpuDevice device, int segments, long maxSegLen, int k)
    {
        long byThreads = TargetThreads(device) + segments * ((maxSegLen + 8191) / 8192 + 1);
        long byLength = segments * Math.Max(1, maxSegLen / MinPerPart(device, k));
        return Math.Max(1, Math.Min(byThreads, byLength) * k);
    }

    /// <summary>Two ping-pong buffers sized for the first (largest) pass of <see cref="Reduce"/>.</summary>
    internal sealed class SelectScratch : IDisposable
    {
        private readonly GpuBuffer<float>[] _keys;
        private readonly GpuBuffer<int>[] _ids;

        public SelectScratch(GpuDevice device, int segments, long maxSegLen, int k)
        {
            long size = ScratchEntries(device, segments, maxSegLen, k);
            _keys = [new GpuBuffer<float>(device, size, "top-k partials"), new GpuBuffer<float>(device, size, "top-k partials")];
            _ids = [new GpuBuffer<int>(device, size, "top-k partials"), new GpuBuffer<int>(device, size, "top-k partials")];
        }

        public ArrayView<float> Keys(int turn) => _keys[turn].View;
        public ArrayView<int> Ids(int turn) => _ids[turn].View;

        public void Dispose()
        {
            foreach (var b in _keys) b.Dispose();
            foreach (var b in _ids) b.Dispose();
        }
    }

    internal static void LaunchDistance(GpuDevice device, ArrayView<float> queries, int nq, int d, ArrayView<float> rows, long rowStride,
        int rowStart, int rowCount, KeyKind kind, ArrayView<float> terms, ArrayView<float> keys)
    {
        int t = device.Tile, span = t * GpuKernels.Block;
        var config = new KernelConfig(new Index2D((rowCount + span - 1) / span, (nq + span - 1) / span), new Index2D(t, t));
        device.Kernels.Distance(config, queries, rows, terms, keys,
            new DistanceArgs { Nq = nq, RowCount = rowCount, D = d, Kind = (int)kind, RowStart = rowStart, RowStride = rowStride });
    }

    internal static ArrayView<float> TermsView(GpuBuffer<float>? terms) => terms is null ? default : terms.View;

    internal static void CheckK(int k)
    {
        if (k < 1 || k > GpuDevice.MaxK)
            throw new ArgumentOutOfRangeException(nameof(k), k, $"GPU top-k supports 1 ≤ k ≤ {GpuDevice.MaxK}.");
    }

    private static int CheckQueries(ReadOnlySpan<float> queries, int d)
    {
        if (d <= 0) throw new ArgumentOutOfRangeException(nameof(d), d, "The dim must be positive.");
        if (queries.Length % d != 0) throw new ArgumentException($"Query data length {queries.Length} is not a multiple of d = {d}.", nameof(queries));
        return queries.Length / d;
    }

    private static void CheckRows(GpuBuffer<float> rows, int rowStride, int d, long rowsNeeded, KeyKind kind, GpuBuffer<float>? terms)
    {
        ArgumentNullException.ThrowIfNull(rows);
        if (rowStride < d) throw new ArgumentOutOfRangeException(nameof(rowStride), rowStride, $"Row stride must be ≥ d = {d}.");
        if (rowsNeeded > 0 && (rowsNeeded - 1) * rowStride + d > rows.Length)
            throw new ArgumentException($"{rowsNeeded} rows of stride {rowStride} need more than the buffer's {rows.Length} floats.", nameof(rows));
        if (kind != KeyKind.InnerProduct && (terms is null || terms.Length < rowsNeeded))
            throw new ArgumentException($"{kind} keys need one row term per row ({rowsNeeded}).", nameof(terms));
    }
}
