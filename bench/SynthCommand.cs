using System.Diagnostics;
using System.Globalization;
using Adanns.Engine;
using Adanns.Engine.Data;
using Adanns.Engine.Evaluation;
using Adanns.Engine.IO;

namespace Adanns.Bench;

/// <summary>
/// <c>gen-synth</c>: writes a seeded synthetic Matryoshka data set to files (base.fvecs, query.fvecs,
/// groundtruth.ivecs with the exact top-100, base_labels.ivecs, query_labels.ivecs) so that peers outside the
/// process (FAISS, hnswlib) can run on exactly the same data.
/// </summary>
internal static class SynthCommand
{
    public const string Help = """
        Usage: dotnet run -c Release --project bench -- gen-synth --n N --dim D --out DIR
                   [--queries 1000] [--clusters 1000] [--noise 1.0] [--seed 42] [--metric cosine]
        Writes DIR/base.fvecs, query.fvecs, groundtruth.ivecs (exact top-100 under --metric),
        base_labels.ivecs and query_labels.ivecs.
        """;

    public static int Run(string[] args)
    {
        int n = 1_000_000, dim = 256, queries = 1000, clusters = 1000, seed = 42;
        float noise = 1.0f;
        string? outDir = null;
        var metric = Metric.Cosine;
        for (int i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"Option {args[i]} needs a value.");
            int Int() => int.TryParse(Value(), NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) && v > 0
                ? v : throw new ArgumentException($"Option {args[i - 1]} needs a positive integer.");
            switch (args[i])
            {
                case "--n": n = Int(); break;
                case "--dim": dim = Int(); break;
                case "--queries": queries = Int(); break;
                case "--clusters": clusters = Int(); break;
                case "--seed": seed = Int(); break;
                case "--noise":
                    noise = float.TryParse(Value(), NumberStyles.Float, CultureInfo.InvariantCulture, out float f) && f >= 0
                        ? f : throw new ArgumentException("--noise needs a non-negative number.");
                    break;
                case "--metric": metric = MetricExtensions.Parse(Value()); break;
                case "--out": outDir = Value(); break;
                case "--help" or "-h": Console.WriteLine(Help); return 0;
                default: throw new ArgumentException($"Unknown option '{args[i]}' for gen-synth.\n{Help}");
            }
        }
        if (outDir is null) throw new ArgumentException($"gen-synth needs --out DIR.\n{Help}");
        Directory.CreateDirectory(outDir);
        var sw = Stopwatch.StartNew();
        using var ds = SyntheticMatryoshka.Generate(new SyntheticMatryoshka.Options(n, dim, clusters, queries, seed, noise));
        Console.WriteLine($"generated {n} × {dim} (+{queries} queries) in {sw.Elapsed.TotalSeconds:F1} s");
        VectorFile.WriteVectors(Path.Combine(outDir, "base.fvecs"), ds.Base);
        VectorFile.WriteVectors(Path.Combine(outDir, "query.fvecs"), ds.Queries);
        VectorFile.WriteInts(Path.Combine(outDir, "base_labels.ivecs"), new IntMatrix(n, 1, ds.BaseLabels));
        VectorFile.WriteInts(Path.Combine(outDir, "query_labels.ivecs"), new IntMatrix(queries, 1, ds.QueryLabels));
        sw.Restart();
        int depth = Math.Min(GroundTruth.DefaultDepth, n);
        var gt = GroundTruth.Compute(ds.Base, ds.Queries.ToArray(), metric, depth, threads: 0);
        VectorFile.WriteInts(Path.Combine(outDir, "groundtruth.ivecs"), new IntMatrix(queries, depth, gt));
        Console.WriteLine($"exact top-{depth} ({metric.ToShortName()}) computed in {sw.Elapsed.TotalSeconds:F1} s; files in {outDir}");
        return 0;
    }
}
