using System.Diagnostics;
using System.Numerics.Tensors;

namespace Adanns.Engine.Indexes;

/// <summary>
/// The grid <see cref="IvfIndex.Profile"/> measures. Every null list means the default described on it.
/// </summary>
public sealed record ProfileOptions
{
    /// <summary>Stored vectors sampled as profiling queries (capped at the index size).</summary>
    public int HeldOutQueries { get; init; } = 200;

    /// <summary>The k recall@k is measured at.</summary>
    public int K { get; init; } = 10;

    /// <summary>Seed of the query sample.</summary>
    public int Seed { get; init; } = 1;

    /// <summary>Lists probed; default every power of two up to nlist.</summary>
    public IReadOnlyList<int>? NProbes { get; init; }

    /// <summary>Scan dims; default S/8, S/4, S/2 and S of the scan store (S = <see cref="IvfIndex.ScanStoreDims"/>), those ≥ 8.</summary>
    public IReadOnlyList<int>? ScanDims { get; init; }

    /// <summary>Shortlists as multiples of k; default 4, 10 and 30.</summary>
    public IReadOnlyList<int>? ShortlistMultiples { get; init; }

    /// <summary>Rerank stages; default the spec's, or one full-D stage when the spec has none.</summary>
    public IReadOnlyList<RerankStage>? Rerank { get; init; }

    /// <summary>Coarse (centroid ranking) dim; default the index's d_c.</summary>
    public int? CoarseDim { get; init; }

    /// <summary>
    /// Stop raising nprobe for a (scan dim, shortlist) pair once doubling it finds no extra true neighbour: past
    /// that point the pair only gets dearer, and the widest probes are what make profiling slow.
    /// </summary>
    public bool StopWhenSaturated { get; init; } = true;

    /// <summary>Threads for the exact ground truth (0 = all cores); timed searches always run on one thread.</summary>
    public int Threads { get; init; }
}

public sealed partial class IvfIndex
{
    /// <summary>
    /// The cost/recall frontier measured by the last <see cref="Profile"/> (or loaded with the index); null until
    /// then. Budgeted searches (<see cref="SearchParams.MaxFlops"/>, <see cref="SearchParams.MaxMicros"/>) need it.
    /// </summary>
    public ComputeProfile? ComputeProfile { get; private set; }

    /// <summary>
    /// Measures recall@k, FLOPs and single-thread microseconds per query for a grid of configurations, using a
    /// seeded sample of the index's own vectors as queries (each one's own id is left out of both the exact and the
    /// approximate results), keeps the Pareto frontier, stores it as <see cref="ComputeProfile"/> and returns it.
    /// </summary>
    /// <remarks>
    /// May run concurrently with searches (which keep using the previous profile until this one is stored), not
    /// with Add / Remove / Compact. Timings are only meaningful on an otherwise idle core. The profile describes
    /// the index as it is now: re-profile after adding or removing a large share of the vectors.
    /// </remarks>
    public ComputeProfile Profile(ProfileOptions? options = null)
    {
        var o = options ?? new ProfileOptions();
        int D = Dimension, k = o.K;
        if (k < 1) throw new ArgumentOutOfRangeException(nameof(options), k, "Profile k must be at least 1.");
        if (o.HeldOutQueries < 1) throw new ArgumentOutOfRangeException(nameof(options), o.HeldOutQueries, "At least one profiling query is needed.");
        if (o.Threads < 0) throw new ArgumentOutOfRangeException(nameof(options), o.Threads, "Threads must be ≥ 0 (0 = all cores).");
        if (Count <= k)
            throw new InvalidOperationException($"Profiling at k = {k} needs more than {k} vectors in the index (it holds {Count}).");

        int dc = o.CoarseDim ?? CoarseDim;
        if (dc < 1 || dc > D) throw new ArgumentOutOfRangeException(nameof(options), dc, $"Profile coarse dim must be in [1, {D}].");
        var nprobes = Distinct(o.NProbes ?? PowersOfTwo(NList), 1, NList, "nprobe", nameof(options));
        var scanDims = Distinct(o.ScanDims ?? DefaultScanDims(ScanStoreDims), 1, D, "scan dim", nameof(options));
        var multiples = Distinct(o.ShortlistMultiples ?? [4, 10, 30], 1, int.MaxValue / k, "shortlist multiple", nameof(options));
        // Copied: the profile outlives the caller's list.
        RerankStage[] rerank = [.. o.Rerank ?? (Spec.Rerank.Count > 0 ? Spec.Rerank : [new RerankStage(D, null)])];
        foreach (var st in rerank)
            if (st.Dim < 1 || st.Dim > D || st.Keep < 1)
                throw new ArgumentOutOfRangeException(nameof(options), st, $"Profile rerank stages need dims in [1, {D}] and keeps of at least 1.");
        // Without reranking the scan keeps exactly k, so shortlist variants would all be the same search.
        if (rerank.Length == 0) multiples = [1];

        // Each query is a stored vector, so it finds itself: search for one more and drop it.
        int kq = k + 1;
        int nq = Math.Min(o.HeldOutQueries, Count);
        var queryIds = SampleIds(nq, o.Seed);
        var queries = new float[nq * D];
        var stored = new float[D];
        for (int i = 0; i < nq; i++)
        {
            TryGetStoredVector(queryIds[i], stored);
            Unrotate(stored, queries.AsSpan(i * D, D));
        }

        var truthParams = new SearchParams { Exact = true, Rerank = [new RerankStage(D, null)] }; // exact at the full D
        var exact = SearchBatch(queries, kq, truthParams, o.Threads, out _);
        var truth = new HashSet<long>[nq];
        long truthTotal = 0;
        for (int i = 0; i < nq; i++)
        {
            truth[i] = [.. Others(exact.IdsOf(i), queryIds[i], k)];
            truthTotal += truth[i].Count;
        }

        // Rerank keeps below k + 1 would be rejected for the k + 1 search; the stored point keeps the real stages.
        var measuredRerank = rerank.Select(st => st.Keep < kq ? st with { Keep = kq } : st).ToArray();
        var ids = new long[nq * kq];
        var scores = new float[nq * kq];
        // Pass 1: recall and FLOPs of every configuration (deterministic; also warms the JIT and the scratch buffers).
        var measured = new List<(ProfilePoint Point, SearchParams Run)>();
        foreach (int ds in scanDims)
        {
            foreach (int mult in multiples)
            {
                int shortlist = k * mult;
                var run = new SearchParams { CoarseDim = dc, ScanDim = ds, Shortlist = Math.Max(shortlist, kq), Rerank = measuredRerank };
                long prevHits = -1;
                foreach (int nprobe in nprobes)
                {
                    var p = run with { NProbe = nprobe };
                    SearchBatch(queries, kq, ids, scores, p, 1, out var stats);
                    long hits = 0;
                    for (int i = 0; i < nq; i++)
                        foreach (long id in Others(ids.AsSpan(i * kq, kq), queryIds[i], k))
                            if (truth[i].Contains(id)) hits++;
                    var concrete = new SearchParams { NProbe = nprobe, CoarseDim = dc, ScanDim = ds, Shortlist = shortlist, Rerank = rerank };
                    measured.Add((new ProfilePoint(concrete, stats.FlopsPerQuery, 0, truthTotal == 0 ? 1 : (double)hits / truthTotal), p));
                    if (o.StopWhenSaturated && (hits <= prevHits || hits == truthTotal)) break;
                    prevHits = hits;
                }
            }
        }

        // Pass 2: time only the FLOPs frontier, on warm code, best of two runs to shed interference.
        var frontier = new HashSet<ProfilePoint>(new ComputeProfile(measured.Select(m => m.Point), k, nq, Count).Points, ReferenceEqualityComparer.Instance);
        var points = new List<ProfilePoint>();
        foreach (var (point, run) in measured)
        {
            if (!frontier.Contains(point)) continue;
            double micros = double.PositiveInfinity;
            for (int rep = 0; rep < 2; rep++)
            {
                long t0 = Stopwatch.GetTimestamp();
                SearchBatch(queries, kq, ids, scores, run, 1, out _);
                micros = Math.Min(micros, Stopwatch.GetElapsedTime(t0).TotalMicroseconds / nq);
            }
            points.Add(point with { MicrosPerQuery = micros });
        }

        var profile = new ComputeProfile(points, k, nq, Count);
        ComputeProfile = profile;
        return profile;
    }

    /// <summary>Turns a budgeted request into the chosen profile point's concrete parameters, resolved as usual.</summary>
    private ResolvedSearch ResolveBudget(SearchParams p, int k)
    {
        if (p.NProbe is not null || p.CoarseDim is not null || p.ScanDim is not null || p.Shortlist is not null || p.Rerank is not null || p.Exact == true)
            throw new ArgumentException(
                "A compute budget (MaxFlops / MaxMicros) picks NProbe, CoarseDim, ScanDim, Shortlist and Rerank from the index's profile; " +
                "leave those null and Exact unset, or drop the budget to choose them yourself.", nameof(p));
        var profile = ComputeProfile ?? throw new InvalidOperationException(
            "This index has no compute profile, so it cannot honour MaxFlops / MaxMicros: call Profile() first (the profile is saved with the index).");
        int i = profile.BestIndex(p.MaxFlops, p.MaxMicros);
        bool over = i < 0;
        if (over) i = profile.CheapestIndex(p.MaxFlops, p.MaxMicros);
        var c = profile.Points[i].Params;
        // The profile was measured at its own k; a larger k still needs k candidates at every step.
        var concrete = new SearchParams
        {
            NProbe = c.NProbe, CoarseDim = c.CoarseDim, ScanDim = c.ScanDim, Shortlist = Math.Max(c.Shortlist!.Value, k),
            Rerank = c.Rerank!.Select(st => st.Keep < k ? st with { Keep = k } : st).ToArray(),
        };
        return Resolve(concrete, k) with { BudgetPoint = i, OverBudget = over };
    }

    /// <summary>Inverts the stored-vector rotation (x = R·y), so a stored row can be searched like a user query.</summary>
    /// <remarks>
    /// Going back to the caller's space keeps profiling on the public search path, timings included; the
    /// alternative, an entry point that skips the query rotation, would fork the hot search code for one caller.
    /// </remarks>
    internal void Unrotate(ReadOnlySpan<float> y, Span<float> x)
    {
        if (Rotation is null)
        {
            y.CopyTo(x);
            return;
        }
        int D = Dimension;
        var rt = Rotation.MatrixRowMajor; // row j of Rᵀ is column j of R
        x.Clear();
        for (int j = 0; j < D; j++)
            TensorPrimitives.MultiplyAdd(rt.Slice(j * D, D), y[j], x, x);
    }

    /// <summary>A seeded sample of live ids, independent of the id map's enumeration order.</summary>
    private long[] SampleIds(int n, int seed)
    {
        var all = _idToSlot.Keys.ToArray();
        Array.Sort(all);
        var rng = new Random(seed);
        for (int i = 0; i < n; i++)
        {
            int j = rng.Next(i, all.Length);
            (all[i], all[j]) = (all[j], all[i]);
        }
        return all[..n];
    }

    /// <summary>The first <paramref name="k"/> ids of a result row other than the query's own id (and −1 padding).</summary>
    private static List<long> Others(ReadOnlySpan<long> row, long self, int k)
    {
        var list = new List<long>(k);
        foreach (long id in row)
        {
            if (id < 0 || id == self) continue;
            list.Add(id);
            if (list.Count == k) break;
        }
        return list;
    }

    private static int[] PowersOfTwo(int max)
    {
        var list = new List<int>();
        for (long v = 1; v <= max; v *= 2) list.Add((int)v);
        return [.. list];
    }

    private static int[] DefaultScanDims(int store)
    {
        var dims = new[] { store / 8, store / 4, store / 2, store }.Where(d => d >= 8).ToArray();
        return dims.Length > 0 ? dims : [store]; // a store narrower than 8 dims is still worth one point
    }

    private static int[] Distinct(IReadOnlyList<int> values, int min, int max, string what, string paramName)
    {
        if (values.Count == 0) throw new ArgumentException($"The profile grid needs at least one {what}.", paramName);
        foreach (int v in values)
            if (v < min || v > max)
                throw new ArgumentOutOfRangeException(paramName, v, $"Profile {what} must be in [{min}, {max}].");
        return [.. values.Distinct().Order()];
    }
}
