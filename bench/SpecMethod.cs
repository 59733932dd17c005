using System.Diagnostics;
using Adanns.Engine.Indexes;

namespace Adanns.Bench;

/// <summary>
/// <c>spec</c>: any pipeline the spec grammar composes (<c>--spec</c>), built once through <see cref="VectorIndex.Build(Engine.VectorSet, string, Engine.Metric, VectorIndexBuildOptions?)"/>
/// and swept over <c>--shortlists</c> × <c>--nprobes</c> with the spec's own rerank stages. Rows are named by
/// <c>--label</c> (default <c>spec</c>) and carry the spec string.
/// </summary>
internal static class SpecMethod
{
    public static IEnumerable<OperatingPoint> Run(BenchData data, (int[] Ids, int Stride) truth, BenchOptions o)
    {
        string text = o.Spec ?? throw new ArgumentException("--methods spec needs --spec SPEC.");
        var spec = IndexSpec.Parse(text);
        int D = data.Base.Dimension, nq = data.QueryCount, k = o.K;
        Console.WriteLine($"building {spec} ...");
        var sw = Stopwatch.StartNew();
        using var index = VectorIndex.Build(data.Base, spec, data.Metric, new VectorIndexBuildOptions(Threads: Math.Max(1, o.BuildThreads)));
        double build = sw.Elapsed.TotalSeconds;
        Console.WriteLine($"built in {build:F1} s ({index.GetType().Name}); {index.ResidentBytesPerVector:F0} B/vector resident");
        string method = o.Label ?? "spec";
        foreach (int shortlist in o.Shortlists ?? [spec.Shortlist ?? IndexSpec.DefaultShortlist])
            foreach (int nprobe in IvfMethods.NProbes(index.NList, o))
            {
                var p = new SearchParams { NProbe = nprobe, Shortlist = Math.Max(shortlist, k) };
                SearchResults? results = null;
                SearchStats stats = default;
                double best = BatchTiming.BestSeconds(o.Repeats, nq, () => results = index.SearchBatch(data.Queries, k, p, null, o.Threads, out stats));
                var (recall1, recallK, acc) = Accuracy.Of(results!.Ids, data, truth, k);
                var (qpsSingle, p50, p99) = Latency.Measure(o, nq, D, (i, oi, os) => index.Search(data.Queries.AsSpan(i * D, D), k, oi, os, p, null, out _));
                var parameters = new Dictionary<string, object> { ["spec"] = spec.ToString(), ["nprobe"] = nprobe, ["shortlist"] = shortlist,
                    ["reranked"] = stats.Queries > 0 ? (double)stats.VectorsReranked / stats.Queries : 0 };
                var point = new OperatingPoint(data.Name, method, parameters, k, recall1, recallK, acc, stats.FlopsPerQuery,
                    nq / best, qpsSingle, p50, p99, build, index.ResidentBytesPerVector + index.RerankBytesPerVector, o.Threads, data.Base.Count, D, nq);
                Report.Print(point);
                yield return point;
            }
    }
}
