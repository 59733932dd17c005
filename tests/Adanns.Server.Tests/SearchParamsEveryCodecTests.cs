using Adanns.Protocol.V1;
using static Adanns.Server.Tests.Helpers;
using Metric = Adanns.Protocol.V1.Metric;

namespace Adanns.Server.Tests;

/// <summary>
/// Issue 14 item 4: gRPC <c>SearchParams</c> reach every list codec — float, SQ8, PQ/OPQ 8- and 4-bit, RaBitQ, with
/// Spill, Prefix8 and Rot — on single and batch searches: the knobs named are the ones used (and probed), and a budget
/// picks a profiled point on every spec.
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class SearchParamsEveryCodecTests(ServerFixture server)
{
    [Theory]
    [InlineData("IVF8@8,Scan16,Rerank16")]
    [InlineData("IVF8@8,Scan16,SQ8,Spill,Rerank16")]
    [InlineData("IVF8@8,PQ8@16,Rerank16")]
    [InlineData("IVF8@8,OPQ8@16,Spill,Shortlist40,Rerank16")]
    [InlineData("Rot,IVF8@8,PQ8x4@16,Prefix8@12,Shortlist40,Rerank12/20,Rerank16")]
    [InlineData("IVF8@8,RQ1@16,Shortlist40,Rerank16")]
    public async Task SearchParamsReachTheCodec(string spec)
    {
        var c = server.Client;
        string name = UniqueName("codec");
        const int D = 16;
        await c.CreateCollectionAsync(name, D, Metric.L2, spec, trainThreshold: 400);
        try
        {
            var vectors = Vectors(600, D, seed: 21);
            await c.UpsertAsync(name, Points(vectors[..300]));
            await c.UpsertAsync(name, Points(vectors[300..], 300));
            await foreach (var _ in c.BuildIndexAsync(name)) { }
            Assert.True((await c.GetCollectionAsync(name)).IndexTrained);
            var q = vectors[17];

            // Explicit knobs: used as given, on a single search and in a batch.
            var p = new SearchParams { Nprobe = 2, Shortlist = 30, Rerank = { new RerankStage { Dim = 16 } } };
            var single = await c.SearchAsync(name, q, 5, parameters: p);
            var batch = await c.SearchBatchAsync(name, [new SearchRequest { TopK = 5, Vector = { q }, Params = p }]);
            foreach (var stats in new[] { single.Stats, batch.Results[0].Stats })
            {
                Assert.Equal(SearchPath.Index, stats.Path);
                Assert.Equal(2u, stats.Used.Nprobe);
                Assert.Equal(2ul, stats.ListsProbed);
                Assert.Equal(30u, stats.Used.Shortlist);
                Assert.Equal(16u, stats.Used.Rerank.Single().Dim);
            }
            Assert.Equal(single.Points.Select(x => x.Id.Num), batch.Results[0].Points.Select(x => x.Id.Num));

            // Every list probed: the vector finds itself, whatever the codec.
            var all = await c.SearchAsync(name, q, 5, parameters: new SearchParams { Nprobe = 8, Shortlist = 100 });
            Assert.Equal(8ul, all.Stats.ListsProbed);
            Assert.Equal(17ul, all.Points[0].Id.Num);

            // A budget picks a profiled point (the server profiles every trained index); a larger one never probes less.
            var cheap = await c.SearchAsync(name, q, 5, parameters: new SearchParams { MaxFlops = 1 });
            var rich = await c.SearchAsync(name, q, 5, parameters: new SearchParams { MaxFlops = 1e9 });
            Assert.True(cheap.Stats.Used.BudgetPoint >= 0, spec);
            Assert.True(cheap.Stats.Used.OverBudget, spec);
            Assert.True(rich.Stats.Used.BudgetPoint >= 0, spec);
            Assert.False(rich.Stats.Used.OverBudget, spec);
            Assert.True(rich.Stats.Flops >= cheap.Stats.Flops, $"{spec}: {rich.Stats.Flops} < {cheap.Stats.Flops}");
        }
        finally
        {
            await c.DeleteCollectionAsync(name);
        }
    }
}
