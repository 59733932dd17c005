using Adanns.Engine.Collections;
using Adanns.Engine.Indexes;
using Adanns.Engine.Storage;

namespace Adanns.Engine.Tests.Collections;

/// <summary><c>Collection.SearchWithReport</c>, <see cref="Collection.FindIds"/> and <see cref="DatabaseOptions.ProfileIndexes"/>.</summary>
public class SearchReportTests : CollectionTestBase
{
    [Fact]
    public async Task ReportsPathParametersAndWork_AndProfiledIndexesTakeABudget()
    {
        const int D = 16;
        var data = Vectors(1200, D, 3);
        using var db = AdannsDatabase.Open(Dir, QuietOptions with { ProfileIndexes = true });
        var c = db.CreateCollection(new CollectionConfig("r", D, Metric.L2, "IVF16@8,Scan16") { TrainThreshold = 1000 });
        await c.UpsertAsync(Enumerable.Range(0, 500).Select(i => new VectorRecord((ulong)i, data[i], PayloadOf(i))).ToList());

        var hits = c.SearchWithReport(data[7], 3, null, null, false, out var flat);
        Assert.Equal(7UL, hits[0].Id.Number);
        Assert.Equal(SearchPath.Flat, flat.Path);
        Assert.Null(flat.Used);
        Assert.Equal(500, flat.Stats.VectorsScanned);
        Assert.Equal(500L * D, flat.Stats.Flops);

        await c.UpsertAsync(Enumerable.Range(500, 700).Select(i => new VectorRecord((ulong)i, data[i], PayloadOf(i))).ToList());
        Assert.True(await c.WaitForIndexAsync());
        hits = c.SearchWithReport(data[7], 3, new SearchParams { NProbe = 4, ScanDim = 12 }, null, false, out var ivf);
        Assert.Equal(7UL, hits[0].Id.Number);
        Assert.Equal(SearchPath.Index, ivf.Path);
        Assert.Equal(4, ivf.Used!.Value.NProbe);
        Assert.Equal(12, ivf.Used.Value.ScanDim);
        Assert.Equal(8, ivf.Used.Value.CoarseDim);
        Assert.Equal(4, ivf.Stats.ListsProbed);
        Assert.True(ivf.Stats.VectorsScanned > 0 && ivf.Stats.VectorsScanned < 1200);
        Assert.True(ivf.Stats.Flops >= 16L * 8 + ivf.Stats.VectorsScanned * 12);

        // ProfileIndexes: the trained index carries a compute profile, so a budget resolves to one of its points.
        c.SearchWithReport(data[7], 3, new SearchParams { MaxFlops = 1e9 }, null, false, out var budget);
        Assert.True(budget.Used!.Value.BudgetPoint >= 0);
        Assert.False(budget.Used.Value.OverBudget);
    }

    [Fact]
    public async Task FindIdsReturnsTheMatchingLiveIds()
    {
        var data = Vectors(60, 8, 4);
        using var db = AdannsDatabase.Open(Dir, QuietOptions);
        var c = db.CreateCollection(new CollectionConfig("f", 8, Metric.L2, "IVF4"));
        await c.UpsertAsync(Enumerable.Range(0, 60).Select(i => new VectorRecord((ulong)i, data[i], PayloadOf(i))).ToList());
        await c.DeleteAsync(0UL);
        var all = c.FindIds(null);
        Assert.Equal(59, all.Count);
        var filter = Filter.Eq("color", PayloadOf(3)["color"]);
        var matching = c.FindIds(filter);
        var expected = Enumerable.Range(1, 59).Where(i => filter.Matches(PayloadOf(i))).Select(i => (ulong)i).Order().ToArray();
        Assert.Equal(expected, matching.Select(id => id.Number).Order().ToArray());
        Assert.Equal(5, c.FindIds(null, limit: 5).Count);
        Assert.Empty(c.FindIds(filter, limit: 0));
    }
}
