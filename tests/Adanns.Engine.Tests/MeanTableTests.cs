using Adanns.Engine.Indexes;

namespace Adanns.Engine.Tests;

/// <summary>
/// The probe table of a plain spec's running list means (ranked by every probe, and by any spec's probes above d_c) is
/// brought up to date row by row after writes: it must equal the table written from scratch from the same sums, bit for
/// bit, after adds, removals and compaction, and a write must rewrite only the rows of the lists it changed.
/// </summary>
public class MeanTableTests
{
    [Theory]
    [InlineData("IVF16,Scan32", "cosine")]
    [InlineData("IVF16@16,Scan32,SQ8", "l2")]
    [InlineData("IVF16@16,PQ8@32,Rerank64", "innerproduct")] // a codec spec: its means serve probes above d_c
    public void AfterAddsRemovalsAndCompactTheTableEqualsOneWrittenFromScratch(string spec, string metricName)
    {
        const int N = 1500, K = 10, D = 64;
        var metric = Enum.Parse<Metric>(metricName, ignoreCase: true);
        var (b, q) = IvfTestData.Make(n: N + 200, nq: 5);
        using var owned = b;
        using var first = new VectorSet(D, N);
        for (int i = 0; i < N; i++) first.Add(b.Row(i));
        using var index = IvfIndex.Build(first, IndexSpec.Parse(spec), metric, PqIndexTests.Fast);
        var p = new SearchParams { CoarseDim = D, NProbe = 4 }; // d_c' = D: every spec ranks the means
        var ids = new long[K];
        var scores = new float[K];
        index.Search(q.AsSpan(0, D), K, ids, scores, p); // the first probe writes the whole table
        Assert.Equal(16, index.MeanRowsWritten);
        AssertTablesEqual(index);

        // One add: one row rewritten by the next probe (not 16).
        long before = index.MeanRowsWritten;
        index.Add(b.Row(N), N);
        index.Search(q.AsSpan(D, D), K, ids, scores, p);
        Assert.Equal(1, index.MeanRowsWritten - before);
        AssertTablesEqual(index);

        // Many adds and removals, a probe after each step: the table follows the sums exactly.
        var rng = new Random(7);
        for (int step = 0; step < 20; step++)
        {
            for (int i = 0; i < 5; i++)
            {
                long id = N + 1 + step * 5 + i;
                index.Add(b.Row((int)id), id);
            }
            for (int i = 0; i < 4; i++) index.Remove(rng.Next(N));
            index.Search(q.AsSpan((step % 5) * D, D), K, ids, scores, p);
            AssertTablesEqual(index);
        }

        // Compaction moves positions, not sums: no row is rewritten.
        before = index.MeanRowsWritten;
        index.Compact();
        index.Search(q.AsSpan(0, D), K, ids, scores, p);
        Assert.Equal(before, index.MeanRowsWritten);
        AssertTablesEqual(index);

        // The running sums themselves: the table equals, to rounding, the one from sums recomputed from the live rows.
        var incremental = index.MeanTablesForTest().Current;
        index.RecomputeMeansForTest();
        var recomputed = index.MeanTablesForTest().Current;
        Assert.Equal(recomputed.Length, incremental.Length);
        for (int i = 0; i < recomputed.Length; i++) Assert.True(Math.Abs(recomputed[i] - incremental[i]) <= 1e-5f * (1 + Math.Abs(recomputed[i])), $"entry {i}: {incremental[i]} vs {recomputed[i]}");
    }

    private static void AssertTablesEqual(IvfIndex index)
    {
        var (current, fresh) = index.MeanTablesForTest();
        Assert.Equal(fresh, current);
    }
}
