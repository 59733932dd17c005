using Adanns.Engine.Collections;
using Adanns.Engine.Storage;

namespace Adanns.Engine.Tests.Collections;

/// <summary>
/// An explicit compaction or checkpoint runs beside the writes (issue 20): <c>CompactAsync</c> drops the index's
/// tombstones by training a fresh index in the background (compacted before the short swap) and compacts the record
/// log on the maintenance thread; <c>CheckpointAsync</c> checkpoints there too. Writes are acknowledged while each is
/// held at its gate. (Before, both ran on the applier thread, and the index compacted under the write lock.)
/// </summary>
public class CompactOffWritePathTests : CollectionTestBase
{
    [Fact]
    public async Task WritesAreAcknowledgedWhileCompactAsyncRuns_AndItLeavesNoTombstones()
    {
        const int D = 16;
        var data = Vectors(3000, D, 41);
        using var db = AdannsDatabase.Open(Dir, QuietOptions with { BackgroundMaintenance = false });
        var c = db.CreateCollection(new CollectionConfig("cp", D, Metric.L2, "IVF8") { TrainThreshold = 1000 });
        await c.UpsertAsync(Enumerable.Range(0, 2000).Select(i => new VectorRecord((ulong)i, data[i])).ToList());
        Assert.True(await c.WaitForIndexAsync());
        await c.DeleteAsync(Enumerable.Range(0, 600).Select(i => (RecordId)(ulong)i).ToList());
        Assert.Equal(600, c.GetStats().Tombstones);
        int retrains = c.GetStats().Retrains;

        // 1. The index part: the fresh index is held at its swap.
        using var trainingGate = new ManualResetEventSlim(false);
        using var storeGate = new ManualResetEventSlim(false);
        c.TrainingGate = trainingGate;
        c.StoreCheckpointGate = storeGate;
        var compact = c.CompactAsync();
        await WaitUntil(() => c.TrainingInProgress);
        // Writes while it is held: new records and deletes of earlier ones (replayed into the fresh index, whose
        // tombstones the swap's compaction drops).
        await Acknowledged(c.UpsertAsync(Enumerable.Range(2000, 300).Select(i => new VectorRecord((ulong)i, data[i])).ToList()));
        await Acknowledged(c.DeleteAsync(Enumerable.Range(600, 100).Select(i => (RecordId)(ulong)i).ToList()));
        Assert.False(compact.IsCompleted);
        Assert.True(c.TrainingInProgress); // every write above was acknowledged while the compaction's training waited
        Assert.Equal(1600, c.Count);

        // 2. The record-store part: the compacting checkpoint is held after its deletions.
        trainingGate.Set();
        await WaitUntil(() => c.CheckpointInProgress);
        Assert.Equal(0, c.GetStats().Tombstones); // the swapped-in index holds no tombstone, the replayed deletes' included
        await Acknowledged(c.UpsertAsync(Enumerable.Range(2300, 300).Select(i => new VectorRecord((ulong)i, data[i])).ToList()));
        Assert.False(compact.IsCompleted);
        Assert.True(c.CheckpointInProgress);

        storeGate.Set();
        Assert.Same(compact, await Task.WhenAny(compact, Task.Delay(TimeSpan.FromSeconds(60))));
        await compact;
        var after = c.GetStats();
        Assert.Equal(0, after.Tombstones);
        Assert.Equal(1900, after.Count);
        Assert.Equal(retrains + 1, after.Retrains);
        Assert.Equal(1, after.Compactions);
        for (int i = 700; i < 2600; i += 97) Assert.Equal((ulong)i, c.Search(data[i], 1, new Adanns.Engine.Indexes.SearchParams { NProbe = 8 })[0].Id.Number);
        Assert.DoesNotContain(c.Search(data[650], 10, new Adanns.Engine.Indexes.SearchParams { NProbe = 8 }), h => h.Id.Number < 700);
    }

    [Fact]
    public async Task WritesAreAcknowledgedWhileCheckpointAsyncRuns()
    {
        const int D = 16;
        var data = Vectors(1400, D, 43);
        using var db = AdannsDatabase.Open(Dir, QuietOptions with { BackgroundMaintenance = false });
        var c = db.CreateCollection(new CollectionConfig("ck", D, Metric.L2, "IVF8") { TrainThreshold = 1000 });
        await c.UpsertAsync(Enumerable.Range(0, 1200).Select(i => new VectorRecord((ulong)i, data[i])).ToList());
        long lsn = c.GetStats().AppliedLsn;
        using var gate = new ManualResetEventSlim(false);
        c.StoreCheckpointGate = gate;
        var checkpoint = c.CheckpointAsync();
        await WaitUntil(() => c.CheckpointInProgress);
        await Acknowledged(c.UpsertAsync(Enumerable.Range(1200, 200).Select(i => new VectorRecord((ulong)i, data[i])).ToList()));
        Assert.False(checkpoint.IsCompleted);
        Assert.True(c.CheckpointInProgress);
        gate.Set();
        await checkpoint.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(lsn, c.GetStats().CheckpointLsn); // the checkpoint covers the writes acknowledged before the call
        Assert.Equal(1400, c.Count);
    }

    private static async Task Acknowledged(Task write)
    {
        Assert.Same(write, await Task.WhenAny(write, Task.Delay(TimeSpan.FromSeconds(30))));
        await write;
    }

    private static async Task WaitUntil(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!condition() && DateTime.UtcNow < deadline) await Task.Delay(5);
        Assert.True(condition());
    }
}
