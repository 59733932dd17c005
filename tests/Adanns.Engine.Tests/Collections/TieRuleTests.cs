using Adanns.Engine.Collections;
using Adanns.Engine.Indexes;
using Adanns.Engine.Storage;

namespace Adanns.Engine.Tests.Collections;

/// <summary>
/// A collection's tie rule: among equal scores the lower record id wins (numbers before strings, numbers ascending,
/// strings ordinal) on every path — the untrained flat store, the index's exact mode (filtered or not), the exact
/// filtered path — whatever order records were written, deleted and replaced in.
/// </summary>
public class TieRuleTests : CollectionTestBase
{
    private const int D = 24;

    /// <summary>
    /// Checks <paramref name="all"/> (every live match, best first) against the rule, and that a smaller k keeps its
    /// prefix (the cut inside a group of equal scores keeps the lowest ids).
    /// </summary>
    private static void AssertRule(SearchHit[] all, Func<int, SearchHit[]> searchK, Metric metric)
    {
        var order = SearchHitOrder.For(metric);
        Assert.Equal(all.Order(order).Select(h => h.Id), all.Select(h => h.Id));
        int tiedPairs = 0;
        for (int j = 1; j < all.Length; j++) if (all[j].Score == all[j - 1].Score) tiedPairs++;
        Assert.True(tiedPairs > all.Length / 3, $"only {tiedPairs} tied neighbours in {all.Length}");
        foreach (int k in new[] { 3, 10, 17 })
        {
            var few = searchK(k);
            Assert.Equal(all.Take(k).Select(h => h.Id), few.Select(h => h.Id));
            Assert.Equal(all.Take(k).Select(h => h.Score), few.Select(h => h.Score));
        }
    }

    private static RecordId IdOf(int i) => i % 4 == 3 ? new RecordId($"s{i:D3}") : new RecordId((ulong)(5_000 - i));

    [Theory]
    [InlineData(Metric.L2)]
    [InlineData(Metric.Cosine)]
    [InlineData(Metric.InnerProduct)]
    public async Task Ties_go_to_the_lower_record_id_on_every_path(Metric metric)
    {
        var unique = Vectors(900, D, 21);
        var shared = Vectors(6, D, 22);
        // Ids descend as records are written (numbers) and strings are mixed in, so neither write order, record keys
        // nor row slots agree with the id order; two in three records hold one of six shared vectors.
        VectorRecord Make(int i, int shift) => new(IdOf(i), i % 3 == 0 ? unique[i] : shared[(i + shift) % shared.Length], PayloadOf(i));
        using var db = AdannsDatabase.Open(Dir, QuietOptions with { ExactFilterSelectivity = 0.2 });
        var c = db.CreateCollection(new CollectionConfig("ties", D, metric, "IVF8") { TrainThreshold = 700 });
        await c.UpsertAsync(Enumerable.Range(0, 400).Select(i => Make(i, 0)).ToList());
        // Deletes move the flat store's last rows into the holes; replacements change a record's shared vector.
        await c.DeleteAsync(Enumerable.Range(0, 40).Select(i => IdOf(i * 9)).ToArray());
        await c.UpsertAsync(Enumerable.Range(0, 30).Select(i => Make(i * 13 + 1, 2)).ToList());

        var q = shared[1].Select((x, j) => x + 0.01f * MathF.Sin(j)).ToArray();
        var green = Filter.Eq("color", "green"); // i % 3 == 1: records that hold shared vectors
        SearchHit[] Run(int k, SearchParams? p, Filter? f, SearchPath expect)
        {
            var hits = c.Search(q, k, p, f, false, out var path);
            Assert.Equal(expect, path);
            return hits;
        }
        int live = (int)c.Count;
        AssertRule(Run(live, null, null, SearchPath.Flat), k => Run(k, null, null, SearchPath.Flat), metric);
        int greens = c.FindIds(green).Count;
        AssertRule(Run(greens, null, green, SearchPath.Flat), k => Run(k, null, green, SearchPath.Flat), metric);

        // Trained: the index's exact mode, its filtered exact mode (a third of the records match: above the 0.2 exact-filter
        // selectivity) and the exact filtered path (a filter matching ~6 %).
        await c.UpsertAsync(Enumerable.Range(400, 500).Select(i => Make(i, 0)).ToList());
        Assert.True(await c.WaitForIndexAsync());
        await c.DeleteAsync(Enumerable.Range(0, 30).Select(i => IdOf(400 + i * 7)).ToArray());
        await c.UpsertAsync(Enumerable.Range(0, 30).Select(i => Make(i * 29 + 3, 4)).ToList());
        live = (int)c.Count;
        var exact = new SearchParams { Exact = true };
        AssertRule(Run(live, exact, null, SearchPath.Index), k => Run(k, exact, null, SearchPath.Index), metric);
        greens = c.FindIds(green).Count;
        AssertRule(Run(greens, exact, green, SearchPath.IndexFiltered), k => Run(k, exact, green, SearchPath.IndexFiltered), metric);
        var selective = Filter.In("price", 4, 5, 7, 8, 10, 11);
        int few = c.FindIds(selective).Count;
        Assert.InRange(few, 30, (int)(0.2 * live));
        AssertRule(Run(few, null, selective, SearchPath.ExactFiltered), k => Run(k, null, selective, SearchPath.ExactFiltered), metric);

        // Exact parameters that name a shortlist or rerank keep of exactly k still work (the extra room drops them).
        var tight = new SearchParams { Exact = true, Shortlist = 10, Rerank = [new RerankStage(D, 10)] };
        Assert.Equal(Run(live, exact, null, SearchPath.Index).Take(10).Select(h => h.Id), Run(10, tight, null, SearchPath.Index).Select(h => h.Id));

        // Approximate search: its k hits come in the same order (score, then the lower id).
        var approx = c.Search(q, 20);
        Assert.Equal(approx.Order(SearchHitOrder.For(metric)).Select(h => h.Id), approx.Select(h => h.Id));
    }
}
