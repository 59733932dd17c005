using System.Buffers.Binary;
using System.IO.Hashing;
using Adanns.Engine.Clustering;
using Adanns.Engine.Indexes;
using Adanns.Engine.Persistence;

namespace Adanns.Engine.Tests;

/// <summary>One profiled index shared by the budget tests: building and profiling it once keeps the suite fast.</summary>
public sealed class ProfiledIndexFixture : IDisposable
{
    public ProfiledIndexFixture()
    {
        var (b, q) = IvfTestData.Make();
        Base = b;
        Queries = q;
        Truth = IvfTestData.Truth(b, q, Metric.L2);
        // A 64-dim scan store, so the default grid has four scan dims (8, 16, 32, 64).
        Index = IvfTestData.BuildIvf(b, "IVF32@32,Scan16,Shortlist50,Rerank64", Metric.L2,
            new IvfBuildOptions(new KMeansOptions(MaxIterations: 10, Seed: 7), Threads: 1, ScanStoreDims: 64));
        Profile = Index.Profile(new ProfileOptions { Threads = 1 });
    }

    public VectorSet Base { get; }
    public float[] Queries { get; }
    public int[] Truth { get; }
    public IvfIndex Index { get; }
    public ComputeProfile Profile { get; }

    public void Dispose() => Base.Dispose();
}

public class BudgetTests(ProfiledIndexFixture f) : IClassFixture<ProfiledIndexFixture>
{
    private static SearchParams Concrete(int nprobe) =>
        new() { NProbe = nprobe, CoarseDim = 16, ScanDim = 16, Shortlist = 40, Rerank = [new RerankStage(64, null)] };

    [Fact]
    public void ProfileKeepsOnlyParetoPointsAndBestPicksTheBestThatFits()
    {
        var measured = new[]
        {
            new ProfilePoint(Concrete(1), 100, 5, 0.50),
            new ProfilePoint(Concrete(2), 200, 9, 0.70),
            new ProfilePoint(Concrete(3), 250, 10, 0.65), // dearer than 2 in FLOPs and in time, yet worse: dominated
            new ProfilePoint(Concrete(4), 200, 9.5, 0.60), // same cost as 2, slower, worse recall: dominated
            new ProfilePoint(Concrete(5), 400, 20, 0.90),
            new ProfilePoint(Concrete(6), 800, 30, 0.90), // no better than 5 for twice the cost: dominated
            new ProfilePoint(Concrete(7), 500, 12, 0.80), // more FLOPs than 5 for less recall, but faster: the time frontier keeps it
        };
        var profile = new ComputeProfile(measured, k: 10, queries: 50, vectorCount: 1000);
        Assert.Equal([1, 2, 5, 7], profile.Points.Select(p => p.Params.NProbe!.Value)); // by FLOPs
        Assert.Equal(7, profile.Best(null, 15)!.Params.NProbe); // the time budget sees the time frontier
        Assert.Equal(2, profile.Best(450, 15)!.Params.NProbe);
        // A recall target takes the fastest point reaching it (7 at 12 µs, not 5 with fewer FLOPs at 20 µs) …
        // (50 queries × 10: 0.80 clears 0.75 by more than its 0.042 margin) …
        Assert.Equal(7, profile.Points[profile.CheapestReachingIndex(0.75, null, null, out _)].Params.NProbe);
        // … among the points that fit a FLOPs budget.
        Assert.Equal(5, profile.Points[profile.CheapestReachingIndex(0.75, 450, null, out _)].Params.NProbe);
        Assert.Equal(2, profile.Best(250, null)!.Params.NProbe);
        Assert.Equal(5, profile.Best(null, null)!.Params.NProbe);
        Assert.Equal(1, profile.Best(1000, 8)!.Params.NProbe); // the time limit binds before the FLOPs one
        Assert.Null(profile.Best(99, null));
        Assert.Null(profile.Best(null, 4.9));
        Assert.Throws<ArgumentOutOfRangeException>(() => profile.Best(double.NaN, null));
        Assert.Throws<ArgumentException>(() => new ComputeProfile([new ProfilePoint(new SearchParams { NProbe = 1 }, 1, 1, 0.5)], 10, 1, 1));
    }

    [Fact]
    public void MeasuredFrontierIsMonotoneAndConcrete()
    {
        var pts = f.Profile.Points;
        // Observed (seeded): 20 frontier points from 4,656 to 148,224 FLOPs/query, recall 0.349 to 1.000.
        Assert.True(pts.Count >= 10, $"only {pts.Count} frontier points");
        for (int i = 1; i < pts.Count; i++)
            Assert.True(pts[i].FlopsPerQuery >= pts[i - 1].FlopsPerQuery, $"point {i}: not ordered by FLOPs");
        // Every point is on one of the two frontiers: nothing else is at most as costly (in FLOPs, or in µs) and at least as good.
        foreach (var p in pts)
        {
            bool flopsDominated = pts.Any(o => !ReferenceEquals(o, p) && o.FlopsPerQuery <= p.FlopsPerQuery && o.Recall > p.Recall);
            bool timeDominated = pts.Any(o => !ReferenceEquals(o, p) && o.MicrosPerQuery <= p.MicrosPerQuery && o.Recall > p.Recall);
            Assert.False(flopsDominated && timeDominated, $"{p} is dominated on both FLOPs and time");
        }
        foreach (var p in pts)
        {
            var s = p.Params;
            Assert.True(s.NProbe is >= 1 and <= 32 && s.CoarseDim == 32 && s.ScanDim is 8 or 16 or 32 or 64 && s.Shortlist is 40 or 100 or 300);
            Assert.Equal([new RerankStage(64, null)], s.Rerank!);
        }
        Assert.True(pts.Max(p => p.Recall) >= 0.97, $"best profiled recall {pts.Max(p => p.Recall):F3}"); // observed 1.000
        Assert.Equal(IvfTestData.N, f.Profile.VectorCount);
        Assert.Equal(200, f.Profile.Queries);
    }

    [Fact]
    public void BudgetedSearchStaysWithinBudgetAndMoreBudgetNeverLowersRecall()
    {
        var pts = f.Profile.Points;
        double lo = pts[0].FlopsPerQuery, hi = pts[^1].FlopsPerQuery;
        double prevRecall = 0;
        int prevPoint = -1;
        for (int i = 0; i < 5; i++)
        {
            // Geometric steps: the frontier's costs span orders of magnitude.
            double budget = lo * Math.Pow(hi / lo, i / 4.0);
            var p = new SearchParams { MaxFlops = budget };
            var resolved = f.Index.Resolve(p, IvfTestData.K);
            Assert.False(resolved.OverBudget);
            Assert.True(resolved.BudgetPoint >= prevPoint, $"budget {budget:F0} chose point {resolved.BudgetPoint} after {prevPoint}");
            Assert.Equal(pts[resolved.BudgetPoint].Params.NProbe, resolved.NProbe);
            Assert.Equal(pts[resolved.BudgetPoint].Params.ScanDim, resolved.ScanDim);
            double recall = IvfTestData.Recall(f.Index, f.Queries, f.Truth, p, out var stats);
            // The profile was measured on stored vectors, these queries are new ones: their lists differ in size.
            // Observed (seeded): budgets of 4,656 / 11,060 / 26,271 / 62,402 / 148,224 FLOPs spent 4,655 / 9,540 /
            // 23,720 / 51,727 / 148,224 per query, for recall 0.322 / 0.534 / 0.928 / 0.983 / 1.000.
            Assert.True(stats.FlopsPerQuery <= budget * 1.05, $"budget {budget:F0}: spent {stats.FlopsPerQuery:F0} FLOPs/query");
            Assert.True(recall >= prevRecall - 0.01, $"budget {budget:F0}: recall {recall:F3} < {prevRecall:F3}");
            prevRecall = recall;
            prevPoint = resolved.BudgetPoint;
        }
        // Observed (seeded): 1.000 at the largest budget.
        Assert.True(prevRecall >= 0.97, $"recall at the largest budget {prevRecall:F3}");
    }

    [Fact]
    public void TargetRecallRunsTheCheapestPointThatReachesIt()
    {
        var pts = f.Profile.Points;
        int prevPoint = -1;
        double prevMeasured = 0;
        foreach (double target in new[] { 0.3, 0.5, 0.7, 0.9, 0.95, 0.99 })
        {
            var r = f.Index.Resolve(new SearchParams { TargetRecall = target }, IvfTestData.K);
            // "Reaches" allows for the profile's sampling error: recall minus its one-sided 95% margin clears the target.
            // Among those, the fastest as profiled.
            var reaching = Enumerable.Range(0, pts.Count).Where(i => pts[i].Recall - f.Profile.Margin(pts[i].Recall) >= target || pts[i].Recall >= 1).ToList();
            // Times within ComputeProfile.TimeTolerance of the fastest count as equal; then the fewest FLOPs (the earliest point).
            int expected = reaching.Count > 0
                ? reaching.First(i => pts[i].MicrosPerQuery <= reaching.Min(j => pts[j].MicrosPerQuery) * (1 + ComputeProfile.TimeTolerance))
                : Enumerable.Range(0, pts.Count).MaxBy(i => (pts[i].Recall, -i));
            Assert.Equal(expected, r.BudgetPoint);
            Assert.Equal(pts[expected].Recall, r.PredictedRecall);
            // A higher target never picks a faster point, and what it runs finds at least as many true neighbours.
            Assert.True(prevPoint < 0 || pts[r.BudgetPoint].MicrosPerQuery * (1 + ComputeProfile.TimeTolerance) >= pts[prevPoint].MicrosPerQuery,
                $"target {target} chose point {r.BudgetPoint} after {prevPoint}");
            double measured = IvfTestData.Recall(f.Index, f.Queries, f.Truth, new SearchParams { TargetRecall = target }, out _);
            Assert.True(measured >= prevMeasured - 0.01, $"target {target}: recall {measured:F3} < {prevMeasured:F3}");
            prevPoint = r.BudgetPoint;
            prevMeasured = measured;
        }
        // With a FLOPs cap as well, the target is met only within it; otherwise the best point under the cap runs.
        var capped = f.Index.Resolve(new SearchParams { TargetRecall = 0.999, MaxFlops = pts[1].FlopsPerQuery }, IvfTestData.K);
        Assert.Equal(pts[1].Recall >= pts[0].Recall ? 1 : 0, capped.BudgetPoint);
        Assert.Throws<ArgumentOutOfRangeException>(() => f.Index.Resolve(new SearchParams { TargetRecall = 1.5 }, IvfTestData.K));
        Assert.Null(f.Index.Resolve(null, IvfTestData.K).PredictedRecall);
    }

    [Fact]
    public void BudgetBelowTheCheapestPointFallsBackToIt()
    {
        var cheapest = f.Profile.Points[0];
        var r = f.Index.Resolve(new SearchParams { MaxFlops = cheapest.FlopsPerQuery / 2 }, IvfTestData.K);
        Assert.True(r.OverBudget);
        Assert.Equal(0, r.BudgetPoint);
        Assert.Equal(cheapest.Params.NProbe, r.NProbe);
        Assert.Equal(cheapest.Params.ScanDim, r.ScanDim);
        var fits = f.Index.Resolve(new SearchParams { MaxFlops = cheapest.FlopsPerQuery }, IvfTestData.K);
        Assert.False(fits.OverBudget);
        Assert.Equal(0, fits.BudgetPoint);

        // A time budget nothing meets runs the fastest point; an unlimited one runs the best.
        var fastest = f.Index.Resolve(new SearchParams { MaxMicros = 0 }, IvfTestData.K);
        Assert.True(fastest.OverBudget);
        double minMicros = f.Profile.Points.Min(p => p.MicrosPerQuery);
        Assert.Equal(minMicros, f.Profile.Points[fastest.BudgetPoint].MicrosPerQuery);
        var unlimited = f.Index.Resolve(new SearchParams { MaxMicros = double.MaxValue }, IvfTestData.K);
        Assert.Equal(Enumerable.Range(0, f.Profile.Points.Count).MaxBy(i => (f.Profile.Points[i].Recall, -i)), unlimited.BudgetPoint);
        Assert.Equal(-1, f.Index.Resolve(null, IvfTestData.K).BudgetPoint);

        // A k above the profile's still gets k candidates through every step.
        var wide = f.Index.Resolve(new SearchParams { MaxFlops = cheapest.FlopsPerQuery }, 500);
        Assert.Equal(500, wide.Shortlist);
    }

    [Fact]
    public void TimeBudgetPicksTheBestPointThatFits_AndSpendsLessWorkWhenTighter()
    {
        var pts = f.Profile.Points;
        var micros = pts.Select(p => p.MicrosPerQuery).OrderBy(m => m).ToArray();
        double prevProfiled = 0;
        double prevRecall = 0;
        // Budgets between the profile's measured times (not equal to any of them), tight to loose.
        foreach (double budget in new[] { micros[0] * 1.01, micros[micros.Length / 3] * 1.01, micros[2 * micros.Length / 3] * 1.01, micros[^1] * 1.01 })
        {
            // The rule, independently of the index: the highest-recall point measured within the budget.
            int expected = Enumerable.Range(0, pts.Count).Where(i => pts[i].MicrosPerQuery <= budget).MaxBy(i => pts[i].Recall);
            var r = f.Index.Resolve(new SearchParams { MaxMicros = budget }, IvfTestData.K);
            Assert.False(r.OverBudget);
            Assert.Equal(expected, r.BudgetPoint);
            // Run it: a looser budget never picks a point profiled at lower recall, nor finds fewer neighbours. (It may do
            // fewer FLOPs: the time frontier holds points that are fast for their FLOPs.)
            double recall = IvfTestData.Recall(f.Index, f.Queries, f.Truth, new SearchParams { MaxMicros = budget }, out _);
            Assert.True(pts[r.BudgetPoint].Recall >= prevProfiled, $"budget {budget:F1} us: profiled recall {pts[r.BudgetPoint].Recall:F3} < {prevProfiled:F3}");
            prevProfiled = pts[r.BudgetPoint].Recall;
            Assert.True(recall >= prevRecall - 0.01, $"budget {budget:F1} us: recall {recall:F3} < {prevRecall:F3}");
            prevRecall = recall;
        }
        Assert.True(prevRecall >= 0.97, $"recall at the loosest time budget {prevRecall:F3}"); // observed 1.000
    }

    [Fact]
    public void BudgetNeedsAProfileAndLeavesTheKnobsToIt()
    {
        var (b, q) = IvfTestData.Make(n: 600, nq: 5);
        using var owned = b;
        var index = IvfTestData.BuildIvf(b, "IVF8", Metric.L2, new IvfBuildOptions(new KMeansOptions(MaxIterations: 5, Seed: 1), Threads: 1));
        Assert.Null(index.ComputeProfile);
        var e = Assert.Throws<InvalidOperationException>(() => index.SearchBatch(q, 10, new SearchParams { MaxFlops = 1e6 }, 1, out _));
        Assert.Contains("call Profile() first", e.Message);
        var conflict = Assert.Throws<ArgumentException>(() => f.Index.Resolve(new SearchParams { MaxFlops = 1e6, NProbe = 4 }, 10));
        Assert.Contains("leave those null", conflict.Message);
    }

    [Theory]
    [InlineData("Rot,IVF8")]
    [InlineData("Rot,IVF8,Scan8,SQ8,Rerank32")]
    [InlineData("Rot,IVF8,PQ8,Rerank32")]
    public void StoredVectorsComeBackInTheCallersSpace(string spec)
    {
        // Rotated indexes keep rotated rows; every index hands them out as they were added (one documented space).
        var (b, _) = IvfTestData.Make(n: 600, nq: 1);
        using var owned = b;
        using var index = VectorIndex.Build(b, spec, Metric.InnerProduct, new VectorIndexBuildOptions(
            new IvfBuildOptions(new KMeansOptions(MaxIterations: 5, Seed: 1)), new PqBuildOptions(new KMeansOptions(MaxIterations: 5, Seed: 1), TrainingSample: 600), Threads: 1));
        var back = new float[IvfTestData.D];
        Assert.True(index.TryGetStoredVector(123, back));
        var original = b.Row(123);
        for (int j = 0; j < IvfTestData.D; j++)
            Assert.True(Math.Abs(back[j] - original[j]) <= 1e-4f * (1 + Math.Abs(original[j])), $"dim {j}: {back[j]} vs {original[j]}");
        var two = new float[2 * IvfTestData.D];
        index.ReadStoredVectors([5, 123], two);
        Assert.Equal(back, two[IvfTestData.D..]);
    }
}

public class BudgetPersistenceTests(ProfiledIndexFixture f) : IClassFixture<ProfiledIndexFixture>, IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("adanns-budget-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void ProfileSurvivesSaveLoadAndOlderFilesHaveNone()
    {
        string path = Path.Combine(_dir, "p.ivf");
        f.Index.Save(path);
        var loaded = (IvfIndex)VectorIndex.Load(path);
        var a = f.Profile;
        var b = loaded.ComputeProfile!;
        Assert.Equal((a.K, a.Queries, a.VectorCount, a.Points.Count), (b.K, b.Queries, b.VectorCount, b.Points.Count));
        for (int i = 0; i < a.Points.Count; i++)
        {
            var (x, y) = (a.Points[i], b.Points[i]);
            Assert.Equal((x.FlopsPerQuery, x.MicrosPerQuery, x.Recall), (y.FlopsPerQuery, y.MicrosPerQuery, y.Recall));
            Assert.Equal((x.Params.NProbe, x.Params.CoarseDim, x.Params.ScanDim, x.Params.Shortlist), (y.Params.NProbe, y.Params.CoarseDim, y.Params.ScanDim, y.Params.Shortlist));
            Assert.Equal(x.Params.Rerank!, y.Params.Rerank!);
        }
        var p = new SearchParams { MaxFlops = a.Points[a.Points.Count / 2].FlopsPerQuery };
        var before = f.Index.SearchBatch(f.Queries, 10, p, 1, out var s1);
        var after = loaded.SearchBatch(f.Queries, 10, p, 1, out var s2);
        Assert.Equal(before.Ids, after.Ids);
        Assert.Equal(s1.Flops, s2.Flops);

        // An older file (IVF format 1.2, before PROF) loads without a profile.
        string old = Path.Combine(AppContext.BaseDirectory, "Golden", "ivf-1.2.ivf");
        using var older = VectorIndex.Load(old);
        Assert.Null(older.ComputeProfile);
    }

    [Fact]
    public void ProfileSectionLengthsAreBoundsChecked()
    {
        string path = Path.Combine(_dir, "q.ivf");
        f.Index.Save(path);
        var bytes = File.ReadAllBytes(path);
        // Walk the sections to PROF, claim a huge point count, and re-seal the CRC so only the bounds check can object.
        int at = 16;
        while (System.Text.Encoding.ASCII.GetString(bytes, at, 4) != "PROF")
            at += 12 + (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(at + 4)) + 4;
        int len = (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(at + 4));
        var payload = bytes.AsSpan(at + 12, len);
        BinaryPrimitives.WriteInt32LittleEndian(payload[16..], 60_000); // after k, queries, vector count
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(at + 12 + len), Crc32.HashToUInt32(payload));
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<IndexFileException>(() => (IvfIndex)VectorIndex.Load(path));
        Assert.Contains("profile points", e.Message);
    }
}
