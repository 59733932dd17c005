using Adanns.Engine.Collections;

namespace Adanns.Cluster;

/// <summary>Settings of one cluster node (silo) for Adanns: where its replicas live and how the cluster heals.</summary>
public sealed class ClusterNodeOptions
{
    /// <summary>Directory of this node's database (its shard replicas). Each node needs its own.</summary>
    public string DataDirectory { get; set; } = "data";

    /// <summary>Engine settings of the node's database.</summary>
    public DatabaseOptions Database { get; set; } = new();

    /// <summary>A replica whose node has been gone this long is re-created on another node (when one is free).</summary>
    public TimeSpan ReReplicateAfter { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Interval of the maintenance pass (failure marking, catch-up, re-replication) each node runs.</summary>
    public TimeSpan MaintenanceInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Records of recent writes each shard keeps in memory (not persisted) to catch a returning replica up by log
    /// delta. Bounded: a replica further behind than the log reaches, or any lagging replica after the shard's
    /// sequencer restarted or moved to another node (its log starts empty), gets a full shard transfer instead.
    /// While a catch-up replays, the log keeps what it still needs, up to four times this.
    /// </summary>
    public int ShardLogRecords { get; set; } = 200_000;

    /// <summary>How long the gateway caches a collection's routing (shards → live replicas).</summary>
    public TimeSpan RouteCacheTtl { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Records per page of a full shard transfer.</summary>
    public int TransferBatch { get; set; } = 1_000;
}
