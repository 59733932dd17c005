using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Adanns.Engine.Data;
using Grpc.Core;
using Grpc.Net.Client;
using V1 = Adanns.Protocol.V1;

namespace Adanns.Bench;

/// <summary>
/// <c>cluster</c>: measurements of cluster mode with real processes on loopback (a private redis-server and
/// Adanns.Server processes): search QPS and p99 through one gateway vs a single node at equal data, failover time
/// and zero acknowledged-write loss over kill -9 cycles under concurrent writers, shard transfer throughput (with
/// writers running during the transfer), and write throughput of one shard with 1 vs 8 writers (pipelined batches).
/// </summary>
internal static partial class ClusterCommand
{
    public const string Help = """
        Usage: dotnet bench/bin/Release/net10.0/Adanns.Bench.dll cluster [--points 20000] [--dim 128] [--clients 8]
                   [--seconds 10] [--cycles 20] [--writers 4] [--transfer-points 50000] [--only qps|chaos|transfer|writes]
        Needs redis-server (Debian package) and a Release build of src/Server. Starts and stops everything itself.
        """;

    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static async Task<int> RunAsync(string[] args)
    {
        int points = 20_000, dim = 128, clients = 8, seconds = 10, cycles = 20, writers = 4, transferPoints = 50_000;
        string? only = null;
        for (int i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"Option {args[i]} needs a value.");
            int Int() => int.Parse(Value(), Inv);
            switch (args[i])
            {
                case "--points": points = Int(); break;
                case "--dim": dim = Int(); break;
                case "--clients": clients = Int(); break;
                case "--seconds": seconds = Int(); break;
                case "--cycles": cycles = Int(); break;
                case "--writers": writers = Int(); break;
                case "--transfer-points": transferPoints = Int(); break;
                case "--only": only = Value(); break;
                case "--help" or "-h": Console.WriteLine(Help); return 0;
                default: throw new ArgumentException($"Unknown option {args[i]}.\n{Help}");
            }
        }
        string dll = ServerDll();
        using var redis = new Redis();
        Console.WriteLine($"== cluster bench: redis {redis.Endpoint}, server {dll}, load {LoadAverage()}");
        if (only is null or "qps") await QpsAsync(dll, redis, points, dim, clients, seconds).ConfigureAwait(false);
        if (only is null or "chaos") await ChaosAsync(dll, redis, cycles, writers).ConfigureAwait(false);
        if (only is null or "transfer") await TransferAsync(dll, redis, transferPoints, dim).ConfigureAwait(false);
        if (only is null or "writes") await WritesAsync(dll, redis, dim, seconds).ConfigureAwait(false);
        return 0;
    }

    // ------------------------------------------------------------ scenarios

    /// <summary>Same data, same index spec: a single node vs a 3-node cluster (3 shards, rf 1) through one gateway.</summary>
    private static async Task QpsAsync(string dll, Redis redis, int points, int dim, int clients, int seconds)
    {
        Console.WriteLine($"== 1. search QPS/p99: single node vs 3-node cluster (3 shards, rf 1) through one gateway; {points} x {dim}, {clients} clients, {seconds} s");
        using var single = Node.Start(dll, redis, null, "single");
        using var cluster = new Cluster(dll, redis, 3, reReplicateAfterSeconds: 600);
        await single.WaitReadyAsync(clusterMembers: 0).ConfigureAwait(false);
        await cluster.WaitReadyAsync().ConfigureAwait(false);
        using var data = SyntheticMatryoshka.Generate(new SyntheticMatryoshka.Options(Count: points, Dimension: dim, Queries: 0));
        const string spec = "IVF64@64,Scan64,Rerank128";
        foreach (var (node, shards) in new[] { (single, 0u), (cluster.Nodes[0], 3u) })
        {
            var req = new V1.CreateCollectionRequest { Name = "qps", Dimension = (uint)dim, Metric = V1.Metric.Cosine, IndexSpec = spec, TrainThreshold = 2048 };
            if (shards > 0) { req.Shards = shards; req.ReplicationFactor = 1; }
            await node.Collections.CreateAsync(req).ConfigureAwait(false);
            for (int s = 0; s < points; s += 1000)
            {
                var up = new V1.UpsertRequest { Collection = "qps", Wait = true };
                for (int i = s; i < Math.Min(points, s + 1000); i++)
                    up.Points.Add(new V1.Point { Id = new V1.PointId { Num = (ulong)i }, Vector = { data.Base.Row(i).ToArray() } });
                await node.Points.UpsertAsync(up).ConfigureAwait(false);
            }
            using var build = node.Admin.BuildIndex(new V1.BuildIndexRequest { Collection = "qps" });
            await foreach (var _ in build.ResponseStream.ReadAllAsync().ConfigureAwait(false)) { }
        }
        foreach (var (label, node) in new[] { ("single node", single), ("cluster gateway", cluster.Nodes[0]) })
        {
            Console.WriteLine($"-- {label}");
            await LoadCommand.RunAsync(["--address", node.Address, "--collection", "qps", "--clients", clients.ToString(Inv), "--seconds", seconds.ToString(Inv), "--warmup", "2"])
                .ConfigureAwait(false);
        }
    }

    /// <summary>
    /// kill -9 of a random node, cycle after cycle, while writers upsert unique ids (retrying on any error, on any
    /// live node) with rf 2; after each kill: time to the first successful query and write; the node is restarted
    /// and the next cycle waits until every replica is active again. At the end every acknowledged id is read back.
    /// </summary>
    private static async Task ChaosAsync(string dll, Redis redis, int cycles, int writerCount)
    {
        Console.WriteLine($"== 2. {cycles} kill -9 cycles of a random node, {writerCount} concurrent writers, 3 shards, rf 2, write_consistency all live");
        using var cluster = new Cluster(dll, redis, 3, reReplicateAfterSeconds: 600);
        await cluster.WaitReadyAsync().ConfigureAwait(false);
        const int d = 32;
        await cluster.Nodes[0].Collections.CreateAsync(new V1.CreateCollectionRequest
        {
            Name = "chaos", Dimension = d, Metric = V1.Metric.L2, IndexSpec = "IVF16", TrainThreshold = 1_000_000, Shards = 3, ReplicationFactor = 2,
        }).ConfigureAwait(false);
        var acked = new System.Collections.Concurrent.ConcurrentBag<ulong>();
        long writeErrors = 0;
        using var stop = new CancellationTokenSource();
        var rng = new Random(17);
        var writers = Enumerable.Range(0, writerCount).Select(w => Task.Run(async () =>
        {
            var r = new Random(w);
            ulong next = (ulong)w << 40;
            int node = w;
            while (!stop.IsCancellationRequested)
            {
                var up = new V1.UpsertRequest { Collection = "chaos", Wait = true };
                var ids = new List<ulong>();
                for (int i = 0; i < 10; i++)
                {
                    ids.Add(next);
                    up.Points.Add(new V1.Point { Id = new V1.PointId { Num = next++ }, Vector = { Enumerable.Range(0, d).Select(_ => (float)r.NextDouble()) } });
                }
                while (!stop.IsCancellationRequested)
                {
                    var target = cluster.Live[node++ % cluster.Live.Count];
                    try
                    {
                        await target.Points.UpsertAsync(up, deadline: DateTime.UtcNow.AddSeconds(20)).ConfigureAwait(false);
                        foreach (var id in ids) acked.Add(id);
                        break;
                    }
                    catch (RpcException)
                    {
                        Interlocked.Increment(ref writeErrors);
                        await Task.Delay(50).ConfigureAwait(false);
                    }
                }
            }
        })).ToArray();

        var queryFail = new List<double>();
        var writeFail = new List<double>();
        var rejoin = new List<double>();
        long queryErrors = 0;
        for (int cycle = 0; cycle < cycles; cycle++)
        {
            await Task.Delay(1000).ConfigureAwait(false);
            int victim = rng.Next(3);
            var asker = cluster.Live.First(n => n.Index != victim);
            cluster.Kill(victim);
            long killed = Stopwatch.GetTimestamp();
            // First query answered after the kill (a query that started after it).
            double tq;
            while (true)
            {
                try
                {
                    await asker.Search.SearchAsync(new V1.SearchRequest { Collection = "chaos", Vector = { new float[d] }, TopK = 5 }, deadline: DateTime.UtcNow.AddSeconds(20))
                        .ConfigureAwait(false);
                    tq = Stopwatch.GetElapsedTime(killed).TotalSeconds;
                    break;
                }
                catch (RpcException)
                {
                    queryErrors++;
                }
            }
            // First write acknowledged after the kill: a probe upsert started after it, retried until acknowledged.
            double tw;
            ulong probe = (1ul << 50) + (ulong)cycle;
            var probeWrite = new V1.UpsertRequest { Collection = "chaos", Wait = true, Points = { new V1.Point { Id = new V1.PointId { Num = probe }, Vector = { new float[d] } } } };
            while (true)
            {
                try
                {
                    await asker.Points.UpsertAsync(probeWrite, deadline: DateTime.UtcNow.AddSeconds(20)).ConfigureAwait(false);
                    tw = Stopwatch.GetElapsedTime(killed).TotalSeconds;
                    acked.Add(probe);
                    break;
                }
                catch (RpcException)
                {
                    Interlocked.Increment(ref writeErrors);
                }
            }
            queryFail.Add(tq);
            writeFail.Add(tw);
            await Task.Delay(1500).ConfigureAwait(false);
            var restart = Stopwatch.StartNew();
            cluster.Restart(victim);
            await cluster.WaitAllReplicasActiveAsync("chaos", TimeSpan.FromSeconds(120)).ConfigureAwait(false);
            rejoin.Add(restart.Elapsed.TotalSeconds);
            Console.WriteLine(string.Create(Inv, $"cycle {cycle + 1}: killed n{victim}; first query {tq:F3} s, first write ack {tw:F3} s after the kill; restarted and all replicas active after {restart.Elapsed.TotalSeconds:F1} s; acked so far {acked.Count}"));
        }
        await stop.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(writers).ConfigureAwait(false);
        // Read every acknowledged id back.
        var all = acked.Distinct().ToArray();
        int found = 0;
        for (int s = 0; s < all.Length; s += 2000)
        {
            var get = new V1.GetPointsRequest { Collection = "chaos" };
            foreach (var id in all.AsSpan(s, Math.Min(2000, all.Length - s))) get.Ids.Add(new V1.PointId { Num = id });
            found += (await cluster.Live[0].Points.GetAsync(get, deadline: DateTime.UtcNow.AddSeconds(60)).ConfigureAwait(false)).Points.Count;
        }
        Console.WriteLine(string.Create(Inv, $"chaos: {cycles} cycles; acknowledged {all.Length} points, read back {found}: lost {all.Length - found}; write retries {writeErrors}, query errors {queryErrors}"));
        Console.WriteLine(string.Create(Inv, $"failover (kill -9 -> first success): query median {Median(queryFail):F3} s, max {queryFail.Max():F3} s; write median {Median(writeFail):F3} s, max {writeFail.Max():F3} s; restart -> all replicas active median {Median(rejoin):F1} s"));
    }

    /// <summary>
    /// A node holding one of a shard's two replicas is killed for good; re-replication copies the shard to the third
    /// node while two writers keep upserting 100-record batches (the transfer must not stop them).
    /// </summary>
    private static async Task TransferAsync(string dll, Redis redis, int points, int dim)
    {
        Console.WriteLine($"== 3. shard transfer: 1 shard, rf 2, {points} x {dim}; a replica's node killed, re-replication after 2 s, 2 writers meanwhile");
        using var cluster = new Cluster(dll, redis, 3, reReplicateAfterSeconds: 2);
        await cluster.WaitReadyAsync().ConfigureAwait(false);
        using var data = SyntheticMatryoshka.Generate(new SyntheticMatryoshka.Options(Count: points, Dimension: dim, Queries: 0));
        var info = await cluster.Nodes[0].Collections.CreateAsync(new V1.CreateCollectionRequest
        {
            Name = "tr", Dimension = (uint)dim, Metric = V1.Metric.Cosine, IndexSpec = "IVF64", Shards = 1, ReplicationFactor = 2,
        }).ConfigureAwait(false);
        for (int s = 0; s < points; s += 1000)
        {
            var up = new V1.UpsertRequest { Collection = "tr", Wait = true };
            for (int i = s; i < Math.Min(points, s + 1000); i++)
                up.Points.Add(new V1.Point { Id = new V1.PointId { Num = (ulong)i }, Vector = { data.Base.Row(i).ToArray() } });
            await cluster.Nodes[0].Points.UpsertAsync(up).ConfigureAwait(false);
        }
        var holders = info.Placement[0].Replicas.Select(r => r.Node).ToHashSet();
        var victim = cluster.Nodes.First(n => holders.Contains(n.NodeName) && n.Index != 0);
        // Two writers of new ids (100 per batch), through the surviving gateway, until the end.
        long written = 0, writeErrors = 0;
        using var stop = new CancellationTokenSource();
        var writers = Enumerable.Range(0, 2).Select(w => Task.Run(async () =>
        {
            ulong next = (ulong)(w + 1) << 40;
            while (!stop.IsCancellationRequested)
            {
                var up = new V1.UpsertRequest { Collection = "tr", Wait = true };
                for (int i = 0; i < 100; i++) up.Points.Add(new V1.Point { Id = new V1.PointId { Num = next + (ulong)i }, Vector = { data.Base.Row(i).ToArray() } });
                try
                {
                    await cluster.Nodes[0].Points.UpsertAsync(up, deadline: DateTime.UtcNow.AddSeconds(20)).ConfigureAwait(false);
                    next += 100;
                    Interlocked.Add(ref written, 100);
                }
                catch (RpcException)
                {
                    Interlocked.Increment(ref writeErrors);
                    await Task.Delay(50).ConfigureAwait(false);
                }
            }
        })).ToArray();
        await Task.Delay(500).ConfigureAwait(false);
        cluster.Kill(victim.Index);
        var sw = Stopwatch.StartNew();
        Match? m = null;
        while (sw.Elapsed < TimeSpan.FromMinutes(5) && m is null)
        {
            await Task.Delay(200).ConfigureAwait(false);
            foreach (var n in cluster.Live)
                foreach (var line in n.Log())
                    if (TransferLine().Match(line) is { Success: true } mm) m = mm;
        }
        await stop.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(writers).ConfigureAwait(false);
        if (m is null) throw new TimeoutException("no re-replication within 5 minutes");
        long records = long.Parse(m.Groups[1].Value, Inv);
        double secs = double.Parse(m.Groups[2].Value, Inv);
        Console.WriteLine(string.Create(Inv, $"transfer: {records} vectors ({dim} dims) in {secs:F2} s = {records / secs:F0} vectors/s; rf restored {sw.Elapsed.TotalSeconds:F1} s after the kill (2 s of it the re-replication delay)"));
        Console.WriteLine(string.Create(Inv, $"transfer: {m.Groups[3].Value} write batch(es) of 100 acknowledged while the copy ran; then {m.Groups[4].Value} logged record(s) replayed; writers: {written} points acknowledged, {writeErrors} failed calls retried"));
        var count = await cluster.Nodes[0].Points.CountAsync(new V1.CountRequest { Collection = "tr" }).ConfigureAwait(false);
        Console.WriteLine($"transfer: count after re-replication {count.Count} (expected {points + written})");
    }

    [GeneratedRegex(@"new replica on \S+ \((\d+) records in ([0-9.]+) s, (\d+) write\(s\) acknowledged meanwhile, then (\d+) logged record")]
    private static partial Regex TransferLine();

    /// <summary>
    /// Write throughput of one shard (rf 2, write_consistency all live, wait): 1 writer, then 8 writers of
    /// 100-record batches through one gateway. A shard takes the writers' batches in flight together.
    /// </summary>
    private static async Task WritesAsync(string dll, Redis redis, int dim, int seconds)
    {
        Console.WriteLine($"== 4. write throughput of one shard (rf 2): 1 vs 8 writers of 100 x {dim} batches, {seconds} s each");
        using var cluster = new Cluster(dll, redis, 3, reReplicateAfterSeconds: 600);
        await cluster.WaitReadyAsync().ConfigureAwait(false);
        await cluster.Nodes[0].Collections.CreateAsync(new V1.CreateCollectionRequest
        {
            Name = "wr", Dimension = (uint)dim, Metric = V1.Metric.Cosine, IndexSpec = "IVF64", TrainThreshold = 1_000_000, Shards = 1, ReplicationFactor = 2,
        }).ConfigureAwait(false);
        var vector = Enumerable.Range(0, dim).Select(i => (float)Math.Sin(i)).ToArray();
        ulong nextBase = 0;
        foreach (int writerCount in new[] { 1, 8 })
        {
            var latencies = new System.Collections.Concurrent.ConcurrentBag<double>();
            long errors = 0;
            var until = Stopwatch.StartNew();
            ulong first = nextBase;
            var tasks = Enumerable.Range(0, writerCount).Select(w => Task.Run(async () =>
            {
                ulong next = first + ((ulong)w << 32);
                while (until.Elapsed.TotalSeconds < seconds)
                {
                    var up = new V1.UpsertRequest { Collection = "wr", Wait = true };
                    for (int i = 0; i < 100; i++) up.Points.Add(new V1.Point { Id = new V1.PointId { Num = next++ }, Vector = { vector } });
                    long t = Stopwatch.GetTimestamp();
                    try
                    {
                        await cluster.Nodes[0].Points.UpsertAsync(up, deadline: DateTime.UtcNow.AddSeconds(30)).ConfigureAwait(false);
                        latencies.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
                    }
                    catch (RpcException)
                    {
                        Interlocked.Increment(ref errors);
                    }
                }
            })).ToArray();
            await Task.WhenAll(tasks).ConfigureAwait(false);
            double elapsed = until.Elapsed.TotalSeconds;
            nextBase += 1ul << 40;
            var l = latencies.Order().ToArray();
            double P(double q) => l.Length == 0 ? double.NaN : l[Math.Min(l.Length - 1, (int)(q * l.Length))];
            Console.WriteLine(string.Create(Inv, $"writes: {writerCount} writer(s): {l.Length * 100 / elapsed:F0} points/s ({l.Length / elapsed:F1} batches/s), batch latency p50 {P(0.5):F1} ms, p99 {P(0.99):F1} ms, {errors} errors"));
        }
        var shard = await cluster.Nodes[0].Collections.GetAsync(new V1.GetCollectionRequest { Name = "wr" }).ConfigureAwait(false);
        Console.WriteLine($"writes: count {shard.Count}");
    }

    private static double Median(List<double> v)
    {
        var s = v.Order().ToArray();
        return s.Length == 0 ? double.NaN : s[s.Length / 2];
    }

    internal static string LoadAverage() => File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";

    private static string ServerDll()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        string tfm = dir.Name, config = dir.Parent!.Name;
        var root = dir;
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "AdannsDotNet.sln"))) root = root.Parent;
        string dll = Path.Combine(root?.FullName ?? ".", "src", "Server", "bin", config, tfm, "Adanns.Server.dll");
        return File.Exists(dll) ? dll : throw new FileNotFoundException($"{dll} is missing: dotnet build AdannsDotNet.sln -c {config}");
    }

    internal static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    // ------------------------------------------------------------ processes

    private sealed class Redis : IDisposable
    {
        private readonly Process _p;
        private readonly string _dir = Path.Combine(Path.GetTempPath(), $"adanns-bench-redis-{Guid.NewGuid():N}");

        public Redis()
        {
            int port = FreePort();
            Directory.CreateDirectory(_dir);
            var psi = new ProcessStartInfo("redis-server") { UseShellExecute = false, RedirectStandardOutput = true };
            foreach (var a in new[] { "--port", port.ToString(Inv), "--bind", "127.0.0.1", "--dir", _dir, "--save", "", "--appendonly", "no" }) psi.ArgumentList.Add(a);
            _p = Process.Start(psi)!;
            _p.OutputDataReceived += (_, _) => { };
            _p.BeginOutputReadLine();
            Endpoint = $"127.0.0.1:{port}";
            Thread.Sleep(300);
        }

        public string Endpoint { get; }

        public void Dispose()
        {
            if (!_p.HasExited) _p.Kill();
            _p.WaitForExit(5000);
            _p.Dispose();
            try { Directory.Delete(_dir, true); } catch (IOException) { }
        }
    }

    private sealed class Node : IDisposable
    {
        private readonly List<string> _log = [];
        private Process _process = null!;
        private string[] _args = [];
        private GrpcChannel _channel = null!;

        public int Index { get; private init; }
        public string NodeName { get; private init; } = "";
        public string Address { get; private set; } = "";
        public string DataDir { get; private init; } = "";
        public bool Alive => !_process.HasExited;
        public V1.Collections.CollectionsClient Collections => new(_channel);
        public V1.Points.PointsClient Points => new(_channel);
        public V1.Search.SearchClient Search => new(_channel);
        public V1.Admin.AdminClient Admin => new(_channel);

        public static Node Start(string dll, Redis redis, string? clusterId, string label, int index = 0, int reReplicateAfterSeconds = 600)
        {
            int grpc = FreePort(), silo = FreePort(), gateway = FreePort();
            string dir = Path.Combine(Path.GetTempPath(), $"adanns-bench-{label}-{Guid.NewGuid():N}");
            var args = new List<string>
            {
                dll, $"--Adanns:DataDirectory={dir}", $"--Adanns:GrpcPort={grpc}", "--Adanns:HttpPort=0", "--Adanns:Demo:Enabled=false",
                "--Logging:Console:FormatterName=simple", "--Logging:LogLevel:Default=Warning", "--Logging:LogLevel:Adanns=Information",
            };
            if (clusterId is not null)
                args.AddRange([
                    "--Adanns:Cluster:Enabled=true", $"--Adanns:Cluster:Redis={redis.Endpoint}", $"--Adanns:Cluster:ClusterId={clusterId}",
                    $"--Adanns:Cluster:SiloPort={silo}", $"--Adanns:Cluster:GatewayPort={gateway}", $"--Adanns:Cluster:NodeName={label}",
                    $"--Adanns:Cluster:ReReplicateAfterSeconds={reReplicateAfterSeconds}",
                ]);
            var n = new Node { Index = index, NodeName = label, DataDir = dir };
            n._args = args.ToArray();
            n.Address = $"http://127.0.0.1:{grpc}";
            n.Launch();
            return n;
        }

        public void Launch()
        {
            var psi = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in _args) psi.ArgumentList.Add(a);
            _process = Process.Start(psi)!;
            _process.OutputDataReceived += (_, e) => { if (e.Data is { } l) lock (_log) _log.Add(l); };
            _process.ErrorDataReceived += (_, e) => { if (e.Data is { } l) lock (_log) _log.Add(l); };
            _process.BeginOutputReadLine();
            _process.BeginErrorReadLine();
            _channel?.Dispose();
            _channel = GrpcChannel.ForAddress(Address);
        }

        public string[] Log()
        {
            lock (_log) return _log.ToArray();
        }

        public void Kill()
        {
            _process.Kill(); // SIGKILL
            _process.WaitForExit();
        }

        public async Task WaitReadyAsync(int clusterMembers)
        {
            var sw = Stopwatch.StartNew();
            while (true)
            {
                try
                {
                    var info = await Admin.ServerInfoAsync(new V1.ServerInfoRequest(), deadline: DateTime.UtcNow.AddSeconds(5)).ConfigureAwait(false);
                    if (info.Cluster.Members.Count(m => m.Status == "Active") >= clusterMembers)
                    {
                        if (clusterMembers == 0) await Collections.ListAsync(new V1.ListCollectionsRequest()).ConfigureAwait(false);
                        return;
                    }
                }
                catch (RpcException) when (sw.Elapsed < TimeSpan.FromSeconds(120)) { }
                await Task.Delay(250).ConfigureAwait(false);
            }
        }

        public void Dispose()
        {
            try { if (!_process.HasExited) { _process.Kill(); _process.WaitForExit(10_000); } } catch (InvalidOperationException) { }
            _process.Dispose();
            _channel.Dispose();
            try { Directory.Delete(DataDir, true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    private sealed class Cluster : IDisposable
    {
        public Cluster(string dll, Redis redis, int nodes, int reReplicateAfterSeconds)
        {
            string id = $"bench-{Guid.NewGuid():N}";
            Nodes = Enumerable.Range(0, nodes).Select(i => Node.Start(dll, redis, id, $"n{i}", i, reReplicateAfterSeconds)).ToArray();
        }

        public Node[] Nodes { get; }

        public IReadOnlyList<Node> Live => Nodes.Where(n => n.Alive).ToArray();

        public void Kill(int i) => Nodes[i].Kill();

        public void Restart(int i) => Nodes[i].Launch();

        public async Task WaitReadyAsync()
        {
            foreach (var n in Nodes) await n.WaitReadyAsync(Nodes.Length).ConfigureAwait(false);
        }

        public async Task WaitAllReplicasActiveAsync(string collection, TimeSpan timeout)
        {
            var sw = Stopwatch.StartNew();
            while (sw.Elapsed < timeout)
            {
                try
                {
                    var info = await Live[0].Collections.GetAsync(new V1.GetCollectionRequest { Name = collection }, deadline: DateTime.UtcNow.AddSeconds(10)).ConfigureAwait(false);
                    if (info.Placement.All(s => s.Replicas.Count(r => r.State == V1.ReplicaState.Active) == info.ReplicationFactor)) return;
                }
                catch (RpcException) { }
                await Task.Delay(200).ConfigureAwait(false);
            }
            throw new TimeoutException($"replicas of {collection} not all active within {timeout}");
        }

        public void Dispose()
        {
            foreach (var n in Nodes) n.Dispose();
        }
    }
}
