using System.Diagnostics;
using Adanns.Engine;
using Adanns.Engine.Collections;
using Adanns.Engine.Storage;

namespace Adanns.Bench;

/// <summary>
/// <c>store scale</c>: one large synthetic collection built in process (issue 20's scale run, sized to the machine):
/// <c>--n</c> vectors of <c>--dim</c> dims (clustered, generated deterministically a batch at a time, so the data set
/// never sits in memory) written by <c>--writers</c> threads in batches of <c>--batch</c> with background maintenance
/// on (trainings at <c>--train-at</c> and at each doubling, checkpoints every <c>--checkpoint-s</c>); then the index,
/// recall@10 of <c>--queries</c> queries against exact search (computed by regenerating the data), peak RSS, close and
/// reopen times. Prints the ingest rate, acknowledged-batch latency (p50 / p99 / max: the stall), how many batches
/// waited for the index backlog (<c>--backlog-mb</c>, default the engine's 512; <c>--backpressure-s</c> 600) and every training.
/// </summary>
internal static class ScaleCommand
{
    private const int Centres = 4096;

    public static int Run(string[] args, string dir, Func<string[], string, int, int> intArg, Func<string[], string, string, string> strArg)
    {
        int n = intArg(args, "--n", 1_000_000), dim = intArg(args, "--dim", 128), writers = intArg(args, "--writers", 4), batch = intArg(args, "--batch", 1000);
        int trainAt = intArg(args, "--train-at", 100_000), nq = intArg(args, "--queries", 100), checkpointS = intArg(args, "--checkpoint-s", 30);
        int recordMb = intArg(args, "--record-mb", 256);
        // Backpressure: the index backlog budget (MiB) and how long a writer waits for it (s; long, so the ingest completes).
        long backlogMb = intArg(args, "--backlog-mb", (int)(new DatabaseOptions().MaxIndexBacklogBytes >> 20));
        int backpressureS = intArg(args, "--backpressure-s", 600);
        string spec = strArg(args, "--spec", "IVF1024@64,PQ32@128,NProbe32,Shortlist200,Rerank" + dim);
        const int K = 10;
        Console.WriteLine($"# store scale: n={n} dim={dim} spec=\"{spec}\" writers={writers} batch={batch} train-at={trainAt} record-mb={recordMb} backlog-mb={backlogMb} checkpoint every {checkpointS} s, {Environment.ProcessorCount} cores, in process (no gRPC)");
        var centres = new float[Centres * dim];
        var rng = new Random(7);
        for (int i = 0; i < centres.Length; i++) centres[i] = (float)(rng.NextDouble() * 2 - 1);
        var log = new StoreCommand.EventLog();
        var options = new DatabaseOptions
        {
            CheckpointInterval = TimeSpan.FromSeconds(checkpointS), LoggerFactory = log, RecordMemoryBytes = (long)recordMb << 20,
            MaxIndexBacklogBytes = backlogMb << 20, BackpressureTimeout = TimeSpan.FromSeconds(backpressureS),
        };
        var total = Stopwatch.StartNew();
        var db = AdannsDatabase.Open(dir, options);
        long throttled = 0;
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (i, l) =>
        {
            if (ReferenceEquals(i.Meter, db.Metrics.Meter) && i.Name == "adanns.engine.writes.throttled") l.EnableMeasurementEvents(i);
        };
        listener.SetMeasurementEventCallback<long>((_, v, _, _) => Interlocked.Add(ref throttled, v));
        listener.Start();
        var c = db.CreateCollection(new CollectionConfig("scale", dim, Metric.Cosine, spec) { TrainThreshold = trainAt });
        long next = 0;
        var lat = new List<double>[writers];
        var sw = Stopwatch.StartNew();
        var threads = Enumerable.Range(0, writers).Select(w => new Thread(() =>
        {
            var mine = lat[w] = [];
            var rows = new float[batch * dim];
            while (true)
            {
                long first = Interlocked.Add(ref next, batch) - batch;
                if (first >= n) break;
                int m = (int)Math.Min(batch, n - first);
                var recs = new VectorRecord[m];
                for (int i = 0; i < m; i++)
                {
                    Generate(first + i, centres, rows.AsSpan(i * dim, dim));
                    recs[i] = new VectorRecord((ulong)(first + i), rows.AsMemory(i * dim, dim).ToArray());
                }
                long t0 = Stopwatch.GetTimestamp();
                c.UpsertAsync(recs).GetAwaiter().GetResult();
                mine.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
            }
        })).ToArray();
        var progress = new Thread(() =>
        {
            while (Interlocked.Read(ref next) < n)
            {
                Thread.Sleep(30_000);
                Console.WriteLine($"  {sw.Elapsed.TotalSeconds:F0} s: {Math.Min(n, Interlocked.Read(ref next))} written, RSS {Process.GetCurrentProcess().WorkingSet64 / 1e9:F2} GB");
            }
        }) { IsBackground = true };
        foreach (var t in threads) t.Start();
        progress.Start();
        foreach (var t in threads) t.Join();
        double ingest = sw.Elapsed.TotalSeconds;
        var all = lat.SelectMany(l => l).OrderBy(x => x).ToList();
        Console.WriteLine($"ingest: {n} vectors in {ingest:F1} s = {n / ingest:F0} vectors/s; acknowledged batch latency p50 {all[all.Count / 2]:F1} ms, p99 {all[(int)(all.Count * 0.99)]:F1} ms, max {all[^1]:F1} ms ({all.Count} batches, {Interlocked.Read(ref throttled)} of them throttled by backpressure)");
        sw.Restart();
        c.WaitForIndexAsync().GetAwaiter().GetResult();
        Console.WriteLine($"index settled {sw.Elapsed.TotalSeconds:F1} s after the last write; {c.GetStats().Retrains} trainings in all:");
        foreach (var (at, m) in log.Events().Where(e => e.Message.Contains("trained", StringComparison.Ordinal))) Console.WriteLine($"  {at:F1} s: {m}");

        var queries = new float[nq * dim];
        for (int q = 0; q < nq; q++) Generate(1_000_000_000L + q, centres, queries.AsSpan(q * dim, dim));
        double recall = Recall(c, queries, nq, dim, K, n, centres, out double qps);
        Console.WriteLine($"recall@10 {recall:F4} vs exact ({nq} queries, index defaults), {qps:F0} QPS one thread; peak RSS {PeakRssGb():F2} GB");
        var stats = c.GetStats();
        Console.WriteLine($"record store log {stats.RecordLogBytes / 1e9:F2} GB, write-ahead log {stats.WalBytes / 1e6:F0} MB; disk under {dir}: {DirBytes(dir) / 1e9:F2} GB");
        sw.Restart();
        db.Dispose();
        double close = sw.Elapsed.TotalSeconds;
        sw.Restart();
        db = AdannsDatabase.Open(dir, options with { LoggerFactory = null });
        c = db.GetCollection("scale");
        double open = sw.Elapsed.TotalSeconds;
        Console.WriteLine($"restart: close (final checkpoint) {close:F1} s, reopen {open:F1} s, {c.Count} records, index trained {c.GetStats().IndexTrained}");
        double again = Recall(c, queries, nq, dim, K, n, centres, out _, exactAgain: false);
        Console.WriteLine($"after reopen: recall@10 {again:F4}; peak RSS {PeakRssGb():F2} GB; total {total.Elapsed.TotalMinutes:F1} min");
        db.Dispose();
        return 0;
    }

    /// <summary>Row <paramref name="i"/>: a centre chosen by a hash of i plus uniform noise (xorshift seeded by i).</summary>
    private static void Generate(long i, float[] centres, Span<float> row)
    {
        int dim = row.Length;
        ulong s = (ulong)i * 0x9E3779B97F4A7C15UL + 0x632BE59BD9B4E019UL;
        ulong Next()
        {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            return s;
        }
        int centre = (int)(Next() % Centres);
        var c = centres.AsSpan(centre * dim, dim);
        for (int d = 0; d < dim; d++) row[d] = c[d] + ((Next() >> 40) / (float)(1 << 24) - 0.5f) * 0.8f;
    }

    private static long[]? _truthIds;

    private static double Recall(Collection c, float[] queries, int nq, int dim, int k, int n, float[] centres, out double qps, bool exactAgain = true)
    {
        if (_truthIds is null || exactAgain) _truthIds = Exact(queries, nq, dim, k, n, centres);
        long hits = 0;
        var sw = Stopwatch.StartNew();
        for (int q = 0; q < nq; q++)
        {
            var found = c.Search(queries.AsSpan(q * dim, dim), k);
            var truth = _truthIds.AsSpan(q * k, k);
            foreach (var h in found) if (truth.Contains((long)h.Id.Number)) hits++;
        }
        qps = nq / sw.Elapsed.TotalSeconds;
        return (double)hits / (nq * k);
    }

    /// <summary>Exact cosine top-k of every query, regenerating the data a block at a time.</summary>
    private static long[] Exact(float[] queries, int nq, int dim, int k, int n, float[] centres)
    {
        var qn = new float[nq * dim];
        for (int q = 0; q < nq; q++)
        {
            var src = queries.AsSpan(q * dim, dim);
            float norm = MathF.Sqrt(System.Numerics.Tensors.TensorPrimitives.Dot(src, src));
            System.Numerics.Tensors.TensorPrimitives.Divide(src, norm, qn.AsSpan(q * dim, dim));
        }
        var best = new (float Score, long Id)[nq][];
        for (int q = 0; q < nq; q++) best[q] = Enumerable.Repeat((float.NegativeInfinity, -1L), k).ToArray();
        var row = new float[dim];
        for (long i = 0; i < n; i++)
        {
            Generate(i, centres, row);
            float rn = MathF.Sqrt(System.Numerics.Tensors.TensorPrimitives.Dot<float>(row, row));
            for (int q = 0; q < nq; q++)
            {
                float s = System.Numerics.Tensors.TensorPrimitives.Dot(qn.AsSpan(q * dim, dim), row) / rn;
                var b = best[q];
                if (s <= b[k - 1].Score) continue;
                int j = k - 1;
                while (j > 0 && b[j - 1].Score < s) { b[j] = b[j - 1]; j--; }
                b[j] = (s, i);
            }
        }
        var ids = new long[nq * k];
        for (int q = 0; q < nq; q++) for (int j = 0; j < k; j++) ids[q * k + j] = best[q][j].Id;
        return ids;
    }

    private static double PeakRssGb()
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                return long.Parse(line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries)[1]) / 1e6 * 1.024; // "VmHWM:\t 123 kB" 
        return double.NaN;
    }

    private static long DirBytes(string dir) => new DirectoryInfo(dir).EnumerateFiles("*", SearchOption.AllDirectories).Sum(f => f.Length);
}
