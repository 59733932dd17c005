using Adanns.Engine.Collections;
using Adanns.Engine.Storage;

namespace Adanns.Engine.Tests.Collections;

/// <summary>
/// A PQ collection's search reads its shortlist's vectors from the record store with no lock held (issue 20): writes
/// are acknowledged while such a read is held up, and what it reads is still the snapshot it chose from — a record
/// deleted meanwhile stays readable until the search is done, even across a checkpoint.
/// </summary>
public class ReadsOutsideLockTests : CollectionTestBase
{
    [Fact]
    public async Task WritesProceedWhileASearchReadsTheStore_AndItsSnapshotStaysReadable()
    {
        const int D = 32;
        var data = Vectors(2100, D, 41);
        using var db = AdannsDatabase.Open(Dir, QuietOptions with { BackgroundMaintenance = false });
        var c = db.CreateCollection(new CollectionConfig("pq", D, Metric.L2, "IVF8@16,PQ8@32,NProbe8,Shortlist50,Rerank32") { TrainThreshold = 1000 });
        await c.UpsertAsync(Enumerable.Range(0, 2000).Select(i => new VectorRecord((ulong)i, data[i])).ToList());
        Assert.True(await c.WaitForIndexAsync());
        await c.CheckpointAsync();

        using var entered = new ManualResetEventSlim(false);
        using var release = new ManualResetEventSlim(false);
        c.BeforeOutsideRead = () =>
        {
            entered.Set();
            release.Wait(TimeSpan.FromSeconds(30));
        };
        var search = Task.Run(() => c.Search(data[5], 5, withPayload: false));
        Assert.True(entered.Wait(TimeSpan.FromSeconds(30)));
        c.BeforeOutsideRead = null;

        // The search is held between its shortlist and its reads: a writer needs the write lock, and gets it.
        var write = c.UpsertAsync(2000UL, data[2000]);
        Assert.Same(write, await Task.WhenAny(write, Task.Delay(TimeSpan.FromSeconds(20))));
        var delete = c.DeleteAsync(5UL); // the query's own record, certainly on the held search's shortlist
        Assert.Same(delete, await Task.WhenAny(delete, Task.Delay(TimeSpan.FromSeconds(20))));
        Assert.True(await delete);
        Assert.False(search.IsCompleted);

        // A checkpoint would delete record 5 from the store: it waits for the held search (the read epoch) instead.
        long plan = await c.BeginBackgroundCheckpointAsync();
        Assert.True(plan > 0);
        await Task.Delay(300);
        Assert.True(c.CheckpointInProgress);

        release.Set();
        var hits = await search.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(5UL, hits[0].Id.Number); // the snapshot the search chose from
        Assert.Equal(0, c.OutsideReadsMissing);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (c.GetStats().CheckpointLsn < plan && DateTime.UtcNow < deadline) await Task.Delay(10);
        Assert.Equal(plan, c.GetStats().CheckpointLsn);

        var after = c.Search(data[5], 5, withPayload: false);
        Assert.DoesNotContain(after, h => h.Id.Number == 5UL);
        var withVectors = c.SearchWithReport(data[7], 3, null, null, withPayload: false, withVectors: true, out var report);
        Assert.Equal(SearchPath.Index, report.Path);
        Assert.Equal(7UL, withVectors[0].Id.Number);
        Assert.Equal(data[7], withVectors[0].Vector.ToArray());
    }
}
