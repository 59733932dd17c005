using Adanns.Engine.Evaluation;
using Adanns.Engine.Indexes;
using Adanns.Engine.Transforms;

namespace Adanns.Engine.Tests;

/// <summary>The tuner chooses by measurement on the vectors themselves; these check what it decides and what it delivers.</summary>
public class IndexTunerTests
{
    private const int N = 6000, D = 64, NQ = 100, K = 10;

    private static (VectorSet Base, float[] Queries) Matryoshka(int seed = 5)
    {
        var ds = Data.SyntheticMatryoshka.Generate(new Data.SyntheticMatryoshka.Options(N, D, Clusters: 80, Queries: NQ, Seed: seed));
        var q = ds.Queries.ToArray();
        ds.Queries.Dispose();
        return (ds.Base, q);
    }

    /// <summary>The same data with its energy spread over all dims: a random orthogonal rotation (prefixes lose their meaning, distances do not change).</summary>
    private static (VectorSet Base, float[] Queries) Scrambled()
    {
        var (b, q) = Matryoshka();
        var rng = new Random(17);
        var g = new float[D * D];
        for (int i = 0; i < g.Length; i++) g[i] = (float)(rng.NextDouble() * 2 - 1);
        // Gram–Schmidt on the rows gives an orthogonal matrix.
        for (int i = 0; i < D; i++)
        {
            var ri = g.AsSpan(i * D, D);
            for (int j = 0; j < i; j++)
            {
                var rj = g.AsSpan(j * D, D);
                float dot = Kernels.VectorMath.Dot(ri, rj);
                for (int c = 0; c < D; c++) ri[c] -= dot * rj[c];
            }
            Kernels.VectorMath.NormalizeInPlace(ri);
        }
        var rot = RotationTransform.FromMatrix(D, g, new double[D]);
        using (b)
        {
            var sb = rot.Apply(b);
            var sq = new float[q.Length];
            rot.ApplyBatch(q, sq);
            return (sb, sq);
        }
    }

    [Fact]
    public void RotatesOnlyWhenThePrefixesAreNotAlreadyMatryoshkaLike()
    {
        var (b, q) = Matryoshka();
        using var owned = b;
        var (index, report) = IndexTuner.Build(b, Metric.Cosine, new TunerOptions(Threads: 1));
        using var _ = index;
        // Observed (seeded): raw D/4-prefix recall 0.717 vs rotated 0.737 — the raw prefixes already carry the energy.
        Assert.False(report.Rotate, $"raw {report.PrefixRecallRaw:F3} vs rotated {report.PrefixRecallRotated:F3}");
        Assert.False(report.Spec.Rotate);

        var (sb, sq) = Scrambled();
        using var owned2 = sb;
        var (index2, report2) = IndexTuner.Build(sb, Metric.Cosine, new TunerOptions(Threads: 1));
        using var __ = index2;
        // Scrambled, the raw prefixes rank far worse than rotated ones (observed 0.451 vs 0.737), so the tuner rotates.
        Assert.True(report2.Rotate, $"raw {report2.PrefixRecallRaw:F3} vs rotated {report2.PrefixRecallRotated:F3}");
        Assert.True(report2.Spec.Rotate);
        Assert.True(report2.PrefixRecallRaw < report.PrefixRecallRaw - 0.1, $"{report2.PrefixRecallRaw:F3} vs {report.PrefixRecallRaw:F3}");
    }

    [Fact]
    public void TheTunedIndexReachesItsTargetOnNewQueries()
    {
        var (b, q) = Matryoshka(seed: 8);
        using var owned = b;
        var t0 = System.Diagnostics.Stopwatch.StartNew();
        var (index, report) = IndexTuner.Build(b, Metric.Cosine, new TunerOptions(TargetRecall: 0.95, Threads: 1));
        double seconds = t0.Elapsed.TotalSeconds;
        using var owned2 = index;
        Assert.Equal(report.Spec, index.Spec);
        // Five structures at 4√N lists, then the winner at 8√N (and 16√N if 8√N won), when those are other list counts.
        Assert.InRange(report.Candidates.Count, 5, 7);
        Assert.Contains(report.Candidates, c => c.Spec.IsPq);
        Assert.Contains(report.Candidates, c => c.Spec is { IsRaBitQ: true, Spill: true }); // RaBitQ codes are a candidate like every codec
        Assert.Contains(report.Candidates, c => c.Spec is { Sq8: true, Spill: true, Prefix8Dim: not null }); // composes through the codec pipeline
        Assert.NotNull(index.ComputeProfile);
        Assert.Equal(0.95, index.ComputeProfile!.TunedRecall);
        Assert.Equal(IndexTuner.FinalProfileQueries, index.ComputeProfile.Queries);
        // Bounded: four candidate builds and profiles on 6,000 rows plus the final one (observed ~10 s on this VM alone).
        Assert.True(seconds < 120, $"tuning took {seconds:F0} s");

        var truth = GroundTruth.Compute(b, q, Metric.Cosine, K, threads: 1);
        var p = new SearchParams { TargetRecall = 0.95 };
        var chosen = index.Resolve(p, K);
        Assert.True(chosen.PredictedRecall >= 0.95, $"predicted {chosen.PredictedRecall}");
        var r = index.SearchBatch(q, K, p, null, 1, out _);
        double recall = RetrievalMetrics.RecallAtK(r.Ids, K, truth, K, K);
        // The profile is measured on stored vectors; these are new queries from the same distribution. Observed (seeded):
        // no rotation (prefix recall raw 0.695 vs rotated 0.739). The pick is by measured µs, so close candidates can
        // swap between runs: one run chose IVF256@32,Scan16,SQ8,Rerank64 (recall 0.991, predicted 0.989) before rigid
        // IVF and the D/2 scan joined the candidates; the next chose IVF256@16,PQ8x4@16,Spill,Prefix8@32,Rerank32/60,
        // Rerank64 (recall 0.985, predicted 0.985).
        Assert.True(recall >= 0.93, $"{report.Spec}: recall@10 {recall:F3} at target 0.95 (predicted {chosen.PredictedRecall:F3})");

        // A search without parameters runs at the tuned target: the same point, the same results.
        var unset = index.Resolve(null, K);
        Assert.Equal(chosen.BudgetPoint, unset.BudgetPoint);
        Assert.Equal(chosen.PredictedRecall, unset.PredictedRecall);
        Assert.Equal(r.Ids, index.SearchBatch(q, K, null, null, 1, out _).Ids);
        Assert.Equal(r.Ids, index.SearchBatch(q, K, new SearchParams(), null, 1, out _).Ids);
        // The default search at the tuned target allocates nothing once warm (its parameters are cached per point).
        var oneIds = new long[K];
        var oneScores = new float[K];
        long allocated = Allocations.LeastOfThreeRounds(() =>
        {
            for (int i = 0; i < 10; i++) index.Search(q.AsSpan(i * D, D), K, oneIds, oneScores, null, null, out _);
        });
        Assert.Equal(0, allocated);
        // An explicit knob still wins over the tuned target.
        Assert.Equal(1, index.Resolve(new SearchParams { NProbe = 1 }, K).NProbe);

        // The tuned target is saved with the index (optional section "tune") and a loaded index searches alike.
        string path = Path.Combine(Path.GetTempPath(), $"adanns-tuned-{Guid.NewGuid():N}.idx");
        try
        {
            index.Save(path);
            using var loaded = VectorIndex.Load(path);
            Assert.Equal(0.95, loaded.ComputeProfile!.TunedRecall);
            Assert.Equal(unset.BudgetPoint, loaded.Resolve(null, K).BudgetPoint);
            Assert.Equal(r.Ids, loaded.SearchBatch(q, K, null, null, 1, out _).Ids);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void SeveralTargetsAreEachReachedAndTheFirstOneStaysTheDefault()
    {
        var (b, q) = Matryoshka(seed: 8);
        using var owned = b;
        var o = new TunerOptions(TargetRecall: 0.9, Threads: 1, SampleRows: 3000) { Targets = [0.95, 0.8] };
        Assert.Equal([0.8, 0.9, 0.95], o.AllTargets);
        var (index, report) = IndexTuner.Build(b, Metric.Cosine, o);
        using var owned2 = index;
        // Every candidate that reached all three targets is scored by the geometric mean of its µs at each.
        Assert.Contains(report.Candidates, c => double.IsFinite(c.MicrosAtTarget));
        Assert.Equal(0.9, index.ComputeProfile!.TunedRecall); // a query without parameters runs at TargetRecall
        var truth = GroundTruth.Compute(b, q, Metric.Cosine, K, threads: 1);
        double previous = 0;
        foreach (double t in o.AllTargets)
        {
            var chosen = index.Resolve(new SearchParams { TargetRecall = t }, K);
            Assert.True(chosen.PredictedRecall >= t, $"target {t}: predicted {chosen.PredictedRecall}");
            var r = index.SearchBatch(q, K, new SearchParams { TargetRecall = t }, null, 1, out _);
            double recall = RetrievalMetrics.RecallAtK(r.Ids, K, truth, K, K);
            // New queries from the same distribution. Observed (seeded; the structure is picked by measured µs, so it can
            // change between runs): Rot,IVF310 chosen, recall 0.898 / 0.970 / 0.970 at 0.8 / 0.9 / 0.95 (predicted
            // 0.902 / 0.973 / 0.973). The floor allows the sampling error of 100 queries, as the single-target test does.
            Assert.True(recall >= t - 0.02, $"{report.Spec}: recall@10 {recall:F3} at target {t}");
            Assert.True(chosen.PredictedRecall >= previous); // a higher target never picks a less accurate point
            previous = chosen.PredictedRecall ?? 0;
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => IndexTuner.Choose(b, Metric.Cosine, new TunerOptions { Targets = [0.9, 1.5] }));
    }

    [Fact]
    public void ATargetIsReachedOnlyWhenTheMeasuredRecallClearsItsSamplingError()
    {
        // 100 queries × k 10 = 1,000 neighbours checked: a point measured at 0.955 is within 1.645·√2·σ ≈ 0.015 of 0.95,
        // so it does not count as reaching 0.95; 0.97 does (its margin is 0.0125).
        var pt = (double recall, double flops) => new ProfilePoint(
            new SearchParams { NProbe = 1, CoarseDim = 8, ScanDim = 8, Shortlist = 10, Rerank = [] }, flops, flops, recall);
        var profile = new ComputeProfile([pt(0.9, 1), pt(0.955, 2), pt(0.97, 3), pt(0.99, 4)], k: 10, queries: 100, vectorCount: 1000);
        Assert.Equal(2, profile.CheapestReachingIndex(0.95, null, null, out bool reached));
        Assert.True(reached);
        Assert.InRange(profile.Margin(0.955), 0.0150, 0.0156);
        // With 10× the queries the margin shrinks to ≈ 0.0048 and 0.955 does reach 0.95.
        var bigger = new ComputeProfile(profile.Points, k: 10, queries: 1000, vectorCount: 1000);
        Assert.Equal(1, bigger.CheapestReachingIndex(0.95, null, null, out _));
        // A point at recall 1 always reaches any target (there is no error left to allow for).
        var perfect = new ComputeProfile([pt(0.5, 1), pt(1.0, 2)], k: 10, queries: 10, vectorCount: 100);
        Assert.Equal(1, perfect.CheapestReachingIndex(0.99, null, null, out _));
    }


    [Fact]
    public void TheFinalProfileRunsOnVectorsHeldOutOfTheBuildWhichAreAddedAfterwards()
    {
        // 12,000 ≥ HoldOutMinimum: the final index is built on 11,000 rows, profiled with the other 1,000 as new
        // queries, and then holds all 12,000 under their ids.
        var ds = Data.SyntheticMatryoshka.Generate(new Data.SyntheticMatryoshka.Options(12_000, 32, Clusters: 60, Queries: 10, Seed: 3));
        using var b = ds.Base;
        ds.Queries.Dispose();
        var ids = Enumerable.Range(0, b.Count).Select(i => 1_000_000L + 7L * i).ToArray();
        var (index, report) = IndexTuner.Build(b, Metric.Cosine, new TunerOptions(TargetRecall: 0.9, Threads: 1, SampleRows: 4000), ids);
        using var owned = index;
        Assert.True(b.Count >= IndexTuner.HoldOutMinimum);
        Assert.Equal(b.Count, index.Count);
        Assert.Equal(b.Count - IndexTuner.FinalProfileQueries, index.ComputeProfile!.VectorCount); // profiled before the add
        Assert.Equal(IndexTuner.FinalProfileQueries, index.ComputeProfile.Queries);
        // Every row, held out or not, is found as its own nearest neighbour under its id.
        var scores = new float[1];
        var found = new long[1];
        for (int i = 0; i < b.Count; i += 97)
        {
            index.Search(b.Row(i), 1, found, scores, new SearchParams { Exact = true });
            Assert.Equal(ids[i], found[0]);
        }
    }

    [Fact]
    public void ListCountsFollowTheSquareRootOfNUntilTheCoarseQuantizerCostsTooMuchPerVector()
    {
        // 4√N lists: 20,000 → 566; 58,945 → 971; 1,000,000 → 4,000 at d_c = 64.
        Assert.Equal(566, IndexTuner.NListFor(20_000, 128));
        Assert.Equal(971, IndexTuner.NListFor(58_945, 128));
        Assert.Equal(4000, IndexTuner.NListFor(1_000_000, 64));
        // 16√N at a million would be 16,000 lists; at d_c = 256 that is 4 M multiply-adds per vector assigned, so the cap
        // (2¹⁹) holds it at 2,048; at d_c = 64, at 8,192.
        Assert.Equal(2048, IndexTuner.NListFor(1_000_000, 256, 16));
        Assert.Equal(8192, IndexTuner.NListFor(1_000_000, 64, 16));
        for (int n = 1000; n <= 10_000_000; n *= 3)
            foreach (int dc in new[] { 16, 96, 384, 1536 })
                foreach (double f in IndexTuner.ListsPerSqrtN)
                {
                    int nl = IndexTuner.NListFor(n, dc, f);
                    Assert.True((long)nl * dc <= IndexTuner.MaxCoarseMacsPerVector || nl == 16, $"n {n} dc {dc} f {f}: {nl} lists");
                    Assert.True(nl <= Math.Max(16, Math.Round(f * Math.Sqrt(n))) && nl <= Math.Max(1, n / 8));
                    // More vectors never mean fewer lists.
                    Assert.True(IndexTuner.NListFor(3 * n, dc, f) >= nl);
                }
    }

    [Fact]
    public void TheFinalKMeansIteratesLessWhereItsCentroidsCostMore()
    {
        Assert.Equal(10, IndexTuner.FinalKMeansIterations(971, 128));   // 4√N lists on debian-minilm (10 cost no FLOPs at 0.9 / 0.95 vs 20)
        Assert.Equal(10, IndexTuner.FinalKMeansIterations(980, 256));   // 4√N on Fashion-MNIST at d_c 256
        Assert.Equal(6, IndexTuner.FinalKMeansIterations(3885, 128));   // 16√N there
        Assert.Equal(8, IndexTuner.FinalKMeansIterations(4000, 80));    // 4√N at a million vectors, d_c 80
        Assert.Equal(10, IndexTuner.FinalKMeansIterations(16, 8));
        for (int nl = 16; nl <= 65_536; nl *= 2)
            Assert.True(IndexTuner.FinalKMeansIterations(2 * nl, 128) <= IndexTuner.FinalKMeansIterations(nl, 128));
    }

    [Fact]
    public void ABoundedProfileStopsJustPastTheLowestRecallThatReachesItsTarget()
    {
        // The lowest recall reaching a target: it reaches, a hair less does not.
        foreach (var (target, queries) in new[] { (0.9, 1000), (0.95, 1000), (0.99, 1000), (0.99, 200), (0.999, 1000) })
        {
            double reach = ComputeProfile.RecallToReach(target, K, queries);
            Assert.True(ComputeProfile.Reaches(reach, target, K, queries));
            Assert.False(ComputeProfile.Reaches(reach - 1e-6, target, K, queries));
            double stop = IndexTuner.StopFor(target, K, queries);
            // The stop lies above what a target needs, so the point it needs is measured before the series ends...
            Assert.True(stop > reach, $"stop {stop} ≤ reach {reach} at {target}");
            // ...and below 1, so a high target's profile does not run every series to recall 1.
            Assert.True(stop < 1, $"stop {stop} at {target}");
        }
        // Moderate targets stop 0.02 above the target, as before; 0.99 on 1,000 queries × k 10 needs 0.9921 and stops
        // halfway from there to 1 (it used to stop only at recall 1 or saturation).
        Assert.Equal(0.97, IndexTuner.StopFor(0.95, K, 1000), 9);
        Assert.Equal(0.92, IndexTuner.StopFor(0.90, K, 1000), 9);
        Assert.InRange(ComputeProfile.RecallToReach(0.99, K, 1000), 0.9919, 0.9922);
        Assert.InRange(IndexTuner.StopFor(0.99, K, 1000), 0.9958, 0.9962);
        // A target of 1 is reached by recall 1 alone.
        Assert.Equal(1, ComputeProfile.RecallToReach(1, K, 1000));
        Assert.Equal(1, IndexTuner.StopFor(1, K, 1000));
    }
    [Fact]
    public void AutoSpecBuildsThroughTheFactory()
    {
        var (b, _) = Matryoshka(seed: 9);
        using var owned = b;
        using var index = VectorIndex.Build(b, "Auto@0.9", Metric.L2, new VectorIndexBuildOptions(Threads: 1));
        Assert.NotNull(index.ComputeProfile);
        Assert.Equal(N, index.Count);
        var e = Assert.Throws<FormatException>(() => VectorIndex.Build(b, "Auto@1.5", Metric.L2));
        Assert.Contains("Auto@<target recall in (0, 1]>", e.Message);
        Assert.Throws<ArgumentException>(() => IndexTuner.Build(new VectorSet(D, 10), Metric.L2));
    }

    [Fact]
    public void EverythingTheTunerMeasuresApartFromTimeIsTheSameUnderASeed()
    {
        // Recall and FLOPs are deterministic under the seed; only measured times (and so the choices they decide) can
        // move between runs — and those within ComputeProfile.TimeTolerance are settled by FLOPs / candidate order.
        var (b, _) = Matryoshka(seed: 11);
        using var owned = b;
        var o = new TunerOptions(TargetRecall: 0.9, Seed: 3, SampleRows: 3000, Threads: 1);
        var first = IndexTuner.Choose(b, Metric.Cosine, o);
        var second = IndexTuner.Choose(b, Metric.Cosine, o);
        Assert.Equal(first.Rotate, second.Rotate);
        Assert.Equal(first.PrefixRecallRaw, second.PrefixRecallRaw);
        Assert.Equal(first.PrefixRecallRotated, second.PrefixRecallRotated);
        Assert.Equal(first.Candidates.Take(5).Select(c => c.Spec), second.Candidates.Take(5).Select(c => c.Spec));

        // The same spec built twice under the seed profiles to the same FLOPs frontier (parameters, FLOPs, recall).
        using var a = VectorIndex.Build(b, first.Spec, Metric.Cosine, new VectorIndexBuildOptions(Threads: 1));
        using var c = VectorIndex.Build(b, first.Spec, Metric.Cosine, new VectorIndexBuildOptions(Threads: 1));
        static List<string> FlopsFrontier(ComputeProfile p)
        {
            var list = new List<string>();
            double best = double.NegativeInfinity;
            foreach (var pt in p.Points) // by FLOPs
                if (pt.Recall > best)
                {
                    best = pt.Recall;
                    list.Add($"{pt.Params.NProbe}/{pt.Params.Shortlist}/{string.Join('+', pt.Params.Rerank!.Select(st => $"{st.Dim}:{st.Keep}"))} {pt.FlopsPerQuery} {pt.Recall}");
                }
            return list;
        }
        // Profiled for a high target: a profile bounded near 0.9 keeps only the two or three points around it, too few
        // to show that the whole frontier repeats.
        var high = o with { TargetRecall = 0.99 };
        var pa = IndexTuner.ProfileTuned(a, high);
        var pc = IndexTuner.ProfileTuned(c, high);
        Assert.Equal(FlopsFrontier(pa), FlopsFrontier(pc));
        Assert.True(FlopsFrontier(pa).Count >= 3, string.Join("; ", FlopsFrontier(pa)));
    }

    [Fact]
    public void ABoundedProfileMeasuresFewerPointsAndFindsTheSameCheapestPointForTargetsBelowItsStop()
    {
        var (b, _) = Matryoshka(seed: 19);
        using var owned = b;
        using var index = VectorIndex.Build(b, "IVF64@16,Scan16,SQ8,Spill,Prefix8@32,Rerank32/30,Rerank64", Metric.Cosine, new VectorIndexBuildOptions(Threads: 1));
        int Points(string line) => int.Parse(System.Text.RegularExpressions.Regex.Match(line, @"pass 1, \d+ series, (\d+) points").Groups[1].Value);
        int all = 0, bounded = 0;
        var grid = new ProfileOptions
        {
            K = K, Threads = 1, ShortlistMultiples = [4, 8, 16],
            RerankVariants = [[new RerankStage(32, 30), new RerankStage(64, null)], [new RerankStage(32, 60), new RerankStage(64, null)]],
        };
        var full = index.Profile(grid with { Trace = l => { if (l.Contains("pass 1")) all = Points(l); } });
        var cut = index.Profile(grid with { StopAtRecall = 0.95, Trace = l => { if (l.Contains("pass 1")) bounded = Points(l); } });
        // The FLOPs-cheapest point whose recall clears each target below the stop is the same in both (recall and FLOPs
        // are deterministic): the bound only drops points no such target can pick.
        static ProfilePoint? Cheapest(ComputeProfile p, double t) => p.Points.Where(x => x.Recall >= t).MinBy(x => x.FlopsPerQuery);
        foreach (double t in new[] { 0.8, 0.85, 0.9, 0.93 })
        {
            var a = Cheapest(full, t);
            var c = Cheapest(cut, t);
            Assert.NotNull(a);
            Assert.Equal(a.FlopsPerQuery, c!.FlopsPerQuery);
            Assert.Equal(a.Recall, c.Recall);
        }
        Assert.True(bounded < all, $"bounded {bounded} points, unbounded {all}");
        // Refinement measures the finer ladder's nprobes only where a series first reaches the refine target: without
        // it every nprobe is a power of two (the default ladder); with it, some are not, each between two powers of two.
        static bool Pow2(int v) => (v & (v - 1)) == 0;
        Assert.All(full.Points, x => Assert.True(Pow2(x.Params.NProbe!.Value)));
        var log = new List<string>();
        var refined = index.Profile(grid with { StopAtRecall = 0.95, RefineTarget = 0.94, RefineNProbes = IndexProfiler.Ladder(64, 4), Trace = log.Add });
        Assert.True(refined.Points.Any(x => !Pow2(x.Params.NProbe!.Value)), string.Join("\n", log) + "\n" + string.Join("\n", refined.Points.Select(x => $"{x.Params.NProbe} {x.Params.Shortlist} {x.Recall} {x.FlopsPerQuery}")));
        // Several refine targets: each refines where a series first reaches it, so a lower target's cheapest point is
        // at most as dear (in FLOPs, deterministic) as with the higher target's refinement alone, and the points measured are
        // the union of either target's (none twice).
        int onlyHigh = 0, onlyLow = 0, both = 0;
        int Counted(string l) => l.Contains("pass 1") ? Points(l) : -1;
        var high = index.Profile(grid with { StopAtRecall = 0.95, RefineTarget = 0.94, RefineNProbes = IndexProfiler.Ladder(64, 4), Trace = l => { if (Counted(l) >= 0) onlyHigh = Counted(l); } });
        var low = index.Profile(grid with { StopAtRecall = 0.95, RefineTarget = 0.9, RefineNProbes = IndexProfiler.Ladder(64, 4), Trace = l => { if (Counted(l) >= 0) onlyLow = Counted(l); } });
        var two = index.Profile(grid with { StopAtRecall = 0.95, RefineTargets = [0.94, 0.9], RefineNProbes = IndexProfiler.Ladder(64, 4), Trace = l => { if (Counted(l) >= 0) both = Counted(l); } });
        Assert.True(onlyLow > bounded && onlyHigh > bounded, $"0.94 alone {onlyHigh}, 0.9 alone {onlyLow}, none {bounded}"); // each target refines something
        Assert.True(both >= Math.Max(onlyHigh, onlyLow) && both <= onlyHigh + onlyLow - bounded, $"both {both}, 0.94 alone {onlyHigh}, 0.9 alone {onlyLow}, none {bounded}");
        Assert.True(Cheapest(two, 0.9)!.FlopsPerQuery <= Cheapest(high, 0.9)!.FlopsPerQuery);
        Assert.Equal(Cheapest(low, 0.9)!.FlopsPerQuery, Cheapest(two, 0.9)!.FlopsPerQuery);
        Assert.Equal(Cheapest(high, 0.94)!.FlopsPerQuery, Cheapest(two, 0.94)!.FlopsPerQuery);
        // Refining only the cheapest series (the tuner's candidates): at most the finer ladder's steps between two powers
        // of two (3 at 4 steps per doubling), fewer than refining every series, and its cheapest point at the target is
        // never dearer than without refinement.
        int RefinedCount(ComputeProfile _, List<string> lines) =>
            lines.Select(l => System.Text.RegularExpressions.Regex.Match(l, @"refined near .*: (\d+) points")).Where(m => m.Success).Sum(m => int.Parse(m.Groups[1].Value));
        var allLog = new List<string>();
        var oneLog = new List<string>();
        var allSeries = index.Profile(grid with { StopAtRecall = 0.95, RefineTarget = 0.94, RefineNProbes = IndexProfiler.Ladder(64, 4), Trace = allLog.Add });
        var oneSeries = index.Profile(grid with { StopAtRecall = 0.95, RefineTarget = 0.94, RefineNProbes = IndexProfiler.Ladder(64, 4), RefineSeries = 1, Trace = oneLog.Add });
        int refinedAll = RefinedCount(allSeries, allLog), refinedOne = RefinedCount(oneSeries, oneLog);
        Assert.True(refinedOne >= 1 && refinedOne <= 3 && refinedOne < refinedAll, $"one series {refinedOne}, all {refinedAll}");
        Assert.True(Cheapest(oneSeries, 0.94)!.FlopsPerQuery <= Cheapest(full, 0.94)!.FlopsPerQuery);
        // A time bound ends each series at its first point dearer than the bound: at 0 µs, every series after one point.
        string? timeBounded = null;
        index.Profile(grid with { StopAtRecall = 0.95, StopAboveMicros = 0, Trace = l => { if (l.Contains("pass 1")) timeBounded = l; } });
        var counts = System.Text.RegularExpressions.Regex.Match(timeBounded!, @"pass 1, (\d+) series, (\d+) points");
        Assert.Equal(counts.Groups[1].Value, counts.Groups[2].Value);
        // A series filter measures only the lines it accepts.
        var one = index.Profile(grid with { SeriesFilter = sp => sp.Shortlist == 8 * K && sp.Rerank![0].Keep == 60 });
        Assert.All(one.Points, x => Assert.Equal(8 * K, x.Params.Shortlist));
        Assert.Throws<ArgumentException>(() => index.Profile(grid with { SeriesFilter = _ => false }));
    }

    [Fact]
    public void ATrainingCacheLearnsTheRotationAndASharedCoarseQuantizerOnceAndChangesNothing()
    {
        var (b, q) = Matryoshka(seed: 23);
        using var owned = b;
        var cache = new TrainingCache();
        var quick = new Clustering.KMeansOptions(MaxIterations: 5, PointsPerCentroid: 32, Seed: 2);
        VectorIndexBuildOptions Options(TrainingCache? c) => new(new IvfBuildOptions(quick, Threads: 1), new PqBuildOptions(quick, PqIterations: 4, TrainingSample: 3000, Threads: 1), Threads: 1) { Cache = c };
        // Two specs with the same rotation, list count and coarse dim (as the tuner's PQ and RaBitQ candidates), one without.
        string[] specs = ["Rot,IVF32@16,PQ8x4@16,Spill,Rerank64", "Rot,IVF32@16,RQ1@32,Spill,Rerank32/40,Rerank64", "Rot,IVF32@32,Scan32,SQ8,Rerank64"];
        var k = K;
        foreach (string spec in specs)
        {
            using var cached = VectorIndex.Build(b, spec, Metric.Cosine, Options(cache));
            using var plain = VectorIndex.Build(b, spec, Metric.Cosine, Options(null));
            var p = new SearchParams { NProbe = 4 };
            var a = cached.SearchBatch(q, k, p, null, 1, out _);
            var c = plain.SearchBatch(q, k, p, null, 1, out _);
            Assert.Equal(c.Ids, a.Ids);
            Assert.Equal(c.Scores, a.Scores);
        }
        Assert.Equal(1, cache.Rotations);
        Assert.Equal(1, cache.RotatedSamples); // the rows rotated once, read by every Rot build's training and bulk add
        Assert.Equal(2, cache.CoarseQuantizers); // IVF32@16 (rotated, 3,000-row training set) once, IVF32@32 once
    }

    [Fact]
    public void ASampleOfRealQueriesIsWhatTheProfileMeasures()
    {
        var (b, q) = Matryoshka(seed: 13);
        using var owned = b;
        using var queries = new VectorSet(D, NQ);
        for (int i = 0; i < NQ; i++) queries.Add(q.AsSpan(i * D, D));
        var o = new TunerOptions(TargetRecall: 0.9, Seed: 3, SampleRows: 3000, Threads: 1, Queries: queries);
        var (index, report) = IndexTuner.Build(b, Metric.Cosine, o);
        using (index)
        {
            var profile = index.ComputeProfile!;
            Assert.Equal(NQ, profile.Queries); // the given queries, not 1,000 held-out base vectors
            // Measured on those very queries, the predicted recall is what they get (the profile searched k + 1 and kept
            // k, so a tie at the edge can differ: allow 0.01).
            var chosen = index.Resolve(null, K);
            var truth = GroundTruth.Compute(b, q, Metric.Cosine, K, threads: 1);
            var r = index.SearchBatch(q, K, null, null, 1, out _);
            double recall = RetrievalMetrics.RecallAtK(r.Ids, K, truth, K, K);
            Assert.True(Math.Abs(chosen.PredictedRecall!.Value - recall) <= 0.01, $"{report.Spec}: predicted {chosen.PredictedRecall:F4}, measured {recall:F4}");
        }
        using var wrong = new VectorSet(D + 1, 1);
        wrong.Add(new float[D + 1]);
        var e = Assert.Throws<ArgumentException>(() => IndexTuner.Choose(b, Metric.Cosine, o with { Queries = wrong }));
        Assert.Contains("Queries", e.Message);
    }

    [Fact]
    public void AMemoryLimitExcludesCandidatesThatKeepMoreBytesPerVector()
    {
        var (b, _) = Matryoshka(seed: 14);
        using var owned = b;
        // 64 dims: every pipeline keeps its codes, Prefix8 rows, ids and list slots resident and reads rows for rerank
        // from a store that a collection keeps on disk; rigid IVF's codes are the float rows (≥ 256 B per vector), over
        // the limit, while SQ8 and PQ codes fit (observed: 138 B for PQ8x4@16 + Spill + Prefix8@32).
        var (tuned, report) = IndexTuner.Build(b, Metric.Cosine, VectorIndex.ParseAuto("Auto@0.9,Bytes200") with { Threads = 1 });
        using var index = tuned;
        Assert.True(index.ResidentBytesPerVector <= 200, $"{index.Spec}: {index.ResidentBytesPerVector:F1} B per vector");
        Assert.Contains(report.Candidates, c => c.OverMemoryLimit && c.Spec.ScanDim is null && !c.Spec.Sq8 && !c.Spec.IsCodecPipeline && c.BytesPerVector > 200);
        var o = VectorIndex.ParseAuto("auto , bytes80");
        Assert.Equal((0.95, 80.0), (o.TargetRecall, o.MaxBytesPerVector!.Value));
        // Nothing fits one byte per vector: a clear error names the limit and the smallest candidate.
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => VectorIndex.Build(b, "Auto,Bytes1", Metric.Cosine, new VectorIndexBuildOptions(Threads: 1)));
        Assert.Contains("MaxBytesPerVector", e.Message);
        foreach (var bad in new[] { "Auto,Bytes0", "Auto,Bytes", "Auto,Bytes8,Bytes9", "Auto,SQ8", "Auto@2,Bytes8" })
            Assert.Throws<FormatException>(() => VectorIndex.ParseAuto(bad));
    }

    [Fact]
    public void ATimeLimitStopsTheChoiceAfterTwoCandidates()
    {
        var (b, _) = Matryoshka(seed: 15);
        using var owned = b;
        var report = IndexTuner.Choose(b, Metric.Cosine, new TunerOptions(TargetRecall: 0.9, SampleRows: 3000, Threads: 1, MaxChoiceSeconds: 0));
        Assert.Equal(2, report.Candidates.Count); // the first two structures, no list-count stage
        Assert.Contains(report.Spec with { NList = report.Candidates[0].Spec.NList }, report.Candidates.Select(c => c.Spec));
        Assert.Throws<ArgumentOutOfRangeException>(() => IndexTuner.Choose(b, Metric.Cosine, new TunerOptions(MaxChoiceSeconds: -1)));
    }
}
