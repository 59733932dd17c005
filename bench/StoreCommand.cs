using System.Diagnostics;
using Adanns.Engine;
using Adanns.Engine.Collections;
using Adanns.Engine.Data;
using Adanns.Engine.Indexes;
using Adanns.Engine.Storage;

namespace Adanns.Bench;

/// <summary>
/// Durable-collection benchmarks: <c>store ingest</c> (acknowledged vectors/s with 1 and 8 writers, search QPS idle
/// vs while ingesting) and <c>store recovery</c> (reopen time vs write-ahead log length).
/// </summary>
internal static class StoreCommand
{
    public static int Run(string[] args)
    {
        string mode = args.Length > 0 ? args[0] : "ingest";
        int n = Int(args, "--n", 20_000), dim = Int(args, "--dim", 128), batch = Int(args, "--batch", 1);
        string dir = Str(args, "--dir", Path.Combine(Path.GetTempPath(), "adanns-store-bench-" + Guid.NewGuid().ToString("N")));
        try
        {
            return mode switch
            {
                "ingest" => Ingest(dir, n, dim, batch, Ints(args, "--writers", [1, 8])),
                "recovery" => Recovery(dir, dim, Ints(args, "--log", [10_000, 40_000, 160_000])),
                _ => throw new ArgumentException($"unknown store mode '{mode}' (ingest | recovery)"),
            };
        }
        finally
        {
            if (Directory.Exists(dir) && !args.Contains("--keep")) Directory.Delete(dir, true);
        }
    }

    private static int Ingest(string dir, int n, int dim, int batch, int[] writerCounts)
    {
        using var data = SyntheticMatryoshka.Generate(new SyntheticMatryoshka.Options(Count: n, Dimension: dim, Queries: 200));
        var rows = data.Base.ToArray();
        var queries = data.Queries.ToArray();
        Console.WriteLine($"# store ingest: n={n} dim={dim} batch={batch} (ack after WAL commit + apply), {Environment.ProcessorCount} cores");
        foreach (int writers in writerCounts)
        {
            string d = Path.Combine(dir, $"w{writers}");
            using var db = AdannsDatabase.Open(d, new DatabaseOptions { CheckpointInterval = TimeSpan.FromHours(1) });
            var c = db.CreateCollection(new CollectionConfig("bench", dim, Metric.Cosine, "IVF64,Rerank" + dim) { TrainThreshold = 4096 });
            var sw = Stopwatch.StartNew();
            var lat = IngestRange(c, rows, dim, 0, n, writers, batch);
            double secs = sw.Elapsed.TotalSeconds;
            lat.Sort();
            Console.WriteLine($"writers={writers} batch={batch}: {n / secs:F0} vectors/s ({n} in {secs:F2} s), ack latency p50={lat[lat.Count / 2]:F2} ms p99={lat[(int)(lat.Count * 0.99)]:F2} ms");
            if (writers != writerCounts[^1]) continue;

            // Search QPS idle vs while one writer ingests more (1 search thread).
            c.WaitForIndexAsync().GetAwaiter().GetResult();
            double idle = SearchQps(c, queries, dim, TimeSpan.FromSeconds(3), out _);
            var extra = SyntheticMatryoshka.Generate(new SyntheticMatryoshka.Options(Count: n, Dimension: dim, Queries: 1, Seed: 99));
            var extraRows = extra.Base.ToArray();
            long written = 0;
            var stop = new CancellationTokenSource();
            var ingest = Task.Factory.StartNew(() =>
            {
                for (int i = 0; i < n && !stop.IsCancellationRequested; i++)
                {
                    c.UpsertAsync((ulong)(n + i), extraRows.AsMemory(i * dim, dim)).GetAwaiter().GetResult();
                    written++;
                }
            }, TaskCreationOptions.LongRunning);
            var t0 = Stopwatch.StartNew();
            double busy = SearchQps(c, queries, dim, TimeSpan.FromSeconds(3), out _);
            stop.Cancel();
            ingest.Wait();
            Console.WriteLine($"search QPS (k=10, 1 thread): idle {idle:F0}, while ingesting {busy:F0} (writer meanwhile: {written / t0.Elapsed.TotalSeconds:F0} vectors/s)");
        }
        return 0;
    }

    private static List<double> IngestRange(Collection c, float[] rows, int dim, int from, int to, int writers, int batch)
    {
        var lat = new List<double>[writers];
        var threads = Enumerable.Range(0, writers).Select(w => new Thread(() =>
        {
            var mine = lat[w] = [];
            var sw = new Stopwatch();
            for (int s = from + w * batch; s < to; s += writers * batch)
            {
                int m = Math.Min(batch, to - s);
                var recs = new VectorRecord[m];
                for (int i = 0; i < m; i++) recs[i] = new VectorRecord((ulong)(s + i), rows.AsMemory((s + i) * dim, dim), new Dictionary<string, PayloadValue> { ["g"] = (s + i) % 10 });
                sw.Restart();
                c.UpsertAsync(recs).GetAwaiter().GetResult();
                mine.Add(sw.Elapsed.TotalMilliseconds);
            }
        })).ToArray();
        foreach (var t in threads) t.Start();
        foreach (var t in threads) t.Join();
        return lat.SelectMany(l => l).ToList();
    }

    private static double SearchQps(Collection c, float[] queries, int dim, TimeSpan duration, out int count)
    {
        int nq = queries.Length / dim;
        var sw = Stopwatch.StartNew();
        count = 0;
        while (sw.Elapsed < duration)
        {
            c.Search(queries.AsSpan(count % nq * dim, dim), 10, new SearchParams { NProbe = 8 });
            count++;
        }
        return count / sw.Elapsed.TotalSeconds;
    }

    private static int Recovery(string dir, int dim, int[] logLengths)
    {
        Console.WriteLine($"# store recovery: reopen time vs records in the write-ahead log since the last checkpoint (dim={dim}, batches of 100)");
        foreach (int len in logLengths)
        {
            using var data = SyntheticMatryoshka.Generate(new SyntheticMatryoshka.Options(Count: len, Dimension: dim, Queries: 1));
            var rows = data.Base.ToArray();
            string d = Path.Combine(dir, $"log{len}");
            var options = new DatabaseOptions { CheckpointInterval = TimeSpan.FromHours(1), BackgroundMaintenance = false, CheckpointOnDispose = false };
            using (var db = AdannsDatabase.Open(d, options))
            {
                var c = db.CreateCollection(new CollectionConfig("r", dim, Metric.Cosine, "IVF64") { TrainThreshold = int.MaxValue });
                IngestRange(c, rows, dim, 0, len, 1, 100);
            }
            var sw = Stopwatch.StartNew();
            using (var db = AdannsDatabase.Open(d, options))
            {
                double ms = sw.Elapsed.TotalMilliseconds;
                var count = db.GetCollection("r").Count;
                long walBytes = db.GetCollection("r").GetStats().WalBytes;
                Console.WriteLine($"log={len} records ({walBytes / 1e6:F1} MB): reopen {ms:F0} ms, {len / (ms / 1000):F0} records/s replayed, count={count}");
                if (count != len) throw new InvalidOperationException($"recovered {count} of {len}");
            }
        }
        return 0;
    }

    private static int Int(string[] a, string name, int def) => Array.IndexOf(a, name) is int i and >= 0 && i + 1 < a.Length ? int.Parse(a[i + 1]) : def;
    private static string Str(string[] a, string name, string def) => Array.IndexOf(a, name) is int i and >= 0 && i + 1 < a.Length ? a[i + 1] : def;
    private static int[] Ints(string[] a, string name, int[] def) =>
        Array.IndexOf(a, name) is int i and >= 0 && i + 1 < a.Length ? a[i + 1].Split(',').Select(int.Parse).ToArray() : def;
}
