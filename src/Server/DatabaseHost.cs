using System.Diagnostics;
using Adanns.Engine;
using Adanns.Engine.Collections;
using Adanns.Engine.Data;
using Adanns.Engine.Storage;
using Grpc.Core;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;

namespace Adanns.Server;

/// <summary>
/// Owns the <see cref="AdannsDatabase"/>: opens it in the background at startup (recovering every collection, and
/// creating the demo collection when the database is empty), serves it to the RPC handlers, closes it at shutdown.
/// Until loading finishes RPCs answer Unavailable and health reports NotServing.
/// </summary>
public sealed class DatabaseHost(IOptions<AdannsServerOptions> options, ILogger<DatabaseHost> logger, ILoggerFactory loggerFactory,
    System.Diagnostics.Metrics.IMeterFactory meterFactory) : IHostedService, IHealthCheck, IDisposable
{
    private readonly AdannsServerOptions _options = options.Value;
    private readonly TaskCompletionSource<AdannsDatabase> _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _stopping = new();
    private volatile AdannsDatabase? _db;
    private volatile bool _closing;
    private Task? _loading;

    /// <summary>Completes when the database is open and the demo collection (if any) is loaded.</summary>
    public Task<AdannsDatabase> Ready => _ready.Task;

    /// <summary>The open database; throws <see cref="RpcException"/> Unavailable while loading or closing.</summary>
    public AdannsDatabase Database
    {
        get
        {
            if (_closing) throw new RpcException(new Status(StatusCode.Unavailable, "The server is shutting down."));
            return _db ?? throw new RpcException(new Status(StatusCode.Unavailable, _ready.Task.IsFaulted
                ? $"The database failed to load: {_ready.Task.Exception!.InnerException!.Message}"
                : "The database is still loading; retry shortly."));
        }
    }

    /// <summary>
    /// Awaited before the database opens (set it before the host starts): lets an embedder finish setup first, and
    /// lets tests observe the loading state deterministically.
    /// </summary>
    public Func<CancellationToken, Task>? BeforeLoad { get; set; }

    /// <inheritdoc/>
    public Task StartAsync(CancellationToken cancellationToken)
    {
        _loading = Task.Run(LoadAsync, CancellationToken.None);
        return Task.CompletedTask;
    }

    private async Task LoadAsync()
    {
        var sw = Stopwatch.StartNew();
        AdannsDatabase? db = null;
        try
        {
            if (BeforeLoad is { } before) await before(_stopping.Token).ConfigureAwait(false);
            string dir = Path.GetFullPath(_options.DataDirectory);
            logger.LogInformation("Opening database {Directory}", dir);
            var device = _options.SearchDeviceKind();
            logger.LogInformation("Search device: {Device}", _options.SearchDeviceName()); // "cuda" without a GPU fails here
            db = AdannsDatabase.Open(dir, new DatabaseOptions
            {
                ProfileIndexes = _options.ProfileIndexes, LoggerFactory = loggerFactory, MeterFactory = meterFactory,
                SearchDevice = device,
                MaxIndexBacklogBytes = _options.MaxIndexBacklogBytes,
                BackpressureTimeout = _options.BackpressureTimeoutSeconds is >= 0 and <= 3600
                    ? TimeSpan.FromSeconds(_options.BackpressureTimeoutSeconds)
                    : throw new AdannsException(AdannsErrorCode.InvalidConfiguration,
                        $"Adanns:BackpressureTimeoutSeconds must be in [0, 3600] (got {_options.BackpressureTimeoutSeconds})."),
                // Collections created with embedder "minilm" take text; the model loads on first use.
                Embedders = new Dictionary<string, ITextEmbedder>(StringComparer.OrdinalIgnoreCase)
                {
                    [Embeddings.MiniLmTextEmbedder.DefaultName] = new Embeddings.MiniLmTextEmbedder(new Embeddings.MiniLmOptions { Threads = _options.EmbedderThreads }),
                },
            });
            foreach (var q in db.Quarantined)
                logger.LogError("Collection {Collection} is quarantined: {Reason}", q.Name, q.Reason);
            var names = db.ListCollections();
            if (names.Count == 0 && db.Quarantined.Count == 0 && _options.Demo.Enabled)
                await CreateDemoAsync(db, _stopping.Token).ConfigureAwait(false);
            _db = db;
            _ready.TrySetResult(db);
            logger.LogInformation("Database ready in {Seconds:F1} s: {Collections} collection(s) {Names}",
                sw.Elapsed.TotalSeconds, db.ListCollections().Count, string.Join(",", db.ListCollections()));
        }
        catch (Exception e)
        {
            if (db is not null) await db.DisposeAsync().ConfigureAwait(false);
            if (e is OperationCanceledException && _stopping.IsCancellationRequested)
            {
                _ready.TrySetCanceled();
                return;
            }
            logger.LogCritical(e, "The database failed to load");
            _ready.TrySetException(e);
        }
    }

    private async Task CreateDemoAsync(AdannsDatabase db, CancellationToken ct)
    {
        var d = _options.Demo;
        logger.LogInformation("Creating demo collection {Collection}: {Count} synthetic Matryoshka vectors, D={Dimension}, cosine, {Spec}",
            d.Name, d.Count, d.Dimension, d.IndexSpec);
        var c = db.CreateCollection(DemoConfig(d));
        foreach (var records in DemoBatches(d))
            await c.UpsertAsync(records, wait: true, ct).ConfigureAwait(false);
        await c.WaitForIndexAsync(ct).ConfigureAwait(false);
    }

    /// <summary>The demo collection's configuration (cosine, <see cref="DemoOptions.IndexSpec"/>).</summary>
    internal static CollectionConfig DemoConfig(DemoOptions d) => new(d.Name, d.Dimension, Metric.Cosine, d.IndexSpec);

    /// <summary>The demo's records in batches of 1,000: synthetic Matryoshka vectors with payload "cluster" (their
    /// generating cluster) and "parity".</summary>
    internal static IEnumerable<VectorRecord[]> DemoBatches(DemoOptions d)
    {
        using var data = SyntheticMatryoshka.Generate(new SyntheticMatryoshka.Options(Count: d.Count, Dimension: d.Dimension, Queries: 0));
        const int batch = 1000;
        for (int start = 0; start < d.Count; start += batch)
        {
            int n = Math.Min(batch, d.Count - start);
            var records = new VectorRecord[n];
            for (int i = 0; i < n; i++)
            {
                int row = start + i;
                var payload = new Dictionary<string, PayloadValue>
                {
                    ["cluster"] = data.BaseLabels[row],
                    ["parity"] = row % 2 == 0 ? "even" : "odd",
                };
                records[i] = new VectorRecord((ulong)row, data.Base.Row(row).ToArray(), payload);
            }
            yield return records;
        }
    }

    /// <summary>Healthy once the database is loaded (and not shutting down).</summary>
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (_closing) return Task.FromResult(HealthCheckResult.Unhealthy("shutting down"));
        if (_db is { } db)
            return Task.FromResult(HealthCheckResult.Healthy($"{db.ListCollections().Count} collection(s) loaded, {db.Quarantined.Count} quarantined"));
        if (_ready.Task.IsFaulted) return Task.FromResult(HealthCheckResult.Unhealthy("database failed to load"));
        return Task.FromResult(HealthCheckResult.Unhealthy("loading"));
    }

    /// <inheritdoc/>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _closing = true;
        await _stopping.CancelAsync().ConfigureAwait(false);
        if (_loading is not null)
        {
            try { await _loading.WaitAsync(cancellationToken).ConfigureAwait(false); }
            catch (OperationCanceledException) { /* shutdown timed out */ }
        }
        if (_db is { } db)
        {
            logger.LogInformation("Closing database");
            await db.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        _stopping.Dispose();
    }
}
