using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;

namespace Adanns.Engine.Collections;

/// <summary>
/// The embedded engine's instruments (meter <see cref="MeterName"/>), one set per <see cref="AdannsDatabase"/>:
/// searches, writes, trainings and checkpoints by collection, and live points per collection. The server exports
/// them beside its own RPC metrics; an embedded application reads them with OpenTelemetry
/// (<c>AddMeter("Adanns.Engine")</c>) or a <see cref="MeterListener"/>.
/// </summary>
public sealed class EngineMetrics : IDisposable
{
    /// <summary>Meter name.</summary>
    public const string MeterName = "Adanns.Engine";

    private static readonly string[] PathNames = Enum.GetNames<SearchPath>().Select(n => n.ToLowerInvariant()).ToArray();

    private readonly Meter _meter;
    private readonly bool _ownsMeter;
    private readonly Counter<long> _queries;
    private readonly Histogram<double> _searchSeconds;
    private readonly Counter<long> _upserted;
    private readonly Counter<long> _deleted;
    private readonly Counter<long> _trainings;
    private readonly Counter<long> _checkpoints;
    private readonly Counter<long> _throttled;

    internal EngineMetrics(IMeterFactory? factory, Func<IEnumerable<Collection>> collections)
    {
        _ownsMeter = factory is null;
        _meter = factory?.Create(MeterName) ?? new Meter(MeterName);
        _queries = _meter.CreateCounter<long>("adanns.engine.search.queries", "{query}", "Queries answered, by collection and search path.");
        _searchSeconds = _meter.CreateHistogram<double>("adanns.engine.search.duration", "s", "Time to answer one query (or one chunk of a batch), by collection.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1] });
        _upserted = _meter.CreateCounter<long>("adanns.engine.records.upserted", "{record}", "Records upserted (acknowledged), by collection.");
        _deleted = _meter.CreateCounter<long>("adanns.engine.records.deleted", "{record}", "Records deleted (that existed), by collection.");
        _trainings = _meter.CreateCounter<long>("adanns.engine.index.trainings", "{training}", "Index trainings swapped in, by collection.");
        _checkpoints = _meter.CreateCounter<long>("adanns.engine.checkpoints", "{checkpoint}", "Checkpoints taken, by collection.");
        _throttled = _meter.CreateCounter<long>("adanns.engine.writes.throttled", "{batch}",
            "Write batches that waited for the index backlog (DatabaseOptions.MaxIndexBacklogBytes), by collection and outcome (admitted, overloaded).");
        _meter.CreateObservableGauge("adanns.engine.collection.points", () => Observe(collections), "{point}", "Live points per collection.");
    }

    /// <summary>The meter the instruments belong to.</summary>
    public Meter Meter => _meter;

    private static IEnumerable<Measurement<long>> Observe(Func<IEnumerable<Collection>> collections)
    {
        foreach (var c in collections())
        {
            long n;
            try { n = c.Count; }
            catch (ObjectDisposedException) { continue; }
            yield return new Measurement<long>(n, new KeyValuePair<string, object?>("collection", c.Name));
        }
    }

    internal void Searched(string collection, SearchPath path, int queries, double seconds)
    {
        var c = new KeyValuePair<string, object?>("collection", collection);
        if (_queries.Enabled) _queries.Add(queries, c, new KeyValuePair<string, object?>("path", PathNames[(int)path]));
        if (_searchSeconds.Enabled) _searchSeconds.Record(seconds, c);
    }

    internal void Upserted(string collection, int n) => _upserted.Add(n, new KeyValuePair<string, object?>("collection", collection));

    internal void Deleted(string collection, int n) => _deleted.Add(n, new KeyValuePair<string, object?>("collection", collection));

    internal void Trained(string collection) => _trainings.Add(1, new KeyValuePair<string, object?>("collection", collection));

    internal void Throttled(string collection, bool admitted) => _throttled.Add(1, new KeyValuePair<string, object?>("collection", collection),
        new KeyValuePair<string, object?>("outcome", admitted ? "admitted" : "overloaded"));

    internal void Checkpointed(string collection) => _checkpoints.Add(1, new KeyValuePair<string, object?>("collection", collection));

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_ownsMeter) _meter.Dispose();
    }
}

/// <summary>The engine's log messages (source-generated: no formatting cost when the level is off).</summary>
internal static partial class EngineLog
{
    [LoggerMessage(1, LogLevel.Information, "Collection {Collection} opened: {Count} records, index trained: {Trained}, {Replayed} log entries replayed")]
    public static partial void Opened(ILogger logger, string collection, long count, bool trained, int replayed);

    [LoggerMessage(2, LogLevel.Information, "Collection {Collection}: index trained on {Count} vectors in {Seconds:F2} s (training {Training})")]
    public static partial void Trained(ILogger logger, string collection, long count, double seconds, int training);

    [LoggerMessage(10, LogLevel.Debug, "Collection {Collection}: index training started on {Count} vectors")]
    public static partial void TrainingStarted(ILogger logger, string collection, long count);

    [LoggerMessage(3, LogLevel.Warning, "Collection {Collection}: index training failed: {Reason}")]
    public static partial void TrainingFailed(ILogger logger, string collection, string reason, Exception? exception);

    [LoggerMessage(4, LogLevel.Debug, "Collection {Collection}: checkpoint at LSN {Lsn} in {Milliseconds:F1} ms")]
    public static partial void Checkpointed(ILogger logger, string collection, long lsn, double milliseconds);

    [LoggerMessage(12, LogLevel.Debug, "Collection {Collection}: slow write group of {Batches} batches, oldest acknowledged after {Total:F1} ms: queued {Queued:F1}, log commit {Commit:F1}, store {Store:F1}, lock wait {LockWait:F1}, apply {Apply:F1} ms")]
    public static partial void SlowWriteGroup(ILogger logger, string collection, int batches, double total, double queued, double commit, double store, double lockWait, double apply);

    [LoggerMessage(11, LogLevel.Debug, "Collection {Collection}: record log compacted from {Before} to {After} bytes in {Milliseconds:F1} ms")]
    public static partial void StoreCompacted(ILogger logger, string collection, long before, long after, double milliseconds);

    [LoggerMessage(5, LogLevel.Information, "Collection {Collection}: index compacted ({Tombstones} tombstones removed)")]
    public static partial void Compacted(ILogger logger, string collection, long tombstones);

    [LoggerMessage(6, LogLevel.Critical, "Collection {Collection} stopped after an internal error; writes now fail")]
    public static partial void Faulted(ILogger logger, string collection, Exception exception);

    [LoggerMessage(7, LogLevel.Error, "Collection {Collection} is quarantined: {Reason}")]
    public static partial void Quarantined(ILogger logger, string collection, string reason);

    [LoggerMessage(8, LogLevel.Information, "Collection {Collection} created: D={Dimension}, {Metric}, {Spec}")]
    public static partial void Created(ILogger logger, string collection, int dimension, Metric metric, string spec);

    [LoggerMessage(9, LogLevel.Information, "Collection {Collection} dropped")]
    public static partial void Dropped(ILogger logger, string collection);
}
