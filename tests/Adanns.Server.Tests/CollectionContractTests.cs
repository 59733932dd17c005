using System.Diagnostics.Metrics;
using Adanns.Client;
using Adanns.Engine;
using Adanns.Engine.Collections;
using Adanns.Engine.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Adanns.Server.Tests;

/// <summary>
/// One suite for <see cref="IAdannsCollection"/>, run against an embedded database and against a real server on
/// loopback through <see cref="AdannsClient"/>: the same calls, results and typed errors.
/// </summary>
public abstract class CollectionContractTests
{
    private const int D = 16;

    protected abstract IAdannsDatabase Db { get; }

    private static string Unique(string prefix) => Helpers.UniqueName(prefix);

    private static Dictionary<string, PayloadValue> PayloadOf(int i) => new()
    {
        ["color"] = i % 3 == 0 ? "red" : "blue",
        ["price"] = i,
        ["tags"] = new PayloadValue[] { $"t{i % 4}", "all" },
    };

    private async Task<(IAdannsCollection C, float[][] Data)> FilledAsync(int n, Metric metric = Metric.L2)
    {
        var data = Helpers.Vectors(n, D, 7);
        // Exact search (no training) so results can be compared with brute force.
        var c = await Db.CreateCollectionAsync(new CollectionConfig(Unique("ct"), D, metric, "IVF4") { TrainThreshold = 1_000_000 });
        await c.UpsertAsync(Enumerable.Range(0, n).Select(i => new VectorRecord((ulong)i, data[i], i % 5 == 4 ? null : PayloadOf(i))).ToList());
        return (c, data);
    }

    private static float L2(float[] a, float[] b)
    {
        float s = 0;
        for (int i = 0; i < a.Length; i++) s += (a[i] - b[i]) * (a[i] - b[i]);
        return s;
    }

    [Fact]
    public async Task WritesReadsCountsAndSearches()
    {
        var (c, data) = await FilledAsync(400);
        Assert.Equal(D, c.Dimension);
        Assert.Equal(Metric.L2, c.Metric);
        Assert.Contains(c.Name, await Db.ListCollectionsAsync());
        var reopened = await Db.OpenCollectionAsync(c.Name);
        Assert.Equal(D, reopened.Dimension);

        var r = await c.GetAsync(3UL);
        Assert.Equal(data[3], r!.Vector.ToArray());
        Assert.Equal("red", r.Payload!["color"].AsString);
        Assert.Equal(["t3", "all"], r.Payload["tags"].AsList.Select(v => v.AsString));
        Assert.Null((await c.GetAsync(4UL))!.Payload); // stored without a payload
        Assert.Null(await c.GetAsync("absent"));
        var many = await c.GetManyAsync([10UL, "absent", 2UL, 10UL]);
        Assert.Equal([10UL, 0UL, 2UL, 10UL], many.Select(m => m?.Id.Number ?? 0));
        Assert.Null(many[1]);

        Assert.Equal([true, false, true], await c.ExistAsync([399UL, 400UL, 0UL]));
        Assert.Equal(400, await c.CountAsync());
        var red = Filter.Eq("color", "red");
        Assert.Equal(Enumerable.Range(0, 400).Count(i => i % 5 != 4 && i % 3 == 0), await c.CountAsync(red));
        var cheapBlue = Filter.Eq("color", "blue") & Filter.Range("price", max: 100, maxInclusive: false) & !Filter.In("tags", "t1", "t2");
        Assert.Equal(Enumerable.Range(0, 100).Count(i => i % 5 != 4 && i % 3 != 0 && i % 4 is 0 or 3), await c.CountAsync(cheapBlue));

        // Exact search: the brute-force top 5, best first, with payloads on request.
        var q = data[17].Select(x => x + 0.01f).ToArray();
        var res = await c.SearchAsync(q, 5, withPayload: true);
        var truth = Enumerable.Range(0, 400).OrderBy(i => L2(q, data[i])).Take(5).Select(i => (ulong)i).ToArray();
        Assert.Equal(truth, res.Hits.Select(h => h.Id.Number));
        Assert.Equal(SearchPath.Flat, res.Report.Path);
        Assert.Equal("blue", res.Hits[0].Payload!["color"].AsString); // 17 % 3 != 0
        Assert.True(res.Report.Stats.VectorsScanned >= 400);
        var filtered = await c.SearchAsync(q, 5, filter: red, withPayload: true);
        Assert.All(filtered.Hits, h => Assert.True(red.Matches(h.Payload)));
        Assert.Equal(5, filtered.Hits.Count);

        var queries = Enumerable.Range(0, 600).Select(i => (ReadOnlyMemory<float>)data[i % 400]).ToList(); // more than one chunk
        var batch = await c.SearchBatchAsync(queries, 3);
        Assert.Equal(600, batch.Count);
        for (int i = 0; i < 600; i += 37) Assert.Equal((ulong)(i % 400), batch[i].Hits[0].Id.Number);

        Assert.Equal(2, await c.DeleteAsync([1UL, 2UL, "absent"]));
        await c.UpsertAsync([new VectorRecord("s1", data[5], new Dictionary<string, PayloadValue> { ["x"] = true })]);
        var desc = await c.DescribeAsync();
        Assert.Equal(399, desc.Count);
        Assert.Equal(c.Name, desc.Name);
        Assert.Equal("IVF4", desc.IndexSpec);
        Assert.False(desc.Stats.IndexTrained);
        await c.CheckpointAsync();
        Assert.Equal((await c.DescribeAsync()).Stats.AppliedLsn, (await c.DescribeAsync()).Stats.CheckpointLsn);
        Assert.False(await c.WaitForIndexAsync()); // 399 vectors, threshold 1,000,000: too few to train
        Assert.True(await Db.DropCollectionAsync(c.Name));
        Assert.False(await Db.DropCollectionAsync(c.Name));
    }

    [Fact]
    public async Task ErrorsAreTypedWithTheirCode()
    {
        var (c, data) = await FilledAsync(50);
        var records = Enumerable.Range(0, 3).Select(i => new VectorRecord((ulong)(1000 + i), i == 2 ? new float[D - 1] : data[i])).ToList();
        var e = await Assert.ThrowsAsync<AdannsException>(() => c.UpsertAsync(records));
        Assert.Equal(AdannsErrorCode.WrongDimension, e.Code);
        Assert.Equal(2, e.RecordIndex);
        Assert.Null(await c.GetAsync(1000UL)); // the batch is rejected whole

        var nan = data[0].ToArray();
        nan[3] = float.NaN;
        Assert.Equal(AdannsErrorCode.NonFiniteVector, (await Assert.ThrowsAsync<AdannsException>(async () => await c.SearchAsync(nan, 3))).Code);
        Assert.Equal(AdannsErrorCode.WrongDimension, (await Assert.ThrowsAsync<AdannsException>(async () => await c.SearchAsync(new float[D + 1], 3))).Code);
        Assert.Equal(AdannsErrorCode.DuplicateId, (await Assert.ThrowsAsync<AdannsException>(() =>
            c.UpsertAsync([new VectorRecord(1UL, data[1]), new VectorRecord(1UL, data[2])]))).Code);
        Assert.Equal(AdannsErrorCode.CollectionNotFound, (await Assert.ThrowsAsync<AdannsException>(() => Db.OpenCollectionAsync("no-such-collection"))).Code);
        Assert.Equal(AdannsErrorCode.CollectionExists, (await Assert.ThrowsAsync<AdannsException>(() =>
            Db.CreateCollectionAsync(new CollectionConfig(c.Name, D, Metric.L2, "IVF4")))).Code);
        Assert.Equal(AdannsErrorCode.InvalidConfiguration, (await Assert.ThrowsAsync<AdannsException>(() =>
            Db.CreateCollectionAsync(new CollectionConfig("bad name!", D, Metric.L2, "IVF4")))).Code);
        Assert.Equal(AdannsErrorCode.InvalidConfiguration, (await Assert.ThrowsAsync<AdannsException>(() =>
            Db.CreateCollectionAsync(new CollectionConfig(Unique("spec"), D, Metric.L2, "NotASpec")))).Code);

        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await c.SearchAsync(data[0], 3, cancellationToken: cancelled.Token));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => c.UpsertAsync([new VectorRecord(5000UL, data[0])], cancellationToken: cancelled.Token));
        Assert.Null(await c.GetAsync(5000UL));
        await Db.DropCollectionAsync(c.Name);
    }

    [Fact]
    public async Task ATrainedIndexReportsItsTuning_AndATargetRecallPicksAProfiledPoint()
    {
        var data = Helpers.Vectors(3000, D, 11);
        var c = await Db.CreateCollectionAsync(new CollectionConfig(Unique("tune"), D, Metric.L2, "IVF16") { TrainThreshold = 2000 });
        Assert.Null((await c.DescribeAsync()).Tuning); // untrained: exact searches, nothing tuned
        for (int start = 0; start < data.Length; start += 500) // the server's default max_batch
            await c.UpsertAsync(Enumerable.Range(start, 500).Select(i => new VectorRecord((ulong)i, data[i])).ToList());
        Assert.True(await c.WaitForIndexAsync());

        var described = await c.DescribeAsync();
        // Resident memory, embedded and as the server reports it: a rigid IVF index's codes are its float rows (at least
        // 4·D bytes per vector); the full vectors the rerank and exact paths read are the record store's (one copy).
        Assert.NotNull(described.Memory);
        Assert.True(described.Memory.Value.VectorsOnDisk);
        Assert.Equal(3000, described.Memory.Value.Count);
        Assert.True(described.Memory.Value.IndexBytesPerVector >= 4 * D, $"{described.Memory.Value.IndexBytesPerVector} index bytes per vector");
        var tuning = described.Tuning;
        Assert.NotNull(tuning);
        Assert.Equal("IVF16", tuning.Spec);
        Assert.NotNull(tuning.Defaults);
        Assert.InRange(tuning.Defaults.Value.NProbe, 1, 16);
        Assert.Equal(D, tuning.Defaults.Value.ScanDim);
        // Profiled on training (embedded: DatabaseOptions.ProfileIndexes; the server's default): frontier points by FLOPs
        // (the FLOPs frontier's recall rises along them; time-frontier points sit in between).
        var profile = tuning.Profile;
        Assert.NotNull(profile);
        Assert.InRange(profile.VectorCount, 2000, 3000);
        Assert.True(profile.Points.Count >= 2, $"{profile.Points.Count} profile points");
        for (int i = 1; i < profile.Points.Count; i++)
            Assert.True(profile.Points[i].FlopsPerQuery >= profile.Points[i - 1].FlopsPerQuery);
        Assert.True(profile.Points.Max(p => p.Recall) > profile.Points[0].Recall);

        // A recall target (sent as params.target_recall remotely) runs a profiled point that reaches it, and says so.
        double best = profile.Points.Max(p => p.Recall);
        var res = await c.SearchAsync(data[5], 10, new Engine.Indexes.SearchParams { TargetRecall = best });
        Assert.Equal(SearchPath.Index, res.Report.Path);
        Assert.Equal(best, res.Report.Used!.Value.PredictedRecall);
        Assert.Contains(profile.Points, p => p.Recall == best && p.Params.NProbe == res.Report.Used.Value.NProbe);
        Assert.Equal(5UL, res.Hits[0].Id.Number);
        var bad = await Assert.ThrowsAsync<AdannsException>(async () => await c.SearchAsync(data[5], 10, new Engine.Indexes.SearchParams { TargetRecall = 1.5 }));
        Assert.Contains("1.5", bad.Message);
        await Db.DropCollectionAsync(c.Name);
    }

    [Fact]
    public async Task TextGoesInAndOutThroughTheSameInterface()
    {
        var c = await Db.CreateCollectionAsync(new CollectionConfig(Unique("text"), 0, Metric.Cosine, "IVF4") { Embedder = "minilm" });
        Assert.Equal(384, c.Dimension);
        string[] texts = ["a fast text editor for the terminal", "library for decoding JPEG images", "the GNU C compiler"];
        await c.UpsertTextAsync(texts.Select((t, i) => new TextRecord((ulong)i, t, new Dictionary<string, PayloadValue> { ["n"] = i })).ToList());
        var hit = (await c.SearchTextAsync(texts[1], 2, withPayload: true)).Hits[0];
        Assert.Equal(1UL, hit.Id.Number);
        Assert.Equal(texts[1], hit.Payload![Collection.TextField].AsString);
        Assert.Equal(1, hit.Payload["n"].AsNumber);
        Assert.InRange(hit.Score, 0.999f, 1.001f); // cosine of the text with itself
        var desc = await c.DescribeAsync();
        Assert.Equal("minilm", desc.Embedder);
        Assert.Equal(384, desc.Dimension);

        var plain = await Db.CreateCollectionAsync(new CollectionConfig(Unique("vec"), 4, Metric.L2, "IVF4"));
        Assert.Null((await plain.DescribeAsync()).Embedder);
        Assert.Equal(AdannsErrorCode.InvalidArgument, (await Assert.ThrowsAsync<AdannsException>(async () => await plain.SearchTextAsync("hello", 3))).Code);
        Assert.Equal(AdannsErrorCode.InvalidArgument, (await Assert.ThrowsAsync<AdannsException>(() => plain.UpsertTextAsync([new TextRecord(1UL, "hello")]))).Code);
        Assert.Equal(0, await plain.CountAsync());
        await Db.DropCollectionAsync(c.Name);
        await Db.DropCollectionAsync(plain.Name);
    }

    [Fact]
    public async Task CancellingALongBatch_StopsIt()
    {
        var (c, data) = await FilledAsync(300);
        const int Chunk = 256, Total = 100 * Chunk;
        var queries = Enumerable.Range(0, Total).Select(i => (ReadOnlyMemory<float>)data[i % data.Length]).ToList();

        // The engine's query counter for this collection (embedded, or inside the loopback server) shows how far the
        // batch got; once the first chunk is answered the batch is cancelled.
        using var cts = new CancellationTokenSource();
        long answered = 0;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (i, l) =>
        {
            if (i.Meter.Name == EngineMetrics.MeterName && i.Name == "adanns.engine.search.queries") l.EnableMeasurementEvents(i);
        };
        listener.SetMeasurementEventCallback<long>((_, v, tags, _) =>
        {
            foreach (var t in tags)
                if (t.Key == "collection" && (string?)t.Value == c.Name && Interlocked.Add(ref answered, v) >= Chunk) cts.Cancel();
        });
        listener.Start();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => c.SearchBatchAsync(queries, 5, cancellationToken: cts.Token));
        Assert.InRange(Interlocked.Read(ref answered), Chunk, 2 * Chunk); // stopped within the chunk in flight, not after 100 chunks
        await Db.DropCollectionAsync(c.Name);
    }
}

public sealed class EmbeddedContractTests : CollectionContractTests, IAsyncLifetime
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "adanns-contract-" + Guid.NewGuid().ToString("N"));
    private readonly Embeddings.MiniLmTextEmbedder _minilm = new();
    private AdannsDatabase? _db;

    protected override IAdannsDatabase Db => _db!;

    public Task InitializeAsync()
    {
        _db = AdannsDatabase.Open(_dir, new DatabaseOptions
        {
            CheckpointInterval = TimeSpan.FromHours(1),
            ProfileIndexes = true, // as the server does by default
            Embedders = new Dictionary<string, ITextEmbedder> { [Embeddings.MiniLmTextEmbedder.DefaultName] = _minilm },
        });
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        if (_db is not null) await _db.DisposeAsync();
        _minilm.Dispose();
        try { Directory.Delete(_dir, recursive: true); }
        catch (IOException) { }
    }
}

[Collection(ServerCollection.Name)]
public sealed class RemoteContractTests(ServerFixture server) : CollectionContractTests
{
    protected override IAdannsDatabase Db => server.Client;

    [Fact]
    public async Task AuthErrorsAreTyped()
    {
        using var anonymous = server.NewClient(null);
        Assert.Equal(AdannsErrorCode.Unauthenticated, (await Assert.ThrowsAsync<AdannsException>(() => anonymous.OpenCollectionAsync("x"))).Code);
        using var readOnly = server.NewClient(ServerFixture.ReadOnlyKey);
        var e = await Assert.ThrowsAsync<AdannsException>(() => readOnly.CreateCollectionAsync(new CollectionConfig(Helpers.UniqueName("ro"), 4, Metric.L2, "IVF4")));
        Assert.Equal(AdannsErrorCode.PermissionDenied, e.Code);
    }

    [Fact]
    public async Task AddAdannsClient_ResolvesAClientOnTheClientFactory()
    {
        var services = new ServiceCollection();
        services.AddAdannsClient(o =>
        {
            o.Address = new Uri(server.Address);
            o.ApiKey = ServerFixture.ReadWriteKey;
        });
        await using var sp = services.BuildServiceProvider();
        var db = sp.GetRequiredService<IAdannsDatabase>();
        Assert.Same(sp.GetRequiredService<AdannsClient>(), db);
        string name = Helpers.UniqueName("di");
        var c = await db.CreateCollectionAsync(new CollectionConfig(name, 4, Metric.InnerProduct, "IVF4"));
        await c.UpsertAsync([new VectorRecord(9UL, new float[] { 0, 1, 0, 0 })]);
        Assert.Equal(9UL, (await c.SearchAsync(new float[] { 0, 1, 0, 0 }, 1)).Hits[0].Id.Number);
        Assert.True(await db.DropCollectionAsync(name));

        var bad = new ServiceCollection().AddAdannsClient(o => o.Address = new Uri("/relative", UriKind.Relative)).BuildServiceProvider();
        Assert.Contains("absolute http", Assert.Throws<OptionsValidationException>(() => bad.GetRequiredService<AdannsClient>()).Message);
    }
}
