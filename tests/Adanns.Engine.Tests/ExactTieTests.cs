using Adanns.Engine.Indexes;

namespace Adanns.Engine.Tests;

/// <summary>
/// The engine's one exact search (<c>ExactScan</c>): every exact path gives equal vectors bit-equal scores wherever
/// their rows sit, and among equal scores the lower id wins.
/// </summary>
public class ExactTieTests
{
    private const int N = 203; // not a multiple of the kernel's four-row step: the last rows go through the padded step

    /// <summary>Rows: one in three unique, the others one of 8 shared vectors (groups of ~17 equal rows).</summary>
    private static float[] Rows(int d, int seed)
    {
        var rng = new Random(seed);
        var shared = new float[8][];
        for (int g = 0; g < shared.Length; g++) shared[g] = Enumerable.Range(0, d).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var rows = new float[N * d];
        for (int i = 0; i < N; i++)
        {
            var row = i % 3 == 0 ? Enumerable.Range(0, d).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray() : shared[i * 7 % 8];
            row.CopyTo(rows, i * d);
        }
        return rows;
    }

    private static float[] Query(int d, int seed) => Enumerable.Range(0, d).Select(j => (float)Math.Sin(seed * 31 + j)).ToArray();

    /// <summary>
    /// Checks one exact result over every live row: best first by the metric, equal scores by the lower id, and every
    /// row that holds the same vector (<paramref name="vectorOf"/>) has the very same score.
    /// </summary>
    private static void AssertTieRule(long[] ids, float[] scores, Metric metric, Func<long, float[]> vectorOf, int live)
    {
        Assert.DoesNotContain(-1L, ids.Take(live));
        for (int j = 1; j < live; j++)
        {
            bool ordered = metric.HigherIsBetter() ? scores[j - 1] > scores[j] : scores[j - 1] < scores[j];
            Assert.True(ordered || (scores[j - 1] == scores[j] && ids[j - 1] < ids[j]), $"position {j}: ({ids[j - 1]}, {scores[j - 1]}) before ({ids[j]}, {scores[j]})");
        }
        var byVector = new Dictionary<string, float>();
        int ties = 0;
        for (int j = 0; j < live; j++)
        {
            string key = string.Join(',', vectorOf(ids[j]));
            if (byVector.TryGetValue(key, out float s))
            {
                Assert.Equal(s, scores[j]); // bit-equal, whatever the rows' positions
                ties++;
            }
            else byVector[key] = scores[j];
        }
        Assert.True(ties > live / 2, $"only {ties} tied rows");
    }

    [Theory]
    [InlineData(20, Metric.L2)]
    [InlineData(20, Metric.Cosine)]
    [InlineData(72, Metric.InnerProduct)]
    [InlineData(72, Metric.L2)]
    [InlineData(72, Metric.Cosine)]
    public void Flat_index_ties_go_to_the_lower_row(int d, Metric metric)
    {
        var rows = Rows(d, 1);
        using var set = VectorSet.FromRows(rows, d);
        var flat = new FlatIndex(set, metric);
        var q = Query(d, 2);
        var ids = new long[N];
        var scores = new float[N];
        flat.Search(q, N, ids, scores);
        AssertTieRule(ids, scores, metric, id => rows.AsSpan((int)id * d, d).ToArray(), N);
        // A small k is the prefix of the full order (the cut inside a group keeps its lowest rows).
        var few = new long[7];
        flat.Search(q, 7, few, new float[7]);
        Assert.Equal(ids.Take(7), few);
    }

    [Theory]
    [InlineData("IVF4", Metric.L2)]
    [InlineData("IVF4", Metric.InnerProduct)]
    [InlineData("IVF4,Scan16,SQ8", Metric.Cosine)]
    [InlineData("IVF4,SQ8,Spill", Metric.L2)]
    [InlineData("IVF4,SQ8,Spill", Metric.Cosine)]
    public void Exact_mode_ties_go_to_the_lower_id_whatever_the_slots(string spec, Metric metric)
    {
        // (No Rot spec here: a rotated index stores R·x, and the build's batch rotation and a later Add's single-row
        // rotation round differently, so equal input vectors need not be bit-equal rows there.)
        const int d = 32;
        var rows = Rows(d, 3);
        using var set = VectorSet.FromRows(rows, d);
        using var index = VectorIndex.Build(set, spec, metric);
        // Rows re-added under new, descending ids: they land in later slots with lower ids than rows added before, and
        // removed ids leave holes. A slot-order rule would fail here.
        var vectorOf = new Dictionary<long, float[]>();
        for (int i = 0; i < N; i++) vectorOf[i] = rows.AsSpan(i * d, d).ToArray();
        for (int i = 0; i < N; i += 5)
        {
            Assert.True(index.Remove(i));
            vectorOf.Remove(i);
        }
        for (int i = 1; i < N; i += 4)
        {
            long id = 1_000 - i; // > every original id, descending in slot order
            index.Add(rows.AsSpan(i * d, d), id);
            vectorOf[id] = rows.AsSpan(i * d, d).ToArray();
        }
        for (int i = 2; i < 60; i += 6)
        {
            long id = -i + 600; // between, also descending
            index.Add(rows.AsSpan(i * d, d), id);
            vectorOf[id] = rows.AsSpan(i * d, d).ToArray();
        }
        int live = vectorOf.Count;
        Assert.Equal(live, index.Count);
        var exact = new SearchParams { Exact = true };
        foreach (int seed in new[] { 4, 5, 6 })
        {
            var q = Query(d, seed);
            var ids = new long[live];
            var scores = new float[live];
            index.Search(q, live, ids, scores, exact, null, out _);
            AssertTieRule(ids, scores, metric, id => vectorOf[id], live);
            var few = new long[9];
            index.Search(q, 9, few, new float[9], exact, null, out _);
            Assert.Equal(ids.Take(9), few);
            // Batch and single agree.
            var batch = index.SearchBatch(q, 9, exact, null, 1, out _);
            Assert.Equal(few, batch.Ids);
        }
        // The exact mode allocates nothing once warm.
        var q0 = Query(d, 7);
        var outIds = new long[9];
        var outScores = new float[9];
        index.Search(q0, 9, outIds, outScores, exact, null, out _);
        Assert.Equal(0, Allocations.LeastOfThreeRounds(() => index.Search(q0, 9, outIds, outScores, exact, null, out _)));
    }
}
