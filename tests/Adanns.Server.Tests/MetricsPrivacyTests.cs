using System.Net;
using System.Net.Http.Headers;
using Grpc.Core;
using static Adanns.Server.Tests.Helpers;

namespace Adanns.Server.Tests;

/// <summary>
/// <c>/metrics</c> with a metrics-only key and collection names not allowed (issue 20): the metrics key reads
/// <c>/metrics</c> but no RPC, and no instrument — the server's or the engine's — carries a collection's name.
/// Runs alone (a server of its own: see <see cref="LifecycleCollection"/>).
/// </summary>
[Collection(LifecycleCollection.Name)]
public sealed class MetricsPrivacyTests
{
    private const string MetricsKey = "metrics-test-key";

    [Fact]
    public async Task AMetricsKeyReadsMetrics_NotData_AndNoCollectionIsNamedWhenNamesAreOff()
    {
        string dir = Path.Combine(Path.GetTempPath(), "adanns-metrics-" + Guid.NewGuid().ToString("N"));
        await using var app = ServerFixture.Build(dir, 0, 0, demo: true, extra: new Dictionary<string, string?>
        {
            ["Adanns:Auth:MetricsKey"] = MetricsKey,
            ["Adanns:Auth:MetricsCollectionNames"] = "false",
            ["Adanns:Demo:Name"] = "secretname",
        });
        try
        {
            (int grpc, int httpPort) = await ServerFixture.StartAsync(app);
            using var client = new Adanns.Client.AdannsClient($"http://127.0.0.1:{grpc}", ServerFixture.ReadWriteKey);
            await ServerFixture.WaitServingAsync(client, TimeSpan.FromSeconds(60));
            await client.SearchAsync("secretname", Vectors(1, 32, 5)[0], 5); // engine search counters now have a sample

            using var metricsOnly = new Adanns.Client.AdannsClient($"http://127.0.0.1:{grpc}", MetricsKey);
            await Status(StatusCode.Unauthenticated, () => metricsOnly.CountAsync("secretname"));

            using var http = new HttpClient();
            var uri = new Uri($"http://127.0.0.1:{httpPort}/metrics");
            Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync(uri)).StatusCode);
            string body = "";
            var until = DateTime.UtcNow.AddSeconds(20);
            while (!body.Contains("adanns_engine_search_queries", StringComparison.Ordinal) && DateTime.UtcNow < until)
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, uri);
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", MetricsKey);
                var response = await http.SendAsync(request);
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                body = await response.Content.ReadAsStringAsync();
                if (!body.Contains("adanns_engine_search_queries", StringComparison.Ordinal)) await Task.Delay(200);
            }
            Assert.Contains("adanns_engine_search_queries", body, StringComparison.Ordinal); // the engine's counters, summed
            Assert.Contains("adanns_collection_points", body, StringComparison.Ordinal);
            Assert.DoesNotContain("secretname", body, StringComparison.Ordinal);
            Assert.DoesNotContain("collection=", body, StringComparison.Ordinal);
        }
        finally
        {
            await app.StopAsync();
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }
}
