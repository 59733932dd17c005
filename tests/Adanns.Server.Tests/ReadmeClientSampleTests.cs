using Adanns.Client;
using Adanns.Protocol.V1;

namespace Adanns.Server.Tests;

/// <summary>The README's client sample is this test's body, verbatim; a second test fails if they drift apart.</summary>
[Collection(ServerCollection.Name)]
public sealed class ReadmeClientSampleTests(ServerFixture server)
{
    [Fact]
    public async Task ReadmeClientSampleRuns()
    {
        string address = server.Address;
        string apiKey = ServerFixture.ReadWriteKey;
        // CLIENT-SAMPLE-BEGIN
        using var client = new AdannsClient(address, apiKey);   // e.g. "http://127.0.0.1:50051"; apiKey null when auth is off
        await client.CreateCollectionAsync("docs", dimension: 4, Metric.Cosine, indexSpec: "IVF16@2,Rerank4");
        await client.UpsertAsync("docs",
        [
            Point.Create(1UL, new float[] { 0.9f, 0.1f, 0, 0 }, new Dictionary<string, Value> { ["lang"] = "en" }),
            Point.Create("doc-2", new float[] { 0.1f, 0.9f, 0, 0 }, new Dictionary<string, Value> { ["lang"] = "de" }),
        ]);
        SearchResponse hits = await client.SearchAsync("docs", new float[] { 1, 0, 0, 0 }, topK: 2,
            filter: Filters.Eq("lang", "en"), withPayload: true);
        foreach (var p in hits.Points) Console.WriteLine($"{p.Id.Describe()} {p.Score:F3} {p.Payload["lang"].StringValue}");
        Console.WriteLine($"{hits.Stats.Path}: {hits.Stats.VectorsScanned} vectors scanned, {hits.Stats.ServerMicros:F0} µs in the server");
        // CLIENT-SAMPLE-END

        Assert.Single(hits.Points);
        Assert.Equal(1ul, hits.Points[0].Id.Num);
        Assert.True(hits.Points[0].Score > 0.9f);
        await client.DeleteCollectionAsync("docs");
    }

    [Fact]
    public void ReadmeShowsThisSample()
    {
        string root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "AdannsDotNet.sln"))) root = Path.GetDirectoryName(root) ?? throw new InvalidOperationException("repository root not found");
        static string Extract(string text)
        {
            int a = text.IndexOf("// CLIENT-SAMPLE-BEGIN", StringComparison.Ordinal);
            int b = text.IndexOf("// CLIENT-SAMPLE-END", StringComparison.Ordinal);
            Assert.True(a >= 0 && b > a, "sample markers missing");
            return string.Join("\n", text[(a + "// CLIENT-SAMPLE-BEGIN".Length)..b].Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0));
        }
        Assert.Equal(Extract(File.ReadAllText(Path.Combine(root, "tests", "Adanns.Server.Tests", "ReadmeClientSampleTests.cs"))),
            Extract(File.ReadAllText(Path.Combine(root, "README.md"))));
    }
}
