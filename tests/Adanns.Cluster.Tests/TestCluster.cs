using Adanns.Engine;
using Adanns.Engine.Collections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Orleans.Hosting;
using Orleans.TestingHost;

namespace Adanns.Cluster.Tests;

/// <summary>
/// An Orleans <see cref="InProcessTestCluster"/> of Adanns nodes: each silo has its own data directory under one
/// temporary root and keeps collection metadata in a private real Redis. Silos can be killed and restarted under
/// the same name (so with the same data), and the whole cluster restarted on the same data and Redis.
/// </summary>
public sealed class TestClusterHost : IAsyncDisposable
{
    private readonly List<InProcessSiloHandle> _extra = [];
    private readonly Action<ClusterNodeOptions>? _configure;
    private readonly bool _ownsRoot;

    public TestClusterHost(int silos = 3, Action<ClusterNodeOptions>? configure = null, RedisServer? redis = null, string? root = null, string? serviceId = null)
    {
        _configure = configure;
        Redis = redis ?? new RedisServer();
        OwnsRedis = redis is null;
        _ownsRoot = root is null;
        Root = root ?? Path.Combine(Path.GetTempPath(), $"adanns-cluster-{Guid.NewGuid():N}");
        ServiceId = serviceId ?? $"adanns-test-{Guid.NewGuid():N}";
        var builder = new InProcessTestClusterBuilder((short)silos);
        builder.Options.ServiceId = ServiceId;
        builder.Options.ClusterId = ServiceId;
        string rootDir = Root;
        string endpoint = Redis.Endpoint;
        builder.ConfigureSiloHost((options, host) =>
            host.Logging.AddProvider(new FileLoggerProvider(Path.Combine(Path.GetTempPath(), "adanns-cluster-logs", ServiceId + ".log"), options.SiloName)));
        builder.ConfigureSilo((options, silo) =>
        {
            silo.AddAdannsCluster(o =>
            {
                o.DataDirectory = Path.Combine(rootDir, options.SiloName);
                o.Database = new DatabaseOptions { BackgroundMaintenance = true, CheckpointOnDispose = true };
                o.MaintenanceInterval = TimeSpan.FromMilliseconds(300);
                o.RouteCacheTtl = TimeSpan.FromMilliseconds(200);
                configure?.Invoke(o);
            });
            silo.AddRedisGrainStorage(ClusterSetup.StorageName, o => o.ConfigurationOptions = StackExchange.Redis.ConfigurationOptions.Parse(endpoint));
        });
        Cluster = builder.Build();
    }

    public InProcessTestCluster Cluster { get; }
    public RedisServer Redis { get; }
    public bool OwnsRedis { get; }
    public string Root { get; }
    public string ServiceId { get; }

    public Task StartAsync() => Cluster.DeployAsync();

    /// <summary>Silos now running (the cluster's own plus restarted ones).</summary>
    public IReadOnlyList<InProcessSiloHandle> Silos => Cluster.Silos.Concat(_extra.Where(s => s.IsActive)).ToArray();

    /// <summary>The gateway of a running silo.</summary>
    public ClusterGateway Gateway(InProcessSiloHandle silo) => silo.ServiceProvider.GetRequiredService<ClusterGateway>();

    public IGrainFactory Grains(InProcessSiloHandle silo) => silo.ServiceProvider.GetRequiredService<IGrainFactory>();

    /// <summary>Kills a silo (no graceful shutdown of the cluster membership; its host is torn down).</summary>
    public async Task KillAsync(InProcessSiloHandle silo)
    {
        if (_extra.Remove(silo))
        {
            await silo.StopSiloAsync(stopGracefully: false);
            await silo.DisposeAsync();
        }
        else
        {
            await Cluster.KillSiloAsync(silo);
        }
    }

    /// <summary>Starts a silo again with the name (and data directory) of instance <paramref name="instance"/>.</summary>
    public async Task<InProcessSiloHandle> RestartAsync(int instance)
    {
        var handle = await Cluster.StartSiloAsync(instance, Cluster.Options);
        _extra.Add(handle);
        return handle;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var s in _extra.Where(s => s.IsActive).ToArray())
        {
            try { await s.StopSiloAsync(stopGracefully: true); } catch (Exception) { }
            await s.DisposeAsync();
        }
        _extra.Clear();
        await Cluster.StopAllSilosAsync();
        await Cluster.DisposeAsync();
        if (OwnsRedis) Redis.Dispose();
        if (_ownsRoot)
        {
            try { Directory.Delete(Root, recursive: true); } catch (IOException) { }
        }
    }

    /// <summary>Deletes the data root (for a host that shares it and outlived the others).</summary>
    public static void DeleteRoot(string root)
    {
        try { Directory.Delete(root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

/// <summary>Random data with fixed seeds.</summary>
public static class Data
{
    public static float[][] Vectors(int n, int d, int seed)
    {
        var rng = new Random(seed);
        var v = new float[n][];
        for (int i = 0; i < n; i++)
        {
            v[i] = new float[d];
            for (int j = 0; j < d; j++) v[i][j] = (float)(rng.NextDouble() * 2 - 1);
        }
        return v;
    }

    /// <summary>Clustered vectors (so an IVF index has structure to find).</summary>
    public static float[][] Clustered(int n, int d, int clusters, int seed)
    {
        var rng = new Random(seed);
        var centers = Vectors(clusters, d, seed + 1);
        var v = new float[n][];
        for (int i = 0; i < n; i++)
        {
            var c = centers[rng.Next(clusters)];
            v[i] = new float[d];
            for (int j = 0; j < d; j++) v[i][j] = c[j] + (float)(rng.NextDouble() - 0.5) * 0.6f;
        }
        return v;
    }

    public static VectorRecord[] Records(float[][] vectors, int first = 0) =>
        vectors.Select((v, i) => new VectorRecord((ulong)(first + i), v, new Dictionary<string, Adanns.Engine.Storage.PayloadValue>
        {
            ["parity"] = (first + i) % 2 == 0 ? "even" : "odd",
            ["bucket"] = (first + i) % 10,
        })).ToArray();
}
