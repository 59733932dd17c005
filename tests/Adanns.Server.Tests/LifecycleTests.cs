using System.Net;
using Adanns.Protocol.V1;
using Grpc.Core;
using Grpc.Health.V1;
using Microsoft.Extensions.DependencyInjection;
using static Adanns.Server.Tests.Helpers;

namespace Adanns.Server.Tests;

/// <summary>
/// Tests that need a server of their own. They run alone: a second in-process server's OpenTelemetry meter provider
/// starting and stopping while the shared server is scraped left that scrape empty (only target_info).
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class LifecycleCollection
{
    public const string Name = "lifecycle";
}

[Collection(LifecycleCollection.Name)]
public sealed class LifecycleTests
{
    [Fact]
    public async Task HealthTurnsServingAfterLoadAndCollectionsSurviveRestart()
    {
        string dir = Path.Combine(Path.GetTempPath(), "adanns-server-life-" + Guid.NewGuid().ToString("N"));
        try
        {
            var app = ServerFixture.Build(dir, 0, 0, demo: true, rw: null, ro: null);
            var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            app.Services.GetRequiredService<DatabaseHost>().BeforeLoad = ct => gate.Task.WaitAsync(ct);
            var (grpc, http) = await ServerFixture.StartAsync(app);
            using (var client = new Adanns.Client.AdannsClient($"http://127.0.0.1:{grpc}"))
            {
                // The database cannot open before the gate opens: the server must say NotServing and answer Unavailable.
                Assert.Equal(HealthCheckResponse.Types.ServingStatus.NotServing, await client.HealthAsync());
                await Status(StatusCode.Unavailable, () => client.ListCollectionsAsync(), "loading");
                using (var probe = new HttpClient())
                    Assert.Equal(HttpStatusCode.ServiceUnavailable, (await probe.GetAsync(new Uri($"http://127.0.0.1:{http}/healthz"))).StatusCode);
                gate.SetResult();
                await ServerFixture.WaitServingAsync(client, TimeSpan.FromSeconds(60));
                using var http1 = new HttpClient();
                Assert.Equal(HttpStatusCode.OK, (await http1.GetAsync(new Uri($"http://127.0.0.1:{http}/healthz"))).StatusCode);
                // Auth off: any client may write.
                Assert.False((await client.ServerInfoAsync()).AuthEnabled);
                await client.CreateCollectionAsync("kept", 4, Metric.L2, "IVF4");
                await client.UpsertAsync("kept", Points(Vectors(20, 4, 9)));
            }
            await app.StopAsync();
            await app.DisposeAsync();

            // A restart recovers the collections and does not recreate the demo data.
            var again = ServerFixture.Build(dir, 0, 0, demo: true, rw: null, ro: null);
            var (grpc2, _) = await ServerFixture.StartAsync(again);
            using (var client = new Adanns.Client.AdannsClient($"http://127.0.0.1:{grpc2}"))
            {
                await ServerFixture.WaitServingAsync(client, TimeSpan.FromSeconds(60));
                Assert.Equal(["demo", "kept"], await client.ListCollectionsAsync());
                Assert.Equal(20, await client.CountAsync("kept"));
                Assert.Equal(3000, await client.CountAsync("demo"));
            }
            await again.StopAsync();
            await again.DisposeAsync();
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); }
            catch (IOException) { }
        }
    }
}

[Collection(ServerCollection.Name)]
public sealed class ConcurrencyAndMalformedTests(ServerFixture server)
{
    [Fact]
    public async Task ConcurrentUpsertAndSearchThroughTheClient()
    {
        var c = server.Client;
        string name = UniqueName("conc");
        const int D = 16;
        await c.CreateCollectionAsync(name, D, Metric.InnerProduct, "IVF8", trainThreshold: 400);
        var vectors = Vectors(800, D, seed: 11);
        var writers = Enumerable.Range(0, 4).Select(w => Task.Run(async () =>
        {
            for (int b = 0; b < 10; b++)
            {
                int start = w * 200 + b * 20;
                await c.UpsertAsync(name, Points(vectors[start..(start + 20)], (ulong)start));
            }
        }));
        int searches = 0;
        var readers = Enumerable.Range(0, 4).Select(r => Task.Run(async () =>
        {
            for (int i = 0; i < 40; i++)
            {
                var res = await c.SearchAsync(name, vectors[(r * 40 + i) % 800], 5);
                Assert.True(res.Points.Count <= 5);
                Interlocked.Increment(ref searches);
            }
        }));
        await Task.WhenAll(writers.Concat(readers));
        Assert.Equal(160, searches);
        Assert.Equal(800, await c.CountAsync(name));
        // Every acknowledged point is findable: each vector's nearest by inner product among unit vectors is itself.
        for (int i = 0; i < 800; i += 97)
            Assert.Equal((ulong)i, (await c.SearchAsync(name, vectors[i], 1, parameters: new SearchParams { Exact = true })).Points[0].Id.Num);
        await c.DeleteCollectionAsync(name);
    }

    [Fact]
    public async Task MalformedFramesAnswerWithAnErrorStatus()
    {
        using var http = new HttpClient { DefaultRequestVersion = HttpVersion.Version20, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact };
        var rng = new Random(3);
        string[] methods = ["/adanns.v1.Search/Search", "/adanns.v1.Points/Upsert", "/adanns.v1.Points/Get", "/adanns.v1.Collections/Get", "/adanns.v1.Search/SearchBatch"];
        for (int i = 0; i < 60; i++)
        {
            byte[] body = new byte[rng.Next(0, 64)];
            rng.NextBytes(body);
            if (i % 3 == 0 && body.Length >= 5)
            {
                // A well-formed gRPC frame header around random protobuf bytes.
                body[0] = 0;
                System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(body.AsSpan(1), (uint)(body.Length - 5));
            }
            using var req = new HttpRequestMessage(HttpMethod.Post, new Uri($"{server.Address}{methods[i % methods.Length]}"))
            {
                Content = new ByteArrayContent(body),
                Version = HttpVersion.Version20,
                VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            };
            req.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/grpc");
            req.Headers.Add("te", "trailers");
            req.Headers.Add("api-key", ServerFixture.ReadWriteKey);
            using var resp = await http.SendAsync(req);
            _ = await resp.Content.ReadAsByteArrayAsync();
            string? status = resp.TrailingHeaders.TryGetValues("grpc-status", out var t) ? t.First()
                : resp.Headers.TryGetValues("grpc-status", out var h) ? h.First() : null;
            Assert.True(status is not null, $"no grpc-status: HTTP {(int)resp.StatusCode}, body {body.Length} bytes, {methods[i % methods.Length]}, headers {resp.Headers}");
            Assert.NotEqual("0", status);
        }
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, await server.Client.HealthAsync());
        var q = new float[32];
        q[2] = 1;
        Assert.Equal(3, (await server.Client.SearchAsync("demo", q, 3)).Points.Count);
    }
}
