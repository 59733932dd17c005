using System.Diagnostics;
using Adanns.Engine.Clustering;
using Adanns.Engine.Evaluation;
using Adanns.Engine.Transforms;

namespace Adanns.Engine.Indexes;

/// <summary>Options of <see cref="IndexTuner"/>.</summary>
/// <param name="TargetRecall">The recall@k the index is tuned for (and searched at when a query names no parameters).</param>
/// <param name="K">The k of recall@k.</param>
/// <param name="Seed">Seeds every sample and build: the same data and options give the same choice.</param>
/// <param name="SampleRows">Rows the candidate pipelines are built and compared on (all rows when fewer).</param>
/// <param name="Threads">Threads for builds and exact ground truth (0 = all cores); timed searches run on one.</param>
/// <param name="Queries">Optional sample of real queries (e.g. from a query log) to measure recall and time on, instead of
/// held-out stored vectors: the difficulty of a user's queries can differ from that of the stored vectors. Never pass a
/// benchmark's test queries here.</param>
/// <param name="MaxBytesPerVector">Optional memory limit: candidates whose resident index bytes per vector (codes, lists,
/// scan stores, Prefix8 rows, and the rows of an index that keeps its vectors; not the full vectors a codec pipeline
/// reads for rerank from an external store) exceed it, as measured on the sample, are not chosen. Spec <c>Auto,Bytes64</c>.</param>
/// <param name="MaxChoiceSeconds">Optional time limit on the choice on the sample: once spent, no further candidate is
/// built (at least two always are) and the list-count stage is skipped. The final build and profile come on top. A limit
/// makes the set of candidates depend on the machine's speed, so leave it unset where the choice must repeat.</param>
public sealed record TunerOptions(double TargetRecall = 0.95, int K = 10, int Seed = 1, int SampleRows = 20_000, int Threads = 0,
    VectorSet? Queries = null, double? MaxBytesPerVector = null, double? MaxChoiceSeconds = null)
{
    /// <summary>Optional progress lines (each stage and where its time went); null = silent.</summary>
    public Action<string>? Trace { get; init; }

    /// <summary>
    /// Further recalls the index will be searched at (with <see cref="SearchParams.TargetRecall"/>), besides
    /// <see cref="TargetRecall"/> (still the one a query without parameters runs at). The structure is chosen for all of
    /// them — each candidate scored by the geometric mean of its µs at each target, so every target counts by its ratio,
    /// not the slowest one alone — and the final profile measures a fine nprobe ladder near each. Null = the one target.
    /// </summary>
    public IReadOnlyList<double>? Targets { get; init; }

    /// <summary>Every target, ascending, without repeats: <see cref="TargetRecall"/> and <see cref="Targets"/>.</summary>
    internal double[] AllTargets => [.. (Targets ?? []).Append(TargetRecall).Distinct().Order()];

    /// <summary>The highest target: profiles run until it is reached (see <see cref="IndexTuner.StopFor"/>).</summary>
    internal double TopTarget => AllTargets[^1];
}

/// <summary>One candidate pipeline as the tuner measured it on the sample.</summary>
/// <param name="Spec">The candidate (its nlist scaled to the sample).</param>
/// <param name="MicrosAtTarget">Single-thread µs per query of its cheapest profiled point reaching the target, timed in rounds
/// interleaved with the other candidates (best round kept); with several targets (<see cref="TunerOptions.Targets"/>) the
/// geometric mean over them of that figure; +∞ when a target was not reached.</param>
/// <param name="RecallAtPoint">The profiled recall of that point (or of its best point when none reached the target).</param>
/// <param name="BuildSeconds">Build + profile time on the sample.</param>
/// <param name="GridNearTarget">The query-time series (shortlist as a multiple of k, first rerank stage's keep or 0, scan dim)
/// that put a point on its measured frontier near the target (recall within 0.05 below it, or above): the final profile
/// of the chosen candidate measures only these and the next longer shortlist, instead of the whole grid.</param>
/// <param name="BytesPerVector">Its resident index bytes per vector on the sample (see <see cref="TunerOptions.MaxBytesPerVector"/>).</param>
/// <param name="OverMemoryLimit">Whether those bytes exceed <see cref="TunerOptions.MaxBytesPerVector"/> (then it is never chosen).</param>
public sealed record TunerCandidate(IndexSpec Spec, double MicrosAtTarget, double RecallAtPoint, double BuildSeconds,
    IReadOnlyList<(int ShortlistMultiple, int FirstKeep, int ScanDim)>? GridNearTarget = null, double BytesPerVector = 0, bool OverMemoryLimit = false)
{
    /// <summary>The profile's first timing of its cheapest point reaching the highest target (+∞ when none did).</summary>
    internal double TopMicros { get; init; } = double.PositiveInfinity;

    /// <summary>
    /// True when it did not reach a target and its profile had points past twice the µs of a candidate profiled before it
    /// that did: its series stopped there (it could not have won); <see cref="RecallAtPoint"/> is the recall it had got to.
    /// </summary>
    public bool Outpaced { get; init; }
}

/// <summary>What the tuner decided and why.</summary>
/// <param name="Spec">The chosen pipeline, as built on all the vectors.</param>
/// <param name="Rotate">Whether it rotates (the raw prefixes were measured to rank worse than rotated ones).</param>
/// <param name="PrefixRecallRaw">recall@k of exact search on the D/4 prefix of the raw sample vectors.</param>
/// <param name="PrefixRecallRotated">The same after the energy-ordering rotation.</param>
/// <param name="Candidates">Every candidate, as measured on the sample.</param>
/// <param name="Seconds">Tuning + the final build + its profile.</param>
/// <param name="ChooseSeconds">Of <paramref name="Seconds"/>: the structural choice on the sample.</param>
/// <param name="FinalBuildSeconds">Of <paramref name="Seconds"/>: the build on all vectors.</param>
/// <param name="FinalProfileSeconds">Of <paramref name="Seconds"/>: the final profile.</param>
/// <param name="Chosen">The candidate the spec was taken from (measured on the sample).</param>
public sealed record TuningReport(IndexSpec Spec, bool Rotate, double PrefixRecallRaw, double PrefixRecallRotated,
    IReadOnlyList<TunerCandidate> Candidates, double Seconds, double ChooseSeconds = 0, double FinalBuildSeconds = 0, double FinalProfileSeconds = 0,
    TunerCandidate? Chosen = null)
{
    /// <summary>
    /// The rotation the candidates were built with (learned from the sample), when the choice rotates: the final build
    /// uses it rather than learning another from the full data (a D×D covariance and eigendecomposition: ~1.4 s at
    /// D = 784), since both are learned from a few tens of thousands of evenly spaced rows of the same vectors.
    /// </summary>
    internal Transforms.RotationTransform? SampleRotation { get; init; }
}

/// <summary>
/// Chooses a whole pipeline for a recall target on the user's own vectors, by measurement: a user gives vectors, a
/// metric and a target, and gets the index that was fastest at that target on a sample of their data.
/// </summary>
/// <remarks>
/// <para>Why a small staged search rather than a grid over every knob: each structural choice costs a build, and on
/// this scale of machine a build of the full data costs seconds to minutes. So the search is staged. (1) Rotation is
/// decided alone, cheaply and without building anything: exact search on the D/4-dim prefix of a sample, raw vs
/// rotated, against full-D truth — a Matryoshka model's raw prefixes already rank well and gain nothing. (2) A few
/// structurally different pipelines (list codec and prefix dims, each a stated fraction of D so nothing is fitted
/// to one data set) are built on a sample and profiled, i.e. their query-time frontier (nprobe × shortlist) is
/// measured on held-out base vectors; each is scored by its single-thread µs at the target. (3) The winner is built
/// on all vectors and profiled again, and searches without parameters run at the target (<see cref="SearchParams.TargetRecall"/>).
/// Query-time parameters are never fixed by the tuner: they are read off the measured frontier per call.</para>
/// <para>Never sees a benchmark's queries or ground truth: every measurement uses the vectors themselves (each
/// profiling query is a stored vector, its own id left out; the final profile's are held out of the final build and
/// added after it, where there are enough vectors).</para>
/// </remarks>
public static class IndexTuner
{
    /// <summary>Tunes, builds and profiles an index for <paramref name="vectors"/> (ids 0..N−1 unless given).</summary>
    public static (IVectorIndex Index, TuningReport Report) Build(VectorSet vectors, Metric metric, TunerOptions? options = null, long[]? ids = null)
    {
        var total = Stopwatch.StartNew();
        var o = options ?? new TunerOptions();
        var choice = Choose(vectors, metric, o);
        double chose = total.Elapsed.TotalSeconds;
        o.Trace?.Invoke($"tuner: chose {choice.Spec} in {chose:F2} s");
        var buildOptions = BuildOptions(o, ids, final: true, nlist: choice.Spec.NList, coarseDim: choice.Spec.CoarseDim ?? vectors.Dimension);
        var finalCache = new TrainingCache();
        buildOptions = buildOptions with { Cache = finalCache };
        IVectorIndex index;
        double built;
        if (o.Queries is null && vectors.Count >= HoldOutMinimum)
        {
            // The final profile's queries are held out of the build and added afterwards: a query the index was built
            // with sits in the k-means it shaped, and its recall was measured 0.007–0.011 above that of new queries
            // (Fashion-MNIST, nprobe 3–4: stored rows 0.9277 / 0.9580, held-out rows 0.9114 / 0.9483, the test
            // images 0.9094 / 0.9452), which made the tuned point miss its target on new queries.
            var (kept, keptIds, held, heldIds) = HoldOut(vectors, ids, FinalProfileQueries, o.Seed);
            using (kept)
            using (held)
            {
                if (choice.SampleRotation is { } r) finalCache.UseRotation(kept, RotationSampleRows, r);
                index = VectorIndex.Build(kept, choice.Spec, metric, buildOptions with { Ids = keptIds });
                built = total.Elapsed.TotalSeconds;
                o.Trace?.Invoke($"tuner: built it on {kept.Count} rows in {built - chose:F2} s ({held.Count} held out to profile on)");
                ProfileNear(index, o, choice.Chosen?.GridNearTarget, TruthFor(kept, keptIds, metric, o with { Queries = held }, FinalProfileQueries));
                index.AddRange(held, heldIds, o.Threads);
            }
        }
        else
        {
            if (choice.SampleRotation is { } r) finalCache.UseRotation(vectors, RotationSampleRows, r);
            index = VectorIndex.Build(vectors, choice.Spec, metric, buildOptions);
            built = total.Elapsed.TotalSeconds;
            o.Trace?.Invoke($"tuner: built it on {vectors.Count} rows in {built - chose:F2} s");
            ProfileNear(index, o, choice.Chosen?.GridNearTarget, TruthFor(vectors, ids, metric, o, FinalProfileQueries));
        }
        return (index, choice with
        {
            Seconds = total.Elapsed.TotalSeconds, ChooseSeconds = chose, FinalBuildSeconds = built - chose,
            FinalProfileSeconds = total.Elapsed.TotalSeconds - built,
        });
    }

    /// <summary>
    /// Profiles an index built from a tuned spec the way the tuner does (the frontier it then searches at: finer in
    /// nprobe and on more held-out vectors than the candidates' — 1,000 queries × k neighbours put a recall's sampling
    /// error near ±0.004, where 200 would leave ±0.01) and sets its tuned recall, so searches without parameters run at
    /// the target. Collections call it after every (re)training of an <c>Auto</c> collection.
    /// </summary>
    public static ComputeProfile ProfileTuned(IVectorIndex index, TunerOptions? options = null) => ProfileNear(index, options, null, null);

    private static ComputeProfile ProfileNear(IVectorIndex index, TunerOptions? options, IReadOnlyList<(int, int, int)>? near, ProfileTruth? truth)
    {
        ArgumentNullException.ThrowIfNull(index);
        var o = options ?? new TunerOptions();
        // The frontier is measured up to a few points above the target (or saturation): the widest probes are what make
        // a profile slow, and a search asking for more than the profile measured runs its best point.
        var profile = index.Profile(ProfileFor(index, o, near) with
        {
            HeldOutQueries = FinalProfileQueries, NProbes = IndexProfiler.Ladder(index.NList, 2),
            RefineTargets = o.AllTargets, RefineNProbes = IndexProfiler.Ladder(index.NList, FinalLadderSteps),
            StopAtRecall = StopFor(o.TopTarget, o.K, FinalProfileQueries), Truth = truth,
        });
        profile.TunedRecall = o.TargetRecall;
        return profile;
    }

    /// <summary>
    /// The structural choice alone: rotation decided, candidates built and profiled on a sample of
    /// <paramref name="vectors"/>, the fastest at the target returned with its nlist sized for
    /// <paramref name="totalCount"/> vectors (default: all of <paramref name="vectors"/>). Nothing is built at full size.
    /// </summary>
    public static TuningReport Choose(VectorSet vectors, Metric metric, TunerOptions? options = null, long? totalCount = null)
    {
        ArgumentNullException.ThrowIfNull(vectors);
        var o = options ?? new TunerOptions();
        if (!(o.TargetRecall > 0 && o.TargetRecall <= 1))
            throw new ArgumentOutOfRangeException(nameof(options), o.TargetRecall, $"TargetRecall must be in (0, 1] (got {o.TargetRecall}).");
        foreach (double t in o.Targets ?? [])
            if (!(t > 0 && t <= 1))
                throw new ArgumentOutOfRangeException(nameof(options), t, $"Targets: every recall target must be in (0, 1] (got {t}).");
        if (o.K < 1) throw new ArgumentOutOfRangeException(nameof(options), o.K, "K must be at least 1.");
        if (o.MaxChoiceSeconds is double ms && !(ms >= 0))
            throw new ArgumentOutOfRangeException(nameof(options), ms, $"MaxChoiceSeconds must be ≥ 0 (got {ms}).");
        if (o.MaxBytesPerVector is double mb && !(mb > 0 && double.IsFinite(mb)))
            throw new ArgumentOutOfRangeException(nameof(options), mb, $"MaxBytesPerVector must be a positive number of bytes (got {mb}).");
        if (o.Queries is { } q && (q.Dimension != vectors.Dimension || q.Count == 0))
            throw new ArgumentException($"Queries: the sample must be non-empty {vectors.Dimension}-dim vectors (got {q.Count} × {q.Dimension}).", nameof(options));
        int minRows = MinimumVectors;
        if (vectors.Count < minRows)
            throw new ArgumentException($"Tuning needs at least {minRows} vectors (got {vectors.Count}); build a flat index or a spec of your own for fewer.", nameof(vectors));
        var total = Stopwatch.StartNew();
        int D = vectors.Dimension;
        long count = totalCount ?? vectors.Count;
        if (count < vectors.Count) throw new ArgumentOutOfRangeException(nameof(totalCount), count, $"The total count must be at least the {vectors.Count} vectors given.");

        // The sample the candidates are compared on: evenly spaced rows (deterministic, no seed needed).
        int ns = Math.Min(vectors.Count, Math.Max(minRows, o.SampleRows));
        using var sample = new VectorSet(D, ns);
        for (int i = 0; i < ns; i++) sample.Add(vectors.Row((int)((long)i * vectors.Count / ns)));

        // Every candidate learns the same rotation from the sample, and some share a coarse quantizer: once each.
        var cache = new TrainingCache();
        var (raw, rotated) = PrefixRecalls(sample, metric, o, cache);
        // Rotate only when it clearly helps (5 points of prefix recall): the rotation costs D² multiply-adds per query,
        // and a small gain in prefix ranking rarely pays for that.
        bool rotate = rotated > raw + 0.05;
        o.Trace?.Invoke($"tuner: D/4-prefix recall raw {raw:F3}, rotated {rotated:F3} ({total.Elapsed.TotalSeconds:F2} s)");

        // Every candidate is built on the same rows and profiled with the same queries: their exact neighbours once.
        var truth = TruthFor(sample, null, metric, o, CandidateProfileQueries);
        o.Trace?.Invoke($"tuner: exact neighbours of {truth.QueryIds.Length} profiling queries ({total.Elapsed.TotalSeconds:F2} s)");
        bool OverTime() => total.Elapsed.TotalSeconds > (o.MaxChoiceSeconds ?? double.PositiveInfinity);
        var built = new List<(IVectorIndex Index, TunerCandidate Candidate, bool Reached)>();
        TunerCandidate best;
        double factor = ListsPerSqrtN[0];
        try
        {
            // Stage 2: the structures, at the first lists-per-√N factor. Those that scan codes or a short prefix with a
            // second list per vector (Spill) are measured first: one of them was the fastest in the runs on real data
            // recorded in bench/RESULTS.md (debian-minilm, Fashion-MNIST) and on the 1M synthetic set, so by the time
            // the full-width scans (rigid IVF, the D/2 SQ8 store) are profiled a candidate usually reaches the target,
            // and their series stop once a point costs StopAboveFactor times its µs: past that they could not win.
            // Where one of them is the fastest (rigid IVF on the built-in synthetic set) it reaches the target below
            // the bound and nothing changes. The order changes only how soon the bound exists, never which candidate
            // wins: the list keeps Candidates' order for the tie rule.
            var specs = Candidates(D, ns, rotate, o.K).ToArray();
            var measured = new (IVectorIndex Index, TunerCandidate Candidate, bool Reached)?[specs.Length];
            try
            {
                foreach (int i in Enumerable.Range(0, specs.Length).OrderBy(i => specs[i].Spill ? 0 : 1).ThenBy(i => i))
                {
                    if (measured.Count(m => m is not null) >= 2 && OverTime()) break;
                    double bound = measured.Where(m => m is { Reached: true }).Select(m => m!.Value.Candidate.TopMicros).DefaultIfEmpty(double.PositiveInfinity).Min();
                    measured[i] = Measure(specs[i], sample, metric, o, truth, cache, StopAboveFactor * bound);
                }
            }
            finally
            {
                foreach (var m in measured) if (m is { } b) built.Add(b);
            }
            TimeRoundRobin(built, Enumerable.Range(0, built.Count).ToArray(), sample, o);
            best = Best(built.Select(b => b.Candidate));
            // Stage 3: the winning structure at finer list counts (finer lists cost more coarse ranking and need more
            // probes, but each probe scans fewer rows: which way it goes depends on the data), a doubling at a time, each
            // timed against the best so far in interleaved rounds; the first that does not win ends the search (the
            // fewer lists win a close call: they build faster). The factor found is applied to the full count.
            if (!double.IsPositiveInfinity(best.MicrosAtTarget) && !OverTime())
            {
                var structure = best.Spec;
                int dc = structure.CoarseDim ?? D;
                foreach (double f in ListsPerSqrtN.Skip(1))
                {
                    int nl = NListFor(ns, dc, f);
                    if (nl <= best.Spec.NList) continue; // capped: no finer list count left at this factor
                    if (OverTime()) break;
                    built.Add(Measure(structure with { NList = nl }, sample, metric, o, truth, cache, StopAboveFactor * best.TopMicros));
                    var contest = Enumerable.Range(0, built.Count).Where(i => built[i].Candidate.Spec with { NList = structure.NList } == structure).ToArray();
                    TimeRoundRobin(built, contest, sample, o);
                    var winner = Best(contest.Select(i => built[i].Candidate));
                    bool finerWon = winner.Spec.NList == nl;
                    best = winner;
                    if (!finerWon) break;
                }
                factor = ListsPerSqrtN.FirstOrDefault(f => NListFor(ns, dc, f) == best.Spec.NList, factor);
            }
        }
        finally
        {
            foreach (var b in built) b.Index.Dispose();
        }
        var candidates = built.Select(b => b.Candidate).ToList();
        var chosen = best.Spec with { NList = NListFor((int)Math.Min(count, int.MaxValue), best.Spec.CoarseDim ?? D, factor) };
        return new TuningReport(chosen, rotate, raw, rotated, candidates, total.Elapsed.TotalSeconds, Chosen: best)
        {
            SampleRotation = rotate ? cache.Rotation(sample, RotationSampleRows, () => RotationTransform.Learn(sample, RotationSampleRows)) : null,
        };
    }

    /// <summary>
    /// The list counts tried, as multiples of √N: 4√N (lists of ~√N/4 rows, the usual IVF balance) for every structure,
    /// then 8√N and 16√N for the winner while each doubling wins (faiss's guidance spans 4√N to 16√N). Trying only the
    /// two ends could miss the middle: on debian-minilm the README's hand-written pipeline, with 2,048 lists (8.4√N),
    /// ran 15.6–17.0k QPS at recall 0.95 (bench/RESULTS.md, quiet), the tuner's 16√N choice 14.1k (interpolated).
    /// </summary>
    internal static readonly double[] ListsPerSqrtN = [4, 8, 16];

    /// <summary>
    /// The fastest candidate at the target; when none reached it on the sample, the most accurate. Candidates within
    /// <see cref="ComputeProfile.TimeTolerance"/> of the fastest count as equally fast, and then the earliest in
    /// <see cref="Candidates"/>' order wins (the simpler pipeline), so close calls do not flip from run to run.
    /// </summary>
    private static TunerCandidate Best(IEnumerable<TunerCandidate> candidates)
    {
        var all = candidates.Where(c => !c.OverMemoryLimit).ToList();
        if (all.Count == 0)
        {
            var smallest = candidates.MinBy(c => c.BytesPerVector)!;
            throw new ArgumentOutOfRangeException("options", $"MaxBytesPerVector: no candidate pipeline fits; the smallest, {smallest.Spec}, keeps {smallest.BytesPerVector:F0} bytes per vector.");
        }
        var best = all.MinBy(c => (c.MicrosAtTarget, -c.RecallAtPoint))!;
        if (double.IsPositiveInfinity(best.MicrosAtTarget)) return all.MaxBy(c => c.RecallAtPoint)!;
        return all.First(c => c.MicrosAtTarget <= best.MicrosAtTarget * (1 + ComputeProfile.TimeTolerance));
    }

    /// <summary>
    /// Candidate pipelines, every dim a fixed fraction of D (rounded to what the codec needs): rigid IVF; an 8-bit scan
    /// store on the D/2 prefix with a full rerank (little memory traffic per candidate, exact rows resident); an 8-bit
    /// D/4 store with Spill and an 8-bit D/2 first rerank stage; 4-bit PQ codes of the D/3 prefix with a second list per
    /// vector and an 8-bit first rerank stage on D/2 (the fewest bytes per scanned vector); 1-bit RaBitQ codes of the D/2
    /// prefix with Spill and a bound-driven first rerank. Which wins depends on how clustered and how Matryoshka-like
    /// the data is: that is measured. (An 8-bit D/4 store without Spill was a candidate too; it never beat the D/4 store
    /// with Spill and Prefix8 in the runs recorded in bench/RESULTS.md, and each candidate costs a build.)
    /// </summary>
    internal static IEnumerable<IndexSpec> Candidates(int D, int rows, bool rotate, int k)
    {
        // Each candidate's list count is sized for its own coarse dim (see MaxCoarseMacsPerVector).
        int NL(int coarseDim) => NListFor(rows, coarseDim);
        string rot = rotate ? "Rot," : "";
        // Rigid IVF (float lists at D, no rerank): on tightly clustered data few probes suffice and nothing beats it.
        yield return IndexSpec.Parse($"{rot}IVF{NL(D)}");
        int dc = Math.Max(8, D / 4);
        int dcHalf = Math.Max(8, D / 2);
        yield return IndexSpec.Parse($"{rot}IVF{NL(dcHalf)}@{dcHalf},Scan{dcHalf},SQ8,Rerank{D}");
        // The same D/4 scan with a second (SOAR) list per vector and an 8-bit first rerank stage on D/2: fewer probes for
        // the same recall, and a first stage that reads a quarter of the bytes (any codec composes with both).
        int d8Sq = RoundDown(D / 2, 8);
        if (d8Sq > dc && d8Sq < D)
            yield return IndexSpec.Parse($"{rot}IVF{NL(dc)}@{dc},Scan{dc},SQ8,Spill,Prefix8@{d8Sq},Rerank{d8Sq}/{6 * k},Rerank{D}");
        int dq = RoundDown(Math.Max(16, D / 3), 16);
        if (dq >= 16 && dq <= D)
        {
            int m = dq / 2; // two dims per 4-bit sub-quantizer
            int d8 = Math.Max(dq, RoundDown(D / 2, 8));
            string funnel = d8 < D ? $",Prefix8@{d8},Rerank{d8}/{6 * k},Rerank{D}" : $",Rerank{D}";
            yield return IndexSpec.Parse($"{rot}IVF{NL(Math.Min(D, dq))}@{Math.Min(D, dq)},PQ{m}x4@{dq},Spill{funnel}");
        }
        // 1-bit RaBitQ codes of the D/2 prefix with a second list per vector: unbiased estimates with a bound, so the
        // first rerank stage (at the code dim) reranks only candidates that can still enter the top k — its keep is an
        // upper limit, not a fixed count (the profile still varies it).
        int dr = RoundDown(D / 2, 8);
        if (dq >= 16 && dr > 8 && dr < D)
            yield return IndexSpec.Parse($"{rot}IVF{NL(Math.Min(D, dq))}@{Math.Min(D, dq)},RQ1@{dr},Spill,Rerank{dr}/{4 * k},Rerank{D}");
    }

    /// <summary>Vectors the tuner needs at least (an <c>Auto</c> collection trains once it holds this many).</summary>
    public const int MinimumVectors = 1000;

    /// <summary>
    /// How far above the tuned target the final profile keeps raising nprobe (see <see cref="ProfileTuned"/>): a point
    /// reaches a target when its recall minus its 95% sampling margin clears it (about 0.005 at 0.95 on 1,000 queries ×
    /// k = 10), so the series must pass target + margin by a ladder step or two, not more.
    /// </summary>
    internal const double FinalProfileHeadroom = 0.02;

    /// <summary>
    /// Where a bounded profile for <paramref name="target"/> stops raising nprobe: <see cref="FinalProfileHeadroom"/>
    /// above the target, but never past halfway from the lowest recall that reaches the target on
    /// <paramref name="queries"/> queries (<see cref="ComputeProfile.RecallToReach"/>) to 1. A high target (0.99) thus
    /// stops near 0.996 instead of running every series to recall 1 or saturation — its widest, slowest probes, which
    /// made the final profile half the tuning time at 0.99 — while 0.9 and 0.95 stop where they did (target + 0.02).
    /// </summary>
    internal static double StopFor(double target, int k, int queries)
    {
        double reach = ComputeProfile.RecallToReach(target, k, queries);
        return Math.Min(Math.Min(1, target + FinalProfileHeadroom), reach + (1 - reach) / 2);
    }

    /// <summary>
    /// nprobe steps per doubling where the final profile's series reach the target: four, so the point a target picks
    /// probes at most ~19% more lists than it needs. The sweep itself takes two (√2) steps; only the step where a series
    /// reaches the target is refined (<see cref="ProfileOptions.RefineTarget"/>). The candidates' powers of two only have
    /// to rank structures.
    /// </summary>
    private const int FinalLadderSteps = 4;

    /// <summary>Series of a candidate's profile refined at each target (<see cref="ProfileOptions.RefineSeries"/>): the two cheapest.</summary>
    private const int CandidateRefineSeries = 2;

    /// <summary>Held-out vectors each candidate is profiled on (the profiler's default).</summary>
    private const int CandidateProfileQueries = 200;

    /// <summary>Held-out vectors the final index is profiled on (see <see cref="ProfileTuned"/>).</summary>
    internal const int FinalProfileQueries = 1000;

    /// <summary>
    /// <paramref name="perSqrtN"/>·√N lists (at least 16; 4√N: lists of ~√N/4 rows, the usual IVF balance), fewer where
    /// <paramref name="coarseDim"/>-dim centroids would cost more than <see cref="MaxCoarseMacsPerVector"/> per vector
    /// assigned. Not rounded to a power of two: the candidates are measured on a sample at its own √N, and the chosen
    /// structure keeps the same balance at the full count only if both follow √N exactly (rounding down to a power of
    /// two gave the sample's 20,000 rows 512 lists, 0.91 of 4√N, and debian-minilm's 58,945 also 512, 0.53 of it: lists
    /// twice as long as the sample's balance, which cost 13% more FLOPs at recall 0.95 there than 880 lists).
    /// </summary>
    internal static int NListFor(int n, int coarseDim, double perSqrtN = 4)
    {
        int lists = (int)Math.Clamp(Math.Round(perSqrtN * Math.Sqrt(n)), 16, 65_536);
        lists = (int)Math.Min(lists, Math.Max(16, MaxCoarseMacsPerVector / Math.Max(1, coarseDim)));
        return Math.Min(lists, Math.Max(1, n / 8)); // k-means needs several points per list
    }

    /// <summary>
    /// The most multiply-adds the coarse quantizer may cost per vector (nlist × d_c, 2¹⁹): every vector is assigned
    /// against every centroid at build (twice with Spill) and every k-means iteration does the same per training point,
    /// so at a million 256-dim vectors 16√N lists (16,000) would make the final build alone take far longer than a graph
    /// index's (4·10¹² multiply-adds to assign the vectors, 10¹³ for k-means), where the cap's 2,048 lists cost an
    /// eighth of that. It also bounds the coarse ranking per query (~0.5 M multiply-adds). It only binds at large N or
    /// large d_c: 4√N lists at d_c = D stay under it up to N ≈ (2¹⁹ / 4D)² — 116,000 vectors at D = 384, a million at
    /// D = 128.
    /// </summary>
    internal const long MaxCoarseMacsPerVector = 1L << 19;

    /// <summary>
    /// Training points of the final index's k-means at most (64 per list below 2,048 lists): its cost is points × nlist
    /// × d_c per iteration, which grows as nlist² at a fixed number of points per list.
    /// </summary>
    private const int MaxFinalKMeansPoints = 131_072;

    /// <summary>
    /// Lloyd iterations of the final index's k-means: 10, fewer where its centroids are costly (nlist × d_c above 2¹⁸
    /// multiply-adds per training point), at least 6. The cost of an iteration is points × nlist × d_c, so 16√N lists
    /// made the final build the largest part of tuning: 20 iterations over 58,945 vectors × 3,885 lists × 128 dims took
    /// 85 s of a 162 s tuning on debian-minilm, more than hnswlib's whole build. k-means converges most in its first
    /// iterations, and the final profile measures whatever recall the lists give: 10 iterations instead of 20 left the
    /// cheapest point at recall 0.9 and 0.95 where it was (same nprobe; MFLOP 0.411 / 0.621 vs 0.413 / 0.626 on
    /// debian-minilm's IVF971@128 PQ4 pipeline, 0.973 / 0.990 vs 0.972 / 0.989 on Fashion-MNIST's IVF980@256 RaBitQ
    /// one), where 6 cost 7% more FLOPs at 0.95 on debian-minilm (nprobe 38 instead of 32).
    /// </summary>
    internal static int FinalKMeansIterations(int nlist, int coarseDim) =>
        (int)Math.Clamp(10 * (1L << 18) / Math.Max(1L, (long)nlist * Math.Max(1, coarseDim)), 6, 10);

    private static int RoundDown(int v, int step) => Math.Max(step, v / step * step);

    /// <summary>
    /// k-means of the candidates' coarse quantizers (see <see cref="BuildOptions"/>): k-means is most of a candidate's
    /// build, and the candidates only have to be ranked against each other, each pricing its lists' quality in nprobe.
    /// Five iterations on 16 points per list (was 10 on 32) cut the choice's k-means ~4x.
    /// </summary>
    private const int CandidateKMeansIterations = 5;

    /// <inheritdoc cref="CandidateKMeansIterations"/>
    private const int CandidateKMeansPointsPerList = 16;

    /// <summary>Rows every rotation is learned from (the prefix-recall test's and every build's: one matrix per sample).</summary>
    private const int RotationSampleRows = 25_000;

    /// <summary>
    /// Candidates' builds are quick (k-means 5 iterations on 16 points per list; PQ 8 iterations on 10,000 rows;
    /// rotations on 25,000): tuning time counts as build time, and a coarse quantizer trained longer mostly moves where
    /// lists split, which each candidate's measured frontier prices in (nprobe) alike. The <paramref name="final"/> index
    /// is the one searched, so its coarse quantizer gets 20 iterations on 64 points per list: at fixed nprobe that bought
    /// +0.005 recall@10 on debian-minilm and +0.01–0.02 on the built-in synthetic set over the quick build, and was as
    /// good as faiss-style 256 points per list on both (bench/RESULTS.md), for a fraction of the latter's build time.
    /// </summary>
    private static VectorIndexBuildOptions BuildOptions(TunerOptions o, long[]? ids, bool final = false, TrainingCache? cache = null, int nlist = 0, int coarseDim = 0)
    {
        var kmeans = final ? new KMeansOptions(MaxIterations: FinalKMeansIterations(nlist, coarseDim), PointsPerCentroid: Math.Clamp(MaxFinalKMeansPoints / Math.Max(1, nlist), 16, 64), Seed: o.Seed)
            : new KMeansOptions(MaxIterations: CandidateKMeansIterations, PointsPerCentroid: CandidateKMeansPointsPerList, Seed: o.Seed);
        return new(
            new IvfBuildOptions(kmeans, RotationSample: RotationSampleRows, Threads: o.Threads),
            new PqBuildOptions(kmeans, PqIterations: 8, TrainingSample: 10_000, Threads: o.Threads, RotationSample: RotationSampleRows),
            ids, o.Threads == 0 ? null : o.Threads) { Cache = cache };
    }

    /// <summary>
    /// The query-time grid: nprobe over powers of two, shortlists of 4–40 k, for a funnel three first-stage keeps (a
    /// fixed keep is exactly what failed on data nobody tuned for, so the profile chooses it), a spec without rerank as it
    /// runs; with <paramref name="near"/>, only the series that mattered near the target on the sample.
    /// </summary>
    private static ProfileOptions ProfileFor(IVectorIndexReader index, TunerOptions o, IReadOnlyList<(int ShortlistMultiple, int FirstKeep, int ScanDim)>? near = null)
    {
        int[] multiples = [.. ShortlistMultiples];
        int[] keeps = [.. FirstKeepMultiples.Select(m => m * o.K)];
        var spec = index.Spec;
        // Scan dims: rigid IVF scans its float rows at D and nothing less (a narrower scan with a rerank is what the
        // 8-bit D/2 candidate does, for a quarter of the bytes); an 8-bit or float store with a rerank is scanned at
        // S/8 … S of its S dims; codes (PQ, RaBitQ) and the codec pipeline's stores at the dim they hold.
        int[]? scanDims = spec.Rerank.Count == 0 && !spec.IsCodecPipeline ? [index.Dimension]
            : !spec.IsCodecPipeline ? IndexProfiler.DefaultScanDims(spec.ScanDim ?? index.Dimension) : null;
        Func<SearchParams, bool>? filter = null;
        if (near is { Count: > 0 })
        {
            // Only the series that were on the sample's frontier near the target, each also with the next longer
            // shortlist (the full data's lists differ from the sample's): not the cross product of their knobs.
            var wanted = new HashSet<(int, int, int)>();
            foreach (var (m, keep, sd) in near)
            {
                wanted.Add((m, keep, sd));
                int at = Array.IndexOf(multiples, m);
                if (at >= 0 && at + 1 < multiples.Length) wanted.Add((multiples[at + 1], keep, sd));
            }
            filter = sp => wanted.Contains(SeriesKey(sp, o.K));
            if (scanDims is not null) scanDims = [.. near.Select(g => g.ScanDim).Distinct().Order()];
        }
        var stages = spec.Rerank;
        IReadOnlyList<IReadOnlyList<RerankStage>>? variants = null;
        if (stages.Count == 2)
            variants = keeps.Select(keep => (IReadOnlyList<RerankStage>)[stages[0] with { Keep = keep }, stages[1]]).ToArray();
        // A spec without rerank (rigid IVF) is measured as it runs — the scan keeps k, nothing is reranked: at a full-D
        // scan a full-D rerank would return the same neighbours for more work.
        if (stages.Count == 0)
            variants = [[]];
        return new ProfileOptions { K = o.K, Seed = o.Seed, ShortlistMultiples = multiples, RerankVariants = variants, Threads = o.Threads, Queries = o.Queries,
            ScanDims = scanDims, Trace = o.Trace, SeriesFilter = filter };
    }

    /// <summary>A grid line as (shortlist multiple, first rerank stage's keep of a two-stage funnel or 0, scan dim).</summary>
    private static (int ShortlistMultiple, int FirstKeep, int ScanDim) SeriesKey(SearchParams p, int k) =>
        (p.Shortlist!.Value / k, p.Rerank is { Count: 2 } r ? r[0].Keep ?? 0 : 0, p.ScanDim!.Value);

    /// <summary>
    /// The profiling queries of <paramref name="set"/> (rows <paramref name="ids"/>, default 0..N−1) with their exact
    /// neighbours, computed once by the blocked flat search (a GEMM over tiles that fit in cache) for every index built
    /// on those rows: held-out stored vectors drawn with the seed, or the first rows of the caller's query sample.
    /// </summary>
    private static ProfileTruth TruthFor(VectorSet set, long[]? ids, Metric metric, TunerOptions o, int wanted)
    {
        int D = set.Dimension, kq = o.K + 1;
        int nq;
        long[] queryIds;
        float[] queries;
        if (o.Queries is { } given)
        {
            nq = Math.Min(wanted, given.Count);
            queryIds = new long[nq];
            Array.Fill(queryIds, -1L);
            queries = IndexProfiler.EvenRows(given, nq);
        }
        else
        {
            nq = Math.Min(wanted, set.Count);
            // The profiler's own seeded draw, over row numbers.
            var all = new long[set.Count];
            for (int i = 0; i < all.Length; i++) all[i] = i;
            var rows = IndexProfiler.SampleIds(all, nq, o.Seed);
            queryIds = new long[nq];
            queries = new float[(long)nq * D];
            for (int i = 0; i < nq; i++)
            {
                int row = (int)rows[i];
                queryIds[i] = ids?[row] ?? row;
                set.Row(row).CopyTo(queries.AsSpan(i * D, D));
            }
        }
        var flat = new FlatIndex(set, metric);
        var exact = flat.SearchBatch(queries, D, kq, threads: o.Threads);
        var exactIds = new long[nq * kq];
        for (int i = 0; i < nq; i++)
        {
            var row = exact.IdsOf(i);
            for (int j = 0; j < kq; j++)
                exactIds[i * kq + j] = j < row.Length && row[j] >= 0 ? ids?[row[j]] ?? row[j] : -1;
        }
        return new ProfileTruth(queryIds, queries, exactIds, kq);
    }

    /// <summary>Vectors from which the final profile's queries are held out of the build (ten times the queries).</summary>
    internal const int HoldOutMinimum = 10 * FinalProfileQueries;

    /// <summary>
    /// Splits <paramref name="set"/> into the rows the index is built on and <paramref name="count"/> rows drawn with the
    /// profiler's seeded sample, to profile on and add afterwards; each with its ids (row numbers unless given).
    /// </summary>
    private static (VectorSet Kept, long[] KeptIds, VectorSet Held, long[] HeldIds) HoldOut(VectorSet set, long[]? ids, int count, int seed)
    {
        int n = set.Count, D = set.Dimension;
        var all = new long[n];
        for (int i = 0; i < n; i++) all[i] = i;
        var drawn = IndexProfiler.SampleIds(all, count, seed);
        var isHeld = new bool[n];
        foreach (long r in drawn) isHeld[r] = true;
        var kept = new VectorSet(D, n - drawn.Length);
        var held = new VectorSet(D, drawn.Length);
        var keptIds = new long[n - drawn.Length];
        var heldIds = new long[drawn.Length];
        int a = 0, b = 0;
        for (int i = 0; i < n; i++)
        {
            long id = ids?[i] ?? i;
            if (isHeld[i]) { held.Add(set.Row(i)); heldIds[b++] = id; }
            else { kept.Add(set.Row(i)); keptIds[a++] = id; }
        }
        return (kept, keptIds, held, heldIds);
    }

    /// <summary>Shortlists the profiles try, as multiples of k.</summary>
    private static readonly int[] ShortlistMultiples = [4, 8, 16, 40];

    /// <summary>Keeps of a two-stage funnel's first stage the profiles try, as multiples of k.</summary>
    private static readonly int[] FirstKeepMultiples = [3, 6, 12];

    /// <summary>Builds and profiles one candidate on the sample; the index stays alive for <see cref="TimeRoundRobin"/>.</summary>
    private static (IVectorIndex Index, TunerCandidate Candidate, bool Reached) Measure(IndexSpec spec, VectorSet sample, Metric metric, TunerOptions o,
        ProfileTruth truth, TrainingCache cache, double stopAboveMicros = double.PositiveInfinity)
    {
        var sw = Stopwatch.StartNew();
        var index = VectorIndex.Build(sample, spec, metric, BuildOptions(o, null, cache: cache));
        o.Trace?.Invoke($"tuner: built {spec} on {sample.Count} rows in {sw.Elapsed.TotalSeconds:F2} s");
        try
        {
            // Only the cheapest point reaching the target matters here: a series stops once it clears the target by more
            // than the 200-query sampling margin (about 0.011 at 0.95), before its widest and slowest probes.
            // The cheapest series at each target is refined to the final profile's nprobe ladder: on powers of two alone
            // a structure whose target fell just past a power of two paid for up to twice the probes it needed, and
            // ranked as if it were slower (the built-in set: IVF566 needs nprobe 13, its ladder gave 16, and IVF1131
            // won at 30 vs 34 µs on the sample while, built on all rows, IVF566 ran 22 vs 31 µs per query in batch).
            var profile = index.Profile(ProfileFor(index, o) with { StopAtRecall = StopFor(o.TopTarget, o.K, truth.QueryIds.Length), Truth = truth,
                Retime = false, StopAboveMicros = double.IsFinite(stopAboveMicros) ? stopAboveMicros : null,
                RefineTargets = o.AllTargets, RefineNProbes = IndexProfiler.Ladder(index.NList, FinalLadderSteps), RefineSeries = CandidateRefineSeries });
            // Every target's cheapest reaching point (the top target's recall reported); the score is their µs'
            // geometric mean (TimeRoundRobin times them again side by side).
            var targets = o.AllTargets;
            bool reached = true;
            double logMicros = 0;
            ProfilePoint point = profile.Points[^1];
            foreach (double t in targets)
            {
                int i = profile.CheapestReachingIndex(t, null, null, out bool r);
                reached &= r;
                point = profile.Points[i];
                logMicros += Math.Log(point.MicrosPerQuery);
            }
            double micros = Math.Exp(logMicros / targets.Length);
            var near = profile.Points.Where(pt => pt.Recall >= targets[0] - 0.05).Select(pt => SeriesKey(pt.Params, o.K)).Distinct().Order().ToArray();
            double bytes = index.ResidentBytesPerVector;
            bool over = bytes > (o.MaxBytesPerVector ?? double.PositiveInfinity);
            return (index, new TunerCandidate(spec, reached && !over ? micros : double.PositiveInfinity, point.Recall, sw.Elapsed.TotalSeconds, near,
                bytes, over) { TopMicros = reached && !over ? point.MicrosPerQuery : double.PositiveInfinity,
                    Outpaced = !reached && double.IsFinite(stopAboveMicros) && profile.Points.Max(pt => pt.MicrosPerQuery) > stopAboveMicros }, reached && !over);
        }
        catch
        {
            index.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A candidate profiled after one that reaches the target stops a series once a point costs this many times that
    /// one's µs at the top target (first timings, which vary by tens of percent between runs: 2x is far outside that).
    /// </summary>
    private const double StopAboveFactor = 2.0;

    /// <summary>Timing rounds of <see cref="TimeRoundRobin"/>.</summary>
    private const int TimingRounds = 5;

    /// <summary>
    /// Times the candidates <paramref name="which"/> that reached the target, at their target points, in interleaved rounds (candidate A, B, C, A,
    /// B, C, …; the best round of each kept). Each profile timed its own points at a different moment, so on a machine
    /// whose speed drifts — other processes, turbo, a VM's neighbours — those figures compare candidates unfairly;
    /// interleaving exposes every candidate to the same conditions. The recall side is unchanged (deterministic).
    /// </summary>
    private static void TimeRoundRobin(List<(IVectorIndex Index, TunerCandidate Candidate, bool Reached)> built, int[] which, VectorSet sample, TunerOptions o)
    {
        var from = o.Queries ?? sample;
        int nq = Math.Min(256, from.Count);
        var queries = IndexProfiler.EvenRows(from, nq);
        var targets = o.AllTargets;
        var atTarget = targets.Select(t => new SearchParams { TargetRecall = t }).ToArray();
        var ids = new long[nq * o.K];
        var scores = new float[nq * o.K];
        var best = new double[built.Count, targets.Length];
        for (int c = 0; c < built.Count; c++)
            for (int t = 0; t < targets.Length; t++) best[c, t] = double.PositiveInfinity;
        for (int round = 0; round <= TimingRounds; round++) // round 0 warms every candidate up and is not counted
            foreach (int c in which)
            {
                if (!built[c].Reached) continue;
                for (int t = 0; t < targets.Length; t++)
                {
                    long t0 = Stopwatch.GetTimestamp();
                    built[c].Index.SearchBatch(queries, o.K, ids, scores, atTarget[t], null, 1, out _);
                    double micros = Stopwatch.GetElapsedTime(t0).TotalMicroseconds / nq;
                    if (round > 0) best[c, t] = Math.Min(best[c, t], micros);
                }
            }
        foreach (int c in which)
        {
            if (!built[c].Reached) continue;
            double logMicros = 0;
            for (int t = 0; t < targets.Length; t++) logMicros += Math.Log(best[c, t]);
            built[c] = built[c] with { Candidate = built[c].Candidate with { MicrosAtTarget = Math.Exp(logMicros / targets.Length) } };
        }
    }

    /// <summary>recall@k of exact D/4-prefix search against full-D exact search on the sample, raw and rotated.</summary>
    private static (double Raw, double Rotated) PrefixRecalls(VectorSet sample, Metric metric, TunerOptions o, TrainingCache cache)
    {
        int D = sample.Dimension, d = Math.Max(1, D / 4), k = o.K;
        int nq = Math.Min(200, sample.Count / 10);
        var rng = new Random(o.Seed);
        var queries = new float[nq * D];
        var rows = new int[nq];
        for (int i = 0; i < nq; i++)
        {
            rows[i] = rng.Next(sample.Count);
            sample.Row(rows[i]).CopyTo(queries.AsSpan(i * D, D));
        }
        double Recall(VectorSet set, float[] q)
        {
            var flat = new FlatIndex(set, metric);
            var truth = flat.SearchBatch(q, D, k + 1, threads: o.Threads);
            var prefix = flat.SearchBatch(q, D, k + 1, dim: d, threads: o.Threads);
            long hits = 0, all = 0;
            for (int i = 0; i < nq; i++)
            {
                // Each query is a stored vector: leave its own row out of both lists.
                var t = truth.IdsOf(i).ToArray().Where(id => id != rows[i]).Take(k).ToHashSet();
                all += t.Count;
                foreach (long id in prefix.IdsOf(i).ToArray().Where(id => id != rows[i]).Take(k)) if (t.Contains(id)) hits++;
            }
            return all == 0 ? 1 : (double)hits / all;
        }
        double raw = Recall(sample, queries);
        if (D < 8) return (raw, raw);
        var rotation = cache.Rotation(sample, RotationSampleRows, () => RotationTransform.Learn(sample, RotationSampleRows));
        using var rotatedSet = rotation.Apply(sample);
        var rq = new float[queries.Length];
        rotation.ApplyBatch(queries, rq);
        return (raw, Recall(rotatedSet, rq));
    }
}
