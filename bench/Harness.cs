using System.Diagnostics;
using Adanns.Engine;
using Adanns.Engine.Data;
using Adanns.Engine.Evaluation;
using Adanns.Engine.Indexes;
using Adanns.Engine.IO;
using Adanns.Engine.Transforms;

namespace Adanns.Bench;

/// <summary>Loads a data set, builds each method, sweeps its parameters and reports every operating point.</summary>
internal static class Harness
{
    public static int Run(BenchOptions o)
    {
        using var data = LoadData(o);
        Console.WriteLine($"data: {data.Name}  n={data.Base.Count} dim={data.Base.Dimension} nq={data.QueryCount} metric={data.Metric.ToShortName()} k={o.K} threads={o.Threads} simd={Adanns.Kernels.SimdInfo.Describe()}");

        if (o.Rotate)
        {
            var sw = Stopwatch.StartNew();
            var rot = RotationTransform.Learn(data.Base);
            data.ReplaceVectors(rot.Apply(data.Base), rot);
            Console.WriteLine($"rotation learned and applied in {sw.Elapsed.TotalSeconds:F2} s");
        }

        var truth = EnsureGroundTruth(data, o);
        var points = new List<OperatingPoint>();
        Report.PrintHeader(o.K);
        foreach (var method in o.Methods)
        {
            switch (method)
            {
                case "flat":
                    points.AddRange(FlatMethod.Run(data, truth, o));
                    break;
                case "usearch": points.AddRange(UsearchMethod.Run(data, truth, o)); break;
                case "ivf": points.AddRange(IvfMethods.Rigid(data, truth, o)); break;
                case "adanns-ivf": points.AddRange(IvfMethods.Adanns(data, truth, o)); break;
                case "mrl-funnel": points.AddRange(IvfMethods.Funnel(data, truth, o)); break;
                case "opq": points.AddRange(PqMethods.FlatBudgets(data, truth, o)); break;
                case "ivf-opq": points.AddRange(PqMethods.IvfOpq(data, truth, o)); break;
                case "auto": points.AddRange(AutoMethod.Run(data, truth, o)); break;
                case "spec": points.AddRange(SpecMethod.Run(data, truth, o)); break;
                case "ivf-rq": points.AddRange(RqMethod.Run(data, truth, o)); break;
                default:
                    throw new ArgumentException($"Unknown method '{method}'.");
            }
        }
        Report.PrintSummary(points);
        if (o.OutPath is not null)
        {
            Report.Append(o.OutPath, points);
            Console.WriteLine($"wrote {points.Count} operating points to {o.OutPath}");
        }
        return 0;
    }

    private static BenchData LoadData(BenchOptions o)
    {
        if (o.BasePath is null)
        {
            // Many overlapping clusters, so that neighbours are not trivially the members of one cluster and every
            // method's knobs matter (the generator's defaults make an easier set).
            // Tuning queries (auto's query log) are drawn after the test queries from the same stream, so the test
            // queries are the same with or without them and never among them.
            int nq = o.MaxQueries ?? 500;
            int extra = o.TuneQueries switch
            {
                null => 1000,
                "none" => 0,
                var t when int.TryParse(t, out int n) && n >= 0 => n,
                var t => throw new ArgumentException($"--tune-queries with the built-in data needs a count or 'none' (got '{t}')."),
            };
            var ds = SyntheticMatryoshka.Generate(new SyntheticMatryoshka.Options(o.SyntheticCount, o.SyntheticDim, Clusters: 400, Queries: nq + extra, Noise: 1.0f));
            var all = ds.Queries.ToArray();
            VectorSet? tune = null;
            if (extra > 0)
            {
                tune = new VectorSet(o.SyntheticDim, extra);
                for (int i = nq; i < nq + extra; i++) tune.Add(ds.Queries.Row(i));
            }
            ds.Queries.Dispose();
            return new BenchData(o.DatasetName ?? $"synthetic-mrl-{o.SyntheticCount}x{o.SyntheticDim}", ds.Base, all[..(nq * o.SyntheticDim)], o.MetricGiven ? o.Metric : Metric.Cosine)
            {
                BaseLabels = ds.BaseLabels,
                QueryLabels = ds.QueryLabels[..nq],
                TuneQueries = tune,
            };
        }
        var sw = Stopwatch.StartNew();
        var baseSet = VectorFile.ReadVectors(o.BasePath, o.MaxBase);
        using var querySet = VectorFile.ReadVectors(o.QueriesPath!, o.MaxQueries);
        if (querySet.Dimension != baseSet.Dimension)
            throw new ArgumentException($"Queries have {querySet.Dimension} dims but the base has {baseSet.Dimension}.");
        string name = o.DatasetName ?? Path.GetFileNameWithoutExtension(o.BasePath.Split('#')[0]);
        var data = new BenchData(name, baseSet, querySet.ToArray(), o.Metric);
        if (o.TuneQueries is { } tq && tq != "none")
        {
            if (int.TryParse(tq, out _)) throw new ArgumentException("--tune-queries with --base needs a vector file (a count only works with the built-in data).");
            data.TuneQueries = VectorFile.ReadVectors(tq, null);
            if (data.TuneQueries.Dimension != baseSet.Dimension)
                throw new ArgumentException($"--tune-queries: {data.TuneQueries.Dimension} dims but the base has {baseSet.Dimension}.");
        }
        if (o.BaseLabelsPath is not null)
            data.BaseLabels = ReadLabels(o.BaseLabelsPath, o.MaxBase);
        if (o.QueryLabelsPath is not null)
            data.QueryLabels = ReadLabels(o.QueryLabelsPath, o.MaxQueries);
        Console.WriteLine($"loaded in {sw.Elapsed.TotalSeconds:F2} s");
        return data;
    }

    private static int[] ReadLabels(string path, int? limit)
    {
        var m = VectorFile.ReadInts(path, limit);
        if (m.Cols != 1)
            throw new ArgumentException($"Label file {path} has {m.Cols} columns; expected one label per row.");
        return m.Data;
    }

    /// <summary>Exact top-k ids per query (nq×stride): read from --gt, or computed with flat search at full D.</summary>
    private static (int[] Ids, int Stride) EnsureGroundTruth(BenchData data, BenchOptions o)
    {
        // A truncated base invalidates a ground-truth file made for the whole base. A rotation does not: it
        // preserves inner products, L2 distances and norms, so the exact neighbours stay the same.
        if (o.GroundTruthPath is not null && o.MaxBase is null)
        {
            var gt = VectorFile.ReadInts(o.GroundTruthPath, data.QueryCount);
            if (gt.Rows < data.QueryCount)
                throw new ArgumentException($"Ground truth {o.GroundTruthPath} has {gt.Rows} rows for {data.QueryCount} queries.");
            if (gt.Cols < o.K)
                throw new ArgumentException($"Ground truth {o.GroundTruthPath} holds {gt.Cols} neighbours per query; k={o.K} needs more.");
            return (gt.Data, gt.Cols);
        }
        var sw = Stopwatch.StartNew();
        int depth = Math.Max(o.K, Math.Min(GroundTruth.DefaultDepth, data.Base.Count));
        string? cache = CachePath(o, data, depth);
        if (cache is not null && File.Exists(cache))
        {
            var cached = VectorFile.ReadInts(cache);
            if (cached.Rows == data.QueryCount && cached.Cols == depth)
            {
                Console.WriteLine($"ground truth (top-{depth}) read from cache {cache}");
                return (cached.Data, depth);
            }
        }
        Console.WriteLine($"computing exact ground truth (top-{depth}) for {data.QueryCount} queries over {data.Base.Count} rows ...");
        var ids = GroundTruth.Compute(data.Base, data.Queries, data.Metric, depth, threads: 0);
        Console.WriteLine($"ground truth computed in {sw.Elapsed.TotalSeconds:F2} s");
        if (cache is not null)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(cache)!);
            VectorFile.WriteInts(cache, new IntMatrix(data.QueryCount, depth, ids));
            Console.WriteLine($"ground truth cached in {cache}");
        }
        return (ids, depth);
    }

    /// <summary>
    /// Where computed ground truth for file-based data is cached: keyed by both files' full path, size and
    /// modification time, the metric, the row limits and the depth, so any change recomputes it.
    /// Synthetic data is cheap to recompute and is not cached.
    /// </summary>
    private static string? CachePath(BenchOptions o, BenchData data, int depth)
    {
        if (o.BasePath is null || o.QueriesPath is null) return null;
        static string Stamp(string path)
        {
            string file = path.Split('#')[0];
            var info = new FileInfo(file);
            return $"{info.FullName}|{(info.Exists ? info.Length : -1)}|{(info.Exists ? info.LastWriteTimeUtc.Ticks : 0)}";
        }
        string key = $"{Stamp(o.BasePath)}|{o.BasePath}|{Stamp(o.QueriesPath)}|{o.QueriesPath}|{data.Metric}|{o.MaxBase}|{o.MaxQueries}|{depth}";
        var hash = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(key)))[..16];
        return Path.Combine(o.GroundTruthCache, $"gt-{hash}.ivecs");
    }
}

/// <summary>The data a run works on. Owns the base set (and anything listed in <see cref="Owned"/>).</summary>
internal sealed class BenchData(string name, VectorSet baseSet, float[] queries, Metric metric) : IDisposable
{
    public string Name { get; } = name;
    public VectorSet Base { get; private set; } = baseSet;
    public float[] Queries { get; private set; } = queries;
    public Metric Metric { get; } = metric;
    public int[]? BaseLabels { get; set; }
    public int[]? QueryLabels { get; set; }
    public IDisposable? Owned { get; set; }

    /// <summary>Auto's tuning queries (--tune-queries; owned), or null: never the test queries.</summary>
    public VectorSet? TuneQueries { get; set; }

    public int QueryCount => Queries.Length / Base.Dimension;

    /// <summary>Swaps in rotated base rows and rotates the queries the same way.</summary>
    public void ReplaceVectors(VectorSet rotatedBase, RotationTransform rotation)
    {
        Base.Dispose();
        Base = rotatedBase;
        var q = new float[Queries.Length];
        rotation.ApplyBatch(Queries, q);
        Queries = q;
        if (TuneQueries is { } t)
        {
            var rotated = rotation.Apply(t);
            t.Dispose();
            TuneQueries = rotated;
        }
    }

    public void Dispose()
    {
        Base.Dispose();
        Owned?.Dispose();
        TuneQueries?.Dispose();
    }
}
