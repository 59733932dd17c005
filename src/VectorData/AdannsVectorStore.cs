using System.Runtime.CompilerServices;
using Adanns.Client;
using Adanns.Engine.Collections;
using Adanns.Engine;
using Adanns.Engine.Storage;
using Grpc.Core;
using Microsoft.Extensions.VectorData;

namespace Adanns.VectorData;

/// <summary>
/// A <see cref="VectorStore"/> over Adanns: <c>new AdannsVectorStore(database)</c> over an embedded
/// <see cref="AdannsDatabase"/>, or <c>new AdannsVectorStore(client)</c> over a server reached with an
/// <see cref="AdannsClient"/>; both behave the same (one implementation above a thin backend). The store does not
/// own what it is given (dispose the database or client yourself) unless it was made by <see cref="Open"/>.
/// </summary>
public sealed class AdannsVectorStore : VectorStore
{
    private readonly IAdannsBackend _backend;
    private readonly AdannsVectorStoreOptions _options;
    private readonly VectorStoreMetadata _metadata;

    /// <summary>A store over an embedded database.</summary>
    public AdannsVectorStore(AdannsDatabase database, AdannsVectorStoreOptions? options = null)
        : this(new EmbeddedBackend(database ?? throw new ArgumentNullException(nameof(database)), ownsDatabase: false), options)
    {
    }

    /// <summary>A store over a remote server.</summary>
    public AdannsVectorStore(AdannsClient client, AdannsVectorStoreOptions? options = null)
        : this(new RemoteBackend(client ?? throw new ArgumentNullException(nameof(client)), ownsClient: false, CheckBatch(options)), options)
    {
    }

    private AdannsVectorStore(IAdannsBackend backend, AdannsVectorStoreOptions? options)
    {
        _backend = backend;
        _options = options ?? new AdannsVectorStoreOptions();
        _metadata = new VectorStoreMetadata { VectorStoreSystemName = AdannsCollection<ulong, object>.SystemName, VectorStoreName = backend.Name };
    }

    private static int CheckBatch(AdannsVectorStoreOptions? options)
    {
        int b = options?.RemoteBatchSize ?? new AdannsVectorStoreOptions().RemoteBatchSize;
        return b >= 1 ? b : throw new ArgumentOutOfRangeException(nameof(options), b, "AdannsVectorStoreOptions.RemoteBatchSize must be at least 1.");
    }

    /// <summary>Opens (creating if needed) an embedded database in <paramref name="directory"/>, owned and closed by the store.</summary>
    public static AdannsVectorStore Open(string directory, AdannsVectorStoreOptions? options = null, DatabaseOptions? databaseOptions = null) =>
        new(new EmbeddedBackend(AdannsDatabase.Open(directory, databaseOptions), ownsDatabase: true), options);

    /// <summary>Connects to a server at <paramref name="address"/> (e.g. http://127.0.0.1:50051); the client is owned by the store.</summary>
    public static AdannsVectorStore Connect(string address, string? apiKey = null, AdannsVectorStoreOptions? options = null) =>
        new(new RemoteBackend(new AdannsClient(address, apiKey), ownsClient: true, CheckBatch(options)), options);

    /// <summary>The store's settings.</summary>
    public AdannsVectorStoreOptions Options => _options;

    /// <inheritdoc/>
    public override VectorStoreCollection<TKey, TRecord> GetCollection<TKey, TRecord>(string name, VectorStoreCollectionDefinition? definition = null) =>
        GetCollection<TKey, TRecord>(name, new AdannsCollectionOptions { Definition = definition });

    /// <summary>A collection with its own options (index spec, search parameters, embedding generator).</summary>
    public AdannsCollection<TKey, TRecord> GetCollection<TKey, TRecord>(string name, AdannsCollectionOptions options)
        where TKey : notnull
        where TRecord : class
    {
        ArgumentNullException.ThrowIfNull(options);
        if (typeof(TRecord) == typeof(Dictionary<string, object?>))
            throw new NotSupportedException("Dictionary<string, object?> records are dynamic: use GetDynamicCollection.");
        if (typeof(TKey) != typeof(object) && !AdannsModelBuilder.KeyTypes.Contains(typeof(TKey)))
            throw new NotSupportedException($"Key type {typeof(TKey).Name} is not supported by the Adanns vector store (supported: ulong, string, Guid).");
        var model = new AdannsModelBuilder().Build(typeof(TRecord), typeof(TKey), options.Definition, options.EmbeddingGenerator ?? _options.EmbeddingGenerator);
        return new AdannsCollection<TKey, TRecord>(_backend, name, model, _options, options);
    }

    /// <inheritdoc/>
    public override VectorStoreCollection<object, Dictionary<string, object?>> GetDynamicCollection(string name, VectorStoreCollectionDefinition definition) =>
        GetDynamicCollection(name, new AdannsCollectionOptions { Definition = definition ?? throw new ArgumentNullException(nameof(definition)) });

    /// <summary>A dynamic collection (Dictionary records described by <see cref="VectorStoreCollectionOptions.Definition"/>) with its own options.</summary>
    public AdannsCollection<object, Dictionary<string, object?>> GetDynamicCollection(string name, AdannsCollectionOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var definition = options.Definition ?? throw new ArgumentException("A dynamic collection needs a VectorStoreCollectionDefinition.", nameof(options));
        var model = new AdannsModelBuilder().BuildDynamic(definition, options.EmbeddingGenerator ?? _options.EmbeddingGenerator);
        return new AdannsCollection<object, Dictionary<string, object?>>(_backend, name, model, _options, options);
    }

    /// <inheritdoc/>
    public override async IAsyncEnumerable<string> ListCollectionNamesAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        IAsyncEnumerator<string> e;
        try
        {
            e = _backend.ListCollectionsAsync(cancellationToken).GetAsyncEnumerator(cancellationToken);
        }
        catch (Exception ex) when (ex is AdannsException or RpcException)
        {
            throw Wrap(ex, "ListCollectionNames", null);
        }
        await using (e.ConfigureAwait(false))
        {
            while (true)
            {
                try
                {
                    if (!await e.MoveNextAsync().ConfigureAwait(false)) yield break;
                }
                catch (Exception ex) when (ex is AdannsException or RpcException)
                {
                    throw Wrap(ex, "ListCollectionNames", null);
                }
                yield return e.Current;
            }
        }
    }

    /// <inheritdoc/>
    public override async Task<bool> CollectionExistsAsync(string name, CancellationToken cancellationToken = default)
    {
        try
        {
            return await _backend.DescribeAsync(name, cancellationToken).ConfigureAwait(false) is not null;
        }
        catch (Exception ex) when (ex is AdannsException or RpcException)
        {
            throw Wrap(ex, "CollectionExists", name);
        }
    }

    /// <inheritdoc/>
    public override async Task EnsureCollectionDeletedAsync(string name, CancellationToken cancellationToken = default)
    {
        try
        {
            await _backend.DropAsync(name, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is AdannsException or RpcException)
        {
            throw Wrap(ex, "EnsureCollectionDeleted", name);
        }
    }

    private VectorStoreException Wrap(Exception e, string operation, string? collection) =>
        new($"{operation} failed: {e.Message}", e)
        {
            VectorStoreSystemName = _metadata.VectorStoreSystemName,
            VectorStoreName = _metadata.VectorStoreName,
            CollectionName = collection,
            OperationName = operation,
        };

    /// <inheritdoc/>
    public override object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null) return null;
        if (serviceType == typeof(VectorStoreMetadata)) return _metadata;
        if (serviceType == typeof(AdannsDatabase) && _backend is EmbeddedBackend eb) return eb.Database;
        if (serviceType == typeof(AdannsClient) && _backend is RemoteBackend rb) return rb.Client;
        return serviceType.IsInstanceOfType(this) ? this : null;
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing) _backend.Dispose();
        base.Dispose(disposing);
    }
}
