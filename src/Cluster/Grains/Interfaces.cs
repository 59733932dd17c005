using Adanns.Engine.Collections;
using Adanns.Engine.Storage;
using Orleans.Concurrency;

namespace Adanns.Cluster;

/// <summary>The replicas stored on one node (key: the node's silo name); placed on that silo only.</summary>
public interface INodeGrain : IGrainWithStringKey
{
    Task CreateReplica(string name, CollectionConfig config);
    Task<bool> DropReplica(string name);
    Task<ReplicaStatus> Status(string name);
    Task SetServing(string name, bool serving);
    Task<WriteResult> Apply(string name, ShardWrite write);
    Task<SearchAnswer> Search(string name, SearchCall call);
    Task<PointDto[]> Get(string name, RecordId[] ids, bool requireServing);
    Task<RecordId[]> FindIds(string name, FilterSpec? filter, bool requireServing);
    Task<long> Count(string name, FilterSpec? filter);
    Task Import(string name, PointDto[] points);
    Task FinishImport(string name, long position);
    Task Sync(string name, long position);
    Task<bool> WaitForIndex(string name);
    Task Checkpoint(string name);
}

/// <summary>
/// One shard (key: <c>{collection}/{shard}</c>): orders its writes into one sequence, sends each to every live
/// replica and acknowledges after the write consistency is met, and heals its replicas (catch-up, transfer,
/// re-replication). Its replica list is durable grain state.
/// </summary>
public interface IShardGrain : IGrainWithStringKey
{
    Task Initialize(ClusterCollectionSpec spec, int shard, string[] nodes);
    Task<WriteResult> Write(ShardWrite write);
    [AlwaysInterleave] Task<ShardInfo> Describe();
    [AlwaysInterleave] Task<string[]> ReadReplicas();
    Task Maintain();
    Task Drop();
    Task<bool> WaitForIndex();
    Task Checkpoint();
}

/// <summary>A sharded collection's durable definition (key: its name).</summary>
public interface ICollectionGrain : IGrainWithStringKey
{
    Task<ClusterCollectionSpec> Create(ClusterCollectionSpec spec);
    Task<ClusterCollectionSpec?> GetSpec();
    Task<bool> Drop();
    Task Maintain();
}

/// <summary>The names of the cluster's collections (one grain, key 0), durable.</summary>
public interface ICatalogGrain : IGrainWithIntegerKey
{
    Task<bool> Add(string name);
    Task Remove(string name);
    Task<string[]> List();
}
