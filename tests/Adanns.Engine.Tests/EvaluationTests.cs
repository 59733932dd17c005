using Adanns.Engine.Data;
using Adanns.Engine.Evaluation;

namespace Adanns.Engine.Tests;

public class EvaluationTests
{
    [Fact]
    public void RecallCountsIntersectionOfTopK()
    {
        long[] found = [1, 2, 3, 9, 8, -1];
        int[] truth = [3, 2, 1, 7, 8, 9];
        Assert.Equal(1.0, RetrievalMetrics.RecallAtK(found.AsSpan(0, 3), 3, truth.AsSpan(0, 3), 3, 3));
        Assert.Equal(5.0 / 6, RetrievalMetrics.RecallAtK(found, 3, truth, 3, 3), 10);
        Assert.Equal(0.0, RetrievalMetrics.RecallAtK(found, 3, truth, 3, 1), 10);
        Assert.Equal(0.5, RetrievalMetrics.RecallAtK([3, 0, 0, 1, 0, 0], 3, truth, 3, 1), 10);
        Assert.Throws<ArgumentException>(() => RetrievalMetrics.RecallAtK(found, 3, truth, 3, 4));
    }

    [Fact]
    public void OneNnAccuracyAndMapUseLabels()
    {
        int[] baseLabels = [0, 1, 1, 0];
        int[] queryLabels = [1, 0];
        long[] found = [1, 0, 2, /* q1 */ 1, 3, 0];
        Assert.Equal(0.5, RetrievalMetrics.OneNnAccuracy(found, 3, baseLabels, queryLabels));
        // q0: relevant at 1 and 3 → (1/1 + 2/3)/2; q1: relevant at 2 and 3 → (1/2 + 2/3)/2.
        double expected = ((1 + 2.0 / 3) / 2 + (0.5 + 2.0 / 3) / 2) / 2;
        Assert.Equal(expected, RetrievalMetrics.MeanAveragePrecisionAtK(found, 3, baseLabels, queryLabels, 3), 10);
    }

    [Fact]
    public void SyntheticDataIsDeterministicUnitNormAndLabelled()
    {
        var o = new SyntheticMatryoshka.Options(500, 32, Clusters: 7, Queries: 20, Seed: 3);
        using var a = SyntheticMatryoshka.Generate(o);
        using var b = SyntheticMatryoshka.Generate(o);
        Assert.Equal(500, a.Base.Count);
        Assert.Equal(20, a.Queries.Count);
        Assert.Equal(a.Base.ToArray(), b.Base.ToArray());
        Assert.Equal(a.QueryLabels, b.QueryLabels);
        Assert.All(a.BaseLabels, l => Assert.InRange(l, 0, 6));
        for (int i = 0; i < a.Base.Count; i++)
            Assert.Equal(1.0, Math.Sqrt(Kernels.VectorMath.NormSquared(a.Base.Row(i))), 4);
        using var c = SyntheticMatryoshka.Generate(o with { Seed = 4 });
        Assert.NotEqual(a.Base.ToArray(), c.Base.ToArray());
    }

    [Fact]
    public void SyntheticEnergyDecaysWithDimension()
    {
        using var ds = SyntheticMatryoshka.Generate(new SyntheticMatryoshka.Options(2000, 64, Queries: 0));
        double head = 0, tail = 0;
        for (int i = 0; i < ds.Base.Count; i++)
        {
            var r = ds.Base.Row(i);
            for (int j = 0; j < 8; j++) head += r[j] * r[j];
            for (int j = 56; j < 64; j++) tail += r[j] * r[j];
        }
        Assert.True(head > 4 * tail, $"head energy {head} vs tail {tail}");
    }
}
