using System.Diagnostics;
using Adanns.Engine.Evaluation;
using Adanns.Engine.Indexes;

namespace Adanns.Bench;

/// <summary>Exact flat search at several Matryoshka prefix dims: the baseline every method is compared with.</summary>
internal static class FlatMethod
{
    public static IEnumerable<OperatingPoint> Run(BenchData data, (int[] Ids, int Stride) truth, BenchOptions o)
    {
        var sw = Stopwatch.StartNew();
        var index = new FlatIndex(data.Base, data.Metric);
        double build = sw.Elapsed.TotalSeconds;
        int D = data.Base.Dimension, n = data.Base.Count, nq = data.QueryCount, k = o.K;
        int[] dims = o.Dims ?? DefaultDims(D);
        foreach (int d in dims.Where(x => x <= D).Distinct().Order())
        {
            // Batch: every query in one call, best of the repeats.
            SearchResults? batch = null;
            double best = double.MaxValue;
            // Round −1 warms the JIT (tiered compilation) and caches; it is not counted.
            for (int r = -1; r < o.Repeats; r++)
            {
                sw.Restart();
                batch = index.SearchBatch(data.Queries, D, k, d, o.Threads);
                if (r >= 0) best = Math.Min(best, sw.Elapsed.TotalSeconds);
            }
            var (recall1, recallK, acc) = Accuracy.Of(batch!.Ids, data, truth, k);

            // One query per call, for latency.
            var (qpsSingle, p50, p99) = TimeSingle(index, data, d, o);
            var point = new OperatingPoint(
                data.Name, "flat", new Dictionary<string, object> { ["d"] = d }, k,
                recall1, recallK, acc, (double)n * d, nq / best, qpsSingle, p50, p99, build,
                4.0 * D, o.Threads, n, D, nq);
            Report.Print(point);
            yield return point;
        }
    }

    internal static int[] DefaultDims(int D) => new[] { D / 8, D / 4, D / 2, D }.Where(x => x > 0).ToArray();

    private static (double? Qps, double? P50, double? P99) TimeSingle(FlatIndex index, BenchData data, int d, BenchOptions o)
    {
        int D = data.Base.Dimension;
        return Latency.Measure(o, data.QueryCount, D, (i, ids, scores) => index.Search(data.Queries.AsSpan(i * D, D), o.K, ids, scores, d, o.Threads));
    }
}
