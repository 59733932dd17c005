using System.Diagnostics;
using Adanns.Engine.Clustering;
using Adanns.Engine.Indexes;
using Adanns.Engine.Quantization;

namespace Adanns.Bench;

/// <summary>
/// The engine's product-quantized indexes:
/// <list type="bullet">
/// <item><c>opq</c> — for each byte budget m: rigid OPQ (codes learned on all D dims) and AdANNS-OPQ (codes on the
/// prefix dim that recalls best on held-out base vectors), each measured without rerank and after reranking the
/// ADC top 100 at D. All flat (every code scanned), so the codes' quality is what is compared.</item>
/// <item><c>ivf-opq</c> — IVF at d_c plus OPQ codes, shortlist by ADC, rerank at D: the memory-lean search path.</item>
/// </list>
/// </summary>
internal static class PqMethods
{
    public static IEnumerable<OperatingPoint> FlatBudgets(BenchData data, (int[] Ids, int Stride) truth, BenchOptions o)
    {
        int D = data.Base.Dimension;
        string kind = o.PlainPq ? "PQ" : "OPQ";
        foreach (int m in o.PqBytes)
        {
            if (D % m != 0)
            {
                Console.WriteLine($"skipping {m} bytes: D = {D} is not divisible by it (rigid {kind} needs d % m == 0)");
                continue;
            }
            var rigid = IndexSpec.Parse($"{kind}{m}");
            foreach (var point in FlatPoints(data, truth, o, $"rigid-{kind.ToLowerInvariant()}", rigid, selection: null))
                yield return point;

            // AdANNS-OPQ: choose the prefix on a validation split of the base (never the benchmark queries).
            Console.WriteLine($"selecting the prefix for {m} bytes ...");
            var sw = Stopwatch.StartNew();
            var dims = o.PqDims?.Where(d => d % m == 0 && d <= D);
            var selection = PqPrefixSelection.Select(data.Base, rigid, data.Metric, dims,
                new PrefixSelectionOptions(HeldOut: 200, ValidationRows: Math.Min(20_000, data.Base.Count - 200), K: o.K, Build: Options(o)));
            Console.WriteLine($"  {string.Join("  ", selection.Candidates.Select(c => $"d={c.Dim}: {c.Recall:F3} ({c.TrainTime.TotalSeconds:F1} s)"))}  -> d={selection.Best.Dim} in {sw.Elapsed.TotalSeconds:F1} s");
            foreach (var point in FlatPoints(data, truth, o, $"adanns-{kind.ToLowerInvariant()}", selection.Spec, selection))
                yield return point;
        }
    }

    private static IEnumerable<OperatingPoint> FlatPoints(BenchData data, (int[] Ids, int Stride) truth, BenchOptions o, string method,
        IndexSpec spec, PrefixSelection? selection)
    {
        int D = data.Base.Dimension;
        var (index, build) = Build(data, spec, o);
        foreach (int rerank in new[] { 0, 100 })
        {
            var p = rerank == 0
                ? new SearchParams { Rerank = [] }
                : new SearchParams { Shortlist = Math.Max(rerank, o.K), Rerank = [new RerankStage(D, null)] };
            var parameters = new Dictionary<string, object>
            {
                ["bytes"] = index.CodeBytes, ["d"] = index.CodeDim, ["opq"] = spec.Opq, ["rerank"] = rerank,
            };
            if (selection is not null)
                parameters["selection"] = string.Join(" ", selection.Candidates.Select(c => $"{c.Dim}:{c.Recall:F3}"));
            yield return Measure(data, truth, o, method, index, p, build, parameters);
        }
    }

    public static IEnumerable<OperatingPoint> IvfOpq(BenchData data, (int[] Ids, int Stride) truth, BenchOptions o)
    {
        int D = data.Base.Dimension;
        int nlist = o.NList ?? IvfMethods.DefaultNList(data.Base.Count);
        int dc = o.CoarseDim ?? D;
        int m = o.PqBits == 4 ? 2 * o.PqBytes[0] : o.PqBytes[0]; // sub-quantizers: 4-bit codes spend the same bytes on twice as many
        int d = o.PqDims?[0] ?? D;
        string kind = (o.PlainPq ? "PQ" : "OPQ") + m + (o.PqBits == 4 ? "x4" : "");
        if (o.IndexRotation && o.Rotate) throw new ArgumentException("--index-rot and --rotate do not combine: the vectors would be rotated twice.");
        var spec = IndexSpec.Parse($"{(o.IndexRotation ? "Rot," : "")}IVF{nlist}@{dc},{kind}@{d}{(o.PqResidual ? ",Resid" : "")}{(o.Spill ? ",Spill" : "")}{(o.Prefix8 is { } p8 ? $",Prefix8@{p8}" : "")},Rerank{D}");
        var (index, build) = Build(data, spec, o);
        int[] shortlists = o.Shortlists ?? [50, 100, 200, 400];
        int[] nprobes = o.NProbes ?? [1, 2, 4, 8, 16, 32, 64, 128, 256];
        if (o.MaxFlops is { } budgets)
        {
            // Budgets: the index measures its own frontier on 200 of its vectors (never the benchmark's queries), then
            // each budget runs the best point that fits. Profiling time is reported apart from the build.
            var sw = Stopwatch.StartNew();
            var profile = index.Profile(new ProfileOptions
            {
                NProbes = nprobes.Where(x => x <= nlist).ToArray(), ShortlistMultiples = shortlists.Select(x => Math.Max(1, x / o.K)).ToArray(),
                Rerank = o.RerankStages(D), Threads = 1,
            });
            double profileSeconds = sw.Elapsed.TotalSeconds;
            Console.WriteLine($"profiled in {profileSeconds:F1} s: {profile.Points.Count} frontier points");
            foreach (double budget in budgets)
            {
                var p = new SearchParams { MaxFlops = budget };
                var chosen = index.Resolve(p, o.K);
                var point = profile.Points[chosen.BudgetPoint];
                var parameters = new Dictionary<string, object>
                {
                    ["nlist"] = nlist, ["dc"] = dc, ["bytes"] = index.CodeBytes, ["m"] = m, ["bits"] = o.PqBits, ["d"] = d, ["spill"] = spec.Spill,
                    ["prefix8"] = spec.Prefix8Dim ?? 0, ["rot"] = spec.Rotate ? "index" : o.Rotate ? "harness" : "none", ["max_flops"] = budget,
                    ["over_budget"] = chosen.OverBudget, ["nprobe"] = chosen.NProbe, ["shortlist"] = chosen.Shortlist,
                    ["profile_recall"] = point.Recall, ["profile_flops"] = point.FlopsPerQuery, ["profile_seconds"] = profileSeconds,
                };
                yield return Measure(data, truth, o, (o.Label ?? "ivf-opq") + "-budget", index, p, build, parameters);
            }
            yield break;
        }
        foreach (int sl in shortlists.Where(x => x >= o.K).Distinct().Order())
        foreach (int dcp in o.ProbeDims ?? [dc])
        {
            var plateau = new Plateau();
            foreach (int np in nprobes.Where(x => x <= nlist))
            {
                // --cascade DIM/KEEP[+…] adds MRL-funnel stages (rescore at DIM, keep KEEP) before the final rerank at D.
                RerankStage[] stages = o.RerankStages(D);
                var p = new SearchParams { NProbe = np, Shortlist = sl, Rerank = stages, CoarseDim = dcp };
                var parameters = new Dictionary<string, object>
                {
                    ["nlist"] = nlist, ["dc"] = dc, ["dc_probe"] = dcp, ["bytes"] = index.CodeBytes, ["m"] = m, ["bits"] = o.PqBits, ["d"] = d, ["opq"] = spec.Opq,
                    ["resid"] = spec.Residual, ["prefix8"] = spec.Prefix8Dim ?? 0, ["spill"] = spec.Spill, ["rot"] = spec.Rotate ? "index" : o.Rotate ? "harness" : "none",
                    ["shortlist"] = sl, ["nprobe"] = np, ["dr"] = D,
                };
                if (o.CascadeText is { } cc) parameters["cascade"] = cc;
                var point = Measure(data, truth, o, o.Label ?? "ivf-opq", index, p, build, parameters);
                yield return point;
                if (point.RecallAtK >= o.StopRecall || plateau.Reached(point.RecallAtK)) break;
            }
        }
    }

    internal static PqBuildOptions Options(BenchOptions o) => new(
        new KMeansOptions(MaxIterations: o.KMeansIterations, PointsPerCentroid: o.KMeansPoints, Threads: Math.Max(1, o.BuildThreads)),
        new OpqOptions(Iterations: o.OpqIterations, Threads: Math.Max(1, o.BuildThreads)),
        PqIterations: o.PqIterations, TrainingSample: o.PqTrain, Threads: Math.Max(1, o.BuildThreads));

    internal static (IvfIndex Index, double BuildSeconds) Build(BenchData data, IndexSpec spec, BenchOptions o,
        RaBitQRotation rqRotation = RaBitQRotation.Hadamard)
    {
        string? cached = CachePath(data, spec, o, rqRotation);
        if (cached is not null && File.Exists(cached) && File.Exists(cached + ".seconds"))
        {
            var loaded = IvfIndex.Load(cached);
            double seconds = double.Parse(File.ReadAllText(cached + ".seconds"), System.Globalization.CultureInfo.InvariantCulture);
            Console.WriteLine($"loaded {spec} from {cached} (built in {seconds:F2} s when cached)");
            return (loaded, seconds);
        }
        Console.WriteLine($"building {spec} ...");
        var sw = Stopwatch.StartNew();
        var index = IvfIndex.Build(data.Base, spec, data.Metric, Options(o) with { RaBitQRotation = rqRotation }, default, new ConsoleProgress(sw));
        double build = sw.Elapsed.TotalSeconds;
        Console.WriteLine($"built in {build:F2} s ({index.ResidentBytesPerVector:F1} bytes/vector resident, {index.RerankBytesPerVector:F0} bytes/vector rerank store)");
        if (cached is not null)
        {
            index.Save(cached);
            File.WriteAllText(cached + ".seconds", build.ToString("R", System.Globalization.CultureInfo.InvariantCulture));
        }
        return (index, build);
    }

    /// <summary>
    /// Where --index-cache keeps the index of this spec: the name carries everything that shapes the build (data file,
    /// size, rotation, metric, spec, training options), so a changed option never reuses a stale index.
    /// </summary>
    private static string? CachePath(BenchData data, IndexSpec spec, BenchOptions o, RaBitQRotation rqRotation)
    {
        if (o.IndexCache is null) return null;
        Directory.CreateDirectory(o.IndexCache);
        string key = string.Join("|", o.BasePath ?? data.Name, data.Base.Count, data.Base.Dimension, o.Rotate, data.Metric, spec,
            o.KMeansIterations, o.KMeansPoints, o.OpqIterations, o.PqIterations, o.PqTrain);
        if (spec.IsRaBitQ) key += $"|rq-rotation={rqRotation}"; // indexes cached before the structured rotation (dense P) are not reused
        var hash = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(key)))[..16];
        return Path.Combine(o.IndexCache, $"{data.Name}-{hash}.pqx");
    }

    /// <summary>Times one operating point of a codec-pipeline index (batch and one query per call); rows carry the
    /// vectors reranked per query (a bound-driven RaBitQ stage reranks fewer than its shortlist).</summary>
    internal static OperatingPoint Measure(BenchData data, (int[] Ids, int Stride) truth, BenchOptions o, string method,
        IvfIndex index, SearchParams p, double build, Dictionary<string, object> parameters)
    {
        int D = data.Base.Dimension, nq = data.QueryCount, k = o.K;
        SearchResults? results = null;
        SearchStats stats = default;
        double best = BatchTiming.BestSeconds(o.Repeats, nq, () => results = index.SearchBatch(data.Queries, k, p, o.Threads, out stats));
        var (recall1, recallK, acc) = Accuracy.Of(results!.Ids, data, truth, k);
        var (qpsSingle, p50, p99) = Latency.Measure(o, nq, D, (i, oi, os) => index.Search(data.Queries.AsSpan(i * D, D), k, oi, os, p, out _));
        parameters["reranked"] = stats.Queries > 0 ? (double)stats.VectorsReranked / stats.Queries : 0;
        var point = new OperatingPoint(data.Name, method, parameters, k, recall1, recallK, acc, stats.FlopsPerQuery,
            nq / best, qpsSingle, p50, p99, build, index.ResidentBytesPerVector, o.Threads, data.Base.Count, D, nq);
        Report.Print(point);
        return point;
    }
}
