using Adanns.Engine.Collections;
using Adanns.Engine.Storage;

namespace Adanns.Engine.Tests.Collections;

/// <summary>
/// Filtered queries in a batch (issue 20): 32 at a time share one evaluation of the filter (its key set costs
/// O(matching records), paid once per query before) and one read lock, each still taking its own path, and each
/// answers exactly as the same search run alone.
/// </summary>
public class FilteredBatchTests : CollectionTestBase
{
    [Theory]
    [InlineData("IVF16,PQ8,Shortlist50,Rerank32")] // PQ: shortlists chosen under the lock, reranked from the store after it
    [InlineData("IVF16")]                          // float lists
    public async Task FilteredBatchEqualsSingleSearches_OneFilterEvaluationPer32Queries(string spec)
    {
        const int D = 32, N = 3000, NQ = 70;
        var data = Vectors(N + NQ, D, 51);
        using var db = AdannsDatabase.Open(Dir, QuietOptions with { BackgroundMaintenance = false });
        var c = db.CreateCollection(new CollectionConfig("fb", D, Metric.Cosine, spec) { TrainThreshold = 1000 });
        await c.UpsertAsync(Enumerable.Range(0, N).Select(i => new VectorRecord((ulong)i, data[i],
            new Dictionary<string, PayloadValue> { ["g"] = i % 10, ["rare"] = i % 100 == 0 })).ToList());
        Assert.True(await c.WaitForIndexAsync());
        var queries = Enumerable.Range(N, NQ).Select(i => (ReadOnlyMemory<float>)data[i]).ToList();
        // 50 % and 10 % take the index's filtered path; 1 % the exact filtered path.
        foreach (var (filter, expected) in new[] { (Filter.Range("g", null, 4), SearchPath.IndexFiltered), (Filter.Eq("g", 3), SearchPath.IndexFiltered),
                     (Filter.Eq("rare", true), SearchPath.ExactFiltered) })
        {
            long before = c.FilterKeySetsBuilt;
            var batch = await c.SearchBatchAsync(queries, 10, null, filter, withPayload: true, withVectors: true);
            Assert.Equal(3, c.FilterKeySetsBuilt - before); // 70 queries: 32 + 32 + 6
            before = c.FilterKeySetsBuilt;
            for (int q = 0; q < NQ; q++)
            {
                var single = c.SearchWithReport(queries[q].Span, 10, null, filter, true, true, out var report);
                Assert.Equal(expected, report.Path);
                Assert.Equal(expected, batch[q].Report.Path);
                Assert.Equal(single.Select(h => (h.Id, h.Score)), batch[q].Hits.Select(h => (h.Id, h.Score)));
                Assert.All(batch[q].Hits, h =>
                {
                    Assert.True(filter.Matches(h.Payload!), $"{filter}: hit {h.Id}");
                    Assert.Equal(data[(int)h.Id.Number], h.Vector.ToArray());
                });
                Assert.Equal(10, batch[q].Hits.Count);
            }
            Assert.Equal(NQ, c.FilterKeySetsBuilt - before); // one per search when run alone
        }
    }
}
