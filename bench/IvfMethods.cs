using System.Diagnostics;
using Adanns.Engine;
using Adanns.Engine.Clustering;
using Adanns.Engine.Evaluation;
using Adanns.Engine.Indexes;

namespace Adanns.Bench;

/// <summary>
/// The engine's IVF family, each built once and swept over its query-time parameters:
/// <list type="bullet">
/// <item><c>ivf</c> — rigid IVF: k-means, probing and scanning at the full D (float32 scan store), no rerank.</item>
/// <item><c>adanns-ivf</c> — AdANNS-IVF: clusters at d_c, scans at d_s (8-bit scan store unless --no-sq8),
/// reranks a shortlist at D. One index is built with a scan store of max(--ds) dims and d_s is lowered at
/// query time, as AdANNS-IVF-D does.</item>
/// <item><c>mrl-funnel</c> — MRL adaptive retrieval: every vector scanned at a low dim (one list), a shortlist
/// reranked at D.</item>
/// </list>
/// </summary>
internal static class IvfMethods
{
    public static IEnumerable<OperatingPoint> Rigid(BenchData data, (int[] Ids, int Stride) truth, BenchOptions o)
    {
        int nlist = o.NList ?? DefaultNList(data.Base.Count);
        var spec = IndexSpec.Parse($"IVF{nlist}");
        var (index, build) = Build(data, spec, o, scanStore: null);
        var plateau = new Plateau();
        foreach (int np in NProbes(nlist, o))
        {
            var p = new SearchParams { NProbe = np };
            var point = Measure(data, truth, o, "ivf", index, p, build,
                new() { ["nlist"] = nlist, ["nprobe"] = np, ["d"] = data.Base.Dimension });
            yield return point;
            if (point.RecallAtK >= o.StopRecall || plateau.Reached(point.RecallAtK)) yield break;
        }
    }

    public static IEnumerable<OperatingPoint> Adanns(BenchData data, (int[] Ids, int Stride) truth, BenchOptions o)
    {
        int D = data.Base.Dimension;
        int nlist = o.NList ?? DefaultNList(data.Base.Count);
        int[] dss = (o.ScanDims ?? DefaultScanDims(D)).Where(x => x <= D).Distinct().Order().ToArray();
        int dc = o.CoarseDim ?? D; // clustering at D by default: the decoupled, shorter scan dim is the main saving
        string sq8 = o.Sq8 ? ",SQ8" : "";
        var spec = IndexSpec.Parse($"IVF{nlist}@{dc},Scan{dss[^1]}{sq8},Rerank{D}");
        var (index, build) = Build(data, spec, o, scanStore: dss[^1]);
        int[] shortlists = o.Shortlists ?? [Math.Max(o.K, 50), 100, 200];
        foreach (int ds in dss)
            foreach (int sl in shortlists.Where(x => x >= o.K).Distinct().Order())
            {
                var plateau = new Plateau();
                foreach (int np in NProbes(nlist, o))
                {
                    var p = new SearchParams { NProbe = np, ScanDim = ds, Shortlist = sl, Rerank = Stages(o, D) };
                    var parameters = new Dictionary<string, object> { ["nlist"] = nlist, ["dc"] = dc, ["ds"] = ds, ["shortlist"] = sl, ["nprobe"] = np, ["dr"] = D, ["sq8"] = o.Sq8 };
                    if (o.CascadeText is { } c) parameters["cascade"] = c;
                    var point = Measure(data, truth, o, "adanns-ivf", index, p, build, parameters);
                    yield return point;
                    if (point.RecallAtK >= o.StopRecall || plateau.Reached(point.RecallAtK)) break;
                }
            }
    }

    public static IEnumerable<OperatingPoint> Funnel(BenchData data, (int[] Ids, int Stride) truth, BenchOptions o)
    {
        int D = data.Base.Dimension;
        int[] dss = (o.ScanDims ?? DefaultScanDims(D)).Where(x => x <= D).Distinct().Order().ToArray();
        string sq8 = o.Sq8 ? ",SQ8" : "";
        // One list holding every vector: the scan is exhaustive at d_s, the shortlist reranked at D.
        var spec = IndexSpec.Parse($"IVF1@{dss[0]},Scan{dss[^1]}{sq8},Rerank{D}");
        var (index, build) = Build(data, spec, o, scanStore: dss[^1]);
        int[] shortlists = o.Shortlists ?? [50, 100, 200, 400];
        foreach (int ds in dss)
            foreach (int sl in shortlists.Where(x => x >= o.K).Distinct().Order())
            {
                var p = new SearchParams { NProbe = 1, ScanDim = ds, Shortlist = sl };
                var point = Measure(data, truth, o, "mrl-funnel", index, p, build,
                    new() { ["ds"] = ds, ["shortlist"] = sl, ["dr"] = D, ["sq8"] = o.Sq8 });
                yield return point;
                if (point.RecallAtK >= o.StopRecall) break;
            }
    }

    /// <summary>Rerank stages: the optional --cascade stages, then the final rerank at D.</summary>
    private static RerankStage[] Stages(BenchOptions o, int D) => o.RerankStages(D);

    /// <summary>≈ 4·√N rounded to a power of two: the usual IVF sizing (lists of a few dozen to a few hundred).</summary>
    internal static int DefaultNList(int n) => Math.Max(1, (int)Math.Pow(2, Math.Round(Math.Log2(4 * Math.Sqrt(n)))));

    private static int[] DefaultScanDims(int D) => new[] { D / 8, D / 4, D / 3 }.Where(x => x >= 8).Select(x => x / 8 * 8).Distinct().ToArray();

    /// <summary>--nprobes (those ≤ nlist), or 1, 2, 4, … and nlist.</summary>
    internal static IEnumerable<int> NProbes(int nlist, BenchOptions o)
    {
        if (o.NProbes is { } list)
        {
            foreach (int np in list.Where(x => x <= nlist)) yield return np;
            yield break;
        }
        for (int np = 1; np < nlist; np *= 2) yield return np;
        yield return nlist;
    }

    private static (IvfIndex Index, double BuildSeconds) Build(BenchData data, IndexSpec spec, BenchOptions o, int? scanStore)
    {
        Console.WriteLine($"building {spec} ...");
        var sw = Stopwatch.StartNew();
        var options = new IvfBuildOptions(new KMeansOptions(MaxIterations: o.KMeansIterations, PointsPerCentroid: o.KMeansPoints),
            Threads: Math.Max(1, o.BuildThreads), ScanStoreDims: scanStore);
        var progress = new ConsoleProgress(sw);
        var index = IvfIndex.Build(data.Base, spec, data.Metric, options.ToPipelineOptions(), default, progress);
        double build = sw.Elapsed.TotalSeconds;
        Console.WriteLine($"built in {build:F2} s ({(index.ResidentBytesPerVector + index.RerankBytesPerVector):F0} bytes/vector resident)");
        return (index, build);
    }

    private static OperatingPoint Measure(BenchData data, (int[] Ids, int Stride) truth, BenchOptions o, string method,
        IvfIndex index, SearchParams p, double build, Dictionary<string, object> parameters)
    {
        int D = data.Base.Dimension, nq = data.QueryCount, k = o.K;
        var ids = new long[(long)nq * k];
        var scores = new float[(long)nq * k];
        SearchStats stats = default;
        double best = BatchTiming.BestSeconds(o.Repeats, nq, () => index.SearchBatch(data.Queries, k, ids, scores, p, null, o.Threads, out stats));
        var (recall1, recallK, acc) = Accuracy.Of(ids, data, truth, k);
        var (qpsSingle, p50, p99) = Latency.Measure(o, nq, D, (i, oi, os) => index.Search(data.Queries.AsSpan(i * D, D), k, oi, os, p, out _));
        var point = new OperatingPoint(data.Name, method, parameters, k, recall1, recallK, acc, stats.FlopsPerQuery,
            nq / best, qpsSingle, p50, p99, build, (index.ResidentBytesPerVector + index.RerankBytesPerVector), o.Threads, data.Base.Count, D, nq);
        Report.Print(point);
        return point;
    }
}

/// <summary>Times a batch search: one warm-up round (JIT, caches), then the best of the timed rounds.</summary>
internal static class BatchTiming
{
    /// <summary>Best wall seconds over <paramref name="repeats"/> rounds; also prints the CPU time per query of the best
    /// round, since on a shared machine wall time includes waiting for a core and CPU time does not.</summary>
    public static double BestSeconds(int repeats, int queries, Action round)
    {
        double best = double.MaxValue, bestCpu = double.MaxValue;
        var process = Process.GetCurrentProcess();
        // Warm-up rounds for at least half a second: the JIT promotes hot methods to optimized code only after a delay,
        // and a single fast round (a few ms) would leave the first point of a sweep timed partly on unoptimized code.
        // A full blocking collection first: after a build or load, a background GC still marking hundreds of MB would
        // share the core and the caches with the timed rounds.
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        var warm = Stopwatch.StartNew();
        for (int w = 0; w < 50 && (w == 0 || warm.Elapsed.TotalSeconds < 0.5); w++) round();
        for (int r = 0; r < repeats; r++)
        {
            process.Refresh();
            var cpu0 = process.TotalProcessorTime;
            var sw = Stopwatch.StartNew();
            round();
            double wall = sw.Elapsed.TotalSeconds;
            process.Refresh();
            best = Math.Min(best, wall);
            bestCpu = Math.Min(bestCpu, (process.TotalProcessorTime - cpu0).TotalSeconds);
        }
        Console.WriteLine($"    (cpu {bestCpu * 1e6 / queries:F0} us/query, wall {best * 1e6 / queries:F0} us/query)");
        return best;
    }
}

/// <summary>Prints build progress on one line per phase step (training and adding can take minutes on large sets).</summary>
internal sealed class ConsoleProgress(Stopwatch clock) : IProgress<IvfBuildProgress>
{
    private string _last = "";

    public void Report(IvfBuildProgress value)
    {
        // Adding reports every chunk; print only each 10% so logs stay short.
        string key = value.Phase == "add" ? $"add {(int)(value.Fraction * 10)}" : $"{value.Phase} {value.Fraction:F2}";
        if (key == _last) return;
        _last = key;
        Console.WriteLine($"  [{clock.Elapsed.TotalSeconds,7:F1} s] {value.Phase} {value.Fraction * 100,5:F1}% {value.Detail}");
    }
}

/// <summary>recall@1, recall@k and (when labels exist) 1-NN accuracy of one sweep point's results.</summary>
internal static class Accuracy
{
    public static (double Recall1, double RecallK, double? OneNn) Of(long[] ids, BenchData data, (int[] Ids, int Stride) truth, int k)
    {
        int nq = data.QueryCount;
        double recallK = RetrievalMetrics.RecallAtK(ids, k, truth.Ids, truth.Stride, k);
        double recall1 = RetrievalMetrics.RecallAtK(ids, k, truth.Ids, truth.Stride, 1);
        double? acc = data.BaseLabels is not null && data.QueryLabels is not null
            ? RetrievalMetrics.OneNnAccuracy(ids, k, data.BaseLabels, data.QueryLabels.AsSpan(0, nq))
            : null;
        return (recall1, recallK, acc);
    }
}

/// <summary>Stops a sweep once two more steps have not raised recall by 0.001: the rest would only cost time.</summary>
internal sealed class Plateau
{
    private double _best = -1;
    private int _flat;

    public bool Reached(double recall)
    {
        if (recall > _best + 0.001) { _best = recall; _flat = 0; return false; }
        return ++_flat >= 2;
    }
}

/// <summary>One query per call, for latency percentiles (the best of the repeats for QPS).</summary>
internal static class Latency
{
    public delegate void SearchOne(int query, Span<long> ids, Span<float> scores);

    public static (double? Qps, double? P50, double? P99) Measure(BenchOptions o, int nq, int D, SearchOne search)
    {
        int m = Math.Min(o.SingleQueries, nq);
        if (m == 0) return (null, null, null);
        var ids = new long[o.K];
        var scores = new float[o.K];
        var lat = new double[m];
        double bestTotal = double.MaxValue;
        for (int r = -1; r < o.Repeats; r++) // round −1 is a warm-up
        {
            long t0 = Stopwatch.GetTimestamp();
            for (int i = 0; i < m; i++)
            {
                long ti = Stopwatch.GetTimestamp();
                search(i, ids, scores);
                lat[i] = Stopwatch.GetElapsedTime(ti).TotalMicroseconds;
            }
            if (r >= 0) bestTotal = Math.Min(bestTotal, Stopwatch.GetElapsedTime(t0).TotalSeconds);
        }
        Array.Sort(lat);
        return (m / bestTotal, Percentile(lat, 0.50), Percentile(lat, 0.99));
    }

    public static double Percentile(double[] sorted, double p) =>
        sorted[Math.Min(sorted.Length - 1, Math.Max(0, (int)Math.Ceiling(p * sorted.Length) - 1))];
}
