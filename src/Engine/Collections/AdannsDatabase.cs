using System.Text.RegularExpressions;
using Adanns.Engine.Indexes;
using Adanns.Engine.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Adanns.Engine.Collections;

/// <summary>
/// An embedded vector database: a directory of collections, opened in-process. Thread-safe.
/// </summary>
/// <remarks>
/// Directory layout (one directory per collection; everything a collection owns lives under it, so dropping it
/// frees its disk space):
/// <code>
/// &lt;root&gt;/
///   collections/&lt;name&gt;/
///     collection.meta        configuration (section file: magic, version, CRC), written once at creation
///     manifest               last checkpoint: applied LSN, record-store token, index snapshot, log replay address
///     index-&lt;lsn&gt;.pqx       index snapshot of that checkpoint (absent until the index is trained): codes and ids
///                            only, its full vectors are the record store's (.ivf: an older IVF collection's, loaded too)
///     records/               FASTER key-value store: hybrid-log segments (records.log.N) and checkpoints/
///     wal/                   FASTER write-ahead log: segments (wal.log.N) and commit metadata; checksum per entry
///   collections/.trash-*     a dropped collection being deleted (removed again on open if a crash interrupted it)
/// </code>
/// A collection whose files fail verification (checksums, truncation, inconsistent checkpoint) is quarantined:
/// listed in <see cref="Quarantined"/> with the reason and not served, while the others load normally.
/// </remarks>
public sealed partial class AdannsDatabase : IAdannsDatabase, IDisposable, IAsyncDisposable
{
    private readonly string _root;
    private readonly string _collectionsDir;
    private readonly DatabaseOptions _options;
    private readonly object _gate = new();
    private readonly Dictionary<string, Collection> _collections = new(StringComparer.Ordinal);
    private readonly Dictionary<string, QuarantinedCollection> _quarantined = new(StringComparer.Ordinal);
    private bool _disposed;
    private readonly ILogger _log;

    [GeneratedRegex("^[A-Za-z0-9_-]{1,64}$")]
    private static partial Regex NamePattern();

    private AdannsDatabase(string root, DatabaseOptions options)
    {
        _root = Path.GetFullPath(root);
        _collectionsDir = Path.Combine(_root, "collections");
        _options = options;
        _log = (options.LoggerFactory ?? NullLoggerFactory.Instance).CreateLogger("Adanns.Engine.Database");
        Metrics = new EngineMetrics(options.MeterFactory, ServedCollections);
    }

    /// <summary>The database's instruments (meter <see cref="EngineMetrics.MeterName"/>).</summary>
    public EngineMetrics Metrics { get; }

    private Collection[] ServedCollections()
    {
        lock (_gate) return _disposed ? [] : _collections.Values.ToArray();
    }

    /// <summary>Raises the thread pool's minimum worker threads to <paramref name="floor"/> (see <see cref="DatabaseOptions.MinThreadPoolThreads"/>).</summary>
    private static void RaiseThreadPoolFloor(int floor)
    {
        ThreadPool.GetMinThreads(out int workers, out int io);
        if (floor > workers) ThreadPool.SetMinThreads(floor, Math.Max(io, floor));
    }

    /// <summary>
    /// Opens (creating if needed) the database in <paramref name="directory"/>: every collection is recovered from
    /// its last checkpoint plus its write-ahead log; those that fail verification are quarantined.
    /// </summary>
    public static AdannsDatabase Open(string directory, DatabaseOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        options ??= new DatabaseOptions();
        options.Validate();
        RaiseThreadPoolFloor(options.MinThreadPoolThreads);
        var db = new AdannsDatabase(directory, options);
        Directory.CreateDirectory(db._collectionsDir);
        foreach (var dir in Directory.GetDirectories(db._collectionsDir))
        {
            string name = Path.GetFileName(dir);
            if (name.StartsWith('.'))
            {
                // An interrupted drop or create: finish deleting it.
                TryDeleteDirectory(dir);
                continue;
            }
            try
            {
                var config = CollectionFiles.ReadConfig(dir);
                if (!string.Equals(config.Name, name, StringComparison.Ordinal))
                    throw new AdannsException(AdannsErrorCode.Corrupt, $"collection.meta names \"{config.Name}\" but the directory is \"{name}\".");
                db._collections[name] = Collection.Open(dir, config, db._options, db.Metrics);
            }
            catch (Exception e) when (e is AdannsException or Persistence.IndexFileException or IOException or FormatException or InvalidOperationException or ArgumentException)
            {
                db._quarantined[name] = new QuarantinedCollection(name, dir, $"Collection \"{name}\" is quarantined: {e.Message}");
                EngineLog.Quarantined(db._log, name, e.Message);
            }
        }
        return db;
    }

    /// <summary>The database directory.</summary>
    public string DirectoryPath => _root;

    /// <summary>Collections that failed to load, with the reason. They are not served; their files are left untouched.</summary>
    public IReadOnlyList<QuarantinedCollection> Quarantined
    {
        get
        {
            lock (_gate) return _quarantined.Values.OrderBy(q => q.Name, StringComparer.Ordinal).ToArray();
        }
    }

    /// <summary>Names of the collections being served, sorted.</summary>
    public IReadOnlyList<string> ListCollections()
    {
        lock (_gate)
        {
            ThrowIfDisposed();
            return _collections.Keys.OrderBy(n => n, StringComparer.Ordinal).ToArray();
        }
    }

    /// <summary>Creates a collection.</summary>
    /// <exception cref="AdannsException"><see cref="AdannsErrorCode.CollectionExists"/>, or
    /// <see cref="AdannsErrorCode.InvalidConfiguration"/> for a bad name, dimension, metric or index spec.</exception>
    public Collection CreateCollection(CollectionConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (config.Name is null || !NamePattern().IsMatch(config.Name))
            throw new AdannsException(AdannsErrorCode.InvalidConfiguration, $"Collection name \"{config.Name}\" must be 1–64 characters from A–Z, a–z, 0–9, '_' and '-'.");
        if (config.Embedder is not null)
        {
            var found = DatabaseOptions.FindEmbedder(_options.Embedders, config.Embedder) ?? throw new AdannsException(AdannsErrorCode.InvalidConfiguration,
                $"Collection \"{config.Name}\": unknown embedder \"{config.Embedder}\" (registered: {(_options.Embedders is { Count: > 0 } known ? string.Join(", ", known.Keys) : "none")}).");
            int dim = found.Embedder.Dimension;
            if (config.Dimension != 0 && config.Dimension != dim)
                throw new AdannsException(AdannsErrorCode.InvalidConfiguration,
                    $"Collection \"{config.Name}\": dimension {config.Dimension} differs from embedder \"{found.Name}\"'s {dim} (give 0 or {dim}).");
            config = config with { Dimension = dim, Embedder = found.Name };
        }
        if (config.Dimension < 1 || config.Dimension > 1 << 16)
            throw new AdannsException(AdannsErrorCode.InvalidConfiguration, $"Collection \"{config.Name}\": dimension {config.Dimension} is outside [1, 65536].");
        if (!Enum.IsDefined(config.Metric))
            throw new AdannsException(AdannsErrorCode.InvalidConfiguration, $"Collection \"{config.Name}\": unknown metric {config.Metric}.");
        if (config.MaxPayloadBytes < 0 || config.TrainThreshold is < 1)
            throw new AdannsException(AdannsErrorCode.InvalidConfiguration, $"Collection \"{config.Name}\": MaxPayloadBytes must be ≥ 0 and TrainThreshold ≥ 1.");
        try
        {
            if (!VectorIndex.IsAuto(config.IndexSpec ?? "", out _)) // Auto: the tuner chooses the pipeline when the collection trains
                IndexSpec.Parse(config.IndexSpec ?? "").Validate(config.Dimension);
        }
        catch (Exception e) when (e is ArgumentException or FormatException)
        {
            throw new AdannsException(AdannsErrorCode.InvalidConfiguration, $"Collection \"{config.Name}\": {e.Message}", e);
        }
        lock (_gate)
        {
            ThrowIfDisposed();
            if (_collections.ContainsKey(config.Name) || _quarantined.ContainsKey(config.Name) || Directory.Exists(Path.Combine(_collectionsDir, config.Name)))
                throw new AdannsException(AdannsErrorCode.CollectionExists, $"Collection \"{config.Name}\" already exists.");
            // Build the directory under a temporary name and rename it: a crash never leaves a half-made collection.
            string temp = Path.Combine(_collectionsDir, $".new-{config.Name}-{Guid.NewGuid():N}");
            string dir = Path.Combine(_collectionsDir, config.Name);
            Directory.CreateDirectory(temp);
            CollectionFiles.WriteConfig(temp, config);
            Directory.Move(temp, dir);
            var c = Collection.Create(dir, config, _options, Metrics);
            _collections[config.Name] = c;
            EngineLog.Created(_log, config.Name, config.Dimension, config.Metric, config.IndexSpec ?? "");
            return c;
        }
    }

    /// <summary>The collection named <paramref name="name"/>.</summary>
    /// <exception cref="AdannsException"><see cref="AdannsErrorCode.CollectionNotFound"/>, or
    /// <see cref="AdannsErrorCode.CollectionQuarantined"/> with the reason.</exception>
    public Collection GetCollection(string name)
    {
        lock (_gate)
        {
            ThrowIfDisposed();
            if (_collections.TryGetValue(name, out var c)) return c;
            if (_quarantined.TryGetValue(name, out var q)) throw new AdannsException(AdannsErrorCode.CollectionQuarantined, q.Reason);
            throw new AdannsException(AdannsErrorCode.CollectionNotFound, $"No collection named \"{name}\".");
        }
    }

    /// <summary>The collection, or false when there is none being served under that name.</summary>
    public bool TryGetCollection(string name, out Collection? collection)
    {
        lock (_gate)
        {
            ThrowIfDisposed();
            return _collections.TryGetValue(name, out collection);
        }
    }

    /// <summary>
    /// Drops a collection (or a quarantined one): stops it, then deletes its directory, freeing its disk space.
    /// Writes in flight fail with <see cref="AdannsErrorCode.Closed"/>. Returns false when there is no such collection.
    /// </summary>
    public Task<bool> DropCollectionAsync(string name, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        Collection? c;
        string dir;
        lock (_gate)
        {
            ThrowIfDisposed();
            bool served = _collections.Remove(name, out c);
            bool quarantined = _quarantined.Remove(name);
            if (!served && !quarantined) return Task.FromResult(false);
            dir = Path.Combine(_collectionsDir, name);
        }
        return DropAsync(c, name, dir);
    }

    private async Task<bool> DropAsync(Collection? c, string name, string dir)
    {
        if (c is not null) await c.DisposeAsync().ConfigureAwait(false);
        // Rename first: the name is free at once, and a crash mid-delete leaves only a .trash directory.
        string trash = Path.Combine(_collectionsDir, $".trash-{name}-{Guid.NewGuid():N}");
        Directory.Move(dir, trash);
        await Task.Run(() => TryDeleteDirectory(trash)).ConfigureAwait(false);
        EngineLog.Dropped(_log, name);
        return true;
    }

    private static void TryDeleteDirectory(string dir)
    {
        try
        {
            Directory.Delete(dir, recursive: true);
        }
        catch (IOException)
        {
            // Retried at the next open.
        }
        catch (UnauthorizedAccessException)
        {
            // Same.
        }
    }

    private void ThrowIfDisposed()
    {
        if (_disposed) throw new AdannsException(AdannsErrorCode.Closed, "The database is closed.");
    }

    /// <summary>Closes every collection (each applies and acknowledges its accepted writes and checkpoints first).</summary>
    public void Dispose()
    {
        foreach (var c in TakeAllForClose()) c.Dispose();
        Metrics.Dispose();
    }

    /// <summary>Closes every collection concurrently without blocking a thread (see <see cref="Collection.DisposeAsync"/>).</summary>
    public async ValueTask DisposeAsync()
    {
        var all = TakeAllForClose();
        await Task.WhenAll(all.Select(c => c.DisposeAsync().AsTask())).ConfigureAwait(false);
        Metrics.Dispose();
    }

    private Collection[] TakeAllForClose()
    {
        lock (_gate)
        {
            if (_disposed) return [];
            _disposed = true;
            var all = _collections.Values.ToArray();
            _collections.Clear();
            return all;
        }
    }

    // ---------------------------------------------------------------- IAdannsDatabase

    /// <inheritdoc/>
    public Task<IReadOnlyList<string>> ListCollectionsAsync(CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return Task.FromResult(ListCollections());
    }

    /// <inheritdoc/>
    Task<IAdannsCollection> IAdannsDatabase.CreateCollectionAsync(CollectionConfig config, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return Task.FromResult<IAdannsCollection>(CreateCollection(config));
    }

    /// <inheritdoc/>
    Task<IAdannsCollection> IAdannsDatabase.OpenCollectionAsync(string name, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return Task.FromResult<IAdannsCollection>(GetCollection(name));
    }
}
