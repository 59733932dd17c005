using Adanns.Embeddings;
using Adanns.Engine;
using Adanns.Engine.Collections;
using Adanns.Engine.Storage;
using Adanns.Server.Tests;
using Grpc.Core;
using V1 = Adanns.Protocol.V1;

namespace Adanns.VectorData.Tests;

internal static class Sentences
{
    public static readonly string[] All =
    [
        "The cat sat on the warm windowsill all afternoon.",
        "Interest rates rose again as the central bank fought inflation.",
        "A recipe for sourdough bread with a crisp crust.",
        "The rocket reached orbit after a flawless launch.",
        "Tips for growing tomatoes on a sunny balcony.",
        "The orchestra rehearsed the symphony before the premiere.",
    ];
}

/// <summary>Collections created with an embedder take text, embedded and searched (embedded API).</summary>
public sealed class TextCollectionTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "adanns-text-" + Guid.NewGuid().ToString("N"));
    private readonly Dictionary<string, ITextEmbedder> _embedders = new() { ["minilm"] = new MiniLmTextEmbedder(TestModel.Generator) };

    private AdannsDatabase Open(bool withEmbedders = true) =>
        AdannsDatabase.Open(_dir, new DatabaseOptions { BackgroundMaintenance = false, Embedders = withEmbedders ? _embedders : null });

    [Fact]
    public async Task TextIsEmbeddedStoredAndSearchableAcrossARestart()
    {
        using (var db = Open())
        {
            var c = db.CreateCollection(new CollectionConfig("texts", 0, Metric.Cosine, "IVF16") { Embedder = "MiniLM" });
            Assert.Equal(384, c.Dimension); // from the embedder
            Assert.Equal("minilm", c.Config.Embedder); // the registered name
            await c.UpsertTextAsync(Sentences.All.Select((t, i) => new TextRecord((ulong)i, t, new Dictionary<string, PayloadValue> { ["n"] = i })).ToArray());
            var stored = await c.GetAsync(2UL);
            Assert.Equal(Sentences.All[2], stored!.Payload!["text"].AsString);
            Assert.Equal(2, stored.Payload["n"].AsNumber);
            // The stored vector is the model's embedding of the text.
            var direct = await TestModel.Generator.GenerateAsync([Sentences.All[2]]);
            for (int j = 0; j < 384; j++) Assert.Equal(direct[0].Vector.Span[j], stored.Vector.Span[j], 1e-6f);
            for (int i = 0; i < Sentences.All.Length; i++)
            {
                var r = await c.SearchTextAsync(Sentences.All[i], 1, withPayload: true);
                Assert.Equal(new RecordId((ulong)i), r.Hits[0].Id);
                Assert.True(r.Hits[0].Score > 0.99f);
            }
        }
        using (var db = Open())
        {
            var c = db.GetCollection("texts");
            Assert.Equal("minilm", c.Config.Embedder);
            var r = await c.SearchTextAsync("bake a loaf of bread", 1);
            Assert.Equal(new RecordId(2UL), r.Hits[0].Id);
        }
        using (var db = Open(withEmbedders: false))
        {
            // Still serves vectors; text says why it cannot.
            var c = db.GetCollection("texts");
            Assert.Null(c.Embedder);
            Assert.Equal(Sentences.All.Length, c.Count);
            var e = await Assert.ThrowsAsync<AdannsException>(async () => await c.SearchTextAsync("bread", 1));
            Assert.Contains("not registered", e.Message);
        }
    }

    [Fact]
    public async Task ErrorsNameTheProblem()
    {
        using var db = Open();
        var e = Assert.Throws<AdannsException>(() => db.CreateCollection(new CollectionConfig("a", 0, Metric.Cosine, "IVF16") { Embedder = "word2vec" }));
        Assert.Equal(AdannsErrorCode.InvalidConfiguration, e.Code);
        Assert.Contains("unknown embedder \"word2vec\"", e.Message);
        e = Assert.Throws<AdannsException>(() => db.CreateCollection(new CollectionConfig("b", 128, Metric.Cosine, "IVF16") { Embedder = "minilm" }));
        Assert.Contains("differs from embedder", e.Message);
        var plain = db.CreateCollection(new CollectionConfig("plain", 384, Metric.Cosine, "IVF16"));
        e = await Assert.ThrowsAsync<AdannsException>(() => plain.UpsertTextAsync([new TextRecord(1UL, "hello")]));
        Assert.Equal(AdannsErrorCode.InvalidArgument, e.Code);
        Assert.Contains("no embedder", e.Message);
        var texts = db.CreateCollection(new CollectionConfig("t", 384, Metric.Cosine, "IVF16") { Embedder = "minilm" });
        e = await Assert.ThrowsAsync<AdannsException>(() => texts.UpsertTextAsync([new TextRecord(1UL, "fine"), new TextRecord(2UL, "  ")]));
        Assert.Equal(1, e.RecordIndex);
        Assert.Equal(0, texts.Count); // nothing stored
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>The same over gRPC: CreateCollectionRequest.embedder, Point.text, SearchRequest.text.</summary>
public sealed class GrpcTextTests(RemoteStoreFixture fixture) : IClassFixture<RemoteStoreFixture>
{
    private ServerFixture Server => fixture.Server;

    private async Task<string> CreateAsync()
    {
        string name = "text-" + Guid.NewGuid().ToString("N")[..10];
        var info = await Server.Client.Collections.CreateAsync(new V1.CreateCollectionRequest { Name = name, Metric = V1.Metric.Cosine, Embedder = "minilm" });
        Assert.Equal(384u, info.Dimension);
        Assert.Equal("minilm", info.Embedder);
        var points = Sentences.All.Select((t, i) => new V1.Point { Id = (ulong)i, Text = t }).ToList();
        points.Add(V1.Point.Create(100UL, (await TestModel.Generator.GenerateAsync(["a vector given directly"]))[0].Vector.Span)); // mixed batch
        Assert.Equal(points.Count, await Server.Client.UpsertAsync(name, points));
        return name;
    }

    [Fact]
    public async Task TextPointsAndTextQueries()
    {
        string name = await CreateAsync();
        for (int i = 0; i < Sentences.All.Length; i++)
        {
            var r = await Server.Client.SearchAsync(new V1.SearchRequest { Collection = name, Text = Sentences.All[i], TopK = 3, WithPayload = true });
            Assert.Equal((ulong)i, r.Points[0].Id.Num);
            Assert.Equal(Sentences.All[i], r.Points[0].Payload["text"].StringValue);
        }
        var batch = new V1.SearchBatchRequest { Collection = name };
        batch.Searches.Add(new V1.SearchRequest { Text = "a symphony concert", TopK = 1 });
        batch.Searches.Add(AdannsClientQuery(name));
        batch.Searches.Add(new V1.SearchRequest { Text = "space launch", TopK = 1 });
        var results = await Server.Client.SearchApi.SearchBatchAsync(batch);
        Assert.Equal(5UL, results.Results[0].Points[0].Id.Num);
        Assert.Equal(100UL, results.Results[1].Points[0].Id.Num);
        Assert.Equal(3UL, results.Results[2].Points[0].Id.Num);
        var got = await Server.Client.GetAsync(name, [(V1.PointId)100UL]);
        Assert.False(got[0].Payload.ContainsKey("text"));
    }

    private static V1.SearchRequest AdannsClientQuery(string name)
    {
        var v = TestModel.Generator.GenerateAsync(["a vector given directly"]).GetAwaiter().GetResult()[0].Vector.Span;
        return Adanns.Client.AdannsClient.Query(name, v, 1);
    }

    [Fact]
    public async Task TextErrorsAreInvalidArgument()
    {
        string name = await CreateAsync();
        async Task<RpcException> Fails(Func<Task> call) => await Assert.ThrowsAsync<RpcException>(call);

        var both = V1.Point.Create(7UL, new float[384]);
        both.Text = "also text";
        var e = await Fails(() => Server.Client.UpsertAsync(name, [both]));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Contains("either text or vector", e.Status.Detail);

        var q = AdannsClientQuery(name);
        q.Text = "and text";
        e = await Fails(() => Server.Client.SearchAsync(q));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);

        e = await Fails(() => Server.Client.Collections.CreateAsync(new V1.CreateCollectionRequest { Name = "nope-" + name, Metric = V1.Metric.Cosine, Embedder = "bert-large" }).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Contains("unknown embedder", e.Status.Detail);

        e = await Fails(() => Server.Client.Collections.CreateAsync(new V1.CreateCollectionRequest { Name = "dim-" + name, Dimension = 100, Metric = V1.Metric.Cosine, Embedder = "minilm" }).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);

        string plain = "plain-" + name;
        await Server.Client.CreateCollectionAsync(plain, 384, V1.Metric.Cosine);
        e = await Fails(() => Server.Client.UpsertAsync(plain, [new V1.Point { Id = 1UL, Text = "hello" }]));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Contains("no embedder", e.Status.Detail);
        e = await Fails(() => Server.Client.SearchAsync(new V1.SearchRequest { Collection = plain, Text = "hello", TopK = 1 }));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Equal(0, await Server.Client.CountAsync(plain));
    }
}
