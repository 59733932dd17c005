using Adanns.Engine;
using Orleans.Placement;
using Orleans.Runtime;
using Orleans.Runtime.Placement;

namespace Adanns.Cluster;

/// <summary>
/// Places a <see cref="INodeGrain"/> on the silo whose name is the grain's key, so each node grain fronts the
/// replicas stored in that silo's data directory. When that silo is not an active member the activation fails
/// (the caller then treats the replica as unavailable); a node grain is never placed anywhere else.
/// </summary>
[GenerateSerializer, Immutable]
public sealed class NodePlacementStrategy : PlacementStrategy
{
    internal static NodePlacementStrategy Instance { get; } = new();
}

/// <summary>Marks a grain class for <see cref="NodePlacementStrategy"/>.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false)]
public sealed class NodePlacementAttribute : PlacementAttribute
{
    /// <summary>Creates the attribute.</summary>
    public NodePlacementAttribute() : base(NodePlacementStrategy.Instance) { }
}

/// <summary>The director for <see cref="NodePlacementStrategy"/>: silo name == grain key.</summary>
public sealed class NodePlacementDirector(IClusterMembershipService membership) : IPlacementDirector
{
    /// <inheritdoc/>
    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        string node = target.GrainIdentity.Key.ToString()!;
        var compatible = context.GetCompatibleSilos(target);
        var members = membership.CurrentSnapshot.Members;
        foreach (var silo in compatible)
        {
            if (members.TryGetValue(silo, out var m) && m.Status == SiloStatus.Active && string.Equals(m.Name, node, StringComparison.Ordinal))
                return Task.FromResult(silo);
        }
        throw new ClusterException(AdannsErrorCode.Closed, $"Node \"{node}\" is not an active member of the cluster.", replicaFailure: true);
    }
}
