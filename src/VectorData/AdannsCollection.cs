using System.Linq.Expressions;
using System.Runtime.CompilerServices;
using Adanns.Client;
using Adanns.Engine;
using Adanns.Engine.Collections;
using Adanns.Engine.Indexes;
using Adanns.Engine.Storage;
using Grpc.Core;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.VectorData;
using Microsoft.Extensions.VectorData.ProviderServices;

namespace Adanns.VectorData;

/// <summary>
/// An MEVD collection over an Adanns collection, embedded or remote (the same code runs over both). Records map to
/// points: the key to the point id (ulong as a number; string and Guid as a string), the vector property to the
/// vector, data properties to payload fields named by their storage names. Scores follow the property's
/// <see cref="DistanceFunction"/> as MEVD defines it: CosineSimilarity and DotProductSimilarity higher-is-better,
/// CosineDistance (1 − cos), NegativeDotProductSimilarity (−q·x), EuclideanDistance and EuclideanSquaredDistance
/// lower-is-better; the default is CosineSimilarity.
/// </summary>
/// <typeparam name="TKey">ulong, string or Guid (object for dynamic collections).</typeparam>
/// <typeparam name="TRecord">The record type (Dictionary&lt;string, object?&gt; for dynamic collections).</typeparam>
public sealed class AdannsCollection<TKey, TRecord> : VectorStoreCollection<TKey, TRecord>
    where TKey : notnull
    where TRecord : class
{
    internal const string SystemName = "adanns";

    private readonly IAdannsBackend _backend;
    private readonly CollectionModel _model;
    private readonly VectorPropertyModel _vector;
    private readonly Metric _metric;
    private readonly Func<float, double> _score;
    private readonly bool _higherIsBetter;
    private readonly string _indexSpec;
    private readonly int? _trainThreshold;
    private readonly SearchParams? _searchParams;
    private readonly VectorStoreCollectionMetadata _metadata;

    internal AdannsCollection(IAdannsBackend backend, string name, CollectionModel model, AdannsVectorStoreOptions storeOptions, AdannsCollectionOptions? options)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        _backend = backend;
        Name = name;
        _model = model;
        _vector = model.VectorProperty;
        (_metric, _score, _higherIsBetter) = MapDistance(_vector.DistanceFunction, _vector.ModelName);
        bool flat = _vector.IndexKind switch
        {
            null or IndexKind.Dynamic or IndexKind.IvfFlat => false,
            IndexKind.Flat => true,
            _ => throw new NotSupportedException(
                $"Vector property '{_vector.ModelName}': index kind '{_vector.IndexKind}' is not supported by the Adanns vector store (supported: {IndexKind.IvfFlat}, {IndexKind.Flat}, {IndexKind.Dynamic}; set the pipeline with AdannsCollectionOptions.IndexSpec)."),
        };
        _indexSpec = options?.IndexSpec ?? storeOptions.IndexSpec;
        _trainThreshold = options?.TrainThreshold ?? storeOptions.TrainThreshold;
        _searchParams = options?.SearchParams ?? storeOptions.SearchParams;
        // IndexKind.Flat: every search is exact, whatever the index does.
        if (flat) _searchParams = (_searchParams ?? new SearchParams()) with { Exact = true };
        foreach (var p in model.DataProperties)
            if (Payloads.IsReserved(p.StorageName))
                throw new NotSupportedException($"Data property '{p.ModelName}': storage names starting with \"_adanns_\" are reserved for the Adanns vector store's own payload fields.");
        _metadata = new VectorStoreCollectionMetadata { VectorStoreSystemName = SystemName, VectorStoreName = backend.Name, CollectionName = name };
    }

    /// <inheritdoc/>
    public override string Name { get; }

    /// <summary>
    /// The store's metric and score mapping for an MEVD distance function: (metric, store score → MEVD score,
    /// whether a higher MEVD score is better).
    /// </summary>
    internal static (Metric Metric, Func<float, double> Score, bool HigherIsBetter) MapDistance(string? distanceFunction, string property) =>
        distanceFunction switch
        {
            null or DistanceFunction.CosineSimilarity => (Metric.Cosine, s => s, true),
            DistanceFunction.CosineDistance => (Metric.Cosine, s => 1.0 - s, false),
            DistanceFunction.DotProductSimilarity => (Metric.InnerProduct, s => s, true),
            DistanceFunction.NegativeDotProductSimilarity => (Metric.InnerProduct, s => -(double)s, false),
            DistanceFunction.EuclideanSquaredDistance => (Metric.L2, s => s, false),
            DistanceFunction.EuclideanDistance => (Metric.L2, s => Math.Sqrt(Math.Max(0, s)), false),
            _ => throw new NotSupportedException(
                $"Vector property '{property}': distance function '{distanceFunction}' is not supported by the Adanns vector store (supported: CosineSimilarity, CosineDistance, DotProductSimilarity, NegativeDotProductSimilarity, EuclideanDistance, EuclideanSquaredDistance)."),
        };

    // ------------------------------------------------------------ collection lifecycle

    /// <inheritdoc/>
    public override Task<bool> CollectionExistsAsync(CancellationToken cancellationToken = default) =>
        Run("CollectionExists", async () => await _backend.DescribeAsync(Name, cancellationToken).ConfigureAwait(false) is not null);

    /// <inheritdoc/>
    public override Task EnsureCollectionExistsAsync(CancellationToken cancellationToken = default) =>
        Run("EnsureCollectionExists", async () =>
        {
            var shape = await _backend.DescribeAsync(Name, cancellationToken).ConfigureAwait(false);
            if (shape is null)
            {
                if (await _backend.CreateAsync(Name, _vector.Dimensions, _metric, _indexSpec, _trainThreshold, cancellationToken).ConfigureAwait(false))
                    return true;
                shape = await _backend.DescribeAsync(Name, cancellationToken).ConfigureAwait(false); // created concurrently
            }
            if (shape is not null && (shape.Dimension != _vector.Dimensions || shape.Metric != _metric))
                throw new VectorStoreException(
                    $"Collection \"{Name}\" exists with {shape.Dimension} dims and metric {shape.Metric}; this record type asks for {_vector.Dimensions} dims and {_metric} (distance function {_vector.DistanceFunction ?? DistanceFunction.CosineSimilarity}).");
            return true;
        });

    /// <inheritdoc/>
    public override Task EnsureCollectionDeletedAsync(CancellationToken cancellationToken = default) =>
        Run("EnsureCollectionDeleted", () => _backend.DropAsync(Name, cancellationToken));

    // ------------------------------------------------------------ writes

    /// <inheritdoc/>
    public override Task UpsertAsync(TRecord record, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(record);
        return UpsertAsync([record], cancellationToken);
    }

    /// <inheritdoc/>
    public override async Task UpsertAsync(IEnumerable<TRecord> records, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(records);
        var list = records as IReadOnlyList<TRecord> ?? records.ToList();
        if (list.Count == 0) return;
        for (int i = 0; i < list.Count; i++)
            if (list[i] is null) throw new ArgumentException($"Record {i} is null.", nameof(records));

        IReadOnlyList<Embedding>? generated = null;
        if (!AdannsModelBuilder.IsNativeVectorType(_vector.Type))
        {
            // A text (or other non-vector) property: embed all records in one batch with the configured generator.
            var inputs = new object[list.Count];
            for (int i = 0; i < list.Count; i++)
                inputs[i] = _vector.GetValueAsObject(list[i])
                    ?? throw new ArgumentException($"Record {i}: the vector property '{_vector.ModelName}' is null; it needs a value to embed.", nameof(records));
            generated = await GenerateAsync(_vector, inputs, cancellationToken).ConfigureAwait(false);
            if (generated.Count != list.Count)
                throw new InvalidOperationException($"The embedding generator returned {generated.Count} embeddings for {list.Count} inputs.");
        }

        var points = new VectorRecord[list.Count];
        for (int i = 0; i < list.Count; i++)
        {
            var record = list[i];
            ReadOnlyMemory<float> vector = generated is not null
                ? generated[i] is Embedding<float> e ? e.Vector : throw new InvalidOperationException($"The embedding generator returned a {generated[i].GetType().Name}; the Adanns store stores Embedding<float>.")
                : ReadVector(record, i);
            if (vector.Length != _vector.Dimensions)
                throw new ArgumentException(
                    $"Record {i}: the vector property '{_vector.ModelName}' has {vector.Length} dims; the collection's vectors have {_vector.Dimensions}.", nameof(records));
            var id = KeyOf(record, assignIfAutoGenerated: true);
            points[i] = new VectorRecord(id, vector, PayloadOf(record, id));
        }
        await Run("Upsert", async () =>
        {
            await _backend.UpsertAsync(Name, points, cancellationToken).ConfigureAwait(false);
            return true;
        }).ConfigureAwait(false);
    }

    private ReadOnlyMemory<float> ReadVector(TRecord record, int index) => _vector.GetValueAsObject(record) switch
    {
        ReadOnlyMemory<float> m => m,
        float[] a => a,
        Embedding<float> e => e.Vector,
        null => throw new ArgumentException($"Record {index}: the vector property '{_vector.ModelName}' is null; every record needs a vector.", nameof(record)),
        var other => throw new NotSupportedException($"Record {index}: the vector property '{_vector.ModelName}' holds a {other.GetType().Name}."),
    };

    /// <summary>
    /// The data properties by storage name (nulls are not stored), plus the key as text (<see cref="Payloads.KeyField"/>)
    /// and the names of the null properties (<see cref="Payloads.NullsField"/>), so filters can test keys and nulls.
    /// </summary>
    private Dictionary<string, PayloadValue> PayloadOf(TRecord record, RecordId id)
    {
        var payload = new Dictionary<string, PayloadValue>(StringComparer.Ordinal);
        List<PayloadValue>? nulls = null;
        foreach (var p in _model.DataProperties)
        {
            if (Payloads.ToPayload(p.GetValueAsObject(record), p.ModelName) is { } v) payload[p.StorageName] = v;
            else (nulls ??= []).Add(PayloadValue.String(p.StorageName));
        }
        payload[Payloads.KeyField] = PayloadValue.String(id.IsString ? id.Text! : id.Number.ToString(System.Globalization.CultureInfo.InvariantCulture));
        if (nulls is not null) payload[Payloads.NullsField] = PayloadValue.List(nulls.ToArray());
        return payload;
    }

    private RecordId KeyOf(TRecord record, bool assignIfAutoGenerated)
    {
        var kp = _model.KeyProperty;
        object? key = kp.GetValueAsObject(record);
        if (kp.IsAutoGenerated && key is Guid g && g == Guid.Empty && assignIfAutoGenerated)
        {
            key = Guid.NewGuid();
            kp.SetValueAsObject(record, key);
        }
        return ToRecordId(key);
    }

    private RecordId ToRecordId(object? key)
    {
        var type = _model.KeyProperty.Type;
        return key switch
        {
            null => throw new ArgumentException($"The key property '{_model.KeyProperty.ModelName}' is null.", "key"),
            ulong n when type == typeof(ulong) => new RecordId(n),
            string s when type == typeof(string) => s.Length == 0
                ? throw new ArgumentException($"The key property '{_model.KeyProperty.ModelName}' is empty; string keys need at least one character.", "key")
                : new RecordId(s),
            Guid g when type == typeof(Guid) => new RecordId(g.ToString("D")),
            _ => throw new ArgumentException($"Key {key} is a {key.GetType().Name}; this collection's keys are {type.Name}.", "key"),
        };
    }

    private object FromRecordId(RecordId id)
    {
        var type = _model.KeyProperty.Type;
        if (type == typeof(ulong))
            return !id.IsString ? id.Number : throw new VectorStoreException($"Collection \"{Name}\" holds the string id {id}; this record type has ulong keys.");
        if (!id.IsString) throw new VectorStoreException($"Collection \"{Name}\" holds the numeric id {id}; this record type has {type.Name} keys.");
        if (type == typeof(Guid))
            return Guid.TryParse(id.Text, out var g) ? g : throw new VectorStoreException($"Collection \"{Name}\" holds the id {id}, which is not a Guid.");
        return id.Text!;
    }

    /// <inheritdoc/>
    public override Task DeleteAsync(TKey key, CancellationToken cancellationToken = default) => DeleteAsync([key], cancellationToken);

    /// <inheritdoc/>
    public override Task DeleteAsync(IEnumerable<TKey> keys, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(keys);
        var ids = keys.Select(k => ToRecordId(k)).Distinct().ToArray();
        if (ids.Length == 0) return Task.CompletedTask;
        return Run("Delete", async () =>
        {
            await _backend.DeleteAsync(Name, ids, cancellationToken).ConfigureAwait(false);
            return true;
        });
    }

    // ------------------------------------------------------------ reads

    private void CheckIncludeVectors(bool includeVectors)
    {
        if (includeVectors && _model.EmbeddingGenerationRequired)
            throw new NotSupportedException(
                $"IncludeVectors is not supported: the vector property '{_vector.ModelName}' is generated from a {_vector.Type.Name} by an embedding generator, and the input is not stored.");
    }

    /// <inheritdoc/>
    public override async Task<TRecord?> GetAsync(TKey key, RecordRetrievalOptions? options = null, CancellationToken cancellationToken = default)
    {
        await foreach (var r in GetAsync([key], options, cancellationToken).ConfigureAwait(false)) return r;
        return null;
    }

    /// <inheritdoc/>
    public override async IAsyncEnumerable<TRecord> GetAsync(IEnumerable<TKey> keys, RecordRetrievalOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(keys);
        bool withVectors = options?.IncludeVectors ?? false;
        CheckIncludeVectors(withVectors);
        var ids = keys.Select(k => ToRecordId(k)).ToArray();
        if (ids.Length == 0) yield break;
        var found = await Run("Get", () => _backend.GetAsync(Name, ids, withVectors, cancellationToken)).ConfigureAwait(false);
        foreach (var r in found) yield return ToRecord(r, withVectors);
    }

    /// <inheritdoc/>
    public override async IAsyncEnumerable<TRecord> GetAsync(Expression<Func<TRecord, bool>> filter, int top,
        FilteredRecordRetrievalOptions<TRecord>? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(filter);
        ArgumentOutOfRangeException.ThrowIfLessThan(top, 1);
        options ??= new FilteredRecordRetrievalOptions<TRecord>();
        ArgumentOutOfRangeException.ThrowIfNegative(options.Skip, nameof(options.Skip));
        CheckIncludeVectors(options.IncludeVectors);
        var node = FilterTranslator.Translate(filter, _model);
        if (options.OrderBy is null)
        {
            // Storage order: the store skips and stops early.
            var found = await Run("Get", () => _backend.FindAsync(Name, node, options.Skip, top, options.IncludeVectors, cancellationToken)).ConfigureAwait(false);
            foreach (var r in found) yield return ToRecord(r, options.IncludeVectors);
            yield break;
        }
        foreach (var r in await OrderedAsync(node, top, options, cancellationToken).ConfigureAwait(false)) yield return r;
    }

    /// <summary>
    /// Get by filter with OrderBy: every matching record is read (payloads only), ordered here as LINQ-to-objects orders
    /// the same values (<see cref="Comparer{T}.Default"/>, nulls first when ascending), then skipped and cut to
    /// <paramref name="top"/>; vectors, when asked for, are read for those alone. The store has no payload index, so
    /// this reads all the matches: cheap for the thousands, not for millions.
    /// </summary>
    private async Task<IReadOnlyList<TRecord>> OrderedAsync(FilterNode? node, int top, FilteredRecordRetrievalOptions<TRecord> options, CancellationToken ct)
    {
        var sorts = options.OrderBy!(new FilteredRecordRetrievalOptions<TRecord>.OrderByDefinition()).Values;
        var keys = new List<(Func<TRecord, object?> Value, bool Ascending)>(sorts.Count);
        foreach (var sort in sorts)
        {
            PropertyModel property;
            try
            {
                property = _model.GetDataOrKeyProperty(sort.PropertySelector);
            }
            catch (Exception e) when (e is InvalidOperationException or ArgumentException or NotSupportedException)
            {
                throw new NotSupportedException($"OrderBy '{sort.PropertySelector}': the Adanns vector store orders by a data or key property of the record ({e.Message}).", e);
            }
            if (property.Type.IsArray || (property.Type != typeof(string) && property.Type.IsAssignableTo(typeof(System.Collections.IEnumerable))))
                throw new NotSupportedException($"OrderBy '{sort.PropertySelector}': the property '{property.ModelName}' holds a list, which has no order.");
            keys.Add((sort.PropertySelector.Compile(), sort.Ascending));
        }
        var all = await Run("Get", () => _backend.FindAsync(Name, node, 0, int.MaxValue, withVectors: false, ct)).ConfigureAwait(false);
        var rows = all.Select(r => (Stored: r, Record: ToRecord(r, withVectors: false))).ToList();
        IOrderedEnumerable<(StoredRecord Stored, TRecord Record)>? ordered = null;
        foreach (var (value, ascending) in keys)
        {
            Func<(StoredRecord Stored, TRecord Record), object?> by = row => value(row.Record);
            ordered = ordered is null
                ? ascending ? rows.OrderBy(by, Comparer<object?>.Default) : rows.OrderByDescending(by, Comparer<object?>.Default)
                : ascending ? ordered.ThenBy(by, Comparer<object?>.Default) : ordered.ThenByDescending(by, Comparer<object?>.Default);
        }
        var page = (ordered ?? (IEnumerable<(StoredRecord Stored, TRecord Record)>)rows).Skip(options.Skip).Take(top).ToList();
        if (!options.IncludeVectors) return page.Select(p => p.Record).ToList();
        var ids = page.Select(p => p.Stored.Id).ToArray();
        var withVectors = (await Run("Get", () => _backend.GetAsync(Name, ids, withVectors: true, ct)).ConfigureAwait(false)).ToDictionary(r => r.Id);
        // A record deleted between the two reads is dropped, as a read a moment later would.
        return ids.Where(withVectors.ContainsKey).Select(id => ToRecord(withVectors[id], withVectors: true)).ToList();
    }

    private TRecord ToRecord(StoredRecord stored, bool withVectors)
    {
        var record = _model.CreateRecord<TRecord>()!;
        _model.KeyProperty.SetValueAsObject(record, FromRecordId(stored.Id));
        foreach (var p in _model.DataProperties)
        {
            PayloadValue? v = null;
            stored.Payload?.TryGetValue(p.StorageName, out v);
            if (v is null && record is Dictionary<string, object?>)
            {
                p.SetValueAsObject(record, null);
                continue;
            }
            p.SetValueAsObject(record, Payloads.FromPayload(v, p.Type, p.ModelName));
        }
        if (withVectors && stored.Vector is ReadOnlyMemory<float> vec)
        {
            object value = _vector.Type == typeof(float[]) ? vec.ToArray()
                : _vector.Type == typeof(Embedding<float>) ? new Embedding<float>(vec)
                : vec;
            _vector.SetValueAsObject(record, value);
        }
        return record;
    }

    // ------------------------------------------------------------ search

    /// <inheritdoc/>
    public override async IAsyncEnumerable<VectorSearchResult<TRecord>> SearchAsync<TInput>(TInput searchValue, int top,
        VectorSearchOptions<TRecord>? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(searchValue);
        ArgumentOutOfRangeException.ThrowIfLessThan(top, 1);
        options ??= new VectorSearchOptions<TRecord>();
        ArgumentOutOfRangeException.ThrowIfNegative(options.Skip, nameof(options.Skip));
        CheckIncludeVectors(options.IncludeVectors);
        var property = _model.GetVectorPropertyOrSingle(options);
        ReadOnlyMemory<float> query = searchValue switch
        {
            ReadOnlyMemory<float> m => m,
            float[] a => a,
            Embedding<float> e => e.Vector,
            _ when property.EmbeddingGenerator is not null => await EmbedQueryAsync(property, searchValue, cancellationToken).ConfigureAwait(false),
            _ => throw new NotSupportedException(
                $"A search input of type {searchValue.GetType().Name} needs an embedding generator, and none is configured for '{property.ModelName}' (search with ReadOnlyMemory<float>, float[] or Embedding<float>, or configure one).")
        };
        if (query.Length != _vector.Dimensions)
            throw new ArgumentException($"The search vector has {query.Length} dims; the vector property '{_vector.ModelName}' has {_vector.Dimensions}.", nameof(searchValue));
        var node = FilterTranslator.Translate(options.Filter, _model);
        int k = (int)Math.Min(int.MaxValue, (long)options.Skip + top);
        var hits = await Run("Search", () => _backend.SearchAsync(Name, query, k, node, _searchParams, options.IncludeVectors, cancellationToken)).ConfigureAwait(false);
        foreach (var h in hits.Skip(options.Skip))
        {
            double score = _score(h.Score);
            if (options.ScoreThreshold is double t && (_higherIsBetter ? score < t : score > t)) continue;
            yield return new VectorSearchResult<TRecord>(ToRecord(h.Record, options.IncludeVectors), score);
        }
    }

    /// <summary>
    /// Embeds <paramref name="inputs"/> for <paramref name="property"/>. A text generator whose model is wider than the
    /// property is asked for the property's dims (<see cref="EmbeddingGenerationOptions.Dimensions"/>: a Matryoshka
    /// truncation for MiniLM), so a 128-dim property over a 384-dim model stores the 128-dim prefix.
    /// </summary>
    private static async Task<IReadOnlyList<Embedding>> GenerateAsync(VectorPropertyModel property, IReadOnlyList<object> inputs, CancellationToken ct)
    {
        if (property.EmbeddingGenerator is IEmbeddingGenerator<string, Embedding<float>> text && inputs.All(i => i is string))
        {
            int? model = text.GetService<EmbeddingGeneratorMetadata>()?.DefaultModelDimensions;
            var options = model is int d && d != property.Dimensions ? new EmbeddingGenerationOptions { Dimensions = property.Dimensions } : null;
            return await text.GenerateAsync(inputs.Cast<string>(), options, ct).ConfigureAwait(false);
        }
        return await property.GenerateEmbeddingsAsync(inputs, ct).ConfigureAwait(false);
    }

    private static async Task<ReadOnlyMemory<float>> EmbedQueryAsync<TInput>(VectorPropertyModel property, TInput value, CancellationToken ct)
    {
        var embedding = (await GenerateAsync(property, [value!], ct).ConfigureAwait(false))[0];
        return embedding is Embedding<float> e
            ? e.Vector
            : throw new InvalidOperationException($"The embedding generator of '{property.ModelName}' returned a {embedding.GetType().Name}; the Adanns store searches with Embedding<float>.");
    }

    // ------------------------------------------------------------ plumbing

    /// <summary>Runs a store call, turning store failures into <see cref="VectorStoreException"/> (as MEVD expects).</summary>
    private async Task<T> Run<T>(string operation, Func<Task<T>> call)
    {
        try
        {
            return await call().ConfigureAwait(false);
        }
        catch (Exception e) when (e is CollectionMissingException or AdannsException or RpcException or IOException)
        {
            if (e is RpcException { StatusCode: StatusCode.Cancelled }) throw new OperationCanceledException(e.Message, e);
            throw new VectorStoreException($"{operation} on collection \"{Name}\" failed: {e.Message}", e)
            {
                VectorStoreSystemName = SystemName,
                VectorStoreName = _backend.Name,
                CollectionName = Name,
                OperationName = operation,
            };
        }
    }

    /// <inheritdoc/>
    public override object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null) return null;
        if (serviceType == typeof(VectorStoreCollectionMetadata)) return _metadata;
        if (serviceType == typeof(AdannsDatabase) && _backend is EmbeddedBackend eb) return eb.Database;
        if (serviceType == typeof(AdannsClient) && _backend is RemoteBackend rb) return rb.Client;
        return serviceType.IsInstanceOfType(this) ? this : null;
    }
}
