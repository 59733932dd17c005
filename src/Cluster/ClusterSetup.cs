using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Configuration;
using Orleans.Hosting;
using StackExchange.Redis;

namespace Adanns.Cluster;

/// <summary>Adds the Adanns cluster services to an Orleans silo.</summary>
public static class ClusterSetup
{
    /// <summary>Name of the grain storage holding collection metadata (catalog, collections, shards' replica lists).</summary>
    public const string StorageName = "adanns";

    /// <summary>
    /// Registers the node's replica store (<see cref="LocalNode"/>), the node placement director, the gateway
    /// (<see cref="ClusterGateway"/>) and the maintenance loop, and tunes failure detection so a dead node is
    /// declared within a few seconds. The caller provides clustering and the <see cref="StorageName"/> grain storage
    /// (see <see cref="UseAdannsRedis"/>).
    /// </summary>
    public static ISiloBuilder AddAdannsCluster(this ISiloBuilder silo, Action<ClusterNodeOptions> configure)
    {
        silo.Services.Configure(configure);
        silo.Services.AddSingleton<LocalNode>();
        silo.Services.AddSingleton<ClusterGateway>();
        silo.Services.AddHostedService<MaintenanceService>();
        silo.AddPlacementDirector<NodePlacementStrategy, NodePlacementDirector>();
        silo.Configure<ClusterMembershipOptions>(o =>
        {
            // Defaults take ~30-60 s to declare a dead silo; a vector database must fail over in seconds.
            o.ProbeTimeout = TimeSpan.FromSeconds(1);
            o.NumMissedProbesLimit = 2;
            o.NumProbedSilos = 2;
            o.NumVotesForDeathDeclaration = 1;
            o.TableRefreshTimeout = TimeSpan.FromSeconds(2);
            o.IAmAliveTablePublishTimeout = TimeSpan.FromSeconds(5);
        });
        silo.Configure<SiloMessagingOptions>(o => o.ResponseTimeout = TimeSpan.FromSeconds(30));
        return silo;
    }

    /// <summary>Redis (e.g. <c>127.0.0.1:6379</c>) as the membership table and as the metadata grain storage.</summary>
    public static ISiloBuilder UseAdannsRedis(this ISiloBuilder silo, string redis)
    {
        var config = ConfigurationOptions.Parse(redis);
        config.AbortOnConnectFail = false;
        silo.UseRedisClustering(o => o.ConfigurationOptions = config);
        silo.AddRedisGrainStorage(StorageName, o => o.ConfigurationOptions = config);
        return silo;
    }
}

/// <summary>
/// Runs the cluster's maintenance on every node: each pass asks every collection's shards to mark replicas of
/// departed nodes dead, catch returning replicas up and re-replicate shards whose replica stayed gone. Any node
/// may run it (shards serialize it); all do, so it continues when nodes die.
/// </summary>
internal sealed class MaintenanceService(IGrainFactory grains, Microsoft.Extensions.Options.IOptions<ClusterNodeOptions> options, ILogger<MaintenanceService> log)
    : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var interval = options.Value.MaintenanceInterval;
        using var timer = new PeriodicTimer(interval);
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
        {
            try
            {
                var names = await grains.GetGrain<ICatalogGrain>(0).List().WaitAsync(TimeSpan.FromSeconds(10), stoppingToken).ConfigureAwait(false);
                await Task.WhenAll(names.Select(n => grains.GetGrain<ICollectionGrain>(n).Maintain().WaitAsync(TimeSpan.FromSeconds(120), stoppingToken)))
                    .ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                // The silo is starting or stopping, or a grain's silo just died: the next pass retries.
                log.LogDebug("Maintenance pass failed: {Error}", e.Message);
            }
        }
    }
}
