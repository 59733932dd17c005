using Adanns.Engine.Indexes;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.VectorData;

namespace Adanns.VectorData;

/// <summary>Settings of an <see cref="AdannsVectorStore"/>; collections inherit them unless their own options say otherwise.</summary>
public sealed record AdannsVectorStoreOptions
{
    /// <summary>
    /// Embeds the properties and search inputs that are not vectors (e.g. a <c>string</c> vector property), for
    /// collections that configure no generator of their own. For example
    /// <see cref="Adanns.Embeddings.MiniLmEmbeddingGenerator"/>.
    /// </summary>
    public IEmbeddingGenerator? EmbeddingGenerator { get; init; }

    /// <summary>
    /// Index pipeline of the collections this store creates (an <see cref="IndexSpec"/> factory string; default <c>Auto</c>:
    /// the index tunes itself for recall@10 0.95 on the collection's data). Searches are exact until the collection holds
    /// enough vectors to train it.
    /// </summary>
    public string IndexSpec { get; init; } = "Auto";

    /// <summary>Live vectors before the index trains (null = the engine default, max(1,024, 32 × nlist)).</summary>
    public int? TrainThreshold { get; init; }

    /// <summary>
    /// Per-query search parameters (nprobe, dims, shortlist, rerank, exact, or a compute budget); null = the index
    /// defaults.
    /// </summary>
    public SearchParams? SearchParams { get; init; }

    /// <summary>Records per request for the remote store (match the server's Adanns:Limits:MaxBatch).</summary>
    public int RemoteBatchSize { get; init; } = 500;
}

/// <summary>Settings of one collection; null members fall back to the store's <see cref="AdannsVectorStoreOptions"/>.</summary>
public sealed class AdannsCollectionOptions : VectorStoreCollectionOptions
{
    /// <summary>An empty set of options.</summary>
    public AdannsCollectionOptions()
    {
    }

    /// <summary>A copy of <paramref name="source"/>.</summary>
    public AdannsCollectionOptions(AdannsCollectionOptions source)
        : base(source)
    {
        ArgumentNullException.ThrowIfNull(source);
        IndexSpec = source.IndexSpec;
        TrainThreshold = source.TrainThreshold;
        SearchParams = source.SearchParams;
    }

    /// <summary>Index pipeline used when this collection is created.</summary>
    public string? IndexSpec { get; init; }

    /// <summary>Live vectors before the index trains.</summary>
    public int? TrainThreshold { get; init; }

    /// <summary>Per-query search parameters.</summary>
    public SearchParams? SearchParams { get; init; }
}
