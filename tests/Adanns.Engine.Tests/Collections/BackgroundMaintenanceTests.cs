using Adanns.Engine.Collections;
using Adanns.Engine.Storage;

namespace Adanns.Engine.Tests.Collections;

/// <summary>Maintenance runs off the write path: tombstones are dropped by a background retrain, not an in-place compaction under the write lock.</summary>
public class BackgroundMaintenanceTests : CollectionTestBase
{
    [Fact]
    public async Task ManyDeletes_AreDroppedByABackgroundRetrain_NotByCompactionUnderTheLock()
    {
        const int D = 16;
        var data = Vectors(3000, D, 17);
        using var db = AdannsDatabase.Open(Dir, QuietOptions); // background maintenance on
        var c = db.CreateCollection(new CollectionConfig("m", D, Metric.L2, "IVF8") { TrainThreshold = 1000 });
        await c.UpsertAsync(Enumerable.Range(0, 3000).Select(i => new VectorRecord((ulong)i, data[i])).ToList());
        Assert.True(await c.WaitForIndexAsync());
        var before = c.GetStats();
        await c.DeleteAsync(Enumerable.Range(0, 1500).Select(i => (RecordId)(ulong)i).ToList()); // 1,500 tombstones > max(1024, 3000 / 5)
        var deadline = DateTime.UtcNow.AddSeconds(60);
        CollectionStats now;
        while ((now = c.GetStats()).Tombstones > 0 && DateTime.UtcNow < deadline) await Task.Delay(50);
        Assert.Equal(0, now.Tombstones);
        Assert.Equal(1500, now.Count);
        Assert.Equal(before.Retrains + 1, now.Retrains); // dropped by a retrain ...
        Assert.Equal(0, now.Compactions);                // ... not an in-place compaction
        var hit = c.Search(data[2000], 1, new Adanns.Engine.Indexes.SearchParams { NProbe = 8 });
        Assert.Equal(2000UL, hit[0].Id.Number);
    }
}
