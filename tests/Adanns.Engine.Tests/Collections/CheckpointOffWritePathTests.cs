using Adanns.Engine.Collections;
using Adanns.Engine.Storage;

namespace Adanns.Engine.Tests.Collections;

/// <summary>
/// Checkpoints run beside the writes (issue 20): a write is acknowledged while a checkpoint is in flight, and the
/// store such a checkpoint captures (the plan's state plus writes applied after it, old and new records of a
/// replaced id side by side) recovers to exactly the acknowledged state.
/// </summary>
public class CheckpointOffWritePathTests : CollectionTestBase
{
    [Fact]
    public async Task WritesAreAcknowledgedWhileACheckpointRuns_AndWhatItCapturedRecovers()
    {
        const int D = 16;
        var data = Vectors(1800, D, 31);
        var replaced = Vectors(300, D, 32);
        var options = QuietOptions with { BackgroundMaintenance = false, CheckpointOnDispose = false };
        long planLsn;
        using (var db = AdannsDatabase.Open(Dir, options))
        {
            var c = db.CreateCollection(new CollectionConfig("ck", D, Metric.L2, "IVF8") { TrainThreshold = 1000 });
            await c.UpsertAsync(Enumerable.Range(0, 1500).Select(i => new VectorRecord((ulong)i, data[i])).ToList());
            Assert.True(await c.WaitForIndexAsync());

            using var gate = new ManualResetEventSlim(false);
            c.StoreCheckpointGate = gate;
            planLsn = await c.BeginBackgroundCheckpointAsync();
            Assert.True(planLsn > 0);
            Assert.True(c.CheckpointInProgress);
            // While the checkpoint is held: replace 300 ids, add 300, delete 100 — each acknowledged without waiting for it.
            var writes = new List<Task>();
            for (int s = 0; s < 300; s += 50)
                writes.Add(c.UpsertAsync(Enumerable.Range(s, 50).Select(i => new VectorRecord((ulong)i, replaced[i])).ToList()));
            writes.Add(c.UpsertAsync(Enumerable.Range(1500, 300).Select(i => new VectorRecord((ulong)i, data[i])).ToList()));
            writes.Add(c.DeleteAsync(Enumerable.Range(300, 100).Select(i => (RecordId)(ulong)i).ToList()));
            var all = Task.WhenAll(writes);
            Assert.Same(all, await Task.WhenAny(all, Task.Delay(TimeSpan.FromSeconds(30))));
            await all;
            Assert.True(c.CheckpointInProgress); // every write above was acknowledged while the checkpoint waited
            Assert.Equal(1700, c.Count);

            gate.Set();
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (c.GetStats().CheckpointLsn < planLsn && DateTime.UtcNow < deadline) await Task.Delay(10);
            Assert.Equal(planLsn, c.GetStats().CheckpointLsn); // the manifest names the plan's LSN, not the writes after it
            c.StoreCheckpointGate = null;
        }
        // Reopen from that checkpoint: its store holds records written after its LSN and both records of each replaced id.
        for (int round = 0; round < 2; round++)
        {
            using var db = AdannsDatabase.Open(Dir, options);
            var c = db.GetCollection("ck");
            Assert.Equal(1700, c.Count);
            Assert.True(c.GetStats().IndexTrained);
            for (int i = 0; i < 1800; i += 7)
            {
                var got = await c.GetAsync((ulong)i);
                if (i is >= 300 and < 400)
                {
                    Assert.Null(got);
                    continue;
                }
                Assert.NotNull(got);
                Assert.Equal(i < 300 ? replaced[i] : data[i], got.Vector.ToArray());
            }
            // The index holds each live id once, at its newest vector.
            var hits = c.Search(replaced[42], 5, new Adanns.Engine.Indexes.SearchParams { NProbe = 8 });
            Assert.Equal(42UL, hits[0].Id.Number);
            Assert.Equal(hits.Length, hits.Select(h => h.Id).Distinct().Count());
            if (round == 0) await c.CheckpointAsync(); // the second open starts from a checkpoint taken after recovery
        }
    }
}
