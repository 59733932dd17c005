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
        int parts = PartsFor(segLen, k);
        using var partK = new GpuBuffer<float>(device, (long)segments * parts * k, "partial top-k");
        using var partI = new GpuBuffer<int>(device, (long)segments * parts * k, "partial top-k");
        using var finK = new GpuBuffer<float>(device, (long)segments * k, "top-k");
        using var finI = new GpuBuffer<int>(device, (long)segments * k, "top-k");
        device.Run("top-k kernel", () =>
        {
            var K = device.Kernels;
            K.Select(segments * parts, kb.View, default, default, partK.View, partI.View,
                new SelectArgs { SegLen = segLen, Parts = parts, K = k, IdBase = 0, SkipEmpty = 0, OutSegStride = (long)parts * k });
            K.Select(segments, partK.View, partI.View, default, finK.View, finI.View,
                new SelectArgs { SegLen = (long)parts * k, Parts = 1, K = k, SkipEmpty = 1, OutSegStride = k });
        });
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
        // (256 MB on a GPU; small on the simulator so tests exercise several chunks and batches).
        int qb = Math.Min(nq, device.IsCuda ? 1024 : 64);
        long keyBudget = device.IsCuda ? 1L << 26 : 1L << 13;
        int chunk = (int)Math.Clamp(keyBudget / qb, Math.Min(rowCount, 64), rowCount);
        int chunks = (rowCount + chunk - 1) / chunk;
        int parts = PartsFor(chunk, k);
        using var keys = new GpuBuffer<float>(device, (long)qb * chunk, "distance tile");
        using var partK = new GpuBuffer<float>(device, (long)qb * parts * k, "partial top-k");
        using var partI = new GpuBuffer<int>(device, (long)qb * parts * k, "partial top-k");
        using var accK = new GpuBuffer<float>(device, (long)qb * chunks * k, "per-chunk top-k");
        using var accI = new GpuBuffer<int>(device, (long)qb * chunks * k, "per-chunk top-k");
        using var finK = new GpuBuffer<float>(device, (long)qb * k, "top-k");
        using var finI = new GpuBuffer<int>(device, (long)qb * k, "top-k");
        for (int q0 = 0; q0 < nq; q0 += qb)
        {
            int m = Math.Min(qb, nq - q0);
            var qv = queries.SubView((long)q0 * d, (long)m * d);
            device.Run("exact search kernels", () =>
            {
                var K = device.Kernels;
                for (int c = 0; c < chunks; c++)
                {
                    int r0 = c * chunk, rc = Math.Min(chunk, rowCount - r0);
                    int p = Math.Min(parts, PartsFor(rc, k));
                    LaunchDistance(device, qv, m, d, rows, rowStride, r0, rc, kind, terms, keys.View);
                    // Each (query, part) keeps its k best; then the parts of one chunk merge into the chunk's k.
                    K.Select(m * p, keys.View, default, default, partK.View, partI.View,
                        new SelectArgs { SegLen = rc, Parts = p, K = k, IdBase = r0, SkipEmpty = 0, OutSegStride = (long)p * k });
                    K.Select(m, partK.View, partI.View, default, accK.View, accI.View,
                        new SelectArgs { SegLen = (long)p * k, Parts = 1, K = k, SkipEmpty = 1, OutSegStride = (long)chunks * k, OutOffset = (long)c * k });
                }
                K.Select(m, accK.View, accI.View, default, finK.View, finI.View,
                    new SelectArgs { SegLen = (long)chunks * k, Parts = 1, K = k, SkipEmpty = 1, OutSegStride = k });
            });
            finK.CopyTo(0, outKeys.Slice(q0 * k, m * k));
            finI.CopyTo(0, outIds.Slice(q0 * k, m * k));
        }
    }

    internal static void LaunchDistance(GpuDevice device, ArrayView<float> queries, int nq, int d, ArrayView<float> rows, long rowStride,
        int rowStart, int rowCount, KeyKind kind, ArrayView<float> terms, ArrayView<float> keys)
    {
        int t = device.Tile;
        var config = new KernelConfig(new Index2D((rowCount + t - 1) / t, (nq + t - 1) / t), new Index2D(t, t));
        device.Kernels.Distance(config, queries, rows, terms, keys,
            new DistanceArgs { Nq = nq, RowCount = rowCount, D = d, Kind = (int)kind, RowStart = rowStart, RowStride = rowStride });
    }

    /// <summary>Parts per segment for the first selection pass: enough threads to fill a GPU, each scanning ≥ ~1k keys.</summary>
    internal static int PartsFor(long segLen, int k) => (int)Math.Clamp(segLen / Math.Max(1024, 4L * k), 1, 128);

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
