using Adanns.Engine.Indexes;
using Adanns.Engine.Storage;

namespace Adanns.Engine.Collections;

/// <summary>
/// A text embedding model that collections can be bound to by name (<see cref="CollectionConfig.Embedder"/>), so they
/// take text in place of vectors. Registered through <see cref="DatabaseOptions.Embedders"/>; the engine itself ships
/// none (the local MiniLM one is <c>Adanns.Embeddings.MiniLmTextEmbedder</c>). Implementations are thread-safe.
/// </summary>
public interface ITextEmbedder
{
    /// <summary>Dimensions of the vectors it returns.</summary>
    int Dimension { get; }

    /// <summary>Embeds <paramref name="texts"/> in one batch: <c>texts.Count × Dimension</c> floats, row-major.</summary>
    Task<float[]> EmbedAsync(IReadOnlyList<string> texts, CancellationToken cancellationToken = default);
}

/// <summary>A record given as text, for a collection with an embedder: the text is embedded and kept in the payload
/// field <see cref="Collection.TextField"/>.</summary>
/// <param name="Id">Unsigned 64-bit or string id.</param>
/// <param name="Text">The text to embed (non-empty).</param>
/// <param name="Payload">Optional further fields (a <c>text</c> field here is replaced by <paramref name="Text"/>).</param>
public sealed record TextRecord(RecordId Id, string Text, IReadOnlyDictionary<string, PayloadValue>? Payload = null);

public sealed partial class Collection
{
    /// <summary>The payload field that holds the text of a record upserted as text.</summary>
    public const string TextField = "text";

    /// <summary>
    /// The embedder this collection was created with (<see cref="CollectionConfig.Embedder"/>), or null when it has none
    /// or when this process did not register it in <see cref="DatabaseOptions.Embedders"/>.
    /// </summary>
    public ITextEmbedder? Embedder => Config.Embedder is { } name ? DatabaseOptions.FindEmbedder(_options.Embedders, name)?.Embedder : null;

    private ITextEmbedder RequireEmbedder()
    {
        if (Config.Embedder is not { } name)
            throw new AdannsException(AdannsErrorCode.InvalidArgument,
                $"Collection \"{Name}\" has no embedder, so it takes vectors, not text (create it with an embedder such as \"minilm\" to send text).");
        return Embedder ?? throw new AdannsException(AdannsErrorCode.InvalidConfiguration,
            $"Collection \"{Name}\" embeds with \"{name}\", which is not registered in this process (DatabaseOptions.Embedders).");
    }

    /// <summary>
    /// Embeds <paramref name="texts"/> with the collection's embedder in one batch (<c>texts.Count × Dimension</c> floats).
    /// </summary>
    /// <exception cref="AdannsException">No embedder; an empty or null text (naming its index).</exception>
    public async Task<float[]> EmbedAsync(IReadOnlyList<string> texts, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(texts);
        var embedder = RequireEmbedder();
        for (int i = 0; i < texts.Count; i++)
            if (string.IsNullOrWhiteSpace(texts[i]))
                throw new AdannsException(AdannsErrorCode.InvalidArgument, $"Collection \"{Name}\": text {i} is empty.", i);
        if (texts.Count == 0) return [];
        var vectors = await embedder.EmbedAsync(texts, cancellationToken).ConfigureAwait(false);
        if (vectors.Length != (long)texts.Count * Dimension)
            throw new AdannsException(AdannsErrorCode.InvalidConfiguration,
                $"Collection \"{Name}\": embedder \"{Config.Embedder}\" returned {vectors.Length} floats for {texts.Count} texts of {Dimension} dims.");
        return vectors;
    }

    /// <summary>
    /// Embeds the texts in one batch and upserts the records atomically, each text kept in its payload's
    /// <see cref="TextField"/> field. Same durability as <see cref="UpsertAsync(IReadOnlyList{VectorRecord}, bool, CancellationToken)"/>.
    /// </summary>
    public async Task UpsertTextAsync(IReadOnlyList<TextRecord> records, bool wait = true, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(records);
        var texts = new string[records.Count];
        for (int i = 0; i < records.Count; i++)
            texts[i] = (records[i] ?? throw new AdannsException(AdannsErrorCode.InvalidId, $"Record {i} of the batch is null.", i)).Text;
        var vectors = await EmbedAsync(texts, cancellationToken).ConfigureAwait(false);
        var full = new VectorRecord[records.Count];
        for (int i = 0; i < records.Count; i++)
            full[i] = new VectorRecord(records[i].Id, vectors.AsMemory(i * Dimension, Dimension), WithText(records[i].Payload, records[i].Text));
        await UpsertAsync(full, wait, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>A payload with <paramref name="text"/> under <see cref="TextField"/> (replacing any such field).</summary>
    public static Dictionary<string, PayloadValue> WithText(IReadOnlyDictionary<string, PayloadValue>? payload, string text)
    {
        var d = payload is null ? new Dictionary<string, PayloadValue>(1, StringComparer.Ordinal) : new Dictionary<string, PayloadValue>(payload, StringComparer.Ordinal);
        d[TextField] = PayloadValue.String(text);
        return d;
    }

    /// <summary>The <paramref name="k"/> nearest records to the embedding of <paramref name="text"/>, as <see cref="SearchAsync"/> finds them.</summary>
    public async ValueTask<SearchResult> SearchTextAsync(string text, int k, SearchParams? parameters = null, Filter? filter = null, bool withPayload = false,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(text);
        var vector = await EmbedAsync([text], cancellationToken).ConfigureAwait(false);
        return await SearchAsync(vector, k, parameters, filter, withPayload, cancellationToken).ConfigureAwait(false);
    }
}
