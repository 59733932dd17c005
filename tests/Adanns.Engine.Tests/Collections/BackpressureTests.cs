using Adanns.Engine.Collections;
using Adanns.Engine.Storage;

namespace Adanns.Engine.Tests.Collections;

/// <summary>
/// Backpressure (issue 20): while a training has not absorbed the writes made meanwhile, their journaled copies are
/// the index backlog; past <see cref="DatabaseOptions.MaxIndexBacklogBytes"/> writers wait (bounded memory), resume when
/// the training catches up, or fail with <see cref="AdannsErrorCode.Overloaded"/> after the timeout having written
/// nothing. The training is parked at its swap (<c>TrainingGate</c>), so the backlog only grows until it is released.
/// </summary>
public class BackpressureTests : CollectionTestBase
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);
    private const int D = 16;
    private const long OpBytes = 4 * D + 48;

    private static Task Upsert(Collection c, float[][] data, int from, int count) =>
        c.UpsertAsync(Enumerable.Range(from, count).Select(i => new VectorRecord((ulong)i, data[i])).ToList());

    [Fact]
    public async Task WritersWaitWhileTheIndexLags_ResumeWhenItCatchesUp_AndNothingAcknowledgedIsLost()
    {
        const int Writers = 4, Batch = 100, Batches = 60, First = 1000;
        int total = First + Writers * Batches * Batch;
        var data = Vectors(total, D, 5);
        var options = QuietOptions with { MaxIndexBacklogBytes = 1 << 20, BackpressureTimeout = TimeSpan.FromMinutes(5) };
        long acked = 0;
        using (var db = AdannsDatabase.Open(Dir, options))
        {
            var c = db.CreateCollection(new CollectionConfig("b", D, Metric.L2, "IVF8") { TrainThreshold = First });
            using var gate = new ManualResetEventSlim(false);
            c.TrainingGate = gate;
            await Upsert(c, data, 0, First);
            Assert.True(SpinWait.SpinUntil(() => c.TrainingInProgress, Bound)); // started by background maintenance

            var writers = Enumerable.Range(0, Writers).Select(w => Task.Run(async () =>
            {
                for (int b = 0; b < Batches; b++)
                {
                    await Upsert(c, data, First + (w * Batches + b) * Batch, Batch);
                    Interlocked.Add(ref acked, Batch);
                }
            })).ToArray();

            // The journal fills past the budget (1 MiB = ~9,400 journaled 16-dim vectors of the 24,000), then every
            // writer still writing waits.
            Assert.True(SpinWait.SpinUntil(() => c.ThrottledWriters > 0 && c.ThrottledWriters == writers.Count(t => !t.IsCompleted), Bound));
            long stalled = Interlocked.Read(ref acked);
            await Task.Delay(500);
            Assert.Equal(stalled, Interlocked.Read(ref acked)); // nothing gets through while the training is parked
            Assert.True(c.ThrottledWriters > 0);
            // Bounded: at most one batch per writer was admitted just before the backlog crossed the budget.
            Assert.InRange(c.IndexBacklogBytes, options.MaxIndexBacklogBytes + 1, options.MaxIndexBacklogBytes + Writers * Batch * OpBytes);
            Assert.Equal(First + stalled, c.Count); // what was acknowledged is visible, and nothing else
            Assert.True(stalled < Writers * Batches * Batch);

            gate.Set(); // the training replays the journal: the backlog falls and the writers resume
            await Task.WhenAll(writers).WaitAsync(TimeSpan.FromMinutes(2));
            Assert.Equal(Writers * Batches * Batch, Interlocked.Read(ref acked));
            Assert.Equal(total, c.Count);
            Assert.True(await c.WaitForIndexAsync().WaitAsync(TimeSpan.FromMinutes(2)));
            Assert.True(c.GetStats().IndexTrained);
            Assert.Equal(0, c.ThrottledWriters);
        }

        // Nothing acknowledged is lost: every record reopens with its vector.
        using var again = AdannsDatabase.Open(Dir, options);
        var r = again.GetCollection("b");
        Assert.Equal(total, r.Count);
        var got = await r.GetManyAsync(Enumerable.Range(0, total).Select(i => (RecordId)(ulong)i).ToList());
        for (int i = 0; i < total; i++)
        {
            Assert.NotNull(got[i]);
            Assert.Equal(data[i], got[i]!.Vector.ToArray());
        }
    }

    [Fact]
    public async Task AWriteThatWaitsTooLong_FailsOverloaded_HavingWrittenNothing()
    {
        const int First = 1000, Batch = 500;
        var data = Vectors(First + 40 * Batch, D, 6);
        var options = QuietOptions with { MaxIndexBacklogBytes = 1 << 20, BackpressureTimeout = TimeSpan.FromMilliseconds(300) };
        var db = AdannsDatabase.Open(Dir, options);
        var c = db.CreateCollection(new CollectionConfig("o", D, Metric.L2, "IVF8") { TrainThreshold = First });
        using var gate = new ManualResetEventSlim(false);
        c.TrainingGate = gate;
        await Upsert(c, data, 0, First);
        Assert.True(SpinWait.SpinUntil(() => c.TrainingInProgress, Bound));

        int next = First;
        AdannsException? overloaded = null;
        while (overloaded is null && next + Batch <= data.Length)
        {
            try
            {
                await Upsert(c, data, next, Batch);
                next += Batch;
            }
            catch (AdannsException e) when (e.Code == AdannsErrorCode.Overloaded)
            {
                overloaded = e;
            }
        }
        Assert.NotNull(overloaded);
        Assert.Contains("MaxIndexBacklogBytes", overloaded.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', overloaded.Message);
        // Nothing of the refused batch was written; everything before it was.
        Assert.Equal(next, c.Count);
        Assert.DoesNotContain(true, await c.ExistAsync([(ulong)next, (ulong)(next + Batch - 1)]));
        Assert.True(c.IndexBacklogBytes > options.MaxIndexBacklogBytes);

        // The first collection resumes once its training catches up: the refused batch goes through on retry.
        gate.Set();
        await Upsert(c, data, next, Batch).WaitAsync(TimeSpan.FromMinutes(1));
        Assert.Equal(next + Batch, c.Count);
        db.Dispose();
    }

    [Fact]
    public async Task AWriterWaitingWhenTheCollectionCloses_FailsClosedAtOnce()
    {
        const int First = 1000, Batch = 500;
        var data = Vectors(First + 40 * Batch, D, 7);
        var options = QuietOptions with { MaxIndexBacklogBytes = 1 << 20, BackpressureTimeout = TimeSpan.FromMinutes(5) };
        var db = AdannsDatabase.Open(Dir, options);
        var c = db.CreateCollection(new CollectionConfig("w", D, Metric.L2, "IVF8") { TrainThreshold = First });
        using var gate = new ManualResetEventSlim(false);
        c.TrainingGate = gate;
        await Upsert(c, data, 0, First);
        Assert.True(SpinWait.SpinUntil(() => c.TrainingInProgress, Bound));
        Task? waiting = null;
        int from = First;
        for (; waiting is null && from + Batch <= data.Length; from += Batch)
        {
            var t = Upsert(c, data, from, Batch);
            await Task.WhenAny(t, Task.Delay(2000));
            if (!t.IsCompleted) waiting = t;
            else await t;
        }
        Assert.NotNull(waiting);
        Assert.Equal(1, c.ThrottledWriters);
        var dispose = Task.Run(db.Dispose);
        var closed = await Assert.ThrowsAsync<AdannsException>(() => waiting.WaitAsync(Bound)); // not after 5 minutes
        Assert.Equal(AdannsErrorCode.Closed, closed.Code);
        await dispose.WaitAsync(Bound);

        using var again = AdannsDatabase.Open(Dir, options);
        Assert.Equal(from - Batch, again.GetCollection("w").Count); // the acknowledged batches, not the refused one
    }

    [Fact]
    public void BadBackpressureSettings_AreRefusedByName()
    {
        Assert.Contains("MaxIndexBacklogBytes", new DatabaseOptions { MaxIndexBacklogBytes = 1000 }.Problem(), StringComparison.Ordinal);
        Assert.Contains("BackpressureTimeout", new DatabaseOptions { BackpressureTimeout = TimeSpan.FromSeconds(-1) }.Problem(), StringComparison.Ordinal);
        Assert.Null(new DatabaseOptions { BackpressureTimeout = Timeout.InfiniteTimeSpan }.Problem());
    }
}
