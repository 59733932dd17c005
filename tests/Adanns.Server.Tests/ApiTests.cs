using Adanns.Client;
using Adanns.Protocol.V1;
using Grpc.Core;
using Grpc.Core.Interceptors;
using static Adanns.Server.Tests.Helpers;

namespace Adanns.Server.Tests;

[Collection(ServerCollection.Name)]
public sealed class CollectionsApiTests(ServerFixture server)
{
    private AdannsClient C => server.Client;

    [Fact]
    public async Task CreateGetListExistsDelete()
    {
        string name = UniqueName("coll");
        var info = await C.CreateCollectionAsync(name, 16, Metric.L2, "IVF8", trainThreshold: 64);
        Assert.Equal(name, info.Name);
        Assert.Equal(16u, info.Dimension);
        Assert.Equal(Metric.L2, info.Metric);
        Assert.False(info.HigherIsBetter);
        Assert.Equal("IVF8", info.IndexSpec);
        Assert.Equal(64u, info.TrainThreshold);
        Assert.True(await C.CollectionExistsAsync(name));
        Assert.Contains(name, await C.ListCollectionsAsync());
        var got = await C.GetCollectionAsync(name);
        Assert.Equal(0ul, got.Count);
        Assert.False(got.IndexTrained);
        await C.DeleteCollectionAsync(name);
        Assert.False(await C.CollectionExistsAsync(name));
        Assert.DoesNotContain(name, await C.ListCollectionsAsync());
    }

    [Fact]
    public async Task DefaultSpecAndRotate()
    {
        string name = UniqueName("rot");
        var info = await C.CreateCollectionAsync(name, 8, Metric.Cosine, rotate: true);
        Assert.Equal("Auto", info.IndexSpec); // the default: the tuner decides rotation by measurement
        Assert.True(info.HigherIsBetter);
        await C.DeleteCollectionAsync(name);
        info = await C.CreateCollectionAsync(name, 8, Metric.Cosine, "IVF16", rotate: true);
        Assert.Equal("Rot,IVF16", info.IndexSpec);
        Assert.True(info.HigherIsBetter);
        await C.DeleteCollectionAsync(name);
    }

    [Fact]
    public async Task CreateErrors()
    {
        string name = UniqueName("dup");
        await C.CreateCollectionAsync(name, 4, Metric.InnerProduct, "IVF4");
        await Status(StatusCode.AlreadyExists, () => C.CreateCollectionAsync(name, 4, Metric.InnerProduct, "IVF4"), "already exists");
        await Status(StatusCode.InvalidArgument, () => C.CreateCollectionAsync(UniqueName("m"), 4, Metric.Unspecified), "metric");
        await Status(StatusCode.InvalidArgument, () => C.CreateCollectionAsync(UniqueName("d"), 0, Metric.L2), "dimension");
        await Status(StatusCode.InvalidArgument, () => C.CreateCollectionAsync("bad name!", 4, Metric.L2), "name");
        await Status(StatusCode.InvalidArgument, () => C.CreateCollectionAsync(UniqueName("s"), 4, Metric.L2, "IVF8@64"));
        await Status(StatusCode.InvalidArgument, () => C.CreateCollectionAsync(UniqueName("s"), 4, Metric.L2, "NotASpec"));
        await C.DeleteCollectionAsync(name);
    }

    [Fact]
    public async Task UnknownCollectionIsNotFound()
    {
        await Status(StatusCode.NotFound, () => C.GetCollectionAsync("no-such-collection"), "no-such-collection");
        await Status(StatusCode.NotFound, () => C.DeleteCollectionAsync("no-such-collection"));
        await Status(StatusCode.NotFound, () => C.CountAsync("no-such-collection"));
        await Status(StatusCode.NotFound, () => C.SearchAsync("no-such-collection", new float[32], 5));
        await Status(StatusCode.NotFound, () => C.UpsertAsync("no-such-collection", 1UL, new float[4]));
        await Status(StatusCode.NotFound, () => C.GetAsync("no-such-collection", [1UL]));
        await Status(StatusCode.NotFound, () => C.SnapshotAsync("no-such-collection"));
        await Status(StatusCode.NotFound, async () => { await foreach (var _ in C.BuildIndexAsync("no-such-collection")) { } });
    }
}

[Collection(ServerCollection.Name)]
public sealed class PointsApiTests(ServerFixture server)
{
    private AdannsClient C => server.Client;

    [Fact]
    public async Task UpsertGetCountDelete()
    {
        string name = UniqueName("pts");
        await C.CreateCollectionAsync(name, 8, Metric.L2, "IVF4");
        var vectors = Vectors(100, 8, seed: 1);
        Assert.Equal(100, await C.UpsertAsync(name, Points(vectors)));
        Assert.Equal(1, await C.UpsertAsync(name, "doc-a", vectors[0], [new("color", "red"), new("sizes", Value.List(1, 2))]));
        Assert.Equal(101, await C.CountAsync(name));
        Assert.Equal(25, await C.CountAsync(name, Filters.Eq("group", 3)));
        Assert.Equal(50, await C.CountAsync(name, Filters.Eq("tag", "even")));
        // (group in [1, 2) and odd) or color == red: ids ≡ 1 mod 4, plus doc-a.
        Assert.Equal(26, await C.CountAsync(name, Filters.Range("group", gte: 1, lte: 3) & Filters.In("tag", "odd") & Filters.Range("group", lt: 2) | Filters.Eq("color", "red")));

        var got = await C.GetAsync(name, [7UL, "doc-a", 12345UL]);
        Assert.Equal(2, got.Count);
        var p7 = got.Single(p => p.Id.Num == 7);
        Assert.Equal(vectors[7], p7.Vector.ToArray());
        Assert.Equal(3.0, p7.Payload["group"].NumberValue);
        Assert.Equal("odd", p7.Payload["tag"].StringValue);
        var doc = got.Single(p => p.Id.Str == "doc-a");
        Assert.Equal("red", doc.Payload["color"].StringValue);
        Assert.Equal(2, doc.Payload["sizes"].ListValue.Values.Count);
        var bare = await C.GetAsync(name, [7UL], withVectors: false, withPayload: false);
        Assert.Empty(bare[0].Vector);
        Assert.Empty(bare[0].Payload);

        Assert.Equal(2, await C.DeleteAsync(name, [1UL, 2UL, 999UL]));
        Assert.Equal(99, await C.CountAsync(name));
        int matched = (int)await C.CountAsync(name, Filters.Eq("group", 0));
        Assert.Equal(matched, await C.DeleteByFilterAsync(name, Filters.Eq("group", 0)));
        Assert.Equal(0, await C.CountAsync(name, Filters.Eq("group", 0)));
        Assert.Equal(99 - matched, await C.CountAsync(name));
        await C.DeleteCollectionAsync(name);
    }

    [Fact]
    public async Task UpsertErrorsNameTheBadPoint()
    {
        string name = UniqueName("bad");
        await C.CreateCollectionAsync(name, 4, Metric.L2, "IVF4");
        await Status(StatusCode.InvalidArgument, () => C.UpsertAsync(name, 1UL, new float[3]), "3 dims");
        await Status(StatusCode.InvalidArgument, () => C.UpsertAsync(name, 1UL, new[] { 1f, float.NaN, 0, 0 }), "non-finite");
        await Status(StatusCode.InvalidArgument, () => C.UpsertAsync(name, 1UL, new[] { 1f, float.PositiveInfinity, 0, 0 }), "non-finite");
        await Status(StatusCode.InvalidArgument, () => C.UpsertAsync(name, [new Point { Vector = { 1, 2, 3, 4 } }]), "points[0]");
        await Status(StatusCode.InvalidArgument, () => C.UpsertAsync(name, "", new float[4]), "empty");
        await Status(StatusCode.InvalidArgument, () => C.UpsertAsync(name, new string('x', 600), new float[4]));
        await Status(StatusCode.InvalidArgument, () => C.UpsertAsync(name, [Point.Create(5UL, new float[4]), Point.Create(5UL, new float[4])]), "more than once");
        await Status(StatusCode.InvalidArgument, () => C.UpsertAsync(name, 1UL, new float[4], [new("x", new Value())]), "not set");
        await Status(StatusCode.InvalidArgument, () => C.UpsertAsync(name, 1UL, new float[4], [new("x", double.NaN)]), "finite");
        var tooMany = Enumerable.Range(0, ServerFixture.MaxBatch + 1).Select(i => Point.Create((ulong)i, new float[4]));
        await Status(StatusCode.InvalidArgument, () => C.UpsertAsync(name, tooMany), "limit");
        await Status(StatusCode.InvalidArgument, () => C.DeleteAsync(name, []), "either ids or a filter");
        await Status(StatusCode.InvalidArgument, () => C.DeleteByFilterAsync(name, new Filter()), "not set");
        await Status(StatusCode.InvalidArgument, () => C.GetAsync(name, [new PointId()]), "id is not set");
        Assert.Equal(0, await C.CountAsync(name)); // nothing was written by the rejected batches
        await C.DeleteCollectionAsync(name);
    }
}

[Collection(ServerCollection.Name)]
public sealed class SearchApiTests(ServerFixture server)
{
    private AdannsClient C => server.Client;

    [Fact]
    public async Task DemoCollectionAnswersAtOnce()
    {
        var info = await C.GetCollectionAsync("demo");
        Assert.Equal(3000ul, info.Count);
        Assert.True(info.IndexTrained);
        var q = (await C.GetAsync("demo", [17UL]))[0].Vector.ToArray();
        var r = await C.SearchAsync("demo", q, 5, withPayload: true, withVectors: true);
        Assert.Equal(5, r.Points.Count);
        Assert.Equal(17ul, r.Points[0].Id.Num);
        Assert.Equal(1f, r.Points[0].Score, 3); // cosine with itself
        Assert.Equal(q, r.Points[0].Vector.ToArray());
        Assert.True(r.Points[0].Payload.ContainsKey("cluster"));
        for (int i = 1; i < r.Points.Count; i++) Assert.True(r.Points[i - 1].Score >= r.Points[i].Score);
        Assert.Equal(SearchPath.Index, r.Stats.Path);
        Assert.NotNull(r.Stats.Used);
        Assert.True(r.Stats.Flops > 0);
        Assert.True(r.Stats.VectorsScanned > 0);
        Assert.True(r.Stats.ServerMicros > 0);

        var p = new SearchParams { Nprobe = 16, ScanDim = 8, CoarseDim = 8, Shortlist = 50, Rerank = { new RerankStage { Dim = 32 } } };
        var r2 = await C.SearchAsync("demo", q, 5, parameters: p);
        Assert.Equal(16u, r2.Stats.Used.Nprobe);
        Assert.Equal(8u, r2.Stats.Used.ScanDim);
        Assert.Equal(8u, r2.Stats.Used.CoarseDim);
        Assert.Equal(50u, r2.Stats.Used.Shortlist);
        Assert.Equal(32u, r2.Stats.Used.Rerank.Single().Dim);
        Assert.Equal(16ul, r2.Stats.ListsProbed);
        Assert.Equal(17ul, r2.Points[0].Id.Num);

        // A compute budget picks a profiled configuration (the server profiles every trained index).
        var cheap = await C.SearchAsync("demo", q, 5, parameters: new SearchParams { MaxFlops = 20_000 });
        var rich = await C.SearchAsync("demo", q, 5, parameters: new SearchParams { MaxFlops = 1e9 });
        Assert.True(cheap.Stats.Used.BudgetPoint >= 0);
        Assert.True(rich.Stats.Used.BudgetPoint >= 0);
        Assert.Equal(17ul, rich.Points[0].Id.Num);

        var exact = await C.SearchAsync("demo", q, 5, parameters: new SearchParams { Exact = true });
        Assert.True(exact.Stats.Used.Exact);
        Assert.Equal(3000ul, exact.Stats.VectorsScanned);

        var filtered = await C.SearchAsync("demo", q, 10, filter: Filters.Eq("parity", "even"), withPayload: true);
        Assert.NotEmpty(filtered.Points);
        Assert.All(filtered.Points, h => Assert.Equal("even", h.Payload["parity"].StringValue));

        var threshold = await C.SearchAsync("demo", q, 50, scoreThreshold: 0.9f);
        Assert.All(threshold.Points, h => Assert.True(h.Score >= 0.9f));
        Assert.True(threshold.Points.Count < 50);
    }

    [Fact]
    public async Task ExactUntilTrainedThenIndexL2()
    {
        string name = UniqueName("l2");
        await C.CreateCollectionAsync(name, 16, Metric.L2, "IVF8@8,Scan16", trainThreshold: 256);
        var vectors = Vectors(300, 16, seed: 5);
        await C.UpsertAsync(name, Points(vectors));
        var progress = new List<BuildIndexProgress>();
        await foreach (var pr in C.BuildIndexAsync(name)) progress.Add(pr);
        Assert.Equal(BuildIndexProgress.Types.Phase.Started, progress[0].Phase);
        Assert.Equal(BuildIndexProgress.Types.Phase.Done, progress[^1].Phase);
        Assert.True(progress[^1].IndexTrained);
        var r = await C.SearchAsync(name, vectors[42], 3);
        Assert.Equal(42ul, r.Points[0].Id.Num);
        Assert.Equal(0f, r.Points[0].Score, 4);
        Assert.True(r.Points[1].Score >= r.Points[0].Score); // L2: lower is better
        var within = await C.SearchAsync(name, vectors[42], 100, scoreThreshold: 0.5f);
        Assert.All(within.Points, h => Assert.True(h.Score <= 0.5f));

        string small = UniqueName("few");
        await C.CreateCollectionAsync(small, 4, Metric.L2, "IVF4", trainThreshold: 100);
        await C.UpsertAsync(small, Points(Vectors(10, 4, 2)));
        var rs = await C.SearchAsync(small, new float[] { 1, 0, 0, 0 }, 20);
        Assert.Equal(10, rs.Points.Count);
        Assert.Equal(SearchPath.Exact, rs.Stats.Path);
        BuildIndexProgress? last = null;
        await foreach (var pr in C.BuildIndexAsync(small)) last = pr;
        Assert.Equal(BuildIndexProgress.Types.Phase.TooFewVectors, last!.Phase);
        var snap = await C.SnapshotAsync(small);
        Assert.True(snap.CheckpointLsn >= 10);
        await C.DeleteCollectionAsync(name);
        await C.DeleteCollectionAsync(small);
    }

    [Fact]
    public async Task SearchBatch()
    {
        var q0 = (await C.GetAsync("demo", [3UL]))[0].Vector.ToArray();
        var q1 = (await C.GetAsync("demo", [4UL]))[0].Vector.ToArray();
        var r = await C.SearchBatchAsync("demo", [AdannsClient.Query("", q0, 3), AdannsClient.Query("", q1, 4)]);
        Assert.Equal(2, r.Results.Count);
        Assert.Equal(3ul, r.Results[0].Points[0].Id.Num);
        Assert.Equal(4, r.Results[1].Points.Count);
        Assert.Equal(4ul, r.Results[1].Points[0].Id.Num);
        await Status(StatusCode.InvalidArgument, () => C.SearchBatchAsync("demo", [AdannsClient.Query("", q0, 3), AdannsClient.Query("", new float[5], 3)]), "searches[1]");
        var tooMany = Enumerable.Range(0, ServerFixture.MaxBatch + 1).Select(_ => AdannsClient.Query("", q0, 1));
        await Status(StatusCode.InvalidArgument, () => C.SearchBatchAsync("demo", tooMany), "limit");
    }

    [Fact]
    public async Task SearchErrors()
    {
        var q = new float[32];
        q[0] = 1;
        await Status(StatusCode.InvalidArgument, () => C.SearchAsync("demo", new float[31], 5), "31 dims");
        await Status(StatusCode.InvalidArgument, () => C.SearchAsync("demo", Array.Empty<float>(), 5), "0 dims");
        var nan = (float[])q.Clone();
        nan[3] = float.NaN;
        await Status(StatusCode.InvalidArgument, () => C.SearchAsync("demo", nan, 5), "NaN");
        await Status(StatusCode.InvalidArgument, () => C.SearchAsync("demo", q, 0), "top_k");
        await Status(StatusCode.InvalidArgument, () => C.SearchAsync("demo", q, ServerFixture.MaxTopK + 1), "top_k");
        var huge = AdannsClient.Query("demo", q, 1);
        huge.TopK = uint.MaxValue;
        await Status(StatusCode.InvalidArgument, () => C.SearchAsync(huge), "top_k");
        await Status(StatusCode.InvalidArgument, () => C.SearchAsync("demo", q, 5, filter: new Filter()), "not set");
        await Status(StatusCode.InvalidArgument, () => C.SearchAsync("demo", q, 5, filter: new Filter { And = new FilterList() }), "at least one");
        await Status(StatusCode.InvalidArgument, () => C.SearchAsync("demo", q, 5, filter: new Filter { Range = new FieldRange { Field = "x" } }), "bound");
        await Status(StatusCode.InvalidArgument, () => C.SearchAsync("demo", q, 5, filter: Filters.Range("x", gte: 1, gt: 2)), "at most one");
        await Status(StatusCode.InvalidArgument, () => C.SearchAsync("demo", q, 5, filter: Filters.Eq("", 1)), "field");
        await Status(StatusCode.InvalidArgument, () => C.SearchAsync("demo", q, 5, filter: Filters.In("x")), "at least one");
        await Status(StatusCode.InvalidArgument, () => C.SearchAsync("demo", q, 5, filter: Filters.Eq("x", Value.List(1))), "scalar");
        var deep = Filters.Eq("x", 1);
        for (int i = 0; i < 1200; i++) deep = Filters.Not(deep);
        var e = await Assert.ThrowsAsync<RpcException>(() => C.SearchAsync("demo", q, 5, filter: deep));
        Assert.NotEqual(StatusCode.OK, e.StatusCode); // protobuf's recursion limit or the server's node limit
        await Status(StatusCode.InvalidArgument, () => C.SearchAsync("demo", q, 5, parameters: new SearchParams { Nprobe = 1000 }), "nprobe");
        await Status(StatusCode.InvalidArgument, () => C.SearchAsync("demo", q, 5, parameters: new SearchParams { Nprobe = 0 }), "nprobe");
        await Status(StatusCode.InvalidArgument, () => C.SearchAsync("demo", q, 5, parameters: new SearchParams { ScanDim = 33 }), "scan dim");
        await Status(StatusCode.InvalidArgument, () => C.SearchAsync("demo", q, 50, parameters: new SearchParams { Shortlist = 10 }), "shortlist");
        await Status(StatusCode.InvalidArgument, () => C.SearchAsync("demo", q, 5, parameters: new SearchParams { MaxFlops = 1e6, Nprobe = 4 }));
        await Status(StatusCode.InvalidArgument, () => C.SearchAsync("demo", q, 5, parameters: new SearchParams { MaxFlops = double.NaN }), "max_flops");
        await Status(StatusCode.InvalidArgument, () => C.SearchAsync("demo", q, 5, scoreThreshold: float.NaN), "score_threshold");
        // Over the server's message limit (4 MiB here): refused before it is parsed.
        await Status(StatusCode.ResourceExhausted, () => C.SearchAsync("demo", new float[(ServerFixture.MaxMessageBytes / 4) + 1000], 5));
        // Still healthy and answering.
        Assert.Equal(5, (await C.SearchAsync("demo", q, 5)).Points.Count);
    }

    [Fact]
    public async Task DeadlineAndCancellationAreHonoured()
    {
        var q = new float[32];
        q[0] = 1;
        var e = await Assert.ThrowsAsync<RpcException>(() => C.SearchApi.SearchAsync(AdannsClient.Query("demo", q, 5), deadline: DateTime.UtcNow.AddMilliseconds(-1)).ResponseAsync);
        Assert.Equal(StatusCode.DeadlineExceeded, e.StatusCode);
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();
        var c = await Assert.ThrowsAsync<RpcException>(() => C.SearchAsync("demo", q, 5, cancellationToken: cts.Token));
        Assert.Equal(StatusCode.Cancelled, c.StatusCode);
    }
}

[Collection(ServerCollection.Name)]
public sealed class AdminAndAuthTests(ServerFixture server)
{
    [Fact]
    public async Task ServerInfo()
    {
        var info = await server.Client.ServerInfoAsync();
        Assert.Equal(Adanns.Kernels.SimdInfo.Describe(), info.Simd);
        Assert.Equal("cpu", info.Device);
        Assert.False(string.IsNullOrEmpty(info.Version));
        Assert.Equal((uint)ServerFixture.MaxTopK, info.MaxTopK);
        Assert.Equal((uint)ServerFixture.MaxMessageBytes, info.MaxMessageBytes);
        Assert.Equal((uint)ServerFixture.MaxBatch, info.MaxBatch);
        Assert.True(info.AuthEnabled);
    }

    [Fact]
    public async Task ApiKeys()
    {
        using var none = server.NewClient(null);
        using var wrong = server.NewClient("not-a-key");
        using var ro = server.NewClient(ServerFixture.ReadOnlyKey);
        await Status(StatusCode.Unauthenticated, () => none.ListCollectionsAsync(), "api-key");
        await Status(StatusCode.Unauthenticated, () => none.SearchAsync("demo", new float[32], 1));
        await Status(StatusCode.Unauthenticated, () => wrong.ListCollectionsAsync(), "unknown");
        await Status(StatusCode.Unauthenticated, () => wrong.ServerInfoAsync());
        // Health needs no key.
        Assert.Equal(Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus.Serving, await none.HealthAsync());

        // The read-only key reads ...
        Assert.Contains("demo", await ro.ListCollectionsAsync());
        Assert.Equal(3000, await ro.CountAsync("demo"));
        var q = new float[32];
        q[1] = 1;
        Assert.Equal(2, (await ro.SearchAsync("demo", q, 2)).Points.Count);
        // ... but may not write.
        await Status(StatusCode.PermissionDenied, () => ro.CreateCollectionAsync("ro-made", 4, Metric.L2), "read-only");
        await Status(StatusCode.PermissionDenied, () => ro.UpsertAsync("demo", 1UL, q));
        await Status(StatusCode.PermissionDenied, () => ro.DeleteAsync("demo", [1UL]));
        await Status(StatusCode.PermissionDenied, () => ro.DeleteCollectionAsync("demo"));
        await Status(StatusCode.PermissionDenied, () => ro.SnapshotAsync("demo"));
        await Status(StatusCode.PermissionDenied, async () => { await foreach (var _ in ro.BuildIndexAsync("demo")) { } });
        Assert.Equal(3000, await ro.CountAsync("demo"));
        Assert.False(await ro.CollectionExistsAsync("ro-made"));
    }

    [Fact]
    public async Task MetricsAndHealthzOnTheHttp1Port()
    {
        await server.Client.ServerInfoAsync();
        using var http = new HttpClient();
        var health = await http.GetAsync(new Uri($"http://127.0.0.1:{server.HttpPort}/healthz"));
        Assert.Equal(System.Net.HttpStatusCode.OK, health.StatusCode);
        // The exporter caches a scrape for a moment (300 ms): poll until the ServerInfo call above shows.
        string metrics = "";
        for (var until = DateTime.UtcNow.AddSeconds(5); DateTime.UtcNow < until && !metrics.Contains("/adanns.v1.Admin/ServerInfo", StringComparison.Ordinal);)
        {
            using var scrape = new HttpRequestMessage(HttpMethod.Get, new Uri($"http://127.0.0.1:{server.HttpPort}/metrics"));
            scrape.Headers.Add("api-key", ServerFixture.ReadOnlyKey);
            metrics = await (await http.SendAsync(scrape)).Content.ReadAsStringAsync();
            await Task.Delay(100);
        }
        Assert.Contains("adanns_rpc_calls", metrics, StringComparison.Ordinal);
        Assert.Contains("adanns_collection_points", metrics, StringComparison.Ordinal);
        Assert.Contains("method=\"/adanns.v1.Admin/ServerInfo\"", metrics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ReflectionListsTheServices()
    {
        using var channel = Grpc.Net.Client.GrpcChannel.ForAddress(server.Address);
        var invoker = channel.CreateCallInvoker().Intercept(m =>
        {
            m.Add("api-key", ServerFixture.ReadOnlyKey);
            return m;
        });
        var client = new Grpc.Reflection.V1Alpha.ServerReflection.ServerReflectionClient(invoker);
        using var call = client.ServerReflectionInfo();
        await call.RequestStream.WriteAsync(new Grpc.Reflection.V1Alpha.ServerReflectionRequest { ListServices = "" });
        await call.RequestStream.CompleteAsync();
        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
        var names = call.ResponseStream.Current.ListServicesResponse.Service.Select(s => s.Name).ToList();
        foreach (var s in new[] { "adanns.v1.Collections", "adanns.v1.Points", "adanns.v1.Search", "adanns.v1.Admin", "grpc.health.v1.Health" })
            Assert.Contains(s, names);
    }
}
