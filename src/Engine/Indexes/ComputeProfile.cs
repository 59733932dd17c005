using Adanns.Engine.Persistence;

namespace Adanns.Engine.Indexes;

/// <summary>
/// One measured search configuration: its concrete parameters and what they cost and achieved on the
/// profiling queries.
/// </summary>
/// <param name="Params">Concrete parameters (NProbe, CoarseDim, ScanDim, Shortlist and Rerank all set).</param>
/// <param name="FlopsPerQuery">Mean distance FLOPs per query (see <see cref="SearchStats.Flops"/>).</param>
/// <param name="MicrosPerQuery">Mean single-thread wall time per query in microseconds, on the machine that profiled.</param>
/// <param name="Recall">Mean recall@k against exact search, k = <see cref="ComputeProfile.K"/>.</param>
public sealed record ProfilePoint(SearchParams Params, double FlopsPerQuery, double MicrosPerQuery, double Recall);

/// <summary>
/// The measured cost/recall Pareto frontier of an index: the configurations worth running at some FLOPs
/// budget, cheapest first. Built by <see cref="IvfIndex.Profile"/>; a budgeted search
/// (<see cref="SearchParams.MaxFlops"/>, <see cref="SearchParams.MaxMicros"/>) picks one of these points.
/// </summary>
/// <remarks>
/// Two frontiers are kept in one list: the points no other point beats on FLOPs and recall (deterministic and portable:
/// what <see cref="SearchParams.MaxFlops"/> needs), and those no other point beats on measured microseconds and recall
/// (what a recall target or <see cref="SearchParams.MaxMicros"/> needs: FLOPs misjudge time when stages differ in
/// memory traffic — an 8-bit stage over a long shortlist is cheap in FLOPs and slow in cache misses). The microsecond
/// figures are only as good as the machine and load they were measured on.
/// </remarks>
public sealed class ComputeProfile
{
    /// <summary>
    /// Keeps the Pareto-optimal subsets of <paramref name="measured"/>: a point survives when no other point costs
    /// at most as many FLOPs and reaches at least its recall, or when no other point takes at most as many
    /// microseconds and reaches at least its recall.
    /// </summary>
    /// <param name="measured">Every configuration measured (any order).</param>
    /// <param name="k">The k recall was measured at.</param>
    /// <param name="queries">Profiling queries the figures are averaged over.</param>
    /// <param name="vectorCount">Live vectors in the index when it was profiled.</param>
    /// <param name="tunedRecall">The recall target the index was tuned for (see <see cref="TunedRecall"/>), or null.</param>
    public ComputeProfile(IEnumerable<ProfilePoint> measured, int k, int queries, long vectorCount, double? tunedRecall = null)
    {
        ArgumentNullException.ThrowIfNull(measured);
        if (k < 1) throw new ArgumentOutOfRangeException(nameof(k), k, "k must be at least 1.");
        if (queries < 1) throw new ArgumentOutOfRangeException(nameof(queries), queries, "At least one profiling query is needed.");
        if (vectorCount < 0) throw new ArgumentOutOfRangeException(nameof(vectorCount), vectorCount, "The vector count cannot be negative.");
        var all = measured.ToList();
        foreach (var p in all)
        {
            ArgumentNullException.ThrowIfNull(p, nameof(measured));
            var s = p.Params;
            if (s is null || s.NProbe is null || s.CoarseDim is null || s.ScanDim is null || s.Shortlist is null || s.Rerank is null)
                throw new ArgumentException("Profile points need concrete parameters (NProbe, CoarseDim, ScanDim, Shortlist and Rerank set).", nameof(measured));
            if (!(p.FlopsPerQuery >= 0 && double.IsFinite(p.FlopsPerQuery) && p.MicrosPerQuery >= 0 && double.IsFinite(p.MicrosPerQuery)
                  && p.Recall >= 0 && p.Recall <= 1))
                throw new ArgumentException($"Profile point costs and recall must be finite and non-negative, recall at most 1 (got {p}).", nameof(measured));
        }
        if (all.Count == 0) throw new ArgumentException("A profile needs at least one measured point.", nameof(measured));

        // Each frontier: walk the points cheapest first (among equal costs the best recall first, so the rest at that
        // cost are dominated) and keep every point that raises the best recall so far.
        var keep = new HashSet<ProfilePoint>(ReferenceEqualityComparer.Instance);
        void KeepFrontier(Comparison<ProfilePoint> cheaperFirst)
        {
            all.Sort(cheaperFirst);
            double best = double.NegativeInfinity;
            foreach (var p in all)
                if (p.Recall > best) { keep.Add(p); best = p.Recall; }
        }
        KeepFrontier((a, b) => a.MicrosPerQuery != b.MicrosPerQuery ? a.MicrosPerQuery.CompareTo(b.MicrosPerQuery)
            : a.Recall != b.Recall ? b.Recall.CompareTo(a.Recall) : a.FlopsPerQuery.CompareTo(b.FlopsPerQuery));
        // Equal FLOPs and recall (a shortlist longer than the candidates found changes nothing): the smaller shortlist and
        // keep first, so the FLOPs frontier is the same on every run; time only breaks ties left after that. This sort is
        // last, so the stored list is in FLOPs order whichever frontier a point came from.
        KeepFrontier((a, b) => a.FlopsPerQuery != b.FlopsPerQuery ? a.FlopsPerQuery.CompareTo(b.FlopsPerQuery)
            : a.Recall != b.Recall ? b.Recall.CompareTo(a.Recall)
            : a.Params.Shortlist != b.Params.Shortlist ? a.Params.Shortlist!.Value.CompareTo(b.Params.Shortlist!.Value)
            : FirstKeep(a) != FirstKeep(b) ? FirstKeep(a).CompareTo(FirstKeep(b)) : a.MicrosPerQuery.CompareTo(b.MicrosPerQuery));
        var frontier = all.Where(keep.Contains).ToList();
        Points = frontier;
        K = k;
        Queries = queries;
        VectorCount = vectorCount;
        TunedRecall = tunedRecall;
    }

    /// <summary>The union of both frontiers, by increasing FLOPs (recall need not rise along it: a time-frontier point can
    /// cost more FLOPs than a FLOPs-frontier point of higher recall).</summary>
    public IReadOnlyList<ProfilePoint> Points { get; }

    /// <summary>The k recall was measured at.</summary>
    public int K { get; }

    /// <summary>Profiling queries the figures are averaged over.</summary>
    public int Queries { get; }

    /// <summary>Live vectors in the index when it was profiled (re-profile after the index changes much).</summary>
    public long VectorCount { get; }

    /// <summary>
    /// The recall@k the index was tuned for (<see cref="IndexTuner"/>, spec <c>Auto</c>), or null. A search that sets no
    /// parameter at all runs as if it asked for <see cref="SearchParams.TargetRecall"/> = this. Saved with the index
    /// (optional section "tune": older readers skip it).
    /// </summary>
    public double? TunedRecall
    {
        get => _tunedRecall;
        internal set
        {
            if (value is double t && !(t > 0 && t <= 1)) throw new ArgumentOutOfRangeException(nameof(value), t, $"The tuned recall must be in (0, 1] (got {t}).");
            _tunedRecall = value;
            TunedParams = value is double v ? new SearchParams { TargetRecall = v } : null;
        }
    }

    private double? _tunedRecall;

    /// <summary>What an unset search runs: one shared instance, so the default path allocates nothing.</summary>
    internal SearchParams? TunedParams { get; private set; }

    private static int FirstKeep(ProfilePoint p) => p.Params.Rerank is { Count: > 0 } r ? r[0].Keep ?? int.MaxValue : 0;

    /// <summary>Relative difference in measured time below which two choices count as equally fast (then FLOPs decide).</summary>
    internal const double TimeTolerance = 0.10;

    /// <summary>
    /// The sampling error of a frontier point's recall: its one-sided 95% margin, 1.645·√(2·r(1−r)/n) over the n =
    /// k·queries neighbours the profile checked (an upper bound, taken at r = 1/2 is too loose; at the target itself it
    /// is what decides whether a point "reaches" it). The 2 is for two samples: the profile's estimate and the recall a
    /// user then measures on a query set of the same size both carry a sampling error, so the difference between the
    /// two is √2 times either's — with the one-sample margin, a point chosen at the edge would miss the target on about
    /// one new 1,000-query set in eight, not one in twenty.
    /// </summary>
    internal double Margin(double recall) => MarginFor(recall, K, Queries);

    /// <summary>
    /// Whether a recall measured on <paramref name="queries"/> queries at <paramref name="k"/> reaches
    /// <paramref name="target"/>: minus its sampling margin it clears the target (or it is 1, with no error left).
    /// </summary>
    internal static bool Reaches(double recall, double target, int k, int queries) =>
        recall - MarginFor(recall, k, queries) >= target || recall >= 1;

    /// <summary>
    /// The lowest recall that <see cref="Reaches"/> <paramref name="target"/> on <paramref name="queries"/> queries at
    /// <paramref name="k"/> (1 when only a perfect recall does), found by bisection: the margin shrinks as recall nears 1,
    /// so recall − margin rises with recall there.
    /// </summary>
    internal static double RecallToReach(double target, int k, int queries)
    {
        if (!Reaches(Math.BitDecrement(1.0), target, k, queries)) return 1;
        double lo = Math.Max(0, target), hi = 1;
        for (int i = 0; i < 50; i++)
        {
            double mid = (lo + hi) / 2;
            if (Reaches(mid, target, k, queries)) hi = mid; else lo = mid;
        }
        return hi;
    }

    /// <summary><see cref="Margin"/> for a profile of <paramref name="queries"/> queries at <paramref name="k"/>.</summary>
    internal static double MarginFor(double recall, int k, int queries) => 1.645 * Math.Sqrt(2 * Math.Max(recall * (1 - recall), 0) / ((double)k * queries));

    // Concrete parameters per frontier point for the last k asked: budgeted and tuned searches reuse them instead of
    // allocating per query. Entries are immutable objects, so a reader sees a whole (k, parameters) pair; a race only
    // builds the same parameters twice.
    private Concrete?[]? _concrete;

    private sealed record Concrete(int K, SearchParams Params);

    /// <summary>Point <paramref name="point"/>'s parameters for a search at <paramref name="k"/>: its keeps and shortlist raised to k where the profile's k was lower.</summary>
    internal SearchParams ConcreteFor(int point, int k)
    {
        var cache = _concrete ??= new Concrete?[Points.Count];
        if (cache[point] is { } hit && hit.K == k) return hit.Params;
        var made = Make(Points[point].Params, k);
        cache[point] = new Concrete(k, made);
        return made;
    }

    // Apart from ConcreteFor: a lambda capturing k there would allocate its closure on every call, hits included.
    private static SearchParams Make(SearchParams c, int k) => new()
    {
        NProbe = c.NProbe, CoarseDim = c.CoarseDim, ScanDim = c.ScanDim, Shortlist = Math.Max(c.Shortlist!.Value, k),
        Rerank = c.Rerank!.Select(st => st.Keep < k ? st with { Keep = k } : st).ToArray(),
    };

    /// <summary>
    /// The highest-recall point whose FLOPs and microseconds per query fit both limits (a null limit is no limit;
    /// ties go to the cheaper point), or null when nothing fits.
    /// </summary>
    public ProfilePoint? Best(double? maxFlops, double? maxMicros)
    {
        int i = BestIndex(maxFlops, maxMicros);
        return i < 0 ? null : Points[i];
    }

    /// <summary>Index into <see cref="Points"/> of <see cref="Best"/>'s answer, or −1.</summary>
    internal int BestIndex(double? maxFlops, double? maxMicros)
    {
        if (maxFlops is double f && double.IsNaN(f)) throw new ArgumentOutOfRangeException(nameof(maxFlops), f, "The FLOPs budget is NaN.");
        if (maxMicros is double m && double.IsNaN(m)) throw new ArgumentOutOfRangeException(nameof(maxMicros), m, "The time budget is NaN.");
        int best = -1;
        for (int i = 0; i < Points.Count; i++)
        {
            var p = Points[i];
            if (p.FlopsPerQuery > (maxFlops ?? double.PositiveInfinity) || p.MicrosPerQuery > (maxMicros ?? double.PositiveInfinity))
                continue;
            // Points run cheapest first, so a strict improvement keeps the cheaper of two equal recalls.
            if (best < 0 || p.Recall > Points[best].Recall) best = i;
        }
        return best;
    }

    /// <summary>
    /// Index into <see cref="Points"/> of the fastest point (measured µs) reaching <paramref name="target"/> recall among those that fit
    /// both limits; when none that fits reaches it, the best that fits (<paramref name="reached"/> false); −1 when nothing fits.
    /// </summary>
    internal int CheapestReachingIndex(double target, double? maxFlops, double? maxMicros, out bool reached)
    {
        if (!(target > 0 && target <= 1)) throw new ArgumentOutOfRangeException(nameof(target), target, "The recall target must be in (0, 1].");
        // Among the points that reach the target and fit, the fastest as measured — except that times within
        // TimeTolerance of the fastest count as equal and then the fewest FLOPs decides: timings move by that much
        // between runs (load, turbo), FLOPs do not, so close calls come out the same every time.
        // "Reaches" allows for the sampling error of the measured recall: the point's recall minus its 95% margin must
        // clear the target, so a target is met on new queries from the same distribution 19 times in 20, not 1 in 2.
        bool Eligible(ProfilePoint p) => Reaches(p.Recall, target, K, Queries)
            && p.FlopsPerQuery <= (maxFlops ?? double.PositiveInfinity) && p.MicrosPerQuery <= (maxMicros ?? double.PositiveInfinity);
        int chosen = -1;
        for (int i = 0; i < Points.Count; i++)
            if (Eligible(Points[i]) && (chosen < 0 || Points[i].MicrosPerQuery < Points[chosen].MicrosPerQuery)) chosen = i;
        if (chosen >= 0)
        {
            double within = Points[chosen].MicrosPerQuery * (1 + TimeTolerance);
            for (int i = 0; i < chosen; i++) // earlier points have fewer (or equal) FLOPs
                if (Points[i].MicrosPerQuery <= within && Eligible(Points[i]))
                {
                    chosen = i;
                    break;
                }
            reached = true;
            return chosen;
        }
        reached = false;
        return BestIndex(maxFlops, maxMicros);
    }

    /// <summary>
    /// The point to run when nothing fits: the fastest one when only a time budget was given, else the one with
    /// the fewest FLOPs.
    /// </summary>
    internal int CheapestIndex(double? maxFlops, double? maxMicros)
    {
        if (maxFlops is not null || maxMicros is null) return 0;
        int best = 0;
        for (int i = 1; i < Points.Count; i++)
            if (Points[i].MicrosPerQuery < Points[best].MicrosPerQuery) best = i;
        return best;
    }

    // Bounds on what a stored profile may claim, so a corrupt file cannot ask for huge allocations.
    private const int MaxStoredPoints = 1 << 16;
    private const int MaxStoredStages = 64;

    /// <summary>Writes the "PROF" section payload.</summary>
    internal void Write(BinaryWriter b)
    {
        b.Write(K);
        b.Write(Queries);
        b.Write(VectorCount);
        b.Write(Points.Count);
        foreach (var p in Points)
        {
            var s = p.Params;
            b.Write(s.NProbe!.Value);
            b.Write(s.CoarseDim!.Value);
            b.Write(s.ScanDim!.Value);
            b.Write(s.Shortlist!.Value);
            b.Write(s.Rerank!.Count);
            foreach (var st in s.Rerank)
            {
                b.Write(st.Dim);
                b.Write(st.Keep ?? 0); // 0 = "null" (keeps are at least 1)
            }
            b.Write(p.FlopsPerQuery);
            b.Write(p.MicrosPerQuery);
            b.Write(p.Recall);
        }
    }

    /// <summary>Reads a "PROF" payload, checking every count and parameter against the index it belongs to.</summary>
    internal static ComputeProfile Read(ref PayloadReader r, SectionReader file, long offset, int dimension, int nlist)
    {
        int k = r.Int32In("profile k", 1, int.MaxValue);
        int queries = r.Int32In("profile queries", 1, int.MaxValue);
        long vectors = r.Int64("profile vector count");
        if (vectors < 0) throw file.Fail(offset, $"section \"PROF\": vector count {vectors} is negative.");
        int count = r.Int32In("profile points", 1, MaxStoredPoints);
        // Smallest point: five ints and three doubles.
        r.EnsureFits(count, 5 * 4 + 3 * 8, "profile points");
        var points = new List<ProfilePoint>(count);
        for (int i = 0; i < count; i++)
        {
            int nprobe = r.Int32In("profile nprobe", 1, nlist);
            int dc = r.Int32In("profile coarse dim", 1, dimension);
            int ds = r.Int32In("profile scan dim", 1, dimension);
            int shortlist = r.Int32In("profile shortlist", 1, int.MaxValue);
            int stages = r.Int32In("profile rerank stages", 0, MaxStoredStages);
            r.EnsureFits(stages, 8, "profile rerank stages");
            var rerank = new RerankStage[stages];
            for (int s = 0; s < stages; s++)
            {
                int dim = r.Int32In("profile rerank dim", 1, dimension);
                int keep = r.Int32In("profile rerank keep", 0, int.MaxValue);
                rerank[s] = new RerankStage(dim, keep == 0 ? null : keep);
            }
            double flops = r.Double("profile FLOPs"), micros = r.Double("profile microseconds"), recall = r.Double("profile recall");
            if (!(flops >= 0 && double.IsFinite(flops) && micros >= 0 && double.IsFinite(micros) && recall >= 0 && recall <= 1))
                throw file.Fail(offset, $"section \"PROF\": point {i} has cost {flops} FLOPs / {micros} µs and recall {recall}, out of range.");
            var p = new SearchParams { NProbe = nprobe, CoarseDim = dc, ScanDim = ds, Shortlist = shortlist, Rerank = rerank };
            points.Add(new ProfilePoint(p, flops, micros, recall));
        }
        return new ComputeProfile(points, k, queries, vectors);
    }
}
