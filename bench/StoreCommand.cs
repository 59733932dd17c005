using System.Diagnostics;
using Adanns.Engine;
using Adanns.Engine.Collections;
using Adanns.Engine.Data;
using Adanns.Engine.Indexes;
using Adanns.Engine.Storage;

namespace Adanns.Bench;

/// <summary>
/// Durable-collection benchmarks: <c>store ingest</c> (acknowledged vectors/s with 1 and 8 writers, search QPS idle
/// vs while ingesting), <c>store recovery</c> (reopen time vs write-ahead log length) and <c>store memory</c> (one
/// collection built with <c>--spec</c> under a small record-store memory: resident bytes, process memory, QPS and
/// recall@10 vs exact; run once with a PQ spec and once with an IVF spec to compare).
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
                "memory" => Memory(dir, Int(args, "--n", 200_000), dim, Str(args, "--spec", "IVF256@64,PQ32@64,NProbe16,Shortlist200,Rerank128"),
                    Int(args, "--record-mb", 16), Int(args, "--seconds", 5), args.Contains("--payload")),
                "steady" => Steady(args, dir, dim),
                "scale" => ScaleCommand.Run(args, dir, Int, Str),
                "filter" => FilterCost(args, dir, Int(args, "--n", 20_000), dim, Str(args, "--spec", "IVF128@64,NProbe16,Rerank" + dim), Dbl(args, "--exact-selectivity", new DatabaseOptions().ExactFilterSelectivity)),
                _ => throw new ArgumentException($"unknown store mode '{mode}' (ingest | recovery | memory | filter | steady | scale)"),
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

    /// <summary>
    /// <c>store steady</c>: acknowledged-write latency under steady ingest with maintenance running — <c>--writers</c>
    /// (8) threads each upserting batches of <c>--batch</c> (100) new records and deleting a random earlier tenth of a
    /// batch (<c>--delete-ratio</c> 0.1), for <c>--seconds</c> (20), from an empty collection or one of <c>--preload</c>
    /// records (so the index trains, retrains at doubling or when tombstones pass a fifth, and checkpoints every
    /// <c>--checkpoint-ms</c>); one search thread runs throughout. Prints latency
    /// percentiles, every write over 50 ms with the maintenance events logged around it, and search p99 during
    /// ingest vs idle afterwards. <c>--warmup</c> S (0) leaves the writes started in the first S seconds out of the
    /// statistics (JIT, first training). The last line checks the issue-20 targets: acknowledged-write p99 ≤ 50 ms and
    /// max ≤ 250 ms, search p99 within 2x of idle, and whether a training, a checkpoint and a record-log compaction
    /// happened during the run. Where the slowest writes' time went: each is printed with the GC pause time inside it
    /// (runtime GC events) and its write group's parts (queued, log commit, store, lock wait, apply: the engine logs a
    /// group whose oldest write waited ≥ 40 ms); then the GC pauses, gen-2 collections by reason and type, and the thread
    /// pool's queue. The GC runs in <c>SustainedLowLatency</c> mode as the server does (<c>--gc-latency Interactive</c>
    /// to compare); <c>--min-threads N</c> raises the thread pool's floor.
    /// </summary>
    private static int Steady(string[] args, string dir, int dim)
    {
        int writers = Int(args, "--writers", 8), batch = Int(args, "--batch", 100), seconds = Int(args, "--seconds", 20);
        int checkpointMs = Int(args, "--checkpoint-ms", 2000);
        double warmup = Dbl(args, "--warmup", 0);
        string spec = Str(args, "--spec", "IVF64,Rerank" + dim);
        var log = new EventLog();
        var options = new DatabaseOptions { CheckpointInterval = TimeSpan.FromMilliseconds(checkpointMs), LoggerFactory = log, RecordMemoryBytes = (long)Int(args, "--record-mb", 64) << 20,
            BackgroundThreadNice = Int(args, "--training-nice", new DatabaseOptions().BackgroundThreadNice) };
        Console.WriteLine($"# store steady: training-nice={options.BackgroundThreadNice} writers={writers} batch={batch} seconds={seconds} warmup={warmup} preload={Int(args, "--preload", 0)} delete-ratio={Dbl(args, "--delete-ratio", 0.1)} dim={dim} spec=\"{spec}\" checkpoint every {checkpointMs} ms, {Environment.ProcessorCount} cores");
        using var db = AdannsDatabase.Open(dir, options);
        var c = db.CreateCollection(new CollectionConfig("steady", dim, Metric.Cosine, spec) { TrainThreshold = 4096 });
        using var data = SyntheticMatryoshka.Generate(new SyntheticMatryoshka.Options(Count: 50_000, Dimension: dim, Queries: 200));
        var rows = data.Base.ToArray();
        var queries = data.Queries.ToArray();
        int pool = rows.Length / dim;
        long nextId = 0;
        int preload = Int(args, "--preload", 0);
        double deleteRatio = Dbl(args, "--delete-ratio", 0.1);
        for (; nextId < preload; nextId += 1000)
            c.UpsertAsync(Enumerable.Range(0, 1000).Select(i => new VectorRecord((ulong)(nextId + i), rows.AsMemory((int)((nextId + i) % pool) * dim, dim),
                new Dictionary<string, PayloadValue> { ["g"] = (nextId + i) % 10 })).ToList()).GetAwaiter().GetResult();
        if (preload > 0) c.WaitForIndexAsync().GetAwaiter().GetResult();
        var stop = new CancellationTokenSource();
        var start = log.Clock; // one timeline for writes and logged events
        using var gcPauses = new GcPauseListener(start); // and GC pauses
        var lat = new List<(double At, double Ms)>[writers];
        var threads = Enumerable.Range(0, writers).Select(w => new Thread(() =>
        {
            var mine = lat[w] = [];
            var rng = new Random(w);
            while (!stop.IsCancellationRequested)
            {
                long first = Interlocked.Add(ref nextId, batch) - batch;
                var recs = new VectorRecord[batch];
                for (int i = 0; i < batch; i++)
                {
                    long id = first + i;
                    recs[i] = new VectorRecord((ulong)id, rows.AsMemory((int)(id % pool) * dim, dim), new Dictionary<string, PayloadValue> { ["g"] = id % 10 });
                }
                double at = start.Elapsed.TotalSeconds;
                long t0 = Stopwatch.GetTimestamp();
                c.UpsertAsync(recs).GetAwaiter().GetResult();
                mine.Add((at, Stopwatch.GetElapsedTime(t0).TotalMilliseconds));
                if (first > 10 * batch)
                {
                    var dead = Enumerable.Range(0, (int)(batch * deleteRatio)).Select(_ => (RecordId)(ulong)rng.NextInt64(first)).Distinct().ToList();
                    at = start.Elapsed.TotalSeconds;
                    t0 = Stopwatch.GetTimestamp();
                    c.DeleteAsync(dead).GetAwaiter().GetResult();
                    mine.Add((at, Stopwatch.GetElapsedTime(t0).TotalMilliseconds));
                }
            }
        })).ToArray();
        var searchLat = new List<double>();
        var searchPaths = new Dictionary<string, int>();
        bool searching = !args.Contains("--no-search"); // --no-search: writers only (separates the lock's share of the latency)
        double searchFrom = 0; // set below: searches are counted after the warm-up, as writes are (an empty collection answers in microseconds)
        var searcher = new Thread(() =>
        {
            int q = 0;
            while (searching && !stop.IsCancellationRequested)
            {
                long t0 = Stopwatch.GetTimestamp();
                double at = start.Elapsed.TotalSeconds;
                var hitsFound = c.SearchWithReport(queries.AsSpan(q++ % 200 * dim, dim), 10, null, null, false, out var rep);
                if (at < searchFrom) continue;
                searchLat.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                string key = $"{rep.Path}, {hitsFound.Length} hits";
                searchPaths[key] = searchPaths.GetValueOrDefault(key) + 1;
            }
        });
        // Thread-pool pressure: acknowledgements and the log's I/O completions go through the pool, so a starved pool
        // delays every write. Sampled every 10 ms; --min-threads N raises the pool's floor (ThreadPool.SetMinThreads).
        if (Int(args, "--min-threads", 0) is int minThreads and > 0) ThreadPool.SetMinThreads(minThreads, minThreads);
        // As the server runs (src/Server/Program.cs): no blocking gen-2 collections. --gc-latency Interactive compares.
        System.Runtime.GCSettings.LatencyMode = Enum.Parse<System.Runtime.GCLatencyMode>(Str(args, "--gc-latency", "SustainedLowLatency"), ignoreCase: true);
        int poolMaxThreads = 0;
        long poolMaxQueue = 0, poolQueueSum = 0, poolSamples = 0;
        var poolSampler = new Thread(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                poolMaxThreads = Math.Max(poolMaxThreads, ThreadPool.ThreadCount);
                long q = ThreadPool.PendingWorkItemCount;
                poolMaxQueue = Math.Max(poolMaxQueue, q);
                poolQueueSum += q;
                poolSamples++;
                Thread.Sleep(10);
            }
        }) { IsBackground = true };
        poolSampler.Start();
        long allocated0 = GC.GetTotalAllocatedBytes();
        var pause0 = GC.GetTotalPauseDuration();
        int gen2 = GC.CollectionCount(2);
        double runStart = start.Elapsed.TotalSeconds; // the clock started before the preload
        searchFrom = runStart + warmup;
        foreach (var t in threads) t.Start();
        searcher.Start();
        Thread.Sleep(TimeSpan.FromSeconds(seconds));
        stop.Cancel();
        foreach (var t in threads) t.Join();
        searcher.Join();
        double elapsed = start.Elapsed.TotalSeconds;
        var all = lat.SelectMany(l => l).Where(x => x.At >= runStart + warmup).OrderBy(x => x.Ms).ToList();
        var stats = c.GetStats();
        static double P(List<double> sorted, double p) => sorted.Count == 0 ? 0 : sorted[Math.Min(sorted.Count - 1, (int)(sorted.Count * p))];
        var ms = all.Select(x => x.Ms).ToList();
        Console.WriteLine($"acknowledged writes: {all.Count} calls ({nextId - preload} vectors upserted after a preload of {preload}, {(nextId - preload) / elapsed:F0}/s; {stats.Count} live), latency p50 {P(ms, 0.5):F1} ms, p99 {P(ms, 0.99):F1} ms, p99.9 {P(ms, 0.999):F1} ms, max {ms[^1]:F1} ms");
        Console.WriteLine($"allocated: {(GC.GetTotalAllocatedBytes() - allocated0) / (double)Math.Max(1, nextId - preload):F0} bytes per vector upserted (every thread: writers, applier, trainings, searches)");
        Console.WriteLine($"allocated most (sampled by type): {gcPauses.TopAllocations(10)}");
        Console.WriteLine($"GC: {GC.CollectionCount(2) - gen2} gen2 collections, {(GC.GetTotalPauseDuration() - pause0).TotalMilliseconds:F0} ms paused in all (server GC: {System.Runtime.GCSettings.IsServerGC})");
        Console.WriteLine($"thread pool: up to {poolMaxThreads} threads, queued work items mean {(double)poolQueueSum / Math.Max(1, poolSamples):F1} max {poolMaxQueue}, {ThreadPool.CompletedWorkItemCount} completed");
        Console.WriteLine($"maintenance: {stats.Retrains} trainings, {stats.Compactions} compactions, {log.Count("checkpoint")} checkpoints");
        var events = log.Events();
        Console.WriteLine($"writes over 50 ms: {all.Count(x => x.Ms > 50)}; over 250 ms: {all.Count(x => x.Ms > 250)}; the slowest (start → end, s):");
        foreach (var (at, m) in all.OrderByDescending(x => x.Ms).Take(8).OrderBy(x => x.At))
        {
            double end = at + m / 1000;
            Console.WriteLine($"  {at:F2} → {end:F2}: {m:F1} ms; GC paused {gcPauses.PausedWithin(at, end):F1} ms of it");
            // The write group that acknowledged it (logged when its oldest write waited 40 ms or more: where the time went).
            // The writer notices its acknowledgement after the applier logged it (a loaded machine wakes it late): the
            // nearest group logged in the 100 ms before the writer's end, or just after it.
            foreach (var (eAt, msg) in events.Where(e => e.At >= end - 0.1 && e.At <= end + 0.01 && e.Message.Contains("slow write group", StringComparison.Ordinal))
                .OrderBy(e => Math.Abs(e.At - end)).Take(1))
                Console.WriteLine($"      {eAt:F2}: {msg}");
        }
        var pauses = gcPauses.Pauses().Where(p => p.Start >= runStart + warmup).ToList();
        Console.WriteLine($"GC pauses in the measured window: {pauses.Count}, {pauses.Sum(p => p.End - p.Start) * 1000:F0} ms in all; the longest: " +
            string.Join(", ", pauses.OrderByDescending(p => p.End - p.Start).Take(6).Select(p => $"{p.Start:F2} gen{p.Gen} {(p.End - p.Start) * 1000:F1} ms")));
        Console.WriteLine($"GC pauses (since start) by the nice value of the thread that ran them: {gcPauses.PausesByNice()}");
        Console.WriteLine($"gen-2 collections (since start) by reason / type: {gcPauses.Gen2Summary()}; GC latency mode {System.Runtime.GCSettings.LatencyMode}");
        var slowGroups = events.Where(e => e.At >= runStart + warmup && e.Message.Contains("slow write group", StringComparison.Ordinal)).ToList();
        Console.WriteLine($"slow write groups (oldest write waited >= 40 ms) in the window: {slowGroups.Count}");
        if (slowGroups.Count > 0)
        {
            // Mean and max of each part of those groups' time (parsed back from the log line).
            string[] parts = ["queued", "log commit", "store", "lock wait", "apply"];
            var values = slowGroups.Select(e => parts.Select(p => double.Parse(System.Text.RegularExpressions.Regex.Match(e.Message, p + @" (\d+(\.\d+)?)").Groups[1].Value,
                System.Globalization.CultureInfo.InvariantCulture)).ToArray()).ToList();
            Console.WriteLine("  their parts (mean / max ms): " + string.Join(", ", parts.Select((p, i) => $"{p} {values.Average(v => v[i]):F1} / {values.Max(v => v[i]):F1}")));
        }
        Console.WriteLine("maintenance events (logged at their end):");
        foreach (var (at, m) in events.Where(e => !e.Message.Contains("slow write group", StringComparison.Ordinal))) Console.WriteLine($"  {at:F2}: {m}");
        Console.WriteLine("searches during ingest by path: " + string.Join(", ", searchPaths.OrderByDescending(x => x.Value).Select(x => $"{x.Key}={x.Value}")));
        searchLat.Sort();
        if (searchLat.Count == 0) searchLat.Add(0);
        var idle = new List<double>();
        for (int q = 0; q < Math.Clamp(searchLat.Count, 1000, 5000); q++)
        {
            long t0 = Stopwatch.GetTimestamp();
            c.Search(queries.AsSpan(q % 200 * dim, dim), 10);
            idle.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
        }
        idle.Sort();
        Console.WriteLine($"search (k=10, 1 thread): during ingest p50 {P(searchLat, 0.5):F2} ms p99 {P(searchLat, 0.99):F2} ms max {searchLat[^1]:F1} ms ({searchLat.Count}); idle after p50 {P(idle, 0.5):F2} ms p99 {P(idle, 0.99):F2} ms");
        // The issue-20 targets, and whether the maintenance they are stated under happened during the run (not the preload).
        var during = events.Where(e => e.At >= runStart).ToList();
        int trained = during.Count(e => e.Message.Contains("index trained on", StringComparison.Ordinal));
        int checkpoints = during.Count(e => e.Message.Contains("checkpoint at LSN", StringComparison.Ordinal));
        int compacted = during.Count(e => e.Message.Contains("record log compacted", StringComparison.Ordinal));
        double p99 = P(ms, 0.99), max = ms[^1], ratio = P(searchLat, 0.99) / Math.Max(1e-9, P(idle, 0.99));
        static string Ok(bool met) => met ? "met" : "NOT met";
        Console.WriteLine($"targets: ack p99 {p99:F1} ms <= 50: {Ok(p99 <= 50)}; ack max {max:F1} ms <= 250: {Ok(max <= 250)}; search p99 {ratio:F2}x idle <= 2: {Ok(ratio <= 2)}" +
            $" | during the run: {trained} trainings, {checkpoints} checkpoints, {compacted} record-log compactions, {stats.Compactions} index compactions" +
            $" | writes counted after {warmup:F0} s warm-up: {all.Count}");
        return 0;
    }

    /// <summary>Collects the engine's log lines with their time since start (for <c>store steady</c>).</summary>
    internal sealed class EventLog : Microsoft.Extensions.Logging.ILoggerFactory, Microsoft.Extensions.Logging.ILogger
    {
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private readonly List<(double At, string Message)> _events = [];

        public Stopwatch Clock => _clock;

        public Microsoft.Extensions.Logging.ILogger CreateLogger(string categoryName) => this;

        public void AddProvider(Microsoft.Extensions.Logging.ILoggerProvider provider) { }

        public void Dispose() { }

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(Microsoft.Extensions.Logging.LogLevel logLevel) => true;

        public void Log<TState>(Microsoft.Extensions.Logging.LogLevel logLevel, Microsoft.Extensions.Logging.EventId eventId, TState state, Exception? exception,
            Func<TState, Exception?, string> formatter)
        {
            lock (_events) _events.Add((_clock.Elapsed.TotalSeconds, formatter(state, exception)));
        }

        public int Count(string word)
        {
            lock (_events) return _events.Count(e => e.Message.Contains(word, StringComparison.Ordinal));
        }

        public List<(double At, string Message)> Events()
        {
            lock (_events) return [.. _events];
        }
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

    /// <summary>
    /// <c>store filter</c>: µs per query of filtered searches at 50 % / 10 % / 1 % selectivity (payload g = i mod 100,
    /// range filters) next to unfiltered ones on the same collection, and recall@10 against exact filtered search.
    /// The cases are timed in interleaved rounds (one pass over the queries each, in turn), so a shared machine's load
    /// drifts into every case alike; the ratio is the median of the per-round ratios. <c>--base</c> / <c>--queries</c>
    /// take real vectors (e.g. MiniLM .fvecs) instead of the synthetic set.
    /// </summary>
    private static int FilterCost(string[] args, string dir, int n, int dim, string spec, double exactSelectivity)
    {
        const int K = 10;
        string? basePath = Array.IndexOf(args, "--base") is int bi and >= 0 ? args[bi + 1] : null;
        string? queryPath = Array.IndexOf(args, "--queries") is int qi and >= 0 ? args[qi + 1] : null;
        float[] rows, queries;
        if (basePath is not null)
        {
            using var b = Adanns.Engine.IO.VectorFile.ReadVectors(basePath, n);
            using var qs = Adanns.Engine.IO.VectorFile.ReadVectors(queryPath ?? throw new ArgumentException("--base needs --queries"), Int(args, "--nq", 200));
            (n, dim, rows, queries) = (b.Count, b.Dimension, b.ToArray(), qs.ToArray());
            if (!args.Contains("--spec")) spec = "IVF128@64,NProbe16,Rerank" + dim;
        }
        else
        {
            using var data = SyntheticMatryoshka.Generate(new SyntheticMatryoshka.Options(Count: n, Dimension: dim, Queries: Int(args, "--nq", 200)));
            (rows, queries) = (data.Base.ToArray(), data.Queries.ToArray());
        }
        int NQ = queries.Length / dim;
        Console.WriteLine($"# store filter: n={n} dim={dim} nq={NQ} data={basePath ?? "synthetic"} spec=\"{spec}\" ExactFilterSelectivity={exactSelectivity} (1 search thread, {Environment.ProcessorCount} cores)");
        using var db = AdannsDatabase.Open(dir, new DatabaseOptions { CheckpointInterval = TimeSpan.FromHours(1), BackgroundMaintenance = false, ExactFilterSelectivity = exactSelectivity });
        var c = db.CreateCollection(new CollectionConfig("filter", dim, Metric.Cosine, spec));
        for (int s = 0; s < n; s += 1000)
        {
            int m = Math.Min(1000, n - s);
            c.UpsertAsync(Enumerable.Range(s, m).Select(i => new VectorRecord((ulong)i, rows.AsMemory(i * dim, dim),
                new Dictionary<string, PayloadValue> { ["g"] = i % 100 })).ToList()).GetAwaiter().GetResult();
        }
        c.WaitForIndexAsync().GetAwaiter().GetResult();
        (string Name, Filter? F, int Below)[] cases = [("unfiltered", null, 100), ("50%", Filter.Range("g", null, 49), 50), ("10%", Filter.Range("g", null, 9), 10), ("1%", Filter.Eq("g", 0), 1)];
        var norms = new float[n];
        for (int i = 0; i < n; i++) norms[i] = MathF.Sqrt(Adanns.Kernels.VectorMath.NormSquared(rows.AsSpan(i * dim, dim)));
        var recall = new double[cases.Length];
        var pathsOf = new string[cases.Length];
        for (int ci = 0; ci < cases.Length; ci++)
        {
            var (_, f, below) = cases[ci];
            // Exact filtered truth by brute force (cosine).
            double hits = 0;
            var paths = new Dictionary<SearchPath, int>();
            for (int q = 0; q < NQ; q++)
            {
                var qv = queries.AsMemory(q * dim, dim);
                var truth = Enumerable.Range(0, n).Where(i => i % 100 < below)
                    .Select(i => (i, d: -Adanns.Kernels.VectorMath.Dot(qv.Span, rows.AsSpan(i * dim, dim)) / norms[i]))
                    .OrderBy(t => t.d).Take(K).Select(t => (ulong)t.i).ToHashSet();
                var got = c.Search(qv.Span, K, null, f, false, out var path);
                paths[path] = paths.GetValueOrDefault(path) + 1;
                hits += got.Count(h => truth.Contains(h.Id.Number));
            }
            recall[ci] = hits / (NQ * K);
            pathsOf[ci] = string.Join(" ", paths.Select(p => $"{p.Key}={p.Value}"));
        }
        // Timed: interleaved rounds of one pass per case, for about --seconds in all.
        double seconds = Dbl(args, "--seconds", 8);
        var total = new double[cases.Length];
        var ratios = new List<double>[cases.Length];
        for (int ci = 0; ci < cases.Length; ci++) ratios[ci] = [];
        int rounds = 0;
        var all = Stopwatch.StartNew();
        while (all.Elapsed.TotalSeconds < seconds || rounds < 3)
        {
            var round = new double[cases.Length];
            for (int ci = 0; ci < cases.Length; ci++)
            {
                var f = cases[ci].F;
                long t0 = Stopwatch.GetTimestamp();
                for (int q = 0; q < NQ; q++) c.Search(queries.AsSpan(q * dim, dim), K, null, f, false);
                round[ci] = Stopwatch.GetElapsedTime(t0).TotalMicroseconds / NQ;
            }
            if (rounds++ == 0) continue; // warm-up
            for (int ci = 0; ci < cases.Length; ci++)
            {
                total[ci] += round[ci];
                ratios[ci].Add(round[ci] / round[0]);
            }
        }
        for (int ci = 0; ci < cases.Length; ci++)
        {
            ratios[ci].Sort();
            double us = total[ci] / (rounds - 1);
            Console.WriteLine($"{cases[ci].Name,-10}: {us,8:F1} us/query, {ratios[ci][ratios[ci].Count / 2]:F2}x unfiltered (median of {rounds - 1} rounds), recall@10 vs exact filtered {recall[ci]:F3}, paths {pathsOf[ci]}");
        }
        return 0;
    }

    private static int Memory(string dir, int n, int dim, string spec, int recordMb, int seconds, bool payload)
    {
        const int K = 10, NQ = 200;
        Console.WriteLine($"# store memory: n={n} dim={dim} spec=\"{spec}\" RecordMemoryBytes={recordMb} MiB, payload={payload}, {Environment.ProcessorCount} cores");
        var options = new DatabaseOptions { CheckpointInterval = TimeSpan.FromHours(1), BackgroundMaintenance = false, RecordMemoryBytes = (long)recordMb << 20 };
        using var db = AdannsDatabase.Open(dir, options);
        var c = db.CreateCollection(new CollectionConfig("mem", dim, Metric.Cosine, spec));
        using var proc = Process.GetCurrentProcess();
        var (heap0, ws0) = MemoryNow(proc);
        Console.WriteLine($"empty collection: GC heap {heap0 / 1e6:F1} MB, working set {ws0 / 1e6:F1} MB (record-store and log buffers included)");

        float[] queries;
        int[] truth;
        var sw = Stopwatch.StartNew();
        double ingest;
        using (var data = SyntheticMatryoshka.Generate(new SyntheticMatryoshka.Options(Count: n, Dimension: dim, Queries: NQ)))
        {
            queries = data.Queries.ToArray();
            truth = Adanns.Engine.Evaluation.GroundTruth.Compute(data.Base, queries, Metric.Cosine, K, threads: 0);
            sw.Restart();
            for (int s = 0; s < n; s += 1000)
            {
                int m = Math.Min(1000, n - s);
                var recs = new VectorRecord[m];
                for (int i = 0; i < m; i++)
                    recs[i] = new VectorRecord((ulong)(s + i), data.Base.Row(s + i).ToArray(),
                        payload ? new Dictionary<string, PayloadValue> { ["g"] = (s + i) % 10 } : null);
                c.UpsertAsync(recs).GetAwaiter().GetResult();
            }
            ingest = sw.Elapsed.TotalSeconds;
        }
        sw.Restart();
        c.WaitForIndexAsync().GetAwaiter().GetResult();
        double train = sw.Elapsed.TotalSeconds;
        var (heap1, ws1) = MemoryNow(proc); // the source data has left the process: what grew is the collection
        var mem = c.GetMemory();
        var st = c.GetStats();
        Console.WriteLine($"ingest {ingest:F1} s ({n / ingest:F0} vectors/s, 1 writer, batches of 1000), index training {train:F1} s");
        Console.WriteLine($"resident bytes/vector (estimate): index {mem.IndexBytesPerVector:F1} + rerank {mem.RerankBytesPerVector:F1} + record maps {mem.RecordMapBytesPerVector:F1} " +
            $"= {mem.ResidentBytesPerVector:F1} (D·4 = {dim * 4}); full vectors resident: {!mem.VectorsOnDisk}");
        Console.WriteLine($"after build: GC heap {heap1 / 1e6:F1} MB (+{(double)(heap1 - heap0) / n:F1} B/vector over the empty collection), " +
            $"working set {ws1 / 1e6:F1} MB; record log {st.RecordLogBytes / 1e6:F1} MB (in memory at most {recordMb} MiB); raw vectors {(long)n * dim * 4 / 1e6:F1} MB");

        var results = new long[NQ * K];
        for (int q = 0; q < NQ; q++)
        {
            var hits = c.Search(queries.AsSpan(q * dim, dim), K);
            for (int j = 0; j < K; j++) results[q * K + j] = j < hits.Length ? (long)hits[j].Id.Number : -1;
        }
        double recall = Adanns.Engine.Evaluation.RetrievalMetrics.RecallAtK(results, K, truth, K, K);
        long disk0 = c.RecordReadsFromDisk;
        var timer = Stopwatch.StartNew();
        int count = 0;
        while (timer.Elapsed < TimeSpan.FromSeconds(seconds))
        {
            c.Search(queries.AsSpan(count % NQ * dim, dim), K);
            count++;
        }
        double qps = count / timer.Elapsed.TotalSeconds;
        var (_, ws2) = MemoryNow(proc);
        Console.WriteLine($"search (k=10, index defaults, 1 thread): {qps:F0} QPS, recall@10 {recall:F3} vs exact; " +
            $"record reads from disk {(double)(c.RecordReadsFromDisk - disk0) / count:F0}/query; working set after search {ws2 / 1e6:F1} MB");
        return 0;
    }

    private static (long Heap, long WorkingSet) MemoryNow(Process proc)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        proc.Refresh();
        return (GC.GetTotalMemory(false), proc.WorkingSet64);
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
    private static double Dbl(string[] a, string name, double def) => Array.IndexOf(a, name) is int i and >= 0 && i + 1 < a.Length ? double.Parse(a[i + 1], System.Globalization.CultureInfo.InvariantCulture) : def;
    private static int[] Ints(string[] a, string name, int[] def) =>
        Array.IndexOf(a, name) is int i and >= 0 && i + 1 < a.Length ? a[i + 1].Split(',').Select(int.Parse).ToArray() : def;
}
