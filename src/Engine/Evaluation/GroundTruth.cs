using Adanns.Engine.Indexes;

namespace Adanns.Engine.Evaluation;

/// <summary>Exact neighbours for evaluation, computed with <see cref="FlatIndex"/> at the full dimension.</summary>
public static class GroundTruth
{
    /// <summary>Default depth: enough for recall@k up to 100 and for rerank studies.</summary>
    public const int DefaultDepth = 100;

    /// <summary>
    /// Top-<paramref name="depth"/> exact neighbour ids of each query (nq×depth row-major, best first, −1 where
    /// the base has fewer rows). <paramref name="queries"/> is nq×D row-major.
    /// </summary>
    public static int[] Compute(VectorSet baseVectors, ReadOnlySpan<float> queries, Metric metric, int depth = DefaultDepth, int threads = 0)
    {
        ArgumentNullException.ThrowIfNull(baseVectors);
        var index = new FlatIndex(baseVectors, metric);
        var r = index.SearchBatch(queries, baseVectors.Dimension, depth, threads: threads);
        var ids = new int[r.Ids.Length];
        for (int i = 0; i < ids.Length; i++)
            ids[i] = (int)r.Ids[i];
        return ids;
    }
}
