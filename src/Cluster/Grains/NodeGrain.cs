using Adanns.Engine.Collections;
using Adanns.Engine.Storage;
using Orleans.Concurrency;

namespace Adanns.Cluster;

/// <summary>
/// Fronts this silo's <see cref="LocalNode"/>. Reentrant: writes wait on disk and searches run on the thread pool,
/// so one slow call never holds up the others.
/// </summary>
[NodePlacement, Reentrant]
internal sealed class NodeGrain(LocalNode node) : Grain, INodeGrain
{
    public Task CreateReplica(string name, CollectionConfig config) => Task.Run(() => node.CreateReplica(name, config));
    public Task<bool> DropReplica(string name) => Task.Run(() => node.DropReplicaAsync(name));
    public Task<ReplicaStatus> Status(string name) => Task.FromResult(node.Status(name));

    public Task SetServing(string name, bool serving)
    {
        node.SetServing(name, serving);
        return Task.CompletedTask;
    }

    public Task<WriteResult> Apply(string name, ShardWrite write) => node.ApplyAsync(name, write);
    public Task<SearchAnswer> Search(string name, SearchCall call) => Task.Run(() => node.Search(name, call));
    public Task<PointDto[]> Get(string name, RecordId[] ids, bool requireServing) => Task.Run(() => node.GetAsync(name, ids, requireServing));
    public Task<RecordId[]> FindIds(string name, FilterSpec? filter, bool requireServing) => Task.Run(() => node.FindIds(name, filter, requireServing));
    public Task<long> Count(string name, FilterSpec? filter) => Task.Run(() => node.Count(name, filter));
    public Task Import(string name, PointDto[] points) => node.ImportAsync(name, points);
    public Task FinishImport(string name, long position) => node.FinishImportAsync(name, position);
    public Task Sync(string name, long position) => node.SyncAsync(name, position);
    public Task<bool> WaitForIndex(string name) => node.WaitForIndexAsync(name);
    public Task Checkpoint(string name) => node.CheckpointAsync(name);
}
