using Adanns.Cluster;
using Adanns.Engine;
using Microsoft.Extensions.Options;
using Orleans.Runtime;

namespace Adanns.Server.Cluster;

/// <summary>
/// Cluster mode's per-collection numbers for the metrics gauges (<c>adanns_collection_points</c>,
/// <c>adanns_collection_index_trained</c>): every few seconds this node asks the cluster for each collection's live
/// count (the sum over shards) and whether every shard's index is trained, and the gauges report the last answer.
/// Every node reports the whole cluster's collections, so aggregate across nodes with max, not sum.
/// </summary>
public sealed class ClusterCollectionStats(ClusterGateway gateway, IClusterMembershipService membership, ILocalSiloDetails local,
    ILogger<ClusterCollectionStats> logger) : BackgroundService
{
    /// <summary>How often the numbers are refreshed.</summary>
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(2);

    private volatile IReadOnlyList<(string Name, long Points, bool Trained)> _last = [];

    /// <summary>The last refresh's collections (empty before the first).</summary>
    public IReadOnlyList<(string Name, long Points, bool Trained)> Snapshot => _last;

    /// <inheritdoc/>
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Interval);
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
        {
            if (membership.CurrentSnapshot.GetSiloStatus(local.SiloAddress) != SiloStatus.Active) continue;
            try
            {
                var names = await gateway.ListCollectionsAsync().ConfigureAwait(false);
                var list = new List<(string, long, bool)>(names.Length);
                foreach (var name in names)
                {
                    try
                    {
                        var info = await gateway.DescribeAsync(name).ConfigureAwait(false);
                        list.Add((name, info.Count, info.IndexTrained));
                    }
                    catch (AdannsException)
                    {
                        // Dropped meanwhile, or a shard without a live replica: left out of this refresh.
                    }
                }
                _last = list;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogDebug("Collection metrics refresh failed: {Error}", e.Message);
            }
        }
    }
}

/// <summary>
/// Cluster mode's demo collection (<c>Adanns:Demo</c>): when this node finds the cluster without collections it
/// creates the demo (<see cref="DemoOptions.Shards"/> × <see cref="DemoOptions.ReplicationFactor"/>, waiting up to two
/// minutes for enough live nodes) and loads it through the cluster. Nodes starting together race to create it; the
/// others see it exists and leave it.
/// </summary>
public sealed class ClusterDemo(ClusterGateway gateway, IClusterMembershipService membership, ILocalSiloDetails local,
    IOptions<AdannsServerOptions> options, ILogger<ClusterDemo> logger) : BackgroundService
{
    /// <inheritdoc/>
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var d = options.Value.Demo;
        if (!d.Enabled) return;
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(2);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (membership.CurrentSnapshot.GetSiloStatus(local.SiloAddress) == SiloStatus.Active)
                {
                    if ((await gateway.ListCollectionsAsync().ConfigureAwait(false)).Length > 0) return;
                    await CreateAsync(d, stoppingToken).ConfigureAwait(false);
                    return;
                }
            }
            catch (AdannsException e) when (e.Code == AdannsErrorCode.CollectionExists)
            {
                return; // another node created it
            }
            catch (AdannsException e) when (e.Code == AdannsErrorCode.InvalidConfiguration && e.Message.Contains("replication_factor", StringComparison.Ordinal) &&
                DateTime.UtcNow < deadline)
            {
                // Fewer live nodes than the demo's replication factor so far.
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                if (DateTime.UtcNow >= deadline)
                {
                    logger.LogWarning("Demo collection {Collection} not created: {Error}", d.Name, e.Message);
                    return;
                }
            }
            await Task.Delay(500, stoppingToken).ConfigureAwait(false);
        }
    }

    private async Task CreateAsync(DemoOptions d, CancellationToken ct)
    {
        await gateway.CreateCollectionAsync(new ClusterCollectionSpec(DatabaseHost.DemoConfig(d), d.Shards, d.ReplicationFactor)).ConfigureAwait(false);
        logger.LogInformation("Creating demo collection {Collection} in the cluster: {Count} synthetic Matryoshka vectors, D={Dimension}, cosine, {Spec}, {Shards} shard(s) × {Rf}",
            d.Name, d.Count, d.Dimension, d.IndexSpec, d.Shards, d.ReplicationFactor);
        foreach (var records in DatabaseHost.DemoBatches(d))
        {
            ct.ThrowIfCancellationRequested();
            await gateway.UpsertAsync(d.Name, records).ConfigureAwait(false);
        }
        await gateway.WaitForIndexAsync(d.Name).ConfigureAwait(false);
        logger.LogInformation("Demo collection {Collection} loaded", d.Name);
    }
}
