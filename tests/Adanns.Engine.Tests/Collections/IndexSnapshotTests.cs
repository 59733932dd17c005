using Adanns.Engine.Collections;
using Adanns.Engine.Indexes;
using Adanns.Engine.Storage;

namespace Adanns.Engine.Tests.Collections;

/// <summary>
/// The index snapshot is written when an index is trained (on the training's thread), not at every checkpoint: a
/// checkpoint lists the keys removed since and recovery adds the records written since from the record store.
/// </summary>
public class IndexSnapshotTests : CollectionTestBase
{
    [Theory]
    [InlineData("IVF8", ".pqx")] // every spec: one pipeline, one snapshot format
    [InlineData("IVF8,PQ4,Rerank16", ".pqx")]
    [InlineData("IVF8,RQ2,Spill,Rerank16", ".pqx")] // RaBitQ codes: a collection keeps codes only, reads rows from its store
    public async Task CheckpointsKeepTheTrainedSnapshot_AndRecoveryReplaysTheDeltaOntoIt(string spec, string extension)
    {
        const int D = 16;
        var data = Vectors(3000, D, 21);
        var live = new Dictionary<ulong, float[]>();
        var options = new DatabaseOptions { CheckpointInterval = TimeSpan.FromHours(1), CheckpointOnDispose = false, BackgroundMaintenance = false };
        var rng = new Random(3);
        var deleted = new List<ulong>();
        Collection? c0 = null;
        string[] IndexFiles() => Directory.GetFiles(c0!.DirectoryPath, "index-*" + extension).Select(Path.GetFileName).ToArray()!;

        using (var db = AdannsDatabase.Open(Dir, options))
        {
            var c = c0 = db.CreateCollection(new CollectionConfig("s", D, Metric.L2, spec) { TrainThreshold = 1000 });
            await c.UpsertAsync(Enumerable.Range(0, 1200).Select(i => new VectorRecord((ulong)i, data[i])).ToList());
            for (int i = 0; i < 1200; i++) live[(ulong)i] = data[i];
            Assert.True(await c.WaitForIndexAsync());
            var trained = IndexFiles();
            Assert.Single(trained);
            var written = File.GetLastWriteTimeUtc(Path.Combine(c0!.DirectoryPath, trained[0]));

            // After the snapshot: new records, replaced ones (new vector, same id), deletes of old and new ones.
            await c.UpsertAsync(Enumerable.Range(1200, 400).Select(i => new VectorRecord((ulong)i, data[i])).ToList());
            for (int i = 1200; i < 1600; i++) live[(ulong)i] = data[i];
            await c.UpsertAsync(Enumerable.Range(0, 100).Select(i => new VectorRecord((ulong)(i * 7), data[2000 + i])).ToList());
            for (int i = 0; i < 100; i++) live[(ulong)(i * 7)] = data[2000 + i];
            var dead = Enumerable.Range(0, 150).Select(_ => (ulong)rng.Next(1600)).Distinct().ToList();
            await c.DeleteAsync(dead.Select(i => (RecordId)i).ToList());
            foreach (var i in dead) live.Remove(i);
            deleted.AddRange(dead);
            await c.CheckpointAsync();
            Assert.Equal(trained, IndexFiles()); // the checkpoint did not write the index again
            Assert.Equal(written, File.GetLastWriteTimeUtc(Path.Combine(c0!.DirectoryPath, trained[0])));

            // After the checkpoint: replayed from the write-ahead log on open.
            await c.UpsertAsync(Enumerable.Range(1600, 50).Select(i => new VectorRecord((ulong)i, data[i])).ToList());
            for (int i = 1600; i < 1650; i++) live[(ulong)i] = data[i];
            var dead2 = new ulong[] { 1601, 1300, 7 };
            await c.DeleteAsync(dead2.Select(i => (RecordId)i).ToList());
            foreach (var i in dead2) live.Remove(i);
            deleted.AddRange(dead2);
        }

        using (var db = AdannsDatabase.Open(Dir, options))
        {
            var c = db.GetCollection("s"); // opening checks the index holds exactly the live records
            Assert.Equal(live.Count, c.Count);
            Assert.True(c.GetStats().IndexTrained);
            var all = new SearchParams { NProbe = 8 };
            foreach (var (id, v) in live.Where(e => e.Key % 5 == 0))
            {
                var hit = c.Search(v, 1, all);
                Assert.True(hit.Length == 1 && hit[0].Id.Number == id, $"record {id} not found by its own vector after reopen");
            }
            foreach (var id in deleted.Where(i => !live.ContainsKey(i)))
                Assert.Null(await c.GetAsync(id));
            var probe = c.Search(data[1300], 50, all);
            Assert.DoesNotContain(probe, h => !live.ContainsKey(h.Id.Number));
        }
    }

    [Fact]
    public async Task AnOlderIvfCollectionsSnapshotLoads_AndKeepsNoSecondCopyOfItsVectors()
    {
        // A collection trained by an older version held an IVF index file (format 1.0–1.3: every row's id and full
        // vector in its list). Such a snapshot must still load, and the collection then keeps codes only.
        const int D = 16, N = 1200;
        var data = Vectors(N, D, 31);
        var options = new DatabaseOptions { CheckpointInterval = TimeSpan.FromHours(1), CheckpointOnDispose = false, BackgroundMaintenance = false };
        string file;
        using (var db = AdannsDatabase.Open(Dir, options))
        {
            var c = db.CreateCollection(new CollectionConfig("old", D, Metric.L2, "IVF8") { TrainThreshold = 1000 });
            await c.UpsertAsync(Enumerable.Range(0, N).Select(i => new VectorRecord((ulong)i, data[i])).ToList());
            Assert.True(await c.WaitForIndexAsync());
            await c.CheckpointAsync();
            file = Directory.GetFiles(c.DirectoryPath, "index-*.pqx").Single();
        }

        // The snapshot's ids are the records' store keys, in write order: rewrite it in the IVF 1.0 format the older
        // collections wrote (under the name the manifest holds), row i of the batch under the i-th key, lists by i mod 8.
        long[] keys;
        using (var zeros = new VectorSet(D, 1))
        using (var pq = IvfIndex.Load(file, new RowSource(zeros)))
        {
            keys = Enumerable.Range(0, 100 * N).Select(k => (long)k).Where(pq.Contains).ToArray();
            Assert.Equal(N, keys.Length);
        }
        Persistence.SectionFile.Write(file, "ADNSIVF\u001A"u8, 1, 0, w =>
        {
            w.Section("META", b =>
            {
                b.Write(D);
                b.Write((byte)Metric.L2);
                b.Write(8);
                b.Write(D);
                b.Write(D);
                b.Write(keys[^1] + 1);
                var spec = System.Text.Encoding.UTF8.GetBytes("IVF8");
                b.Write(spec.Length);
                b.Write(spec);
            });
            w.Section("CENT", b =>
            {
                for (int l = 0; l < 8; l++)
                    foreach (float v in data[l]) b.Write(v);
            });
            for (int l = 0; l < 8; l++)
            {
                int list = l;
                w.Section("LIST", b =>
                {
                    b.Write(list);
                    b.Write(Enumerable.Range(0, N).Count(i => i % 8 == list));
                    for (int i = list; i < N; i += 8)
                    {
                        b.Write(keys[i]);
                        foreach (float v in data[i]) b.Write(v);
                    }
                });
            }
        });

        using (var db = AdannsDatabase.Open(Dir, options))
        {
            var c = db.GetCollection("old"); // opening checks the index holds exactly the live records
            Assert.Equal(N, c.Count);
            Assert.True(c.GetStats().IndexTrained);
            var mem = c.GetMemory();
            Assert.Equal(0, mem.RerankBytesPerVector); // the file's rows were dropped: the record store holds the only copy
            var all = new SearchParams { NProbe = 8 };
            for (int i = 0; i < N; i += 7)
            {
                var hit = c.Search(data[i], 1, all);
                Assert.True(hit.Length == 1 && hit[0].Id.Number == (ulong)i, $"record {i} not found by its own vector in the older snapshot");
            }
        }
    }
}
