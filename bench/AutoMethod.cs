using System.Diagnostics;
using Adanns.Engine.Indexes;

namespace Adanns.Bench;

/// <summary>
/// <c>auto</c>: the index tunes itself (<see cref="IndexTuner"/>) on the base vectors alone, once, for every
/// <c>--target-recall</c> (the structure scored on all of them, the frontier refined near each; the highest is the
/// index's default); then one row per target, searched with <see cref="SearchParams.TargetRecall"/> and measured
/// on the benchmark's queries (which the tuner never saw). build_seconds includes the tuning.
/// </summary>
internal static class AutoMethod
{
    public static IEnumerable<OperatingPoint> Run(BenchData data, (int[] Ids, int Stride) truth, BenchOptions o)
    {
        double[] targets = o.TargetRecalls ?? [0.95];
        int D = data.Base.Dimension, nq = data.QueryCount, k = o.K;
        Console.WriteLine($"tuning for recall@{k} {string.Join(", ", targets.Order().Select(t => t.ToString("F3")))} on {(data.TuneQueries is { } tq ? $"{tq.Count} tuning queries (not the test queries)" : "held-out base vectors")} ...");
        var sw = Stopwatch.StartNew();
        var (index, report) = IndexTuner.Build(data.Base, data.Metric, new TunerOptions(TargetRecall: targets.Max(), K: k, Threads: Math.Max(1, o.BuildThreads), Queries: data.TuneQueries) { Targets = targets, Trace = line => Console.WriteLine($"  [{sw.Elapsed.TotalSeconds,6:F1} s] {line}") });
        double build = sw.Elapsed.TotalSeconds;
        Console.WriteLine($"tuned in {build:F1} s: {report.Spec} (rotate: {report.Rotate}; D/4-prefix recall raw {report.PrefixRecallRaw:F3}, rotated {report.PrefixRecallRotated:F3})");
        Console.WriteLine($"  choice on the sample {report.ChooseSeconds:F1} s, final build {report.FinalBuildSeconds:F1} s, final profile {report.FinalProfileSeconds:F1} s");
        foreach (var c in report.Candidates)
            Console.WriteLine(c.Outpaced
                ? $"  candidate {c.Spec}: stopped at recall {c.RecallAtPoint:F3}, past twice the time of a faster candidate at the target, {c.BuildSeconds:F1} s"
                : $"  candidate {c.Spec}: {c.MicrosAtTarget:F1} us/query at the target{(targets.Length > 1 ? "s (geometric mean)" : "")} on the sample (recall {c.RecallAtPoint:F3}), {c.BuildSeconds:F1} s");
        using (index)
        {
            foreach (double target in targets.Order())
            {
                var p = new SearchParams { TargetRecall = target };
                var chosen = index.Resolve(p, k);
                SearchResults? results = null;
                SearchStats stats = default;
                double best = BatchTiming.BestSeconds(o.Repeats, nq, () => results = index.SearchBatch(data.Queries, k, p, null, o.Threads, out stats));
                var (recall1, recallK, acc) = Accuracy.Of(results!.Ids, data, truth, k);
                var (qpsSingle, p50, p99) = Latency.Measure(o, nq, D, (i, oi, os) => index.Search(data.Queries.AsSpan(i * D, D), k, oi, os, p, null, out _));
                var parameters = new Dictionary<string, object>
                {
                    ["target_recall"] = target, ["spec"] = report.Spec.ToString(), ["predicted_recall"] = chosen.PredictedRecall ?? double.NaN,
                    ["nprobe"] = chosen.NProbe, ["shortlist"] = chosen.Shortlist, ["rotate"] = report.Rotate,
                    ["tune_queries"] = data.TuneQueries?.Count ?? 0,
                };
                var point = new OperatingPoint(data.Name, "auto", parameters, k, recall1, recallK, acc, stats.FlopsPerQuery,
                    nq / best, qpsSingle, p50, p99, build, index.ResidentBytesPerVector + index.RerankBytesPerVector, o.Threads, data.Base.Count, D, nq);
                Report.Print(point);
                yield return point;
            }
        }
    }
}
