using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using Adanns.Client;
using Adanns.Protocol.V1;
using Google.Protobuf;
using Grpc.Core;

namespace Adanns.Bench;

/// <summary>
/// <c>fuzz</c>: sends malformed requests (random bytes, random protobuf bodies in valid gRPC frames, messages of the
/// wrong type, extreme values) and checks that every one is answered with a non-OK gRPC status and that the server
/// is still healthy and answering a valid search afterwards.
/// </summary>
internal static class FuzzCommand
{
    public const string Help = """
        Usage: dotnet run -c Release --project bench -- fuzz (--address http://127.0.0.1:50051 | --self-host)
                   [--api-key KEY] [--collection demo] [--requests 10000] [--seed 1] [--parallel 8]
        Sends --requests malformed requests, four kinds in turn: random bytes (random framing), random protobuf
        bytes in a valid frame, a valid message of another type, and a typed request with one extreme or invalid
        value. Every answer must be a gRPC error status; exits 1 if any succeeded or the server is unhealthy after.
        """;

    private static readonly string[] Methods =
    [
        "/adanns.v1.Search/Search", "/adanns.v1.Search/SearchBatch", "/adanns.v1.Points/Upsert", "/adanns.v1.Points/Get",
        "/adanns.v1.Points/Count", "/adanns.v1.Points/Delete", "/adanns.v1.Collections/Get", "/adanns.v1.Admin/Snapshot",
    ];

    public static async Task<int> RunAsync(string[] args)
    {
        string? address = null, apiKey = null;
        string collection = "demo";
        int requests = 10_000, seed = 1, parallel = 8;
        bool selfHost = false;
        for (int i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"Option {args[i]} needs a value.");
            int Int() => int.TryParse(Value(), NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) && v >= 1
                ? v : throw new ArgumentException($"Option {args[i - 1]} needs a positive integer.");
            switch (args[i])
            {
                case "--address": address = Value(); break;
                case "--api-key": apiKey = Value(); break;
                case "--collection": collection = Value(); break;
                case "--requests": requests = Int(); break;
                case "--seed": seed = Int(); break;
                case "--parallel": parallel = Int(); break;
                case "--self-host": selfHost = true; break;
                case "--help" or "-h": Console.WriteLine(Help); return 0;
                default: throw new ArgumentException($"Unknown option {args[i]}.\n{Help}");
            }
        }
        if (selfHost == (address is not null)) throw new ArgumentException("Give exactly one of --address and --self-host.");
        await using var host = selfHost ? await SelfHost.StartAsync() : null;
        address ??= host!.Address;

        using var client = new AdannsClient(new AdannsClientOptions { Address = new Uri(address), ApiKey = apiKey });
        var info = await client.GetCollectionAsync(collection);
        int dim = (int)info.Dimension;
        var good = (await LoadCommand.QueryVectorsAsync(client, collection, dim, 1))[0];
        using var http = new HttpClient(new SocketsHttpHandler { EnableMultipleHttp2Connections = true })
        {
            BaseAddress = new Uri(address),
            Timeout = TimeSpan.FromSeconds(30),
        };

        var counts = new Dictionary<string, long>();
        var failures = new List<string>();
        int next = -1;
        var workers = Enumerable.Range(0, parallel).Select(_ => Task.Run(async () =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < requests)
            {
                var rng = new Random(seed * 1_000_003 + i);
                string outcome;
                string what;
                try
                {
                    (what, outcome) = (i % 4) switch
                    {
                        0 => await RawAsync(http, apiKey, rng, validFrame: false),
                        1 => await RawAsync(http, apiKey, rng, validFrame: true),
                        2 => await WrongTypeAsync(http, apiKey, rng, collection, dim),
                        _ => await ExtremeAsync(client, rng, collection, dim, good),
                    };
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException)
                {
                    (what, outcome) = ($"request {i}", $"transport error {e.GetType().Name}: {e.Message}");
                }
                lock (counts)
                {
                    counts[outcome] = counts.GetValueOrDefault(outcome) + 1;
                    if ((outcome == "OK" || outcome.StartsWith("transport", StringComparison.Ordinal) || outcome.StartsWith("no grpc-status", StringComparison.Ordinal))
                        && failures.Count < 20)
                        failures.Add($"{what}: {outcome}");
                }
            }
        })).ToArray();
        await Task.WhenAll(workers);

        Console.WriteLine($"fuzz: {requests} malformed requests to {address} ({collection}, D={dim}); answers:");
        foreach (var (k, v) in counts.OrderByDescending(kv => kv.Value)) Console.WriteLine($"  {v,6}  {k}");
        long bad = counts.Where(kv => !kv.Key.StartsWith("error ", StringComparison.Ordinal)).Sum(kv => kv.Value);
        foreach (var f in failures) Console.WriteLine($"  NOT AN ERROR STATUS: {f}");
        var health = await client.HealthAsync();
        var check = await client.SearchAsync(collection, good, 3);
        Console.WriteLine($"after: health {health}, a valid search returned {check.Points.Count} points; {bad} requests not answered with an error status; load {LoadCommand.LoadAverage()}");
        return bad == 0 && health == Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus.Serving && check.Points.Count > 0 ? 0 : 1;
    }

    private static async Task<(string, string)> SendAsync(HttpClient http, string? apiKey, string method, byte[] body)
    {
        using var req = new HttpRequestMessage(HttpMethod.Post, method)
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new ByteArrayContent(body),
        };
        req.Content.Headers.ContentType = new MediaTypeHeaderValue("application/grpc");
        req.Headers.TryAddWithoutValidation("te", "trailers");
        if (apiKey is not null) req.Headers.TryAddWithoutValidation("api-key", apiKey);
        using var resp = await http.SendAsync(req).ConfigureAwait(false);
        _ = await resp.Content.ReadAsByteArrayAsync().ConfigureAwait(false);
        string? status = resp.TrailingHeaders.TryGetValues("grpc-status", out var t) ? t.First()
            : resp.Headers.TryGetValues("grpc-status", out var h) ? h.First() : null;
        string what = $"{method} ({body.Length} bytes)";
        if (status is null) return (what, $"no grpc-status (HTTP {(int)resp.StatusCode})");
        if (status == "0") return (what, "OK");
        return (what, $"error {(StatusCode)int.Parse(status, CultureInfo.InvariantCulture)}");
    }

    private static Task<(string, string)> RawAsync(HttpClient http, string? apiKey, Random rng, bool validFrame)
    {
        var body = new byte[rng.Next(0, 512)];
        rng.NextBytes(body);
        if (validFrame)
        {
            var framed = new byte[body.Length + 5];
            BinaryPrimitives.WriteUInt32BigEndian(framed.AsSpan(1), (uint)body.Length);
            body.CopyTo(framed, 5);
            body = framed;
        }
        return SendAsync(http, apiKey, Methods[rng.Next(Methods.Length)], body);
    }

    /// <summary>A well-formed message of another type, to a collection that does not exist or with required fields missing.</summary>
    private static Task<(string, string)> WrongTypeAsync(HttpClient http, string? apiKey, Random rng, string collection, int dim)
    {
        var vector = Enumerable.Range(0, dim).Select(_ => (float)rng.NextDouble()).ToArray();
        IMessage msg = rng.Next(5) switch
        {
            0 => new UpsertRequest { Collection = "fuzz-missing", Points = { Point.Create((ulong)rng.Next(), vector) } },
            1 => new CreateCollectionRequest { Name = "fuzz-missing", Dimension = (uint)rng.Next(), Metric = Metric.L2 },
            2 => new SearchBatchRequest { Collection = "fuzz-missing", Searches = { AdannsClient.Query(collection, vector, 5) } },
            3 => new GetPointsRequest { Collection = "fuzz-missing", Ids = { (PointId)1UL } },
            _ => new CountRequest { Collection = "fuzz-missing" },
        };
        // Search needs top_k ≥ 1 (field 3), which none of these carries as a varint; the others name a missing collection.
        string[] targets = ["/adanns.v1.Search/Search", "/adanns.v1.Points/Get", "/adanns.v1.Points/Count", "/adanns.v1.Collections/Get", "/adanns.v1.Points/Upsert"];
        var payload = msg.ToByteArray();
        var framed = new byte[payload.Length + 5];
        BinaryPrimitives.WriteUInt32BigEndian(framed.AsSpan(1), (uint)payload.Length);
        payload.CopyTo(framed, 5);
        return SendAsync(http, apiKey, targets[rng.Next(targets.Length)], framed);
    }

    /// <summary>A typed request with exactly one extreme or invalid value.</summary>
    private static async Task<(string, string)> ExtremeAsync(AdannsClient client, Random rng, string collection, int dim, float[] good)
    {
        var v = (float[])good.Clone();
        SearchRequest Q() => AdannsClient.Query(collection, v, 10);
        int kind = rng.Next(16);
        string what = $"extreme #{kind}";
        try
        {
            switch (kind)
            {
                case 0: { var r = Q(); r.TopK = (uint)rng.NextInt64(uint.MaxValue / 2, uint.MaxValue); await client.SearchAsync(r); break; }
                case 1: { var r = Q(); r.TopK = 0; await client.SearchAsync(r); break; }
                case 2: { v[rng.Next(dim)] = rng.Next(3) switch { 0 => float.NaN, 1 => float.PositiveInfinity, _ => float.NegativeInfinity }; await client.SearchAsync(Q()); break; }
                case 3: { var big = new float[dim * (2 + rng.Next(1000))]; await client.SearchAsync(collection, big, 10); break; }
                case 4: { await client.SearchAsync(collection, v.AsMemory(0, rng.Next(dim)), 10); break; }
                case 5: { var r = Q(); r.Params = new SearchParams { Nprobe = (uint)rng.NextInt64(1L << 20, uint.MaxValue) }; await client.SearchAsync(r); break; }
                case 6: { var r = Q(); r.Params = new SearchParams { ScanDim = (uint)(dim + 1 + rng.Next(1 << 20)) }; await client.SearchAsync(r); break; }
                case 7: { var r = Q(); r.Params = new SearchParams { Rerank = { new RerankStage { Dim = uint.MaxValue } } }; await client.SearchAsync(r); break; }
                case 8:
                {
                    var f = Filters.Eq("x", 1);
                    for (int d = 0, n = 1001 + rng.Next(2000); d < n; d++) f = rng.Next(2) == 0 ? Filters.Not(f) : Filters.And(f);
                    var r = Q();
                    r.Filter = f;
                    await client.SearchAsync(r);
                    break;
                }
                case 9: { var r = Q(); r.Filter = Filters.Range("x", gte: double.NegativeInfinity); await client.SearchAsync(r); break; }
                case 10: { await client.UpsertAsync(collection, new string('z', 513 + rng.Next(10_000)), v); break; }
                case 11: { await client.UpsertAsync(collection, (ulong)rng.NextInt64(), v, [new("n", double.PositiveInfinity)]); break; }
                case 12: { await client.UpsertAsync(collection, (ulong)rng.NextInt64(), v.AsMemory(0, dim - 1)); break; }
                case 13: { var r = Q(); r.Collection = new string('c', 1 + rng.Next(100_000)); await client.SearchAsync(r); break; }
                case 14: { var r = Q(); r.ScoreThreshold = float.NaN; await client.SearchAsync(r); break; }
                default:
                {
                    var r = Q();
                    r.Params = new SearchParams { MaxFlops = rng.Next(2) == 0 ? -1 : double.PositiveInfinity };
                    await client.SearchAsync(r);
                    break;
                }
            }
            return (what, "OK");
        }
        catch (RpcException e)
        {
            if (Environment.GetEnvironmentVariable("ADANNS_FUZZ_VERBOSE") == "1") Console.Error.WriteLine($"{what}: {e.StatusCode} {e.Status.Detail}");
            return (what, $"error {e.StatusCode}");
        }
    }
}
