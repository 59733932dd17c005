using Adanns.Engine.Collections;
using Adanns.Engine.Indexes;
using Adanns.Engine.Storage;

namespace Adanns.Engine.Tests.Collections;

/// <summary>
/// Disposal never hangs and never closes the store under a training that still reads it; a collection whose applier
/// fails is quarantined with a clear error instead of answering "closed, retry" forever; trainings catch up with the
/// writes made meanwhile.
/// </summary>
public class ShutdownAndFaultTests : CollectionTestBase
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);

    private static async Task Upsert(Collection c, float[][] data, int from, int count) =>
        await c.UpsertAsync(Enumerable.Range(from, count).Select(i => new VectorRecord((ulong)i, data[i])).ToList());

    [Fact]
    public async Task DisposeDuringTraining_CancelsIt_AndNoCallHangsAfterwards()
    {
        const int D = 16;
        var data = Vectors(1500, D, 1);
        var db = AdannsDatabase.Open(Dir, QuietOptions);
        var c = db.CreateCollection(new CollectionConfig("t", D, Metric.L2, "IVF8,PQ4,Rerank16") { TrainThreshold = 1000 });
        using var gate = new ManualResetEventSlim(false); // never opened: the training is parked before its swap
        c.TrainingGate = gate;
        await Upsert(c, data, 0, 1200);
        var waiting = c.WaitForIndexAsync();
        Assert.True(SpinWait.SpinUntil(() => c.TrainingInProgress, Bound)); // the applier took the request and started it
        Assert.False(waiting.IsCompleted);

        // Dispose must cancel the parked training and return; it used to wait 30 s and then close the store anyway.
        var dispose = Task.Run(() => db.Dispose());
        await dispose.WaitAsync(Bound);
        Assert.False(c.TrainingInProgress);
        await Assert.ThrowsAnyAsync<Exception>(() => waiting.WaitAsync(Bound));

        // Every call after shutdown fails fast with Closed.
        foreach (var call in new Func<Task>[] { () => Upsert(c, data, 1200, 10), () => c.CheckpointAsync(), () => c.CompactAsync(), () => c.WaitForIndexAsync() })
        {
            var e = await Assert.ThrowsAsync<AdannsException>(() => call().WaitAsync(Bound));
            Assert.Equal(AdannsErrorCode.Closed, e.Code);
        }

        // Nothing durable was harmed: the acknowledged records reopen (and train) normally.
        using var again = AdannsDatabase.Open(Dir, QuietOptions);
        var r = again.GetCollection("t");
        Assert.Equal(1200, r.Count);
        Assert.True(await r.WaitForIndexAsync().WaitAsync(TimeSpan.FromSeconds(60)));
    }

    [Fact]
    public async Task ApplierJobsRacingDispose_AllFinish()
    {
        var data = Vectors(200, 8, 2);
        var db = AdannsDatabase.Open(Dir, QuietOptions);
        var c = db.CreateCollection(new CollectionConfig("r", 8, Metric.L2, "IVF4"));
        await Upsert(c, data, 0, 200);
        // Checkpoints queued before, during and after the applier's last drain: each completes or fails, none hangs.
        var calls = Enumerable.Range(0, 64).Select(i => Task.Run(async () =>
        {
            if (i == 32) { await db.DisposeAsync(); return; }
            try { await c.CheckpointAsync(); }
            catch (AdannsException e) when (e.Code == AdannsErrorCode.Closed) { }
        })).ToArray();
        await Task.WhenAll(calls).WaitAsync(Bound);
    }

    [Fact]
    public async Task AFaultedCollection_IsQuarantinedWithItsCause_ReadsStillServe_AndAcknowledgedWritesSurvive()
    {
        const int D = 8;
        var data = Vectors(300, D, 3);
        using (var db = AdannsDatabase.Open(Dir, QuietOptions))
        {
            var c = db.CreateCollection(new CollectionConfig("f", D, Metric.L2, "IVF4"));
            await Upsert(c, data, 0, 100);
            c.BeforeApplyHook = () => throw new IOException("simulated device failure");
            var failed = await Assert.ThrowsAsync<AdannsException>(() => Upsert(c, data, 100, 10).WaitAsync(Bound));
            Assert.Equal(AdannsErrorCode.CollectionFaulted, failed.Code);
            Assert.Contains("Collection \"f\"", failed.Message, StringComparison.Ordinal);
            Assert.Contains("simulated device failure", failed.Message, StringComparison.Ordinal);
            // Later writes and maintenance calls get the same answer at once (a client cannot fix it by retrying).
            var again = await Assert.ThrowsAsync<AdannsException>(() => Upsert(c, data, 110, 10).WaitAsync(Bound));
            Assert.Equal(AdannsErrorCode.CollectionFaulted, again.Code);
            var cp = await Assert.ThrowsAsync<AdannsException>(() => c.CheckpointAsync().WaitAsync(Bound));
            Assert.Equal(AdannsErrorCode.CollectionFaulted, cp.Code);
            // What was applied still answers.
            Assert.Equal(100, c.Count);
            Assert.Equal(5UL, c.Search(data[5], 1)[0].Id.Number);
        }
        using (var db = AdannsDatabase.Open(Dir, QuietOptions))
        {
            var c = db.GetCollection("f");
            Assert.Equal(100, c.Count);
            await Upsert(c, data, 100, 10); // reopened: writable again
            Assert.Equal(110, c.Count);
        }
    }

    [Theory]
    [InlineData("IVF8,Rerank16")]
    [InlineData("IVF8,PQ4,Rerank16")]
    public async Task WritesWhileTheIndexTrains_AreJournaledAndReplayed(string spec)
    {
        const int D = 16;
        var data = Vectors(2000, D, 4);
        using var db = AdannsDatabase.Open(Dir, QuietOptions with { BackgroundMaintenance = false });
        var c = db.CreateCollection(new CollectionConfig("j", D, Metric.L2, spec) { TrainThreshold = 1000 });
        using var gate = new ManualResetEventSlim(false);
        c.TrainingGate = gate;
        await Upsert(c, data, 0, 1000);
        var training = c.WaitForIndexAsync();
        Assert.True(SpinWait.SpinUntil(() => c.TrainingInProgress, Bound)); // the applier took the request and started it
        // The training holds a snapshot of 1,000; these 500 upserts and 100 deletes land in its journal.
        await Upsert(c, data, 1000, 500);
        Assert.Equal(100, await c.DeleteAsync(Enumerable.Range(0, 100).Select(i => new RecordId((ulong)i)).ToArray()));
        Assert.False(c.GetStats().IndexTrained);
        gate.Set();
        Assert.True(await training.WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.Equal(600, c.JournalOpsReplayed);
        Assert.True(c.GetStats().IndexTrained);
        Assert.Equal(1400, c.Count);
        for (int i = 0; i < 1500; i += 37)
        {
            var hit = c.Search(data[i], 1, new SearchParams { NProbe = 8 })[0];
            if (i < 100) Assert.NotEqual((ulong)i, hit.Id.Number);
            else Assert.Equal((ulong)i, hit.Id.Number);
        }
    }
}
