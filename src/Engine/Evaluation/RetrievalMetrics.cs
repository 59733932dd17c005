namespace Adanns.Engine.Evaluation;

/// <summary>
/// Accuracy of search results against exact ground truth or labels. Result and truth matrices are row-major
/// (one row per query); ids −1 in results count as misses.
/// </summary>
public static class RetrievalMetrics
{
    /// <summary>
    /// recall@k = |top-k found ∩ top-k true| / k, averaged over queries (ann-benchmarks' "k@k").
    /// </summary>
    /// <param name="found">nq × foundStride result ids.</param>
    /// <param name="foundStride">Results per query in <paramref name="found"/> (≥ k).</param>
    /// <param name="truth">nq × truthStride exact neighbour ids, best first.</param>
    /// <param name="truthStride">Truth entries per query (≥ k).</param>
    /// <param name="k">Cut-off.</param>
    public static double RecallAtK(ReadOnlySpan<long> found, int foundStride, ReadOnlySpan<int> truth, int truthStride, int k)
    {
        int nq = CheckShapes(found.Length, foundStride, truth.Length, truthStride, k);
        if (nq == 0) return 0;
        long hits = 0;
        for (int q = 0; q < nq; q++)
        {
            var t = truth.Slice(q * truthStride, k);
            var f = found.Slice(q * foundStride, k);
            for (int i = 0; i < k; i++)
            {
                long id = f[i];
                if (id < 0) continue;
                // k is small (≤ 100): a linear probe beats building a set.
                for (int j = 0; j < k; j++)
                    if (t[j] == id) { hits++; break; }
            }
        }
        return (double)hits / ((long)nq * k);
    }

    /// <summary>Fraction of queries whose first result's label equals the query's label (1-NN classification).</summary>
    public static double OneNnAccuracy(ReadOnlySpan<long> found, int foundStride, ReadOnlySpan<int> baseLabels, ReadOnlySpan<int> queryLabels)
    {
        if (foundStride <= 0) throw new ArgumentOutOfRangeException(nameof(foundStride));
        int nq = queryLabels.Length;
        if (found.Length < (long)nq * foundStride)
            throw new ArgumentException($"Results hold {found.Length} ids; {nq} queries × {foundStride} needed.");
        if (nq == 0) return 0;
        int correct = 0;
        for (int q = 0; q < nq; q++)
        {
            long id = found[q * foundStride];
            if (id >= 0 && id < baseLabels.Length && baseLabels[(int)id] == queryLabels[q]) correct++;
        }
        return (double)correct / nq;
    }

    /// <summary>
    /// mAP@k with label relevance (a result is relevant when its label equals the query's): per query,
    /// AP@k = Σᵢ P@i·relᵢ / Σᵢ relᵢ over the top k (0 when nothing relevant is retrieved), then averaged.
    /// This is the retrieval mAP@k reported by the MRL paper.
    /// </summary>
    public static double MeanAveragePrecisionAtK(ReadOnlySpan<long> found, int foundStride, ReadOnlySpan<int> baseLabels, ReadOnlySpan<int> queryLabels, int k)
    {
        if (k <= 0 || k > foundStride) throw new ArgumentOutOfRangeException(nameof(k), k, $"k must be in [1, {foundStride}].");
        int nq = queryLabels.Length;
        if (found.Length < (long)nq * foundStride)
            throw new ArgumentException($"Results hold {found.Length} ids; {nq} queries × {foundStride} needed.");
        if (nq == 0) return 0;
        double sum = 0;
        for (int q = 0; q < nq; q++)
        {
            int relevant = 0;
            double ap = 0;
            for (int i = 0; i < k; i++)
            {
                long id = found[q * foundStride + i];
                if (id >= 0 && id < baseLabels.Length && baseLabels[(int)id] == queryLabels[q])
                {
                    relevant++;
                    ap += (double)relevant / (i + 1);
                }
            }
            sum += relevant > 0 ? ap / relevant : 0;
        }
        return sum / nq;
    }

    private static int CheckShapes(int foundLength, int foundStride, int truthLength, int truthStride, int k)
    {
        if (k <= 0) throw new ArgumentOutOfRangeException(nameof(k), k, "k must be at least 1.");
        if (foundStride < k) throw new ArgumentException($"Results hold {foundStride} per query; recall@{k} needs at least {k}.");
        if (truthStride < k) throw new ArgumentException($"Ground truth holds {truthStride} per query; recall@{k} needs at least {k}.");
        int nq = foundLength / foundStride;
        if (truthLength / truthStride < nq)
            throw new ArgumentException($"Ground truth has {truthLength / truthStride} queries; results have {nq}.");
        return nq;
    }
}
