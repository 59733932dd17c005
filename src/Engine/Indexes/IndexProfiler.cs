using System.Diagnostics;
using Adanns.Kernels;

namespace Adanns.Engine.Indexes;

/// <summary>
/// The grid <see cref="IvfIndex.Profile"/> measures. Every null list means the default described on it.
/// </summary>
public sealed record ProfileOptions
{
    /// <summary>Stored vectors sampled as profiling queries (capped at the index size), or rows of <see cref="Queries"/> when given.</summary>
    public int HeldOutQueries { get; init; } = 200;

    /// <summary>
    /// A sample of real queries (caller space, the index's dimension) to profile on instead of stored vectors: queries
    /// from a log are what the index will be asked, and their difficulty can differ from the stored vectors'. At most
    /// <see cref="HeldOutQueries"/> of them are used (evenly spaced rows). The truth is exact search over the index.
    /// </summary>
    public VectorSet? Queries { get; init; }

    /// <summary>The k recall@k is measured at.</summary>
    public int K { get; init; } = 10;

    /// <summary>Seed of the query sample.</summary>
    public int Seed { get; init; } = 1;

    /// <summary>Lists probed; default every power of two up to nlist.</summary>
    public IReadOnlyList<int>? NProbes { get; init; }

    /// <summary>Scan dims; default S/8, S/4, S/2 and S of the scan store (S = <see cref="IvfIndex.CodeDim"/>), those ≥ 8.</summary>
    public IReadOnlyList<int>? ScanDims { get; init; }

    /// <summary>Shortlists as multiples of k; default 4, 10 and 30.</summary>
    public IReadOnlyList<int>? ShortlistMultiples { get; init; }

    /// <summary>Rerank stages; default the spec's, or one full-D stage when the spec has none.</summary>
    public IReadOnlyList<RerankStage>? Rerank { get; init; }

    /// <summary>
    /// Several rerank funnels to profile (e.g. one first-stage keep each); every one is swept like <see cref="Rerank"/>
    /// and the frontier keeps the best. Overrides <see cref="Rerank"/> when set.
    /// </summary>
    public IReadOnlyList<IReadOnlyList<RerankStage>>? RerankVariants { get; init; }

    /// <summary>Coarse (centroid ranking) dim; default the index's d_c.</summary>
    public int? CoarseDim { get; init; }

    /// <summary>
    /// Stop raising nprobe for a (scan dim, shortlist) pair once doubling it finds no extra true neighbour (compared with
    /// the point one doubling back, whatever the ladder's step): past
    /// that point the pair only gets dearer, and the widest probes are what make profiling slow.
    /// </summary>
    public bool StopWhenSaturated { get; init; } = true;

    /// <summary>
    /// When set, stop raising nprobe for a (scan dim, shortlist) pair once its recall reaches this: a caller that only
    /// needs the cheapest point reaching a target (the tuner comparing candidates) skips the widest, slowest probes.
    /// </summary>
    public double? StopAtRecall { get; init; }

    /// <summary>
    /// When set, a series also ends once a point costs more than this many µs per query (its first timing) without
    /// reaching <see cref="StopAtRecall"/>: a caller comparing candidates that already has one reaching the target at a
    /// fraction of that cost (the tuner) skips the points that could not make this one win. The points measured then
    /// depend on the machine's speed, so only a comparison may set it — never a profile an index keeps.
    /// </summary>
    internal double? StopAboveMicros { get; init; }

    /// <summary>Threads for the exact ground truth (0 = all cores); timed searches always run on one thread.</summary>
    public int Threads { get; init; }

    /// <summary>Optional progress lines (where the profile's time went); null = silent.</summary>
    public Action<string>? Trace { get; init; }

    /// <summary>
    /// With <see cref="RefineNProbes"/>: after the sweep, each series also measures those nprobes that lie between the
    /// first point reaching this recall (its sampling margin allowed for) and the point before it.
    /// </summary>
    public double? RefineTarget { get; init; }

    /// <summary>Several refine targets (each as <see cref="RefineTarget"/>), e.g. every recall an index is tuned for.</summary>
    public IReadOnlyList<double>? RefineTargets { get; init; }

    /// <summary>A finer nprobe ladder for <see cref="RefineTarget"/> (e.g. <see cref="IndexProfiler.Ladder"/> with 4 steps per doubling).</summary>
    public IReadOnlyList<int>? RefineNProbes { get; init; }

    /// <summary>
    /// When set, each refine target refines only this many series: those whose first point reaching it costs the
    /// fewest FLOPs (FLOPs, not time, so the points measured do not depend on the machine). A profile that only has to
    /// rank one index against another (the tuner's candidates) needs its cheapest point at the target, not every series'.
    /// </summary>
    public int? RefineSeries { get; init; }

    /// <summary>
    /// When set, only the grid lines it accepts are measured (given each line's stored parameters, nprobe unset): a
    /// caller that knows which series can matter (the tuner's final profile) skips the rest of the grid.
    /// </summary>
    public Func<SearchParams, bool>? SeriesFilter { get; init; }

    /// <summary>
    /// Queries and their exact neighbours computed by the caller (the tuner computes them once for every candidate
    /// built on the same rows, with the blocked flat search); null = sampled and searched here.
    /// </summary>
    internal ProfileTruth? Truth { get; init; }

    /// <summary>
    /// Whether the points on a frontier are timed a second time on warm code (pass 2; default). The tuner's candidates
    /// skip it: it times their target points again anyway, in interleaved rounds against each other.
    /// </summary>
    internal bool Retime { get; init; } = true;
}

/// <summary>
/// Profiling queries with their exact top-<see cref="Kq"/> ids (row-major, −1 padded) and the stored id each query is
/// (−1 for a query that is not a stored vector, whose neighbour list then keeps every id).
/// </summary>
internal sealed record ProfileTruth(long[] QueryIds, float[] Queries, long[] ExactIds, int Kq);

/// <summary>
/// The profiling and budget logic every index shares: the index says which configurations are worth measuring
/// (<see cref="ProfileSeries"/>), this measures them the same way for every spec and keeps the frontier, and a budget
/// is turned into one frontier point's concrete parameters by one rule.
/// </summary>
internal static class IndexProfiler
{
    /// <summary>
    /// One line of the grid: the parameters stored in the profile (<paramref name="Stored"/>, at the profile's k) and
    /// the ones actually run for the k + 1 search that drops each query's own id (<paramref name="Run"/>); every
    /// nprobe in <paramref name="NProbes"/> is tried in ascending order.
    /// </summary>
    public readonly record struct ProfileSeries(SearchParams Stored, SearchParams Run, IReadOnlyList<int> NProbes);

    /// <summary>
    /// Measures recall@k (against exact search), FLOPs and single-thread microseconds per query of every series
    /// point, with a seeded sample of the index's own vectors as queries (each one's own id left out of both the exact
    /// and the approximate results), and returns the Pareto frontier.
    /// </summary>
    public static ComputeProfile Measure(IVectorIndex index, ProfileOptions o, long[] sortedLiveIds, IReadOnlyList<ProfileSeries> series)
    {
        int D = index.Dimension, k = o.K, kq = k + 1;
        int nq;
        long[] queryIds;
        float[] queries;
        long traceStart = Stopwatch.GetTimestamp();
        var exactIds = new long[0];
        if (o.Truth is { } known)
        {
            nq = known.QueryIds.Length;
            if (known.Kq != kq || known.Queries.Length != (long)nq * D || known.ExactIds.Length != (long)nq * kq || nq == 0)
                throw new ArgumentException($"Profile truth: {nq} queries of dimension {D} with {kq} neighbours each were expected.", nameof(o));
            queryIds = known.QueryIds;
            queries = known.Queries;
            exactIds = known.ExactIds;
        }
        else if (o.Queries is { } given)
        {
            if (given.Dimension != D) throw new ArgumentException($"Profile queries have dimension {given.Dimension}; the index has {D}.", nameof(o));
            if (given.Count == 0) throw new ArgumentException("Profile queries: the sample is empty.", nameof(o));
            nq = Math.Min(o.HeldOutQueries, given.Count);
            queryIds = new long[nq];
            Array.Fill(queryIds, -1L); // not stored vectors: nothing to leave out of their neighbour lists
            queries = EvenRows(given, nq);
        }
        else
        {
            nq = Math.Min(o.HeldOutQueries, sortedLiveIds.Length);
            queryIds = SampleIds(sortedLiveIds, nq, o.Seed);
            queries = new float[nq * D];
            index.ReadStoredVectors(queryIds, queries); // caller space: the profile runs the public search path, timings included
        }

        if (o.Truth is not null) { }
        else if (index is IvfIndex { VectorSource: not null })
        {
            // Vectors served by an external source (a collection's record store): an exact search per query would read
            // every stored vector once per query; one pass over them, scoring all queries per chunk, reads each once.
            exactIds = new long[nq * kq];
            ExactByOnePass(index, queries, nq, kq, sortedLiveIds, exactIds);
        }
        else
        {
            var truthParams = new SearchParams { Exact = true, Rerank = [new RerankStage(D, null)] }; // exact at the full D
            var exactScores = new float[nq * kq];
            exactIds = new long[nq * kq];
            index.SearchBatch(queries, kq, exactIds, exactScores, truthParams, null, o.Threads, out _);
        }
        var truth = new HashSet<long>[nq];
        long truthTotal = 0;
        for (int i = 0; i < nq; i++)
        {
            truth[i] = [.. Others(exactIds.AsSpan(i * kq, kq), queryIds[i], k)];
            truthTotal += truth[i].Count;
        }

        o.Trace?.Invoke($"profile: exact truth for {nq} queries {Stopwatch.GetElapsedTime(traceStart).TotalSeconds:F2} s");
        traceStart = Stopwatch.GetTimestamp();
        var ids = new long[nq * kq];
        var scores = new float[nq * kq];
        // Pass 1: recall and FLOPs of every configuration (deterministic), and a first timing (the earliest points also
        // warm the JIT and the scratch buffers: pass 2 times again whatever might be on a frontier).
        var measured = new List<(ProfilePoint Point, SearchParams Run)>();
        var lines = o.SeriesFilter is { } accept ? series.Where(l => accept(l.Stored)).ToList() : [.. series];
        if (lines.Count == 0) throw new ArgumentException("The profile's series filter accepted no line of the grid.", nameof(o));
        // A bounded profile (StopAtRecall) only serves targets up to its stop, so a point needing more than
        // FlopsBoundFactor times the FLOPs of a point already reaching the stop is never picked for such a target: each
        // series ends there. The series advance together, one nprobe step per round, so the points are measured roughly
        // cheapest first and the bound is set by one of the cheapest points reaching the stop, before any series spends
        // its widest probes. FLOPs, not time, decide, so the set of points measured is the same on every machine (the
        // tuner's determinism).
        double flopsBound = double.PositiveInfinity;
        // Hits of every point measured so far, per series: saturation compares with the point one doubling back (the
        // previous one on a powers-of-two ladder; a few steps back on a finer one, where one step can add nothing).
        var history = lines.Select(_ => new List<(int NProbe, long Hits)>()).ToArray();
        var historyFlops = lines.Select(_ => new List<double>()).ToArray(); // FLOPs per query of each point in history
        var done = new bool[lines.Count];
        var seconds = new double[lines.Count];
        int maxSteps = lines.Max(l => l.NProbes.Count);
        for (int step = 0; step < maxSteps; step++)
            for (int s = 0; s < lines.Count; s++)
            {
                var line = lines[s];
                if (done[s]) continue;
                if (step >= line.NProbes.Count) { done[s] = true; continue; }
                int nprobe = line.NProbes[step];
                var (point, hits) = MeasurePoint(s, nprobe);
                if (o.StopAtRecall is double stop && hits >= stop * truthTotal)
                {
                    flopsBound = Math.Min(flopsBound, FlopsBoundFactor * point.FlopsPerQuery);
                    done[s] = true;
                }
                else if ((o.StopWhenSaturated && (hits == truthTotal || hits <= HitsOneDoublingBack(history[s], nprobe))) || point.FlopsPerQuery > flopsBound
                    || point.MicrosPerQuery > (o.StopAboveMicros ?? double.PositiveInfinity))
                    done[s] = true;
                history[s].Add((nprobe, hits));
                historyFlops[s].Add(point.FlopsPerQuery);
                if (done[s] && o.Trace is { } trace)
                    trace($"profile:   scan {line.Run.ScanDim} shortlist {line.Stored.Shortlist} rerank [{string.Join(",", line.Stored.Rerank ?? [])}]: " +
                        $"{step + 1} points up to nprobe {nprobe} (recall {point.Recall:F3}, {point.MicrosPerQuery:F0} us) {seconds[s]:F2} s");
            }

        // Refinement: where a series first reaches the refine target (its recall minus the sampling margin clearing it),
        // the finer ladder's nprobes between that point and the one before are measured too, so the point a target
        // picks probes barely more lists than it needs — at the cost of a point or two per series, not a finer ladder
        // over the whole sweep.
        var refineTargets = (o.RefineTargets ?? []).Concat(o.RefineTarget is double one ? [one] : []).Distinct().Order().ToArray();
        if (refineTargets.Length > 0 && o.RefineNProbes is { } fine)
        {
            int before = measured.Count;
            var refined = new HashSet<(int Series, int NProbe)>(); // two targets between the same two points: measured once
            foreach (double refine in refineTargets)
            {
                // Each series' first point reaching the target, found once (−1: none; 0: nothing below it to refine).
                var first = history.Select(h => h.FindIndex(x => ComputeProfile.Reaches((double)x.Hits / Math.Max(1, truthTotal), refine, k, nq))).ToArray();
                var which = Enumerable.Range(0, lines.Count).Where(s => first[s] > 0);
                if (o.RefineSeries is int keep)
                    which = which.OrderBy(s => historyFlops[s][first[s]]).ThenBy(s => s).Take(Math.Max(0, keep));
                foreach (int s in which)
                {
                    var h = history[s];
                    int j = first[s];
                    foreach (int np in fine)
                        if (np > h[j - 1].NProbe && np < h[j].NProbe && refined.Add((s, np))) MeasurePoint(s, np);
                }
            }
            o.Trace?.Invoke($"profile: refined near {string.Join(", ", refineTargets)}: {measured.Count - before} points");
        }

        (ProfilePoint Point, long Hits) MeasurePoint(int s, int nprobe)
        {
            var line = lines[s];
            var run = line.Run with { NProbe = nprobe };
            long t0 = Stopwatch.GetTimestamp();
            index.SearchBatch(queries, kq, ids, scores, run, null, 1, out var stats);
            double micros = Stopwatch.GetElapsedTime(t0).TotalMicroseconds / nq;
            seconds[s] += micros * nq / 1e6;
            long hits = 0;
            for (int i = 0; i < nq; i++)
                foreach (long id in Others(ids.AsSpan(i * kq, kq), queryIds[i], k))
                    if (truth[i].Contains(id)) hits++;
            var point = new ProfilePoint(line.Stored with { NProbe = nprobe }, stats.FlopsPerQuery, micros, truthTotal == 0 ? 1 : (double)hits / truthTotal);
            measured.Add((point, run));
            return (point, hits);
        }

        o.Trace?.Invoke($"profile: pass 1, {lines.Count} series, {measured.Count} points {Stopwatch.GetElapsedTime(traceStart).TotalSeconds:F2} s");
        traceStart = Stopwatch.GetTimestamp();
        // Pass 2: time again the points on either frontier (FLOPs or pass-1 time), on warm code, best of two runs
        // (pass 1's included) to shed interference; then the frontiers are taken again on the final times. Timing needs
        // fewer queries than recall does: an evenly spaced subset of at most RetimeQueries (a quarter of a 1,000-query
        // final profile, which re-timed ~70 frontier points at a million vectors in 28 s with all of them).
        var frontier = new HashSet<ProfilePoint>(new ComputeProfile(measured.Select(m => m.Point), k, nq, index.Count).Points, ReferenceEqualityComparer.Instance);
        var points = new List<ProfilePoint>();
        int nt = Math.Min(nq, RetimeQueries);
        var timed = nt == nq ? queries : new float[(long)nt * D];
        if (nt < nq)
            for (int i = 0; i < nt; i++)
                queries.AsSpan((int)((long)i * nq / nt * D), D).CopyTo(timed.AsSpan(i * D, D));
        foreach (var (point, run) in measured)
        {
            if (!frontier.Contains(point)) continue;
            if (!o.Retime) { points.Add(point); continue; }
            long t0 = Stopwatch.GetTimestamp();
            index.SearchBatch(timed, kq, ids.AsSpan(0, nt * kq), scores.AsSpan(0, nt * kq), run, null, 1, out _);
            double micros = Math.Min(point.MicrosPerQuery, Stopwatch.GetElapsedTime(t0).TotalMicroseconds / nt);
            points.Add(point with { MicrosPerQuery = micros });
        }
        o.Trace?.Invoke($"profile: pass 2, {points.Count} frontier points {Stopwatch.GetElapsedTime(traceStart).TotalSeconds:F2} s");
        return new ComputeProfile(points, k, nq, index.Count);
    }

    /// <summary>Hits of the latest point probing at most half of <paramref name="nprobe"/> lists; −1 when there is none.</summary>
    private static long HitsOneDoublingBack(List<(int NProbe, long Hits)> history, int nprobe)
    {
        for (int i = history.Count - 1; i >= 0; i--)
            if (history[i].NProbe * 2 <= nprobe) return history[i].Hits;
        return -1;
    }

    /// <summary>
    /// How far past the FLOPs of a point that reaches a bounded profile's stop recall another series may go (see
    /// <see cref="Measure"/>): every point with more FLOPs and less recall than that one is off the FLOPs frontier; the
    /// 50% allow for time per FLOP differing between series (sequential scans vs random rerank reads), since targets
    /// use the time frontier.
    /// </summary>
    internal const double FlopsBoundFactor = 1.5;

    /// <summary>Queries pass 2 re-times each frontier point on (see <see cref="Measure"/>).</summary>
    internal const int RetimeQueries = 250;

    /// <summary>
    /// Exact top-<paramref name="kq"/> ids of every query over the live vectors, read once in chunks through
    /// <see cref="IVectorIndexReader.ReadStoredVectors"/> (caller space) and ranked by the engine's one exact search
    /// (<see cref="ExactScan"/>: the same scores and tie rule as the index's exact mode over resident rows).
    /// </summary>
    private static void ExactByOnePass(IVectorIndexReader index, float[] queries, int nq, int kq, long[] liveIds, long[] exactIds)
    {
        int D = index.Dimension;
        const int Chunk = 4096;
        var rows = new float[Chunk * D];
        var keys = new float[nq * kq];
        var ids = new long[nq * kq];
        var counts = new int[nq];
        for (int start = 0; start < liveIds.Length; start += Chunk)
        {
            int m = Math.Min(Chunk, liveIds.Length - start);
            index.ReadStoredVectors(liveIds.AsSpan(start, m), rows.AsSpan(0, m * D));
            for (int i = 0; i < nq; i++)
            {
                var scan = new ExactScan(index.Metric, queries.AsSpan(i * D, D), keys.AsSpan(i * kq, kq), ids.AsSpan(i * kq, kq), counts[i]);
                scan.Add(rows.AsSpan(0, m * D), D, liveIds.AsSpan(start, m), m);
                counts[i] = scan.Count;
            }
        }
        var sortedKeys = new float[kq];
        for (int i = 0; i < nq; i++)
        {
            var scan = new ExactScan(index.Metric, queries.AsSpan(i * D, D), keys.AsSpan(i * kq, kq), ids.AsSpan(i * kq, kq), counts[i]);
            var outIds = exactIds.AsSpan(i * kq, kq);
            int found = scan.TakeSorted(sortedKeys, outIds);
            outIds[found..].Fill(-1);
        }
    }

    /// <summary>Checks the options every index's profile shares; returns the rerank funnels to profile with.</summary>
    public static RerankStage[][] CheckAll(ProfileOptions o, IVectorIndexReader index, IReadOnlyList<RerankStage> specRerank)
    {
        if (o.RerankVariants is not { } variants) return [Check(o, index, specRerank)];
        if (variants.Count == 0) throw new ArgumentException("RerankVariants needs at least one funnel.", nameof(o));
        return variants.Select(v => Check(o with { Rerank = v, RerankVariants = null }, index, specRerank)).ToArray();
    }

    /// <summary>Checks the options every index's profile shares; returns the rerank stages to profile with.</summary>
    public static RerankStage[] Check(ProfileOptions o, IVectorIndexReader index, IReadOnlyList<RerankStage> specRerank)
    {
        int D = index.Dimension, k = o.K;
        if (k < 1) throw new ArgumentOutOfRangeException(nameof(o), k, "Profile k must be at least 1.");
        if (o.HeldOutQueries < 1) throw new ArgumentOutOfRangeException(nameof(o), o.HeldOutQueries, "At least one profiling query is needed.");
        if (o.Threads < 0) throw new ArgumentOutOfRangeException(nameof(o), o.Threads, "Threads must be ≥ 0 (0 = all cores).");
        if (index.Count <= k)
            throw new InvalidOperationException($"Profiling at k = {k} needs more than {k} vectors in the index (it holds {index.Count}).");
        // Copied: the profile outlives the caller's list.
        RerankStage[] rerank = [.. o.Rerank ?? (specRerank.Count > 0 ? specRerank : [new RerankStage(D, null)])];
        foreach (var st in rerank)
            if (st.Dim < 1 || st.Dim > D || st.Keep < 1)
                throw new ArgumentOutOfRangeException(nameof(o), st, $"Profile rerank stages need dims in [1, {D}] and keeps of at least 1.");
        return rerank;
    }

    /// <summary>
    /// The series for a grid of (scan dim, shortlist multiple) pairs, each swept over <paramref name="nprobes"/>: rerank
    /// keeps below k + 1 would be rejected for the k + 1 search, so the run raises them; the stored point keeps the
    /// real stages.
    /// </summary>
    public static List<ProfileSeries> Grid(int k, int coarseDim, IReadOnlyList<int> scanDims, IReadOnlyList<int> multiples, RerankStage[] rerank,
        IReadOnlyList<int> nprobes)
    {
        int kq = k + 1;
        // Without reranking the scan keeps exactly k, so shortlist variants would all be the same search.
        if (rerank.Length == 0) multiples = [1];
        var measuredRerank = rerank.Select(st => st.Keep < kq ? st with { Keep = kq } : st).ToArray();
        var series = new List<ProfileSeries>();
        foreach (int ds in scanDims)
            foreach (int mult in multiples)
            {
                int shortlist = k * mult;
                var stored = new SearchParams { CoarseDim = coarseDim, ScanDim = ds, Shortlist = shortlist, Rerank = rerank };
                var run = new SearchParams { CoarseDim = coarseDim, ScanDim = ds, Shortlist = Math.Max(shortlist, kq), Rerank = measuredRerank };
                series.Add(new ProfileSeries(stored, run, nprobes));
            }
        return series;
    }

    /// <summary>
    /// The concrete parameters a budgeted request runs: the best frontier point that fits (or the cheapest when none
    /// does, <paramref name="overBudget"/> set), its keeps raised to <paramref name="k"/> where the profile's k was lower.
    /// </summary>
    public static SearchParams BudgetParams(ComputeProfile? profile, SearchParams p, int k, out int point, out bool overBudget)
    {
        if (p.NProbe is not null || p.CoarseDim is not null || p.ScanDim is not null || p.Shortlist is not null || p.Rerank is not null || p.Exact == true)
            throw new ArgumentException(
                "A compute budget (MaxFlops / MaxMicros) or recall target (TargetRecall) picks NProbe, CoarseDim, ScanDim, Shortlist and Rerank from the index's profile; " +
                "leave those null and Exact unset, or drop the budget to choose them yourself.", nameof(p));
        if (p.TargetRecall is double t && !(t > 0 && t <= 1))
            throw new ArgumentOutOfRangeException(nameof(p), t, $"TargetRecall must be in (0, 1] (got {t}).");
        if (profile is null)
            throw new InvalidOperationException(
                "This index has no compute profile, so it cannot honour MaxFlops / MaxMicros / TargetRecall: call Profile() first (the profile is saved with the index).");
        int i = p.TargetRecall is double target
            ? profile.CheapestReachingIndex(target, p.MaxFlops, p.MaxMicros, out _)
            : profile.BestIndex(p.MaxFlops, p.MaxMicros);
        overBudget = i < 0;
        if (overBudget) i = profile.CheapestIndex(p.MaxFlops, p.MaxMicros);
        point = i;
        return profile.ConcreteFor(i, k);
    }

    /// <summary><paramref name="n"/> evenly spaced rows of <paramref name="from"/>, row-major (deterministic, no seed needed).</summary>
    internal static float[] EvenRows(VectorSet from, int n)
    {
        int D = from.Dimension;
        var rows = new float[(long)n * D];
        for (int i = 0; i < n; i++) from.Row((int)((long)i * from.Count / n)).CopyTo(rows.AsSpan(i * D, D));
        return rows;
    }

    /// <summary>A seeded sample of live ids, independent of any map's enumeration order (<paramref name="sorted"/> ascending).</summary>
    internal static long[] SampleIds(long[] sorted, int n, int seed)
    {
        var all = (long[])sorted.Clone();
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

    /// <summary>
    /// nprobe values from 1 to <paramref name="max"/> in <paramref name="stepsPerDoubling"/> geometric steps per
    /// doubling, rounded and distinct: with 2, 1, 2, 3, 4, 6, 8, 11, 16, 23, 32, …; with 4, 1, 2, 3, 4, 5, 6, 7, 8, 10,
    /// 11, 13, 16, 19, 23, 27, 32, … The step bounds how many more lists than it needs the frontier point a target picks
    /// probes (2^(1/steps) − 1: 41% with 2 steps, 19% with 4).
    /// </summary>
    public static int[] Ladder(int max, int stepsPerDoubling)
    {
        var list = new List<int>();
        double factor = Math.Pow(2, 1.0 / stepsPerDoubling);
        for (double v = 1; v <= max + 1e-9; v *= factor)
        {
            int n = (int)Math.Round(v);
            if (n <= max && (list.Count == 0 || list[^1] != n)) list.Add(n);
        }
        if (list[^1] != max && list[^1] * 1.2 < max) list.Add(max);
        return [.. list];
    }

    public static int[] PowersOfTwo(int max)
    {
        var list = new List<int>();
        for (long v = 1; v <= max; v *= 2) list.Add((int)v);
        return [.. list];
    }

    public static int[] DefaultScanDims(int store)
    {
        var dims = new[] { store / 8, store / 4, store / 2, store }.Where(d => d >= 8).ToArray();
        return dims.Length > 0 ? dims : [store]; // a store narrower than 8 dims is still worth one point
    }

    public static int[] Distinct(IReadOnlyList<int> values, int min, int max, string what, string paramName)
    {
        if (values.Count == 0) throw new ArgumentException($"The profile grid needs at least one {what}.", paramName);
        foreach (int v in values)
            if (v < min || v > max)
                throw new ArgumentOutOfRangeException(paramName, v, $"Profile {what} must be in [{min}, {max}].");
        return [.. values.Distinct().Order()];
    }
}
