using System.Globalization;
using Adanns.Engine;
using Adanns.Engine.Indexes;

namespace Adanns.Bench;

/// <summary>Command-line options of the benchmark harness.</summary>
internal sealed class BenchOptions
{
    public string? BasePath { get; private set; }
    public string? QueriesPath { get; private set; }
    public string? GroundTruthPath { get; private set; }
    public string GroundTruthCache { get; private set; } = Path.Combine(Path.GetTempPath(), "adanns-gt-cache");
    public string? BaseLabelsPath { get; private set; }
    public string? QueryLabelsPath { get; private set; }
    public Metric Metric { get; private set; } = Metric.Cosine;
    public bool MetricGiven { get; private set; }
    public int K { get; private set; } = 10;
    public int Threads { get; private set; } = 1;
    public int? MaxBase { get; private set; }
    public int? MaxQueries { get; private set; }
    public int SingleQueries { get; private set; } = 200;
    public int Repeats { get; private set; } = 3;
    public int[]? Dims { get; private set; }
    public string[] Methods { get; private set; } = ["flat", "ivf", "adanns-ivf", "mrl-funnel", "auto"];
    public bool Rotate { get; private set; }
    public string? OutPath { get; private set; }
    public string? DatasetName { get; private set; }
    public int SyntheticCount { get; private set; } = 20_000;
    public int SyntheticDim { get; private set; } = 128;
    public bool ShowHelp { get; private set; }
    public int? NList { get; private set; }
    public int? CoarseDim { get; private set; }
    public int[]? ProbeDims { get; private set; }
    public int[]? ScanDims { get; private set; }
    public int[]? Shortlists { get; private set; }

    /// <summary>--target-recall: the recall targets of the auto method (it tunes once, for the highest).</summary>
    public double[]? TargetRecalls { get; private set; }

    /// <summary>
    /// --tune-queries: a sample of real queries the auto method's tuner measures on (TunerOptions.Queries), never the
    /// test queries: a .fvecs/.bvecs path, or a count of extra queries drawn from the built-in generator (the default
    /// experiment draws 1,000).
    /// </summary>
    public string? TuneQueries { get; private set; }

    /// <summary>--max-flops: profile the built index, then search at each of these FLOPs budgets (ivf-opq).</summary>
    public double[]? MaxFlops { get; private set; }
    public int[]? NProbes { get; private set; }
    public bool Sq8 { get; private set; } = true;
    public (int Dim, int Keep)[]? Cascade { get; private set; }

    /// <summary>The rerank stages of a sweep point: the --cascade stages below D, then the final stage at D.</summary>
    public RerankStage[] RerankStages(int dimension) =>
        [.. (Cascade ?? []).Where(c => c.Dim < dimension).Select(c => new RerankStage(c.Dim, c.Keep)), new RerankStage(dimension, null)];

    /// <summary>The --cascade stages as reported in results ("96/100+192/40"), or null.</summary>
    public string? CascadeText => Cascade is null ? null : string.Join("+", Cascade.Select(c => $"{c.Dim}/{c.Keep}"));
    public int KMeansIterations { get; private set; } = 10;
    public int KMeansPoints { get; private set; } = 256;
    public int BuildThreads { get; private set; } = 1;
    public double StopRecall { get; private set; } = 0.995;
    public int[] PqBytes { get; private set; } = [8, 16, 32, 64];
    public int[]? PqDims { get; private set; }
    public bool PqResidual { get; private set; }
    public bool PlainPq { get; private set; }
    public int PqBits { get; private set; } = 8;
    public string? Label { get; private set; }
    public int PqTrain { get; private set; } = 20_000;
    public int OpqIterations { get; private set; } = 25;
    public int PqIterations { get; private set; } = 20;
    public string? IndexCache { get; private set; }
    public int? Prefix8 { get; private set; }
    public bool Spill { get; private set; }
    public bool IndexRotation { get; private set; }

    public static readonly string[] KnownMethods = ["flat", "ivf", "adanns-ivf", "mrl-funnel", "usearch", "opq", "ivf-opq", "auto", "spec", "ivf-rq"];

    /// <summary>--rq-bits: RaBitQ bits per dim to build (ivf-rq).</summary>
    public int[] RqBits { get; private set; } = [1];

    /// <summary>--rq-dims: RaBitQ code dims to build (ivf-rq; default D).</summary>
    public int[]? RqDims { get; private set; }

    /// <summary>--rq-modes: bound (bound-driven first stage), fixed (the whole shortlist reranked), none (no rerank).</summary>
    public string[] RqModes { get; private set; } = ["bound"];

    /// <summary>--rq-keep: what the first (bound-driven) stage at the code dim keeps when the code dim is below D (a list: swept).</summary>
    public int[] RqKeep { get; private set; } = [40];

    /// <summary>--rq-rotation: RaBitQ's random rotation P, a list swept (hadamard: structured, the default; dense: d×d).</summary>
    public string[] RqRotations { get; private set; } = ["hadamard"];

    /// <summary>--rq-eps: ε0 of the RaBitQ bound (default the papers' 1.9).</summary>
    public float? RqEpsilon { get; private set; }

    /// <summary>--spec: the factory string of the spec method (any spec VectorIndex.Build takes).</summary>
    public string? Spec { get; private set; }

    public const string Help = """
        Adanns.Bench — measures search methods on a data set: recall, FLOPs/query, QPS, latency, build time.

        Usage:
          dotnet run -c Release --project bench -- [options]

        With no --base it runs the default experiment on the built-in synthetic Matryoshka data set.

        Data:
          --base FILE          base vectors (.fvecs .bvecs .fbin .u8bin .npy .idx[.gz], or file.hdf5#train)
          --queries FILE       query vectors (same formats; file.hdf5#test)
          --gt FILE            exact neighbour ids (.ivecs .ibin .npy, .hdf5#neighbors); computed if absent
          --gt-cache DIR       where computed ground truth is cached (default: $TMPDIR/adanns-gt-cache)
          --labels-base FILE   base labels (1-D .npy / .ivecs) for 1-NN accuracy
          --labels-query FILE  query labels
          --metric l2|ip|cosine  (default cosine; ip for normalised embeddings gives the same ranking)
          --max-base N         use only the first N base rows (ground truth is then recomputed)
          --max-queries N      use only the first N queries
          --synthetic N,D      size of the built-in synthetic set (default 20000,128)
          --dataset NAME       name for reports (default: the base file's name)

        Search:
          --k K                neighbours per query (default 10)
          --threads T          search threads (default 1)
          --methods LIST       comma list of methods (default: the README's default experiment);
                               available: flat, ivf, adanns-ivf, mrl-funnel, usearch
                                 flat        exact search at each --dims prefix
                                 ivf         rigid IVF (d_c = d_s = D), sweeps nprobe
                                 adanns-ivf  IVF at d_c, scan at d_s (8-bit scan store), rerank at D;
                                             sweeps d_s × shortlist × nprobe
                                 mrl-funnel  every vector scanned at d_s, shortlist reranked at D
                                 usearch     USearch 2.26.6 HNSW, M=16 efc=200, sweeps ef 16..512
                                 opq         flat OPQ codes per --pq-bytes budget: rigid (codes on all D dims)
                                             and AdANNS-OPQ (the prefix dim chosen on held-out base vectors);
                                             recall without rerank and after reranking 100 at D
                                 ivf-opq     IVF at d_c + OPQ codes (--pq-bytes first value, --pq-dims first
                                             value or D), shortlist by ADC, rerank at D; sweeps shortlist × nprobe
                                 auto        the self-tuning index (spec Auto), one row per --target-recall
                                 spec        any --spec (e.g. Rot,IVF2048@96,Scan96,SQ8,Spill,Prefix8@192,
                                             Rerank192/60,Rerank384), built once; sweeps --shortlists × --nprobes
                                 ivf-rq      IVF at d_c + RaBitQ codes (RQ{b}@{d}) for each --rq-bits × --rq-dims; rerank
                                             at d (bound-driven, keeping --rq-keep) then D, or at D when d = D;
                                             sweeps --rq-modes × shortlist × nprobe
          --rq-bits LIST       ivf-rq: bits per dim (default 1; 2–8 = Extended RaBitQ)
          --rq-dims LIST       ivf-rq: code dims (default D)
          --rq-modes LIST      ivf-rq: bound (bound-driven first stage, default), fixed (rerank the whole shortlist),
                               none (no rerank: recall of the codes' estimates)
          --rq-keep LIST       ivf-rq: what the bound-driven stage at d < D keeps (default 40; the spec is built with
                               the first, the others are swept at query time)
          --rq-eps E           ivf-rq: ε0 of the error bound (default 1.9)
          --rq-rotation LIST   ivf-rq: the codes' random rotation, hadamard (structured, d·log d; default) and/or
                               dense (a d×d matrix, d²); one index each
          --spec SPEC          spec: the factory string to build (--label names the rows; default "spec")
          --nlist N            IVF lists (default ≈ 4·√N, a power of two)
          --dc D               AdANNS-IVF clustering / probing dim (default D)
          --dc-probe LIST      ivf-opq: query-time probing dims d_c' ≤ d_c to sweep (default d_c)
          --ds LIST            scan dims to sweep (default D/8, D/4, D/3)
          --shortlists LIST    shortlist sizes to sweep
          --nprobes LIST       nprobe values to sweep (default 1, 2, 4, ... nlist)
          --target-recall LIST auto: recall@k targets (default 0.95); the index tunes itself once, for the highest,
                               and is searched at each (SearchParams.TargetRecall)
          --tune-queries F|N   auto: a sample of real queries (not the test queries) to tune on instead of held-out base
                               vectors: a vector file, or N extra queries from the built-in generator (default
                               experiment: 1000); "none" tunes on base vectors
          --max-flops LIST     ivf-opq: Profile() the built index over --nprobes x --shortlists, then search once per
                               FLOPs budget (SearchParams.MaxFlops) instead of sweeping
          --no-sq8             float32 scan store instead of 8-bit codes
          --cascade DIM/KEEP[+DIM/KEEP]  adanns-ivf / mrl-funnel / ivf-opq: extra rerank stages at DIM keeping KEEP before the final
                               rerank at D (an MRL funnel, e.g. 192/50)
          --kmeans-iters N     Lloyd iterations (default 10)
          --kmeans-points N    k-means training sample per centroid (default 256)
          --build-threads T    threads for index builds (default 1)
          --stop-recall R      stop a sweep once recall@k reaches R (default 0.995)
          --pq-bytes LIST      opq / ivf-opq: bytes per code (default 8,16,32,64)
          --pq-dims LIST       opq: candidate prefix dims for AdANNS-OPQ (default m, 2m, 4m, ... D);
                               ivf-opq: the code dim (first value)
          --pq-resid           ivf-opq: codes are residuals to the list centroid
          --plain-pq           PQ without the OPQ rotation
          --label NAME         ivf-opq: report the points under this method name (e.g. adanns-ivf-pq4 when the codes
                               serve as AdANNS-IVF's scan store)
          --pq-bits 8|4        ivf-opq: 8-bit codes (default) or 4-bit fast-scan codes (PQ{2·bytes}x4: same bytes,
                               twice the sub-quantizers)
          --pq-train N         rows used to train OPQ/PQ (default 20000)
          --opq-iters N        OPQ alternations (default 25)
          --pq-iters N         Lloyd iterations of each plain-PQ sub-quantizer (default 20)
          --index-rot          ivf-opq: the index learns the rotation (spec Rot) instead of the harness rotating base and
                               queries beforehand, so build time and every query pay for it
          --spill              ivf-opq: store each vector in a second, SOAR-chosen list too (spec Spill)
          --prefix8 D          ivf-opq: keep an 8-bit copy of each vector's D-dim prefix (spec Prefix8@D) for a first
                               --cascade stage at D dims
          --index-cache DIR    opq / ivf-opq: save each built index here and load it on later runs with the same data,
                               spec and build options (the build time reported is the one measured when it was built)
          --dims LIST          prefix dims to search at (default: D/8, D/4, D/2, D)
          --rotate             learn an energy-ordering rotation on the base and apply it to base and queries
          --single-queries N   queries timed one call at a time for latency (default 200)
          --repeats R          timed repetitions; the best is reported (default 3)

        Output:
          --out FILE.jsonl     append one JSON object per operating point
          --help               this text

        Micro-benchmarks (BenchmarkDotNet):
          dotnet run -c Release --project bench -- micro --filter "*"

        GPU device check (flat, k-means, IVF on the device vs the CPU; see bench/gpu-check.sh):
          dotnet run -c Release --project bench -- gpu --help
        """;

    public static BenchOptions Parse(string[] args)
    {
        var o = new BenchOptions();
        for (int i = 0; i < args.Length; i++)
        {
            string a = args[i];
            string Value()
            {
                if (i + 1 >= args.Length)
                    throw new ArgumentException($"Option {a} needs a value.");
                return args[++i];
            }
            int IntValue(int min)
            {
                string v = Value();
                if (!int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out int x) || x < min)
                    throw new ArgumentException($"Option {a} needs an integer ≥ {min}, got '{v}'.");
                return x;
            }
            switch (a)
            {
                case "--base": o.BasePath = Value(); break;
                case "--queries" or "--query": o.QueriesPath = Value(); break;
                case "--gt": o.GroundTruthPath = Value(); break;
                case "--gt-cache": o.GroundTruthCache = Value(); break;
                case "--labels-base": o.BaseLabelsPath = Value(); break;
                case "--labels-query": o.QueryLabelsPath = Value(); break;
                case "--metric": o.Metric = MetricExtensions.Parse(Value()); o.MetricGiven = true; break;
                case "--k": o.K = IntValue(1); break;
                case "--threads": o.Threads = IntValue(0); break;
                case "--max-base": o.MaxBase = IntValue(1); break;
                case "--max-queries": o.MaxQueries = IntValue(1); break;
                case "--single-queries": o.SingleQueries = IntValue(0); break;
                case "--repeats": o.Repeats = IntValue(1); break;
                case "--dims": o.Dims = ParseIntList(a, Value()); break;
                case "--methods": o.Methods = Value().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries); break;
                case "--rotate": o.Rotate = true; break;
                case "--nlist": o.NList = IntValue(1); break;
                case "--dc": o.CoarseDim = IntValue(1); break;
                case "--dc-probe": o.ProbeDims = ParseIntList(a, Value()); break;
                case "--ds": o.ScanDims = ParseIntList(a, Value()); break;
                case "--shortlists": o.Shortlists = ParseIntList(a, Value()); break;
                case "--nprobes": o.NProbes = ParseIntList(a, Value()); break;
                case "--target-recall":
                    {
                        string v = Value();
                        o.TargetRecalls = v.Split(',').Select(x => double.TryParse(x, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double t) && t > 0 && t <= 1
                            ? t : throw new ArgumentException($"--target-recall needs recalls in (0, 1] joined by ',', got '{v}'.")).ToArray();
                        break;
                    }
                case "--tune-queries": o.TuneQueries = Value(); break;
                case "--max-flops":
                    {
                        string v = Value();
                        o.MaxFlops = v.Split(',').Select(x => double.TryParse(x, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double f) && f > 0
                            ? f : throw new ArgumentException($"--max-flops needs positive numbers joined by ',', got '{v}'.")).ToArray();
                        break;
                    }
                case "--no-sq8": o.Sq8 = false; break;
                case "--cascade":
                    {
                        string v = Value();
                        var stages = new List<(int, int)>();
                        foreach (var stage in v.Split('+'))
                        {
                            var parts = stage.Split('/');
                            if (parts.Length != 2 || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int cd) || cd <= 0
                                || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int ck) || ck <= 0)
                                throw new ArgumentException($"--cascade needs DIM/KEEP stages joined by '+' (e.g. 192/50 or 96/100+192/40), got '{v}'.");
                            stages.Add((cd, ck));
                        }
                        o.Cascade = [.. stages];
                        break;
                    }
                case "--kmeans-iters": o.KMeansIterations = IntValue(1); break;
                case "--kmeans-points": o.KMeansPoints = IntValue(1); break;
                case "--build-threads": o.BuildThreads = IntValue(1); break;
                case "--stop-recall":
                    {
                        string v = Value();
                        if (!double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out double x) || x <= 0 || x > 1)
                            throw new ArgumentException($"--stop-recall needs a number in (0, 1], got '{v}'.");
                        o.StopRecall = x;
                        break;
                    }
                case "--out": o.OutPath = Value(); break;
                case "--label": o.Label = Value(); break;
                case "--pq-bytes": o.PqBytes = ParseIntList(a, Value()); break;
                case "--pq-dims": o.PqDims = ParseIntList(a, Value()); break;
                case "--pq-resid": o.PqResidual = true; break;
                case "--plain-pq": o.PlainPq = true; break;
                case "--pq-bits":
                    o.PqBits = IntValue(4);
                    if (o.PqBits is not (4 or 8)) throw new ArgumentException($"--pq-bits must be 8 or 4, got {o.PqBits}.");
                    break;
                case "--pq-train": o.PqTrain = IntValue(256); break;
                case "--opq-iters": o.OpqIterations = IntValue(0); break;
                case "--pq-iters": o.PqIterations = IntValue(1); break;
                case "--index-cache": o.IndexCache = Value(); break;
                case "--prefix8": o.Prefix8 = IntValue(1); break;
                case "--spill": o.Spill = true; break;
                case "--rq-bits":
                    o.RqBits = ParseIntList(a, Value());
                    if (o.RqBits.Any(b => b > 8)) throw new ArgumentException("--rq-bits: RaBitQ codes have 1 to 8 bits per dim.");
                    break;
                case "--rq-dims": o.RqDims = ParseIntList(a, Value()); break;
                case "--rq-keep": o.RqKeep = ParseIntList(a, Value()); break;
                case "--rq-modes":
                    o.RqModes = Value().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                    if (o.RqModes.Length == 0 || o.RqModes.Any(m => m is not ("bound" or "fixed" or "none")))
                        throw new ArgumentException("--rq-modes: a comma list of bound, fixed, none.");
                    break;
                case "--rq-rotation":
                    o.RqRotations = Value().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                    if (o.RqRotations.Length == 0 || o.RqRotations.Any(m => m is not ("hadamard" or "dense")))
                        throw new ArgumentException("--rq-rotation: a comma list of hadamard, dense.");
                    break;
                case "--rq-eps":
                    {
                        string v = Value();
                        if (!float.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out float e) || !(e > 0) || !float.IsFinite(e))
                            throw new ArgumentException($"--rq-eps needs a positive number, got '{v}'.");
                        o.RqEpsilon = e;
                        break;
                    }
                case "--spec": o.Spec = Value(); break;
                case "--index-rot": o.IndexRotation = true; break;
                case "--dataset": o.DatasetName = Value(); break;
                case "--synthetic":
                    {
                        var nd = ParseIntList(a, Value());
                        if (nd.Length != 2) throw new ArgumentException("--synthetic needs N,D (e.g. 20000,128).");
                        o.SyntheticCount = nd[0];
                        o.SyntheticDim = nd[1];
                        break;
                    }
                case "--help" or "-h": o.ShowHelp = true; break;
                default: throw new ArgumentException($"Unknown option '{a}'. Run with --help for the list.");
            }
        }
        if ((o.BasePath is null) != (o.QueriesPath is null))
            throw new ArgumentException("--base and --queries go together.");
        foreach (var m in o.Methods)
            if (!KnownMethods.Contains(m))
                throw new ArgumentException($"Unknown method '{m}'; available: {string.Join(", ", KnownMethods)}.");
        return o;
    }

    private static int[] ParseIntList(string option, string text)
    {
        var parts = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var result = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!int.TryParse(parts[i], NumberStyles.Integer, CultureInfo.InvariantCulture, out result[i]) || result[i] <= 0)
                throw new ArgumentException($"Option {option} needs positive integers separated by commas, got '{text}'.");
        return result;
    }
}
