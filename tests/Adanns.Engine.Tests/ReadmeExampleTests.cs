namespace Adanns.Engine.Tests;

/// <summary>The README's C# sample is this test's body, verbatim: it compiles and runs here, and a second test
/// fails if the README and this file drift apart.</summary>
public class ReadmeExampleTests
{
    [Fact]
    public void ReadmeSampleRuns()
    {
        // README-SAMPLE-BEGIN
        using Adanns.Engine.Data.SyntheticDataset data = Adanns.Engine.Data.SyntheticMatryoshka.Generate(
            new Adanns.Engine.Data.SyntheticMatryoshka.Options(Count: 5_000, Dimension: 64, Queries: 10));

        // Exact search over the vectors; any prefix dim d ≤ D can be used at query time.
        var index = new Adanns.Engine.Indexes.FlatIndex(data.Base, Adanns.Engine.Metric.Cosine);
        var ids = new long[10];
        var scores = new float[10];
        index.Search(data.Queries.Row(0), k: 10, ids, scores, dim: 16); // cosine of the 16-dim prefixes

        // Batch search over all queries, on every core.
        var results = index.SearchBatch(data.Queries.ToArray(), queryDim: 64, k: 10);
        Console.WriteLine($"query 0: nearest id {results.IdsOf(0)[0]}, cosine {results.ScoresOf(0)[0]:F3}");
        // README-SAMPLE-END

        Assert.Equal(10, results.QueryCount);
        Assert.All(ids, id => Assert.InRange(id, 0, 4_999));
        Assert.True(scores[0] >= scores[9]);
    }

    [Fact]
    public void ReadmeShowsThisSample()
    {
        var root = FindRepoRoot();
        string Extract(string text)
        {
            int a = text.IndexOf("// README-SAMPLE-BEGIN", StringComparison.Ordinal);
            int b = text.IndexOf("// README-SAMPLE-END", StringComparison.Ordinal);
            Assert.True(a >= 0 && b > a, "sample markers missing");
            var lines = text[(a + "// README-SAMPLE-BEGIN".Length)..b].Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0);
            return string.Join("\n", lines);
        }
        var test = Extract(File.ReadAllText(Path.Combine(root, "tests", "Adanns.Engine.Tests", "ReadmeExampleTests.cs")));
        var readme = Extract(File.ReadAllText(Path.Combine(root, "README.md")));
        Assert.Equal(test, readme);
    }

    [Fact]
    public async Task ReadmeDatabaseSampleRuns()
    {
        string dbDirectory = Path.Combine(Path.GetTempPath(), "adanns-readme-" + Guid.NewGuid().ToString("N"));
        try
        {
            // README-DB-SAMPLE-BEGIN
            using var db = Adanns.Engine.Collections.AdannsDatabase.Open(dbDirectory);
            var docs = db.CreateCollection(new Adanns.Engine.Collections.CollectionConfig("docs", Dimension: 4,
                Adanns.Engine.Metric.Cosine, IndexSpec: "IVF16"));
            await docs.UpsertAsync(1UL, new float[] { 1, 0, 0, 0 }, new Dictionary<string, Adanns.Engine.Storage.PayloadValue> { ["lang"] = "en", ["year"] = 2021 });
            await docs.UpsertAsync("doc-2", new float[] { 0.9f, 0.1f, 0, 0 }, new Dictionary<string, Adanns.Engine.Storage.PayloadValue> { ["lang"] = "de", ["year"] = 2024 });
            await docs.DeleteAsync("doc-2"); // durable and visible once the task completes

            var filter = Adanns.Engine.Collections.Filter.Eq("lang", "en") & Adanns.Engine.Collections.Filter.Range("year", min: 2020);
            var hits = docs.Search(new float[] { 1, 0.1f, 0, 0 }, k: 5, new Adanns.Engine.Indexes.SearchParams { NProbe = 4 }, filter, withPayload: true);
            Console.WriteLine($"{hits[0].Id} scored {hits[0].Score:F3}, year {hits[0].Payload!["year"]}");
            var record = await docs.GetAsync(1UL); // vector and payload, read from the record store
            // README-DB-SAMPLE-END

            Assert.Single(hits);
            Assert.Equal(1UL, hits[0].Id.Number);
            Assert.Equal(new float[] { 1, 0, 0, 0 }, record!.Vector.ToArray());
        }
        finally
        {
            if (Directory.Exists(dbDirectory)) Directory.Delete(dbDirectory, recursive: true);
        }
    }

    [Fact]
    public void ReadmeShowsThisDatabaseSample()
    {
        var root = FindRepoRoot();
        string Extract(string text)
        {
            int a = text.IndexOf("// README-DB-SAMPLE-BEGIN", StringComparison.Ordinal);
            int b = text.IndexOf("// README-DB-SAMPLE-END", StringComparison.Ordinal);
            Assert.True(a >= 0 && b > a, "database sample markers missing");
            var lines = text[(a + "// README-DB-SAMPLE-BEGIN".Length)..b].Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0);
            return string.Join("\n", lines);
        }
        var test = Extract(File.ReadAllText(Path.Combine(root, "tests", "Adanns.Engine.Tests", "ReadmeExampleTests.cs")));
        var readme = Extract(File.ReadAllText(Path.Combine(root, "README.md")));
        Assert.Equal(test, readme);
    }

    internal static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "AdannsDotNet.sln")))
                return dir.FullName;
        throw new InvalidOperationException("Repository root (AdannsDotNet.sln) not found above " + AppContext.BaseDirectory);
    }
}
