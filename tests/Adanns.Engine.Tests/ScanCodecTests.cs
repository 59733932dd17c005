using Adanns.Engine.Clustering;
using Adanns.Engine.Evaluation;
using Adanns.Engine.Indexes;

namespace Adanns.Engine.Tests;

/// <summary>
/// SQ8 and float scan codecs in the codec pipeline (<see cref="IvfIndex"/>): float codes scored at a prefix are exact at
/// that prefix, SQ8 codes are close, query-time scan dims below d_s work, and every metric ranks by its own rule.
/// </summary>
public class ScanCodecTests
{
    private const int K = 10, D = IvfTestData.D;

    private static IvfIndex Build(VectorSet b, string spec, Metric metric) =>
        IvfIndex.Build(b, IndexSpec.Parse(spec), metric, new PqBuildOptions(new KMeansOptions(MaxIterations: 6, Seed: 5), Threads: 1));

    [Theory]
    [InlineData(Metric.Cosine, 32)]
    [InlineData(Metric.L2, 32)]
    [InlineData(Metric.InnerProduct, 32)]
    [InlineData(Metric.Cosine, 16)] // a query-time scan dim below the codes' 32
    [InlineData(Metric.L2, 16)]
    [InlineData(Metric.InnerProduct, 16)]
    public void FloatCodesProbingEveryListAreExactAtTheScanPrefix(Metric metric, int scanDim)
    {
        var (b, q) = IvfTestData.Make(seed: 21, n: 1200, nq: 20);
        using var owned = b;
        using var index = Build(b, "IVF8@16,Scan32,Spill", metric);
        var flat = new FlatIndex(b, metric);
        var p = new SearchParams { NProbe = 8, ScanDim = scanDim, Shortlist = K, Rerank = [] };
        var ids = new long[K];
        var scores = new float[K];
        var exactIds = new long[K];
        var exactScores = new float[K];
        for (int i = 0; i < 20; i++)
        {
            var query = q.AsSpan(i * D, D);
            index.Search(query, K, ids, scores, p, null, out var stats);
            flat.Search(query, K, exactIds, exactScores, dim: scanDim);
            Assert.Equal(exactIds, ids);
            for (int j = 0; j < K; j++)
                Assert.True(Math.Abs(exactScores[j] - scores[j]) <= 1e-4f * Math.Max(1f, Math.Abs(exactScores[j])), $"query {i} rank {j}: {scores[j]} vs {exactScores[j]}");
            Assert.Equal(2L * 1200, stats.VectorsScanned); // Spill: every vector sits in two lists, offered once
        }
    }

    [Theory]
    [InlineData(Metric.Cosine, 0.96)] // observed 0.990 (seeded data and build)
    [InlineData(Metric.L2, 0.97)]     // observed 1.000
    [InlineData(Metric.InnerProduct, 0.955)] // observed 0.985
    public void Sq8CodesRankCloseToExactAtTheScanPrefix(Metric metric, double floor)
    {
        var (b, q) = IvfTestData.Make(seed: 21, n: 1200, nq: 20);
        using var owned = b;
        using var index = Build(b, "IVF8@16,Scan32,SQ8,Spill", metric);
        Assert.Equal(ListCodec.Sq8, index.Codec);
        Assert.Equal(32, index.CodeBytes);
        var flat = new FlatIndex(b, metric);
        var r = index.SearchBatch(q, K, new SearchParams { NProbe = 8, Shortlist = K, Rerank = [] }, null, 1, out _);
        var exact = flat.SearchBatch(q, D, K, dim: 32, threads: 1);
        var truth = exact.Ids.Select(id => (int)id).ToArray();
        double recall = RetrievalMetrics.RecallAtK(r.Ids, K, truth, K, K);
        Assert.True(recall >= floor, $"{metric}: SQ8 recall@10 at the scan prefix {recall:F3}");
    }

    [Theory]
    [InlineData("IVF8@16,Scan32,SQ8,Spill,Prefix8@48,Rerank48/30,Rerank64")]
    [InlineData("IVF8@16,PQ16x4@32,Spill,Rerank64")]
    public void AProfileOverAnExternalSourceEqualsTheResidentOne(string spec)
    {
        // With an external source the profile's ground truth is one pass over the stored vectors (not one exact search
        // per query, which would read every vector once per query); the frontier must not change.
        var (b, _) = IvfTestData.Make(seed: 21, n: 1500, nq: 1);
        using var owned = b;
        using var resident = Build(b, spec, Metric.Cosine);
        using var external = Build(b, spec, Metric.Cosine);
        external.UseExternalVectors(new RowSource(b));
        var o = new ProfileOptions { HeldOutQueries = 60, NProbes = [1, 2, 4, 8], ShortlistMultiples = [3, 10], Threads = 1 };
        // The FLOPs frontier (points by FLOPs with rising recall) is deterministic; the profile also keeps the points on
        // the measured-time frontier, which depend on the machine's load, so those are not compared.
        static List<(double Flops, double Recall, int NProbe)> FlopsFrontier(ComputeProfile p)
        {
            var list = new List<(double, double, int)>();
            foreach (var pt in p.Points)
                if (list.Count == 0 || pt.Recall > list[^1].Item2) list.Add((pt.FlopsPerQuery, pt.Recall, pt.Params.NProbe!.Value));
            return list;
        }
        var a = FlopsFrontier(resident.Profile(o));
        var e = FlopsFrontier(external.Profile(o));
        Assert.Equal(a, e);
        Assert.True(a.Count >= 3, $"{a.Count} frontier points");
    }

    [Fact]
    public void ScanDimsOutsideTheCodesAreRejected()
    {
        var (b, _) = IvfTestData.Make(seed: 21, n: 600, nq: 1);
        using var owned = b;
        using var index = Build(b, "IVF8@16,Scan32,SQ8,Prefix8@48,Rerank48/20,Rerank64", Metric.L2);
        // With resident rows a scan deeper than the codes reads the rows' prefixes; beyond D, or without resident rows, it is refused.
        Assert.Equal(33, index.Resolve(new SearchParams { ScanDim = 33 }, K).ScanDim);
        Assert.Contains("[1, 64]", Assert.Throws<ArgumentOutOfRangeException>(() => index.Resolve(new SearchParams { ScanDim = 65 }, K)).Message);
        ((IvfIndex)index).UseExternalVectors(new RowSource(b));
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => index.Resolve(new SearchParams { ScanDim = 33 }, K));
        Assert.Contains("[1, 32]", e.Message);
        Assert.Equal(20, index.Resolve(new SearchParams { ScanDim = 20 }, K).ScanDim);
    }
}
