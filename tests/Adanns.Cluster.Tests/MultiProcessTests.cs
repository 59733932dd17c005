using System.Diagnostics;
using Grpc.Core;
using Grpc.Net.Client;
using Xunit.Abstractions;
using V1 = Adanns.Protocol.V1;

namespace Adanns.Cluster.Tests;

/// <summary>
/// Three real server processes (Adanns.Server in cluster mode) on loopback with a real Redis; one is killed with
/// SIGKILL and the other two keep answering every query and take writes.
/// </summary>
public sealed class MultiProcessTests(ITestOutputHelper output)
{
    private sealed class Node : IDisposable
    {
        public required Process Process { get; init; }
        public required int GrpcPort { get; init; }
        public required int HttpPort { get; init; }
        public required GrpcChannel Channel { get; init; }
        public V1.Collections.CollectionsClient Collections => new(Channel);
        public V1.Points.PointsClient Points => new(Channel);
        public V1.Search.SearchClient Search => new(Channel);
        public V1.Admin.AdminClient Admin => new(Channel);

        public void Dispose()
        {
            Channel.Dispose();
            try
            {
                if (!Process.HasExited)
                {
                    Process.Kill(entireProcessTree: true);
                    Process.WaitForExit(10_000);
                }
            }
            catch (InvalidOperationException) { }
            Process.Dispose();
        }
    }

    /// <summary>The server built beside this test assembly (same configuration: bin/Release/net10.0 → src/Server/bin/Release/net10.0).</summary>
    internal static string ServerDll()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        string tfm = dir.Name, config = dir.Parent!.Name;
        var root = dir;
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "AdannsDotNet.sln"))) root = root.Parent;
        Assert.NotNull(root);
        string dll = Path.Combine(root!.FullName, "src", "Server", "bin", config, tfm, "Adanns.Server.dll");
        Assert.True(File.Exists(dll), $"{dll} is missing: build the solution first.");
        return dll;
    }

    private static Node Start(string dll, string dataDir, RedisServer redis, string clusterId, int siloPort, int gatewayPort, List<string> log, string label)
    {
        int grpc = RedisServer.FreePort(), http = RedisServer.FreePort();
        var psi = new ProcessStartInfo("dotnet")
        {
            ArgumentList =
            {
                dll,
                $"--Adanns:DataDirectory={dataDir}", "--Adanns:Host=127.0.0.1", $"--Adanns:GrpcPort={grpc}", $"--Adanns:HttpPort={http}",
                // The demo collection, small: the first node to find the cluster empty creates it once two nodes are live.
                "--Adanns:Demo:Enabled=true", $"--Adanns:Demo:Count={DemoCount}", "--Adanns:Demo:Dimension=16", "--Adanns:Demo:IndexSpec=IVF8",
                "--Adanns:Demo:Shards=2", "--Adanns:Demo:ReplicationFactor=2", "--Adanns:ProfileIndexes=false",
                "--Adanns:Cluster:Enabled=true", $"--Adanns:Cluster:Redis={redis.Endpoint}", $"--Adanns:Cluster:ClusterId={clusterId}",
                $"--Adanns:Cluster:SiloPort={siloPort}", $"--Adanns:Cluster:GatewayPort={gatewayPort}",
                "--Logging:Console:FormatterName=simple", "--Logging:LogLevel:Default=Warning", "--Logging:LogLevel:Adanns=Information",
            },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        var p = Process.Start(psi)!;
        p.OutputDataReceived += (_, e) => { if (e.Data is { } d) lock (log) log.Add($"{label}: {d}"); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is { } d) lock (log) log.Add($"{label}! {d}"); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return new Node { Process = p, GrpcPort = grpc, HttpPort = http, Channel = GrpcChannel.ForAddress($"http://127.0.0.1:{grpc}") };
    }

    private static async Task<T> Retry<T>(Func<Task<T>> call, TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                return await call();
            }
            catch (RpcException e) when (e.StatusCode is StatusCode.Unavailable or StatusCode.Internal or StatusCode.DeadlineExceeded && sw.Elapsed < timeout)
            {
                await Task.Delay(200);
            }
        }
    }

    private const int DemoCount = 1500;

    [Fact]
    public async Task Three_server_processes_keep_answering_after_kill_9_of_one()
    {
        string dll = ServerDll();
        using var redis = new RedisServer();
        string root = Path.Combine(Path.GetTempPath(), $"adanns-mp-{Guid.NewGuid():N}");
        string clusterId = $"mp-{Guid.NewGuid():N}";
        var log = new List<string>();
        var nodes = new List<Node>();
        try
        {
            for (int i = 0; i < 3; i++)
                nodes.Add(Start(dll, Path.Combine(root, $"n{i}"), redis, clusterId, RedisServer.FreePort(), RedisServer.FreePort(), log, $"n{i}"));
            // Every node sees three active members.
            foreach (var n in nodes)
            {
                await Retry(async () =>
                {
                    var info = await n.Admin.ServerInfoAsync(new V1.ServerInfoRequest(), deadline: DateTime.UtcNow.AddSeconds(5));
                    if (info.Cluster.Members.Count(m => m.Status == "Active") < 3) throw new RpcException(new Status(StatusCode.Unavailable, "joining"));
                    Assert.True(info.Cluster.Enabled);
                    return info;
                }, TimeSpan.FromSeconds(180));
            }

            // The demo collection exists once (the nodes raced to create it), sharded as configured, fully loaded,
            // and every node's /metrics reports it as a single node's would.
            var demo = await Retry(async () =>
            {
                var info = await nodes[2].Collections.GetAsync(new V1.GetCollectionRequest { Name = "demo" });
                if (info.Count < DemoCount) throw new RpcException(new Status(StatusCode.Unavailable, $"demo at {info.Count}"));
                return info;
            }, TimeSpan.FromSeconds(120));
            Assert.Equal((ulong)DemoCount, demo.Count);
            Assert.Equal(2u, demo.Shards);
            Assert.All(demo.Placement, s => Assert.Equal(2, s.Replicas.Select(r => r.Node).Distinct().Count()));
            Assert.Equal(["demo"], (await nodes[1].Collections.ListAsync(new V1.ListCollectionsRequest())).Names);
            using (var http = new HttpClient())
            {
                foreach (var n in nodes)
                {
                    string metrics = "";
                    var points = new System.Text.RegularExpressions.Regex($"^adanns_collection_points\\{{[^}}]*collection=\"demo\"[^}}]*\\}} {DemoCount}( |$)",
                        System.Text.RegularExpressions.RegexOptions.Multiline);
                    var until = DateTime.UtcNow.AddSeconds(30);
                    while (DateTime.UtcNow < until && !points.IsMatch(metrics))
                    {
                        metrics = await http.GetStringAsync(new Uri($"http://127.0.0.1:{n.HttpPort}/metrics"));
                        await Task.Delay(250);
                    }
                    Assert.Matches(points, metrics);
                    Assert.Matches("(?m)^adanns_collection_index_trained\\{[^}]*collection=\"demo\"", metrics);
                }
            }

            // A sharded collection created through AdannsClient (shards, replication_factor, write_consistency).
            const string name = "mp";
            const int d = 8;
            using var client = new Adanns.Client.AdannsClient($"http://127.0.0.1:{nodes[0].GrpcPort}");
            var created = await client.CreateCollectionAsync(name, d, V1.Metric.L2, "IVF8", trainThreshold: 100_000, shards: 3, replicationFactor: 2, writeConsistency: 0);
            Assert.Equal(3u, created.Shards);
            Assert.Equal(2u, created.ReplicationFactor);
            Assert.All(created.Placement, s => Assert.Equal(2, s.Replicas.Select(r => r.Node).Distinct().Count()));
            var vectors = Data.Vectors(300, d, seed: 5);
            var upsert = new V1.UpsertRequest { Collection = name, Wait = true };
            for (int i = 0; i < vectors.Length; i++)
                upsert.Points.Add(new V1.Point { Id = new V1.PointId { Num = (ulong)i }, Vector = { vectors[i] } });
            Assert.Equal(300u, (await nodes[1].Points.UpsertAsync(upsert)).Upserted);

            // kill -9 the third process; query the other two.
            var killed = Stopwatch.StartNew();
            nodes[2].Process.Kill();
            double firstQuery = -1, firstWrite = -1;
            int answered = 0;
            for (int i = 0; i < 60; i++)
            {
                var gw = nodes[i % 2];
                var r = await gw.Search.SearchAsync(new V1.SearchRequest { Collection = name, Vector = { vectors[i] }, TopK = 3 }, deadline: DateTime.UtcNow.AddSeconds(60));
                Assert.Equal((ulong)i, r.Points[0].Id.Num);
                if (firstQuery < 0) firstQuery = killed.Elapsed.TotalSeconds;
                answered++;
            }
            Assert.Equal(60, answered);
            var write = new V1.UpsertRequest { Collection = name, Wait = true, Points = { new V1.Point { Id = new V1.PointId { Num = 1000 }, Vector = { vectors[0] } } } };
            await Retry(async () => await nodes[0].Points.UpsertAsync(write, deadline: DateTime.UtcNow.AddSeconds(60)), TimeSpan.FromSeconds(60));
            firstWrite = killed.Elapsed.TotalSeconds;
            Assert.Equal(301ul, (await nodes[1].Points.CountAsync(new V1.CountRequest { Collection = name })).Count);
            var info2 = await nodes[0].Admin.ServerInfoAsync(new V1.ServerInfoRequest());
            output.WriteLine($"kill -9: 60 queries answered, first at {firstQuery:F2} s; first write acknowledged at {firstWrite:F2} s; members now: " +
                string.Join(", ", info2.Cluster.Members.Select(m => $"{m.Name}={m.Status}")));
        }
        catch
        {
            lock (log) output.WriteLine(string.Join("\n", log.TakeLast(80)));
            throw;
        }
        finally
        {
            foreach (var n in nodes) n.Dispose();
            TestClusterHost.DeleteRoot(root);
        }
    }
}
