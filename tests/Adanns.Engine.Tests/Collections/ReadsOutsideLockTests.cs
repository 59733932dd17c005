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

    /// <summary>
    /// A PQ collection's exact filtered search (a selective filter) reads the matches' vectors from the record store
    /// after the lock, like the rerank: a write and a delete are acknowledged while its read is held up, a checkpoint
    /// that would delete a match waits for it, and it answers the snapshot it chose from — the exact filtered top k by
    /// brute force over that snapshot, tie rule and payloads included (and, afterwards, with vectors when asked).
    /// </summary>
    [Fact]
    public async Task ExactFilteredSearchOnAPqCollection_ReadsOutsideTheLock_AndAnswersItsSnapshot()
    {
        const int D = 32, N = 3000;
        var data = Vectors(N + 10, D, 43);
        using var db = AdannsDatabase.Open(Dir, QuietOptions with { BackgroundMaintenance = false });
        var c = db.CreateCollection(new CollectionConfig("pqf", D, Metric.L2, "IVF8@16,PQ8@32,NProbe8,Shortlist50,Rerank32") { TrainThreshold = 1000 });
        static Dictionary<string, PayloadValue> G(int i) => new() { ["g"] = i % 100 };
        await c.UpsertAsync(Enumerable.Range(0, N).Select(i => new VectorRecord((ulong)i, data[i], G(i))).ToList());
        Assert.True(await c.WaitForIndexAsync());
        await c.CheckpointAsync();
        var filter = Filter.Eq("g", 7); // 30 of 3,000 = 1 % <= ExactFilterSelectivity: the exact path
        var query = data[107];

        // The expected answer: brute force over the matches as they are when the search starts.
        static float L2(float[] a, float[] b) => a.Zip(b, (x, y) => (x - y) * (x - y)).Sum();
        var expected = Enumerable.Range(0, N).Where(i => i % 100 == 7).OrderBy(i => L2(query, data[i])).ThenBy(i => i).Take(5).ToArray();
        Assert.Contains(107, expected);

        using var entered = new ManualResetEventSlim(false);
        using var release = new ManualResetEventSlim(false);
        c.BeforeOutsideRead = () =>
        {
            entered.Set();
            release.Wait(TimeSpan.FromSeconds(30));
        };
        SearchReport report = default;
        // Without vectors: a search that asks for them reads them after the lock on every path.
        var search = Task.Run(() => c.SearchWithReport(query, 5, null, filter, withPayload: true, withVectors: false, out report));
        Assert.True(entered.Wait(TimeSpan.FromSeconds(30))); // before this change the scan read under the lock and never got here
        c.BeforeOutsideRead = null;

        // Held between choosing its matches and reading them: writers get the write lock meanwhile.
        var write = c.UpsertAsync(new[] { new VectorRecord((ulong)N, query, G(7)) }); // an exact duplicate of the query that matches
        Assert.Same(write, await Task.WhenAny(write, Task.Delay(TimeSpan.FromSeconds(20))));
        var delete = c.DeleteAsync(107UL); // a match the held search will return
        Assert.Same(delete, await Task.WhenAny(delete, Task.Delay(TimeSpan.FromSeconds(20))));
        Assert.True(await delete);
        Assert.False(search.IsCompleted);

        long plan = await c.BeginBackgroundCheckpointAsync(); // would delete record 107: waits for the held search
        Assert.True(plan > 0);
        await Task.Delay(300);
        Assert.True(c.CheckpointInProgress);

        release.Set();
        var hits = await search.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(SearchPath.ExactFiltered, report.Path);
        Assert.Equal(expected.Select(i => (ulong)i), hits.Select(h => h.Id.Number)); // the snapshot: 107 in, N not
        Assert.All(hits, h => Assert.Equal(7.0, h.Payload!["g"].AsNumber));
        Assert.Equal(0, c.OutsideReadsMissing);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (c.GetStats().CheckpointLsn < plan && DateTime.UtcNow < deadline) await Task.Delay(10);
        Assert.Equal(plan, c.GetStats().CheckpointLsn);

        // After it: the new state (N first, an exact match; 107 gone).
        var after = c.SearchWithReport(query, 5, null, filter, withPayload: false, withVectors: true, out var afterReport);
        Assert.Equal(SearchPath.ExactFiltered, afterReport.Path);
        Assert.Equal((ulong)N, after[0].Id.Number);
        Assert.DoesNotContain(after, h => h.Id.Number == 107UL);
        Assert.Equal(expected.Where(i => i != 107).Take(4).Select(i => (ulong)i), after.Skip(1).Select(h => h.Id.Number));
        Assert.All(after, h => Assert.Equal(h.Id.Number == N ? query : data[(int)h.Id.Number], h.Vector.ToArray()));
    }
}
