using Adanns.Engine.Collections;

namespace Adanns.Embeddings;

/// <summary>
/// all-MiniLM-L6-v2 as an engine <see cref="ITextEmbedder"/> (register it as <c>"minilm"</c> in
/// <see cref="DatabaseOptions.Embedders"/>). The model is loaded on first use, so registering it costs nothing
/// until a collection embeds text. Optionally a Matryoshka prefix: fewer than 384 dimensions returns the first dims
/// renormalised.
/// </summary>
public sealed class MiniLmTextEmbedder : ITextEmbedder, IDisposable
{
    /// <summary>The name servers register it under.</summary>
    public const string DefaultName = "minilm";

    private readonly Lazy<MiniLmEmbeddingGenerator> _generator;
    private readonly bool _ownsGenerator;

    /// <summary>An embedder that loads its own model (with <paramref name="options"/>) on first use.</summary>
    public MiniLmTextEmbedder(MiniLmOptions? options = null, int dimensions = MiniLmEmbeddingGenerator.Dimension)
    {
        Dimension = MiniLmEmbeddingGenerator.ResolveDimensions(dimensions);
        _generator = new(() => new MiniLmEmbeddingGenerator(options), LazyThreadSafetyMode.ExecutionAndPublication);
        _ownsGenerator = true;
    }

    /// <summary>An embedder over an existing generator (not disposed with this embedder).</summary>
    public MiniLmTextEmbedder(MiniLmEmbeddingGenerator generator, int dimensions = MiniLmEmbeddingGenerator.Dimension)
    {
        ArgumentNullException.ThrowIfNull(generator);
        Dimension = MiniLmEmbeddingGenerator.ResolveDimensions(dimensions);
        _generator = new(generator);
    }

    /// <inheritdoc/>
    public int Dimension { get; }

    /// <summary>The generator (loads the model on first access).</summary>
    public MiniLmEmbeddingGenerator Generator => _generator.Value;

    /// <inheritdoc/>
    public Task<float[]> EmbedAsync(IReadOnlyList<string> texts, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(texts);
        // CPU-bound: off the caller's thread (a gRPC handler, typically).
        return Task.Run(() =>
        {
            var output = new float[checked(texts.Count * Dimension)];
            Generator.Embed(texts, output, Dimension, cancellationToken);
            return output;
        }, cancellationToken);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_ownsGenerator && _generator.IsValueCreated) _generator.Value.Dispose();
    }
}
