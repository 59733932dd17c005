using System.Diagnostics;
using System.Globalization;
using Adanns.Engine;
using Adanns.Engine.Collections;
using Adanns.Engine.Data;

namespace Adanns.Bench;

/// <summary>
/// <c>api-overhead</c>: the cost of the async embedded search API over the synchronous one, on one trained IVF
/// collection: <c>Search</c> (sync), <c>await SearchAsync</c> (one query) and <c>SearchBatchAsync</c> (per query),
/// interleaved in rounds so drift hits all three alike; reports µs per query (median of the rounds).
/// </summary>
internal static class ApiOverheadCommand
{
    public const string Help = """
        Usage: dotnet run -c Release --project bench -- api-overhead [--n 50000] [--dim 384] [--queries 2000] [--rounds 7] [--spec IVF256,Scan64,Rerank384]
        """;

    public static async Task<int> RunAsync(string[] args)
    {
        int n = 50_000, dim = 384, queries = 2000, rounds = 7;
        string spec = "IVF256@64,Scan64,Rerank384";
        for (int i = 0; i < args.Length; i++)
        {
            string V() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"Option {args[i]} needs a value.");
            switch (args[i])
            {
                case "--n": n = int.Parse(V(), CultureInfo.InvariantCulture); break;
                case "--dim": dim = int.Parse(V(), CultureInfo.InvariantCulture); break;
                case "--queries": queries = int.Parse(V(), CultureInfo.InvariantCulture); break;
                case "--rounds": rounds = int.Parse(V(), CultureInfo.InvariantCulture); break;
                case "--spec": spec = V(); break;
                default: throw new ArgumentException($"Unknown option {args[i]}.\n{Help}");
            }
        }
        string dir = Path.Combine(Path.GetTempPath(), "adanns-api-overhead-" + Guid.NewGuid().ToString("N"));
        try
        {
            using var data = SyntheticMatryoshka.Generate(new SyntheticMatryoshka.Options(Count: n, Dimension: dim, Queries: queries));
            await using var db = AdannsDatabase.Open(dir, new DatabaseOptions { BackgroundMaintenance = false });
            var c = db.CreateCollection(new CollectionConfig("bench", dim, Metric.Cosine, spec));
            for (int s = 0; s < n; s += 2000)
                await c.UpsertAsync(Enumerable.Range(s, Math.Min(2000, n - s)).Select(i => new VectorRecord((ulong)i, data.Base.Row(i).ToArray())).ToList());
            await c.WaitForIndexAsync();
            var q = Enumerable.Range(0, queries).Select(i => (ReadOnlyMemory<float>)data.Queries.Row(i).ToArray()).ToArray();
            const int K = 10;

            double Sync()
            {
                long t = Stopwatch.GetTimestamp();
                foreach (var x in q) c.Search(x.Span, K);
                return Stopwatch.GetElapsedTime(t).TotalMicroseconds / q.Length;
            }
            async Task<double> Async()
            {
                long t = Stopwatch.GetTimestamp();
                foreach (var x in q) await c.SearchAsync(x, K);
                return Stopwatch.GetElapsedTime(t).TotalMicroseconds / q.Length;
            }
            async Task<double> Batch()
            {
                long t = Stopwatch.GetTimestamp();
                await c.SearchBatchAsync(q, K);
                return Stopwatch.GetElapsedTime(t).TotalMicroseconds / q.Length;
            }

            Sync();
            await Async();
            await Batch(); // warm-up
            var sync = new List<double>();
            var async = new List<double>();
            var batch = new List<double>();
            for (int r = 0; r < rounds; r++)
            {
                GC.Collect();
                sync.Add(Sync());
                GC.Collect();
                async.Add(await Async());
                GC.Collect();
                batch.Add(await Batch());
            }
            static double Median(List<double> v) => v.Order().ElementAt(v.Count / 2);
            double s0 = Median(sync), a0 = Median(async), b0 = Median(batch);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"api-overhead n={n} D={dim} spec={spec} queries={queries} k={K} rounds={rounds} threads={Environment.ProcessorCount}"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  Search (sync)          {s0,9:F2} us/query"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  await SearchAsync      {a0,9:F2} us/query   (+{a0 - s0:F2} us, {a0 / s0:F3}x)"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  SearchBatchAsync       {b0,9:F2} us/query   ({b0 / s0:F3}x; index batch path, all cores)"));
            Console.WriteLine("  rounds sync:  " + string.Join(" ", sync.Select(v => v.ToString("F1", CultureInfo.InvariantCulture))));
            Console.WriteLine("  rounds async: " + string.Join(" ", async.Select(v => v.ToString("F1", CultureInfo.InvariantCulture))));
            return 0;
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); }
            catch (IOException) { }
        }
    }
}
