using System.Text.RegularExpressions;
using Adanns.Engine;
using Adanns.Engine.Indexes;
using Adanns.Engine.Storage;
using Microsoft.Extensions.Logging;
using Orleans.Concurrency;
using Orleans.Runtime;

namespace Adanns.Cluster;

/// <summary>Durable definition of a sharded collection.</summary>
[GenerateSerializer]
public sealed class CollectionState
{
    [Id(0)] public ClusterCollectionSpec? Spec { get; set; }
}

/// <summary>Creates, describes and drops one sharded collection. Reentrant: its state changes only at creation and drop.</summary>
[Reentrant]
internal sealed partial class CollectionGrain(
    [PersistentState("collection", ClusterSetup.StorageName)] IPersistentState<CollectionState> state,
    IClusterMembershipService membership,
    ILogger<CollectionGrain> log) : Grain, ICollectionGrain
{
    private Task? _creating;
    private bool _maintaining;

    [GeneratedRegex("^[A-Za-z0-9_-]+$")]
    private static partial Regex NamePattern();

    private IShardGrain Shard(string name, int shard) => GrainFactory.GetGrain<IShardGrain>($"{name}/{shard}");

    public async Task<ClusterCollectionSpec> Create(ClusterCollectionSpec spec)
    {
        if (state.State.Spec is not null || _creating is not null)
            throw new ClusterException(AdannsErrorCode.CollectionExists, $"Collection \"{spec.Config.Name}\" already exists.");
        var c = spec.Config;
        string name = this.GetPrimaryKeyString();
        if (c.Name != name) throw new ClusterException(AdannsErrorCode.InvalidConfiguration, $"Collection name \"{c.Name}\" does not match \"{name}\".");
        if (name.Length is < 1 or > ShardRouting.MaxNameLength || !NamePattern().IsMatch(name))
            throw new ClusterException(AdannsErrorCode.InvalidConfiguration,
                $"Collection name \"{name}\" must be 1–{ShardRouting.MaxNameLength} characters from A–Z, a–z, 0–9, '_' and '-' in a cluster.");
        if (c.Dimension < 1 || c.Dimension > 1 << 16)
            throw new ClusterException(AdannsErrorCode.InvalidConfiguration, $"Collection \"{name}\": dimension {c.Dimension} is outside [1, 65536].");
        if (!Enum.IsDefined(c.Metric))
            throw new ClusterException(AdannsErrorCode.InvalidConfiguration, $"Collection \"{name}\": unknown metric {c.Metric}.");
        if (c.MaxPayloadBytes < 0 || c.TrainThreshold is < 1)
            throw new ClusterException(AdannsErrorCode.InvalidConfiguration, $"Collection \"{name}\": MaxPayloadBytes must be ≥ 0 and TrainThreshold ≥ 1.");
        try
        {
            if (!VectorIndex.IsAuto(c.IndexSpec ?? "", out _)) // Auto: each shard's replicas tune on their own data when they train
                IndexSpec.Parse(c.IndexSpec ?? "").Validate(c.Dimension);
        }
        catch (Exception e) when (e is ArgumentException or FormatException)
        {
            throw new ClusterException(AdannsErrorCode.InvalidConfiguration, $"Collection \"{name}\": {e.Message}");
        }
        var nodes = membership.CurrentSnapshot.Members.Values.Where(m => m.Status == SiloStatus.Active).Select(m => m.Name)
            .OrderBy(n => n, StringComparer.Ordinal).ToArray();
        if (spec.Shards is < 1 or > 256)
            throw new ClusterException(AdannsErrorCode.InvalidConfiguration, $"Collection \"{name}\": shards {spec.Shards} is outside [1, 256].");
        if (spec.ReplicationFactor < 1 || spec.ReplicationFactor > nodes.Length)
            throw new ClusterException(AdannsErrorCode.InvalidConfiguration,
                $"Collection \"{name}\": replication_factor {spec.ReplicationFactor} is outside [1, {nodes.Length}] (the cluster has {nodes.Length} live node(s); replicas of a shard sit on distinct nodes).");
        if (spec.WriteConsistency < 0 || spec.WriteConsistency > spec.ReplicationFactor)
            throw new ClusterException(AdannsErrorCode.InvalidConfiguration,
                $"Collection \"{name}\": write_consistency {spec.WriteConsistency} is outside [0, {spec.ReplicationFactor}] (0 = all live replicas).");

        var creating = CreateAsync(spec, nodes);
        _creating = creating;
        try
        {
            await creating.ConfigureAwait(true);
        }
        finally
        {
            _creating = null;
        }
        return spec;
    }

    private async Task CreateAsync(ClusterCollectionSpec spec, string[] nodes)
    {
        string name = spec.Config.Name;
        // Shard s's replicas go to consecutive nodes starting at s: distinct nodes, spread evenly.
        await Task.WhenAll(Enumerable.Range(0, spec.Shards).Select(s =>
            Shard(name, s).Initialize(spec, s, Enumerable.Range(0, spec.ReplicationFactor).Select(r => nodes[(s + r) % nodes.Length]).ToArray()))).ConfigureAwait(true);
        state.State.Spec = spec;
        await state.WriteStateAsync().ConfigureAwait(true);
        await GrainFactory.GetGrain<ICatalogGrain>(0).Add(name).ConfigureAwait(true);
        log.LogInformation("Created collection {Collection}: {Shards} shard(s) × {Rf} replica(s) on {Nodes}", name, spec.Shards, spec.ReplicationFactor, string.Join(",", nodes));
    }

    public Task<ClusterCollectionSpec?> GetSpec() => Task.FromResult(state.State.Spec);

    public async Task<bool> Drop()
    {
        if (state.State.Spec is not { } spec) return false;
        state.State.Spec = null;
        await GrainFactory.GetGrain<ICatalogGrain>(0).Remove(spec.Config.Name).ConfigureAwait(true);
        await Task.WhenAll(Enumerable.Range(0, spec.Shards).Select(s => Shard(spec.Config.Name, s).Drop())).ConfigureAwait(true);
        await state.ClearStateAsync().ConfigureAwait(true);
        state.State = new CollectionState();
        return true;
    }

    public async Task Maintain()
    {
        if (_maintaining || state.State.Spec is not { } spec) return;
        _maintaining = true;
        try
        {
            await Task.WhenAll(Enumerable.Range(0, spec.Shards).Select(async s =>
            {
                try { await Shard(spec.Config.Name, s).Maintain().ConfigureAwait(true); }
                catch (Exception e) { log.LogDebug("Maintenance of {Collection}/{Shard}: {Error}", spec.Config.Name, s, e.Message); }
            })).ConfigureAwait(true);
        }
        finally
        {
            _maintaining = false;
        }
    }
}

/// <summary>Durable list of collection names.</summary>
[GenerateSerializer]
public sealed class CatalogState
{
    [Id(0)] public List<string> Names { get; set; } = [];
}

internal sealed class CatalogGrain([PersistentState("catalog", ClusterSetup.StorageName)] IPersistentState<CatalogState> state) : Grain, ICatalogGrain
{
    public async Task<bool> Add(string name)
    {
        if (state.State.Names.Contains(name)) return false;
        state.State.Names.Add(name);
        state.State.Names.Sort(StringComparer.Ordinal);
        await state.WriteStateAsync().ConfigureAwait(true);
        return true;
    }

    public async Task Remove(string name)
    {
        if (state.State.Names.Remove(name)) await state.WriteStateAsync().ConfigureAwait(true);
    }

    public Task<string[]> List() => Task.FromResult(state.State.Names.ToArray());
}
