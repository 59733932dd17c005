using Adanns.Engine;
using Adanns.Engine.Collections;
using Adanns.Engine.Indexes;
using Adanns.Engine.Storage;

namespace Adanns.Engine.Tests.Collections;

public class CollectionBasicsTests : CollectionTestBase
{
    [Fact]
    public async Task AcknowledgedWritesSurviveRestart_AndDeletesStayDeleted()
    {
        var data = Vectors(600, 16, 1);
        using (var db = AdannsDatabase.Open(Dir, QuietOptions))
        {
            var c = db.CreateCollection(new CollectionConfig("docs", 16, Metric.L2, "IVF8"));
            var batch = Enumerable.Range(0, 400).Select(i => new VectorRecord((ulong)i, data[i], PayloadOf(i))).ToList();
            await c.UpsertAsync(batch);
            await c.CheckpointAsync(); // half before the checkpoint, half replayed from the log
            for (int i = 400; i < 600; i++) await c.UpsertAsync($"s{i}", data[i], PayloadOf(i));
            Assert.True(await c.DeleteAsync(5UL));
            Assert.False(await c.DeleteAsync(5UL));
            Assert.True(await c.DeleteAsync("s450"));
            await c.UpsertAsync(7UL, data[8]); // replace: vector of 8, no payload
            Assert.Equal(598, c.Count);
        }
        using (var db = AdannsDatabase.Open(Dir, QuietOptions))
        {
            Assert.Empty(db.Quarantined);
            Assert.Equal(["docs"], db.ListCollections());
            var c = db.GetCollection("docs");
            Assert.Equal(598, c.Count);
            Assert.Null(await c.GetAsync(5UL));
            Assert.Null(await c.GetAsync("s450"));
            var r = await c.GetAsync("s451");
            Assert.NotNull(r);
            Assert.Equal(data[451], r!.Vector.ToArray());
            Assert.Equal("green", r.Payload!["color"].AsString); // 451 % 3 == 1
            Assert.Equal(451.0 % 100, r.Payload["price"].AsNumber);
            var replaced = await c.GetAsync(7UL);
            Assert.Equal(data[8], replaced!.Vector.ToArray());
            Assert.Null(replaced.Payload);
        }
    }

    [Fact]
    public async Task SearchFindsExactNeighbours_BeforeAndAfterTraining()
    {
        const int D = 16;
        var data = Vectors(1200, D, 2);
        using var db = AdannsDatabase.Open(Dir, QuietOptions);
        var c = db.CreateCollection(new CollectionConfig("v", D, Metric.Cosine, "IVF16") { TrainThreshold = 1000 });
        await c.UpsertAsync(Enumerable.Range(0, 500).Select(i => new VectorRecord((ulong)i, data[i])).ToList());
        var hits = c.Search(data[42], 3, null, null, false, out var path);
        Assert.Equal(SearchPath.Flat, path);
        Assert.Equal(42UL, hits[0].Id.Number);
        Assert.InRange(hits[0].Score, 0.999f, 1.001f);

        await c.UpsertAsync(Enumerable.Range(500, 700).Select(i => new VectorRecord((ulong)i, data[i])).ToList());
        Assert.True(await c.WaitForIndexAsync());
        Assert.True(c.GetStats().IndexTrained);
        hits = c.Search(data[1100], 3, new SearchParams { NProbe = 4 }, null, false, out path);
        Assert.Equal(SearchPath.Index, path);
        Assert.Equal(1100UL, hits[0].Id.Number);
    }

    [Fact]
    public async Task BadInputIsRejectedWithTypedErrors_AndHarmsNothing()
    {
        using var db = AdannsDatabase.Open(Dir, QuietOptions);
        var c = db.CreateCollection(new CollectionConfig("b", 4, Metric.L2, "IVF4") { MaxPayloadBytes = 100 });
        await c.UpsertAsync(1UL, new float[] { 1, 2, 3, 4 });

        async Task<AdannsException> Fails(Func<Task> f) => await Assert.ThrowsAsync<AdannsException>(f);
        Assert.Equal(AdannsErrorCode.WrongDimension, (await Fails(() => c.UpsertAsync(2UL, new float[] { 1, 2, 3 }))).Code);
        var nan = await Fails(() => c.UpsertAsync([new VectorRecord(3UL, new float[] { 1, 2, 3, 4 }), new VectorRecord(4UL, new float[] { 1, float.NaN, 3, 4 })]));
        Assert.Equal(AdannsErrorCode.NonFiniteVector, nan.Code);
        Assert.Equal(1, nan.RecordIndex);
        Assert.Contains("index 1", nan.Message);
        Assert.Equal(AdannsErrorCode.NonFiniteVector, (await Fails(() => c.UpsertAsync(2UL, new float[] { 1, float.PositiveInfinity, 3, 4 }))).Code);
        Assert.Equal(AdannsErrorCode.EmptyVector, (await Fails(() => c.UpsertAsync(2UL, Array.Empty<float>()))).Code);
        Assert.Equal(AdannsErrorCode.DuplicateId, (await Fails(() => c.UpsertAsync([new VectorRecord(9UL, new float[4]), new VectorRecord(9UL, new float[4])]))).Code);
        Assert.Equal(AdannsErrorCode.DuplicateId, (await Fails(() => c.DeleteAsync(new RecordId[] { "a", "a" }))).Code);
        var big = new Dictionary<string, PayloadValue> { ["text"] = new string('x', 200) };
        Assert.Equal(AdannsErrorCode.InvalidPayload, (await Fails(() => c.UpsertAsync(2UL, new float[4], big))).Code);
        Assert.Equal(AdannsErrorCode.InvalidId, Assert.Throws<AdannsException>(() => new RecordId("")).Code);
        Assert.Equal(AdannsErrorCode.CollectionNotFound, Assert.Throws<AdannsException>(() => db.GetCollection("nope")).Code);
        Assert.Equal(AdannsErrorCode.CollectionExists, Assert.Throws<AdannsException>(() => db.CreateCollection(new CollectionConfig("b", 4, Metric.L2, "IVF4"))).Code);
        Assert.Equal(AdannsErrorCode.InvalidConfiguration, Assert.Throws<AdannsException>(() => db.CreateCollection(new CollectionConfig("bad name", 4, Metric.L2, "IVF4"))).Code);
        Assert.Equal(AdannsErrorCode.InvalidConfiguration, Assert.Throws<AdannsException>(() => db.CreateCollection(new CollectionConfig("x", 4, Metric.L2, "IVF4@8"))).Code);
        Assert.Equal(AdannsErrorCode.WrongDimension, Assert.Throws<AdannsException>(() => c.Search(new float[3], 1)).Code);
        Assert.Equal(AdannsErrorCode.InvalidQuery, Assert.Throws<AdannsException>(() => c.Search(new float[4], 0)).Code);

        // Nothing of the rejected writes landed; the good record is intact.
        Assert.Equal(1, c.Count);
        var r = await c.GetAsync(1UL);
        Assert.Equal(new float[] { 1, 2, 3, 4 }, r!.Vector.ToArray());
        Assert.Null(await c.GetAsync(3UL));
    }

    [Fact]
    public async Task DropFreesTheDirectory_AndTheNameCanBeReused()
    {
        using var db = AdannsDatabase.Open(Dir, QuietOptions);
        var c = db.CreateCollection(new CollectionConfig("tmp", 8, Metric.L2, "IVF4"));
        await c.UpsertAsync(Enumerable.Range(0, 100).Select(i => new VectorRecord((ulong)i, new float[8] { i, 1, 2, 3, 4, 5, 6, 7 })).ToList());
        string dir = c.DirectoryPath;
        Assert.True(Directory.Exists(dir));
        Assert.True(await db.DropCollectionAsync("tmp"));
        Assert.False(Directory.Exists(dir));
        Assert.Empty(Directory.GetDirectories(Path.Combine(Dir, "collections")));
        Assert.Empty(db.ListCollections());
        await Assert.ThrowsAsync<AdannsException>(() => c.UpsertAsync(1UL, new float[8]));
        Assert.False(await db.DropCollectionAsync("tmp"));
        var again = db.CreateCollection(new CollectionConfig("tmp", 8, Metric.L2, "IVF4"));
        Assert.Equal(0, again.Count);
    }
}
