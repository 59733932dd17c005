using Adanns.Engine.Collections;
using Adanns.Engine.Storage;

namespace Adanns.Engine.Tests.Collections;

/// <summary>
/// Automatic record-log compaction (issue 20): a checkpoint compacts the record store's log once it is past the store's
/// memory and at least half garbage, and not again until the log has doubled since (the churn scenario of
/// <c>ack-latency.sh</c> never reached the old rule of three times the live data).
/// </summary>
public class RecordLogCompactionTests : CollectionTestBase
{
    private const int D = 64; // estimated 4·64 + 64 = 320 bytes per live record

    [Fact]
    public void Rule_HalfGarbagePastMemory_AndNotBelowTheLastCompactedSize()
    {
        const long MiB = 1 << 20;
        // 10,000 live records ≈ 3.2 MB estimated.
        Assert.False(Collection.RecordLogCompactionDue(6 * MiB, 10_000, D, memoryBytes: 64 * MiB, 0)); // within memory: nothing on disk to compact
        Assert.False(Collection.RecordLogCompactionDue(6 * MiB, 10_000, D, memoryBytes: 1 * MiB, 0));  // 6.0 MiB ≤ 2 × 3.2 MB: under half garbage
        Assert.True(Collection.RecordLogCompactionDue(7 * MiB, 10_000, D, memoryBytes: 1 * MiB, 0));   // 7.3 MB > 6.4 MB: over half garbage
        // After a compaction that left 5 MiB (payloads the estimate does not count), the log must pass 10 MiB first.
        Assert.False(Collection.RecordLogCompactionDue(7 * MiB, 10_000, D, memoryBytes: 1 * MiB, 5 * MiB));
        Assert.True(Collection.RecordLogCompactionDue(11 * MiB, 10_000, D, memoryBytes: 1 * MiB, 5 * MiB));
    }

    [Fact]
    public async Task ACheckpointCompactsALogOfReplacedRecords_OnceAndKeepingTheLatestVersions()
    {
        const int N = 3000;
        var data = Vectors(N * 5, D, 3);
        var options = QuietOptions with { BackgroundMaintenance = false, RecordMemoryBytes = 1 << 20 };
        using (var db = AdannsDatabase.Open(Dir, options))
        {
            var c = db.CreateCollection(new CollectionConfig("churn", D, Metric.L2, "IVF8") { TrainThreshold = 1000 });
            // Only new records: the log passes the store's memory (1 MiB) but holds no garbage, so no compaction.
            await c.UpsertAsync(Enumerable.Range(0, N).Select(i => new VectorRecord((ulong)i, data[i])).ToList());
            await c.UpsertAsync(Enumerable.Range(N, N).Select(i => new VectorRecord((ulong)i, data[i])).ToList());
            await c.CheckpointAsync();
            long inserted = c.GetStats().RecordLogBytes;
            Assert.True(inserted > 1 << 20, $"record log {inserted} B");
            Assert.Equal(0, c.RecordLogCompactions);

            // Replace the first N ids three times (each version a different vector): 3·N dead records.
            for (int round = 1; round <= 3; round++)
                await c.UpsertAsync(Enumerable.Range(0, N).Select(i => new VectorRecord((ulong)i, data[round * N + i + (round == 3 ? N : 0)])).ToList());
            await c.DeleteAsync(Enumerable.Range(N, N / 2).Select(i => (RecordId)(ulong)i).ToArray());
            long before = c.GetStats().RecordLogBytes;
            await c.CheckpointAsync(); // not CompactAsync: the checkpoint decides by itself
            long after = c.GetStats().RecordLogBytes;
            Assert.Equal(1, c.RecordLogCompactions);
            // Live: 4,500 records of ~300 bytes, out of 15,000 written (and 1,500 tombstones).
            Assert.True(after < before / 2, $"record log {before} → {after} B");

            // The next checkpoint finds nothing worth compacting.
            await c.UpsertAsync([new VectorRecord(999_999UL, data[0])]);
            await c.CheckpointAsync();
            Assert.Equal(1, c.RecordLogCompactions);
        }

        // Reopened: every live id holds its latest vector; deleted ids are gone.
        using (var db = AdannsDatabase.Open(Dir, options))
        {
            Assert.True(db.TryGetCollection("churn", out var c));
            Assert.Equal(N + N / 2 + 1, c!.GetStats().Count);
            var got = await c.GetManyAsync(Enumerable.Range(0, 2 * N).Select(i => (RecordId)(ulong)i).ToArray());
            for (int i = 0; i < 2 * N; i++)
            {
                if (i >= N && i < N + N / 2)
                {
                    Assert.Null(got[i]);
                    continue;
                }
                float[] expected = i < N ? data[4 * N + i] : data[i];
                Assert.NotNull(got[i]);
                Assert.Equal(expected, got[i]!.Vector.ToArray());
            }
        }
    }
}
