using Adanns.Engine;
using Adanns.Engine.Collections;
using Adanns.Engine.Indexes;
using Adanns.Engine.Storage;

namespace Adanns.Cluster.Tests;

/// <summary>One 3-silo cluster shared by the search tests (clusters start slowly).</summary>
public sealed class ClusterFixture : IAsyncLifetime
{
    public TestClusterHost Host { get; } = new(silos: 3, o => o.ReReplicateAfter = TimeSpan.FromHours(1));
    public string ReferenceRoot { get; } = Path.Combine(Path.GetTempPath(), $"adanns-ref-{Guid.NewGuid():N}");
    public AdannsDatabase Reference { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        await Host.StartAsync();
        Reference = AdannsDatabase.Open(ReferenceRoot);
    }

    public async Task DisposeAsync()
    {
        Reference.Dispose();
        TestClusterHost.DeleteRoot(ReferenceRoot);
        await Host.DisposeAsync();
    }
}

public sealed class ShardedSearchTests(ClusterFixture fx) : IClassFixture<ClusterFixture>
{
    private ClusterGateway Gateway => fx.Host.Gateway(fx.Host.Silos[0]);

    private static CollectionConfig Flat(string name, Metric metric, int d) => new(name, d, metric, "IVF16") { TrainThreshold = 1_000_000 };

    [Theory]
    [InlineData(1, Metric.L2)]
    [InlineData(2, Metric.Cosine)]
    [InlineData(3, Metric.L2)]
    [InlineData(5, Metric.InnerProduct)]
    public async Task Sharded_exact_search_equals_single_node_exact_search(int shards, Metric metric)
    {
        const int n = 1500, d = 24, k = 10;
        string name = $"exact{shards}{metric}";
        var vectors = Data.Vectors(n, d, seed: 7 + shards);
        var records = Data.Records(vectors);
        await Gateway.CreateCollectionAsync(new ClusterCollectionSpec(Flat(name, metric, d), shards, ReplicationFactor: 2));
        var single = fx.Reference.CreateCollection(Flat(name, metric, d));
        for (int s = 0; s < n; s += 500)
        {
            var batch = records.Skip(s).Take(500).ToArray();
            await Gateway.UpsertAsync(name, batch);
            await single.UpsertAsync(batch);
        }
        // Deletes and replacements go through the shards' sequences as well.
        var deleted = Enumerable.Range(0, 50).Select(i => (RecordId)(ulong)(i * 7)).ToArray();
        Assert.Equal(50, await Gateway.DeleteAsync(name, deleted));
        Assert.Equal(50, await single.DeleteAsync(deleted));
        // A replacement with another record's vector: equal scores, ordered by id on every node whatever rows moved.
        var moved = new VectorRecord(1ul, vectors[2], null);
        await Gateway.UpsertAsync(name, [moved]);
        await single.UpsertAsync([moved]);

        Assert.Equal(single.Count, await Gateway.CountAsync(name));
        var even = new FilterSpec { Kind = FilterKind.In, Field = "parity", Values = ["even"] };
        Assert.Equal(single.FindIds(even.ToFilter()).Count, await Gateway.CountAsync(name, even));

        var queries = Data.Vectors(25, d, seed: 99);
        foreach (var q in queries)
        {
            foreach (var filter in new FilterSpec?[] { null, even })
            {
                var expected = single.Search(q, k, filter: filter?.ToFilter());
                var (actual, totals) = await Gateway.SearchAsync(name, q, k, filter: filter);
                Assert.Equal(SearchPath.Flat, totals.Path);
                Assert.Equal(expected.Select(h => h.Id), actual.Select(h => h.Id));
                Assert.Equal(expected.Select(h => h.Score), actual.Select(h => h.Score));
            }
        }
        var got = await Gateway.GetAsync(name, [3ul, 7ul, 1ul, 999_999ul]);
        Assert.Equal([3ul, 1ul], got.Select(r => r.Id.Number));
        Assert.Equal(moved.Vector.ToArray(), got[1].Vector.ToArray());

        var info = await Gateway.DescribeAsync(name);
        Assert.Equal(shards, info.Shards.Count);
        Assert.Equal(single.Count, info.Count);
        foreach (var shard in info.Shards)
        {
            Assert.Equal(2, shard.Replicas.Count);
            Assert.Equal(2, shard.Replicas.Select(r => r.Node).Distinct().Count());
            Assert.All(shard.Replicas, r => Assert.Equal(ReplicaState.Active, r.State));
        }
    }

    [Fact]
    public async Task Sharded_ivf_search_recall_is_within_epsilon_of_single_node()
    {
        const int n = 6000, d = 32, k = 10;
        const string name = "ivf";
        var vectors = Data.Clustered(n, d, clusters: 40, seed: 11);
        var config = new CollectionConfig(name, d, Metric.L2, "IVF32") { TrainThreshold = 1024 };
        await Gateway.CreateCollectionAsync(new ClusterCollectionSpec(config, Shards: 3, ReplicationFactor: 1));
        var single = fx.Reference.CreateCollection(config);
        var records = Data.Records(vectors);
        for (int s = 0; s < n; s += 1000)
        {
            var batch = records.Skip(s).Take(1000).ToArray();
            await Gateway.UpsertAsync(name, batch);
            await single.UpsertAsync(batch);
        }
        Assert.True(await Gateway.WaitForIndexAsync(name));
        Assert.True(await single.WaitForIndexAsync());

        var queries = Data.Clustered(100, d, clusters: 40, seed: 12);
        var exact = new SearchParams { Exact = true };
        double clusterRecall = 0, singleRecall = 0;
        var parameters = new SearchParams { NProbe = 2 };
        foreach (var q in queries)
        {
            var truth = single.Search(q, k, exact).Select(h => h.Id).ToHashSet();
            var (hits, totals) = await Gateway.SearchAsync(name, q, k, parameters);
            Assert.Equal(SearchPath.Index, totals.Path);
            clusterRecall += hits.Count(h => truth.Contains(h.Id)) / (double)k;
            singleRecall += single.Search(q, k, parameters).Count(h => truth.Contains(h.Id)) / (double)k;
        }
        clusterRecall /= queries.Length;
        singleRecall /= queries.Length;
        // Each shard probes nprobe of its own lists, so the cluster scans more and its recall is at least the
        // single node's, minus sampling noise.
        Assert.True(clusterRecall >= singleRecall - 0.03, $"cluster recall {clusterRecall:F3} vs single node {singleRecall:F3}");
        Assert.True(singleRecall > 0.5, $"single-node recall {singleRecall:F3}");
    }

    [Fact]
    public async Task Bad_input_is_rejected_with_the_engine_error_and_nothing_is_written()
    {
        const string name = "bad";
        await Gateway.CreateCollectionAsync(new ClusterCollectionSpec(Flat(name, Metric.L2, 4), Shards: 2, ReplicationFactor: 3));
        var e = await Assert.ThrowsAsync<AdannsException>(() => Gateway.CreateCollectionAsync(new ClusterCollectionSpec(Flat(name, Metric.L2, 4), 2, 1)));
        Assert.Equal(AdannsErrorCode.CollectionExists, e.Code);
        e = await Assert.ThrowsAsync<AdannsException>(() => Gateway.CreateCollectionAsync(new ClusterCollectionSpec(Flat("rf4", Metric.L2, 4), 2, ReplicationFactor: 4)));
        Assert.Equal(AdannsErrorCode.InvalidConfiguration, e.Code);
        Assert.Contains("replication_factor 4", e.Message);
        e = await Assert.ThrowsAsync<AdannsException>(() => Gateway.CreateCollectionAsync(new ClusterCollectionSpec(Flat("wc", Metric.L2, 4), 2, 2, WriteConsistency: 3)));
        Assert.Contains("write_consistency 3", e.Message);
        e = await Assert.ThrowsAsync<AdannsException>(() => Gateway.CreateCollectionAsync(new ClusterCollectionSpec(new CollectionConfig("spec", 4, Metric.L2, "IVF0"), 1, 1)));
        Assert.Equal(AdannsErrorCode.InvalidConfiguration, e.Code);

        await Gateway.UpsertAsync(name, [new VectorRecord(1ul, new float[] { 1, 2, 3, 4 })]);
        e = await Assert.ThrowsAsync<AdannsException>(() => Gateway.UpsertAsync(name, [new VectorRecord(2ul, new float[] { 1, 2, 3, 4 }), new VectorRecord(3ul, new float[] { 1, 2 })]));
        Assert.Equal(AdannsErrorCode.WrongDimension, e.Code);
        e = await Assert.ThrowsAsync<AdannsException>(() => Gateway.UpsertAsync(name, [new VectorRecord(4ul, new float[] { 1, float.NaN, 3, 4 })]));
        Assert.Equal(AdannsErrorCode.NonFiniteVector, e.Code);
        // Rejected by the replicas' engines (a payload field name over 255 bytes): the shard's sequence stays consistent.
        var badName = new Dictionary<string, PayloadValue> { [new string('n', 300)] = 1 };
        e = await Assert.ThrowsAsync<AdannsException>(() => Gateway.UpsertAsync(name, [new VectorRecord(5ul, new float[] { 1, 2, 3, 4 }, badName)]));
        Assert.Equal(AdannsErrorCode.InvalidPayload, e.Code);
        // The payload limit holds exactly where a single node puts it, checked at the gateway before any shard is
        // written: {"blob": L chars} encodes to 2 + (2 + 4) + (5 + L) bytes.
        var single = fx.Reference.CreateCollection(Flat(name + "-ref", Metric.L2, 4));
        int limit = single.Config.MaxPayloadBytes, fits = limit - 13;
        foreach (int len in new[] { fits, fits + 1 })
        {
            var blob = new VectorRecord(7ul, new float[] { 1, 1, 1, 1 }, new Dictionary<string, PayloadValue> { ["blob"] = new string('x', len) });
            var singleError = await Record.ExceptionAsync(() => single.UpsertAsync([blob]));
            var clusterError = await Record.ExceptionAsync(() => Gateway.UpsertAsync(name, [blob]));
            Assert.Equal(singleError is null, clusterError is null);
            if (clusterError is not null)
            {
                Assert.Equal(AdannsErrorCode.InvalidPayload, ((AdannsException)clusterError).Code);
                Assert.Equal(singleError!.Message.Replace(name + "-ref", name, StringComparison.Ordinal), clusterError.Message);
            }
        }
        Assert.Equal(1, await Gateway.DeleteAsync(name, [7ul]));
        await Gateway.UpsertAsync(name, [new VectorRecord(6ul, new float[] { 4, 3, 2, 1 })]);
        Assert.Equal(2, await Gateway.CountAsync(name));
        var (hits, _) = await Gateway.SearchAsync(name, [4, 3, 2, 1], 5);
        Assert.Equal([6ul, 1ul], hits.Select(h => h.Id.Number));

        e = await Assert.ThrowsAsync<AdannsException>(() => Gateway.SearchAsync("missing", [1, 2, 3, 4], 5));
        Assert.Equal(AdannsErrorCode.CollectionNotFound, e.Code);
        e = await Assert.ThrowsAsync<AdannsException>(() => Gateway.SearchAsync(name, [1, 2, 3, 4], 0));
        Assert.Equal(AdannsErrorCode.InvalidQuery, e.Code);

        Assert.True(await Gateway.DropCollectionAsync(name));
        Assert.False(await Gateway.DropCollectionAsync(name));
        Assert.DoesNotContain(name, await Gateway.ListCollectionsAsync());
        foreach (var silo in fx.Host.Silos)
            Assert.False(silo.ServiceProvider.GetService(typeof(LocalNode)) is LocalNode node && node.Database.ListCollections().Any(c => c.StartsWith(name + "-s", StringComparison.Ordinal)));
    }

    [Fact]
    public void Merge_orders_by_score_then_id_across_shards()
    {
        var a = new SearchAnswer { Hits = [new SearchHit(5ul, 0.5f, null), new SearchHit("b", 0.9f, null), new SearchHit(7ul, 0.9f, null)] };
        var b = new SearchAnswer { Hits = [new SearchHit(2ul, 0.5f, null), new SearchHit("a", 0.9f, null), new SearchHit(9ul, 0.1f, null)] };
        static string Show(SearchHit h) => h.Id.IsString ? h.Id.Text! : h.Id.Number.ToString(System.Globalization.CultureInfo.InvariantCulture);
        // Equal scores: the lower id first, numbers before strings, strings ordinal; which shard answered does not matter.
        Assert.Equal(["9", "2", "5", "7"], ClusterGateway.Merge([a, b], 4, higherIsBetter: false).Select(Show));
        Assert.Equal(["9", "2", "5", "7"], ClusterGateway.Merge([b, a], 4, higherIsBetter: false).Select(Show));
        Assert.Equal(["7", "a", "b"], ClusterGateway.Merge([a, b], 3, higherIsBetter: true).Select(Show));
    }

    [Theory]
    [InlineData(1, Metric.L2, false)]
    [InlineData(1, Metric.Cosine, true)]
    [InlineData(1, Metric.InnerProduct, false)]
    [InlineData(2, Metric.L2, true)]
    [InlineData(2, Metric.Cosine, false)]
    [InlineData(2, Metric.InnerProduct, true)]
    [InlineData(3, Metric.L2, false)]
    [InlineData(3, Metric.Cosine, true)]
    [InlineData(3, Metric.InnerProduct, false)]
    [InlineData(5, Metric.L2, true)]
    [InlineData(5, Metric.Cosine, false)]
    [InlineData(5, Metric.InnerProduct, true)]
    public async Task Sharded_exact_search_equals_single_node_with_duplicates_after_deletes_and_replacements(int shards, Metric metric, bool trained)
    {
        // 660 records (600 numeric ids, 60 string ids) written in shuffled order; two in three hold one of 40 shared
        // vectors, so most top-k lists are cut inside a group of equal scores spread over every shard. Then deletes,
        // replacements with another shared vector and re-inserts move rows (flat store) or leave tombstones and append
        // (trained IVF), so nodes hold equal vectors in unrelated slot orders. Exact search (the flat store untrained;
        // the index's exact mode trained) must still give the single node's ids and scores, ties by the lower id.
        const int d = 24, groups = 40;
        string name = $"dup{shards}{metric}{(trained ? "t" : "f")}";
        var shared = Data.Vectors(groups, d, seed: 41);
        var unique = Data.Vectors(660, d, seed: 42 + shards);
        var ids = Enumerable.Range(0, 600).Select(i => (RecordId)(ulong)i).Concat(Enumerable.Range(0, 60).Select(i => (RecordId)$"r{i:D2}")).ToArray();
        new Random(43).Shuffle(ids);
        VectorRecord Make(int j, int shift) => new(ids[j], j % 3 == 0 ? unique[j] : shared[(j + shift) % groups],
            new Dictionary<string, PayloadValue> { ["parity"] = j % 2 == 0 ? "even" : "odd" });
        var config = new CollectionConfig(name, d, metric, "IVF4") { TrainThreshold = trained ? 64 : 1_000_000 };
        await Gateway.CreateCollectionAsync(new ClusterCollectionSpec(config, shards, ReplicationFactor: 1));
        var single = fx.Reference.CreateCollection(config);
        async Task Both(VectorRecord[] batch)
        {
            await Gateway.UpsertAsync(name, batch);
            await single.UpsertAsync(batch);
        }
        for (int s = 0; s < ids.Length; s += 110) await Both(Enumerable.Range(s, 110).Select(j => Make(j, 0)).ToArray());
        if (trained)
        {
            Assert.True(await Gateway.WaitForIndexAsync(name));
            Assert.True(await single.WaitForIndexAsync());
        }
        var deleted = Enumerable.Range(0, 60).Select(i => ids[i * 11]).ToArray();
        Assert.Equal(60, await Gateway.DeleteAsync(name, deleted));
        Assert.Equal(60, await single.DeleteAsync(deleted));
        await Both(Enumerable.Range(0, 40).Select(i => Make(i * 16 + 5, 7)).ToArray()); // replacements with another shared vector
        await Both(Enumerable.Range(0, 20).Select(i => Make(i * 22, 3)).ToArray());     // deleted ids written again
        Assert.Equal(single.Count, await Gateway.CountAsync(name));

        var even = new FilterSpec { Kind = FilterKind.In, Field = "parity", Values = ["even"] };
        var noise = Data.Vectors(16, d, seed: 44);
        var queries = noise.Select((q, i) => i < 12 ? shared[i * 3].Zip(q, (a, b) => a + 0.05f * b).ToArray() : q).ToArray();
        var p = trained ? new SearchParams { Exact = true } : null;
        var order = SearchHitOrder.For(metric);
        int cutInsideTies = 0;
        foreach (var q in queries)
        {
            foreach (int k in new[] { 10, 25 })
            {
                foreach (var filter in new FilterSpec?[] { null, even })
                {
                    var expected = single.Search(q, k, p, filter?.ToFilter(), false, out var path);
                    Assert.Equal(trained ? (filter is null ? SearchPath.Index : SearchPath.IndexFiltered) : SearchPath.Flat, path);
                    var (actual, _) = await Gateway.SearchAsync(name, q, k, p, filter);
                    Assert.Equal(expected.Select(h => h.Id), actual.Select(h => h.Id));
                    Assert.Equal(expected.Select(h => h.Score), actual.Select(h => h.Score));
                    // The engine's rule itself: best score first, equal scores by the lower id.
                    Assert.Equal(expected.Order(order).Select(h => h.Id), expected.Select(h => h.Id));
                    var more = single.Search(q, k + 1, p, filter?.ToFilter());
                    if (more.Length > k && more[k].Score == expected[k - 1].Score) cutInsideTies++;
                }
            }
        }
        // Otherwise the test would not exercise the tie rule at the cut.
        Assert.True(cutInsideTies >= 10, $"only {cutInsideTies} top-k lists were cut inside a group of equal scores");
    }

    [Fact]
    public void Wire_surrogates_carry_every_property_of_the_engine_types()
    {
        // A property added to an engine type but not to its surrogate would be dropped silently between nodes.
        static void Same(Type engine, Type surrogate, params string[] derived)
        {
            var props = engine.GetProperties().Where(p => p.CanRead && !derived.Contains(p.Name)).Select(p => p.Name).Order();
            Assert.Equal(props, surrogate.GetFields().Select(f => f.Name).Order());
        }
        Same(typeof(SearchParams), typeof(SearchParamsSurrogate));
        Same(typeof(CollectionConfig), typeof(CollectionConfigSurrogate));
        Same(typeof(RerankStage), typeof(RerankStageSurrogate));
        Same(typeof(SearchHit), typeof(SearchHitSurrogate));
    }

    [Fact]
    public void Routing_is_stable_and_spreads_ids()
    {
        // Fixed expectations: the hash must never change, or existing collections would lose their records.
        Assert.Equal([4, 0, 213], new[] { ShardRouting.ShardOf(12345ul, 7), ShardRouting.ShardOf("doc-42", 7), ShardRouting.ShardOf(0ul, 1000) });
        var counts = new int[4];
        for (ulong i = 0; i < 4000; i++) counts[ShardRouting.ShardOf(i, 4)]++;
        Assert.All(counts, c => Assert.InRange(c, 850, 1150));
        Assert.NotEqual(ShardRouting.ShardOf(7ul, 1000), ShardRouting.ShardOf("7", 1000));
    }
}
