using System.Diagnostics;
using System.Globalization;
using Adanns.Client;
using Adanns.Protocol.V1;
using Grpc.Core;

namespace Adanns.Bench;

/// <summary>
/// <c>load</c>: N concurrent gRPC clients searching for T seconds against a running server (or one hosted in this
/// process with <c>--self-host</c>), reporting QPS, latency percentiles and errors; <c>--compare-inproc</c> also times
/// the same searches through the embedded API.
/// </summary>
internal static class LoadCommand
{
    public const string Help = """
        Usage: dotnet run -c Release --project bench -- load (--address http://127.0.0.1:50051 | --self-host)
                   [--api-key KEY] [--collection demo] [--clients 32] [--seconds 10] [--warmup 2] [--k 10]
                   [--nprobe N] [--scan-dim D] [--channels 1] [--compare-inproc] [--queries 256]
        Every client keeps one Search call in flight (so --clients = requests in flight) for --seconds (at most 3600)
        after --warmup seconds, on --channels HTTP/2 connections, with query vectors read from the collection
        (ids 0..queries-1) or random unit vectors. Prints QPS, p50/p90/p99/max latency and errors by status.
        --self-host starts the server in this process on free loopback ports with the demo collection;
        --compare-inproc (with --self-host) first times single searches one at a time in-process and over gRPC.
        """;

    public static async Task<int> RunAsync(string[] args)
    {
        string? address = null, apiKey = null;
        string collection = "demo";
        int clients = 32, seconds = 10, warmup = 2, k = 10, channels = 1, queries = 256;
        uint? nprobe = null, scanDim = null;
        bool selfHost = false, compare = false;
        for (int i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"Option {args[i]} needs a value.");
            int Int(int min) => int.TryParse(Value(), NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) && v >= min
                ? v : throw new ArgumentException($"Option {args[i - 1]} needs an integer ≥ {min}.");
            switch (args[i])
            {
                case "--address": address = Value(); break;
                case "--api-key": apiKey = Value(); break;
                case "--collection": collection = Value(); break;
                case "--clients": clients = Int(1); break;
                case "--seconds": seconds = Math.Min(Int(1), 3600); break;
                case "--warmup": warmup = Math.Min(Int(0), 600); break;
                case "--k": k = Int(1); break;
                case "--nprobe": nprobe = (uint)Int(1); break;
                case "--scan-dim": scanDim = (uint)Int(1); break;
                case "--channels": channels = Int(1); break;
                case "--queries": queries = Int(1); break;
                case "--self-host": selfHost = true; break;
                case "--compare-inproc": compare = true; break;
                case "--help" or "-h": Console.WriteLine(Help); return 0;
                default: throw new ArgumentException($"Unknown option {args[i]}.\n{Help}");
            }
        }
        if (selfHost == (address is not null)) throw new ArgumentException("Give exactly one of --address and --self-host.");
        if (compare && !selfHost) throw new ArgumentException("--compare-inproc needs --self-host (the embedded search runs on the same collection).");

        await using var host = selfHost ? await SelfHost.StartAsync() : null;
        address ??= host!.Address;
        var p = new SearchParams();
        if (nprobe is uint np) p.Nprobe = np;
        if (scanDim is uint sd) p.ScanDim = sd;

        var pool = Enumerable.Range(0, channels).Select(_ => new AdannsClient(new AdannsClientOptions { Address = new Uri(address), ApiKey = apiKey })).ToArray();
        try
        {
            var c0 = pool[0];
            var info = await c0.GetCollectionAsync(collection);
            var qs = await QueryVectorsAsync(c0, collection, (int)info.Dimension, queries);
            var requests = qs.Select(q => AdannsClient.Query(collection, q, k, parameters: p)).ToArray();
            Console.WriteLine($"server {address}: collection {collection} ({info.Count} points, D={info.Dimension}, {info.IndexSpec}, trained {info.IndexTrained}); " +
                $"k={k}, params {p}; load {LoadAverage()}");

            if (compare) await CompareAsync(host!, c0, collection, qs, k, p);

            if (warmup > 0) await RunClientsAsync(pool, requests, clients, TimeSpan.FromSeconds(warmup));
            var r = await RunClientsAsync(pool, requests, clients, TimeSpan.FromSeconds(seconds));
            Console.WriteLine($"load: {clients} clients, {seconds} s: {r.Ok} ok, {r.Errors.Values.Sum()} errors, {r.Ok / r.Seconds:F0} QPS, " +
                $"latency p50 {r.Percentile(0.50):F3} ms, p90 {r.Percentile(0.90):F3} ms, p99 {r.Percentile(0.99):F3} ms, max {r.Percentile(1):F3} ms");
            foreach (var (code, n) in r.Errors) Console.WriteLine($"  errors {code}: {n} (e.g. {r.FirstError[code]})");
            var health = await c0.HealthAsync();
            Console.WriteLine($"health after the run: {health}; load {LoadAverage()}");
            return r.Errors.Count == 0 && health == Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus.Serving ? 0 : 1;
        }
        finally
        {
            foreach (var c in pool) c.Dispose();
        }
    }

    internal static string LoadAverage()
    {
        try { return string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3)); }
        catch (IOException) { return "n/a"; }
    }

    internal static async Task<float[][]> QueryVectorsAsync(AdannsClient client, string collection, int dim, int n)
    {
        var got = await client.GetAsync(collection, Enumerable.Range(0, n).Select(i => (PointId)(ulong)i), withVectors: true, withPayload: false);
        if (got.Count > 0) return got.Select(p => p.Vector.ToArray()).ToArray();
        var rng = new Random(7);
        return Enumerable.Range(0, n).Select(_ =>
        {
            var v = new float[dim];
            for (int j = 0; j < dim; j++) v[j] = (float)(rng.NextDouble() * 2 - 1);
            return v;
        }).ToArray();
    }

    private sealed class Result
    {
        public long Ok;
        public double Seconds;
        public readonly List<double> LatenciesMs = [];
        public readonly Dictionary<StatusCode, long> Errors = [];
        public readonly Dictionary<StatusCode, string> FirstError = [];

        public double Percentile(double q)
        {
            if (LatenciesMs.Count == 0) return double.NaN;
            LatenciesMs.Sort();
            return LatenciesMs[Math.Min(LatenciesMs.Count - 1, (int)(q * LatenciesMs.Count))];
        }
    }

    private static async Task<Result> RunClientsAsync(AdannsClient[] pool, SearchRequest[] requests, int clients, TimeSpan duration)
    {
        var result = new Result();
        var sw = Stopwatch.StartNew();
        long end = Stopwatch.GetTimestamp() + (long)(duration.TotalSeconds * Stopwatch.Frequency);
        var tasks = Enumerable.Range(0, clients).Select(c => Task.Run(async () =>
        {
            var lat = new List<double>(1 << 16);
            long ok = 0;
            var errors = new List<RpcException>();
            var client = pool[c % pool.Length];
            for (int i = c; Stopwatch.GetTimestamp() < end; i += clients)
            {
                long t0 = Stopwatch.GetTimestamp();
                try
                {
                    await client.SearchAsync(requests[i % requests.Length]).ConfigureAwait(false);
                    ok++;
                    lat.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                }
                catch (RpcException e)
                {
                    errors.Add(e);
                }
            }
            lock (result)
            {
                result.Ok += ok;
                result.LatenciesMs.AddRange(lat);
                foreach (var e in errors)
                {
                    result.Errors[e.StatusCode] = result.Errors.GetValueOrDefault(e.StatusCode) + 1;
                    result.FirstError.TryAdd(e.StatusCode, e.Status.Detail);
                }
            }
        })).ToArray();
        await Task.WhenAll(tasks);
        result.Seconds = sw.Elapsed.TotalSeconds;
        return result;
    }

    /// <summary>Single searches, one at a time: in-process (the embedded API) vs over gRPC on loopback.</summary>
    private static async Task CompareAsync(SelfHost host, AdannsClient client, string collection, float[][] qs, int k, SearchParams p)
    {
        var c = host.Database.GetCollection(collection);
        var engineParams = new Adanns.Engine.Indexes.SearchParams { NProbe = p.HasNprobe ? (int)p.Nprobe : null, ScanDim = p.HasScanDim ? (int)p.ScanDim : null };
        const int rounds = 5;
        int n = Math.Max(1000, qs.Length);
        var inproc = new List<double>(n * rounds);
        var grpc = new List<double>(n * rounds);
        var requests = qs.Select(q => AdannsClient.Query(collection, q, k, parameters: p)).ToArray();
        // Warm up for a few seconds: tiered JIT has to promote the gRPC, Kestrel and HTTP/2 paths of both ends.
        var warm = Stopwatch.StartNew();
        for (int i = 0; warm.Elapsed < TimeSpan.FromSeconds(5); i++)
        {
            c.Search(qs[i % qs.Length], k, engineParams);
            await client.SearchAsync(requests[i % qs.Length]);
        }
        // Alternate blocks so both see the same background load.
        for (int r = 0; r < rounds; r++)
        {
            for (int i = 0; i < n; i++)
            {
                long t0 = Stopwatch.GetTimestamp();
                c.Search(qs[i % qs.Length], k, engineParams);
                inproc.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
            }
            for (int i = 0; i < n; i++)
            {
                long t0 = Stopwatch.GetTimestamp();
                await client.SearchAsync(requests[i % qs.Length]);
                grpc.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
            }
        }
        inproc.Sort();
        grpc.Sort();
        double P(List<double> l, double q) => l[Math.Min(l.Count - 1, (int)(q * l.Count))];
        Console.WriteLine($"single query, one in flight, {inproc.Count} searches each: in-process p50 {P(inproc, 0.5):F3} ms p99 {P(inproc, 0.99):F3} ms; " +
            $"gRPC p50 {P(grpc, 0.5):F3} ms p99 {P(grpc, 0.99):F3} ms; gRPC overhead at p50 +{P(grpc, 0.5) - P(inproc, 0.5):F3} ms; load {LoadAverage()}");
    }
}

/// <summary>The server hosted in this process on free loopback ports, with the default demo collection in a temp dir.</summary>
internal sealed class SelfHost : IAsyncDisposable
{
    private readonly Microsoft.AspNetCore.Builder.WebApplication _app;
    private readonly string _dir;

    private SelfHost(Microsoft.AspNetCore.Builder.WebApplication app, string dir, string address, Adanns.Engine.Collections.AdannsDatabase db)
    {
        _app = app;
        _dir = dir;
        Address = address;
        Database = db;
    }

    public string Address { get; }

    public Adanns.Engine.Collections.AdannsDatabase Database { get; }

    public static async Task<SelfHost> StartAsync(IReadOnlyDictionary<string, string?>? settings = null)
    {
        string dir = Path.Combine(Path.GetTempPath(), "adanns-load-" + Guid.NewGuid().ToString("N"));
        int grpc = FreePort(), http = FreePort();
        var config = new Dictionary<string, string?>
        {
            ["Adanns:DataDirectory"] = dir,
            ["Adanns:GrpcPort"] = grpc.ToString(CultureInfo.InvariantCulture),
            ["Adanns:HttpPort"] = http.ToString(CultureInfo.InvariantCulture),
            ["Logging:LogLevel:Default"] = "Warning",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>()) config[key] = value;
        var app = Adanns.Server.ServerHost.Build([], config);
        await app.StartAsync();
        var host = (Adanns.Server.DatabaseHost)app.Services.GetService(typeof(Adanns.Server.DatabaseHost))!;
        var db = await host.Ready;
        return new SelfHost(app, dir, $"http://127.0.0.1:{grpc}", db);
    }

    private static int FreePort()
    {
        using var l = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        l.Start();
        return ((System.Net.IPEndPoint)l.LocalEndpoint).Port;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        try { Directory.Delete(_dir, recursive: true); }
        catch (IOException) { }
    }
}
