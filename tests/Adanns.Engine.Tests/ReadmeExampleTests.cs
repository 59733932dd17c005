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

    internal static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "AdannsDotNet.sln")))
                return dir.FullName;
        throw new InvalidOperationException("Repository root (AdannsDotNet.sln) not found above " + AppContext.BaseDirectory);
    }
}
