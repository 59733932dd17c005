using System.Diagnostics.Metrics;
using Adanns.Engine;

namespace Adanns.Server;

/// <summary>The server's instruments (meter <see cref="MeterName"/>), exported on <c>/metrics</c> in Prometheus format.</summary>
public sealed class ServerMetrics : IDisposable
{
    /// <summary>Meter name.</summary>
    public const string MeterName = "Adanns.Server";

    private readonly Meter _meter;
    private readonly Counter<long> _calls;
    private readonly Histogram<double> _duration;
    private readonly Counter<long> _queries;
    private readonly bool _names;

    /// <summary>Creates the instruments; collection gauges read <paramref name="host"/>, or in cluster mode
    /// <paramref name="cluster"/> (the whole cluster's collections, refreshed every few seconds).</summary>
    public ServerMetrics(IMeterFactory meterFactory, DatabaseHost host, Microsoft.Extensions.Options.IOptions<AdannsServerOptions> options,
        Cluster.ClusterCollectionStats? cluster = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _names = options.Value.Auth.MetricsCollectionNames;
        ArgumentNullException.ThrowIfNull(meterFactory);
        _meter = meterFactory.Create(MeterName);
        _calls = _meter.CreateCounter<long>("adanns.rpc.calls", "{call}", "RPCs handled, by method and status code.");
        _duration = _meter.CreateHistogram<double>("adanns.rpc.duration", "s", "RPC handling time in the server, by method.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] });
        _queries = _meter.CreateCounter<long>("adanns.search.queries", "{query}", "Search queries answered (a batch counts each query).");
        _meter.CreateObservableGauge("adanns.collection.points",
            () => cluster is null ? Observe(host, _names, c => c.Count) : Observe(cluster, _names, c => c.Points), "{point}", "Live points per collection.");
        _meter.CreateObservableGauge("adanns.collection.index_trained",
            () => cluster is null ? Observe(host, _names, c => c.GetStats().IndexTrained ? 1 : 0) : Observe(cluster, _names, c => c.Trained ? 1 : 0), null,
            "1 when the collection's IVF index serves searches, 0 while searches are exact.");
    }

    /// <summary>One measurement per collection labelled with its name, or (names not allowed) one sum over all.</summary>
    private static IEnumerable<Measurement<long>> Observe(DatabaseHost host, bool names, Func<Engine.Collections.Collection, long> value)
    {
        if (!host.Ready.IsCompletedSuccessfully) yield break;
        var db = host.Ready.Result;
        IReadOnlyList<string> list;
        try { list = db.ListCollections(); }
        catch (AdannsException) { yield break; }
        long sum = 0;
        foreach (var name in list)
        {
            if (!db.TryGetCollection(name, out var c) || c is null) continue;
            long v;
            try { v = value(c); }
            catch (AdannsException) { continue; }
            if (names) yield return new Measurement<long>(v, new KeyValuePair<string, object?>("collection", name));
            else sum += v;
        }
        if (!names) yield return new Measurement<long>(sum);
    }

    /// <summary>Cluster mode: the same measurements from the last refresh of the cluster's collections.</summary>
    private static IEnumerable<Measurement<long>> Observe(Cluster.ClusterCollectionStats stats, bool names, Func<(string Name, long Points, bool Trained), long> value)
    {
        long sum = 0;
        foreach (var c in stats.Snapshot)
        {
            if (names) yield return new Measurement<long>(value(c), new KeyValuePair<string, object?>("collection", c.Name));
            else sum += value(c);
        }
        if (!names) yield return new Measurement<long>(sum);
    }

    /// <summary>Records one finished RPC.</summary>
    public void RecordCall(string method, Grpc.Core.StatusCode code, double seconds)
    {
        var m = new KeyValuePair<string, object?>("method", method);
        _calls.Add(1, m, new KeyValuePair<string, object?>("code", code.ToString()));
        _duration.Record(seconds, m);
    }

    /// <summary>Counts answered queries.</summary>
    public void RecordQueries(int n) => _queries.Add(n);

    /// <inheritdoc/>
    public void Dispose() => _meter.Dispose();
}
