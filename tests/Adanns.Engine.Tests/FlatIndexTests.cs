using Adanns.Engine.Indexes;

namespace Adanns.Engine.Tests;

public class FlatIndexTests
{
    /// <summary>Naive exact search in double precision: (id, score) best first, ties by lower id.</summary>
    private static IEnumerable<(long Id, double Score)> Rank((long Id, double Score)[] all, Metric metric) =>
        metric == Metric.L2
            ? all.OrderBy(p => p.Score).ThenBy(p => p.Id)
            : all.OrderByDescending(p => p.Score).ThenBy(p => p.Id);

    private static (long Id, double Score)[] NaiveScores(float[] rows, int D, ReadOnlySpan<float> q, Metric metric, int d)
    {
        int n = rows.Length / D;
        var all = new (long Id, double Score)[n];
        for (int i = 0; i < n; i++)
        {
            double dot = 0, xx = 0, qq = 0, l2 = 0;
            for (int j = 0; j < d; j++)
            {
                double x = rows[i * D + j], y = q[j];
                dot += x * y; xx += x * x; qq += y * y; l2 += (x - y) * (x - y);
            }
            all[i] = (i, metric switch
            {
                Metric.L2 => l2,
                Metric.InnerProduct => dot,
                _ => xx > 0 && qq > 0 ? dot / Math.Sqrt(xx * qq) : 0,
            });
        }
        return all;
    }

    /// <summary>
    /// Ids must match the naive ranking except where two candidates' scores are within float noise of each
    /// other (then either order is correct); scores must match within tolerance.
    /// </summary>
    private static void AssertMatches((long Id, double Score)[] all, Metric metric, int k, ReadOnlySpan<long> ids, ReadOnlySpan<float> scores, string ctx)
    {
        var expected = Rank(all, metric).Take(k).ToArray();
        for (int j = 0; j < expected.Length; j++)
        {
            Assert.True(Math.Abs(scores[j] - expected[j].Score) <= 1e-4 * (1 + Math.Abs(expected[j].Score)), $"{ctx} rank {j}: score {scores[j]} vs {expected[j].Score}");
            if (ids[j] != expected[j].Id)
            {
                // Accept only if the naive scores of both ids are essentially tied.
                var other = all[ids[j]];
                Assert.True( Math.Abs(other.Score - expected[j].Score) <= 1e-4 * (1 + Math.Abs(other.Score)),
                    $"{ctx} rank {j}: id {ids[j]} vs {expected[j].Id}");
            }
        }
    }

    [Theory]
    [InlineData(Metric.L2)]
    [InlineData(Metric.InnerProduct)]
    [InlineData(Metric.Cosine)]
    public void SingleAndBatchMatchNaiveAtSeveralPrefixDims(Metric metric)
    {
        const int D = 48, n = 700, nq = 13, k = 10;
        var rows = TestData.RandomRows(n, D, 21);
        var queries = TestData.RandomRows(nq, D, 22);
        using var set = VectorSet.FromRows(rows, D);
        var index = new FlatIndex(set, metric);
        foreach (int d in new[] { 1, 5, 16, 17, 33, 48 })
        {
            var batch = index.SearchBatch(queries, D, k, d, threads: 1);
            var ids = new long[k];
            var scores = new float[k];
            for (int qi = 0; qi < nq; qi++)
            {
                var q = queries.AsSpan(qi * D, D);
                var all = NaiveScores(rows, D, q, metric, d);
                AssertMatches(all, metric, k, batch.IdsOf(qi), batch.ScoresOf(qi), $"{metric} d={d} batch q={qi}");
                index.Search(q, k, ids, scores, d);
                AssertMatches(all, metric, k, ids, scores, $"{metric} d={d} single q={qi}");
            }
        }
    }

    [Fact]
    public void ThreadCountDoesNotChangeResults()
    {
        const int D = 32, n = 20_000, nq = 24, k = 7;
        var rows = TestData.RandomRows(n, D, 23);
        var queries = TestData.RandomRows(nq, D, 24);
        using var set = VectorSet.FromRows(rows, D);
        var index = new FlatIndex(set, Metric.L2);
        var one = index.SearchBatch(queries, D, k, 0, threads: 1);
        var two = index.SearchBatch(queries, D, k, 0, threads: 2);
        Assert.Equal(one.Ids, two.Ids);
        Assert.Equal(one.Scores, two.Scores);
        var ids1 = new long[k]; var s1 = new float[k];
        var ids2 = new long[k]; var s2 = new float[k];
        for (int q = 0; q < nq; q++)
        {
            index.Search(queries.AsSpan(q * D, D), k, ids1, s1, threads: 1);
            index.Search(queries.AsSpan(q * D, D), k, ids2, s2, threads: 2);
            Assert.Equal(ids1, ids2);
            Assert.Equal(one.IdsOf(q).ToArray(), ids1);
        }
    }

    [Fact]
    public void FewerRowsThanKArePaddedWithMinusOne()
    {
        using var set = VectorSet.FromRows([1, 0, 0, 1, 1, 1], 2);
        var l2 = new FlatIndex(set, Metric.L2);
        var ids = new long[5];
        var scores = new float[5];
        l2.Search([1, 0], 5, ids, scores);
        Assert.Equal([0L, 2, 1, -1, -1], ids);
        Assert.Equal(float.PositiveInfinity, scores[4]);
        var ip = new FlatIndex(set, Metric.InnerProduct);
        ip.Search([1, 0], 5, ids, scores);
        Assert.Equal(-1, ids[3]);
        Assert.Equal(float.NegativeInfinity, scores[3]);
    }

    [Fact]
    public void QueryOfPrefixLengthIsAccepted()
    {
        var rows = TestData.RandomRows(100, 16, 25);
        using var set = VectorSet.FromRows(rows, 16);
        var index = new FlatIndex(set, Metric.InnerProduct);
        var q = TestData.RandomRows(1, 16, 26);
        var a = new long[5]; var sa = new float[5];
        var b = new long[5]; var sb = new float[5];
        index.Search(q, 5, a, sa, dim: 8);
        index.Search(q.AsSpan(0, 8), 5, b, sb, dim: 8);
        Assert.Equal(a, b);
    }

    [Fact]
    public void BadInputIsRejectedWithClearErrors()
    {
        using var set = VectorSet.FromRows(TestData.RandomRows(10, 8, 27), 8);
        var index = new FlatIndex(set, Metric.L2);
        var ids = new long[3]; var scores = new float[3];
        Assert.Contains("7 dims", Assert.Throws<ArgumentException>(() => index.Search(new float[7], 3, ids, scores)).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => index.Search(new float[8], 0, ids, scores));
        Assert.Throws<ArgumentOutOfRangeException>(() => index.Search(new float[8], 3, ids, scores, dim: 9));
        Assert.Throws<ArgumentException>(() => index.Search(new float[8], 4, ids, scores));
        var nan = new float[8]; nan[3] = float.NaN;
        Assert.Contains("NaN", Assert.Throws<ArgumentException>(() => index.Search(nan, 3, ids, scores)).Message);
        Assert.Throws<ArgumentException>(() => index.SearchBatch(new float[12], 8, 3));
    }

    [Fact]
    public void EmptyIndexReturnsOnlyPadding()
    {
        using var set = new VectorSet(4);
        var index = new FlatIndex(set, Metric.Cosine);
        var r = index.SearchBatch(new float[8], 4, 2);
        Assert.All(r.Ids, id => Assert.Equal(-1, id));
    }

    [Fact]
    public void SingleQuerySearchAllocatesNothing()
    {
        var rows = TestData.RandomRows(5000, 64, 28);
        using var set = VectorSet.FromRows(rows, 64);
        var index = new FlatIndex(set, Metric.Cosine);
        var q = TestData.RandomRows(1, 64, 29);
        var ids = new long[10]; var scores = new float[10];
        for (int i = 0; i < 5; i++) index.Search(q, 10, ids, scores, dim: 32, threads: 1); // warm caches and scratch
        Assert.Equal(0, Allocations.LeastOfThreeRounds(() =>
        {
            for (int i = 0; i < 20; i++) index.Search(q, 10, ids, scores, dim: 32, threads: 1);
        }));
    }
}
