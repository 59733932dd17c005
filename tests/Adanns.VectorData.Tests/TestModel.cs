using Adanns.Embeddings;

namespace Adanns.VectorData.Tests;

/// <summary>One MiniLM generator for the whole test assembly (loading the model takes about a second).</summary>
internal static class TestModel
{
    private static readonly Lazy<MiniLmEmbeddingGenerator> Shared = new(() => new MiniLmEmbeddingGenerator());

    public static MiniLmEmbeddingGenerator Generator => Shared.Value;
}
