using System.Net;
using System.Net.Sockets;
using Adanns.Cluster;
using Adanns.Server.Services;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Orleans.Configuration;
using Orleans.Hosting;
using Orleans.Runtime;

namespace Adanns.Server.Cluster;

/// <summary>
/// Cluster mode (<c>Adanns:Cluster:Enabled</c>): the server process is also an Orleans silo (membership and metadata
/// in Redis, its shard replicas in <c>Adanns:DataDirectory</c>), and its gRPC services answer through the cluster
/// gateway, so every node serves the whole API.
/// </summary>
internal static class ClusterHosting
{
    /// <summary>Hosts the silo and registers the cluster services (instead of the single-node database).</summary>
    public static void AddCluster(WebApplicationBuilder builder, AdannsServerOptions options, IPAddress bind)
    {
        var c = options.Cluster;
        if (string.IsNullOrWhiteSpace(c.Redis))
            throw new InvalidOperationException("Adanns:Cluster:Redis must name the Redis server (host:port) when Adanns:Cluster:Enabled is true.");
        if (string.IsNullOrWhiteSpace(c.ClusterId))
            throw new InvalidOperationException("Adanns:Cluster:ClusterId must not be empty.");
        if (c.SiloPort is < 1 or > 65535 || c.GatewayPort is < 1 or > 65535)
            throw new InvalidOperationException($"Adanns:Cluster:SiloPort and GatewayPort must be in [1, 65535] (got {c.SiloPort}, {c.GatewayPort}).");
        var advertised = AdvertisedAddress(c.AdvertisedHost, bind);
        string node = string.IsNullOrWhiteSpace(c.NodeName) ? $"{advertised}:{c.SiloPort}" : c.NodeName;
        builder.UseOrleans(silo =>
        {
            silo.Configure<ClusterOptions>(o =>
            {
                o.ClusterId = c.ClusterId;
                o.ServiceId = c.ClusterId; // metadata keys in Redis are per service: one cluster id, one metadata set
            });
            silo.Configure<SiloOptions>(o => o.SiloName = node);
            silo.Configure<EndpointOptions>(o =>
            {
                o.AdvertisedIPAddress = advertised;
                o.SiloPort = c.SiloPort;
                o.GatewayPort = c.GatewayPort;
                o.SiloListeningEndpoint = new IPEndPoint(bind, c.SiloPort);
                o.GatewayListeningEndpoint = new IPEndPoint(bind, c.GatewayPort);
            });
            silo.UseAdannsRedis(c.Redis);
            silo.AddAdannsCluster(o =>
            {
                o.DataDirectory = options.DataDirectory;
                o.Database = new Engine.Collections.DatabaseOptions { ProfileIndexes = options.ProfileIndexes };
                o.ReReplicateAfter = TimeSpan.FromSeconds(c.ReReplicateAfterSeconds);
            });
        });
        builder.Services.AddSingleton<ClusterCollectionStats>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<ClusterCollectionStats>());
        builder.Services.AddHostedService<ClusterDemo>();
        builder.Services.AddSingleton<ClusterHealth>();
        builder.Services.AddHealthChecks().AddCheck<ClusterHealth>("cluster");
    }

    /// <summary>Maps the gRPC services that answer through the cluster.</summary>
    public static void MapCluster(WebApplication app)
    {
        app.MapGrpcService<ClusterCollectionsService>();
        app.MapGrpcService<ClusterPointsService>();
        app.MapGrpcService<ClusterSearchService>();
        app.MapGrpcService<ClusterAdminService>();
    }

    private static IPAddress AdvertisedAddress(string? configured, IPAddress bind)
    {
        if (!string.IsNullOrWhiteSpace(configured))
        {
            if (IPAddress.TryParse(configured, out var ip)) return ip;
            return Dns.GetHostAddresses(configured).FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork)
                ?? throw new InvalidOperationException($"Adanns:Cluster:AdvertisedHost \"{configured}\" does not resolve to an IPv4 address.");
        }
        if (!bind.Equals(IPAddress.Any)) return bind;
        // Listening on every interface: advertise this machine's own address (a container's, under compose).
        return Dns.GetHostAddresses(Dns.GetHostName()).FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork && !IPAddress.IsLoopback(a))
            ?? IPAddress.Loopback;
    }
}

/// <summary>Healthy while this node is an active member of the cluster.</summary>
internal sealed class ClusterHealth(IClusterMembershipService membership, ILocalSiloDetails local) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var status = membership.CurrentSnapshot.GetSiloStatus(local.SiloAddress);
        int active = membership.CurrentSnapshot.Members.Values.Count(m => m.Status == SiloStatus.Active);
        return Task.FromResult(status == SiloStatus.Active
            ? HealthCheckResult.Healthy($"node {local.Name} active; {active} active node(s)")
            : HealthCheckResult.Unhealthy($"node {local.Name} is {status}"));
    }
}
