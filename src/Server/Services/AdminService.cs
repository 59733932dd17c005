using System.Diagnostics;
using System.Reflection;
using System.Runtime.InteropServices;
using Grpc.Core;
using Microsoft.Extensions.Options;
using V1 = Adanns.Protocol.V1;

namespace Adanns.Server.Services;

/// <summary>adanns.v1.Admin.</summary>
public sealed class AdminService(DatabaseHost host, IOptions<AdannsServerOptions> options, ILogger<AdminService> logger) : V1.Admin.AdminBase
{
    /// <summary>Interval between progress messages while an index trains.</summary>
    internal static TimeSpan ProgressInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <inheritdoc/>
    public override async Task BuildIndex(V1.BuildIndexRequest request, IServerStreamWriter<V1.BuildIndexProgress> responseStream, ServerCallContext context)
    {
        var c = host.Database.GetCollection(request.Collection);
        var sw = Stopwatch.StartNew();
        V1.BuildIndexProgress Progress(V1.BuildIndexProgress.Types.Phase phase)
        {
            var s = c.GetStats();
            return new V1.BuildIndexProgress
            {
                Phase = phase, ElapsedSeconds = sw.Elapsed.TotalSeconds, Count = (ulong)s.Count, IndexTrained = s.IndexTrained, Retrains = (uint)s.Retrains,
            };
        }

        logger.LogInformation("BuildIndex {Collection} requested", c.Name);
        await responseStream.WriteAsync(Progress(V1.BuildIndexProgress.Types.Phase.Started), context.CancellationToken).ConfigureAwait(false);
        var training = c.WaitForIndexAsync(context.CancellationToken);
        while (await Task.WhenAny(training, Task.Delay(ProgressInterval, context.CancellationToken)).ConfigureAwait(false) != training)
        {
            context.CancellationToken.ThrowIfCancellationRequested();
            await responseStream.WriteAsync(Progress(V1.BuildIndexProgress.Types.Phase.Training), context.CancellationToken).ConfigureAwait(false);
        }
        bool enough = await training.ConfigureAwait(false);
        await responseStream.WriteAsync(Progress(enough ? V1.BuildIndexProgress.Types.Phase.Done : V1.BuildIndexProgress.Types.Phase.TooFewVectors),
            context.CancellationToken).ConfigureAwait(false);
        logger.LogInformation("BuildIndex {Collection}: {Outcome} after {Seconds:F1} s", c.Name, enough ? "done" : "too few vectors", sw.Elapsed.TotalSeconds);
    }

    /// <inheritdoc/>
    public override async Task<V1.SnapshotResponse> Snapshot(V1.SnapshotRequest request, ServerCallContext context)
    {
        var c = host.Database.GetCollection(request.Collection);
        await c.CheckpointAsync().WaitAsync(context.CancellationToken).ConfigureAwait(false);
        return new V1.SnapshotResponse { CheckpointLsn = (ulong)c.GetStats().CheckpointLsn, Directory = c.DirectoryPath };
    }

    /// <inheritdoc/>
    public override Task<V1.ServerInfoResponse> ServerInfo(V1.ServerInfoRequest request, ServerCallContext context)
    {
        var info = BaseInfo(options.Value);
        info.Cluster = new V1.ClusterInfo { Enabled = false };
        return Task.FromResult(info);
    }

    /// <summary>What every node reports about itself (version, SIMD, limits); cluster mode adds membership.</summary>
    internal static V1.ServerInfoResponse BaseInfo(AdannsServerOptions o) =>
        new()
        {
            Version = Version,
            Simd = Kernels.SimdInfo.Describe(),
            Device = o.SearchDeviceName(),
            ProcessorCount = (uint)Environment.ProcessorCount,
            Framework = RuntimeInformation.FrameworkDescription,
            MaxTopK = (uint)o.Limits.MaxTopK,
            MaxBatch = (uint)o.Limits.MaxBatch,
            MaxMessageBytes = (uint)o.Limits.MaxMessageBytes,
            AuthEnabled = o.Auth.Enabled,
        };

    /// <summary>The server's informational version.</summary>
    public static string Version { get; } =
        typeof(AdminService).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0";
}
