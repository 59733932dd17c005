using System.Globalization;
using System.Numerics.Tensors;
using Adanns.Embeddings;
using Microsoft.Extensions.AI;

namespace Adanns.VectorData.Tests;

public class EmbeddingTests
{
    private static MiniLmEmbeddingGenerator G => TestModel.Generator;

    [Theory]
    // Values of BERT's uncased WordPiece (the Hugging Face tokenizer of bert-base-uncased / all-MiniLM-L6-v2).
    [InlineData("unaffable", "una ##ffa ##ble")]
    [InlineData("Hello, World!", "hello , world !")]
    [InlineData("Gröbner bases", "gr ##ob ##ner bases")]
    [InlineData("  GNU C++ (v3)\tlibrary ", "gnu c + + ( v ##3 ) library")]
    [InlineData("naïve café", "naive cafe")]
    [InlineData("Qt", "q ##t")]
    public void WordPieceMatchesBert(string text, string expected) =>
        Assert.Equal(expected, string.Join(" ", G.Tokenizer.Tokenize(text)));

    [Fact]
    public void EncodeFramesAndTruncates()
    {
        var ids = G.Tokenizer.Encode("hello world", 256);
        Assert.Equal([101, 7592, 2088, 102], ids); // [CLS] hello world [SEP] in bert-base-uncased
        var longText = string.Join(" ", Enumerable.Repeat("hello", 600));
        var cut = G.Tokenizer.Encode(longText, 256);
        Assert.Equal(256, cut.Length);
        Assert.Equal(101, cut[0]);
        Assert.Equal(102, cut[^1]);
    }

    [Fact]
    public async Task EmbeddingsMatchTheReferenceValues()
    {
        var lines = File.ReadAllLines(Path.Combine(AppContext.BaseDirectory, "reference-embeddings.tsv")).Where(l => !l.StartsWith('#')).ToArray();
        Assert.Equal(3, lines.Length);
        var texts = lines.Select(l => l.Split('\t')[0]).ToArray();
        var reference = lines.Select(l => l.Split('\t')[1].Split(' ').Select(x => float.Parse(x, CultureInfo.InvariantCulture)).ToArray()).ToArray();
        var got = await G.GenerateAsync(texts);
        Assert.Equal(3, got.Count);
        for (int i = 0; i < 3; i++)
        {
            var v = got[i].Vector.Span;
            Assert.Equal(384, v.Length);
            float worst = 0;
            for (int j = 0; j < 384; j++) worst = MathF.Max(worst, MathF.Abs(v[j] - reference[i][j]));
            Assert.True(worst < 1e-4f, $"sentence {i}: max |difference| {worst} ≥ 1e-4");
            Assert.Equal(1f, TensorPrimitives.Norm(v), 1e-5f);
        }
        Assert.Equal(MiniLmEmbeddingGenerator.ModelId, got[0].ModelId);
        Assert.True(got.Usage?.InputTokenCount > 0);
    }

    [Fact]
    public async Task BatchedEqualsOneByOne()
    {
        string[] texts = ["a short one", "a much longer sentence that pads the others in its batch by many tokens", "third"];
        var batched = await G.GenerateAsync(texts);
        for (int i = 0; i < texts.Length; i++)
        {
            var single = await G.GenerateVectorAsync(texts[i]);
            for (int j = 0; j < 384; j++) Assert.Equal(single.Span[j], batched[i].Vector.Span[j], 1e-5f);
        }
    }

    [Theory]
    [InlineData(32)]
    [InlineData(128)]
    [InlineData(256)]
    public async Task TruncationTakesThePrefixAndRenormalises(int dims)
    {
        const string text = "Matryoshka embeddings nest their prefixes";
        var full = await G.GenerateVectorAsync(text);
        var cut = await G.GenerateVectorAsync(text, new EmbeddingGenerationOptions { Dimensions = dims });
        Assert.Equal(dims, cut.Length);
        Assert.Equal(1f, TensorPrimitives.Norm(cut.Span), 1e-5f);
        float prefixNorm = TensorPrimitives.Norm(full.Span[..dims]);
        Assert.True(prefixNorm < 0.999f); // the renormalisation did something
        for (int j = 0; j < dims; j++) Assert.Equal(full.Span[j] / prefixNorm, cut.Span[j], 1e-5f);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(385)]
    public async Task DimensionsOutOfRangeAreRejected(int dims)
    {
        // Dimensions = 0 is refused by EmbeddingGenerationOptions itself; 385 by the generator, naming the range.
        var e = await Assert.ThrowsAnyAsync<ArgumentOutOfRangeException>(() => G.GenerateAsync(["x"], new EmbeddingGenerationOptions { Dimensions = dims }));
        if (dims > 384) Assert.Contains("[1, 384]", e.Message);
    }

    [Fact]
    public void MetadataAndServices()
    {
        var meta = G.GetService<EmbeddingGeneratorMetadata>();
        Assert.Equal(384, meta?.DefaultModelDimensions);
        Assert.Same(G, G.GetService<IEmbeddingGenerator<string, Embedding<float>>>());
        Assert.Throws<NotSupportedException>(() => { _ = G.GenerateAsync(["x"], new EmbeddingGenerationOptions { ModelId = "text-embedding-3-small" }); });
    }

    [Fact]
    public void BadOptionsAreRejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new MiniLmEmbeddingGenerator(new MiniLmOptions { Threads = 0 }));
        Assert.Throws<FileNotFoundException>(() => new MiniLmEmbeddingGenerator(new MiniLmOptions { ModelAssemblyPath = "/nonexistent/model.dll" }));
    }
}
