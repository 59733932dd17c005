using Adanns.Engine.Indexes;
using Adanns.Engine.Storage;

namespace Adanns.Engine.Collections;

/// <summary>
/// A collection as application code sees it, the same embedded (<see cref="Collection"/>) and remote (the
/// <c>Adanns.Client</c> package's collections over gRPC): write code against this interface once and choose where
/// the data lives at startup. Errors surface as <see cref="AdannsException"/> embedded and as
/// <c>AdannsException</c> (carrying the same code) remotely.
/// </summary>
public interface IAdannsCollection
{
    /// <summary>Name.</summary>
    string Name { get; }

    /// <summary>Vector dimension.</summary>
    int Dimension { get; }

    /// <summary>Ranking metric (sets the score direction).</summary>
    Metric Metric { get; }

    /// <summary>Inserts or replaces a batch atomically; with <paramref name="wait"/>, completes once durable and searchable.</summary>
    Task UpsertAsync(IReadOnlyList<VectorRecord> records, bool wait = true, CancellationToken cancellationToken = default);

    /// <summary>Deletes records by id; returns how many existed (0 without <paramref name="wait"/>).</summary>
    Task<int> DeleteAsync(IReadOnlyList<RecordId> ids, bool wait = true, CancellationToken cancellationToken = default);

    /// <summary>The record with <paramref name="id"/> (vector and payload), or null.</summary>
    ValueTask<VectorRecord?> GetAsync(RecordId id, CancellationToken cancellationToken = default);

    /// <summary>The records with <paramref name="ids"/>, in the same order; null where an id is not stored.</summary>
    Task<IReadOnlyList<VectorRecord?>> GetManyAsync(IReadOnlyList<RecordId> ids, CancellationToken cancellationToken = default);

    /// <summary>For each of <paramref name="ids"/>, whether a record with it is stored (cheap: no vectors are read).</summary>
    Task<IReadOnlyList<bool>> ExistAsync(IReadOnlyList<RecordId> ids, CancellationToken cancellationToken = default);

    /// <summary>Live records, or those matching <paramref name="filter"/>.</summary>
    Task<long> CountAsync(Filter? filter = null, CancellationToken cancellationToken = default);

    /// <summary>The <paramref name="k"/> nearest records to <paramref name="query"/>, best first, with how the search ran.</summary>
    ValueTask<SearchResult> SearchAsync(ReadOnlyMemory<float> query, int k, SearchParams? parameters = null, Filter? filter = null,
        bool withPayload = false, CancellationToken cancellationToken = default);

    /// <summary>One <see cref="SearchResult"/> per query, in query order. Cancellation stops the batch between chunks of queries.</summary>
    Task<IReadOnlyList<SearchResult>> SearchBatchAsync(IReadOnlyList<ReadOnlyMemory<float>> queries, int k, SearchParams? parameters = null,
        Filter? filter = null, bool withPayload = false, CancellationToken cancellationToken = default);

    /// <summary>
    /// Embeds the texts with the collection's embedder (<see cref="CollectionConfig.Embedder"/>) in one batch and upserts
    /// them atomically, each text kept in the payload field <see cref="Collection.TextField"/>. Remotely the server embeds.
    /// </summary>
    /// <exception cref="AdannsException">The collection has no embedder (<see cref="AdannsErrorCode.InvalidArgument"/>); an empty text.</exception>
    Task UpsertTextAsync(IReadOnlyList<TextRecord> records, bool wait = true, CancellationToken cancellationToken = default);

    /// <summary>The <paramref name="k"/> nearest records to the embedding of <paramref name="text"/> (the collection's embedder; remotely, on the server).</summary>
    /// <exception cref="AdannsException">The collection has no embedder (<see cref="AdannsErrorCode.InvalidArgument"/>); an empty text.</exception>
    ValueTask<SearchResult> SearchTextAsync(string text, int k, SearchParams? parameters = null, Filter? filter = null, bool withPayload = false,
        CancellationToken cancellationToken = default);

    /// <summary>Configuration and counters now.</summary>
    Task<CollectionDescription> DescribeAsync(CancellationToken cancellationToken = default);

    /// <summary>Takes a checkpoint (snapshot) now, so a restart replays nothing before it.</summary>
    Task CheckpointAsync(CancellationToken cancellationToken = default);

    /// <summary>Trains the index if due and waits until it serves; false when there are too few vectors to train.</summary>
    Task<bool> WaitForIndexAsync(CancellationToken cancellationToken = default);
}

/// <summary>A database of collections, embedded (<see cref="AdannsDatabase"/>) or remote (<c>AdannsClient</c>).</summary>
public interface IAdannsDatabase : IAsyncDisposable
{
    /// <summary>Names of the served collections, sorted.</summary>
    Task<IReadOnlyList<string>> ListCollectionsAsync(CancellationToken cancellationToken = default);

    /// <summary>Creates a collection (<see cref="AdannsErrorCode.CollectionExists"/> when the name is taken).</summary>
    Task<IAdannsCollection> CreateCollectionAsync(CollectionConfig config, CancellationToken cancellationToken = default);

    /// <summary>The collection named <paramref name="name"/> (<see cref="AdannsErrorCode.CollectionNotFound"/> when none).</summary>
    Task<IAdannsCollection> OpenCollectionAsync(string name, CancellationToken cancellationToken = default);

    /// <summary>Drops a collection and deletes its files; false when there is none.</summary>
    Task<bool> DropCollectionAsync(string name, CancellationToken cancellationToken = default);
}

/// <summary>The result of one search: hits best first, and how it ran.</summary>
/// <param name="Hits">At most k hits, best first (fewer when fewer records match).</param>
/// <param name="Report">Path taken, parameters the index used, work done. For a query answered in a batch through the
/// index's batch path, <see cref="SearchReport.Stats"/> sums the work of the chunk of queries it ran in
/// (<see cref="SearchStats.Queries"/> of them).</param>
public sealed record SearchResult(IReadOnlyList<SearchHit> Hits, SearchReport Report);

/// <summary>A collection's configuration and counters.</summary>
/// <param name="Name">Name.</param>
/// <param name="Dimension">Vector dimension.</param>
/// <param name="Metric">Metric.</param>
/// <param name="IndexSpec">Index pipeline.</param>
/// <param name="Stats">Counters (count, index state, LSNs, maintenance, bytes).</param>
/// <param name="Memory">Resident memory estimate (remotely, the server's; null from a server in cluster mode).</param>
/// <param name="Embedder">The text embedder the collection was created with (<see cref="CollectionConfig.Embedder"/>), or null.</param>
/// <param name="Tuning">How the trained index is tuned; null while the collection is untrained (searches are exact).</param>
public sealed record CollectionDescription(string Name, int Dimension, Metric Metric, string IndexSpec, CollectionStats Stats, CollectionMemory? Memory,
    string? Embedder = null, IndexTuning? Tuning = null)
{
    /// <summary>Live records.</summary>
    public long Count => Stats.Count;
}

/// <summary>How a collection's trained index is tuned, as its <see cref="IVectorIndexReader"/> reports it.</summary>
/// <param name="Spec">The pipeline the trained index runs (<see cref="IVectorIndexReader.Spec"/>).</param>
/// <param name="Defaults">What a search without parameters runs at k = <see cref="IndexTuning.DefaultsK"/> (<see cref="IVectorIndexReader.Resolve"/>);
/// null when the index cannot resolve them.</param>
/// <param name="Profile">The measured cost/recall frontier (<see cref="IVectorIndexReader.ComputeProfile"/>): what a recall target or a
/// compute budget picks from, each point with its predicted recall; null when the index was not profiled
/// (<see cref="DatabaseOptions.ProfileIndexes"/>).</param>
public sealed record IndexTuning(string Spec, ResolvedSearch? Defaults, ComputeProfile? Profile)
{
    /// <summary>The k <see cref="Defaults"/> are resolved at.</summary>
    public const int DefaultsK = 10;
}
