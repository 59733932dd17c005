using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.VectorData;

namespace Adanns.VectorData.Tests;

// README-MEVD-RECORD-BEGIN
public sealed class Doc
{
    [VectorStoreKey]
    public ulong Id { get; set; }

    [VectorStoreData]
    public string Text { get; set; } = "";

    [VectorStoreData]
    public string Source { get; set; } = "";

    // A string vector property: the store embeds it with its embedding generator (384 = all of MiniLM's dims;
    // a smaller number stores that Matryoshka prefix instead).
    [VectorStoreVector(384, DistanceFunction = DistanceFunction.CosineSimilarity)]
    public string Embedding => Text;
}
// README-MEVD-RECORD-END

/// <summary>The README's MEVD sample, verbatim (a second test fails if the two drift apart); and the DI registrations.</summary>
public class ReadmeSampleTests
{
    [Fact]
    public async Task ReadmeRagSampleRuns()
    {
        string dbDirectory = Path.Combine(Path.GetTempPath(), "adanns-readme-mevd-" + Guid.NewGuid().ToString("N"));
        var output = new StringWriter();
        try
        {
            // README-MEVD-SAMPLE-BEGIN
            using var generator = new Adanns.Embeddings.MiniLmEmbeddingGenerator(); // all-MiniLM-L6-v2, local ONNX
            using var store = Adanns.VectorData.AdannsVectorStore.Open(dbDirectory, new() { EmbeddingGenerator = generator });
            var docs = store.GetCollection<ulong, Doc>("docs");
            await docs.EnsureCollectionExistsAsync();
            await docs.UpsertAsync([
                new Doc { Id = 1, Source = "travel", Text = "The Eiffel Tower is a wrought-iron tower in Paris, France." },
                new Doc { Id = 2, Source = "travel", Text = "Kyoto is famous for its temples and autumn leaves." },
                new Doc { Id = 3, Source = "cooking", Text = "Knead the dough for ten minutes, then let it rise." },
            ]);

            // Retrieval for a RAG prompt: the question is embedded by the same model, filtered by payload.
            await foreach (var hit in docs.SearchAsync("Where is the Eiffel Tower?", top: 2, new() { Filter = d => d.Source == "travel" }))
                output.WriteLine($"{hit.Score:F3}  {hit.Record.Text}");
            // README-MEVD-SAMPLE-END

            var lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(2, lines.Length);
            Assert.Contains("Eiffel", lines[0]);
            Assert.Contains("Kyoto", lines[1]);
        }
        finally
        {
            Directory.Delete(dbDirectory, recursive: true);
        }
    }

    [Theory]
    [InlineData("MEVD-RECORD")]
    [InlineData("MEVD-SAMPLE")]
    public void ReadmeShowsThisSample(string marker)
    {
        string root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "AdannsDotNet.sln"))) root = Path.GetDirectoryName(root) ?? throw new InvalidOperationException("repo root not found");
        string Extract(string text)
        {
            int a = text.IndexOf($"// README-{marker}-BEGIN", StringComparison.Ordinal);
            int b = text.IndexOf($"// README-{marker}-END", StringComparison.Ordinal);
            Assert.True(a >= 0 && b > a, $"README-{marker} markers missing");
            var lines = text[(a + $"// README-{marker}-BEGIN".Length)..b].Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0);
            return string.Join("\n", lines);
        }
        var test = Extract(File.ReadAllText(Path.Combine(root, "tests", "Adanns.VectorData.Tests", "ReadmeSampleTests.cs")));
        var readme = Extract(File.ReadAllText(Path.Combine(root, "README.md")));
        Assert.Equal(test, readme);
    }

    [Fact]
    public async Task DependencyInjectionRegistersStoreCollectionAndGenerator()
    {
        string dir = Path.Combine(Path.GetTempPath(), "adanns-di-" + Guid.NewGuid().ToString("N"));
        try
        {
            var services = new ServiceCollection();
            services.AddSingleton<IEmbeddingGenerator<string, Embedding<float>>>(TestModel.Generator);
            services.AddAdannsVectorStore(dir);
            services.AddAdannsCollection<ulong, Doc>("di-docs");
            await using (var sp = services.BuildServiceProvider())
            {
                Assert.Same(sp.GetRequiredService<AdannsVectorStore>(), sp.GetRequiredService<VectorStore>());
                Assert.Same(TestModel.Generator, sp.GetRequiredService<AdannsVectorStore>().Options.EmbeddingGenerator);
                var docs = sp.GetRequiredService<VectorStoreCollection<ulong, Doc>>();
                await docs.EnsureCollectionExistsAsync();
                await docs.UpsertAsync([new Doc { Id = 7, Text = "a lighthouse on a rocky coast" }, new Doc { Id = 8, Text = "quarterly tax filing deadlines" }]);
                var hit = await docs.SearchAsync("seaside beacon tower", 1).SingleAsync();
                Assert.Equal(7UL, hit.Record.Id);
            }
            // The container disposed the store, which closed the database it opened: it opens again.
            using var again = AdannsVectorStore.Open(dir);
            Assert.True(await again.CollectionExistsAsync("di-docs"));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void MiniLmRegistrationIsOneInstance()
    {
        var services = new ServiceCollection().AddMiniLmEmbeddingGenerator();
        Assert.Equal(3, services.Count); // registered lazily: nothing is loaded until resolved
    }
}
