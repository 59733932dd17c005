using Adanns.Engine.Indexes;

namespace Adanns.Engine.Tests;

/// <summary>Shared seeded data and helpers for the IVF tests (small: the suite must stay fast).</summary>
internal static class IvfTestData
{
    public const int N = 4000, D = 64, NQ = 100, K = 10;

    public static (VectorSet Base, float[] Queries) Make(int seed = 101, int n = N, int d = D, int nq = NQ)
    {
        // Many overlapping clusters: hard enough that recall depends on every knob (nprobe, dims, shortlist).
        var ds = Data.SyntheticMatryoshka.Generate(new Data.SyntheticMatryoshka.Options(n, d, Clusters: 400, Queries: nq, Seed: seed, Noise: 1.2f));
        var q = ds.Queries.ToArray();
        ds.Queries.Dispose();
        return (ds.Base, q);
    }

    public static int[] Truth(VectorSet b, float[] queries, Metric metric, int k = K) =>
        Evaluation.GroundTruth.Compute(b, queries, metric, k, threads: 1);

    /// <summary>A plain IVF spec (float / SQ8 lists) built through the one pipeline with IVF build options.</summary>
    public static IvfIndex BuildIvf(VectorSet b, string spec, Metric metric, IvfBuildOptions? o = null, long[]? ids = null) =>
        BuildIvf(b, IndexSpec.Parse(spec), metric, o, ids);

    /// <summary>A plain IVF spec built through the one pipeline with IVF build options.</summary>
    public static IvfIndex BuildIvf(VectorSet b, IndexSpec spec, Metric metric, IvfBuildOptions? o = null, long[]? ids = null) =>
        (IvfIndex)VectorIndex.Build(b, spec, metric, new VectorIndexBuildOptions(Ivf: o ?? new IvfBuildOptions(), Ids: ids));

    public static double Recall(IvfIndex index, float[] queries, int[] truth, SearchParams? p, out SearchStats stats, int k = K)
    {
        var r = index.SearchBatch(queries, k, p, threads: 1, out stats);
        return Evaluation.RetrievalMetrics.RecallAtK(r.Ids, k, truth, k, k);
    }
}
